"""The region protocol: what the grid solver reads from a region that is not a box.

fdgen imports no pinnsiren (no torch), so it does not look at region classes.
A region object ``R`` offers ``R.__fdgen_region__()``, which returns a
plain-numpy *view* with a ``kind`` and these members (points are ``(M, d)``
float64 arrays; pinnsiren's implementation is ``pinnsiren/grid_region.py``):

``kind == "solid"`` (the region a PDE holds in)
    ``dim``; ``bbox`` ``(d, 2)`` array of ``(lo, hi)``;
    ``inside(p) -> bool (M,)``: strictly inside (not on the boundary);
    ``crossing(p, q) -> (M,)``: the fraction ``s`` in ``(0, 1]`` at which the
    segment from an inside point ``p`` to a point ``q`` that is not inside first
    meets the boundary (``1`` when ``q`` is on it);
    ``normal(p) -> (M, d)``: the outward unit normal at boundary points.
``kind == "boundary"`` (a declared part of the boundary, e.g. one hole's circle)
    ``dim``; ``contains(p) -> bool (M,)``: which boundary points it covers.
``kind == "spacetime"``
    ``space`` (a solid), ``t_index``, ``t_bounds = (t0, t1)``.
``kind == "spacetime_boundary"``
    ``space`` (a boundary part), ``t_index``, ``t_bounds``.
``kind == "time_slab"``
    ``space`` (a solid), ``t_index``, ``t``, ``side`` (0 initial, 1 final).

Which condition applies at a boundary point of the grid is decided by
``contains`` of the declared parts, so the parts need not be the primitives of
the solid (``Box.boundary(faces)`` of the outer square, or ``Boundary(hole)`` for a
hole that was subtracted, both work).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .spec import SpecError

__all__ = ["KINDS", "view", "has_view", "same_solid"]

#: the view kinds and the members each must have
KINDS = {
    "solid": ("dim", "bbox", "inside", "crossing", "normal"),
    "boundary": ("dim", "contains"),
    "spacetime": ("space", "t_index", "t_bounds"),
    "spacetime_boundary": ("space", "t_index", "t_bounds"),
    "time_slab": ("space", "t_index", "t", "side"),
}


def has_view(where: Any) -> bool:
    return callable(getattr(where, "__fdgen_region__", None))


def view(where: Any, name: str) -> Any:
    """The protocol view of constraint ``name``'s region, checked for its members.

    Raises
    ------
    SpecError
        Naming the constraint and region when the region has no view, refuses one
        (e.g. a curriculum bound), or the view lacks a member of its kind.
    """
    kind = type(where).__name__
    if not has_view(where):
        raise SpecError(
            f"constraint {name!r} is on a {kind} region, which has no grid view (__fdgen_region__); the grid solver "
            "discretises boxes, balls, polygons and their unions, intersections and differences (2-D), their "
            "boundaries and space-time versions"
        )
    try:
        v = where.__fdgen_region__()
    except (TypeError, ValueError) as exc:
        raise SpecError(f"constraint {name!r}: its {kind} region has no grid view: {exc}") from exc
    k = getattr(v, "kind", None)
    if k not in KINDS:
        raise SpecError(f"constraint {name!r}: the grid view of its {kind} region has kind {k!r}, not one of {list(KINDS)}")
    missing = [m for m in KINDS[k] if not hasattr(v, m)]
    if missing:
        raise SpecError(f"constraint {name!r}: the grid view of its {kind} region lacks {missing} (kind {k!r})")
    return v


def same_solid(a: Any, b: Any, n: int = 512) -> bool:
    """True when two solid views agree on their bounding box and on membership at ``n`` fixed points."""
    if a is b:
        return True
    if a.dim != b.dim or not np.allclose(a.bbox, b.bbox, rtol=1e-12, atol=1e-12):
        return False
    rng = np.random.default_rng(7)
    p = a.bbox[:, 0] + rng.random((n, a.dim)) * (a.bbox[:, 1] - a.bbox[:, 0])
    return bool(np.array_equal(a.inside(p), b.inside(p)))
