"""Sparse LU with a fill-reducing ordering and single-threaded BLAS.

Wraps :func:`scipy.sparse.linalg.splu`.  With ``ordering="nd"`` the matrix is
symmetrically permuted by a geometric nested-dissection ordering of the grid
and factored with SuperLU's ``NATURAL`` column order and diagonal pivoting
(``SymmetricMode``), which keeps the ordering intact.  Solves with the adjoint
``A^H`` reuse the same factors (SuperLU ``trans='H'``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from .ordering import nested_dissection

__all__ = ["SparseLU"]


class SparseLU:
    """LU factorization of a square sparse matrix, reusable for many right-hand sides.

    Parameters
    ----------
    A : sparse matrix, shape (N, N)
    ordering : {"nd", "colamd"}
        ``"nd"`` needs ``grid_shape`` with ``prod(grid_shape) == N`` and the
        unknowns numbered ``i * ny + j``.
    grid_shape : (nx, ny), optional
    diag_pivot_thresh : float
        SuperLU threshold for the ``"nd"`` path (0 keeps the diagonal pivots).
    """

    def __init__(self, A: sp.spmatrix, ordering: str = "nd", grid_shape: tuple[int, int] | None = None,
                 diag_pivot_thresh: float = 0.0) -> None:
        A = sp.csc_matrix(A)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"SparseLU: matrix must be square, got {A.shape}.")
        self.shape = A.shape
        self.perm: np.ndarray | None = None
        with threadpool_limits(1):
            if ordering == "nd":
                if grid_shape is None or grid_shape[0] * grid_shape[1] != A.shape[0]:
                    raise ValueError("SparseLU: ordering='nd' needs grid_shape (nx, ny) with nx * ny == N.")
                self.perm = nested_dissection(*grid_shape)
                Ap = A[self.perm][:, self.perm].tocsc()
                try:
                    self.lu = spla.splu(Ap, permc_spec="NATURAL", diag_pivot_thresh=diag_pivot_thresh,
                                        options={"SymmetricMode": True})
                except RuntimeError as err:
                    raise RuntimeError(
                        f"SparseLU: nested-dissection factorization without pivoting failed ({err}); "
                        "the matrix may be singular (e.g. no PML/damping at a resonant k) - "
                        "retry with ordering='colamd', which pivots."
                    ) from err
            elif ordering == "colamd":
                self.lu = spla.splu(A, permc_spec="COLAMD")
            else:
                raise ValueError(f"SparseLU: ordering must be 'nd' or 'colamd', got {ordering!r}.")

    def nnz_factors(self) -> int:
        """Number of stored entries in L and U."""
        return int(self.lu.L.nnz + self.lu.U.nnz)

    def solve(self, rhs: np.ndarray, adjoint: bool = False) -> np.ndarray:
        """Solve ``A x = rhs`` (or ``A^H x = rhs`` if ``adjoint``); rhs (N,) or (N, nrhs)."""
        b = np.asarray(rhs, dtype=np.complex128)
        if b.shape[0] != self.shape[0]:
            raise ValueError(f"SparseLU.solve: rhs has {b.shape[0]} rows, matrix has {self.shape[0]}.")
        trans = "H" if adjoint else "N"
        with threadpool_limits(1):
            if self.perm is None:
                return self.lu.solve(b, trans=trans)
            x = np.empty_like(b)
            x[self.perm] = self.lu.solve(b[self.perm], trans=trans)
            return x
