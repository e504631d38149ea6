"""Distance functions of boundary pieces of composed 2-D regions (for exact boundary conditions).

A composed region's boundary is made of parts of its primitives' boundary
curves (box and polygon edges, circles). :func:`decompose` walks those
curves, keeps the parts that lie on the composed boundary and labels each
part with the declared boundary piece it belongs to (or ``-1``: on the
boundary but declared nowhere). Each labelled part gets a *trimmed*
distance function (Sukumar & Srivastava, "Exact imposition of boundary
conditions with distance functions in physics-informed deep neural
networks", CMAME 2022, sec. 5): with ``f`` the normalised signed distance
to the carrier curve (a line or a circle) and ``t`` a trimming function,
positive on the part and negative on the rest of the carrier,

    phi = sqrt(f^2 + ((sqrt(t^2 + f^4) - t) / 2)^2),

which is zero on the part only, positive everywhere else, has a unit normal
derivative on the part and is smooth away from it. A segment trims with
``t = ((L/2)^2 - |x - x_c|^2) / L``, an arc with the signed distance to its
chord. A piece made of several parts joins them by R-equivalence,
``phi = 1 / sum_k 1 / phi_k``: zero on each part, positive elsewhere.

Unlike the ADF of a whole shape (:meth:`pinnsiren.geometry.Shape.adf`),
whose zero set is every carrier line's full length where a piece's own
shape is used, these vanish exactly on the declared part, so a product of
them is positive everywhere strictly inside any composed region.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np
import sympy
import torch

__all__ = ["Curve", "primitives", "decompose", "curve_adf", "piece_adf"]

#: membership test of a declared piece: (points (M, 2), outward normals (M, 2)) -> bool (M,)
Member = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass
class Curve:
    """A part of a primitive boundary curve: a segment ``p0 -> p1`` or an arc of a circle.

    ``label``: the index of the declared piece it lies on, ``-1`` for none.
    For an arc, ``p0`` is the centre, ``p1 = (radius, 0)``, ``th = (th0, th1)``.
    """

    kind: str
    p0: np.ndarray
    p1: np.ndarray
    th: tuple[float, float] = (0.0, 0.0)
    label: int = -1

    def points(self, m: int) -> np.ndarray:
        """``m`` points at the centres of ``m`` equal parameter cells (no endpoints), ``(m, 2)``."""
        s = (np.arange(m) + 0.5) / m
        return self.at(s)

    def at(self, s: np.ndarray) -> np.ndarray:
        if self.kind == "segment":
            return self.p0 + s[:, None] * (self.p1 - self.p0)
        th = self.th[0] + s * (self.th[1] - self.th[0])
        return self.p0 + self.p1[0] * np.stack([np.cos(th), np.sin(th)], 1)

    def ends(self) -> np.ndarray:
        return self.at(np.array([0.0, 1.0]))

    def length(self) -> float:
        if self.kind == "segment":
            return float(np.linalg.norm(self.p1 - self.p0))
        return float(self.p1[0] * abs(self.th[1] - self.th[0]))


def _static_bounds(b: Any) -> np.ndarray:
    if callable(b):
        raise NotImplementedError("a box with step-dependent bounds has no fixed boundary")
    return np.asarray(b, dtype=np.float64)


def primitives(shape: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The primitive boundary curves of a 2-D shape tree: ``("segment", p0, p1)`` or ``("circle", c, (r, 0))``."""
    from .geometry import Ball, Box, Polygon, _Composite

    if getattr(shape, "dim", None) != 2:
        raise NotImplementedError(f"trimmed distance functions are built for 2-D regions, not a {getattr(shape, 'dim', '?')}-D one")
    if isinstance(shape, _Composite):
        return primitives(shape.a) + primitives(shape.b)
    if isinstance(shape, Box):
        (x0, x1), (y0, y1) = _static_bounds(shape.bounds)
        c = [np.array(p, dtype=np.float64) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        return [("segment", c[i], c[(i + 1) % 4]) for i in range(4)]
    if isinstance(shape, Polygon):
        v = shape.vertices.numpy()
        return [("segment", v[i].copy(), v[(i + 1) % len(v)].copy()) for i in range(len(v))]
    if isinstance(shape, Ball):
        if callable(shape.radius):
            raise NotImplementedError("a disc with a step-dependent radius has no fixed boundary")
        return [("circle", shape.center.numpy().copy(), np.array([float(shape.radius), 0.0]))]
    raise NotImplementedError(f"no boundary curves known for a {type(shape).__name__}")


def _frame(kind: str, p0: np.ndarray, p1: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points and unit normals of a primitive at parameters ``s`` in [0, 1]."""
    if kind == "segment":
        e = p1 - p0
        n = np.array([e[1], -e[0]]) / np.linalg.norm(e)
        return p0 + s[:, None] * e, np.broadcast_to(n, (len(s), 2))
    th = 2 * np.pi * s
    u = np.stack([np.cos(th), np.sin(th)], 1)
    return p0 + p1[0] * u, u


def decompose(domain: Any, members: Sequence[Member], cells: int = 2048) -> list[Curve]:
    """The boundary of a composed 2-D ``domain`` as labelled curve parts.

    Parameters
    ----------
    domain : pinnsiren.geometry.Shape
        A 2-D shape (boxes, discs, polygons and their unions, intersections, differences).
    members : sequence of callables
        ``members[k](points, normals)``: which boundary points belong to the
        k-th declared piece. A part's label is the first piece that holds it.
    cells : int
        Parameter cells per primitive; part ends are then refined by bisection.

    Returns
    -------
    list of Curve: every part of the composed boundary, each labelled.
    """
    label = _labeller(domain, members)
    parts: list[Curve] = []
    for kind, p0, p1 in primitives(domain):
        s = (np.arange(cells) + 0.5) / cells
        lab = label(kind, p0, p1, s)
        cuts = _cuts(label, kind, p0, p1, s, lab)
        labs = [lab[0]] + [lab[i + 1] for i in np.nonzero(lab[1:] != lab[:-1])[0]]
        if kind == "circle" and len(labs) > 1 and labs[0] == labs[-1]:
            # the run through angle 0 is one part: start the loop at the first cut
            cuts = cuts[1:-1] + [cuts[1] + 1.0]
            labs = labs[1:]
        parts += _labelled_parts(kind, p0, p1, cuts, labs)
    return parts


def _labeller(domain: Any, members: Sequence[Member]) -> Callable:
    """``label(kind, p0, p1, s)``: per parameter value ``s`` of a primitive curve, the first
    declared piece holding the point (``-1``: on the boundary, declared nowhere; ``-2``: not
    on the composed boundary)."""
    b = domain.bbox(0).numpy()
    scale = float((b[:, 1] - b[:, 0]).max())
    eps = 1e-7 * scale

    def label(kind, p0, p1, s):
        x, n = _frame(kind, p0, p1, s)
        plus = domain.contains(torch.from_numpy(x + eps * n)).numpy()
        minus = domain.contains(torch.from_numpy(x - eps * n)).numpy()
        on = plus != minus
        out = np.where(plus[:, None], n, -n)  # the outward normal points to the outside
        lab = np.full(len(s), -2)
        lab[on] = -1
        for k in range(len(members) - 1, -1, -1):
            hit = members[k](x, out) & on
            lab[hit] = k
        return lab

    return label


def _cuts(label: Callable, kind: str, p0: Any, p1: Any, s: np.ndarray, lab: np.ndarray) -> list[float]:
    """Parameter values where the label changes (refined by bisection), framed by 0 and 1."""
    cuts = [0.0]
    for i in np.nonzero(lab[1:] != lab[:-1])[0]:
        lo, hi = s[i], s[i + 1]
        left = lab[i]
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            if label(kind, p0, p1, np.array([mid]))[0] == left:
                lo = mid
            else:
                hi = mid
        cuts.append(0.5 * (lo + hi))
    cuts.append(1.0)
    return cuts


def _labelled_parts(kind: str, p0: Any, p1: Any, cuts: list[float], labs: list) -> list[Curve]:
    """The curve parts between consecutive cuts that lie on the composed boundary, with their labels."""
    parts: list[Curve] = []
    for (a, c), lb in zip(zip(cuts[:-1], cuts[1:]), labs):
        if lb == -2 or c - a <= 0:
            continue
        if kind == "segment":
            e = p1 - p0
            parts.append(Curve("segment", p0 + a * e, p0 + c * e, label=int(lb)))
        else:
            spans = [(a, c)] if c - a < 0.75 else [(a, 0.5 * (a + c)), (0.5 * (a + c), c)]
            for u, v in spans:  # arcs over 270 degrees in two, so each chord trims cleanly
                parts.append(Curve("arc", p0, p1, (2 * np.pi * u, 2 * np.pi * v), label=int(lb)))
    return parts


def _num(v: float) -> sympy.Expr:
    return sympy.Float(float(v), 17)


def curve_adf(curve: Curve, coords: Sequence[sympy.Symbol]) -> sympy.Expr:
    """The trimmed distance function of one part: zero on it, positive elsewhere, smooth off it."""
    x, y = coords
    if curve.kind == "segment":
        (ax, ay), (bx, by) = curve.p0, curve.p1
        L = math.hypot(bx - ax, by - ay)
        f = ((x - _num(ax)) * _num(by - ay) - (y - _num(ay)) * _num(bx - ax)) / _num(L)
        cx, cy = 0.5 * (ax + bx), 0.5 * (ay + by)
        t = (_num((L / 2) ** 2) - (x - _num(cx)) ** 2 - (y - _num(cy)) ** 2) / _num(L)
    else:
        (cx, cy), r = curve.p0, float(curve.p1[0])
        f = (_num(r * r) - (x - _num(cx)) ** 2 - (y - _num(cy)) ** 2) / _num(2 * r)
        a0, a1 = curve.ends()
        mid = curve.at(np.array([0.5]))[0]
        e = a1 - a0
        nrm = np.array([-e[1], e[0]]) / np.linalg.norm(e)
        if float(nrm @ (mid - a0)) < 0:
            nrm = -nrm
        t = _num(nrm[0]) * (x - _num(a0[0])) + _num(nrm[1]) * (y - _num(a0[1]))
    rho = sympy.sqrt(t**2 + f**4)
    return sympy.sqrt(f**2 + ((rho - t) / 2) ** 2)


def piece_adf(curves: Sequence[Curve], coords: Sequence[sympy.Symbol]) -> sympy.Expr:
    """R-equivalence of the parts' distance functions (``1 / sum 1/phi_k``): zero on every part."""
    phis = [curve_adf(c, coords) for c in curves]
    if not phis:
        raise ValueError("piece_adf needs at least one curve")
    if len(phis) == 1:
        return phis[0]
    return 1 / sympy.Add(*[1 / p for p in phis])
