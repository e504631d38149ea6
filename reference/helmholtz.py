"""Helmholtz equation with a perfectly matched layer (PML), finite differences.

Equation (SIREN supplement, Eq. 11), on ``[-W, W]^2`` (``W = half_width``)::

    d/dx(e_y/e_x du/dx) + d/dy(e_x/e_y du/dy) + e_x e_y k^2 m u = -f

with ``e_x = 1 - i a0 (l_x / L)^2``, ``l_x = max(|x| - (W - L), 0)``, ``L =
pml_width`` (likewise for y), ``m = 1/c^2`` (squared slowness) and ``u = 0`` on
the outer boundary.  Defaults are the paper's: ``W = 1``, ``L = 0.5``,
``a0 = 5``.

**Time-sign convention.**  ``e = 1 - i s`` damps ``exp(-i k x)``, so outgoing
waves behave like ``exp(-i k r)`` (time factor ``exp(+i omega t)``).  The
free-space solution of ``Lap u + k^2 u = -delta`` is therefore
``conj((i/4) H0^(1)(k r)) = -(i/4) H0^(2)(k r)``.

Discretization (node grid with ``n`` points per axis; the ``(n-2)^2`` interior
nodes are unknowns, flat index ``i * (n-2) + j``, ``i`` along x):

* ``scheme=5``: standard conservative 5-point stencil, point mass.
* ``scheme=9``: the optimal 9-point scheme of Chen, Cheng, Feng & Wu (2013):
  each second-difference is averaged over the three neighbouring lines with
  weights ``(1-b)/2, b, (1-b)/2`` and the mass term is spread over the 3x3 block
  with weights ``c`` (centre), ``d/4`` (edges), ``e/4`` (corners), ``c = 1-d-e``.
  ``b, d, e`` are fitted here (``reference.ninepoint``) to minimise the phase
  error over all angles and 4..400 points per wavelength.

The linear system is ``A u = f`` with ``A = -(L_h + k^2 W_h diag(C m))``; it
is affine in ``m``: ``A(m) = A0 + B diag(m)`` (see :meth:`HelmholtzOperator.dA_dm`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .factor import SparseLU
from .grid import Grid, GridField
from .ninepoint import OPTIMAL_WEIGHTS

__all__ = ["HelmholtzOperator", "gaussian_source", "pml_profile", "solve_helmholtz"]

ModelLike = float | np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]


def pml_profile(x: np.ndarray, half_width: float = 1.0, pml_width: float = 0.5, a0: float = 5.0) -> np.ndarray:
    """PML stretching ``e(x) = 1 - i a0 (l/L)^2``, ``l = max(|x| - (W - L), 0)``.

    Parameters
    ----------
    x : ndarray, any shape (length units)

    Returns
    -------
    ndarray, same shape, complex128 (equals 1 outside the PML).
    """
    l = np.maximum(np.abs(x) - (half_width - pml_width), 0.0)
    return 1.0 - 1j * a0 * (l / pml_width) ** 2


def gaussian_source(grid: Grid, x0: tuple[float, float] = (0.0, 0.0), var: float = 1e-4) -> np.ndarray:
    """Unit-mass Gaussian ``exp(-|x - x0|^2 / (2 var)) / (2 pi var)`` on ``grid``.

    Parameters
    ----------
    grid : Grid (2-D)
    x0 : (float, float)
        Centre (length units).
    var : float
        Variance ``s^2`` (length^2); default 1e-4 as in the paper.

    Returns
    -------
    ndarray, shape ``grid.shape``, float64 (1/length^2).
    """
    if var <= 0:
        raise ValueError(f"gaussian_source: variance must be > 0, got {var}.")
    X, Y = grid.coords()
    r2 = (X - x0[0]) ** 2 + (Y - x0[1]) ** 2
    return np.exp(-r2 / (2 * var)) / (2 * np.pi * var)


def _model_on_grid(m: ModelLike, grid: Grid) -> np.ndarray:
    if callable(m):
        X, Y = grid.coords()
        out = np.asarray(m(X, Y), dtype=float)
        out = np.broadcast_to(out, grid.shape).copy()
    elif np.isscalar(m):
        out = np.full(grid.shape, float(m))
    else:
        out = np.asarray(m, dtype=float)
        if out.shape != grid.shape:
            raise ValueError(
                f"Helmholtz: slowness array has shape {out.shape}, expected the full node grid {grid.shape} "
                "(boundary nodes included); resample it or pass a callable m(x, y)."
            )
    if not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise ValueError("Helmholtz: squared slowness m = 1/c^2 must be finite and > 0 everywhere.")
    return out


class HelmholtzOperator:
    """Assembled PML Helmholtz matrix with a reusable factorization.

    Parameters
    ----------
    n : int
        Points per axis of the node grid (boundary included); ``(n-2)^2`` unknowns.
    k : float
        Wavenumber (rad / length unit); with ``m = 1/c^2`` the local wavenumber is ``k sqrt(m)``.
    m : float, ndarray of shape (n, n), or callable ``m(x, y)``
        Squared slowness, default 1 (homogeneous medium).
    scheme : {5, 9}
        Stencil; see the module docstring.
    half_width, pml_width, a0 : float
        Domain ``[-half_width, half_width]^2``, PML thickness and strength.
    ordering : {"nd", "colamd"}
        Fill-reducing ordering for the LU factorization: geometric nested
        dissection (default, fast) or SuperLU's COLAMD (the scipy baseline).
    weights : (b, d, e), optional
        9-point weights; default :data:`reference.ninepoint.OPTIMAL_WEIGHTS`.

    Attributes
    ----------
    grid : Grid
        The full ``n x n`` node grid.
    A : scipy.sparse.csr_matrix, shape (N, N), complex128, ``N = (n-2)^2``.
    """

    def __init__(
        self,
        n: int,
        k: float,
        m: ModelLike = 1.0,
        scheme: int = 9,
        half_width: float = 1.0,
        pml_width: float = 0.5,
        a0: float = 5.0,
        ordering: str = "nd",
        weights: tuple[float, float, float] | None = None,
    ) -> None:
        if scheme not in (5, 9):
            raise ValueError(f"HelmholtzOperator: scheme must be 5 or 9, got {scheme!r}.")
        if n < 5:
            raise ValueError(f"HelmholtzOperator: need n >= 5 points per axis, got {n}.")
        if not 0 < pml_width < half_width:
            raise ValueError(
                f"HelmholtzOperator: need 0 < pml_width < half_width, got pml_width={pml_width}, half_width={half_width}."
            )
        if ordering not in ("nd", "colamd"):
            raise ValueError(f"HelmholtzOperator: ordering must be 'nd' or 'colamd', got {ordering!r}.")
        self.n, self.k, self.scheme = int(n), float(k), int(scheme)
        self.half_width, self.pml_width, self.a0 = float(half_width), float(pml_width), float(a0)
        self.ordering = ordering
        self.weights = tuple(weights) if weights is not None else (OPTIMAL_WEIGHTS if scheme == 9 else (1.0, 0.0, 0.0))
        if scheme == 5:
            self.weights = (1.0, 0.0, 0.0)
        self.grid = Grid.square(self.n, self.half_width)
        self.N = (self.n - 2) ** 2
        self._assemble_parts()
        self.set_model(m)

    # ------------------------------------------------------------ assembly
    def _assemble_parts(self) -> None:
        n, (hx, hy) = self.n, self.grid.spacing
        x, y = self.grid.axes()
        ni = n - 2
        prof = lambda t: pml_profile(t, self.half_width, self.pml_width, self.a0)  # noqa: E731
        ex, ey = prof(x), prof(y)
        ex_half, ey_half = prof(0.5 * (x[1:] + x[:-1])), prof(0.5 * (y[1:] + y[:-1]))  # index p -> p+1/2
        b, d, e = self.weights
        c = 1.0 - d - e
        I = np.arange(1, n - 1)[:, None]  # noqa: E741  interior x index (full grid)
        J = np.arange(1, n - 1)[None, :]
        line_w = {-1: (1 - b) / 2, 0: b, 1: (1 - b) / 2}
        stiff: dict[tuple[int, int], np.ndarray] = {}

        def add(store: dict, key: tuple[int, int], val: np.ndarray) -> None:
            store[key] = store.get(key, 0) + np.broadcast_to(val, (ni, ni))

        for r, wr in line_w.items():
            if wr == 0:
                continue
            # x-part on line j + r:  a = e_y(y_{j+r}) / e_x(x_{i +- 1/2})
            ap = ey[J + r] / ex_half[I] / hx**2
            am = ey[J + r] / ex_half[I - 1] / hx**2
            add(stiff, (1, r), wr * ap)
            add(stiff, (-1, r), wr * am)
            add(stiff, (0, r), -wr * (ap + am))
            # y-part on line i + r:  a = e_x(x_{i+r}) / e_y(y_{j +- 1/2})
            bp = ex[I + r] / ey_half[J] / hy**2
            bm = ex[I + r] / ey_half[J - 1] / hy**2
            add(stiff, (r, 1), wr * bp)
            add(stiff, (r, -1), wr * bm)
            add(stiff, (r, 0), -wr * (bp + bm))
        mass_w = {(0, 0): c}
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            mass_w[(di, dj)] = d / 4
        for di, dj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            mass_w[(di, dj)] = e / 4
        C = ex[:, None] * ey[None, :]  # (n, n) full grid
        mass: dict[tuple[int, int], np.ndarray] = {}
        for (di, dj), w in mass_w.items():
            if w != 0:
                add(mass, (di, dj), w * C[I + di, J + dj])
        self._C = C
        self.A0 = -self._to_matrix(stiff)  # stiffness part, A0 = -L_h
        # B = dA/dm (columns scaled by C at the column node): A = A0 + B diag(m_interior)
        self.B = -(self.k**2) * self._to_matrix(mass)

    def _to_matrix(self, entries: dict[tuple[int, int], np.ndarray]) -> sp.csr_matrix:
        ni = self.n - 2
        ii, jj = np.meshgrid(np.arange(ni), np.arange(ni), indexing="ij")
        rows, cols, vals = [], [], []
        for (di, dj), v in entries.items():
            ti, tj = ii + di, jj + dj
            ok = (ti >= 0) & (ti < ni) & (tj >= 0) & (tj < ni)  # boundary nodes carry u = 0
            rows.append((ii * ni + jj)[ok])
            cols.append((ti * ni + tj)[ok])
            vals.append(np.asarray(v)[ok])
        A = sp.coo_matrix(
            (np.concatenate(vals).astype(np.complex128), (np.concatenate(rows), np.concatenate(cols))),
            shape=(ni * ni, ni * ni),
        )
        return A.tocsr()

    def set_model(self, m: ModelLike) -> None:
        """Set the squared slowness (re-assembles ``A``, drops the factorization).

        Parameters
        ----------
        m : float, ndarray (n, n), or callable ``m(x, y)`` (time^2 / length^2).
        """
        self.m = _model_on_grid(m, self.grid)
        self.A = (self.A0 + self.B @ sp.diags(self.interior(self.m))).tocsr()
        self._lu: SparseLU | None = None

    # ----------------------------------------------------- FWI interface
    def dA_dm(self) -> sp.csr_matrix:
        """``B`` with ``A(m) = A0 + B diag(m_int)``, shape (N, N).

        So ``d(A u)/dm = B diag(u)`` and the FWI gradient of
        ``J = 0.5 ||R u - d||^2`` is ``-Re(conj(B diag(u))^T lam)`` with
        ``A^H lam = R^T (R u - d)``.  ``B`` is diagonal for the 5-point scheme
        and 9-banded (3x3 mass stencil) for the 9-point scheme.
        """
        return self.B

    def m_coefficient(self) -> np.ndarray:
        """Diagonal of ``dA/dm``: ``-k^2 c e_x e_y`` at each unknown, shape (N,).

        For ``scheme=5`` this *is* ``dA/dm`` (diagonal); for ``scheme=9`` use
        :meth:`dA_dm` for the full 3x3 mass stencil.
        """
        return self.B.diagonal()

    # ------------------------------------------------------------ helpers
    def interior(self, full: np.ndarray) -> np.ndarray:
        """Interior values of a full ``(n, n)`` grid array, flattened to ``(N,)``."""
        full = np.asarray(full)
        if full.shape[:2] != (self.n, self.n):
            raise ValueError(f"interior: expected leading shape ({self.n}, {self.n}), got {full.shape}.")
        return full[1:-1, 1:-1].reshape(self.N, *full.shape[2:])

    def to_full(self, u: np.ndarray) -> np.ndarray:
        """Embed interior unknowns ``(N,)`` into the ``(n, n)`` grid with zeros on the boundary."""
        out = np.zeros((self.n, self.n), dtype=np.result_type(u, np.complex128))
        out[1:-1, 1:-1] = np.asarray(u).reshape(self.n - 2, self.n - 2)
        return out

    def receiver_matrix(self, points: np.ndarray) -> sp.csr_matrix:
        """Bilinear sampling of the unknowns at ``points`` (nrec, 2): sparse (nrec, N).

        ``R @ u`` equals ``op.to_full(u)`` sampled with :meth:`GridField.sample`
        (boundary nodes are zero and drop out); ``R.T @ r`` spreads adjoint sources.
        """
        R = self.grid.interpolation_matrix(points).tocsc()
        inner = np.zeros(self.grid.shape, dtype=bool)
        inner[1:-1, 1:-1] = True
        return R[:, np.flatnonzero(inner.ravel())].tocsr()

    def params(self) -> dict[str, Any]:
        """Parameters describing this operator (for GridField.params)."""
        return {
            "equation": "helmholtz_pml", "n": self.n, "k": self.k, "scheme": self.scheme,
            "half_width": self.half_width, "pml_width": self.pml_width, "a0": self.a0,
            "weights_bde": list(self.weights), "convention": "outgoing = conj((i/4) H0^(1)(kr)), e = 1 - i s",
        }

    # -------------------------------------------------------------- solves
    def factorize(self) -> "HelmholtzOperator":
        """LU-factorize ``A`` once (single BLAS thread); reused by all solves."""
        if self._lu is None:
            self._lu = SparseLU(self.A, ordering=self.ordering, grid_shape=(self.n - 2, self.n - 2))
        return self

    def _check_rhs(self, rhs: np.ndarray) -> np.ndarray:
        rhs = np.asarray(rhs)
        if rhs.shape[:2] == (self.n, self.n) and rhs.shape[0] != self.N:
            raise ValueError(
                f"HelmholtzOperator: rhs has the full grid shape {rhs.shape}; solve() takes interior "
                f"vectors of length N = {self.N}: pass op.interior(f), or use op.solve_source(f)."
            )
        if rhs.ndim not in (1, 2) or rhs.shape[0] != self.N:
            raise ValueError(f"HelmholtzOperator: rhs must have shape (N,) or (N, nsrc) with N = {self.N}, got {rhs.shape}.")
        return rhs

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solve ``A u = rhs``; ``rhs`` of shape (N,) or (N, nsrc), complex128 result of the same shape."""
        return self.factorize()._lu.solve(self._check_rhs(rhs))  # type: ignore[union-attr]

    def solve_adjoint(self, rhs: np.ndarray) -> np.ndarray:
        """Solve ``A^H v = rhs`` with the same factorization; (N,) or (N, nsrc)."""
        return self.factorize()._lu.solve(self._check_rhs(rhs), adjoint=True)  # type: ignore[union-attr]

    def solve_source(self, f: np.ndarray) -> GridField:
        """Field for a source ``f`` given on the full ``(n, n)`` grid (equation RHS is ``-f``).

        Returns
        -------
        GridField on the ``n x n`` grid, complex128, zero on the outer boundary.
        """
        u = self.solve(self.interior(np.asarray(f, dtype=np.complex128)))
        return GridField(self.grid, self.to_full(u), self.params())


def solve_helmholtz(
    n: int = 256,
    k: float = 20.0,
    m: ModelLike = 1.0,
    source: np.ndarray | tuple[float, float] = (0.0, 0.0),
    var: float = 1e-4,
    scheme: int = 9,
    **kwargs: Any,
) -> GridField:
    """One-shot solve: Gaussian source at ``source`` (or a full-grid source array).

    Returns
    -------
    GridField, shape (n, n), complex128.
    """
    if not (np.isfinite(k) and k > 0):
        raise ValueError(f"k must be a finite wavenumber > 0, got {k} (the field depends on k^2 only)")
    if int(n) < 3:
        raise ValueError(f"n must be >= 3 grid points per axis, got {n}")
    op = HelmholtzOperator(n, k, m, scheme=scheme, **kwargs)
    if isinstance(source, tuple) or (np.ndim(source) == 1 and len(source) == 2):
        f = gaussian_source(op.grid, tuple(source), var)  # type: ignore[arg-type]
        extra = {"source_center": list(map(float, source)), "source_var": var}  # type: ignore[arg-type]
    else:
        f = np.asarray(source)
        extra = {"source": "array"}
    out = op.solve_source(f)
    out.params.update(extra)
    return out
