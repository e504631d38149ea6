"""Full-waveform inversion: the command (fwi), the FD background, PINN-FWI and neural-reparameterised FWI."""
