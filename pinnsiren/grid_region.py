"""Plain-numpy views of pinnsiren regions for grid solvers (the region protocol of ``reference.fdgen``).

A grid solver cannot call the torch-based regions of :mod:`pinnsiren.geometry`,
and ``reference/`` may not import pinnsiren; so every region answers
``region.__fdgen_region__()`` with one of the small numpy objects below, which
is all a grid solver reads (the protocol is documented in
``reference/fdgen/region.py``):

* a *solid* (``kind == "solid"``): ``dim``, ``bbox`` ``(d, 2)``, ``phi(p)``
  (positive inside, zero on the boundary, negative outside; a distance or
  min/max of distances), ``inside(p)`` (strictly inside), ``crossing(p, q)``
  (where the segment from an inside point ``p`` to a point ``q`` not inside
  first meets the boundary, as a fraction of ``q - p``) and ``normal(p)``
  (outward unit normal at boundary points);
* a *boundary part* (``kind == "boundary"``): ``contains(p)`` says which
  boundary points it covers (``Boundary`` of a shape: the shape's whole
  boundary; ``Box.boundary(faces)``: the listed faces), ``normal(p)``;
* space-time: ``"spacetime"`` (``space`` a solid, ``t_index``,
  ``t_bounds``), ``"spacetime_boundary"`` (``space`` a boundary part),
  ``"time_slab"`` (``space`` a solid, ``t_index``, ``t``, ``side``).

Points are ``(M, d)`` float64 arrays. Membership tests use the tolerance
``tol = 1e-10 * (largest bbox extent)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["grid_region", "Solid", "BoxSolid", "BallSolid", "PolygonSolid", "UnionSolid", "IntersectionSolid",
           "DifferenceSolid", "BoundaryPart", "FacesPart", "SpaceTimeView", "SpaceTimeBoundaryView", "TimeSlabView"]

#: membership tolerance, relative to the largest extent of the bounding box
REL_TOL = 1e-10


def _static(v: Any, what: str) -> Any:
    if callable(v):
        raise ValueError(f"{what} is a callable of the training step (a curriculum); a grid needs fixed values")
    return v


def _pts(p: Any) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return p.reshape(1, -1) if p.ndim == 1 else p


class Solid:
    """A solid region: membership by a level set ``phi``, boundary crossings and outward normals."""

    kind = "solid"

    def __init__(self, dim: int, bbox: np.ndarray) -> None:
        self.dim = int(dim)
        self.bbox = np.asarray(bbox, dtype=np.float64).reshape(self.dim, 2)
        self.tol = REL_TOL * max(float(np.max(self.bbox[:, 1] - self.bbox[:, 0])), 1e-300)

    def phi(self, p: np.ndarray) -> np.ndarray:
        """Level set ``(M,)``: > 0 inside, 0 on the boundary, < 0 outside."""
        raise NotImplementedError

    def normal(self, p: np.ndarray) -> np.ndarray:
        """Outward unit normals ``(M, d)`` at boundary points."""
        raise NotImplementedError

    def inside(self, p: np.ndarray) -> np.ndarray:
        """Strictly inside (``phi > tol``), bool ``(M,)``."""
        return self.phi(_pts(p)) > self.tol

    def on_boundary(self, p: np.ndarray) -> np.ndarray:
        return np.abs(self.phi(_pts(p))) <= 10 * self.tol

    def crossing(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Fraction ``s`` in ``(0, 1]`` with ``p + s (q - p)`` on the boundary (``p`` inside, ``q`` not).

        Bisection on ``phi`` along the segment to round-off (60 halvings); ``s = 1``
        exactly when ``q`` itself lies on the boundary.
        """
        p, q = _pts(p), _pts(q)
        lo, hi = np.zeros(len(p)), np.ones(len(p))
        on = np.abs(self.phi(q)) <= self.tol
        d = q - p
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            ins = self.phi(p + mid[:, None] * d) > 0
            lo = np.where(ins, mid, lo)
            hi = np.where(ins, hi, mid)
        s = 0.5 * (lo + hi)
        s[on] = 1.0
        return s


