"""PDE solves with a network, compared with the finite-difference reference: poisson, helmholtz, wave, the demo, and the grid comparison (compare, verify_grid)."""
