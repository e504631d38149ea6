"""2-D Poisson problems ``Lap u = f`` on a rectangle, 5-point finite differences.

Node grids (``Grid`` with ``centering="node"``):

* **Dirichlet**: unknowns are interior nodes, ``u = g`` on the boundary nodes.
  Solvers: ``"dst"`` (exact fast solve via the type-I discrete sine transform)
  or ``"amg"`` (pyamg smoothed aggregation + CG, for checking and for general use).
* **Neumann**: all nodes are unknowns; the outward normal derivative ``g_n`` is
  imposed with mirrored ghost nodes (``u_{-1} = u_1 + 2 h g_n``).  The solution
  is defined up to a constant; the returned one has zero (trapezoid) mean and
  ``f`` is projected onto the compatible range.  Solvers: ``"dct"`` (type-I
  DCT) or ``"amg"`` (on the symmetrised, trapezoid-weighted system).
* **Variable-coefficient diffusion** ``div(a grad u) = f`` with Dirichlet
  data: conservative 5-point stencil with ``a`` on the half-nodes (cell
  faces).  Solvers: ``"amg"`` (smoothed aggregation + CG) or ``"direct"``
  (sparse LU, one thread).
"""

from __future__ import annotations

import numpy as np
import pyamg
import scipy.fft as sfft
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from .grid import Grid, GridField

__all__ = ["laplacian_1d", "dirichlet_matrix", "neumann_matrix", "solve_poisson_dirichlet", "solve_poisson_neumann",
           "diffusion_matrix", "solve_diffusion_dirichlet"]


def laplacian_1d(n: int, h: float, bc: str) -> sp.csr_matrix:
    """1-D second difference, shape (n, n).

    ``bc="dirichlet"``: ``n`` interior unknowns, zero outside.
    ``bc="neumann"``: ``n`` nodes including both ends, mirrored ghosts (rows 0 and n-1 read ``2(u_1-u_0)/h^2``).
    """
    main = -2.0 * np.ones(n)
    up, lo = np.ones(n - 1), np.ones(n - 1)
    if bc == "neumann":
        up[0] = 2.0
        lo[-1] = 2.0
    elif bc != "dirichlet":
        raise ValueError(f"laplacian_1d: bc must be 'dirichlet' or 'neumann', got {bc!r}.")
    return sp.diags([lo, main, up], [-1, 0, 1], format="csr") / h**2


def dirichlet_matrix(grid: Grid) -> sp.csr_matrix:
    """5-point Laplacian on the interior nodes, shape ((nx-2)(ny-2),)*2."""
    (nx, ny), (hx, hy) = grid.shape, grid.spacing
    Lx, Ly = laplacian_1d(nx - 2, hx, "dirichlet"), laplacian_1d(ny - 2, hy, "dirichlet")
    return (sp.kron(Lx, sp.eye(ny - 2)) + sp.kron(sp.eye(nx - 2), Ly)).tocsr()


def neumann_matrix(grid: Grid) -> sp.csr_matrix:
    """5-point Laplacian with mirrored-ghost Neumann rows on all nodes, shape (nx ny, nx ny)."""
    (nx, ny), (hx, hy) = grid.shape, grid.spacing
    Lx, Ly = laplacian_1d(nx, hx, "neumann"), laplacian_1d(ny, hy, "neumann")
    return (sp.kron(Lx, sp.eye(ny)) + sp.kron(sp.eye(nx), Ly)).tocsr()


def _trap(n: int) -> np.ndarray:
    w = np.ones(n)
    w[0] = w[-1] = 0.5
    return w


def _check(grid: Grid, f: np.ndarray, name: str) -> np.ndarray:
    if grid.ndim != 2 or grid.centering != "node":
        raise ValueError(f"{name}: need a 2-D node-centred Grid, got {grid}.")
    f = np.asarray(f, dtype=float)
    if f.shape != grid.shape:
        raise ValueError(f"{name}: f has shape {f.shape}, expected the full grid {grid.shape}.")
    return f