class BoxSolid(Solid):
    def __init__(self, bounds: Any) -> None:
        b = np.asarray(_static(bounds, "Box bounds"), dtype=np.float64)
        super().__init__(b.shape[0], b)

    def _dist(self, p):
        return np.concatenate([p - self.bbox[:, 0], self.bbox[:, 1] - p], 1)  # (M, 2d): lo faces, then hi faces

    def phi(self, p):
        return self._dist(_pts(p)).min(1)

    def normal(self, p):
        p = _pts(p)
        k = np.abs(self._dist(p)).argmin(1)
        n = np.zeros_like(p)
        n[np.arange(len(p)), k % self.dim] = np.where(k >= self.dim, 1.0, -1.0)
        return n


class BallSolid(Solid):
    def __init__(self, center: Any, radius: Any) -> None:
        self.center = np.asarray(center, dtype=np.float64).ravel()
        self.radius = float(_static(radius, "Ball radius"))
        r = self.radius
        super().__init__(len(self.center), np.stack([self.center - r, self.center + r], 1))

    def phi(self, p):
        return self.radius - np.linalg.norm(_pts(p) - self.center, axis=1)

    def normal(self, p):
        v = _pts(p) - self.center
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)


class PolygonSolid(Solid):
    """A simple polygon (vertices counter-clockwise): even-odd membership, signed distance to the edges."""

    def __init__(self, vertices: Any) -> None:
        v = np.asarray(vertices, dtype=np.float64)
        area = 0.5 * np.sum(v[:, 0] * np.roll(v, -1, 0)[:, 1] - np.roll(v, -1, 0)[:, 0] * v[:, 1])
        if area < 0:
            v = v[::-1].copy()
        self.a, self.b = v, np.roll(v, -1, 0)
        e = self.b - self.a
        self.len2 = np.sum(e**2, 1)
        self.nrm = np.stack([e[:, 1], -e[:, 0]], 1) / np.sqrt(self.len2)[:, None]
        super().__init__(2, np.stack([v.min(0), v.max(0)], 1))

    def _edge_dist(self, p):
        e = self.b - self.a
        t = np.clip(((p[:, None, :] - self.a[None]) * e[None]).sum(-1) / self.len2[None], 0.0, 1.0)
        return np.linalg.norm(p[:, None, :] - (self.a[None] + t[..., None] * e[None]), axis=-1)  # (M, E)

    def phi(self, p):
        p = _pts(p)
        ax, ay, bx, by = self.a[:, 0], self.a[:, 1], self.b[:, 0], self.b[:, 1]
        px, py = p[:, 0:1], p[:, 1:2]
        cond = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = ax + (py - ay) * (bx - ax) / np.where(by == ay, 1.0, by - ay)
        inside = (np.sum(cond & (px < xint), 1) % 2) == 1
        dist = self._edge_dist(p).min(1)
        return np.where(inside, dist, -dist)

    def normal(self, p):
        return self.nrm[self._edge_dist(_pts(p)).argmin(1)]


class _Composite(Solid):
    def __init__(self, a: Solid, b: Solid, bbox: np.ndarray) -> None:
        if a.dim != b.dim:
            raise ValueError(f"cannot compose a {a.dim}-D and a {b.dim}-D region")
        self.a, self.b = a, b
        super().__init__(a.dim, bbox)


class UnionSolid(_Composite):
    def __init__(self, a, b):
        super().__init__(a, b, np.stack([np.minimum(a.bbox[:, 0], b.bbox[:, 0]), np.maximum(a.bbox[:, 1], b.bbox[:, 1])], 1))

    def phi(self, p):
        return np.maximum(self.a.phi(p), self.b.phi(p))

    def normal(self, p):
        p = _pts(p)
        use_a = self.a.phi(p) >= self.b.phi(p)
        return np.where(use_a[:, None], self.a.normal(p), self.b.normal(p))


class IntersectionSolid(_Composite):
    def __init__(self, a, b):
        lo, hi = np.maximum(a.bbox[:, 0], b.bbox[:, 0]), np.minimum(a.bbox[:, 1], b.bbox[:, 1])
        super().__init__(a, b, np.stack([lo, np.maximum(lo, hi)], 1))

    def phi(self, p):
        return np.minimum(self.a.phi(p), self.b.phi(p))

    def normal(self, p):
        p = _pts(p)
        use_a = self.a.phi(p) <= self.b.phi(p)
        return np.where(use_a[:, None], self.a.normal(p), self.b.normal(p))


class DifferenceSolid(_Composite):
    def __init__(self, a, b):
        super().__init__(a, b, a.bbox)

    def phi(self, p):
        return np.minimum(self.a.phi(p), -self.b.phi(p))

    def normal(self, p):
        p = _pts(p)
        use_a = self.a.phi(p) <= -self.b.phi(p)
        return np.where(use_a[:, None], self.a.normal(p), -self.b.normal(p))


