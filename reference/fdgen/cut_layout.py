"""The unknowns and derivative matrices of a composed 2-D region on the node grid over its
bounding box (:class:`CutLayout`): inside nodes, boundary points where grid lines cross the
boundary, 1-D Fornberg stencils along grid lines and least-squares rows at boundary points
(the method is described in :mod:`reference.fdgen.composed`).

No torch, no pinnsiren import: only numpy, scipy.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from .spec import SpecError
from .stencils import MAX_DERIVATIVE, ORDERS, fd_weights

if TYPE_CHECKING:
    from .composed import CutSpec

__all__ = ["CutLayout"]


class CutLayout:
    """Unknowns and derivative matrices of a composed 2-D region on the node grid over its bounding box.

    Attributes
    ----------
    n_in, n_b : inside nodes, boundary points; ``N = n_in + n_b`` unknowns, inside nodes first
        (grid C order), then boundary points.
    X : coordinates of the unknowns, per space axis (length N each).
    nodes : grid index (flattened) of each inside node; ``bnode``: grid index of each boundary
        point that is a grid node, else -1.
    """

    def __init__(self, spec: "CutSpec", shape: Any, order: int = 2) -> None:
        if order not in ORDERS:
            raise SpecError(f"order {order!r} is not in the stencil set; choose one of {list(ORDERS)}")
        axes = spec.space_axes
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),) * len(axes)
        shape = tuple(int(n) for n in shape)
        if len(shape) != len(axes):
            raise SpecError(f"grid shape {shape} has {len(shape)} sizes but there are {len(axes)} space coordinates")
        self.spec, self.order, self.axes, self.region = spec, order, axes, spec.region
        self.full_shape = shape
        self.bounds = [spec.bounds[k] for k in axes]
        self.h = [(hi - lo) / (n - 1) for (lo, hi), n in zip(self.bounds, shape)]
        self.lines = [lo + h * np.arange(n) for (lo, _), h, n in zip(self.bounds, self.h, shape)]
        G = np.stack([m.ravel() for m in np.meshgrid(*self.lines, indexing="ij")], 1)
        ins = np.asarray(self.region.inside(G), dtype=bool).reshape(shape)
        ins[0, :] = ins[-1, :] = ins[:, 0] = ins[:, -1] = False  # the bounding box's edge holds no inside node
        if ins.sum() < 4:
            raise SpecError(f"the grid {shape} has {int(ins.sum())} nodes inside the region; refine it")
        self.inside_mask = ins
        self.nodes = np.flatnonzero(ins.ravel())
        self.n_in = len(self.nodes)
        self.node_id = np.full(ins.size, -1)
        self.node_id[self.nodes] = np.arange(self.n_in)
        self._cuts(G)
        self.N = self.n_in + self.n_b
        P = np.concatenate([G[self.nodes], self.bpoints])
        self.X = [P[:, a] for a in range(2)]
        self.points = P
        self.boundary = np.arange(self.N) >= self.n_in
        # what System / the solvers read from a layout (the state is a flat list, not a tensor grid)
        self.shape = (self.N,)
        self.periodic = [False]
        self.faces: dict = {}

    def _cuts(self, G: np.ndarray) -> None:
        """Boundary points on the grid edges from inside nodes to nodes that are not inside."""
        ins, shape = self.inside_mask, self.full_shape
        self.cut_s = {}  # (axis, dir) -> (grid array of s, nan where the edge is not cut)
        self.cut_b = {}  # (axis, dir) -> (grid array of boundary point index, -1)
        found = []
        for a in range(2):
            for dirn in (-1, 1):
                nb = np.zeros_like(ins)
                sl_dst = [slice(None)] * 2
                sl_src = [slice(None)] * 2
                sl_dst[a] = slice(None, -1) if dirn == 1 else slice(1, None)
                sl_src[a] = slice(1, None) if dirn == 1 else slice(None, -1)
                nb[tuple(sl_dst)] = ins[tuple(sl_src)]
                src = ins & ~nb
                idx = np.flatnonzero(src.ravel())
                step = (shape[1] if a == 0 else 1) * dirn
                p, q = G[idx], G[idx + step]
                s = np.asarray(self.region.crossing(p, q), dtype=float)
                if np.any(~(s > 0) | (s > 1)):
                    raise SpecError("the region's crossing() returned fractions outside (0, 1]")
                found.append((a, dirn, idx, s, p + s[:, None] * (q - p), idx + step))
        X = np.concatenate([f[4] for f in found])
        hmin = min(self.h)
        key = np.round(X / (1e-7 * hmin)).astype(np.int64)
        _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inv = inv.ravel()
        self.bpoints = X[first]
        self.n_b = len(first)
        # a boundary point that is a grid node (crossing at s = 1)
        bnode = np.full(self.n_b, -1)
        start = 0
        for a, dirn, idx, s, _, nbr in found:
            sl = slice(start, start + len(idx))
            bid = inv[sl]
            S = np.full(ins.size, np.nan)
            B = np.full(ins.size, -1)
            S[idx], B[idx] = s, bid
            self.cut_s[(a, dirn)], self.cut_b[(a, dirn)] = S, B
            at_node = s == 1.0
            bnode[bid[at_node]] = nbr[at_node]
            start += len(idx)
        self.bnode = bnode

    # ---------------------------------------------------------- stencils
    def _width(self, m: int) -> int:
        return 2 * ((m + 1) // 2) - 1 + self.order

    @functools.lru_cache(maxsize=None)
    def _inside_rows(self, a: int, m: int) -> sp.csr_matrix:
        """Rows (n_in, N) of d^m/dx_a^m at the inside nodes (cut 1-D Fornberg stencils)."""
        w = self._width(m)
        half = w // 2
        shape = self.full_shape
        ins = self.inside_mask
        h = self.h[a]
        stride = shape[1] if a == 0 else 1
        # regular nodes: the centred window lies inside
        ok = ins.copy()
        for k in range(1, half + 1):
            for dirn in (-1, 1):
                sh = np.zeros_like(ins)
                dst, src = [slice(None)] * 2, [slice(None)] * 2
                dst[a] = slice(None, -k) if dirn == 1 else slice(k, None)
                src[a] = slice(k, None) if dirn == 1 else slice(None, -k)
                sh[tuple(dst)] = ins[tuple(src)]
                ok &= sh
        reg = np.flatnonzero(ok.ravel())
        wc = fd_weights(np.arange(-half, half + 1), m) / h**m
        rows = [np.repeat(self.node_id[reg], w)]
        cols = [self.node_id[(reg[:, None] + stride * np.arange(-half, half + 1)[None]).ravel()]]
        vals = [np.tile(wc, len(reg))]
        # nodes near the boundary: walk each way to the boundary, keep the w points nearest the node
        near = np.flatnonzero((ins & ~ok).ravel())
        r2, c2, v2 = [], [], []
        cache: dict[tuple, np.ndarray] = {}
        for g in near:
            offs, cs = [0.0], [self.node_id[g]]
            for dirn in (-1, 1):
                cur = g
                for k in range(1, w):
                    s = self.cut_s[(a, dirn)][cur]
                    if not np.isnan(s):
                        offs.append(dirn * (k - 1 + s))
                        cs.append(self.n_in + self.cut_b[(a, dirn)][cur])
                        break
                    cur = cur + dirn * stride
                    offs.append(float(dirn * k))
                    cs.append(self.node_id[cur])
            order = np.argsort(np.abs(offs), kind="stable")[:w]
            if len(order) < m + 1:
                x0 = self.points[self.node_id[g]]
                raise SpecError(
                    f"the grid is too coarse near ({x0[0]:.6g}, {x0[1]:.6g}): {len(order)} points on the grid line "
                    f"through it inside the region, a derivative of order {m} needs {m + 1}; refine the grid")
            o = np.asarray(offs)[order]
            key = tuple(np.round(o, 14))
            if key not in cache:
                cache[key] = fd_weights(o, m) / h**m
            r2.append(np.full(len(order), self.node_id[g]))
            c2.append(np.asarray(cs)[order])
            v2.append(cache[key])
        if r2:
            rows.append(np.concatenate(r2))
            cols.append(np.concatenate(c2))
            vals.append(np.concatenate(v2))
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(self.n_in, self.N))

    @functools.cached_property
    def _fit(self) -> tuple[list, np.ndarray, np.ndarray]:
        """Least squares at the boundary points: ``u(x) ~ u_b + sum_alpha c_alpha ((x - b) / h)^alpha`` over
        monomials of degree 1..order through the nearest inside nodes in view. Returns the exponents,
        the node columns ``(n_b, K)`` and the pseudo-inverses ``(n_b, M, K)`` mapping ``u_j - u_b`` to ``c``."""
        q = self.order
        exps = [(i, d - i) for d in range(1, q + 1) for i in range(d, -1, -1)]
        K = 2 * len(exps) + 2
        hs = np.asarray(self.h)
        inner = self.points[: self.n_in]
        tree = cKDTree(inner / hs)
        B = self.bpoints
        kq = min(3 * K, self.n_in)
        _, nbr = tree.query(B / hs, k=kq)
        nbr = np.atleast_2d(nbr)
        # in view: the midpoint of the segment from the boundary point to the node is inside the region
        mid = 0.5 * (B[:, None, :] + inner[nbr])
        seen = np.asarray(self.region.inside(mid.reshape(-1, 2)), dtype=bool).reshape(nbr.shape)
        rank = np.where(seen, np.arange(kq)[None], kq + np.arange(kq)[None])
        pick = np.argsort(rank, axis=1, kind="stable")[:, :K]
        cols = np.take_along_axis(nbr, pick, 1)
        nseen = seen.sum(1)
        if np.any(nseen < len(exps) + 1):
            b = B[np.argmin(nseen)]
            raise SpecError(f"the grid is too coarse near the boundary point ({b[0]:.6g}, {b[1]:.6g}): "
                            f"{int(nseen.min())} inside nodes in view, a derivative there needs {len(exps) + 1}; refine it")
        d = (inner[cols] - B[:, None, :]) / hs  # (n_b, K, 2) in units of h
        A = np.stack([d[..., 0] ** i * d[..., 1] ** j for i, j in exps], -1)  # (n_b, K, M)
        wts = np.where(np.take_along_axis(seen, pick, 1), 1.0 / (1.0 + np.sum(d**2, -1)), 0.0)
        Aw = A * wts[..., None]
        pinv = np.linalg.pinv(Aw) * wts[:, None, :]  # (n_b, M, K): c = pinv @ (u_j - u_b)
        return exps, cols, pinv

    @functools.lru_cache(maxsize=None)
    def _boundary_rows(self, alpha: tuple[int, ...]) -> sp.csr_matrix:
        """Rows (n_b, N) of D^alpha at the boundary points (identity for alpha = 0)."""
        nb = self.n_b
        own = self.n_in + np.arange(nb)
        if sum(alpha) == 0:
            return sp.csr_matrix((np.ones(nb), (np.arange(nb), own)), shape=(nb, self.N))
        exps, cols, pinv = self._fit
        if tuple(alpha) not in exps:
            raise SpecError(f"a derivative of total order {sum(alpha)} at the boundary exceeds the boundary fit's degree "
                            f"{self.order}; use order=4 or a condition with lower derivatives")
        j = exps.index(tuple(alpha))
        scale = math.factorial(alpha[0]) * math.factorial(alpha[1]) / (self.h[0] ** alpha[0] * self.h[1] ** alpha[1])
        W = scale * pinv[:, j, :]  # (n_b, K)
        rows = np.concatenate([np.repeat(np.arange(nb), W.shape[1]), np.arange(nb)])
        cc = np.concatenate([cols.ravel(), own])
        vals = np.concatenate([W.ravel(), -W.sum(1)])
        return sp.csr_matrix((vals, (rows, cc)), shape=(nb, self.N))

    @functools.lru_cache(maxsize=None)
    def d1(self, a: int, m: int) -> sp.csr_matrix:
        alpha = [0, 0]
        alpha[a] = m
        return sp.vstack([self._inside_rows(a, m), self._boundary_rows(tuple(alpha))]).tocsr()

    @functools.lru_cache(maxsize=None)
    def matrix(self, alpha: tuple[int, ...]) -> sp.csr_matrix:
        """``D^alpha`` on the unknowns, shape (N, N): cut stencils at inside nodes, the fit at boundary points."""
        alpha = tuple(int(m) for m in alpha)
        if sum(alpha) == 0:
            return sp.identity(self.N, format="csr")
        for m in alpha:
            if m > MAX_DERIVATIVE:
                raise SpecError(f"derivative order {m} per axis is not in the stencil set (up to {MAX_DERIVATIVE})")
        M = None
        for a, m in enumerate(alpha):
            if m:
                M = self.d1(a, m) if M is None else M @ self.d1(a, m)
        return sp.vstack([M[: self.n_in], self._boundary_rows(alpha)]).tocsr()