def solve_poisson_dirichlet(grid: Grid, f: np.ndarray, g: np.ndarray | float = 0.0, method: str = "dst",
                            tol: float = 1e-10) -> GridField:
    """Solve ``Lap u = f`` with ``u = g`` on the boundary.

    Parameters
    ----------
    grid : Grid, 2-D node grid.
    f : ndarray, shape ``grid.shape`` (values on the boundary are ignored).
    g : float or ndarray ``grid.shape`` (only boundary values are used).
    method : {"dst", "amg"}
    tol : relative residual tolerance for "amg".

    Returns
    -------
    GridField, shape ``grid.shape``.
    """
    f = _check(grid, f, "solve_poisson_dirichlet")
    (hx, hy) = grid.spacing
    u = np.zeros(grid.shape)
    gb = np.broadcast_to(np.asarray(g, dtype=float), grid.shape)
    u[0, :], u[-1, :], u[:, 0], u[:, -1] = gb[0, :], gb[-1, :], gb[:, 0], gb[:, -1]
    rhs = f[1:-1, 1:-1].copy()
    rhs[0, :] -= u[0, 1:-1] / hx**2
    rhs[-1, :] -= u[-1, 1:-1] / hx**2
    rhs[:, 0] -= u[1:-1, 0] / hy**2
    rhs[:, -1] -= u[1:-1, -1] / hy**2
    mx, my = rhs.shape
    if method == "dst":
        lx = (2 * np.cos(np.pi * np.arange(1, mx + 1) / (mx + 1)) - 2) / hx**2
        ly = (2 * np.cos(np.pi * np.arange(1, my + 1) / (my + 1)) - 2) / hy**2
        u[1:-1, 1:-1] = sfft.idstn(sfft.dstn(rhs, type=1) / (lx[:, None] + ly[None, :]), type=1)
    elif method == "amg":
        A = -dirichlet_matrix(grid)  # SPD
        u[1:-1, 1:-1] = _amg_cg(A, -rhs.ravel(), tol).reshape(mx, my)
    else:
        raise ValueError(f"solve_poisson_dirichlet: method must be 'dst' or 'amg', got {method!r}.")
    return GridField(grid, u, {"equation": "poisson", "bc": "dirichlet", "method": method})


def _amg_cg(A: sp.csr_matrix, b: np.ndarray, tol: float) -> np.ndarray:
    with threadpool_limits(1):
        ml = pyamg.smoothed_aggregation_solver(A.tocsr(), symmetry="hermitian")
        res: list[float] = []
        x = ml.solve(b, tol=tol, accel="cg", maxiter=500, residuals=res)
    if res[-1] > 10 * tol * max(res[0], 1e-300):
        raise RuntimeError(f"pyamg CG did not converge: relative residual {res[-1] / res[0]:.3g} > {tol}.")
    return x


Flux = float | tuple[np.ndarray | float, np.ndarray | float, np.ndarray | float, np.ndarray | float]


def solve_poisson_neumann(grid: Grid, f: np.ndarray, gn: Flux = 0.0, method: str = "dct",
                          tol: float = 1e-10) -> GridField:
    """Solve ``Lap u = f`` with outward normal derivative ``gn`` on the boundary, up to a constant.

    Parameters
    ----------
    grid : Grid, 2-D node grid.
    f : ndarray, shape ``grid.shape``.
    gn : float, or tuple ``(x_low, x_high, y_low, y_high)`` of outward ``du/dn`` on each side,
        each a float or an array of shape (ny,) for the x sides and (nx,) for the y sides.
    method : {"dct", "amg"}

    Returns
    -------
    GridField with zero trapezoid-weighted mean.  ``params["compat_shift"]``
    is the constant removed from the right-hand side to make it compatible.
    """
    f = _check(grid, f, "solve_poisson_neumann")
    (nx, ny), (hx, hy) = grid.shape, grid.spacing
    sides = (gn,) * 4 if np.isscalar(gn) else tuple(gn)
    if len(sides) != 4:
        raise ValueError("solve_poisson_neumann: gn must be a float or a 4-tuple (x_low, x_high, y_low, y_high).")
    rhs = f.copy()
    rhs[0, :] -= 2 * np.broadcast_to(sides[0], (ny,)) / hx
    rhs[-1, :] -= 2 * np.broadcast_to(sides[1], (ny,)) / hx
    rhs[:, 0] -= 2 * np.broadcast_to(sides[2], (nx,)) / hy
    rhs[:, -1] -= 2 * np.broadcast_to(sides[3], (nx,)) / hy
    w = _trap(nx)[:, None] * _trap(ny)[None, :]
    shift = float((w * rhs).sum() / w.sum())
    rhs -= shift
    if method == "dct":
        lx = (2 * np.cos(np.pi * np.arange(nx) / (nx - 1)) - 2) / hx**2
        ly = (2 * np.cos(np.pi * np.arange(ny) / (ny - 1)) - 2) / hy**2
        lam = lx[:, None] + ly[None, :]
        lam[0, 0] = 1.0
        coef = sfft.dctn(rhs, type=1) / lam
        coef[0, 0] = 0.0
        u = sfft.idctn(coef, type=1)
    elif method == "amg":
        W = sp.diags(w.ravel())
        A = -(W @ neumann_matrix(grid)).tocsr()  # symmetric positive semi-definite
        # ground node 0 (u_0 = 0): the reduced matrix is SPD; the dropped row holds by compatibility
        u = np.zeros(nx * ny)
        u[1:] = _amg_cg(A[1:, 1:], -(w * rhs).ravel()[1:], tol)
        u = u.reshape(grid.shape)
    else:
        raise ValueError(f"solve_poisson_neumann: method must be 'dct' or 'amg', got {method!r}.")
    u -= (w * u).sum() / w.sum()
    return GridField(grid, u, {"equation": "poisson", "bc": "neumann", "method": method, "compat_shift": shift})


