"""Acquisition geometry, receiver sampling and simulated observations for FWI.

The paper's setup (SIREN §4.3, supplement §5.2) on ``[-1, 1]^2`` with the
catalog PML (``0.5 < |x|_inf < 1``), at the exact positions of the paper's data
file (``data_cylinder_5.mat``, see :mod:`reference.fwi.paperdata`): 5 sources
on ``y = -59/170`` (-0.347) at ``x in 59/340 * {-2, -1, 0, 1, 2}``; 30
receivers, 10 each on ``y = 41/102`` (0.402) for ``x in [-59/170, 59/170]``
and on ``x = -41/102``, ``x = +41/102`` for ``y in [-43/170, 41/102]``
([-0.253, 0.402]); single wavenumber ``k = 20``.

Receivers sample the wavefield by bilinear interpolation of the node grid
(:func:`sampling_matrix` builds that as a sparse matrix ``P`` acting on the
interior unknowns of a :class:`~reference.HelmholtzOperator`).  Sources are
Gaussians of variance ``source_var`` renormalised to unit discrete mass, so the
same source has the same strength on every grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from ..grid import Grid
from ..helmholtz import HelmholtzOperator, gaussian_source

__all__ = ["Acquisition", "ObservedData", "sampling_matrix", "source_vectors", "simulate_data", "add_noise"]

#: the positions of the paper's data file, as exact fractions (they match the file to 1e-16)
PAPER_SOURCES_X = tuple(i * 59 / 340 for i in (-2, -1, 0, 1, 2))
PAPER_SOURCE_Y = -59 / 170
PAPER_RECEIVER_OFFSET = 41 / 102
PAPER_TOP_SPAN = (-59 / 170, 59 / 170)
PAPER_SIDE_SPAN = (-43 / 170, 41 / 102)


@dataclass
class Acquisition:
    """Sources, receivers and the physical setting they live in.

    Parameters
    ----------
    sources : ndarray, shape (ns, 2)
        Source centres (length units).
    receivers : ndarray, shape (nr, 2)
        Receiver positions (length units).
    k : float
        Wavenumber (rad / length unit) for background ``m = 1``.
    source_var : float
        Variance of the Gaussian source (length^2); the paper uses 1e-4.
    half_width, pml_width, a0 : float
        Domain ``[-half_width, half_width]^2``, PML thickness and strength.

    Raises
    ------
    ValueError
        If a source or receiver lies outside the domain or inside the PML.
    """

    sources: np.ndarray
    receivers: np.ndarray
    k: float = 20.0
    source_var: float = 1e-4
    half_width: float = 1.0
    pml_width: float = 0.5
    a0: float = 5.0

    def __post_init__(self) -> None:
        self.sources = np.atleast_2d(np.asarray(self.sources, dtype=float))
        self.receivers = np.atleast_2d(np.asarray(self.receivers, dtype=float))
        self.validate()

    @property
    def inner_half_width(self) -> float:
        """Half width of the physical (non-PML) region ``|x|_inf < W - L``."""
        return self.half_width - self.pml_width

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    @property
    def n_receivers(self) -> int:
        return len(self.receivers)

    def validate(self) -> None:
        """Check shapes and that every source/receiver is inside the physical region."""
        if not 0 < self.pml_width < self.half_width:
            raise ValueError(f"Acquisition: need 0 < pml_width < half_width, got {self.pml_width}, {self.half_width}.")
        inner = self.inner_half_width
        for what, pts in (("source", self.sources), ("receiver", self.receivers)):
            if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
                raise ValueError(f"Acquisition: {what}s must be a non-empty (n, 2) array, got shape {pts.shape}.")
            if not np.all(np.isfinite(pts)):
                raise ValueError(f"Acquisition: {what} positions must be finite.")
            r = np.max(np.abs(pts), axis=1)
            for i in np.flatnonzero(r >= inner):
                where = "outside the domain" if r[i] > self.half_width else "inside the PML"
                raise ValueError(
                    f"Acquisition: {what} {i} at {pts[i].tolist()} lies {where} "
                    f"(|x|_inf = {r[i]:.4g}); {what}s must satisfy |x|_inf < {inner:g} "
                    f"(domain half width {self.half_width:g} minus PML width {self.pml_width:g}). Move it inwards."
                )
        if not self.k > 0 or not self.source_var > 0:
            raise ValueError(f"Acquisition: k and source_var must be > 0, got k={self.k}, source_var={self.source_var}.")

    @classmethod
    def paper(cls, k: float = 20.0, **kwargs: Any) -> "Acquisition":
        """The paper's 5 sources / 30 receivers, at the positions of its data file.

        Receivers: 10 on the top line ``y = 0.402``, ``x in [-0.347, 0.347]``, then
        10 on the left line ``x = -0.402`` and 10 on the right line ``x = 0.402``,
        both ``y in [-0.253, 0.402]`` (the order of the file's ``receivers``).
        """
        src = np.array([[x, PAPER_SOURCE_Y] for x in PAPER_SOURCES_X])
        t = np.linspace(*PAPER_TOP_SPAN, 10)
        s = np.linspace(*PAPER_SIDE_SPAN, 10)
        o = PAPER_RECEIVER_OFFSET
        rec = np.concatenate([
            np.stack([t, np.full(10, o)], axis=1),  # top line y = 0.402
            np.stack([np.full(10, -o), s], axis=1),  # left line x = -0.402
            np.stack([np.full(10, o), s], axis=1),  # right line x = 0.402
        ])
        return cls(src, rec, k=k, **kwargs)

    def operator(self, n: int, m: Any = 1.0, scheme: int = 9) -> HelmholtzOperator:
        """Helmholtz-PML operator on an ``n x n`` node grid for this setting."""
        return HelmholtzOperator(n, self.k, m, scheme=scheme, half_width=self.half_width,
                                 pml_width=self.pml_width, a0=self.a0)

    def to_dict(self) -> dict[str, Any]:
        return {"sources": self.sources.tolist(), "receivers": self.receivers.tolist(), "k": self.k,
                "source_var": self.source_var, "half_width": self.half_width, "pml_width": self.pml_width,
                "a0": self.a0}


def sampling_matrix(grid: Grid, points: np.ndarray, interior_only: bool = True) -> sp.csr_matrix:
    """Sparse bilinear-interpolation matrix from node values to ``points``.

    Parameters
    ----------
    grid : Grid
        2-D node grid ``n x n`` (``Grid.square``).
    points : ndarray, shape (np, 2)
        Positions inside the grid span.
    interior_only : bool
        If True (default) the columns are the ``(n-2)^2`` interior unknowns of a
        :class:`HelmholtzOperator` (flat index ``i * (n-2) + j``; boundary nodes
        carry ``u = 0`` and are dropped); else all ``n_x * n_y`` nodes in C order.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (np, N), float64; each row has <= 4 entries
    summing to 1 (fewer when a corner is a dropped boundary node).
    """
    pts = np.atleast_2d(np.asarray(points, dtype=float))
    if pts.ndim != 2 or pts.shape[1] != 2 or grid.ndim != 2:
        raise ValueError(f"sampling_matrix: need a 2-D grid and points of shape (np, 2), got {pts.shape}.")
    axes = grid.axes()
    lo = np.array([a[0] for a in axes])
    hi = np.array([a[-1] for a in axes])
    bad = np.any((pts < lo) | (pts > hi), axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"sampling_matrix: point {i} = {pts[i].tolist()} lies outside the grid span {lo}..{hi}.")
    nx, ny = grid.shape
    h = np.array(grid.spacing)
    t = (pts - lo) / h
    idx = np.clip(np.floor(t).astype(np.int64), 0, np.array([nx, ny]) - 2)
    frac = t - idx
    rows, cols, vals = [], [], []
    for bx in (0, 1):
        for by in (0, 1):
            w = (frac[:, 0] if bx else 1 - frac[:, 0]) * (frac[:, 1] if by else 1 - frac[:, 1])
            ii, jj = idx[:, 0] + bx, idx[:, 1] + by
            if interior_only:
                ok = (ii >= 1) & (ii <= nx - 2) & (jj >= 1) & (jj <= ny - 2)
                col = (ii - 1) * (ny - 2) + (jj - 1)
            else:
                ok = np.ones(len(pts), bool)
                col = ii * ny + jj
            rows.append(np.arange(len(pts))[ok])
            cols.append(col[ok])
            vals.append(w[ok])
    ncol = (nx - 2) * (ny - 2) if interior_only else nx * ny
    P = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(pts), ncol))
    return P.tocsr()


def source_vectors(op: HelmholtzOperator, acq: Acquisition) -> np.ndarray:
    """Right-hand sides ``b_s`` (interior unknowns) for every source, shape (N, ns), complex128.

    Gaussians of variance ``acq.source_var``, renormalised so ``sum(f) h^2 = 1``.
    """
    hx, hy = op.grid.spacing
    cols = []
    for x0 in acq.sources:
        f = gaussian_source(op.grid, (float(x0[0]), float(x0[1])), acq.source_var)
        f = f / (f.sum() * hx * hy)
        cols.append(op.interior(f))
    return np.stack(cols, axis=1).astype(np.complex128)


@dataclass
class ObservedData:
    """Receiver data and how it was made.

    Attributes
    ----------
    d : ndarray, shape (nr, ns), complex128
        Data at every receiver for every source (noise included).
    d_clean : ndarray, shape (nr, ns), complex128
        Noise-free data.
    wavefields : ndarray, shape (ns, n, n), complex128
        True wavefields on the simulation grid.
    m_true : ndarray, shape (n, n)
        True squared slowness on the simulation grid.
    params : dict
        Simulation parameters (grid, scheme, snr_db, seed, ...).
    """

    d: np.ndarray
    d_clean: np.ndarray
    wavefields: np.ndarray
    m_true: np.ndarray
    grid: Grid
    params: dict[str, Any] = field(default_factory=dict)


def add_noise(d: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Add circular complex Gaussian noise at signal-to-noise ratio ``snr_db`` (on ``||d||^2``).

    Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(d.shape) + 1j * rng.standard_normal(d.shape)
    scale = np.linalg.norm(d) / np.linalg.norm(noise) * 10 ** (-snr_db / 20)
    return d + scale * noise


def simulate_data(
    acq: Acquisition,
    m_true: Callable[[np.ndarray, np.ndarray], np.ndarray] | float,
    n: int = 201,
    scheme: int = 9,
    snr_db: float | None = None,
    seed: int = 0,
) -> ObservedData:
    """Simulate receiver data for every source with one factorization.

    Parameters
    ----------
    acq : Acquisition
    m_true : callable ``m(x, y)`` or float
        True squared slowness (time^2 / length^2).
    n : int
        Points per axis of the simulation grid; use a finer grid than the
        inversion grid so the inversion does not commit the inverse crime.
    scheme : {5, 9}
    snr_db : float or None
        Add complex Gaussian noise at this SNR (dB); None = noise free.
    seed : int
        Noise seed.

    Returns
    -------
    ObservedData
    """
    op = acq.operator(n, m_true, scheme)
    B = source_vectors(op, acq)
    U = op.solve(B)  # (N, ns)
    P = sampling_matrix(op.grid, acq.receivers)
    d_clean = P @ U
    d = d_clean if snr_db is None else add_noise(d_clean, snr_db, seed)
    waves = np.stack([op.to_full(U[:, s]) for s in range(acq.n_sources)])
    params = {"n": n, "scheme": scheme, "snr_db": snr_db, "seed": seed, **acq.to_dict()}
    return ObservedData(d=d, d_clean=d_clean, wavefields=waves, m_true=op.m.copy(), grid=op.grid, params=params)
