"""Regular Cartesian grids and fields sampled on them.

A :class:`Grid` is a tensor-product grid on a box; a :class:`GridField` is a
grid plus values (real or complex) plus the parameters that produced them.
Axis 0 of every array is x, axis 1 is y (``numpy.meshgrid(..., indexing='ij')``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

__all__ = ["Grid", "GridField"]


@dataclass(frozen=True)
class Grid:
    """Tensor-product grid on ``[a_0, b_0] x ... x [a_{d-1}, b_{d-1}]``.

    Parameters
    ----------
    bounds : sequence of (float, float)
        ``(low, high)`` per axis, in length units of the problem.
    shape : sequence of int
        Number of points per axis.
    centering : {"node", "cell"}
        ``"node"``: points include both bounds, spacing ``(b - a) / (n - 1)``.
        ``"cell"``: points are cell centres, spacing ``(b - a) / n``.
    """

    bounds: tuple[tuple[float, float], ...]
    shape: tuple[int, ...]
    centering: str = "node"

    def __post_init__(self) -> None:
        bounds = tuple((float(a), float(b)) for a, b in self.bounds)
        shape = tuple(int(n) for n in self.shape)
        object.__setattr__(self, "bounds", bounds)
        object.__setattr__(self, "shape", shape)
        if len(bounds) != len(shape):
            raise ValueError(
                f"Grid: got {len(bounds)} bounds but {len(shape)} sizes; give one (low, high) per axis."
            )
        if self.centering not in ("node", "cell"):
            raise ValueError(f"Grid: centering must be 'node' or 'cell', got {self.centering!r}.")
        min_n = 2 if self.centering == "node" else 1
        for ax, ((a, b), n) in enumerate(zip(bounds, shape)):
            if not b > a:
                raise ValueError(f"Grid: axis {ax} has bounds ({a}, {b}); need low < high.")
            if n < min_n:
                raise ValueError(f"Grid: axis {ax} has {n} points; {self.centering}-centred grids need >= {min_n}.")

    @classmethod
    def square(cls, n: int, half_width: float = 1.0, dim: int = 2, centering: str = "node") -> "Grid":
        """Grid with ``n`` points per axis on ``[-half_width, half_width]^dim``."""
        return cls(((-half_width, half_width),) * dim, (n,) * dim, centering)

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Total number of points."""
        return int(np.prod(self.shape))

    @property
    def spacing(self) -> tuple[float, ...]:
        """Grid spacing per axis (length units)."""
        if self.centering == "node":
            return tuple((b - a) / (n - 1) for (a, b), n in zip(self.bounds, self.shape))
        return tuple((b - a) / n for (a, b), n in zip(self.bounds, self.shape))

    def axes(self) -> list[np.ndarray]:
        """1-D coordinate arrays, one per axis, shapes ``(shape[k],)``."""
        out = []
        for (a, _b), n, h in zip(self.bounds, self.shape, self.spacing):
            off = 0.0 if self.centering == "node" else 0.5
            out.append(a + (np.arange(n) + off) * h)
        return out

    def coords(self) -> tuple[np.ndarray, ...]:
        """Meshgrid with ``indexing='ij'``: ``d`` arrays of shape ``shape``."""
        return tuple(np.meshgrid(*self.axes(), indexing="ij"))

    def points(self) -> np.ndarray:
        """All grid points as an ``(N, d)`` array, C order (last axis fastest)."""
        return np.stack([c.ravel() for c in self.coords()], axis=1)

    def interpolation_weights(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Multilinear interpolation stencil at ``points``.

        Parameters
        ----------
        points : ndarray, shape (N, d), inside the span of the grid points.

        Returns
        -------
        idx : ndarray of int64, shape (N, 2**d), flat (C-order) indices of the cell corners.
        w : ndarray of float64, shape (N, 2**d), weights (rows sum to 1).
        """
        pts = np.atleast_2d(np.asarray(points, dtype=float))
        d = self.ndim
        if pts.ndim != 2 or pts.shape[1] != d:
            raise ValueError(f"Grid: points must have shape (N, {d}), got {np.shape(points)}.")
        axes = self.axes()
        lo = np.array([a[0] for a in axes])
        hi = np.array([a[-1] for a in axes])
        tol = 1e-12 * (hi - lo + 1.0)
        bad = np.any((pts < lo - tol) | (pts > hi + tol) | ~np.isfinite(pts), axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"Grid: point {i} = {pts[i].tolist()} lies outside the grid span "
                f"{[(float(a), float(b)) for a, b in zip(lo, hi)]}; clip or drop it before sampling."
            )
        shape = np.array(self.shape)
        if np.any(shape < 2):
            raise ValueError("Grid: interpolation needs at least 2 points per axis.")
        t = (pts - lo) / np.array(self.spacing)
        base = np.clip(np.floor(t).astype(np.int64), 0, shape - 2)
        frac = np.clip(t - base, 0.0, 1.0)
        strides = np.array([int(np.prod(shape[k + 1:])) for k in range(d)], dtype=np.int64)
        idx = np.empty((len(pts), 2**d), dtype=np.int64)
        w = np.empty((len(pts), 2**d))
        for corner in range(2**d):
            bits = np.array([(corner >> k) & 1 for k in range(d)])
            idx[:, corner] = (base + bits) @ strides
            w[:, corner] = np.prod(np.where(bits, frac, 1.0 - frac), axis=1)
        return idx, w

    def interpolation_matrix(self, points: np.ndarray) -> "sp.csr_matrix":
        """Sparse ``(N, size)`` matrix ``R`` with ``R @ values.ravel() == GridField.sample(points)``.

        Useful for receivers: data ``d = R u`` and adjoint sources ``R^T r``.
        """
        idx, w = self.interpolation_weights(points)
        n = idx.shape[0]
        rows = np.repeat(np.arange(n), idx.shape[1])
        return sp.csr_matrix((w.ravel(), (rows, idx.ravel())), shape=(n, self.size))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description."""
        return {"bounds": [list(b) for b in self.bounds], "shape": list(self.shape), "centering": self.centering}


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, complex):
        return {"real": v.real, "imag": v.imag}
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)


