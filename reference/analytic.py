"""Closed-form and quadrature reference solutions.

All functions are numpy-only and vectorised.  Helmholtz solutions follow the
package convention (see :mod:`reference.helmholtz`): outgoing waves are
``conj((i/4) H0^(1)(k r)) = -(i/4) H0^(2)(k r)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import hankel2, j0

__all__ = [
    "helmholtz_green", "helmholtz_gaussian", "gaussian_pulse_wave", "leggauss_hankel_nodes",
    "sdf_sphere", "sdf_box", "sdf_torus", "sdf_circle",
    "sample_sphere", "sample_box", "sample_torus",
    "poisson_manufactured",
]


# ------------------------------------------------------------------ Helmholtz
def helmholtz_green(r: np.ndarray, k: float) -> np.ndarray:
    """Outgoing 2-D Green's function of ``Lap u + k^2 u = -delta``.

    Parameters
    ----------
    r : ndarray, distance to the source (length, > 0)
    k : float, wavenumber (rad / length)

    Returns
    -------
    ndarray, complex128, same shape: ``-(i/4) H0^(2)(k r) = conj((i/4) H0^(1)(k r))``.
    """
    return -0.25j * hankel2(0, k * np.asarray(r, dtype=float))


def helmholtz_gaussian(r: np.ndarray, k: float, var: float = 1e-4) -> np.ndarray:
    """Field of a unit-mass Gaussian source (variance ``var``) outside the source.

    By the addition theorem, convolving the Green's function with a radial
    density ``g`` gives ``G(r) * 2 pi int g(rho) J0(k rho) rho drho`` for ``r``
    beyond the support; for the Gaussian that factor is ``exp(-k^2 var / 2)``
    (valid to ``O(exp(-r^2 / (2 var)))``, i.e. for ``r >~ 6 sqrt(var)``).

    Returns
    -------
    ndarray, complex128, same shape as ``r``.
    """
    return helmholtz_green(r, k) * np.exp(-(k**2) * var / 2)


# ----------------------------------------------------------------------- wave
def leggauss_hankel_nodes(kmax: float, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes/weights on ``[0, kmax]`` (radial wavenumber quadrature)."""
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * kmax * (x + 1), 0.5 * kmax * w


def gaussian_pulse_wave(r: np.ndarray, t: float, c: float = 1.0, var: float = 5e-4,
                        amplitude: float = 1.0, n_quad: int | None = None) -> np.ndarray:
    """Free-space 2-D solution of ``u_tt = c^2 Lap u`` for a Gaussian initial pulse.

    ``u(x, 0) = amplitude * exp(-|x|^2 / (2 var))``, ``u_t(x, 0) = 0``.  By the
    Hankel transform, ``u(r, t) = amplitude * var * int_0^inf exp(-var kr^2 / 2)
    cos(c kr t) J0(kr r) kr dkr``, evaluated by Gauss-Legendre quadrature on
    ``[0, 12 / sqrt(var)]`` (the integrand is below ``e^-72`` beyond).  By default
    the number of nodes follows the oscillation of the integrand,
    ``0.75 * kmax * (max r + c |t|) + 100``.

    Parameters
    ----------
    r : ndarray, distance from the pulse centre (length)
    t : float, time
    c : float, wave speed (length / time)

    Returns
    -------
    ndarray, float64, same shape as ``r``.
    """
    r = np.asarray(r, dtype=float)
    kmax = 12.0 / np.sqrt(var)
    if n_quad is None:
        n_quad = int(0.75 * kmax * (float(np.max(r, initial=0.0)) + c * abs(t))) + 100
    kr, w = leggauss_hankel_nodes(kmax, n_quad)
    spec = w * np.exp(-var * kr**2 / 2) * np.cos(c * kr * t) * kr
    flat = r.ravel()
    out = np.empty(flat.shape)
    for s in range(0, flat.size, 4096):
        out[s:s + 4096] = j0(np.outer(flat[s:s + 4096], kr)) @ spec
    return amplitude * var * out.reshape(r.shape)


# ----------------------------------------------------------------------- SDFs
def _pts(p: np.ndarray, d: int) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.ndim != 2 or p.shape[1] != d:
        raise ValueError(f"expected points of shape (N, {d}), got {p.shape}.")
    return p


