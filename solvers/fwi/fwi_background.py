"""Background fields ``u0`` for scattered-field formulations, and an interpolant accurate near the source.

``u = u0 + us`` with ``u0`` the field of the same Gaussian source in a
background medium ``m0`` (``H(m0) u0 = -f``): :func:`background_fields` solves
it with the 9-point FD scheme (one LU for all sources; ``m0`` a number, an
``(n, n)`` array or a callable). :class:`CubicInterpolant` samples node values
at arbitrary points by tensor-product 4-point Lagrange interpolation (exact for
bicubic polynomials, O(h^4) for smooth fields): near the paper's narrow source
(std 0.01, about 1.3 nodes of a 256^2 grid) bilinear interpolation loses
several percent of the field where cubic keeps it (measured in
``benchmarks/helmholtz_background.py``, docs/benchmarks.md).
Values are torch tensors so the interpolant plugs into a compiled residual as
a coefficient callable ``x -> (N,)``; it is differentiable in ``x`` by autograd.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from pinnsiren.geometry import Region

__all__ = ["CubicInterpolant", "GridSupport", "background_fields", "local_background", "scatterer_support", "smoothed"]


class CubicInterpolant(nn.Module):
    """4-point Lagrange (tensor-product cubic) interpolation of node values on a square grid.

    Parameters
    ----------
    values : array (n_x, n_y), real or complex
        Node values, ``values[i, j]`` at ``(lo_0 + i h_0, lo_1 + j h_1)``.
    bounds : ((lo_0, hi_0), (lo_1, hi_1))

    Notes
    -----
    Each point uses the 4 x 4 nodes around its cell (the stencil is shifted
    inwards next to the grid edge); points outside the box are clamped to it.
    Call with ``x`` (N, 2); returns (N,).
    """

    def __init__(self, values: np.ndarray | torch.Tensor, bounds: Sequence[Sequence[float]]) -> None:
        super().__init__()
        v = torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values)
        if v.ndim != 2 or min(v.shape) < 4:
            raise ValueError(f"CubicInterpolant needs 2-D values with >= 4 nodes per axis, got {tuple(v.shape)}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError("CubicInterpolant values contain non-finite entries")
        if not (v.is_complex() or v.is_floating_point()):
            v = v.to(torch.float64)
        self.register_buffer("values", v)
        self.register_buffer("lo", torch.tensor([float(b[0]) for b in bounds], dtype=torch.float64))
        self.register_buffer("hi", torch.tensor([float(b[1]) for b in bounds], dtype=torch.float64))
        self.shape = tuple(v.shape)

    @staticmethod
    def _weights(t: torch.Tensor) -> list[torch.Tensor]:
        # Lagrange basis on the nodes -1, 0, 1, 2 at offset t
        return [-t * (t - 1) * (t - 2) / 6, (t + 1) * (t - 1) * (t - 2) / 2,
                -(t + 1) * t * (t - 2) / 2, (t + 1) * t * (t - 1) / 6]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x)
        xd = x.to(torch.float64)
        lo, hi = self.lo.to(xd.device), self.hi.to(xd.device)
        n = torch.tensor(self.shape, device=xd.device)
        h = (hi - lo) / (n - 1)
        xc = torch.minimum(torch.maximum(xd, lo), hi)
        t = (xc - lo) / h
        i = torch.clamp(torch.floor(t.detach()).long(), 1, None)
        i = torch.minimum(i, n - 3)
        f = t - i
        wx, wy = self._weights(f[:, 0]), self._weights(f[:, 1])
        vals = self.values.to(xd.device)
        out = 0
        for a in range(4):
            ia = i[:, 0] - 1 + a
            for b in range(4):
                out = out + wx[a] * wy[b] * vals[ia, i[:, 1] - 1 + b]
        if not out.is_complex():
            return out.to(x.dtype) if x.is_floating_point() else out
        return out.to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)


def local_background(m: Callable[[np.ndarray, np.ndarray], np.ndarray], sources: np.ndarray, radius: float = 0.15
                     ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``m0 = m`` within ``radius`` of every source, 1 elsewhere.

    The scattered-field source term ``k^2 e_x e_y (m - m0) u0`` then vanishes
    around the point sources, so ``us`` never inherits their near field (needed
    when a source sits inside a layer or inclusion).
    """
    src = np.atleast_2d(np.asarray(sources, float))

    def m0(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        near = np.zeros(np.broadcast(X, Y).shape, bool)
        for s in src:
            near |= (X - s[0]) ** 2 + (Y - s[1]) ** 2 < radius**2
        return np.where(near, np.broadcast_to(np.asarray(m(X, Y), float), near.shape), 1.0)

    return m0


def background_fields(sources: np.ndarray, k: float, source_var: float, n: int, m0: Any = 1.0,
                      unit_mass: bool = False, **op_kwargs: Any) -> list[Any]:
    """9-point FD background fields ``H(m0) u0_s = -f_s`` for every source (one LU).

    Parameters
    ----------
    sources : array (ns, 2)
    k, source_var : float
    n : int
        Nodes per axis of the FD grid on ``[-1, 1]^2``.
    m0 : float, (n, n) array or callable ``m0(x, y)``
    unit_mass : bool
        Renormalise each Gaussian to unit discrete mass (as ``reference.fwi`` does);
        False (default) samples ``exp(-r^2 / 2 s^2) / (2 pi s^2)`` as ``reference.solve_helmholtz``.

    Returns
    -------
    list of reference.GridField (n, n), complex128.
    """
    from reference import GridField
    from reference.helmholtz import HelmholtzOperator, gaussian_source

    op = HelmholtzOperator(n, k, m0, scheme=9, **op_kwargs)
    hx, hy = op.grid.spacing
    cols = []
    for s in np.atleast_2d(np.asarray(sources, float)):
        f = gaussian_source(op.grid, (float(s[0]), float(s[1])), source_var)
        if unit_mass:
            f = f / (f.sum() * hx * hy)
        cols.append(op.interior(f.astype(np.complex128)))
    U = op.solve(np.stack(cols, 1))
    return [GridField(op.grid, op.to_full(U[:, i]), dict(op.params(), source_center=list(map(float, s)),
                                                          source_var=source_var))
            for i, s in enumerate(np.atleast_2d(sources))]


class GridSupport(Region):
    """Uniform samples of the union of grid cells around the nodes where ``mask`` is True.

    Parameters
    ----------
    mask : bool array (n_x, n_y)
        Node mask on the grid ``lo + i h`` spanning ``bounds``.
    bounds : ((lo_0, hi_0), (lo_1, hi_1))

    Attributes
    ----------
    area : float
        Area of the sampled set (cells of side ``h`` centred on the masked nodes, clipped to the box).
    """

    dim = 2

    def __init__(self, mask: np.ndarray, bounds: Sequence[Sequence[float]]) -> None:
        mask = np.asarray(mask, bool)
        if mask.ndim != 2 or not mask.any():
            raise ValueError("GridSupport needs a 2-D mask with at least one True node")
        lo = np.array([b[0] for b in bounds], float)
        hi = np.array([b[1] for b in bounds], float)
        self.h = (hi - lo) / (np.array(mask.shape) - 1)
        idx = np.argwhere(mask)
        self.centers = torch.as_tensor(lo + idx * self.h, dtype=torch.float64)
        self.lo, self.hi = torch.as_tensor(lo), torch.as_tensor(hi)
        cell_lo = np.maximum(lo + idx * self.h - self.h / 2, lo)
        cell_hi = np.minimum(lo + idx * self.h + self.h / 2, hi)
        self.area = float(np.prod(cell_hi - cell_lo, 1).sum())

    def sample(self, n: int | None, step: int, generator: torch.Generator | None) -> tuple[torch.Tensor, dict]:
        n = int(n or 1)
        i = torch.randint(len(self.centers), (n,), generator=generator)
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5
        x = self.centers[i] + u * torch.as_tensor(self.h)
        return torch.minimum(torch.maximum(x, self.lo), self.hi), {}


def scatterer_support(m: Any, m0: Any, n: int = 257, margin: float = 0.05,
                      bounds: Sequence[Sequence[float]] = ((-1.0, 1.0), (-1.0, 1.0))) -> GridSupport | None:
    """Where the scattered-field source ``k^2 e_x e_y (m - m0) u0`` lives, widened by ``margin``.

    ``m``, ``m0``: numbers or callables ``f(X, Y)``. Returns None where ``m = m0`` everywhere.
    The support is sampled on an ``n x n`` node grid, dilated by ``margin`` (a disc of nodes).
    """
    xs = [np.linspace(b[0], b[1], n) for b in bounds]
    X, Y = np.meshgrid(*xs, indexing="ij")

    def ev(f: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(f(X, Y) if callable(f) else f, float), X.shape)

    mask = np.abs(ev(m) - ev(m0)) > 1e-12
    if not mask.any():
        return None
    h = (bounds[0][1] - bounds[0][0]) / (n - 1)
    r = int(math.ceil(margin / h))
    if r > 0:
        ii, jj = np.nonzero(mask)
        grown = mask.copy()
        for di in range(-r, r + 1):
            for dj in range(-r, r + 1):
                if di * di + dj * dj <= r * r:
                    a = np.clip(ii + di, 0, n - 1)
                    b = np.clip(jj + dj, 0, n - 1)
                    grown[a, b] = True
        mask = grown
    return GridSupport(mask, bounds)


def smoothed(m: Callable[[np.ndarray, np.ndarray], np.ndarray], width: float, n: int = 513,
             bounds: Sequence[Sequence[float]] = ((-1.0, 1.0), (-1.0, 1.0))) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``m`` convolved with a Gaussian of standard deviation ``width``, as a callable ``f(X, Y)``.

    Sampled on an ``n x n`` node grid, filtered (``scipy.ndimage.gaussian_filter``,
    nearest-value edges) and read back with :class:`CubicInterpolant`. A strong-form
    residual needs a smooth coefficient: across a jump of ``m`` the exact field's
    second derivatives jump, which no smooth network matches.
    """
    from scipy.ndimage import gaussian_filter

    xs = [np.linspace(b[0], b[1], n) for b in bounds]
    X, Y = np.meshgrid(*xs, indexing="ij")
    M = np.broadcast_to(np.asarray(m(X, Y), float), X.shape)
    h = (bounds[0][1] - bounds[0][0]) / (n - 1)
    interp = CubicInterpolant(gaussian_filter(M, width / h, mode="nearest"), bounds)

    def f(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        Xb, Yb = np.broadcast_arrays(np.asarray(X, float), np.asarray(Y, float))
        pts = torch.as_tensor(np.stack([Xb.ravel(), Yb.ravel()], 1))
        with torch.no_grad():
            return interp(pts).numpy().reshape(Xb.shape)

    return f
