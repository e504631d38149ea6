"""Finite-difference and analytic reference solvers (numpy / scipy / pyamg only; never torch).

Public API
----------
Grids:      Grid, GridField
Helmholtz:  HelmholtzOperator, solve_helmholtz, gaussian_source, pml_profile, OPTIMAL_WEIGHTS
Wave:       solve_wave, cfl_limit, gaussian_pulse
Poisson:    solve_poisson_dirichlet, solve_poisson_neumann, solve_diffusion_dirichlet (div(a grad u) = f)
Images:     sobel_gradient, reconstruct_from_gradient, discrete_laplacian, reconstruct_from_laplacian, psnr
Analytic:   reference.analytic (Green's functions, Gaussian pulse, SDFs, manufactured solutions)
Linear alg: SparseLU, nested_dissection
"""

from . import analytic
from .factor import SparseLU
from .grid import Grid, GridField
from .helmholtz import HelmholtzOperator, gaussian_source, pml_profile, solve_helmholtz
from .image import discrete_laplacian, psnr, reconstruct_from_gradient, reconstruct_from_laplacian, sobel_gradient
from .ninepoint import OPTIMAL_WEIGHTS
from .ordering import nested_dissection
from .poisson import solve_diffusion_dirichlet, solve_poisson_dirichlet, solve_poisson_neumann
from .wave import cfl_limit, gaussian_pulse, solve_wave

__all__ = [
    "Grid", "GridField", "HelmholtzOperator", "solve_helmholtz", "gaussian_source", "pml_profile",
    "OPTIMAL_WEIGHTS", "solve_wave", "cfl_limit", "gaussian_pulse", "solve_poisson_dirichlet",
    "solve_poisson_neumann", "solve_diffusion_dirichlet", "sobel_gradient", "reconstruct_from_gradient",
    "discrete_laplacian", "reconstruct_from_laplacian", "psnr", "analytic", "SparseLU", "nested_dissection",
]
