"""Compile SymPy residual expressions into batched PyTorch functions.

The compiler is a recursive tree walk over a table of node handlers
(:data:`HANDLERS`, SymPy class -> function), memoising identical subtrees so
each is evaluated once per call. At compile time the expression is
validated and normalised so that every ``Derivative`` acts directly on a
field or a named coefficient (SymPy differentiates everything else exactly,
including known coefficient expressions); the set of field derivatives the
expression uses is collected and requested from the derivative engine
(:func:`pinnsiren.jet.derivatives`) once per call.

Example
-------
>>> x, y = sympy.symbols("x y")
>>> u = Field("u", (x, y))
>>> r = compile_residual(sympy.Eq(u.diff(x, 2) + u.diff(y, 2), 1), [u], (x, y))
>>> r(model, pts).shape            # pts: (N, 2)
torch.Size([N])
"""

from __future__ import annotations

import functools
import operator
import weakref
from typing import Any, Callable, Iterable, Mapping, Sequence

import sympy
import torch
from sympy.core.function import AppliedUndef, UndefinedFunction
from torch import nn

from .jet import derivatives
from .jet_keys import ChannelCountError, Laplacian
from .reverse_mode import autograd_partials
from .symbolic import is_complex_field, is_field

__all__ = ["compile_residual", "CompiledResidual", "HANDLERS", "CompileError", "field_axes", "project",
           "LEFT_OUT_VALUE"]

#: the value a field over a subset of the coordinates is evaluated at along the coordinates it leaves out
LEFT_OUT_VALUE = 0.0


class CompileError(ValueError):
    """An expression cannot be compiled (the message names the culprit)."""


# --------------------------------------------------------------------------
# handler table: handler(ctx, node, args) -> tensor, with args the evaluated children


def _reduce(op: Callable) -> Callable:
    return lambda ctx, node, args: functools.reduce(op, args)


def _unary(fn: Callable) -> Callable:
    return lambda ctx, node, args: fn(args[0])


def _pow(ctx: "_Context", node: sympy.Pow, args: list) -> torch.Tensor:
    base, ex = args
    e = node.exp
    if e == 2:
        return base * base
    if e == sympy.Rational(1, 2):
        return torch.sqrt(base)
    if e == -1:
        return 1.0 / base
    if e == -sympy.Rational(1, 2):
        return torch.rsqrt(base)
    if e.is_Integer:
        return base ** int(e)
    return torch.pow(base, ex)


def _real_only(name: str) -> Callable:
    def check(t: torch.Tensor) -> torch.Tensor:
        if torch.is_tensor(t) and t.is_complex():
            raise CompileError(f"{name} needs a real argument but got a complex value at run time")
        return t

    return check


def _max(ctx, node, args):
    chk = _real_only("Max")
    return functools.reduce(torch.maximum, [chk(a) for a in args])


def _min(ctx, node, args):
    chk = _real_only("Min")
    return functools.reduce(torch.minimum, [chk(a) for a in args])


def _heaviside(ctx, node, args):
    z = _real_only("Heaviside")(args[0])
    h0 = args[1] if len(args) > 1 else torch.tensor(0.5, dtype=z.dtype, device=z.device)
    return torch.heaviside(z, h0.to(z.dtype).expand_as(z) if h0.ndim == 0 else h0)


def _piecewise(ctx, node, args):
    # args: list of (value, condition) pairs, first true wins
    out = None
    for value, cond in reversed(args):
        if out is None:
            nan = torch.full_like(torch.as_tensor(value), float("nan"))
            out = nan
        value, out = torch.broadcast_tensors(value, out)
        if value.dtype != out.dtype:
            dt = torch.promote_types(value.dtype, out.dtype)
            value, out = value.to(dt), out.to(dt)
        out = torch.where(cond, value, out)
    return out


def _rel(op: Callable) -> Callable:
    def h(ctx, node, args):
        a, b = (_real_only(type(node).__name__)(t) for t in args)
        return op(a, b)

    return h


def _conj(t: torch.Tensor) -> torch.Tensor:
    return t.conj_physical() if t.is_complex() else t


def _re(t: torch.Tensor) -> torch.Tensor:
    return t.real if t.is_complex() else t


def _im(t: torch.Tensor) -> torch.Tensor:
    return t.imag if t.is_complex() else torch.zeros_like(t)


def _sign(t: torch.Tensor) -> torch.Tensor:
    return torch.sgn(t)


def _atan2(ctx, node, args):
    return torch.atan2(args[0], args[1])


def _dirac(ctx, node, args):
    # derivative of Heaviside/Max/Min/Abs kinks: zero almost everywhere
    return torch.zeros_like(_re(args[0]))


def _bool(ctx, node, args):
    return torch.tensor(bool(node), device=ctx.device)