class BoundaryPart:
    """The whole boundary of a solid (``Boundary(shape)``)."""

    kind = "boundary"

    def __init__(self, solid: Solid) -> None:
        self.solid, self.dim = solid, solid.dim

    def contains(self, p: np.ndarray) -> np.ndarray:
        """Bool ``(M,)``: the boundary points (of any region) that lie on this part."""
        return self.solid.on_boundary(p)

    def normal(self, p: np.ndarray) -> np.ndarray:
        return self.solid.normal(p)


class FacesPart:
    """Faces ``(axis, side)`` of a box (``Box.boundary(faces)``)."""

    kind = "boundary"

    def __init__(self, bounds: Any, faces: Any) -> None:
        self.box = BoxSolid(bounds)
        self.dim = self.box.dim
        self.faces = [(int(a), int(s)) for a, s in faces]

    def contains(self, p):
        p = _pts(p)
        tol = 10 * self.box.tol
        b = self.box.bbox
        closed = np.all((p >= b[:, 0] - tol) & (p <= b[:, 1] + tol), 1)
        on = np.zeros(len(p), dtype=bool)
        for a, s in self.faces:
            on |= np.abs(p[:, a] - b[a, s]) <= tol
        return closed & on

    def normal(self, p):
        """The outward normal of the declared face a point lies on (the first one, at an edge or corner)."""
        p = _pts(p)
        n = self.box.normal(p)
        b, tol = self.box.bbox, 10 * self.box.tol
        done = np.zeros(len(p), dtype=bool)
        for a, s in self.faces:
            on = ~done & (np.abs(p[:, a] - b[a, s]) <= tol)
            n[on] = 0.0
            n[on, a] = 1.0 if s else -1.0
            done |= on
        return n


class SpaceTimeView:
    kind = "spacetime"

    def __init__(self, space: Solid, t_bounds: Any, t_index: int) -> None:
        tb = np.asarray(_static(t_bounds, "SpaceTime t_bounds"), dtype=np.float64).ravel()
        self.space, self.t_bounds, self.t_index = space, (float(tb[0]), float(tb[1])), int(t_index)
        self.dim = space.dim + 1


class SpaceTimeBoundaryView:
    kind = "spacetime_boundary"

    def __init__(self, st: SpaceTimeView) -> None:
        self.space = BoundaryPart(st.space)
        self.t_bounds, self.t_index, self.dim = st.t_bounds, st.t_index, st.dim


class TimeSlabView:
    kind = "time_slab"

    def __init__(self, st: SpaceTimeView, side: int) -> None:
        self.space, self.t_index, self.side, self.dim = st.space, st.t_index, int(side), st.dim
        self.t = st.t_bounds[self.side]


def grid_region(region: Any) -> Any:
    """The numpy view of a pinnsiren region (see the module docstring).

    Raises
    ------
    TypeError
        For a region without a grid view (point sets, cones, Gaussian samples).
    ValueError
        For bounds or radii that are callables of the training step.
    """
    from . import geometry as g

    if isinstance(region, g.Box):
        return BoxSolid(region.bounds)
    if isinstance(region, g.Ball):
        return BallSolid(region.center.numpy(), region.radius)
    if isinstance(region, g.Polygon):
        return PolygonSolid(region.vertices.numpy())
    for cls, view in ((g.Union, UnionSolid), (g.Intersection, IntersectionSolid), (g.Difference, DifferenceSolid)):
        if isinstance(region, cls):
            return view(grid_region(region.a), grid_region(region.b))
    if isinstance(region, g.Boundary):
        return BoundaryPart(grid_region(region.shape))
    if isinstance(region, g.BoxBoundary):
        return FacesPart(region.bounds, region.faces)
    if isinstance(region, g.SpaceTime):
        return SpaceTimeView(grid_region(region.shape), region.t_bounds, region.t_index)
    if isinstance(region, g.SpaceTimeBoundary):
        return SpaceTimeBoundaryView(grid_region(region.st))
    if isinstance(region, g.TimeSlab):
        return TimeSlabView(grid_region(region.st), region.side)
    raise TypeError(f"a {type(region).__name__} region has no grid view (boxes, balls, polygons, their unions, "
                    "intersections and differences, their boundaries and space-time regions do)")