# ---------------------------------------------------------------------------
# Variable-coefficient diffusion  div(a grad u) = f,  Dirichlet data


Coefficient = float | np.ndarray


def _half_node_coefficients(grid: Grid, a, mean: str) -> tuple[np.ndarray, np.ndarray]:
    """``a`` at the x-faces ``(i+1/2, j)``, shape (nx-1, ny), and y-faces ``(i, j+1/2)``, shape (nx, ny-1)."""
    (nx, ny), (hx, hy) = grid.shape, grid.spacing
    if callable(a):
        X, Y = grid.coords()
        ax = np.asarray(a(X[:-1, :] + 0.5 * hx, Y[:-1, :]), dtype=float)
        ay = np.asarray(a(X[:, :-1], Y[:, :-1] + 0.5 * hy), dtype=float)
        ax, ay = np.broadcast_to(ax, (nx - 1, ny)).copy(), np.broadcast_to(ay, (nx, ny - 1)).copy()
    else:
        an = np.asarray(a, dtype=float)
        if an.ndim != 0 and an.shape != grid.shape:
            raise ValueError(f"solve_diffusion_dirichlet: a has shape {an.shape}; give a scalar, an array of the "
                             f"grid shape {grid.shape} (node values) or a callable a(X, Y).")
        an = np.broadcast_to(an, grid.shape)
        if mean == "arithmetic":
            ax, ay = 0.5 * (an[:-1, :] + an[1:, :]), 0.5 * (an[:, :-1] + an[:, 1:])
        elif mean == "harmonic":
            with np.errstate(divide="ignore"):
                ax = 2.0 / (1.0 / an[:-1, :] + 1.0 / an[1:, :])
                ay = 2.0 / (1.0 / an[:, :-1] + 1.0 / an[:, 1:])
        else:
            raise ValueError(f"solve_diffusion_dirichlet: mean must be 'arithmetic' or 'harmonic', got {mean!r}.")
    for name, v in (("x", ax), ("y", ay)):
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"solve_diffusion_dirichlet: the coefficient a must be finite and > 0 everywhere "
                             f"(min on the {name}-faces: {np.nanmin(v):.3g}); the operator is elliptic only for a > 0.")
    return ax, ay


def diffusion_matrix(grid: Grid, ax: np.ndarray, ay: np.ndarray) -> sp.csr_matrix:
    """Conservative 5-point ``-div(a grad .)`` on the interior nodes (SPD), shape ``((nx-2)(ny-2),)*2``.

    ``ax`` (nx-1, ny) and ``ay`` (nx, ny-1) are the face coefficients from
    the half-node evaluation; row ``(i, j)`` (C order, y fastest) reads
    ``[ax_{i+1/2,j}(u_ij - u_{i+1,j}) + ax_{i-1/2,j}(u_ij - u_{i-1,j})] / hx^2 + (same in y) / hy^2``.
    Couplings to boundary nodes are dropped (they go to the right-hand side).
    """
    (nx, ny), (hx, hy) = grid.shape, grid.spacing
    mx, my = nx - 2, ny - 2
    idx = np.arange(mx * my).reshape(mx, my)
    e, w = ax[1:, 1:-1] / hx**2, ax[:-1, 1:-1] / hx**2  # east (i+1/2), west (i-1/2) of interior nodes
    nn, s = ay[1:-1, 1:] / hy**2, ay[1:-1, :-1] / hy**2  # north (j+1/2), south (j-1/2)
    rows = [idx.ravel()]
    cols = [idx.ravel()]
    vals = [(e + w + nn + s).ravel()]
    for coef, sl_row, sl_col in (
        (e[:-1, :], idx[:-1, :], idx[1:, :]),
        (w[1:, :], idx[1:, :], idx[:-1, :]),
        (nn[:, :-1], idx[:, :-1], idx[:, 1:]),
        (s[:, 1:], idx[:, 1:], idx[:, :-1]),
    ):
        rows.append(sl_row.ravel())
        cols.append(sl_col.ravel())
        vals.append(-coef.ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(mx * my,) * 2)