def sdf_sphere(p: np.ndarray, radius: float = 0.5, center: tuple = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Signed distance to a sphere; ``p`` (N, 3) -> (N,), negative inside."""
    return np.linalg.norm(_pts(p, 3) - np.asarray(center), axis=1) - radius


def sdf_circle(p: np.ndarray, radius: float = 0.5, center: tuple = (0.0, 0.0)) -> np.ndarray:
    """Signed distance to a circle; ``p`` (N, 2) -> (N,), negative inside."""
    return np.linalg.norm(_pts(p, 2) - np.asarray(center), axis=1) - radius


def sdf_box(p: np.ndarray, half_sizes: tuple = (0.5, 0.3, 0.2)) -> np.ndarray:
    """Exact signed distance to an axis-aligned box centred at 0; (N, 3) -> (N,)."""
    q = np.abs(_pts(p, 3)) - np.asarray(half_sizes, dtype=float)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return outside + inside


def sdf_torus(p: np.ndarray, major: float = 0.5, minor: float = 0.2) -> np.ndarray:
    """Exact signed distance to a torus around the z axis; (N, 3) -> (N,)."""
    p = _pts(p, 3)
    q = np.hypot(p[:, 0], p[:, 1]) - major
    return np.hypot(q, p[:, 2]) - minor


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sample_sphere(n: int, radius: float = 0.5, center: tuple = (0.0, 0.0, 0.0),
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Uniform surface samples of a sphere: points (n, 3), outward unit normals (n, 3)."""
    rng = np.random.default_rng(rng)
    nrm = _unit(rng.normal(size=(n, 3)))
    return np.asarray(center) + radius * nrm, nrm


def sample_box(n: int, half_sizes: tuple = (0.5, 0.3, 0.2),
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform surface samples of the box: points (n, 3), outward normals (n, 3)."""
    rng = np.random.default_rng(rng)
    h = np.asarray(half_sizes, dtype=float)
    areas = np.array([h[1] * h[2], h[0] * h[2], h[0] * h[1]])  # faces normal to x, y, z (each twice)
    axis = rng.choice(3, size=n, p=areas / areas.sum())
    sign = rng.choice([-1.0, 1.0], size=n)
    pts = rng.uniform(-1, 1, size=(n, 3)) * h
    pts[np.arange(n), axis] = sign * h[axis]
    nrm = np.zeros((n, 3))
    nrm[np.arange(n), axis] = sign
    return pts, nrm


def sample_torus(n: int, major: float = 0.5, minor: float = 0.2,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform surface samples of the torus: points (n, 3), outward normals (n, 3).

    Uses rejection on the tube angle (area element ``proportional to R + r cos v``).
    """
    rng = np.random.default_rng(rng)
    out_u, out_v = [], []
    got = 0
    while got < n:
        u = rng.uniform(0, 2 * np.pi, 2 * n)
        v = rng.uniform(0, 2 * np.pi, 2 * n)
        keep = rng.uniform(0, major + minor, 2 * n) < major + minor * np.cos(v)
        out_u.append(u[keep]); out_v.append(v[keep]); got += int(keep.sum())  # noqa: E702
    u, v = np.concatenate(out_u)[:n], np.concatenate(out_v)[:n]
    nrm = np.stack([np.cos(v) * np.cos(u), np.cos(v) * np.sin(u), np.sin(v)], axis=1)
    pts = np.stack([major * np.cos(u), major * np.sin(u), np.zeros(n)], axis=1) + minor * nrm
    return pts, nrm


# -------------------------------------------------------------------- Poisson
def poisson_manufactured(kind: str = "sin", a: float = 1.0
                         ) -> tuple[Callable, Callable, Callable]:
    """Manufactured 2-D solution ``u`` with its Laplacian and gradient.

    Parameters
    ----------
    kind : {"sin", "cos", "gauss"}
        ``"sin"``: ``sin(pi a x) sin(pi a y)`` on [0,1]^2 (zero Dirichlet data for integer a);
        ``"cos"``: ``cos(pi a x) cos(pi a y)`` on [0,1]^2 (zero Neumann data for integer a);
        ``"gauss"``: ``exp(-(x^2 + y^2) / a^2)`` (nonzero boundary data anywhere).

    Returns
    -------
    (u, lap_u, grad_u) : callables of ``(x, y)`` arrays; ``grad_u`` returns ``(u_x, u_y)``.
    """
    pa = np.pi * a
    if kind == "sin":
        return (lambda x, y: np.sin(pa * x) * np.sin(pa * y),
                lambda x, y: -2 * pa**2 * np.sin(pa * x) * np.sin(pa * y),
                lambda x, y: (pa * np.cos(pa * x) * np.sin(pa * y), pa * np.sin(pa * x) * np.cos(pa * y)))
    if kind == "cos":
        return (lambda x, y: np.cos(pa * x) * np.cos(pa * y),
                lambda x, y: -2 * pa**2 * np.cos(pa * x) * np.cos(pa * y),
                lambda x, y: (-pa * np.sin(pa * x) * np.cos(pa * y), -pa * np.cos(pa * x) * np.sin(pa * y)))
    if kind == "gauss":
        g = lambda x, y: np.exp(-(x**2 + y**2) / a**2)  # noqa: E731
        return (g,
                lambda x, y: g(x, y) * (4 * (x**2 + y**2) / a**4 - 4 / a**2),
                lambda x, y: (-2 * x / a**2 * g(x, y), -2 * y / a**2 * g(x, y)))
    raise ValueError(f"poisson_manufactured: kind must be 'sin', 'cos' or 'gauss', got {kind!r}.")
