"""A PDE specification read from a pinnsiren Problem (duck-typed) or from plain SymPy objects.

Nothing here imports pinnsiren (which pulls in torch): a Problem is read
through its attributes ``fields``, ``coords``, ``constraints`` (name ->
constraint with ``expr`` and ``where``), ``coefficients`` and ``parameters``;
regions through their class name and attributes (``Box.bounds``; the faces
``Box.boundary(faces)`` makes, a ``BoxBoundary``: ``bounds/faces``; the slice
``SpaceTime(Box(...), (t0, t1)).initial()`` makes, a ``TimeSlab``:
``st.shape.bounds/st.t_bounds/st.t_index/side``).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Mapping, Sequence

import numpy as np
import sympy

__all__ = ["SpecError", "Spec", "Condition", "Gauge", "gauge_of", "TorchOnly", "from_problem", "from_sympy", "face_normals", "periodic_pairs"]


class SpecError(ValueError):
    """A spec the grid solver cannot discretise; the message names the term, region or constraint."""


@dataclasses.dataclass(frozen=True)
class TorchOnly:
    """A Problem coefficient given as a torch callable: it needs a numpy value (``values=``) on the grid."""

    name: str


@dataclasses.dataclass
class Condition:
    """A residual imposed on one face ``(axis, side)`` of the box (side 0 = lo, 1 = hi)."""

    expr: sympy.Expr
    face: tuple[int, int]
    name: str


@dataclasses.dataclass(frozen=True)
class Gauge:
    """``field = value`` at one point (a ``PointSet`` constraint of one point on one field's value)."""

    field: str
    point: tuple
    value: float
    name: str


def gauge_of(name: str, c: Any, fields: Sequence[Any]) -> Gauge | None:
    """The gauge a constraint declares (one point of a ``PointSet``, one field's value minus a constant),
    or None."""
    if type(c.where).__name__ != "PointSet" or getattr(c.where, "data_names", ()):
        return None
    pts = np.asarray(c.where.points, dtype=float)
    exprs = _exprs(c.expr)
    if pts.shape[0] != 1 or len(exprs) != 1:
        return None
    e = sympy.sympify(exprs[0])
    if e.atoms(sympy.Derivative):
        return None
    present = [f for f in fields if e.has(f)]
    if len(present) != 1:
        return None
    f = present[0]
    coef = sympy.diff(e, f)
    rest = sympy.sympify(e.xreplace({f: sympy.S.Zero}))
    if coef.free_symbols or rest.free_symbols or coef == 0 or sympy.diff(coef, f) != 0:
        return None
    return Gauge(f.func.__name__, tuple(float(v) for v in pts[0]), float(-rest / coef), name)


@dataclasses.dataclass
class Spec:
    """Everything the grid solver needs, in one normalised form.

    Attributes
    ----------
    fields : list of SymPy applied functions (the unknowns, in order)
    complex : list of bool, per field
    coords : tuple of Symbol
    bounds : list of (lo, hi) per coordinate (the time axis included)
    equations : list of (name, expr): PDE residuals imposed inside the box
    conditions : list of Condition on spatial faces
    initial : list of (name, expr): residuals imposed at the initial time
    time : index of the time coordinate, or None (steady)
    periodic : set of periodic axes
    values : mapping name -> number or numpy callable ``f(*coords)``
        Parameters (symbols) and coefficient functions.
    """

    fields: list
    complex: list
    coords: tuple
    bounds: list
    equations: list
    conditions: list
    initial: list
    time: int | None = None
    periodic: set = dataclasses.field(default_factory=set)
    values: dict = dataclasses.field(default_factory=dict)
    gauges: list = dataclasses.field(default_factory=list)
    """``Gauge`` entries: a field's value at one point, which fixes the additive constant of a field the
    grid rows determine only up to one (a pressure); applied after the solve."""

    @property
    def space_axes(self) -> list[int]:
        """The coordinate indices that are discretised on the grid (all but time)."""
        return [k for k in range(len(self.coords)) if k != self.time]

    def field_name(self, i: int) -> str:
        return self.fields[i].func.__name__


def _exprs(expr: Any) -> list:
    if isinstance(expr, (list, tuple)):
        out = []
        for e in expr:
            out += _exprs(e)
        return out
    if isinstance(expr, sympy.Eq):
        return [sympy.sympify(expr.lhs - expr.rhs)]
    return [sympy.sympify(expr)]


def _static_bounds(b: Any, what: str) -> list[tuple[float, float]]:
    if callable(b):
        raise SpecError(
            f"{what}: its bounds are a callable of the training step (a curriculum); the grid solver needs a "
            "fixed box: pass bounds=[(lo, hi), ...] to the grid solver"
        )
    out = [(float(lo), float(hi)) for lo, hi in b]
    for k, (lo, hi) in enumerate(out):
        if not hi > lo:
            raise SpecError(f"{what}: axis {k} has bounds ({lo}, {hi}); the grid needs lo < hi")
    return out


def _time_index(coords: tuple, time: Any) -> int | None:
    if time is None:
        return None
    if isinstance(time, numbers.Integral):
        if not 0 <= time < len(coords):
            raise SpecError(f"time axis {time} is out of range for coordinates {coords}")
        return int(time)
    if time not in coords:
        raise SpecError(f"time coordinate {time} is not one of the coordinates {coords}")
    return coords.index(time)


def _axes(coords: tuple, axes: Sequence[Any]) -> set[int]:
    out = set()
    for a in axes or ():
        out.add(_time_index(coords, a))  # same lookup: a symbol or an index
    return out


def _value(v: Any) -> Any:
    if isinstance(v, (numbers.Number, sympy.Basic)):
        return v
    if callable(v):
        return v
    try:  # a 0-d tensor or array (e.g. a learnable parameter): its current value
        return float(v)
    except (TypeError, ValueError):
        return v


def from_problem(
    problem: Any,
    time: Any = None,
    periodic: Sequence[Any] = (),
    values: Mapping[str, Any] | None = None,
    bounds: Sequence[Sequence[float]] | None = None,
    skip: Sequence[str] = (),
) -> Spec:
    """Read a pinnsiren ``Problem`` (duck-typed: no pinnsiren import).

    Parameters
    ----------
    problem : object with ``fields``, ``coords``, ``constraints``
    time : Symbol or int, optional
        The time coordinate; inferred from a ``SpaceTime.initial()`` constraint when not given.
    periodic : sequence of Symbol or int
        Periodic axes (their faces need no condition). A pair constraint
        (``Constraint(..., pair=shift)``) whose shift is the box's extent along
        one axis declares that axis periodic too (see :func:`periodic_pairs`).
    values : mapping name -> number or numpy callable ``f(*coords)``, optional
        Coefficient functions and parameters; these win over the Problem's own
        (whose callables are torch functions the grid solver cannot call).
    bounds : fixed box, optional
        Overrides the interior region's bounds (e.g. for curriculum regions).
    skip : sequence of str
        Names of constraints the grid solver leaves out, e.g. the observations
        of an inverse problem once its unknown coefficient is given in ``values``.

    A *field* named in ``values`` is held known there (a coefficient of the
    others): how an inverse problem's forward problem is solved on the grid,
    e.g. ``values={"a": a_true}`` for ``Field("a", (x, y))`` in ``(x, y, t)``.
    A field over a subset of the coordinates that is not given is refused: the
    grid's unknowns are functions of all coordinates (a time-independent
    unknown in a marched problem is out of reach).

    Raises
    ------
    SpecError
        For a region that is not a box (naming the constraint and region), inconsistent boxes,
        or a condition on the final time.
    """
    coords = tuple(problem.coords)
    fields = list(problem.fields)
    items = _constraint_items(problem.constraints, skip)
    fields = [f for f in fields if f.func.__name__ not in {_name(k) for k in (values or {})}]  # given: held known
    items, gauges = _split_gauges(items, fields)
    t_idx = _infer_time_index(coords, time, items)
    from .composed import from_problem_composed, is_composed  # regions that are not boxes: cut stencils

    if is_composed(items):
        _refuse_gauges(gauges, "on box domains")
        return from_problem_composed(problem, fields, coords, items, t_idx, periodic, values, bounds)
    pairs = [(name, c) for name, c in items if getattr(c, "pair", None) is not None]
    items = [(name, c) for name, c in items if getattr(c, "pair", None) is None]
    box, eqs, conds, init = _sort_constraints(items, bounds, t_idx)
    initial = _initial_conditions(init, box, len(coords), t_idx)
    vals = _problem_values(problem, values)
    axes = _axes(coords, periodic) | periodic_pairs(pairs, box, coords)
    return _with_gauges(_finish(fields, coords, box, eqs, conds, initial, t_idx, axes, vals), gauges)


def _refuse_gauges(gauges: list, where: str) -> None:
    if gauges:
        raise SpecError(f"constraint {gauges[0].name!r}: a one-point gauge is taken {where} only")


def _with_gauges(spec: Spec, gauges: list) -> Spec:
    if spec.time is not None:
        _refuse_gauges(gauges, "on steady problems")
    spec.gauges = gauges
    return spec


def _split_gauges(items: list[tuple[str, Any]], fields: Sequence[Any]) -> tuple[list, list]:
    """The constraints that are not one-point gauges, and the gauges (see :func:`gauge_of`)."""
    gauges = [g for g in (gauge_of(name, c, fields) for name, c in items) if g is not None]
    names = {g.name for g in gauges}
    return [(name, c) for name, c in items if name not in names], gauges


def _constraint_items(cons: Any, skip: Sequence[str]) -> list[tuple[str, Any]]:
    """``[(name, constraint)]`` of a Problem's constraints (a mapping or a sequence), without those in ``skip``."""
    items = list(cons.items()) if isinstance(cons, Mapping) else [(c.name or f"c{i}", c) for i, c in enumerate(cons)]
    unknown = sorted(set(skip) - {name for name, _ in items})
    if unknown:
        raise SpecError(f"skip names {unknown}, which are not constraints of the Problem {[n for n, _ in items]}")
    return [(name, c) for name, c in items if name not in set(skip)]


def _infer_time_index(coords: tuple, time: Any, items: list[tuple[str, Any]]) -> int | None:
    """The time axis: ``time`` when given, else that of the first ``SpaceTime.initial()`` constraint, else None."""
    t_idx = _time_index(coords, time)
    if t_idx is None:
        for _, c in items:
            if type(c.where).__name__ == "TimeSlab":
                t_idx = int(c.where.st.t_index)
                break
    return t_idx


def periodic_pairs(pairs: Sequence[tuple[str, Any]], box: Sequence[tuple[float, float]], coords: tuple) -> set[int]:
    """The periodic axes that two-point constraints (``Constraint(..., pair=shift)``) declare.

    A pair constraint is read as "axis ``k`` is periodic" when its region is a
    face set ``Box.boundary(faces)`` of the domain box whose faces are all the lo face of ``k``
    and its shift is the box's extent along ``k`` (zero on every other axis),
    e.g. ``Constraint([u, u.diff(x)], Box(box).boundary(faces=[(0, 0)]), pair=(2, 0))``
    on ``[-1, 1]^2``; the hi face with the negative extent reads the same. The
    periodic grid then makes every field and all its derivatives periodic
    along ``k``, whatever the constraint's expressions list.

    Raises
    ------
    SpecError
        Naming each pair constraint that is not of that form (a callable
        ``pair``, another region, a shift that is not one axis' extent).
    """
    axes: set[int] = set()
    bad = []
    for name, c in pairs:
        axis = _pair_axis(c, box)
        if axis is None:
            bad.append(f"{name!r} (pair={c.pair!r} on a {type(c.where).__name__})")
        else:
            axes.add(axis)
    if bad:
        ext = ", ".join(f"{coords[k]}: {hi - lo:g}" for k, (lo, hi) in enumerate(box))
        raise SpecError(
            f"pair constraint(s) {', '.join(bad)}: the grid solver reads a pair constraint only as a periodic axis: "
            f"a shift equal to the box's extent along one axis ({ext}) and 0 on the others, on a Box.boundary(faces) "
            "holding that axis' lo face (or its hi face with the negative extent); pass periodic=[...] or drop them"
        )
    return axes


def _pair_axis(c: Any, box: Sequence[tuple[float, float]]) -> int | None:
    """The axis a pair constraint makes periodic, or None when it is not of that form."""
    if callable(c.pair) or type(c.where).__name__ != "BoxBoundary":
        return None
    try:
        b = _static_bounds(c.where.bounds, "pair")
        shift = [float(v) for v in c.pair]
        faces = {(int(a), int(s)) for a, s in c.where.faces}
    except (SpecError, TypeError, ValueError):
        return None
    if b != list(box) or len(shift) != len(box) or len({a for a, _ in faces}) != 1 or len(faces) != 1:
        return None
    (axis, side), = faces
    lo, hi = box[axis]
    tol = 1e-12 * max(1.0, abs(lo), abs(hi))
    want = (hi - lo) if side == 0 else (lo - hi)
    if abs(shift[axis] - want) > tol or any(abs(v) > tol for k, v in enumerate(shift) if k != axis):
        return None
    return axis


def _sort_constraints(items: list[tuple[str, Any]], bounds: Sequence[Sequence[float]] | None, t_idx: int | None
                      ) -> tuple[list, list, list, list]:
    """The domain box, the equations (Box constraints), the face conditions (``Box.boundary(faces)``) and
    the initial-slice constraints (``SpaceTime(Box(...), ...).initial()``), each checked against the one box."""
    box = _static_bounds(bounds, "bounds") if bounds is not None else None
    eqs, conds, init = [], [], []
    for name, c in items:
        kind = type(c.where).__name__
        if kind == "Box":
            b = box if bounds is not None else _static_bounds(c.where.bounds, f"constraint {name!r}")
            if box is not None and b != box:
                raise SpecError(
                    f"constraint {name!r}: its Box {b} differs from the domain {box}; the grid solver takes one box "
                    "(a PDE on a sub-box is not supported)"
                )
            box = b
            eqs += [(name if len(_exprs(c.expr)) == 1 else f"{name}[{j}]", e) for j, e in enumerate(_exprs(c.expr))]
        elif kind == "BoxBoundary":
            b = _static_bounds(c.where.bounds, f"constraint {name!r}")
            for axis, side in c.where.faces:
                for e in _exprs(c.expr):
                    conds.append((b, Condition(e, (int(axis), int(side)), name)))
        elif kind == "TimeSlab":
            init.append((name, *_initial_slice(c.where, name, t_idx), _exprs(c.expr)))
        else:
            raise SpecError(
                f"constraint {name!r} is on a {kind} region; the grid solver discretises boxes only "
                "(Box inside, Box.boundary(faces), SpaceTime(Box(...), (t0, t1)).initial())"
            )
    if box is None:
        raise SpecError("the Problem has no constraint on a Box region: there is no PDE to discretise inside a box")
    for b, cond in conds:
        if b != box:
            raise SpecError(f"constraint {cond.name!r}: box face bounds {b} differ from the domain box {box}")
    return box, eqs, [c for _, c in conds], init


def _initial_slice(where: Any, name: str, t_idx: int | None) -> tuple[list, float]:
    """``(space bounds, t0)`` of ``SpaceTime(Box(...), (t0, t1)).initial()`` (a ``TimeSlab`` of side 0)."""
    st = where.st
    if type(st.shape).__name__ != "Box":
        raise SpecError(f"constraint {name!r}: its time slice is over a {type(st.shape).__name__}; on a box domain "
                        "the slice is SpaceTime(Box(...), (t0, t1)).initial()")
    if t_idx is not None and int(st.t_index) != t_idx:
        raise SpecError(f"constraint {name!r}: its time slice has time on axis {st.t_index} but time is axis {t_idx}")
    if callable(st.t_bounds):
        raise SpecError(f"constraint {name!r}: its SpaceTime t_bounds are a callable of the training step (a "
                        "curriculum); the grid solver needs a fixed time interval")
    t = float(list(st.t_bounds)[int(where.side)])
    return _static_bounds(st.shape.bounds, f"constraint {name!r}"), t


def _initial_conditions(init: list, box: list, ndim: int, t_idx: int | None) -> list[tuple[str, Any]]:
    """``(name, expr)`` of the initial-slice constraints, checked to sit on the box's initial time."""
    initial = []
    for name, sb, t0, es in init:
        if sb != [box[k] for k in range(ndim) if k != t_idx]:
            raise SpecError(f"constraint {name!r}: its time slice's space bounds {sb} differ from the domain box {box}")
        if abs(t0 - box[t_idx][0]) > 1e-12 * max(1.0, abs(box[t_idx][0])):
            raise SpecError(
                f"constraint {name!r}: a time slice at t = {t0:g} is not the initial time {box[t_idx][0]}; "
                "only initial conditions can be marched"
            )
        initial += [(name, e) for e in es]
    return initial


def _problem_values(problem: Any, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters and coefficients of the Problem (torch callables marked :class:`TorchOnly`), then ``values``."""
    vals: dict[str, Any] = {}
    for src in (getattr(problem, "parameters", {}) or {}, getattr(problem, "coefficients", {}) or {}):
        for k, v in src.items():
            v = _value(v)
            # the Problem's callables take torch tensors (N, d): the grid solver cannot call them
            vals[_name(k)] = TorchOnly(_name(k)) if callable(v) and not isinstance(v, sympy.Basic) else v
    for k, v in (values or {}).items():
        vals[_name(k)] = _value(v)
    return vals


def _name(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, sympy.Symbol):
        return k.name
    if isinstance(k, sympy.core.function.AppliedUndef):
        return k.func.__name__
    if isinstance(k, sympy.core.function.UndefinedFunction):
        return k.__name__
    raise SpecError(f"cannot use {k!r} as a value key; give a name or a SymPy symbol/function")


def _face(coords: tuple, face: Any) -> tuple[int, int]:
    axis, side = face
    axis = _time_index(coords, axis)
    sides = {0: 0, 1: 1, "lo": 0, "hi": 1, "low": 0, "high": 1}
    if side not in sides:
        raise SpecError(f"face {face!r}: side must be 0/'lo' or 1/'hi'")
    return int(axis), sides[side]


def from_sympy(
    equations: Any,
    fields: Sequence[Any],
    coords: Sequence[sympy.Symbol],
    bounds: Sequence[Sequence[float]],
    conditions: Sequence[tuple[Any, Any]] = (),
    initial: Any = (),
    time: Any = None,
    periodic: Sequence[Any] = (),
    values: Mapping[Any, Any] | None = None,
    complex_fields: Sequence[Any] = (),
) -> Spec:
    """Build a spec from plain SymPy objects (no Problem needed).

    Parameters
    ----------
    equations : Eq, expression, or a sequence of them
        PDE residuals inside the box, one per field.
    fields : applied functions ``u(x, y, ...)`` (e.g. ``sympy.Function("u")(x, y)``)
    coords : coordinate symbols, in axis order
    bounds : ``[(lo, hi), ...]`` per coordinate (time included)
    conditions : sequence of ``(residual, face)``
        ``face`` is ``(axis, side)``: axis a coordinate symbol or index, side
        ``0``/``"lo"`` or ``1``/``"hi"``. The face ``(t, "lo")`` of the time axis
        means an initial condition.
    initial : residual(s) at the initial time (alternative to time faces)
    time : the time coordinate (symbol or index), optional
    periodic : periodic axes
    values : mapping (name, Symbol or function) -> number or numpy callable ``f(*coords)``
    complex_fields : the fields whose values are complex (others: real)
    """
    coords = tuple(coords)
    t_idx = _time_index(coords, time)
    has_initial = not (initial is None or (isinstance(initial, (list, tuple)) and not initial))
    conds, init = [], ([("initial", e) for e in _exprs(initial)] if has_initial else [])
    for j, (expr, face) in enumerate(conditions):
        axis, side = _face(coords, face)
        for e in _exprs(expr):
            if axis == t_idx and side == 0:
                init.append((f"condition {j}", e))
            else:
                conds.append(Condition(e, (axis, side), f"condition {j}"))
    eqs = [(f"equation {j}", e) for j, e in enumerate(_exprs(equations))]
    vals = {_name(k): _value(v) for k, v in (values or {}).items()}
    cplx = {f.func.__name__ if hasattr(f, "func") else str(f) for f in complex_fields}
    box = _static_bounds(bounds, "bounds")
    return _finish(list(fields), coords, box, eqs, conds, init, t_idx, _axes(coords, periodic), vals, cplx)


def _finish(fields, coords, box, eqs, conds, init, t_idx, periodic, vals, cplx=()) -> Spec:
    if len(box) != len(coords):
        raise SpecError(f"the box has {len(box)} axes but there are {len(coords)} coordinates {coords}")
    if not fields:
        raise SpecError("every field is given in values: there is no unknown left for the grid solver")
    for f in fields:
        if isinstance(f, sympy.core.function.AppliedUndef) and set(f.args) < set(coords):
            left = [c for c in coords if c not in f.args]
            raise SpecError(
                f"field {f} leaves out {', '.join(map(str, left))}: the grid solver's unknowns are functions of all "
                f"the coordinates {coords} (an unknown {'time-independent ' if t_idx is not None and coords[t_idx] in left else ''}"
                f"field is out of its reach); give its values, values={{'{f.func.__name__}': f({', '.join(map(str, f.args))})}}, "
                "to solve for the other fields with it known"
            )
        if not isinstance(f, sympy.core.function.AppliedUndef) or tuple(f.args) != coords:
            raise SpecError(f"field {f} must be a function applied to exactly the coordinates {coords}")
    if t_idx is not None and t_idx in periodic:
        raise SpecError("the time axis cannot be periodic")
    init = list(init) + [(c.name, c.expr) for c in conds if c.face == (t_idx, 0)]  # the initial face
    conds = [c for c in conds if c.face != (t_idx, 0)]
    for c in conds:
        if c.face[0] == t_idx:
            raise SpecError(
                f"constraint {c.name!r} is on the final-time face of {coords[t_idx]}; only initial conditions "
                "can be marched in time"
            )
        if c.face[0] in periodic:
            raise SpecError(f"constraint {c.name!r} is on a face of the periodic axis {coords[c.face[0]]}: drop one or the other")
    if t_idx is None and init:
        raise SpecError(f"constraint {init[0][0]!r} is an initial condition but no coordinate is declared as time")
    conds = face_normals(conds, coords, vals, t_idx)
    is_c = [bool(getattr(f.func, "pinn_complex", False)) or f.func.__name__ in cplx for f in fields]
    return Spec(fields, is_c, coords, box, eqs, conds, init, t_idx, set(periodic), vals)


def face_normals(conds: Sequence[Condition], coords: tuple, vals: Mapping[str, Any], t_idx: int | None = None
                 ) -> list[Condition]:
    """Substitute the outward unit normal of each box face for the symbols ``n_<coord>``.

    On the face ``(axis, side)`` of a box the outward normal is ``-1`` (lo) or
    ``+1`` (hi) along ``axis`` and ``0`` along every other axis; this is what
    :func:`pinnsiren.symbolic.normal` / ``normal_derivative`` mean (and what
    ``Box.boundary(faces)`` samples carry in training). Symbols are matched by name,
    ``n_x`` for the coordinate ``x``.

    Raises
    ------
    SpecError
        If ``vals`` gives a value for ``n_<coord>`` that contradicts the normal of
        a face whose condition uses it (e.g. ``n_x = 1`` with a condition on the
        lo face of ``x``), or gives it as a function.
    """
    names = {f"n_{c.name}": k for k, c in enumerate(coords) if k != t_idx}
    names = {n: k for n, k in names.items() if n not in {c.name for c in coords}}
    out = []
    for c in conds:
        axis, side = c.face
        repl = {}
        for s in c.expr.free_symbols:
            if not isinstance(s, sympy.Symbol) or s.name not in names:
                continue
            k = names[s.name]
            want = (1 if side else -1) if k == axis else 0
            if s.name in vals:
                given = vals[s.name]
                try:
                    ok = complex(given) == want
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    face = f"({coords[axis]}, {'hi' if side else 'lo'})"
                    raise SpecError(
                        f"constraint {c.name!r}: values gives {s.name} = {given!r} but on the face {face} of the box "
                        f"the outward unit normal has {s.name} = {want}; the grid solver supplies the normal of each "
                        f"box face itself: drop {s.name!r} from values"
                    )
            repl[s] = sympy.Integer(want)
        out.append(dataclasses.replace(c, expr=c.expr.xreplace(repl)) if repl else c)
    return out
