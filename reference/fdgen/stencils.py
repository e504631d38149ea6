"""Finite-difference stencils as coefficient tables, and the 1-D matrices built from them.

Weights come from Fornberg's recursion (B. Fornberg, "Generation of finite
difference formulas on arbitrarily spaced grids", Math. Comp. 51, 1988),
so any derivative order on any window is one call. On a uniform node grid
with ``n`` points a derivative of order ``m`` to accuracy ``p`` uses

* the centred window (``2 floor((m + 1) / 2) - 1 + p`` points) where it fits,
* otherwise the nearest off-centre window of ``m + p`` points inside the grid
  (one-sided at the boundary nodes), which keeps order ``p``.

A periodic axis uses the centred window everywhere, wrapped.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["fd_weights", "derivative_matrix", "flux_matrix", "ORDERS", "MAX_DERIVATIVE"]

#: accuracy orders the stencil set provides
ORDERS = (2, 4)
#: highest derivative order per axis the stencil set provides
MAX_DERIVATIVE = 4


def fd_weights(offsets: np.ndarray, m: int) -> np.ndarray:
    """Weights ``w`` with ``sum_j w_j f(x0 + offsets_j h) ~ h^m f^(m)(x0)`` (Fornberg's recursion).

    Parameters
    ----------
    offsets : array (k,)
        Stencil points in units of the spacing, relative to the evaluation point.
    m : int
        Derivative order (``m < k``).

    Returns
    -------
    ndarray (k,) float64: the weights for spacing 1 (divide by ``h^m``).
    """
    z = np.asarray(offsets, dtype=float)
    k = len(z)
    if not 0 <= m < k:
        raise ValueError(f"fd_weights: derivative order {m} needs more than {k} points")
    c = np.zeros((k, m + 1))
    c1, c4 = 1.0, z[0]
    c[0, 0] = 1.0
    for i in range(1, k):
        mn = min(i, m)
        c2, c5, c4 = 1.0, c4, z[i]
        for j in range(i):
            c3 = z[i] - z[j]
            c2 *= c3
            if j == i - 1:
                for s in range(mn, 0, -1):
                    c[i, s] = c1 * (s * c[i - 1, s - 1] - c5 * c[i - 1, s]) / c2
                c[i, 0] = -c1 * c5 * c[i - 1, 0] / c2
            for s in range(mn, 0, -1):
                c[j, s] = (c4 * c[j, s] - s * c[j, s - 1]) / c3
            c[j, 0] = c4 * c[j, 0] / c3
        c1 = c2
    return c[:, m]


def _centred_width(m: int, p: int) -> int:
    return 2 * ((m + 1) // 2) - 1 + p


def derivative_matrix(n: int, h: float, m: int, p: int = 2, periodic: bool = False) -> sp.csr_matrix:
    """Sparse ``(n, n)`` matrix of the ``m``-th derivative on ``n`` uniform nodes of spacing ``h``.

    Parameters
    ----------
    n : int
        Nodes (for a periodic axis: the distinct nodes, the ``hi`` end excluded).
    h : float
        Spacing (length units).
    m : int
        Derivative order, 0..:data:`MAX_DERIVATIVE` (0 gives the identity).
    p : int
        Accuracy order, one of :data:`ORDERS`.
    periodic : bool
        Wrap the centred stencil around.
    """
    if p not in ORDERS:
        raise ValueError(f"accuracy order {p!r} is not in the stencil set; choose one of {list(ORDERS)}")
    if m == 0:
        return sp.identity(n, format="csr")
    if not 0 < m <= MAX_DERIVATIVE:
        raise ValueError(f"derivative order {m} is not in the stencil set (orders 1..{MAX_DERIVATIVE} per axis)")
    wc = _centred_width(m, p)
    half = wc // 2
    rows, cols, vals = [], [], []
    if periodic:
        if n < wc:
            raise ValueError(f"a periodic axis needs at least {wc} distinct nodes for this stencil, got {n}")
        w = fd_weights(np.arange(-half, half + 1), m) / h**m
        for i in range(n):
            rows += [i] * wc
            cols += [(i + o) % n for o in range(-half, half + 1)]
            vals += list(w)
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    wo = m + p
    if n < wo:
        raise ValueError(f"an axis needs at least {wo} nodes for derivative order {m} at accuracy {p}, got {n}")
    cache: dict[tuple[int, ...], np.ndarray] = {}
    for i in range(n):
        if half <= i < n - half:
            start, width = i - half, wc
        else:
            width = wo
            start = min(max(i - width // 2, 0), n - width)
        offs = tuple(range(start - i, start - i + width))
        if offs not in cache:
            cache[offs] = fd_weights(np.array(offs), m) / h**m
        rows += [i] * width
        cols += list(range(start, start + width))
        vals += list(cache[offs])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def flux_matrix(shape: tuple[int, ...], axis: int, a_half: np.ndarray, h: float, periodic: bool = False) -> sp.csr_matrix:
    """Conservative second difference along ``axis`` on a tensor grid (C-order flattening).

    ``(a_{i+1/2} (u_{i+1} - u_i) - a_{i-1/2} (u_i - u_{i-1})) / h^2`` at every node whose
    neighbours exist (all nodes on a periodic axis); rows of the two end nodes of a
    non-periodic axis are zero (boundary conditions own them).

    Parameters
    ----------
    shape : grid shape (nodes per axis; a periodic axis without its ``hi`` end).
    axis : int
    a_half : array
        ``a`` at the midpoints ``i + 1/2`` along ``axis``: ``shape`` with ``shape[axis] - 1``
        there (``shape[axis]`` when periodic: the last midpoint wraps).
    h : float
        Spacing along ``axis``.
    """
    n = shape[axis]
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    a = np.moveaxis(np.asarray(a_half), axis, 0)
    I = np.moveaxis(idx, axis, 0)  # noqa: E741
    if periodic:
        ap, am = a, np.roll(a, 1, axis=0)
        centre, plus, minus = I, np.roll(I, -1, axis=0), np.roll(I, 1, axis=0)
    else:
        ap, am = a[1:], a[:-1]
        centre, plus, minus = I[1:-1], I[2:], I[:-2]
    rows = np.concatenate([centre.ravel()] * 3)
    cols = np.concatenate([plus.ravel(), minus.ravel(), centre.ravel()])
    vals = np.concatenate([ap.ravel(), am.ravel(), -(ap + am).ravel()]) / h**2
    N = idx.size
    return sp.csr_matrix((vals, (rows, cols)), shape=(N, N))
