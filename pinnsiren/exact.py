"""Impose declared Dirichlet and initial conditions exactly, from the problem as written.

``model, problem = impose_exactly(problem, net)`` finds the constraints that
fix a field's value on a boundary piece (``u - h``, or ``Eq(u, h)``, with
``h`` a SymPy expression of the coordinates), builds for each field

* the pieces' distance functions ``phi_i`` (zero on the piece, positive in
  the domain; a box's faces get the smooth polynomial ADF, see
  :meth:`pinnsiren.geometry.Shape.adf`),
* the multiplier ``phi``: the domain's own normalised ADF when the pieces
  cover its whole boundary, else the product of the pieces' ADFs,
  normalised to peak about 1,
* the lift ``g = transfinite([(phi_i, h_i), ...])``,

wraps the network as ``ExactDirichlet(net, coords, phi, g)`` and returns the
problem without those constraints. The rest (PDE, Neumann/Robin, periodic,
data, conditions on regions without an ADF, coefficient-valued data) stay
soft. The choices follow the measurements in docs/compiler.md (exact
Dirichlet data).

Recognised pieces: ``Box.boundary(faces)`` (all or some faces),
``shape.boundary()`` of a :class:`~pinnsiren.geometry.Shape` with an ADF,
``SpaceTime.boundary()`` (lateral), ``SpaceTime.initial()`` / ``final()``. The domain
(for orientation and normalisation) is the region of the first remaining
constraint that is a Shape or SpaceTime.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

import sympy
import torch
from sympy.core.function import AppliedUndef
from torch import nn

from .adf import lift_in_time, transfinite
from .compiler import compile_residual
from .distance import decompose, piece_adf
from .geometry import Boundary, Box, BoxBoundary, Shape, SpaceTime, SpaceTimeBoundary, TimeSlab
from .problem import Problem
from .sampling import _bounds
from .symbolic import is_complex_field
from .transforms import ExactDirichlet

__all__ = ["impose_exactly", "dirichlet_value"]


def dirichlet_value(expr: Any, fields: list, coords: tuple) -> tuple[Any, sympy.Expr] | None:
    """``(field, h)`` if ``expr`` says ``field = h`` (linear, no derivatives, ``h`` of the coordinates), else None."""
    if isinstance(expr, (list, tuple, sympy.MatrixBase)):
        return None
    e = expr.lhs - expr.rhs if isinstance(expr, sympy.Equality) else sympy.sympify(expr)
    if e.atoms(sympy.Derivative):
        return None
    present = [f for f in fields if e.has(f)]
    if len(present) != 1 or is_complex_field(present[0]):
        return None
    f = present[0]
    U = sympy.Dummy("U")
    eu = e.xreplace({f: U})
    if eu.atoms(AppliedUndef):  # other fields or coefficient functions
        return None
    a = sympy.diff(eu, U)
    if a.has(U) or a == 0:
        return None
    b = sympy.sympify(eu.xreplace({U: sympy.Integer(0)}))
    if (a.free_symbols | b.free_symbols) - set(coords):
        return None
    return f, sympy.simplify(-b / a)


def _static(bounds: Any) -> bool:
    return not callable(bounds)


def _box_faces_adf(bounds: Any, faces: list, coords: tuple) -> sympy.Expr | None:
    """Smooth ADF of some faces of a box: per axis a slab (both faces) or a linear distance (one face)."""
    if not _static(bounds):
        return None
    b = _bounds(bounds, 0).tolist()
    axes: dict[int, set] = {}
    for a, s in faces:
        axes.setdefault(a, set()).add(s)
    if len(axes) == len(b) and all(v == {0, 1} for v in axes.values()):
        return Box(bounds).adf(coords, smooth=True)
    out, peak = sympy.Integer(1), sympy.Integer(1)
    for a, sides in axes.items():
        lo, hi = (sympy.nsimplify(v) for v in b[a])
        c = coords[a]
        if sides == {0, 1}:
            out, peak = out * (c - lo) * (hi - c) / (hi - lo), peak * (hi - lo) / 4
        elif sides == {0}:
            out, peak = out * (c - lo), peak * (hi - lo)
        else:
            out, peak = out * (hi - c), peak * (hi - lo)
    k = len(axes)
    return out / peak ** sympy.Rational(k - 1, k)


def _shape_adf(shape: Shape, coords: tuple) -> sympy.Expr | None:
    if isinstance(shape, Box):
        return _box_faces_adf(shape.bounds, [(a, s) for a in range(shape.dim) for s in (0, 1)], coords)
    try:
        return shape.adf(coords)
    except NotImplementedError:
        return None


def _piece_adf(region: Any, coords: tuple) -> sympy.Expr | None:
    if isinstance(region, BoxBoundary):
        return _box_faces_adf(region.bounds, region.faces, coords)
    if isinstance(region, Boundary):
        return _shape_adf(region.shape, coords)
    if isinstance(region, SpaceTimeBoundary):
        st = region.st
        space = coords[: st.t_index] + coords[st.t_index + 1 :]
        return _shape_adf(st.shape, space)
    if isinstance(region, TimeSlab):
        st = region.st
        if callable(st.t_bounds):
            return None
        t = coords[st.t_index]
        t0, t1 = (sympy.nsimplify(v) for v in st._tb(0)[0].tolist())
        return (t - t0) / (t1 - t0) if region.side == 0 else (t1 - t) / (t1 - t0)
    return None


def _domain(problem: Problem, skip: set) -> Any:
    for name, c in problem.constraints.items():
        if name not in skip and isinstance(c.where, (Shape, SpaceTime)):
            return c.where
    return None


def _bbox(region: Any) -> torch.Tensor | None:
    if isinstance(region, Shape):
        return region.bbox(0)
    if isinstance(region, SpaceTime):
        sb = region.shape.bbox(0)
        tb = region._tb(0)
        return torch.cat([sb[: region.t_index], tb, sb[region.t_index :]], 0)
    return None


def impose_exactly(problem: Problem, net: nn.Module, verbose: bool = False) -> tuple[nn.Module, Problem]:
    """Wrap ``net`` so the problem's Dirichlet/initial constraints hold exactly; return ``(model, problem)``.

    For each field, the multiplier ``phi`` of ``u = g + phi N`` is checked
    before it is used: positive at 20 000 interior points, zero on every
    imposed piece and not zero on the rest of the boundary. When the pieces'
    own distance functions fail that check (a face's whole line crossing a
    composed region, a removed box's polynomial ADF), the pieces of a 2-D
    region (or of ``SpaceTime`` over one) get trimmed distance functions
    that vanish on exactly the declared parts (:mod:`pinnsiren.distance`).
    What cannot be imposed stays soft, named in a warning and in
    ``model.soft`` (name -> reason): a constraint with a per-point or zero
    weight, pieces whose data disagree where they meet (a discontinuous
    corner), pieces for which no valid distance function was found.

    Parameters
    ----------
    problem : Problem
        As declared (PDE on the domain, conditions on boundary pieces).
    net : nn.Module
        The network (e.g. ``Normalized(Siren(...), bounds)``).
    verbose : bool
        Print which constraints were imposed.

    Returns
    -------
    model : nn.Module
        ``net`` wrapped by one :class:`~pinnsiren.transforms.ExactDirichlet`
        per constrained field (``model.imposed`` lists the constraint names,
        ``model.soft`` the value conditions left soft and why); ``net``
        itself when nothing could be imposed.
    problem : Problem
        The same problem without the imposed constraints.

    Raises
    ------
    ValueError
        If no constraint other than the value conditions has a
        Shape/SpaceTime region (the domain, to orient and normalise the
        distance functions).
    """
    found, soft, data = _value_conditions(problem)
    domain = _domain(problem, set(found) | set(soft) | data)
    if domain is None:
        if found:
            raise ValueError(
                "impose_exactly needs a constraint on the domain (a Shape or SpaceTime region, e.g. the PDE) "
                "to orient the distance functions"
            )
        return net, problem
    ctx = _Context(problem, domain)
    built = _build_fields(ctx, found, soft)
    _warn_soft(soft)
    imposed = [n for _, ps in built.values() for n, _, _ in ps]
    if not imposed:
        if hasattr(net, "__dict__"):
            net.soft = soft
        return net, problem
    return _wrap(problem, net, ctx, built, soft, imposed, verbose)


def _build_fields(ctx: "_Context", found: dict, soft: dict) -> dict:
    """``{field name: (phi, [(constraint name, phi_i, h_i), ...])}`` for every field whose pieces could be imposed."""
    by_field: dict[str, list[tuple[str, sympy.Expr]]] = {}
    for name, (f, h) in found.items():
        by_field.setdefault(f.func.__name__, []).append((name, h))
    built = {fname: _build_field(ctx, pieces, soft) for fname, pieces in by_field.items()}
    return {k: v for k, v in built.items() if v is not None}


def _wrap(problem: Problem, net: nn.Module, ctx: "_Context", built: dict, soft: dict, imposed: list,
          verbose: bool) -> tuple[nn.Module, Problem]:
    """``net`` wrapped by one :class:`ExactDirichlet` per built field, and the problem without the imposed constraints."""
    coords = problem.coords
    remaining = [dataclass_copy(c, name) for name, c in problem.constraints.items() if name not in imposed]
    model = net
    for fname, (phi, ps) in built.items():
        g = _lift(ctx, ps)
        model = ExactDirichlet(model, coords, phi, g, channels=[ctx.channel[fname]])
        if getattr(model, "out_features", None) is None:
            model.out_features = problem.n_channels
    model.imposed = imposed
    model.soft = soft
    model.declared = problem  # the problem as declared, for checks against a grid solver (pinnsiren.verify)
    if verbose:
        print(f"impose_exactly: imposed {imposed}; soft: {[c.name for c in remaining]}")
    new = Problem(problem.fields, coords, remaining, coefficients=problem.coefficients,
                  parameters=problem.parameters, engine=problem.engine)
    return model, new


def _lift(ctx: "_Context", ps: list) -> sympy.Expr:
    """``g`` of one field from its pieces ``[(name, phi_i, h_i)]``: :func:`~pinnsiren.adf.lift_in_time` where one
    time slice is imposed (its data and the lateral pieces' agree where they meet: checked before), else the
    transfinite blend of all pieces."""
    times = [q for q in ps if isinstance(ctx.region(q[0]), TimeSlab)]
    if len(times) != 1 or not LIFT_IN_TIME:
        return transfinite([(p, h) for _, p, h in ps])
    name, _, h0 = times[0]
    slab = ctx.region(name)
    t0 = float(slab.st._tb(0)[0, slab.side])
    return lift_in_time(h0, ctx.coords[slab.st.t_index], t0, [(p, h) for n, p, h in ps if n != name])


#: the initial data carried in time (False: the transfinite blend of every piece, as before; an ablation)
LIFT_IN_TIME = True


def _value_conditions(problem: Problem) -> tuple[dict, dict, set]:
    """``({name: (field, h)}, {name: reason}, {name})``: value conditions to impose, those that stay soft,
    and value data on regions that are not boundary pieces (loss terms)."""
    found, soft, data = {}, {}, set()
    for name, c in problem.constraints.items():
        if c.pair is not None:
            continue
        dv = dirichlet_value(c.expr, problem.fields, problem.coords)
        if dv is None:
            continue
        why = _weight_reason(c.weight)
        if why:
            soft[name] = why
        elif _region_kind(c.where) is None:
            data.add(name)  # data on an interior region (observations): a loss term, not a boundary condition
        else:
            found[name] = dv
    return found, soft, data


def _weight_reason(weight: Any) -> str | None:
    w = sympy.sympify(weight)
    if w.free_symbols:
        return (f"its weight {w} varies from point to point (it may restrict the piece); an exact "
                "condition would impose the data on the whole piece")
    if not float(w) > 0:
        return f"its weight is {w}: the condition is switched off"
    return None


def _region_kind(region: Any) -> str | None:
    if isinstance(region, (BoxBoundary, Boundary, SpaceTimeBoundary)):
        return "lateral"
    if isinstance(region, TimeSlab):
        return "time"
    return None


def _warn_soft(soft: dict) -> None:
    if soft:
        lines = "; ".join(f"{n!r}: {why}" for n, why in soft.items())
        warnings.warn(f"impose_exactly left these value conditions soft (trained as loss terms): {lines}",
                      stacklevel=3)


class _Context:
    """The domain, its samples and tolerances, shared by every field's construction."""

    def __init__(self, problem: Problem, domain: Any) -> None:
        self.problem, self.domain, self.coords = problem, domain, problem.coords
        self.bbox = _bbox(domain)
        self.scale = float((self.bbox[:, 1] - self.bbox[:, 0]).max()) if self.bbox is not None else 1.0
        gen = torch.Generator().manual_seed(0)
        self.inside, _ = domain.sample(4096, 0, gen)
        self.check, _ = domain.sample(20000, 0, torch.Generator().manual_seed(3))
        self.boundary = _boundary_samples(domain, 4000)
        self.channel, ch = {}, 0
        for f in problem.fields:
            self.channel[f.func.__name__] = ch
            ch += 2 if is_complex_field(f) else 1

    def region(self, name: str) -> Any:
        return self.problem.constraints[name].where

    def member(self, name: str, x: torch.Tensor, tol: float = 1e-9) -> torch.Tensor:
        return _member(self.region(name), x, tol * self.scale)

    def touches(self, x: torch.Tensor) -> torch.Tensor:
        """Which points have domain points within 1e-6 of the domain's size (are in its closure)."""
        d = x.shape[1]
        dirs = torch.randn(24, d, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
        dirs = torch.cat([dirs / dirs.norm(dim=1, keepdim=True), torch.eye(d, dtype=torch.float64),
                          -torch.eye(d, dtype=torch.float64)])
        near = torch.zeros(x.shape[0], dtype=torch.bool)
        for v in dirs:
            near |= _in_closure(self.domain, x + 1e-6 * self.scale * v, -1e-9 * self.scale, strict=True)
        return near

    def piece_samples(self, name: str, n: int = 1500) -> torch.Tensor:
        """Samples of the piece that lie on the domain's boundary (one side inside, the other outside)."""
        x, data = self.region(name).sample(n, 0, torch.Generator().manual_seed(5))
        tol = 1e-9 * self.scale
        if "normal" not in data:
            return x[_in_closure(self.domain, x, tol)]
        step = 1e-7 * self.scale * data["normal"]
        return x[_in_closure(self.domain, x + step, tol) != _in_closure(self.domain, x - step, tol)]


def _boundary_samples(domain: Any, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    if isinstance(domain, SpaceTime):
        parts = [domain.boundary().sample(n, 0, g)[0], domain.initial().sample(n // 4, 0, g)[0],
                 domain.final().sample(n // 4, 0, g)[0]]
        return torch.cat(parts)
    return domain.boundary().sample(n, 0, g)[0]


def _in_closure(domain: Any, x: torch.Tensor, tol: float, strict: bool = False) -> torch.Tensor:
    """In the domain (``strict``: and off its boundary); time bounds within ``tol``."""
    if isinstance(domain, SpaceTime):
        tb = domain._tb(0)[0]
        t = x[:, domain.t_index]
        xs = torch.cat([x[:, : domain.t_index], x[:, domain.t_index + 1:]], 1)
        return domain.shape.contains(xs, strict=strict) & (t >= tb[0] - tol) & (t <= tb[1] + tol)
    return domain.contains(x, strict=strict)


def _member(region: Any, x: torch.Tensor, tol: float) -> torch.Tensor:
    """Which points of ``x`` lie on the boundary piece ``region`` (up to ``tol``)."""
    if isinstance(region, BoxBoundary):
        b = _bounds(region.bounds, 0)
        within = ((x >= b[:, 0] - tol) & (x <= b[:, 1] + tol)).all(1)
        on = torch.zeros(x.shape[0], dtype=torch.bool)
        for a, s in region.faces:
            on |= (x[:, a] - b[a, s]).abs() <= tol
        return on & within
    if isinstance(region, Boundary):
        return region.shape._phi(x, 0).abs() <= tol
    if isinstance(region, (SpaceTimeBoundary, TimeSlab)):
        st = region.st
        t = x[:, st.t_index]
        xs = torch.cat([x[:, : st.t_index], x[:, st.t_index + 1:]], 1)
        tb = st._tb(0)[0]
        if isinstance(region, TimeSlab):
            return ((t - tb[region.side]).abs() <= tol) & st.shape.contains(xs)
        return (st.shape._phi(xs, 0).abs() <= tol) & (t >= tb[0] - tol) & (t <= tb[1] + tol)
    return torch.zeros(x.shape[0], dtype=torch.bool)


def _build_field(ctx: _Context, pieces: list, soft: dict) -> tuple[sympy.Expr, list] | None:
    """``(phi, [(name, phi_i, h_i)])`` for one field's value conditions, or None; moves what fails to ``soft``."""
    for _ in range(len(pieces) + 1):
        if not pieces:
            return None
        got = _candidate_own(ctx, pieces, soft)
        if got is None or not _valid(ctx, *got):
            got = _candidate_trimmed(ctx, pieces, soft)
        if got is None or not _valid(ctx, *got):
            for name, _ in pieces:
                soft.setdefault(name, "no distance function was found that vanishes on exactly the declared "
                                      "pieces and stays positive inside (regions supported: pieces of a 2-D "
                                      "region or of SpaceTime over one, box faces, time slices)")
            return None
        bad = _discontinuous(ctx, got[1])
        if not bad:
            return got
        for name, other in bad:
            soft[name] = f"its data disagree with {other!r}'s where the two pieces meet (discontinuous at a corner)"
        pieces = [(n, h) for n, h in pieces if n not in soft]
    return None


def _candidate_own(ctx: _Context, pieces: list, soft: dict) -> tuple[sympy.Expr, list] | None:
    """Each piece's own distance function (a box face's line, a shape's ADF), as measured before."""
    out = []
    for name, h in pieces:
        phi = _piece_adf(ctx.region(name), ctx.coords)
        if phi is None:
            return None
        v = compile_residual(phi, [], ctx.coords)(None, ctx.inside)
        if float(v.median()) < 0:  # a hole's own ADF is positive inside the hole
            phi = -phi
        out.append((name, phi, h))
    try:
        return _multiplier(ctx.domain, [p for _, p, _ in out], ctx.coords, ctx.inside), out
    except ValueError:  # the product is not positive inside
        return None


def _split_time(ctx: _Context) -> tuple[Any, Callable[[torch.Tensor], torch.Tensor], tuple]:
    """The 2-D spatial shape, a map from its points to domain points (time at mid-interval), the space coords."""
    dom, coords = ctx.domain, ctx.coords
    if isinstance(dom, SpaceTime):
        k = dom.t_index
        tb = dom._tb(0)[0]
        tm = float(tb.mean())

        def embed(p: torch.Tensor, t: float = tm) -> torch.Tensor:
            return torch.cat([p[:, :k], torch.full((p.shape[0], 1), t, dtype=p.dtype), p[:, k:]], 1)

        return dom.shape, embed, coords[:k] + coords[k + 1:]
    return dom, (lambda p, t=None: p), coords


def _curves(ctx: _Context, lateral: list) -> list | None:
    shape, embed, _ = _split_time(ctx)
    if not isinstance(shape, Shape) or shape.dim != 2:
        return None
    members = [lambda p, nrm, n=n: ctx.member(n, embed(torch.from_numpy(p))).numpy() for n in lateral]
    try:
        return decompose(shape, members)
    except NotImplementedError:
        return None


def _candidate_trimmed(ctx: _Context, pieces: list, soft: dict) -> tuple[sympy.Expr, list] | None:
    """Trimmed distance functions of the declared parts of a 2-D boundary (:mod:`pinnsiren.distance`)."""
    lateral = [n for n, _ in pieces if _region_kind(ctx.region(n)) == "lateral"]
    curves = _curves(ctx, lateral)
    if curves is None:
        return None
    _, _, space = _split_time(ctx)
    out = []
    for name, h in pieces:
        if name in lateral:
            mine = [c for c in curves if c.label == lateral.index(name)]
            if not mine:
                soft[name] = "no part of its region lies on the domain's boundary"
                continue
            out.append((name, piece_adf(mine, space), h))
            continue
        phi = _piece_adf(ctx.region(name), ctx.coords)
        if phi is None:
            return None
        if float(compile_residual(phi, [], ctx.coords)(None, ctx.inside).median()) < 0:
            phi = -phi
        out.append((name, phi, h))
    if not out:
        return None
    prod = sympy.Mul(*[p for _, p, _ in out])
    m = float(compile_residual(prod, [], ctx.coords)(None, ctx.inside).max())
    if not m > 0:
        return None
    return prod / sympy.Float(m, 17), out


def _valid(ctx: _Context, phi: sympy.Expr, out: list) -> bool:
    """``phi`` > 0 inside, ~0 on every imposed piece, not ~0 on the boundary left free."""
    f = compile_residual(phi, [], ctx.coords)
    vi = f(None, ctx.check)
    if not bool((vi > 0).all()):
        return False
    on_pieces = [ctx.piece_samples(n) for n, _, _ in out]
    for xs in on_pieces:
        if xs.shape[0] and not float(f(None, xs).abs().max()) <= 1e-8:
            return False
    xb = ctx.boundary
    mine = torch.zeros(xb.shape[0], dtype=torch.bool)
    for n, _, _ in out:
        mine |= ctx.member(n, xb)
    free = xb[~mine]
    if free.shape[0] == 0:
        return True
    small = free[f(None, free).abs() < 1e-10]
    if small.shape[0] == 0:
        return True
    imposed = torch.cat(on_pieces)
    if imposed.shape[0] == 0:
        return False
    return bool((torch.cdist(small, imposed).min(1).values < 1e-3 * ctx.scale).all())


def _planes(region: Any) -> list[tuple[int, float]]:
    """The coordinate planes ``(axis, value)`` a planar piece lies in (box faces, time slices)."""
    if isinstance(region, BoxBoundary) and _static(region.bounds):
        b = _bounds(region.bounds, 0)
        return [(a, float(b[a, s])) for a, s in region.faces]
    if isinstance(region, TimeSlab) and not callable(region.st.t_bounds):
        return [(region.st.t_index, float(region.st._tb(0)[0, region.side]))]
    return []


def _contacts(ctx: _Context, a: str, b: str, curves: list | None, lateral: list) -> torch.Tensor:
    """Points where pieces ``a`` and ``b`` meet: projections onto a planar piece, shared curve ends in 2-D."""
    pts = []
    for p, q in ((a, b), (b, a)):
        xs = ctx.piece_samples(p, 1000)
        for axis, val in _planes(ctx.region(q)):
            xp = xs.clone()
            xp[:, axis] = val
            keep = ctx.member(p, xp, 1e-7) & ctx.member(q, xp, 1e-7) & ctx.touches(xp)
            pts.append(xp[keep])
    if curves is not None and a in lateral and b in lateral:
        _, embed, _ = _split_time(ctx)
        ea = [c.ends() for c in curves if c.label == lateral.index(a)]
        eb = [c.ends() for c in curves if c.label == lateral.index(b)]
        if ea and eb:
            ea, eb = torch.from_numpy(np.concatenate(ea)), torch.from_numpy(np.concatenate(eb))
            near = torch.cdist(ea, eb).min(1).values < 1e-7 * ctx.scale
            if bool(near.any()):
                ts = [None] if not isinstance(ctx.domain, SpaceTime) else ctx.domain._tb(0)[0].tolist()
                pts += [embed(ea[near], t) for t in ts]
    d = len(ctx.coords)
    return torch.cat(pts) if pts else torch.zeros(0, d, dtype=torch.float64)


def _discontinuous(ctx: _Context, out: list) -> list[tuple[str, str]]:
    """Pairs of imposed pieces whose data differ where they meet."""
    lateral = [n for n, _, _ in out if _region_kind(ctx.region(n)) == "lateral"]
    curves = _curves(ctx, lateral) if len(lateral) > 1 else None
    bad = []
    for i, (a, _, ha) in enumerate(out):
        for b, _, hb in out[i + 1:]:
            xc = _contacts(ctx, a, b, curves, lateral)
            if xc.shape[0] == 0:
                continue
            va = compile_residual(ha, [], ctx.coords)(None, xc) if ha.free_symbols else torch.full((xc.shape[0],), float(ha))
            vb = compile_residual(hb, [], ctx.coords)(None, xc) if hb.free_symbols else torch.full((xc.shape[0],), float(hb))
            if bool(((va - vb).abs() > 1e-6 * (1 + va.abs() + vb.abs())).any()):
                bad.append((a, b))
                bad.append((b, a))
    return bad


def dataclass_copy(c: Any, name: str) -> Any:
    """The constraint with its Problem name made explicit (so names survive the rebuild)."""
    import dataclasses

    return dataclasses.replace(c, name=name)


def _multiplier(domain: Any, phis: list, coords: tuple, inside: torch.Tensor) -> sympy.Expr:
    """The domain's normalised ADF if the pieces cover its boundary, else the normalised product of the pieces."""
    if isinstance(domain, Shape):
        try:
            own = domain.adf(coords)
        except NotImplementedError:
            own = None
        if own is not None:
            xb, _ = domain.boundary().sample(2000, 0, torch.Generator().manual_seed(1))
            scale = float((domain.bbox(0)[:, 1] - domain.bbox(0)[:, 0]).max())
            near = torch.stack([compile_residual(p, [], coords)(None, xb).abs() for p in phis], 1).min(1).values
            if bool((near < 1e-9 * scale).all()):
                return domain.adf(coords, normalize=True)
    prod = sympy.Mul(*phis)
    v = compile_residual(prod, [], coords)(None, inside)
    if not float(v.max()) > 0:
        raise ValueError("impose_exactly: the distance functions are not positive in the domain")
    # RMS 1 over the domain, not peak 1: a product of several factors is far below its peak almost everywhere
    # (peak / RMS 3.2 for time x a square's ADF), and N = (u - g) / phi would have to be that much larger
    m = float(v.pow(2).mean().sqrt()) if MULTIPLIER_RMS else float(v.max())
    return prod / sympy.Float(m, 17)


#: the product multiplier normalised to RMS 1 over the domain (False: peak 1, as before; an ablation)
MULTIPLIER_RMS = True
