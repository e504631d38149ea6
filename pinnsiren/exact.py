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

Recognised pieces: ``BoxBoundary`` (all or some faces), ``shape.boundary()``
of a :class:`~pinnsiren.geometry.Shape` with an ADF, ``SpaceTime.boundary()``
(lateral), ``SpaceTime.initial()`` / ``final()``, ``TimeSlice``. The domain
(for orientation and normalisation) is the region of the first remaining
constraint that is a Shape or SpaceTime.
"""

from __future__ import annotations

from typing import Any

import sympy
import torch
from sympy.core.function import AppliedUndef
from torch import nn

from .compiler import compile_residual
from .geometry import Boundary, Box, BoxBoundary, Shape, SpaceTime, SpaceTimeBoundary, TimeSlab, transfinite
from .problem import Problem, TimeSlice, _bounds
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


def _piece_adf(region: Any, coords: tuple, domain_bbox: torch.Tensor | None) -> sympy.Expr | None:
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
    if isinstance(region, TimeSlice):
        if callable(region.t0) or not _static(region.space_bounds):
            return None
        t = coords[region.t_index]
        span = 1.0
        if domain_bbox is not None:
            span = float(domain_bbox[region.t_index, 1] - domain_bbox[region.t_index, 0]) or 1.0
        return (t - sympy.nsimplify(region.t0)) / sympy.nsimplify(span)
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
        per constrained field (``model.imposed`` lists the constraint names);
        ``net`` itself when nothing could be imposed.
    problem : Problem
        The same problem without the imposed constraints.

    Raises
    ------
    ValueError
        If no constraint other than the value conditions has a
        Shape/SpaceTime region (the domain, to orient and normalise the
        distance functions).
    """
    coords = problem.coords
    found: dict[str, tuple[Any, sympy.Expr]] = {}
    for name, c in problem.constraints.items():
        if c.pair is not None:
            continue
        dv = dirichlet_value(c.expr, problem.fields, coords)
        if dv is not None:
            found[name] = dv
    domain = _domain(problem, set(found))
    if domain is None:
        if found:
            raise ValueError(
                "impose_exactly needs a constraint on the domain (a Shape or SpaceTime region, e.g. the PDE) "
                "to orient the distance functions"
            )
        return net, problem
    bbox = _bbox(domain)
    gen = torch.Generator().manual_seed(0)
    inside, _ = domain.sample(4096, 0, gen)
    pieces: dict[str, list[tuple[str, sympy.Expr, sympy.Expr]]] = {}
    for name, (f, h) in found.items():
        phi = _piece_adf(problem.constraints[name].where, coords, bbox)
        if phi is None:
            continue
        v = compile_residual(phi, [], coords)(None, inside)
        if float(v.median()) < 0:  # a hole's own ADF is positive inside the hole
            phi = -phi
        pieces.setdefault(f.func.__name__, []).append((name, phi, h))
    imposed = [n for ps in pieces.values() for n, _, _ in ps]
    if not imposed:
        return net, problem
    remaining = [dataclass_copy(c, name) for name, c in problem.constraints.items() if name not in imposed]
    channel = {}
    ch = 0
    for f in problem.fields:
        channel[f.func.__name__] = ch
        ch += 2 if is_complex_field(f) else 1
    model = net
    for fname, ps in pieces.items():
        phis = [p for _, p, _ in ps]
        phi = _multiplier(domain, phis, coords, inside)
        g = transfinite([(p, h) for _, p, h in ps])
        model = ExactDirichlet(model, coords, phi, g, channels=[channel[fname]])
        if getattr(model, "out_features", None) is None:
            model.out_features = problem.n_channels
    model.imposed = imposed
    if verbose:
        print(f"impose_exactly: imposed {imposed}; soft: {[c.name for c in remaining]}")
    new = Problem(problem.fields, coords, remaining, coefficients=problem.coefficients,
                  parameters=problem.parameters, engine=problem.engine)
    return model, new


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
    m = float(compile_residual(prod, [], coords)(None, inside).max())
    if not m > 0:
        raise ValueError("impose_exactly: the distance functions are not positive in the domain")
    return prod / sympy.Float(m, 17)
