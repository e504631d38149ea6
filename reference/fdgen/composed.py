"""Finite differences on composed 2-D regions: cut stencils on a Cartesian grid over the bounding box.

A region that is not a box (a disc, a polygon, a square minus discs, an
L-shape, their space-time versions) is read through the region protocol of
:mod:`reference.fdgen.region`. On the node grid over its bounding box:

* the unknowns are the values at the nodes strictly inside the region, plus
  the values at the *boundary points*: where a grid line between an inside
  node and a node that is not inside crosses the boundary (``crossing``);
* each derivative at an inside node is a 1-D Fornberg stencil along its grid
  line (:func:`~reference.fdgen.stencils.fd_weights` on non-uniform points):
  the usual centred window where it fits, else the window of as many points
  nearest the node, the boundary point taking the place of the missing
  neighbour (Shortley-Weller at second order); mixed derivatives are
  products of these 1-D operators;
* at a boundary point, the value is the unknown itself, and a derivative
  (a Neumann or Robin condition, ``n_x, n_y`` the region's own outward normal
  there) comes from a least-squares polynomial of degree ``order`` through
  the boundary value and the nearest inside nodes that see the point;
* each boundary point takes the condition of the declared boundary part that
  contains it (a Dirichlet one where several do), so every boundary row is
  one unknown's own equation and the boundary unknowns are eliminated as on
  a box (steady linear: one solve; nonlinear: Newton; time: method of lines).

Accuracy: second order (``order=2``) for Dirichlet data (the local error of
a Shortley-Weller row is first order but the global error is second order);
Neumann/Robin rows are limited by the least-squares gradient, second order
on smooth boundaries, lower where a boundary point has few inside nodes in
view (a re-entrant corner, a thin neck). Features thinner than a grid cell
(two crossings between neighbouring nodes) are not seen.

No torch, no pinnsiren import: only numpy, scipy, sympy.
"""

from __future__ import annotations

import dataclasses
import time as _time
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import sympy
from scipy.spatial import cKDTree

from ..grid import Grid, GridField
from .cut_layout import CutLayout
from .discrete import symbolise
from .region import has_view, same_solid, view
from .solve import FDSolution, _march, _steady
from .spec import Spec, SpecError, _exprs, _problem_values
from .system import System

__all__ = ["PieceCondition", "CutSpec", "CutLayout", "CutSystem", "CutSolution", "is_composed",
           "from_problem_composed", "solve_cut"]

_BOX_KINDS = ("Box", "BoxBoundary", "TimeSlab")
#: prefix of the coefficient functions that carry the region's outward normal
NORMAL_FN = "fdgen_normal_"


@dataclasses.dataclass
class PieceCondition:
    """A residual imposed on the boundary points that the boundary view ``piece`` contains."""

    expr: sympy.Expr
    piece: Any
    name: str


@dataclasses.dataclass
class CutSpec(Spec):
    """A :class:`Spec` on a composed region: ``region`` (solid view of the space region) and
    ``pieces`` (:class:`PieceCondition`); ``conditions`` stays empty."""

    region: Any = None
    pieces: list = dataclasses.field(default_factory=list)


def is_composed(items: Sequence[tuple[str, Any]]) -> bool:
    """True when a Problem's constraints need the composed-region path: a region that is not a
    Box, box faces or a time slice and either no Box region at all or a region that is not a solid
    (a box with a solid sub-region keeps the box path, which refuses it by name)."""
    odd = [c.where for _, c in items if type(c.where).__name__ not in _BOX_KINDS]
    if not odd:
        return False
    if not any(type(c.where).__name__ == "Box" for _, c in items):
        return True
    for w in odd:
        if has_view(w):
            try:
                if w.__fdgen_region__().kind != "solid":
                    return True
            except (TypeError, ValueError):
                pass
    return False


