"""The discrete inversion problem shared by ADMM (IR-WRI) and adjoint-state FWI.

On an ``n x n`` node grid, ``A(m) u_s = b_s`` for every source ``s`` with
``A(m) = A0 + B diag(m)`` (:class:`~reference.HelmholtzOperator`, affine in
the squared slowness), receivers ``d_s ~ P u_s`` with ``P`` the bilinear
sampling matrix.  The unknown ``m`` is free on the physical region
``|x|_inf < W - L - margin`` and held at the background 1 elsewhere (PML).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..helmholtz import HelmholtzOperator
from .acquisition import Acquisition, sampling_matrix, source_vectors

__all__ = ["InversionProblem", "model_mse"]


class InversionProblem:
    """Operator pieces, data and model parametrisation for FWI on one grid.

    Parameters
    ----------
    acq : Acquisition
    d : ndarray, shape (nr, ns), complex
        Observed receiver data.
    n : int
        Points per axis of the inversion grid.
    scheme : {5, 9}
    m_bounds : (float, float)
        Bounds on the squared slowness (default: velocity in [0.5, 3]).
    m_background : float
        Value held outside the free region, and the uniform starting model.
    margin : float
        The free region is ``|x|_inf < W - L - margin``.

    Attributes
    ----------
    op : HelmholtzOperator (its model is changed by :meth:`operator`)
    P : csr_matrix (nr, N); b : ndarray (N, ns); free : bool ndarray (N,)
    """

    def __init__(self, acq: Acquisition, d: np.ndarray, n: int = 101, scheme: int = 9,
                 m_bounds: tuple[float, float] = (1 / 9, 4.0), m_background: float = 1.0,
                 margin: float = 0.0) -> None:
        d = np.asarray(d, dtype=np.complex128)
        if d.shape != (acq.n_receivers, acq.n_sources):
            raise ValueError(f"InversionProblem: data must have shape (n_receivers, n_sources) = "
                             f"{(acq.n_receivers, acq.n_sources)}, got {d.shape}.")
        if not 0 < m_bounds[0] <= m_background <= m_bounds[1]:
            raise ValueError(f"InversionProblem: need 0 < m_min <= m_background <= m_max, got {m_bounds}, {m_background}.")
        self.acq, self.d, self.n, self.scheme = acq, d, int(n), int(scheme)
        self.m_bounds, self.m_background = (float(m_bounds[0]), float(m_bounds[1])), float(m_background)
        self.op: HelmholtzOperator = acq.operator(n, m_background, scheme)
        self.P = sampling_matrix(self.op.grid, acq.receivers)
        self.b = source_vectors(self.op, acq)
        X, Y = self.op.grid.coords()
        inner = acq.inner_half_width - margin
        self.free = self.op.interior(np.maximum(np.abs(X), np.abs(Y)) < inner)
        self.n_free = int(self.free.sum())

    # ------------------------------------------------------------ models
    def m_interior(self, m_free: np.ndarray) -> np.ndarray:
        """Interior model (N,) from the free values (n_free,)."""
        m = np.full(self.op.N, self.m_background)
        m[self.free] = m_free
        return m

    def m_full(self, m_free: np.ndarray) -> np.ndarray:
        """Full-grid model (n, n) from the free values."""
        out = np.full((self.n, self.n), self.m_background)
        out[1:-1, 1:-1] = self.m_interior(m_free).reshape(self.n - 2, self.n - 2)
        return out

    def free_from_function(self, m: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """Free values of a model given as a function ``m(x, y)``."""
        X, Y = self.op.grid.coords()
        return self.op.interior(np.broadcast_to(np.asarray(m(X, Y), float), X.shape))[self.free]

    def start(self) -> np.ndarray:
        """Uniform starting model (free values)."""
        return np.full(self.n_free, self.m_background)

    def operator(self, m_free: np.ndarray) -> HelmholtzOperator:
        """The operator with model ``m`` set (factorization dropped)."""
        self.op.set_model(self.m_full(m_free))
        return self.op

    # ------------------------------------------------------------ physics
    def forward(self, m_free: np.ndarray) -> np.ndarray:
        """Wavefields ``U = A(m)^{-1} b``, shape (N, ns)."""
        return self.operator(m_free).solve(self.b)

    def data_misfit(self, m_free: np.ndarray) -> float:
        """Relative receiver misfit ``||P A(m)^{-1} b - d|| / ||d||`` (one factorization)."""
        U = self.forward(m_free)
        return float(np.linalg.norm(self.P @ U - self.d) / np.linalg.norm(self.d))

    def objective_and_gradient(self, m_free: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``J = 0.5 ||P u - d||^2 / ||d||^2`` summed over sources, its gradient, and ``U``.

        Gradient by the adjoint state: ``A^H lam_s = P^T (P u_s - d_s)``,
        ``dJ/dm = -Re(conj(u_s) * (B^H lam_s))`` summed over sources, restricted
        to the free nodes. One factorization, ``ns`` forward and ``ns`` adjoint solves.
        """
        op = self.operator(m_free)
        U = op.solve(self.b)
        R = self.P @ U - self.d
        scale = 1.0 / np.linalg.norm(self.d) ** 2
        J = 0.5 * float(np.sum(np.abs(R) ** 2)) * scale
        lam = op.solve_adjoint(self.P.T @ R)
        g = -np.real(np.conj(U) * (op.dA_dm().conj().T @ lam)).sum(axis=1) * scale
        return J, g[self.free], U


def model_mse(c_est: np.ndarray, c_true: np.ndarray, grid_xy: tuple[np.ndarray, np.ndarray],
              half_width: float = 0.5) -> float:
    """Mean squared error of velocity over the physical region ``|x|_inf <= half_width``.

    Parameters
    ----------
    c_est, c_true : ndarray, shape (n, n)
        Velocities on the same grid.
    grid_xy : (X, Y) meshgrid arrays, shape (n, n).
    """
    X, Y = grid_xy
    mask = np.maximum(np.abs(X), np.abs(Y)) <= half_width + 1e-12
    return float(np.mean((c_est[mask] - c_true[mask]) ** 2))

