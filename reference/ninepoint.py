"""Optimal 9-point weights (Chen, Cheng, Feng & Wu 2013) fitted by dispersion analysis.

For a plane wave at angle ``theta`` with ``G`` grid points per wavelength, the
9-point scheme (line-averaging weight ``b``; mass weights ``c = 1-d-e``
(centre), ``d/4`` (edges), ``e/4`` (corners)) has normalized phase velocity
``v = sqrt(-S/M) / (kh)`` with, for ``P = kh cos(theta)``, ``Q = kh sin(theta)``::

    S = (2cosP-2)(b + (1-b)cosQ) + (2cosQ-2)(b + (1-b)cosP)
    M = c + d/2 (cosP + cosQ) + e cosP cosQ

``fit_weights`` minimises ``sum (v - 1)^2`` over ``theta in [0, pi/4]`` and
``1/G in [1/400, 1/4]``.  The stored :data:`OPTIMAL_WEIGHTS` come from it.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

__all__ = ["OPTIMAL_WEIGHTS", "phase_velocity", "fit_weights"]

#: (b, d, e) fitted by :func:`fit_weights` with its defaults (see docs/reference.md).
OPTIMAL_WEIGHTS: tuple[float, float, float] = (0.7907, 0.3796, -0.0070)


def phase_velocity(weights: tuple[float, float, float], G: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Normalized numerical phase velocity ``v_h / v`` (1 is exact).

    Parameters
    ----------
    weights : (b, d, e)
    G : ndarray, points per wavelength (> 2)
    theta : ndarray, propagation angle (rad), broadcast with ``G``
    """
    b, d, e = weights
    c = 1 - d - e
    kh = 2 * np.pi / np.asarray(G, dtype=float)
    P, Q = kh * np.cos(theta), kh * np.sin(theta)
    S = (2 * np.cos(P) - 2) * (b + (1 - b) * np.cos(Q)) + (2 * np.cos(Q) - 2) * (b + (1 - b) * np.cos(P))
    M = c + d / 2 * (np.cos(P) + np.cos(Q)) + e * np.cos(P) * np.cos(Q)
    return np.sqrt(-S / M) / kh


def fit_weights(g_min: float = 4.0, g_max: float = 400.0, n_theta: int = 16, n_g: int = 60) -> tuple[float, float, float]:
    """Least-squares fit of ``(b, d, e)`` minimising the phase error."""
    theta = np.linspace(0, np.pi / 4, n_theta)[:, None]
    G = 1.0 / np.linspace(1.0 / g_max, 1.0 / g_min, n_g)[None, :]
    res = least_squares(lambda w: (phase_velocity(tuple(w), G, theta) - 1).ravel(), x0=[0.8, 0.3, 0.0])
    return tuple(float(v) for v in res.x)  # type: ignore[return-value]