# ------------------------------------------------------------------ spec
def from_problem_composed(problem: Any, fields: list, coords: tuple, items: list, t_idx: int | None,
                          periodic: Sequence[Any], values: Any, bounds: Any) -> CutSpec:
    """Read a Problem whose regions are composed (see :func:`reference.fdgen.from_problem`)."""
    if bounds is not None:
        raise SpecError("bounds= fixes a box; this Problem's region is composed: drop bounds")
    pairs = [name for name, c in items if getattr(c, "pair", None) is not None]
    if pairs or periodic:
        raise SpecError(f"constraints {pairs or ''} / periodic={list(periodic)}: periodic axes are not supported on "
                        "a composed region")
    solids, eqs, pieces, init, t_idx, t_bounds = _sort_constraints(items, coords, t_idx)
    name0, region = _one_region(solids)
    box = [tuple(float(b) for b in r) for r in np.asarray(region.bbox)]
    if t_idx is not None:
        if t_bounds is None:
            raise SpecError("time is declared but no constraint gives the time interval: use SpaceTime(shape, (t0, t1))")
        box.insert(t_idx, t_bounds)
    initial = _initial(init, region, box, t_idx)
    vals = _problem_values(problem, values)
    pieces = _normals(pieces, coords, vals, t_idx, region)
    for f in fields:
        if not isinstance(f, sympy.core.function.AppliedUndef) or tuple(f.args) != coords:
            raise SpecError(f"field {f} must be a function applied to exactly the coordinates {coords}")
    is_c = [bool(getattr(f.func, "pinn_complex", False)) for f in fields]
    return CutSpec(list(fields), is_c, coords, box, eqs, [], initial, t_idx, set(), vals, region=region, pieces=pieces)


def _sort_constraints(items: list, coords: tuple, t_idx: int | None) -> tuple:
    """``(solids, eqs, pieces, init, t_idx, t_bounds)``: the constraints sorted by the kind of their region
    (solid regions and their equations, boundary pieces, initial conditions) and the time axis and interval."""
    solids, eqs, pieces, init = [], [], [], []
    t_bounds = None
    for name, c in items:
        kind = type(c.where).__name__
        es = _exprs(c.expr)
        named = [(name if len(es) == 1 else f"{name}[{j}]", e) for j, e in enumerate(es)]
        v = view(c.where, name)
        if v.kind in ("spacetime", "spacetime_boundary", "time_slab"):
            if t_idx is None:
                t_idx = int(v.t_index)
            if int(v.t_index) != t_idx:
                raise SpecError(f"constraint {name!r}: its {kind} has time on axis {v.t_index} but time is axis {t_idx}")
            if v.kind != "time_slab":
                tb = tuple(float(b) for b in v.t_bounds)
                if t_bounds is not None and not np.allclose(tb, t_bounds, rtol=1e-12, atol=1e-12):
                    raise SpecError(f"constraint {name!r}: time interval {tb} differs from {t_bounds}")
                t_bounds = tb
        if v.kind == "solid":
            if t_idx is not None:
                raise SpecError(
                    f"constraint {name!r} is on a {kind} over all coordinates but {coords[t_idx]} is time: declare "
                    "the domain as SpaceTime(shape, (t0, t1)) (its .boundary(), .initial() for the conditions)")
            solids.append((name, v))
            eqs += named
        elif v.kind == "spacetime":
            solids.append((name, v.space))
            eqs += named
        elif v.kind == "boundary":
            pieces += [PieceCondition(e, v, name) for e in es]
        elif v.kind == "spacetime_boundary":
            pieces += [PieceCondition(e, v.space, name) for e in es]
        elif v.kind == "time_slab":
            if int(v.side) != 0:
                raise SpecError(f"constraint {name!r} is on the final-time slice; only initial conditions can be marched")
            init.append((name, v, es))
    return solids, eqs, pieces, init, t_idx, t_bounds


def _one_region(solids: list) -> tuple[str, Any]:
    """``(name, region)`` of the one 2-D solid region every equation holds in."""
    if not solids:
        raise SpecError("the Problem has no constraint on a solid region (a Shape or SpaceTime): there is no PDE "
                        "to discretise")
    name0, region = solids[0]
    for name, v in solids[1:]:
        if not same_solid(region, v):
            raise SpecError(f"constraints {name0!r} and {name!r} hold in different regions; the grid solver takes one "
                            "region for all equations (a constraint inside a sub-region is not supported)")
    if region.dim != 2:
        raise SpecError(f"constraint {name0!r}: its region is {region.dim}-D in space; composed regions are "
                        "discretised in 2-D only (3-D composed regions are not supported; a 3-D box is)")
    return name0, region