#: SymPy class -> handler(ctx, node, evaluated_args). Users add handlers via
#: ``compile_residual(..., handlers={cls: fn})``; theirs win.
HANDLERS: dict[type, Callable] = {
    sympy.Add: _reduce(operator.add),
    sympy.Mul: _reduce(operator.mul),
    sympy.Pow: _pow,
    sympy.exp: _unary(torch.exp),
    sympy.log: lambda ctx, node, args: torch.log(args[0]) if len(args) == 1 else torch.log(args[0]) / torch.log(args[1]),
    sympy.sin: _unary(torch.sin),
    sympy.cos: _unary(torch.cos),
    sympy.tan: _unary(torch.tan),
    sympy.cot: _unary(lambda t: 1.0 / torch.tan(t)),
    sympy.sec: _unary(lambda t: 1.0 / torch.cos(t)),
    sympy.csc: _unary(lambda t: 1.0 / torch.sin(t)),
    sympy.asin: _unary(torch.asin),
    sympy.acos: _unary(torch.acos),
    sympy.atan: _unary(torch.atan),
    sympy.atan2: _atan2,
    sympy.sinh: _unary(torch.sinh),
    sympy.cosh: _unary(torch.cosh),
    sympy.tanh: _unary(torch.tanh),
    sympy.asinh: _unary(torch.asinh),
    sympy.acosh: _unary(torch.acosh),
    sympy.atanh: _unary(torch.atanh),
    sympy.erf: _unary(torch.erf),
    sympy.Abs: _unary(torch.abs),
    sympy.re: _unary(_re),
    sympy.im: _unary(_im),
    sympy.conjugate: _unary(_conj),
    sympy.sign: _unary(_sign),
    sympy.Heaviside: _heaviside,
    sympy.DiracDelta: _dirac,
    sympy.Max: _max,
    sympy.Min: _min,
    sympy.Piecewise: _piecewise,
    sympy.functions.elementary.piecewise.ExprCondPair: lambda ctx, node, args: (args[0], args[1]),
    sympy.StrictLessThan: _rel(torch.lt),
    sympy.LessThan: _rel(torch.le),
    sympy.StrictGreaterThan: _rel(torch.gt),
    sympy.GreaterThan: _rel(torch.ge),
    sympy.Equality: _rel(torch.eq),
    sympy.Unequality: _rel(torch.ne),
    sympy.And: _reduce(torch.logical_and),
    sympy.Or: _reduce(torch.logical_or),
    sympy.Not: _unary(torch.logical_not),
    sympy.logic.boolalg.BooleanTrue: _bool,
    sympy.logic.boolalg.BooleanFalse: _bool,
}


# --------------------------------------------------------------------------


def _names(items: Iterable[Any], what: str) -> list[str]:
    out = []
    for it in items:
        if isinstance(it, str):
            name = it
        elif isinstance(it, AppliedUndef):
            name = it.func.__name__
        elif isinstance(it, UndefinedFunction):
            name = it.__name__
        elif isinstance(it, sympy.Symbol):
            name = it.name
        else:
            raise TypeError(f"cannot use {it!r} as a {what}; give a name, a Symbol or an applied function")
        if not name.isidentifier():
            raise ValueError(f"{what} name {name!r} is not an identifier")
        out.append(name)
    return out


