"""Sampled regions beside the composed shapes of :mod:`pinnsiren.geometry`.

``NearPoint`` (Gaussian samples around a point, e.g. a source), ``Cone``
(the domain of influence of a ball in space-time) and ``PointSet`` (explicit
points that carry data). Each samples afresh on every call, on the CPU in
float64 with the given ``torch.Generator``; bounds may be callables of the
training step. (A slice of a space-time domain at its initial or final time
is ``SpaceTime(shape, (t0, t1)).initial()`` / ``.final()``.)
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .geometry import Region
from .sampling import _ball_offsets, _bounds, _resolve, _uniform

__all__ = ["NearPoint", "Cone", "PointSet"]

Bounds = Sequence[Sequence[float]]


class NearPoint(Region):
    """Dense Gaussian samples ``center + std * N(0, I)``, clipped to ``bounds`` (e.g. around a source)."""

    def __init__(self, center: Sequence[float], std: float, bounds: Bounds | Callable[[int], Bounds]) -> None:
        self.center = torch.as_tensor(np.asarray(center, dtype=np.float64))
        self.std = std
        self.bounds = bounds
        self.dim = self.center.shape[0]
        if _bounds(bounds, 0).shape[0] != self.dim:
            raise ValueError("NearPoint: center and bounds have different dimensions")

    def sample(self, n, step, generator):
        b = _bounds(self.bounds, step)
        x = self.center + float(_resolve(self.std, step)) * torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return torch.minimum(torch.maximum(x, b[:, 0]), b[:, 1]), {}


class Cone(Region):
    """Space-time samples in the domain of influence of a ball: ``|x - center| <= r0 + c t``.

    ``t`` is uniform in ``t_bounds`` (a pair or a callable of the step, e.g.
    a growing window), then ``x`` uniform in the ball of radius ``r0 + c t``
    (clipped to ``space_bounds``). For a wave whose initial data live in the
    ball, the solution vanishes outside this cone (finite speed ``c``), so
    the cone is where collocation points matter. Time is coordinate
    ``t_index``; the space coordinates keep their order.
    """

    def __init__(self, center: Sequence[float], r0: float, c: float, t_bounds: Any,
                 space_bounds: Bounds, t_index: int) -> None:
        self.center = torch.as_tensor(np.asarray(center, dtype=np.float64))
        self.r0, self.c = float(r0), float(c)
        self.t_bounds = t_bounds
        self.space_bounds = space_bounds
        self.t_index = t_index
        self.dim = self.center.shape[0] + 1
        if self.r0 < 0 or self.c < 0:
            raise ValueError(f"Cone: r0 and c must be >= 0, got {self.r0}, {self.c}")
        if _bounds(space_bounds, 0).shape[0] != self.center.shape[0]:
            raise ValueError("Cone: center and space_bounds have different dimensions")
        if not 0 <= t_index < self.dim:
            raise ValueError(f"t_index {t_index} out of range for {self.dim} coordinates")

    def sample(self, n, step, generator):
        tb = _bounds([_resolve(self.t_bounds, step)], step)
        t = _uniform(n, tb, generator)
        x = self.center + _ball_offsets(n, self.center.shape[0], self.r0 + self.c * t, generator)
        b = _bounds(self.space_bounds, step)
        xs = torch.minimum(torch.maximum(x, b[:, 0]), b[:, 1])
        return torch.cat([xs[:, : self.t_index], t, xs[:, self.t_index :]], 1), {}


class PointSet(Region):
    """Explicit points carrying data (pixels, receivers, point clouds with normals).

    Parameters
    ----------
    points : array, shape (M, d)
    data : dict name -> array (M,)
        Supplied as the coefficient values of the same rows (real or complex).
        With ``n < M`` a random subset of ``n`` rows (without replacement) is
        drawn each step; with ``n`` None or ``>= M`` all rows are used.
    """

    def __init__(self, points: Any, data: Mapping[str, Any] | None = None) -> None:
        p = torch.as_tensor(np.asarray(points, dtype=np.float64))
        if p.ndim != 2:
            raise ValueError(f"points must have shape (M, d), got {tuple(p.shape)}")
        if not bool(torch.isfinite(p).all()):
            raise ValueError("PointSet points contain non-finite values")
        self.points = p
        self.dim = p.shape[1]
        self.data: dict[str, torch.Tensor] = {}
        for k, v in (data or {}).items():
            t = torch.as_tensor(np.asarray(v))
            if t.shape != (p.shape[0],):
                raise ValueError(f"PointSet data {k!r} has shape {tuple(t.shape)}; expected ({p.shape[0]},)")
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"PointSet data {k!r} contains non-finite values")
            self.data[k] = t
        self.data_names = tuple(self.data)

    def sample(self, n, step, generator):
        M = self.points.shape[0]
        if n is None or n >= M:
            return self.points, dict(self.data)
        idx = torch.randperm(M, generator=generator)[:n]
        return self.points[idx], {k: v[idx] for k, v in self.data.items()}