@dataclass
class GridField:
    """Values on a :class:`Grid`.

    Parameters
    ----------
    grid : Grid
    values : ndarray, shape ``grid.shape`` (real or complex)
    params : dict
        Parameters that produced the field (stored as JSON in HDF5).
    """

    grid: Grid
    values: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values)
        if self.values.shape != self.grid.shape:
            raise ValueError(
                f"GridField: values have shape {self.values.shape} but the grid is {self.grid.shape}; "
                "reshape the values to the grid shape (axis 0 = x)."
            )

    # ------------------------------------------------------------------ I/O
    def to_hdf5(self, target: str | Path | h5py.Group, name: str = "field") -> None:
        """Write to an HDF5 file path or into an open group (as subgroup ``name``).

        Layout: ``<name>/values`` (dataset), ``<name>/axis_<k>`` (coordinates),
        attributes ``bounds``, ``shape``, ``centering``, ``params`` (JSON).
        """
        if isinstance(target, (str, Path)):
            with h5py.File(target, "w") as f:
                self.to_hdf5(f, name)
            return
        if name in target:
            del target[name]
        g = target.create_group(name)
        g.create_dataset("values", data=self.values)
        for k, ax in enumerate(self.grid.axes()):
            g.create_dataset(f"axis_{k}", data=ax)
        g.attrs["bounds"] = np.asarray(self.grid.bounds, dtype=float)
        g.attrs["shape"] = np.asarray(self.grid.shape, dtype=np.int64)
        g.attrs["centering"] = self.grid.centering
        g.attrs["params"] = json.dumps(_jsonable(self.params))

    @classmethod
    def from_hdf5(cls, source: str | Path | h5py.Group, name: str = "field") -> "GridField":
        """Read a field written by :meth:`to_hdf5`."""
        if isinstance(source, (str, Path)):
            with h5py.File(source, "r") as f:
                return cls.from_hdf5(f, name)
        if name not in source:
            raise KeyError(f"GridField.from_hdf5: no group {name!r} in {source.name!r}; available: {list(source)}")
        g = source[name]
        grid = Grid(tuple(map(tuple, g.attrs["bounds"])), tuple(g.attrs["shape"]), str(g.attrs["centering"]))
        return cls(grid, g["values"][()], json.loads(g.attrs["params"]))

    # ------------------------------------------------------------- sampling
    def sample(self, points: np.ndarray) -> np.ndarray:
        """Multilinear (bilinear in 2-D) interpolation at arbitrary points.

        Parameters
        ----------
        points : ndarray, shape (N, d)
            Coordinates inside the span of the grid points.

        Returns
        -------
        ndarray, shape (N,), dtype of ``values`` (at least float64).

        Raises
        ------
        ValueError
            If a point lies outside the span of the grid points (the message names it).
        """
        idx, w = self.grid.interpolation_weights(points)
        flat = self.values.reshape(-1)
        return np.sum(w * flat[idx], axis=1)
