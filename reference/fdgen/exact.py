"""Exact solutions used to check the generated solver (shared by tests, docs and benchmarks)."""

from __future__ import annotations

import numpy as np
from scipy.special import roots_hermite

__all__ = ["burgers_cole_hopf"]


def burgers_cole_hopf(x: np.ndarray, t: np.ndarray, nu: float = 0.01 / np.pi, nodes: int = 200) -> np.ndarray:
    """Viscous Burgers ``u_t + u u_x = nu u_xx``, ``u(x, 0) = -sin(pi x)``, ``u(+-1, t) = 0``, by Cole-Hopf.

    ``u(x, t) = -int sin(pi (x - e)) F(x - e) G(e) de / int F(x - e) G(e) de`` with
    ``F(y) = exp(-cos(pi y) / (2 pi nu))`` and the heat kernel ``G(e) = exp(-e^2 / (4 nu t))``;
    with ``e = sqrt(4 nu t) z`` both integrals are Gauss-Hermite sums over ``z``. The
    exponent is shifted by its maximum per point, so ``nu`` down to ~1e-3 does not overflow.

    Parameters
    ----------
    x, t : arrays (broadcast together); ``t >= 0``.
    nu : viscosity.
    nodes : Gauss-Hermite nodes (200 resolve ``nu = 0.01/pi`` for ``t <= 1`` to ~1e-15;
        the tests check it against a trapezoid rule).

    Returns
    -------
    ndarray, the broadcast shape, float64.
    """
    x, t = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(t, dtype=float))
    if np.any(t < 0):
        raise ValueError("burgers_cole_hopf: t must be >= 0")
    z, w = roots_hermite(nodes)
    s = np.sqrt(4 * nu * t)[..., None]
    y = x[..., None] - s * z
    E = -np.cos(np.pi * y) / (2 * np.pi * nu)
    E = E - E.max(axis=-1, keepdims=True)
    F = w * np.exp(E)
    return -(np.sin(np.pi * y) * F).sum(-1) / F.sum(-1)