class CompiledResidual:
    """A residual expression compiled to a batched torch function.

    Call as ``r(model, x, **values)``: ``x`` of shape ``(N, d)`` (columns in
    ``coords`` order), ``values`` the named coefficients (tensor ``(N,)``,
    scalar, or callable ``x -> (N,)``) and parameters (float or 0-d tensor /
    ``nn.Parameter``). Returns a tensor of shape ``(N,)`` (``(N, m)`` for a
    vector of ``m`` expressions), complex where the expression is.

    Everything is resolved once, here: the expression is normalised, its
    nodes are deduplicated into a flat program (each node's handler, each
    field's channels and multi-index, each coordinate's column looked up
    now), and weighted sums of pure second derivatives are collapsed into
    forward-Laplacian requests (:class:`pinnsiren.jet_keys.Laplacian`) where that
    saves Taylor slots. A call runs the program.

    Attributes
    ----------
    exprs : tuple of sympy.Expr
        The normalised expressions.
    needs : list of (channel, multi_index)
        The field derivatives requested from the engine by multi-index, each
        once (the pure second derivatives a collapsed group replaces are not
        among them).
    laplacians : list of tuple
        The collapsed groups: the weights ``(w_1, ..., w_d)`` as SymPy
        expressions; each is one Taylor slot (two where a weight may be
        complex) for every field it serves.
    n_channels : int
        Model output channels the fields occupy.
    engine : {"auto", "jet", "autograd"}
        Derivative path (see :func:`pinnsiren.jet.derivatives`).
    """

    def __init__(
        self,
        expr: Any,
        fields: Sequence[sympy.Expr],
        coords: Sequence[sympy.Symbol],
        coefficients: Iterable[Any] = (),
        parameters: Iterable[Any] | Mapping[Any, Any] = (),
        handlers: Mapping[type, Callable] | None = None,
        engine: str = "auto",
        collapse: bool = True,
    ) -> None:
        self.coords = tuple(coords)
        for c in self.coords:
            if not isinstance(c, sympy.Symbol):
                raise CompileError(f"coordinate {c!r} is not a sympy.Symbol")
        self.engine = engine
        self.handlers = dict(HANDLERS)
        if handlers:
            self.handlers.update(handlers)
        self.fields, self.n_channels = _channel_layout(fields, self.coords)
        #: fields over a subset of the coordinates: name -> the indices of the coordinates they keep
        self.sub_fields = {f.func.__name__: field_axes(f, self.coords) for f in fields
                           if len(field_axes(f, self.coords)) < len(self.coords)}
        self._field_args = {f.func.__name__: tuple(f.args) for f in fields}
        self.user_coords = self.coords
        self._to_real = {c: c if c.is_extended_real else sympy.Symbol(c.name, real=True) for c in self.coords}
        self.coords = tuple(self._to_real[c] for c in self.coords)
        self._field_args = {n: tuple(self._to_real[c] for c in a) for n, a in self._field_args.items()}
        self.coefficient_names = set(_names(coefficients, "coefficient"))
        # parameters: sequence of symbols/names, or mapping -> default value
        if isinstance(parameters, Mapping):
            self.parameter_defaults = {n: v for n, v in zip(_names(parameters, "parameter"), parameters.values())}
        else:
            self.parameter_defaults = {n: None for n in _names(parameters, "parameter")}
        clash = (set(self.fields) | self.coefficient_names) & set(self.parameter_defaults)
        clash |= set(self.fields) & self.coefficient_names
        if clash:
            raise CompileError(f"names used for more than one role (field/coefficient/parameter): {sorted(clash)}")
        self.is_vector = isinstance(expr, (list, tuple, sympy.MatrixBase))
        self.exprs = tuple(self._normalize(self._as_expr(e), {c.name for c in self.coords})
                           for e in (list(expr) if self.is_vector else [expr]))
        self.coefficient_derivatives = sorted(
            {(d.expr.func.__name__, self._multi_index(d)) for e in self.exprs for d in e.atoms(sympy.Derivative)
             if d.expr.func.__name__ in self.coefficient_names}
        )
        self.is_complex = any(is_complex_field(a) for e in self.exprs for a in e.atoms(AppliedUndef)) or any(
            e.has(sympy.I) for e in self.exprs
        )
        collapsed = _collapse(self, self.exprs) if collapse else None
        body, groups = collapsed if collapsed is not None else (self.exprs, [])
        self.laplacians = [g.weights for g in groups]
        self.needs = self._collect_needs(body)
        self._program = _Program(self, body, groups)

    # ---------------------------------------------------------------- compile

    def _as_expr(self, e: Any) -> sympy.Basic:
        if isinstance(e, str):
            raise CompileError("expressions must be SymPy objects; strings are not parsed")
        if isinstance(e, sympy.Equality):
            e = e.lhs - e.rhs
        elif isinstance(e, sympy.core.relational.Relational):
            raise CompileError(f"{e} is an inequality; a residual must be an expression or an Eq")
        # coordinates are real: let SymPy know, so d|x|/dx = sign(x) etc.
        return sympy.sympify(e, strict=True).xreplace(self._to_real)

    def _check_applied(self, f: AppliedUndef) -> None:
        name = f.func.__name__
        if name in self.fields:
            ch, cplx = self.fields[name]
            if is_field(f) and is_complex_field(f) != cplx:
                have = "complex" if is_complex_field(f) else "real"
                lay = "complex (2 channels)" if cplx else "real (1 channel)"
                raise CompileError(
                    f"field {name!r} is {have} in the expression but the channel layout (fields=) "
                    f"declares it {lay}"
                )
            if tuple(f.args) != self._field_args[name]:
                raise CompileError(
                    f"field {name!r} is applied to {tuple(f.args)} but is declared over {self._field_args[name]}"
                )
            return
        elif name not in self.coefficient_names:
            raise CompileError(
                f"unknown function {name!r}: not among the fields {sorted(self.fields)} "
                f"nor the coefficients {sorted(self.coefficient_names)}"
            )
        if tuple(f.args) != self.coords:
            try:
                _subsequence(f.args, self.coords)
            except ValueError:
                raise CompileError(
                    f"{name!r} is applied to {tuple(f.args)} but must be applied to the coordinates {self.coords} "
                    "(or to some of them, in that order)"
                ) from None

    def _normalize_derivative(self, e: sympy.Derivative, coord_names: set[str]) -> sympy.Basic:
        for v, _ in e.variable_count:
            if v not in self.coords:
                raise CompileError(
                    f"derivative of {e.expr} with respect to {v}, which is not a coordinate {self.coords}"
                )
        inner = e.expr
        if isinstance(inner, AppliedUndef):
            self._check_applied(inner)
            if any(v not in inner.args for v, _ in e.variable_count):
                return sympy.S.Zero  # a function over some coordinates does not change along the others
            return sympy.Derivative(inner, *e.variable_count)
        if isinstance(inner, (sympy.re, sympy.im, sympy.conjugate)):
            # coordinates are real: d/dx re(f) = re(df/dx), etc.
            return inner.func(self._normalize(sympy.Derivative(inner.args[0], *e.variable_count), coord_names))
        d = sympy.diff(inner, *e.variable_count)
        if isinstance(d, sympy.Derivative) and d.expr == inner:
            raise CompileError(f"cannot differentiate {inner} (SymPy leaves {d} unevaluated)")
        return self._normalize(d, coord_names)

    def _normalize(self, e: sympy.Basic, coord_names: set[str]) -> sympy.Basic:
        if isinstance(e, sympy.Derivative):
            return self._normalize_derivative(e, coord_names)
        if isinstance(e, AppliedUndef):
            self._check_applied(e)
            return e
        if isinstance(e, sympy.Symbol):
            if e in self.coords or e.name in self.parameter_defaults or e.name in self.coefficient_names:
                # a symbol named as a coefficient is a per-point value (e.g. a normal component)
                return e
            raise CompileError(
                f"unknown free symbol {e.name!r}: not a coordinate {self.coords} nor a parameter "
                f"{sorted(self.parameter_defaults)}"
            )
        if isinstance(e, (sympy.Number, sympy.NumberSymbol, sympy.core.numbers.ImaginaryUnit)):
            return e
        if e in (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise CompileError(f"the expression contains the non-finite constant {e}")
        if self._handler(type(e)) is None and not isinstance(e, (sympy.logic.boolalg.BooleanAtom,)):
            raise CompileError(
                f"no handler for {type(e).__name__} (in {e}); pass handlers={{{type(e).__name__}: fn}}"
            )
        if not e.args:
            return e
        new = [self._normalize(a, coord_names) for a in e.args]
        if all(a is b for a, b in zip(new, e.args)):
            return e
        return e.func(*new)

    def _handler(self, cls: type) -> Callable | None:
        for k in cls.__mro__:
            if k in self.handlers:
                return self.handlers[k]
        return None

    def _multi_index(self, d: sympy.Derivative) -> tuple[int, ...]:
        a = [0] * len(self.coords)
        for v, n in d.variable_count:
            a[self.coords.index(v)] += int(n)
        return tuple(a)

    def _collect_needs(self, exprs: Sequence[sympy.Basic]) -> list[tuple[int, tuple[int, ...]]]:
        needs: list[tuple[int, tuple[int, ...]]] = []
        zero = (0,) * len(self.coords)

        def add(name: str, a: tuple[int, ...]) -> None:
            ch, cplx = self.fields[name]
            for c in (ch, ch + 1) if cplx else (ch,):
                if (c, a) not in needs:
                    needs.append((c, a))

        def walk(node: sympy.Basic) -> None:
            if isinstance(node, sympy.Derivative):
                if node.expr.func.__name__ in self.fields:
                    add(node.expr.func.__name__, self._multi_index(node))
                return  # do not count the differentiated field's value
            if isinstance(node, AppliedUndef):
                if node.func.__name__ in self.fields:
                    add(node.func.__name__, zero)
                return
            for a in node.args:
                walk(a)

        for e in exprs:
            walk(e)
        return needs

    # ------------------------------------------------------------------- call

    def __call__(self, model: nn.Module | None, x: torch.Tensor, **values: Any) -> torch.Tensor:
        if not torch.is_tensor(x) or x.ndim != 2 or x.shape[1] != len(self.coords):
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (N, {len(self.coords)}) for coordinates {self.coords}, got {shape}")
        known = self.coefficient_names | set(self.parameter_defaults)
        extra = set(values) - known
        if extra:
            raise TypeError(f"unexpected values {sorted(extra)}; known coefficients/parameters: {sorted(known)}")
        if (self.needs or self.laplacians) and model is None:
            raise ValueError("this residual uses fields, so it needs a model")
        outs = self._program.run(_Context(self, model, x, values))
        if not self.is_vector:
            return outs[0]
        if any(o.is_complex() for o in outs):
            outs = [o.to(torch.promote_types(o.dtype, torch.complex64)) if not o.is_complex() else o for o in outs]
            dt = functools.reduce(torch.promote_types, [o.dtype for o in outs])
            outs = [o.to(dt) for o in outs]
        return torch.stack(outs, 1)

    def channel_error(self, have: int) -> ValueError:
        """The error for a model with ``have`` output channels (``n_channels`` needed)."""
        layout = ", ".join(f"{n} ({'complex: 2' if c else 'real: 1'})" for n, (_, c) in self.fields.items())
        return ValueError(f"model has {have} output channels but the fields {layout} need {self.n_channels}")

    def __repr__(self) -> str:
        if not hasattr(self, "needs"):
            return "CompiledResidual(<compiling>)"
        return f"CompiledResidual({list(self.exprs) if self.is_vector else self.exprs[0]}, needs={self.needs})"


def _channel_layout(fields: Sequence[sympy.Expr], coords: tuple) -> tuple[dict[str, tuple[int, bool]], int]:
    """``{field name: (first channel, complex)}`` in declaration order, and the channel count."""
    layout: dict[str, tuple[int, bool]] = {}
    ch = 0
    for f in fields:
        if not is_field(f):
            raise CompileError(f"{f!r} in fields is not a Field (make it with pinnsiren.Field)")
        name = f.func.__name__
        if name in layout:
            raise CompileError(f"field {name!r} is listed twice in fields")
        try:
            _subsequence(f.args, coords)
        except ValueError:
            raise CompileError(
                f"field {name!r} is a function of {tuple(f.args)} but the coordinates are {coords}: a field takes "
                "all of them, or some of them in that order (e.g. a time-independent coefficient a(x, y) in (x, y, t))"
            ) from None
        layout[name] = (ch, is_complex_field(f))
        ch += 2 if layout[name][1] else 1
    return layout, ch


def _subsequence(args: Sequence[Any], coords: Sequence[sympy.Symbol]) -> tuple[int, ...]:
    """Indices of ``args`` among ``coords`` (matched by name), increasing; else ValueError."""
    names = [c.name for c in coords]
    out = []
    for a in args:
        if not isinstance(a, sympy.Symbol) or a.name not in names:
            raise ValueError(f"{a} is not a coordinate")
        out.append(names.index(a.name))
    if not out or any(j <= i for i, j in zip(out, out[1:])):
        raise ValueError("not a subsequence")
    return tuple(out)


def field_axes(field: sympy.Expr, coords: Sequence[sympy.Symbol]) -> tuple[int, ...]:
    """The indices of the coordinates ``field`` is a function of (all of them for an ordinary field).

    ``Field("a", (x, y))`` in a problem over ``(x, y, t)`` gives ``(0, 1)``.

    Raises
    ------
    CompileError
        If the field's arguments are not some of ``coords`` in their order.
    """
    try:
        return _subsequence(field.args, coords)
    except ValueError:
        raise CompileError(
            f"{field} must be a function of the coordinates {tuple(coords)}, or of some of them in that order"
        ) from None


def project(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """``x`` (N, d) with every column not in ``axes`` set to :data:`LEFT_OUT_VALUE`.

    The model's channels of a field over the coordinates ``axes`` are
    evaluated at these points, so the field cannot depend on the other
    coordinates and its derivatives along them are exactly zero.
    """
    keep = torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
    keep[list(axes)] = True
    return torch.where(keep, x, torch.full((), LEFT_OUT_VALUE, dtype=x.dtype, device=x.device))


# --------------------------------------------------------------------------
# collapsed (forward-Laplacian) groups


class _Group:
    """``sum_k w_k d^2/dx_k^2`` with SymPy weights, serving the fields in ``fields``."""

    def __init__(self, weights: tuple) -> None:
        self.weights = weights
        self.maybe_complex = any(w.is_real is not True for w in weights if w != 0)
        self.placeholders: dict[str, sympy.Dummy] = {}  # field name -> symbol standing for its sum

    def slots(self) -> int:
        return 2 if self.maybe_complex else 1


def _collapse(comp: CompiledResidual, exprs: tuple) -> tuple[tuple, list[_Group]] | None:
    """Rewrite ``exprs`` so weighted sums of pure second derivatives become group placeholders.

    A field qualifies when, in every expression, its pure second derivatives
    ``D_kk f`` enter linearly with weights free of fields (coordinates,
    coefficients, parameters only). Returns None when nothing qualifies or
    collapsing would not save Taylor slots (e.g. the PML Helmholtz: complex
    weights need two slots, as many as its two pure second derivatives).
    """
    d = len(comp.coords)
    pure = {}
    for e in exprs:
        for D in e.atoms(sympy.Derivative):
            name = D.expr.func.__name__
            a = comp._multi_index(D)
            if name in comp.fields and name not in comp.sub_fields and sum(a) == 2 and max(a) == 2:
                pure.setdefault(name, {})[D] = a.index(2)
    if not pure:
        return None
    groups: dict[tuple, _Group] = {}
    out = list(exprs)
    for name, nodes in pure.items():
        trial = _split_linear(comp, out, nodes, d)
        if trial is None:
            continue
        new_exprs, weights_per_expr = trial
        for i, weights in weights_per_expr.items():
            g = groups.setdefault(weights, _Group(weights))
            ph = g.placeholders.setdefault(name, sympy.Dummy(f"lap_{name}"))
            new_exprs[i] = new_exprs[i] + ph
        out = new_exprs
    if not groups:
        return None
    full = {(k, l) for n in comp._collect_needs(exprs) for k, l in [_pair(n[1])] if k is not None}
    rest = {(k, l) for n in comp._collect_needs(out) for k, l in [_pair(n[1])] if k is not None}
    if len(rest) + sum(g.slots() for g in groups.values()) >= len(full):
        return None
    return tuple(out), list(groups.values())


def _pair(a: tuple[int, ...]) -> tuple[int | None, int | None]:
    nz = [i for i, v in enumerate(a) for _ in range(v)]
    return (nz[0], nz[1]) if len(nz) == 2 else (None, None)


def _split_linear(comp: CompiledResidual, exprs: list, nodes: dict, d: int):
    """``e = R + sum_k w_k D_kk f`` for each expression, or None if ``f`` is not linear there."""
    dummies = {D: sympy.Dummy(f"s{k}") for D, k in nodes.items()}
    field_names = set(comp.fields)
    new = list(exprs)
    weights_per_expr = {}
    for i, e in enumerate(exprs):
        if not any(e.has(D) for D in nodes):
            continue
        es = e.xreplace(dummies)
        w = [sympy.S.Zero] * d
        for D, s in dummies.items():
            a = sympy.diff(es, s)
            if a.free_symbols & set(dummies.values()) or _has_field(a, field_names):
                return None
            w[nodes[D]] += a
        rest = es.xreplace({s: 0 for s in dummies.values()})
        weights_per_expr[i] = tuple(w)
        new[i] = rest
    return new, weights_per_expr


def _has_field(e: sympy.Basic, field_names: set[str]) -> bool:
    return any(f.func.__name__ in field_names for f in e.atoms(AppliedUndef))


# --------------------------------------------------------------------------
# the program: deduplicated nodes in evaluation order, everything looked up once


class _Program:
    """Flat list of instructions ``fn(ctx, vals) -> value``; ``vals[i]`` is node ``i``'s value.

    The collapsed groups' weight expressions come first (they do not depend
    on fields), then the derivative engine runs once, then the rest.
    """

    def __init__(self, comp: CompiledResidual, exprs: Sequence[sympy.Basic], groups: list["_Group"]) -> None:
        self.comp = comp
        self.groups = groups
        self.checked_models: weakref.WeakSet = weakref.WeakSet()  # models whose channel count passed
        self.index: dict[sympy.Basic, int] = {}
        self.code: list[Callable] = []
        self.group_weights = [[self._emit(w) for w in g.weights] for g in groups]
        self.channel_axes = {}  # channel -> kept coordinate indices, for the channels of sub-coordinate fields
        for name, axes in comp.sub_fields.items():
            ch, cplx = comp.fields[name]
            self.channel_axes.update({c: axes for c in ((ch, ch + 1) if cplx else (ch,))})
        self.n_before_jet = len(self.code)
        self.outputs = [self._emit(e) for e in exprs]

    def _emit(self, node: sympy.Basic) -> int:
        if node in self.index:
            return self.index[node]
        fn = self._leaf(node)
        if fn is None:
            handler = self.comp._handler(type(node))
            if handler is None:  # pragma: no cover - checked while normalising
                raise CompileError(f"no handler for {type(node).__name__}")
            args = [self._emit(a) for a in node.args]
            fn = _apply(handler, node, args)
        self.index[node] = len(self.code)
        self.code.append(fn)
        return self.index[node]

    def _leaf(self, node: sympy.Basic) -> Callable | None:
        comp = self.comp
        zero = (0,) * len(comp.coords)
        if isinstance(node, (sympy.Derivative, AppliedUndef)):
            f = node.expr if isinstance(node, sympy.Derivative) else node
            name = f.func.__name__
            a = comp._multi_index(node) if isinstance(node, sympy.Derivative) else zero
            if name in comp.fields:
                ch, cplx = comp.fields[name]
                return lambda ctx, v: ctx.field(ch, cplx, a)
            return lambda ctx, v: ctx.coefficient(name, a)
        for g_index, g in enumerate(self.groups):
            for name, ph in g.placeholders.items():
                if node == ph:
                    ch, cplx = comp.fields[name]
                    return lambda ctx, v: ctx.laplacian(g_index, ch, cplx)
        if isinstance(node, sympy.Symbol):
            if node in comp.coords:
                j = comp.coords.index(node)
                return lambda ctx, v: ctx.x[:, j]
            if node.name in comp.coefficient_names:
                return lambda ctx, v: ctx.coefficient(node.name, zero)
            return lambda ctx, v: ctx.parameter(node.name)
        if isinstance(node, sympy.core.numbers.ImaginaryUnit):
            return lambda ctx, v: ctx.const(1j)
        if isinstance(node, (sympy.Number, sympy.NumberSymbol)):
            c = complex(node)
            value = c.real if c.imag == 0 else c
            return lambda ctx, v: ctx.const(value)
        return None

    def run(self, ctx: "_Context") -> list[torch.Tensor]:
        vals: list[Any] = [None] * len(self.code)
        for i in range(self.n_before_jet):
            vals[i] = self.code[i](ctx, vals)
        ctx.jet, ctx.laps = self.jet(ctx.model, ctx.x, [[vals[i] for i in ws] for ws in self.group_weights])
        for i in range(self.n_before_jet, len(self.code)):
            vals[i] = self.code[i](ctx, vals)
        return [ctx.output(vals[i]) for i in self.outputs]

    def jet(self, model, x: torch.Tensor, group_weights: list[list[Any]]) -> tuple[dict, list]:
        """Ask the engine, once, for every field derivative and collapsed group.

        Returns the engine's dict and, per group, its :class:`Laplacian`
        requests (one for real weights, real and imaginary parts otherwise).
        The channel count is checked on a model's first call only.
        """
        comp = self.comp
        if not comp.needs and not self.groups:
            return {}, []
        needs = list(comp.needs)
        laps_per_group = []
        for g, ws in zip(self.groups, group_weights):
            laps = _laplacians(ws)
            laps_per_group.append(laps)
            for name in g.placeholders:
                ch, cplx = comp.fields[name]
                needs += [(c, lap) for lap in laps for c in ((ch, ch + 1) if cplx else (ch,))]
        first = model not in self.checked_models
        have = getattr(model, "out_features", None)
        if first and have is not None and have != comp.n_channels:
            raise comp.channel_error(have)
        # a field over some coordinates: its channels are evaluated with the others set to LEFT_OUT_VALUE
        by_axes: dict[tuple[int, ...] | None, list] = {}
        for n in needs:
            by_axes.setdefault(self.channel_axes.get(n[0]), []).append(n)
        jet: dict = {}
        try:
            for axes, ns in by_axes.items():
                xa = x if axes is None else project(x, axes)
                jet.update(derivatives(model, xa, ns, method=comp.engine, channels=comp.n_channels if first else None))
        except ChannelCountError as err:
            raise comp.channel_error(err.have) from None
        if first:
            self.checked_models.add(model)
        return jet, laps_per_group


def _apply(handler: Callable, node: sympy.Basic, args: list[int]) -> Callable:
    return lambda ctx, v: handler(ctx, node, [v[i] for i in args])


# --------------------------------------------------------------------------
# one call


class _Context:
    """State of one evaluation: points, values, jet, coefficient cache."""

    def __init__(self, comp: CompiledResidual, model, x: torch.Tensor, values: Mapping[str, Any]) -> None:
        self.comp = comp
        self.model = model
        self.x = x
        self.N = x.shape[0]
        self.dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        self.cdtype = torch.complex128 if self.dtype == torch.float64 else torch.complex64
        self.device = x.device
        self.values = values
        self.jet: dict = {}
        self.laps: list = []
        self.coef_cache: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}
        # a coefficient that is differentiated is evaluated at points that require grad
        self.xc = x if x.requires_grad or not comp.coefficient_derivatives else x.detach().requires_grad_(True)

    def output(self, r: Any) -> torch.Tensor:
        r = torch.as_tensor(r)
        if r.ndim == 0:
            r = r.expand(self.N)
        return r

    def const(self, v: complex | float) -> torch.Tensor:
        if isinstance(v, complex):
            return torch.tensor(v, dtype=self.cdtype, device=self.device)
        return torch.tensor(v, dtype=self.dtype, device=self.device)

    def field(self, ch: int, cplx: bool, a: tuple[int, ...]) -> torch.Tensor:
        if cplx:
            return torch.complex(self.jet[(ch, a)], self.jet[(ch + 1, a)])
        return self.jet[(ch, a)]

    def laplacian(self, g: int, ch: int, cplx: bool) -> torch.Tensor:
        """``sum_k w_k d^2_k f`` of group ``g`` for the field at channel ``ch``."""
        laps, J = self.laps[g], self.jet
        if len(laps) == 1:
            return torch.complex(J[(ch, laps[0])], J[(ch + 1, laps[0])]) if cplx else J[(ch, laps[0])]
        re, im = laps  # complex weights: (a + ib) f
        if not cplx:
            return torch.complex(J[(ch, re)], J[(ch, im)])
        return torch.complex(J[(ch, re)] - J[(ch + 1, im)], J[(ch, im)] + J[(ch + 1, re)])

    def coefficient(self, name: str, a: tuple[int, ...]) -> torch.Tensor:
        key = (name, a)
        if key not in self.coef_cache:
            if sum(a) == 0:
                self.coef_cache[key] = self._coefficient_value(name)
            else:
                self._coefficient_derivatives(name)
        return self.coef_cache[key]

    def _coefficient_value(self, name: str) -> torch.Tensor:
        if name not in self.values:
            raise ValueError(f"coefficient {name!r} is missing: pass {name}=<tensor (N,) or callable x -> (N,)>")
        v = self.values[name]
        if callable(v) and not torch.is_tensor(v):
            differentiated = any(n == name for n, _ in self.comp.coefficient_derivatives)
            t = v(self.xc if differentiated else self.x)
            src = f"the callable given for coefficient {name!r}"
        else:
            t = v
            src = f"coefficient {name!r}"
        t = torch.as_tensor(t, device=self.device)
        if not (t.is_floating_point() or t.is_complex()):
            t = t.to(self.dtype)
        if t.ndim == 2 and t.shape[1] == 1:
            raise ValueError(f"{src} has shape {tuple(t.shape)}; expected ({self.N},): squeeze the last axis")
        if t.ndim not in (0, 1) or (t.ndim == 1 and t.shape[0] != self.N):
            raise ValueError(f"{src} has shape {tuple(t.shape)}; expected ({self.N},) or a scalar")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{src} contains non-finite values (NaN or inf)")
        return t

    def _coefficient_derivatives(self, name: str) -> None:
        """Every derivative of coefficient ``name`` the residual uses, by the engine's autograd recursion."""
        v = self.values.get(name)
        if v is None:
            raise ValueError(f"coefficient {name!r} is missing: pass {name}=<callable x -> (N,)>")
        if not callable(v) or torch.is_tensor(v):
            a = next(a for n, a in self.comp.coefficient_derivatives if n == name)
            raise ValueError(
                f"coefficient {name!r} is differentiated (multi-index {a}) so it must be given as a "
                "callable x -> (N,), not as values"
            )
        t = self.coefficient(name, (0,) * self.x.shape[1])
        idx = [a for n, a in self.comp.coefficient_derivatives if n == name]
        t = t.expand(self.N) if t.ndim == 0 else t
        y = torch.stack([t.real, t.imag], 1) if t.is_complex() else t[:, None]
        got = autograd_partials(y, self.xc, [(c, a) for c in range(y.shape[1]) for a in idx])
        for a in idx:
            self.coef_cache[(name, a)] = torch.complex(got[(0, a)], got[(1, a)]) if t.is_complex() else got[(0, a)]

    def parameter(self, name: str) -> torch.Tensor:
        if name in self.values:
            v = self.values[name]
        else:
            v = self.comp.parameter_defaults.get(name)
            if v is None:
                raise ValueError(f"parameter {name!r} is missing: pass {name}=<float or 0-d tensor>")
        if torch.is_tensor(v):
            if v.numel() != 1:
                raise ValueError(f"parameter {name!r} must be a scalar, got shape {tuple(v.shape)}")
            return v.reshape(()).to(self.device)
        if isinstance(v, complex):
            return self.const(v)
        return self.const(float(v))


def _laplacians(weights: list[Any]) -> list[Laplacian]:
    """One real :class:`Laplacian` for real weights; real and imaginary parts for complex ones."""
    ws = [w if torch.is_tensor(w) else torch.as_tensor(w) for w in weights]
    if not any(w.is_complex() for w in ws):
        return [Laplacian(ws)]
    return [Laplacian([w.real if w.is_complex() else w for w in ws]),
            Laplacian([w.imag if w.is_complex() else torch.zeros_like(w) for w in ws])]


def compile_residual(
    expr: Any,
    fields: Sequence[sympy.Expr],
    coords: Sequence[sympy.Symbol],
    coefficients: Iterable[Any] = (),
    parameters: Iterable[Any] | Mapping[Any, Any] = (),
    handlers: Mapping[type, Callable] | None = None,
    engine: str = "auto",
    collapse: bool = True,
) -> CompiledResidual:
    """Compile a SymPy residual into ``r(model, x, **values) -> Tensor (N,)``.

    Parameters
    ----------
    expr : sympy.Expr, sympy.Eq, or a sequence of them
        The residual (``Eq`` means ``lhs - rhs``); a sequence gives an
        ``(N, m)`` vector residual.
    fields : sequence of Field
        Unknowns in channel order (real: 1 channel, complex: 2).
    coords : sequence of sympy.Symbol
        Coordinates, in the column order of ``x`` ``(N, d)``.
    coefficients : iterable of str, applied function, or function class
        Named coefficient functions whose values are given at call time
        (tensor ``(N,)``, scalar, or callable ``x -> (N,)``, e.g. a
        :class:`~pinnsiren.coefficients.GridInterpolant`; derivatives of a
        coefficient use autograd through the callable).
        Coefficients known in closed form should be written as SymPy
        expressions of the coordinates instead (differentiated exactly).
        A plain Symbol whose name is listed here is a per-point value too
        (its coordinate derivatives are zero), e.g. the normal components
        ``n_x, n_y`` of :func:`pinnsiren.symbolic.normal`.
    parameters : iterable of Symbol/str, or mapping Symbol/str -> default
        Scalar parameters, given at call time (float, or a 0-d tensor /
        ``nn.Parameter`` to learn them) or taken from the default.
    handlers : mapping SymPy class -> handler(ctx, node, args), optional
        Extra node handlers; they take precedence over :data:`HANDLERS`.
    engine : {"auto", "jet", "autograd"}
        Derivative path.
    collapse : bool
        Replace weighted sums of pure second derivatives of a field by one
        forward-Laplacian slot where that saves Taylor slots (default);
        ``False`` requests every second derivative separately (same numbers
        up to rounding).

    Raises
    ------
    CompileError
        For an unknown free symbol or function, a derivative with respect to
        a non-coordinate, a field applied to wrong arguments, a field whose
        complexity differs from the channel layout, or an unsupported node.
    """
    return CompiledResidual(expr, fields, coords, coefficients, parameters, handlers, engine, collapse)
