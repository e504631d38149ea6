"""Geometry: regions to sample, composed by union, difference and intersection.

A *region* samples collocation points: ``sample(n, step, generator) -> (x
(n, d) float64, data dict)``. A *shape* is a solid region that also knows
its membership, its boundary (with outward unit normals) and an approximate
distance function (ADF) for exact boundary conditions:

>>> domain = Box([(-0.5, 0.5)] * 2) - Ball([0.3, 0.3], 0.1) - Ball([-0.3, 0.3], 0.1)
>>> x, _ = domain.sample(1000, 0, g)               # 1000 points, all inside
>>> xb, data = domain.boundary().sample(500, 0, g)  # on the square and the circles
>>> data["normal"].shape                            # outward unit normals
(500, 2)

Sampling is uniform and exact in count: interior points are drawn by
rejection from the bounding box, boundary points by drawing from every
primitive boundary piece in proportion to its measure (area, length) and
keeping those that lie on the composed boundary, until ``n`` are kept. Both
keep uniformity (a uniform sample conditioned on a subset is uniform on it).

Normals reach a constraint as per-point values: a region whose samples carry
``data["normal"]`` (``(n, d)``) provides the symbols ``n_<coord>`` (see
:func:`pinnsiren.symbolic.normal`), so a Neumann condition is one line,
``Constraint(normal_derivative(u, (x, y)) - h, domain.boundary(), n=256)``.

Bounds of :class:`Box` and radii of :class:`Ball` may be callables of the
training step (a curriculum); composed shapes and ADFs use their step-0
values for the ADF and the step passed to ``sample`` otherwise.

The ADF code (R-functions, the transfinite lift) lives in :mod:`pinnsiren.adf`;
the sampling primitives in :mod:`pinnsiren.sampling`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import sympy
import torch

from .adf import ball_adf, box_adf, check_adf_coords, convex_polygon_adf, normalized_adf, r_and, r_or, \
    smooth_box_adf, spacetime_adf
from .sampling import _Piece, _ball_offsets, _bounds, _check_extent, _filtered, _resolve, _sample_pieces, \
    _uniform, _unit_vectors

__all__ = [
    "Region",
    "Shape",
    "Box",
    "Ball",
    "Polygon",
    "Union",
    "Intersection",
    "Difference",
    "Boundary",
    "BoxBoundary",
    "SpaceTime",
    "SpaceTimeBoundary",
    "TimeSlab",
]

Bounds = Sequence[Sequence[float]]

#: per-point data key of outward unit normals, shape (n, d)
NORMAL = "normal"


class Region:
    """Base class: ``sample(n, step, generator) -> (x (n, d) float64, data dict)``.

    ``data_names``: keys of the per-point data its samples carry
    (``"normal"``: outward unit normals ``(n, d)``, given to constraints as
    the symbols ``n_<coord>``; other keys: ``(n,)`` coefficient values).
    """

    dim: int
    data_names: tuple[str, ...] = ()

    def sample(self, n: int | None, step: int, generator: torch.Generator | None) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def __fdgen_region__(self) -> Any:
        """A plain-numpy view for grid solvers (``reference.fdgen``'s region protocol; see :mod:`pinnsiren.grid_region`)."""
        from .grid_region import grid_region

        return grid_region(self)


class Shape(Region):
    """A solid region: interior sampling, membership, boundary with normals, CSG and an ADF.

    Subclasses define ``_phi(x, step)`` (positive inside, negative outside,
    zero on the boundary; not necessarily a distance), ``bbox(step)``
    (``(d, 2)``), ``_pieces(step)`` (boundary pieces) and ``adf(coords)``.
    Compose with ``A | B`` (union), ``A & B`` (intersection), ``A - B``
    (difference).
    """

    #: relative tolerance of membership tests of boundary points against other shapes
    tol = 1e-12

    # --- to override
    def _phi(self, x: torch.Tensor, step: int) -> torch.Tensor:
        raise NotImplementedError

    def bbox(self, step: int = 0) -> torch.Tensor:
        """Bounding box ``(d, 2)`` of ``(lo, hi)`` per axis."""
        raise NotImplementedError

    def _pieces(self, step: int) -> list[_Piece]:
        raise NotImplementedError

    def _adf(self, coords: Sequence[sympy.Symbol]) -> sympy.Expr:
        raise NotImplementedError(f"{type(self).__name__} has no approximate distance function")

    def adf(self, coords: Sequence[sympy.Symbol], normalize: bool = False, smooth: bool = False) -> sympy.Expr:
        """Approximate distance function: SymPy expression, > 0 inside, 0 on the boundary.

        ``smooth`` (a :class:`Box` only): the polynomial of
        :func:`pinnsiren.adf.smooth_box_adf` instead of the R-conjunction of
        the slabs (for a :func:`~pinnsiren.adf.transfinite` lift; do not
        compose it with ``|``, ``&``, ``-``). ``normalize``: divide by its
        maximum over the shape, so it peaks at about 1
        (:func:`pinnsiren.adf.normalized_adf`).
        """
        coords = check_adf_coords(coords, self.dim)
        if smooth and not isinstance(self, Box):
            raise ValueError(f"smooth=True is for a Box; {type(self).__name__}.adf is composed by R-functions")
        phi = self._smooth_adf(coords) if smooth else self._adf(coords)
        return normalized_adf(self, phi, coords) if normalize else phi

    # --- derived
    def contains(self, x: Any, step: int = 0, strict: bool = False) -> torch.Tensor:
        """Boolean ``(N,)``: inside (``strict``: and not on the boundary, up to :attr:`tol`)."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float64)) if not torch.is_tensor(x) else x.to(torch.float64)
        p = self._phi(x, step)
        eps = self.tol * self._scale(step)
        return p > eps if strict else p >= -eps

    def _scale(self, step: int) -> float:
        b = self.bbox(step)
        return float((b[:, 1] - b[:, 0]).abs().max().clamp_min(1e-300))

    def sample(self, n, step, generator):
        if n is None or n < 0:
            raise ValueError(f"{type(self).__name__}.sample needs n >= 0 points, got {n}")
        b = self.bbox(step)
        out: list[torch.Tensor] = []
        have, rate, tries = 0, 1.0, 0
        while have < n:
            m = int(math.ceil((n - have) / max(rate, 1e-3) * 1.1)) + 16
            cand = _uniform(m, b, generator)
            ok = self.contains(cand, step)
            k = int(ok.sum())
            rate = max(k / m, 1e-3) if tries == 0 else 0.5 * rate + 0.5 * max(k / m, 1e-3)
            out.append(cand[ok])
            have += k
            tries += 1
            if tries > 200:
                raise ValueError(f"{type(self).__name__}: could not sample the interior (is the region empty?)")
        return torch.cat(out)[:n], {}

    def boundary(self) -> "Boundary":
        """The boundary as a region whose samples carry outward unit normals."""
        return Boundary(self)

    def volume(self, n: int = 400_000, step: int = 0, generator: torch.Generator | None = None) -> float:
        """Monte-Carlo estimate of the volume (area in 2-D) from ``n`` bounding-box points."""
        b = self.bbox(step)
        x = _uniform(n, b, generator)
        return float(self.contains(x, step).double().mean() * torch.prod(b[:, 1] - b[:, 0]))

    def __or__(self, other: "Shape") -> "Shape":
        return Union(self, other)

    def __and__(self, other: "Shape") -> "Shape":
        return Intersection(self, other)

    def __sub__(self, other: "Shape") -> "Shape":
        return Difference(self, other)


class Box(Shape):
    """Uniform samples in the box ``bounds = [(lo_0, hi_0), ...]`` (or a callable of step)."""

    def __init__(self, bounds: Bounds | Callable[[int], Bounds]) -> None:
        self.bounds = bounds
        b = _bounds(bounds, 0)
        self.dim = b.shape[0]
        if callable(bounds):  # a curriculum may start from a zero-width window (time growing from t0)
            if not bool(torch.isfinite(b).all()):
                raise ValueError(f"Box: bounds must be finite, got {b.tolist()} at step 0")
        else:
            _check_extent(b, "Box")

    def sample(self, n, step, generator):
        return _uniform(n, _bounds(self.bounds, step), generator), {}

    def boundary(self, faces: Sequence[tuple[int, int]] | None = None) -> "BoxBoundary":
        """The faces ``(axis, side)`` (side 0: ``lo``, 1: ``hi``; ``None``: all ``2 d``), with outward unit normals.

        E.g. ``Box([(-1, 1), (0, 1)]).boundary(faces=[(0, 0)])`` is the face
        ``x = -1``. Sampled in proportion to the faces' areas.
        """
        return BoxBoundary(self, faces)

    def bbox(self, step=0):
        return _bounds(self.bounds, step)

    def _phi(self, x, step):
        b = _bounds(self.bounds, step)
        return torch.minimum(x - b[:, 0], b[:, 1] - x).min(1).values

    def volume(self, n=0, step=0, generator=None):
        b = _bounds(self.bounds, step)
        return float(torch.prod(b[:, 1] - b[:, 0]))

    def _pieces(self, step):
        b = _bounds(self.bounds, step)
        ext = b[:, 1] - b[:, 0]
        d = self.dim
        pieces = []
        for a in range(d):
            area = float(torch.prod(torch.cat([ext[:a], ext[a + 1 :]]))) if d > 1 else 1.0
            for s in (0, 1):
                def draw(m, stp, g, a=a, s=s):
                    bb = _bounds(self.bounds, stp)
                    x = _uniform(m, bb, g)
                    x[:, a] = bb[a, s]
                    nrm = torch.zeros(m, d, dtype=torch.float64)
                    nrm[:, a] = 1.0 if s else -1.0
                    return x, nrm, torch.ones(m, dtype=torch.bool)

                pieces.append(_Piece(area, draw))
        return pieces

    def _smooth_adf(self, coords):
        return smooth_box_adf(coords, _bounds(self.bounds, 0).tolist())

    def _adf(self, coords):
        return box_adf(check_adf_coords(coords, self.dim), _bounds(self.bounds, 0).tolist())


class BoxBoundary(Region):
    """Some or all faces of a :class:`Box`, as ``Box.boundary(faces)`` makes them.

    Uniform samples on the faces, chosen in proportion to their area.
    ``faces``: list of ``(axis, side)`` with ``side`` 0 (``lo``) or 1
    (``hi``); ``None`` means all ``2 d`` faces. Samples carry outward unit
    normals (``data["normal"]``). ``bounds``: the box's bounds.
    """

    data_names = (NORMAL,)

    def __init__(self, box: "Box", faces: Sequence[tuple[int, int]] | None = None) -> None:
        if not isinstance(box, Box):
            raise TypeError(f"BoxBoundary needs a Box, got {type(box).__name__}; use Box(bounds).boundary(faces)")
        self.box = box
        self.bounds = box.bounds
        self.dim = box.dim
        self.faces = list(faces) if faces is not None else [(a, s) for a in range(self.dim) for s in (0, 1)]
        for a, s in self.faces:
            if not (0 <= a < self.dim) or s not in (0, 1):
                raise ValueError(f"bad face {(a, s)}: axis must be in [0, {self.dim}) and side 0 (lo) or 1 (hi)")

    def sample(self, n, step, generator):
        b = _bounds(self.bounds, step)
        ext = b[:, 1] - b[:, 0]
        area = torch.tensor([float(torch.prod(torch.cat([ext[:a], ext[a + 1 :]]))) for a, _ in self.faces])
        if float(area.sum()) <= 0:
            area = torch.ones(len(self.faces))
        which = torch.multinomial(area / area.sum(), n, replacement=True, generator=generator)
        x = _uniform(n, b, generator)
        nrm = torch.zeros(n, self.dim, dtype=torch.float64)
        for i, (a, s) in enumerate(self.faces):
            m = which == i
            x[m, a] = b[a, s]
            nrm[m, a] = 1.0 if s else -1.0
        return x, {NORMAL: nrm}


class Ball(Shape):
    """Uniform samples in the ball ``|x - center| <= radius`` (any dimension)."""

    def __init__(self, center: Sequence[float], radius: float | Callable[[int], float]) -> None:
        self.center = torch.as_tensor(np.asarray(center, dtype=np.float64))
        self.radius = radius
        self.dim = self.center.shape[0]
        if not bool(torch.isfinite(self.center).all()):
            raise ValueError(f"Ball: center must be finite, got {self.center.tolist()}")
        r0 = float(_resolve(radius, 0))
        if not (math.isfinite(r0) and r0 > 0):
            raise ValueError(f"Ball: radius must be a finite number > 0, got {r0}")

    def _r(self, step: int) -> float:
        r0 = float(_resolve(self.radius, step))
        if r0 < 0:
            raise ValueError(f"radius must be >= 0, got {r0}")
        return r0

    def sample(self, n, step, generator):
        return self.center + _ball_offsets(n, self.dim, self._r(step), generator), {}

    def bbox(self, step=0):
        r = self._r(step)
        return torch.stack([self.center - r, self.center + r], 1)

    def _phi(self, x, step):
        return self._r(step) - (x - self.center).norm(dim=1)

    def volume(self, n=0, step=0, generator=None):
        d = self.dim
        return math.pi ** (d / 2) / math.gamma(d / 2 + 1) * self._r(step) ** d

    def _pieces(self, step):
        d = self.dim
        area = 2 * math.pi ** (d / 2) / math.gamma(d / 2) * self._r(step) ** (d - 1)

        def draw(m, stp, g):
            v = _unit_vectors(m, d, g)
            return self.center + self._r(stp) * v, v, torch.ones(m, dtype=torch.bool)

        return [_Piece(area, draw)]

    def _adf(self, coords):
        return ball_adf(check_adf_coords(coords, self.dim), self.center, self._r(0))


class Polygon(Shape):
    """A simple 2-D polygon given by its vertices (either orientation, not repeated at the end).

    Membership by the even-odd rule; the boundary is its edges, each sampled
    in proportion to its length, with the outward normal of the edge. The
    ADF (:meth:`adf`) is given for convex polygons.
    """

    def __init__(self, vertices: Any) -> None:
        v = torch.as_tensor(np.ascontiguousarray(vertices, dtype=np.float64))
        if v.ndim != 2 or v.shape[1] != 2 or v.shape[0] < 3:
            raise ValueError(f"Polygon needs an (M >= 3, 2) array of vertices, got shape {tuple(v.shape)}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError("Polygon vertices contain non-finite values")
        nxt = torch.roll(v, -1, 0)
        signed = 0.5 * float((v[:, 0] * nxt[:, 1] - nxt[:, 0] * v[:, 1]).sum())
        if abs(signed) == 0:
            raise ValueError("Polygon has zero area")
        if signed < 0:  # make counter-clockwise
            v = torch.flip(v, [0])
        self.vertices = v
        self.dim = 2
        self.area = abs(signed)
        self._a = v
        self._b = torch.roll(v, -1, 0)
        e = self._b - self._a
        self._len = e.norm(dim=1)
        if bool((self._len == 0).any()):
            raise ValueError("Polygon has repeated consecutive vertices")
        # outward normal of a CCW edge (ex, ey) is (ey, -ex) / |e|
        self._nrm = torch.stack([e[:, 1], -e[:, 0]], 1) / self._len[:, None]
        cross = e[:, 0] * torch.roll(e, -1, 0)[:, 1] - e[:, 1] * torch.roll(e, -1, 0)[:, 0]
        self.convex = bool((cross >= -1e-14 * float(self._len.max()) ** 2).all())

    def bbox(self, step=0):
        return torch.stack([self.vertices.min(0).values, self.vertices.max(0).values], 1)

    def volume(self, n=0, step=0, generator=None):
        return self.area

    def _phi(self, x, step):
        a, b = self._a, self._b
        px, py = x[:, 0:1], x[:, 1:2]
        ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
        # even-odd crossings of a ray to +x
        cond = (ay > py) != (by > py)
        xint = ax + (py - ay) * (bx - ax) / torch.where(by == ay, torch.ones_like(by), by - ay)
        inside = ((cond & (px < xint)).sum(1) % 2) == 1
        # distance to the nearest edge
        e = b - a
        t = (((x[:, None, :] - a[None]) * e[None]).sum(-1) / (self._len**2)[None]).clamp(0, 1)
        dist = (x[:, None, :] - (a[None] + t[..., None] * e[None])).norm(dim=-1).min(1).values
        return torch.where(inside, dist, -dist)

    def _pieces(self, step):
        pieces = []
        for i in range(self.vertices.shape[0]):
            def draw(m, stp, g, i=i):
                s = torch.rand(m, 1, generator=g, dtype=torch.float64)
                x = self._a[i] + s * (self._b[i] - self._a[i])
                return x, self._nrm[i].expand(m, 2).clone(), torch.ones(m, dtype=torch.bool)

            pieces.append(_Piece(float(self._len[i]), draw))
        return pieces

    def _adf(self, coords):
        coords = check_adf_coords(coords, 2)
        if not self.convex:
            raise NotImplementedError(
                "Polygon.adf is given for convex polygons only; cover the polygon by OVERLAPPING convex "
                "polygons joined with | (parts that merely share an edge would make the ADF vanish on it)"
            )
        return convex_polygon_adf(coords, self._a.tolist(), self._nrm.tolist())


class _Composite(Shape):
    def __init__(self, a: Shape, b: Shape) -> None:
        for s in (a, b):
            if not isinstance(s, Shape):
                raise TypeError(f"{type(self).__name__} composes Shapes (Box, Ball, Polygon, ...), got {type(s).__name__}")
        if a.dim != b.dim:
            raise ValueError(f"cannot compose a {a.dim}-D and a {b.dim}-D shape")
        self.a, self.b = a, b
        self.dim = a.dim


class Union(_Composite):
    """Points in ``a`` or ``b``; boundary: the parts of each boundary outside the other."""

    def _phi(self, x, step):
        return torch.maximum(self.a._phi(x, step), self.b._phi(x, step))

    def bbox(self, step=0):
        p, q = self.a.bbox(step), self.b.bbox(step)
        return torch.stack([torch.minimum(p[:, 0], q[:, 0]), torch.maximum(p[:, 1], q[:, 1])], 1)

    def _pieces(self, step):
        a, b = self.a, self.b
        return [_filtered(p, lambda x: ~b.contains(x, step, strict=True), False) for p in a._pieces(step)] + [
            _filtered(p, lambda x: ~a.contains(x, step, strict=False), False) for p in b._pieces(step)
        ]

    def _adf(self, coords):
        return r_or(self.a._adf(coords), self.b._adf(coords))


class Intersection(_Composite):
    """Points in both ``a`` and ``b``; boundary: the parts of each boundary inside the other."""

    def _phi(self, x, step):
        return torch.minimum(self.a._phi(x, step), self.b._phi(x, step))

    def bbox(self, step=0):
        p, q = self.a.bbox(step), self.b.bbox(step)
        lo, hi = torch.maximum(p[:, 0], q[:, 0]), torch.minimum(p[:, 1], q[:, 1])
        return torch.stack([lo, torch.maximum(lo, hi)], 1)

    def _pieces(self, step):
        a, b = self.a, self.b
        return [_filtered(p, lambda x: b.contains(x, step, strict=False), False) for p in a._pieces(step)] + [
            _filtered(p, lambda x: a.contains(x, step, strict=True), False) for p in b._pieces(step)
        ]

    def _adf(self, coords):
        return r_and(self.a._adf(coords), self.b._adf(coords))


class Difference(_Composite):
    """Points in ``a`` and not in ``b``; ``b``'s boundary inside ``a`` gets reversed normals."""

    def _phi(self, x, step):
        return torch.minimum(self.a._phi(x, step), -self.b._phi(x, step))

    def bbox(self, step=0):
        return self.a.bbox(step)

    def _pieces(self, step):
        a, b = self.a, self.b
        return [_filtered(p, lambda x: ~b.contains(x, step, strict=True), False) for p in a._pieces(step)] + [
            _filtered(p, lambda x: a.contains(x, step, strict=True), True) for p in b._pieces(step)
        ]

    def _adf(self, coords):
        return r_and(self.a._adf(coords), -self.b._adf(coords))


class Boundary(Region):
    """The boundary of a :class:`Shape`, sampled uniformly by measure, with outward unit normals.

    ``sample`` returns ``data["normal"]`` ``(n, d)``: unit, pointing out of
    the shape (into a hole for a hole's boundary).
    """

    data_names = (NORMAL,)

    def __init__(self, shape: Shape) -> None:
        if not isinstance(shape, Shape):
            raise TypeError(f"Boundary needs a Shape, got {type(shape).__name__}")
        self.shape = shape
        self.dim = shape.dim

    def sample(self, n, step, generator):
        x, nrm = _sample_pieces(self.shape._pieces(step), n, step, generator, "Boundary")
        return x, {NORMAL: nrm}

    def measure(self, n: int = 200_000, step: int = 0, generator: torch.Generator | None = None) -> float:
        """Monte-Carlo estimate of the boundary's measure (length in 2-D, area in 3-D)."""
        pieces = self.shape._pieces(step)
        total = 0.0
        for p in pieces:
            m = max(1, int(round(n * p.measure / max(sum(q.measure for q in pieces), 1e-300))))
            _, _, keep = p.draw(m, step, generator)
            total += p.measure * float(keep.double().mean())
        return total


# --------------------------------------------------------------------------
# space-time


def _insert_t(xs: torch.Tensor, t: torch.Tensor, t_index: int) -> torch.Tensor:
    return torch.cat([xs[:, :t_index], t, xs[:, t_index:]], 1)


class SpaceTime(Region):
    """A spatial shape times a time interval: uniform in ``shape x [t0, t1]``.

    Time is coordinate ``t_index`` (default: last); the space coordinates
    keep their order. ``t_bounds`` may be a callable of the step (a growing
    window). Parts: :meth:`boundary` (the shape's boundary x time, normals
    with zero time component), :meth:`initial` (the slice ``t = t0``),
    :meth:`final`.
    """

    def __init__(self, shape: Shape, t_bounds: Any, t_index: int | None = None) -> None:
        if not isinstance(shape, Shape):
            raise TypeError(f"SpaceTime needs a spatial Shape, got {type(shape).__name__}")
        self.shape = shape
        self.t_bounds = t_bounds
        self.dim = shape.dim + 1
        self.t_index = self.dim - 1 if t_index is None else int(t_index)
        if not 0 <= self.t_index < self.dim:
            raise ValueError(f"t_index {t_index} out of range for {self.dim} coordinates")
        self._tb(0)

    def _tb(self, step: int) -> torch.Tensor:
        return _bounds([_resolve(self.t_bounds, step)], step)

    def sample(self, n, step, generator):
        xs, _ = self.shape.sample(n, step, generator)
        t = _uniform(n, self._tb(step), generator)
        return _insert_t(xs, t, self.t_index), {}

    def boundary(self) -> "SpaceTimeBoundary":
        """The lateral boundary ``∂shape x [t0, t1]`` with outward normals (time component 0)."""
        return SpaceTimeBoundary(self)

    def initial(self) -> "TimeSlab":
        """The initial slice ``shape x {t0}`` (normal ``-e_t``)."""
        return TimeSlab(self, 0)

    def final(self) -> "TimeSlab":
        """The final slice ``shape x {t1}`` (normal ``+e_t``)."""
        return TimeSlab(self, 1)

    def adf(self, coords: Sequence[sympy.Symbol], initial: bool = True, lateral: bool = True,
            normalize: bool = False) -> sympy.Expr:
        """ADF vanishing on the initial slice and/or the lateral boundary.

        ``initial``: factor ``(t - t0) / (t1 - t0)``; ``lateral``: the
        shape's ADF of the space coordinates (``normalize``: scaled to peak
        at about 1, see :meth:`Shape.adf`). Their product vanishes on both.
        """
        coords = check_adf_coords(coords, self.dim)
        return spacetime_adf(lambda space: self.shape.adf(space, normalize=normalize), coords, self.t_index,
                             self._tb(0)[0].tolist(), initial, lateral)


class SpaceTimeBoundary(Region):
    """``∂shape x [t0, t1]``, uniform by measure, normals ``(n_space, 0)``."""

    data_names = (NORMAL,)

    def __init__(self, st: SpaceTime) -> None:
        self.st = st
        self.dim = st.dim

    def sample(self, n, step, generator):
        xs, data = self.st.shape.boundary().sample(n, step, generator)
        t = _uniform(n, self.st._tb(step), generator)
        nrm = _insert_t(data[NORMAL], torch.zeros(n, 1, dtype=torch.float64), self.st.t_index)
        return _insert_t(xs, t, self.st.t_index), {NORMAL: nrm}


class TimeSlab(Region):
    """``shape x {t0}`` (side 0) or ``shape x {t1}`` (side 1), uniform in space, normal ``∓e_t``."""

    data_names = (NORMAL,)

    def __init__(self, st: SpaceTime, side: int) -> None:
        self.st, self.side = st, side
        self.dim = st.dim

    def sample(self, n, step, generator):
        xs, _ = self.st.shape.sample(n, step, generator)
        tv = float(self.st._tb(step)[0, self.side])
        t = torch.full((n, 1), tv, dtype=torch.float64)
        nrm = torch.zeros(n, self.dim, dtype=torch.float64)
        nrm[:, self.st.t_index] = 1.0 if self.side else -1.0
        return _insert_t(xs, t, self.st.t_index), {NORMAL: nrm}