def _initial(init: list, region: Any, box: list, t_idx: int | None) -> list:
    out = []
    if init and t_idx is None:
        raise SpecError(f"constraint {init[0][0]!r} is an initial condition but no coordinate is declared as time")
    for name, where, es in init:
        t0 = float(where.t)
        if abs(t0 - box[t_idx][0]) > 1e-12 * max(1.0, abs(box[t_idx][0])):
            raise SpecError(f"constraint {name!r}: an initial condition at t = {t0} is not the initial time {box[t_idx][0]}")
        out += [(name, e) for e in es]
    return out


def _normal_source(piece: Any, region: Any) -> Any:
    """Whose outward normal ``n_<coord>`` means on a piece: the declared part's own, as the trainer samples it
    (``Ball.boundary()`` points out of the disc, into the domain around a hole; a box face out of its box;
    ``shape.boundary()`` of the domain out of the domain); the domain's if the part has none."""
    for view in (piece, getattr(piece, "space", None)):
        if view is not None and hasattr(view, "normal"):
            return view
    return region


def _normals(pieces: list, coords: tuple, vals: dict, t_idx: int | None, region: Any) -> list:
    """``n_<coord>`` in boundary conditions -> coefficient functions giving the declared part's outward normal."""
    names = {f"n_{c.name}": k for k, c in enumerate(coords)}
    names = {n: k for n, k in names.items() if n not in {c.name for c in coords}}
    space = [k for k in range(len(coords)) if k != t_idx]
    out = []
    for i, pc in enumerate(pieces):
        repl = {}
        for s in pc.expr.free_symbols:
            if not isinstance(s, sympy.Symbol) or s.name not in names:
                continue
            if s.name in vals:
                raise SpecError(f"constraint {pc.name!r}: values gives {s.name}, but the grid solver supplies the outward "
                                f"unit normal of the region at each boundary point itself: drop {s.name!r} from values")
            k = names[s.name]
            if k == t_idx:
                repl[s] = sympy.Integer(0)
                continue
            fn = f"{NORMAL_FN}{coords[k].name}_{i}"
            repl[s] = sympy.Function(fn, real=True)(*coords)
            vals[fn] = _normal_fn(_normal_source(pc.piece, region), space, space.index(k))
        out.append(dataclasses.replace(pc, expr=pc.expr.xreplace(repl)) if repl else pc)
    return out


def _normal_fn(region: Any, space: list, a: int):
    def f(*args):
        xs = np.broadcast_arrays(*[np.asarray(args[k], dtype=float) for k in space])
        p = np.column_stack([v.ravel() for v in xs])
        return region.normal(p)[:, a].reshape(xs[0].shape)

    return f