def solve_diffusion_dirichlet(grid: Grid, a, f: np.ndarray, g: np.ndarray | float = 0.0, method: str = "amg",
                              mean: str = "arithmetic", tol: float = 1e-10) -> GridField:
    """Solve ``div(a grad u) = f`` with ``u = g`` on the boundary (conservative 5-point stencil).

    The flux ``a du/dx`` is taken at the half-nodes (cell faces)
    ``x_{i+1/2} = x_i + hx/2`` (and likewise in y), which keeps the scheme
    conservative and the matrix symmetric; the truncation error is
    ``O(h^2)`` for smooth ``a`` and ``u``.

    Parameters
    ----------
    grid : Grid, 2-D node grid.
    a : float, ndarray of shape ``grid.shape``, or callable ``a(X, Y) -> ndarray``
        Diffusion coefficient, ``> 0`` everywhere. A callable is evaluated
        exactly at the half-nodes; node values are averaged onto them with
        ``mean`` (``"arithmetic"``: ``(a_i + a_{i+1})/2``, second order for
        smooth ``a``; ``"harmonic"``: ``2/(1/a_i + 1/a_{i+1})``, the better
        choice for a coefficient that jumps between cells).
    f : ndarray, shape ``grid.shape`` (values on the boundary are ignored).
    g : float or ndarray ``grid.shape`` (only boundary values are used).
    method : {"amg", "direct"}
        ``"amg"``: pyamg smoothed aggregation as a preconditioner for CG on
        the SPD system ``-A u = -rhs``; ``"direct"``: sparse LU
        (``scipy.sparse.linalg.spsolve``) limited to one BLAS thread.
    mean : {"arithmetic", "harmonic"}
        Averaging of node values of ``a`` onto half-nodes (ignored when ``a``
        is a callable or a scalar).
    tol : float, relative residual tolerance for "amg".

    Returns
    -------
    GridField, shape ``grid.shape``; params record the equation, method and mean.
    """
    f = _check(grid, f, "solve_diffusion_dirichlet")
    (hx, hy) = grid.spacing
    ax, ay = _half_node_coefficients(grid, a, mean)
    u = np.zeros(grid.shape)
    gb = np.broadcast_to(np.asarray(g, dtype=float), grid.shape)
    u[0, :], u[-1, :], u[:, 0], u[:, -1] = gb[0, :], gb[-1, :], gb[:, 0], gb[:, -1]
    # -div(a grad u) = -f; known boundary neighbours move to the right-hand side
    rhs = -f[1:-1, 1:-1].copy()
    rhs[0, :] += ax[0, 1:-1] * u[0, 1:-1] / hx**2
    rhs[-1, :] += ax[-1, 1:-1] * u[-1, 1:-1] / hx**2
    rhs[:, 0] += ay[1:-1, 0] * u[1:-1, 0] / hy**2
    rhs[:, -1] += ay[1:-1, -1] * u[1:-1, -1] / hy**2
    mx, my = rhs.shape
    A = diffusion_matrix(grid, ax, ay)  # SPD
    if method == "amg":
        sol = _amg_cg(A, rhs.ravel(), tol)
    elif method == "direct":
        with threadpool_limits(1):
            sol = spla.spsolve(A.tocsc(), rhs.ravel())
    else:
        raise ValueError(f"solve_diffusion_dirichlet: method must be 'amg' or 'direct', got {method!r}.")
    u[1:-1, 1:-1] = sol.reshape(mx, my)
    params = {"equation": "diffusion", "bc": "dirichlet", "method": method,
              "mean": "exact" if callable(a) else mean}
    return GridField(grid, u, params)