# ---------------------------------------------------------------- system
class CutSystem(System):
    """:class:`~reference.fdgen.system.System` on a :class:`CutLayout`: PDE rows at the inside nodes,
    one boundary row per boundary point and slot (no flux form: ``conservative`` is ignored)."""

    def __init__(self, spec: CutSpec, shape: Any, order: int = 2, conservative: bool = False) -> None:
        self.spec = spec
        self.layout = lay = CutLayout(spec, shape, order)
        nf = len(spec.fields)
        sym = self._slots(spec, "region")
        self.inner = np.arange(lay.n_in)
        self.bnodes = np.arange(lay.n_in, lay.N)
        self.N = lay.N
        self.conservative = False
        if spec.time is None:
            if len(spec.equations) != nf:
                raise SpecError(f"{len(spec.equations)} equations for {nf} fields: a steady problem needs one per field")
            self.pde = [self._residual(e, k, fn, self.inner, name) for (name, _), (e, k, fn) in zip(spec.equations, sym)]
            self.pde_slots = list(range(nf))
        else:
            self._time_rows(sym)
        self._boundary_rows()

    def _boundary_rows(self) -> None:
        spec, lay = self.spec, self.layout
        per_slot: dict[int, list] = {}
        for c in spec.pieces:
            where = f"constraint {c.name!r}"
            se, keys, funcs = symbolise(c.expr, spec, where)
            present = sorted({i for (i, to, a), s in keys.items() if s in se.free_symbols})
            if not present:
                raise SpecError(f"{where} on a boundary involves no field")
            values = [i for i in present if any(k[0] == i and not any(k[2]) and not k[1] for k in keys)]
            i = values[0] if values else present[0]
            dirichlet = all(not any(k[2]) for k, s in keys.items() if s in se.free_symbols)
            per_slot.setdefault(i, []).append((c, se, keys, funcs, dirichlet))
            if i in self.w_slot:
                t = spec.coords[spec.time]
                se2, keys2, funcs2 = symbolise(sympy.diff(c.expr, t), spec, where + " (d/dt)")
                per_slot.setdefault(self.w_slot[i], []).append((c, se2, keys2, funcs2, dirichlet))
        self.bc = []
        P = lay.bpoints
        for slot in range(self.n_slots):
            conds = per_slot.get(slot, [])
            member = np.stack([np.asarray(c[0].piece.contains(P), dtype=bool) for c in conds]) if conds else \
                np.zeros((0, lay.n_b), dtype=bool)
            missing = ~member.any(0) if conds else np.ones(lay.n_b, dtype=bool)
            if missing.any():
                pts = ", ".join(f"({p[0]:.4g}, {p[1]:.4g})" for p in P[missing][:3])
                have = sorted({c[0].name for c in conds})
                raise SpecError(
                    f"{int(missing.sum())} boundary points of the region, e.g. {pts}, lie on no boundary part with a "
                    f"condition for {self.slot_names[slot]} (conditions on {have or 'none'}); add a constraint on that "
                    "part of the boundary")
            rank = np.array([(0 if c[4] else len(conds)) + j for j, c in enumerate(conds)])
            choice = np.argmin(np.where(member, rank[:, None], 10 * len(conds) + 1), 0)
            for j, (c, se, keys, funcs, _) in enumerate(conds):
                rows = lay.n_in + np.flatnonzero(choice == j)
                if len(rows):
                    self.bc.append((slot, self._residual(se, keys, funcs, rows, f"constraint {c.name!r}")))


# ---------------------------------------------------------------- solve
@dataclasses.dataclass
class CutSolution(FDSolution):
    """:class:`FDSolution` on a composed region: grid fields are NaN outside the region.

    Attributes (besides ``fields``, ``stats``, ``system``)
    ----------
    points : (N, 2) coordinates of the unknowns (inside nodes, then boundary points)
    unknowns : name -> values at ``points`` (``(N,)``, or ``(T, N)`` over the output ``times``)
    times : output times (time-dependent problems), else None
    """

    points: np.ndarray = None
    unknowns: dict = dataclasses.field(default_factory=dict)
    times: Any = None

    def at(self, name: str, points: np.ndarray, time_index: int | None = None) -> np.ndarray:
        """Values of field ``name`` at arbitrary points of the region (space coordinates ``(M, 2)``).

        Bilinear in grid cells whose four nodes are inside; elsewhere (next to the boundary)
        linear on a Delaunay triangulation of the nearby unknowns (inside nodes and boundary
        points); a least-squares linear fit to the 6 nearest unknowns for a point outside their
        hull (a box corner, which no grid line crosses).
        """
        from scipy.interpolate import LinearNDInterpolator

        pts = np.atleast_2d(np.asarray(points, dtype=float))
        u = self.unknowns[name] if time_index is None else self.unknowns[name][time_index]
        lay = self.system.layout
        full = np.full(int(np.prod(lay.full_shape)), np.nan, dtype=u.dtype)
        full[lay.nodes] = u[: lay.n_in]
        on = lay.bnode >= 0
        full[lay.bnode[on]] = u[lay.n_in:][on]
        full = full.reshape(lay.full_shape)
        out = np.full(len(pts), np.nan, dtype=u.dtype)
        f = []
        idx = []
        for a in range(2):
            r = (pts[:, a] - lay.bounds[a][0]) / lay.h[a]
            i = np.clip(np.floor(r).astype(int), 0, lay.full_shape[a] - 2)
            idx.append(i)
            f.append(r - i)
        i, j = idx
        fx, fy = f
        c = [full[i, j], full[i + 1, j], full[i, j + 1], full[i + 1, j + 1]]
        val = c[0] * (1 - fx) * (1 - fy) + c[1] * fx * (1 - fy) + c[2] * (1 - fx) * fy + c[3] * fx * fy
        good = np.isfinite(val)
        out[good] = val[good]
        rest = np.flatnonzero(~good)
        if len(rest):
            tree = cKDTree(self.points / np.asarray(lay.h))
            near = tree.query_ball_point(pts[rest] / np.asarray(lay.h), r=3.0)
            use = np.unique(np.concatenate([np.asarray(n, dtype=int) for n in near] + [np.zeros(0, int)]))
            if len(use) >= 3:
                lin = LinearNDInterpolator(self.points[use], u[use])
                out[rest] = lin(pts[rest])
            miss = rest[~np.isfinite(out[rest])]
            if len(miss):  # outside the hull of the unknowns (e.g. at a box corner): a linear fit to the 6 nearest
                nb = tree.query(pts[miss] / np.asarray(lay.h), k=6)[1]
                d = self.points[nb] - pts[miss][:, None, :]
                A = np.concatenate([np.ones(nb.shape + (1,)), d], -1)
                coef = np.linalg.pinv(A)[:, 0, :]
                out[miss] = np.einsum("mk,mk->m", coef, u[nb])
        return out


def solve_cut(spec: CutSpec, shape: Any, order: int = 2, method: str = "auto", conservative: bool = True,
              guess: Any = None, tol: float = 1e-10, max_iter: int = 50, times: Any = 11, integrator: str = "BDF",
              rtol: float = 1e-6, atol: float = 1e-9, steps: int | None = None) -> CutSolution:
    """Discretise and solve a :class:`CutSpec` (see :func:`reference.fdgen.solve` for the parameters;
    ``conservative`` is ignored: composed regions use the plain stencils)."""
    from .solve import INTEGRATORS

    if integrator not in INTEGRATORS:
        raise ValueError(f"Invalid integrator {integrator!r}. Must be one of {list(INTEGRATORS)}")
    c0 = _time.process_time()
    system = CutSystem(spec, shape, order)
    lay = system.layout
    stats: dict[str, Any] = {"unknowns": system.n_slots * system.N, "order": order, "linear": system.linear,
                             "inside_nodes": lay.n_in, "boundary_points": lay.n_b}
    nf = len(spec.fields)
    if spec.time is None:
        U, more = _steady(system, method, guess, tol, max_iter, stats, c0)
        stats.update(more)
        Us, tt = [U], None
    else:
        tt, Us = _march(system, times, integrator, rtol, atol, steps, method, tol, max_iter, stats, c0)
    unknowns = {}
    for i in range(nf):
        v = np.stack([U[i * system.N:(i + 1) * system.N] for U in Us])
        unknowns[system.slot_names[i]] = (v if spec.complex[i] else v.real)[0 if tt is None else slice(None)]
    params = {"solver": "reference.fdgen", "region": "composed", "order": order,
              "coords": [str(c) for c in spec.coords], "fields": [spec.field_name(i) for i in range(nf)],
              "equations": [str(e) for _, e in spec.equations], "time_axis": spec.time,
              "stats": {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool))}}
    fields = {}
    for name, v in unknowns.items():
        vt = v[None] if tt is None else v
        grids = []
        for row in vt:
            full = np.full(int(np.prod(lay.full_shape)), np.nan, dtype=row.dtype)
            full[lay.nodes] = row[: lay.n_in]
            on = lay.bnode >= 0
            full[lay.bnode[on]] = row[lay.n_in:][on]
            grids.append(full.reshape(lay.full_shape))
        if tt is None:
            grid = Grid(tuple(lay.bounds), lay.full_shape)
            fields[name] = GridField(grid, grids[0], params)
        else:
            bounds = list(lay.bounds)
            shp = list(lay.full_shape)
            if not np.allclose(np.diff(tt), tt[1] - tt[0], rtol=1e-9, atol=0):
                raise ValueError("output times must be evenly spaced to form a grid")
            bounds.insert(spec.time, (tt[0], tt[-1]))
            shp.insert(spec.time, len(tt))
            fields[name] = GridField(Grid(tuple(bounds), tuple(shp)), np.moveaxis(np.stack(grids), 0, spec.time), params)
    return CutSolution(fields, stats, system, points=lay.points, unknowns=unknowns, times=tt)
