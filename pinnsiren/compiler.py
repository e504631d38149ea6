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
import math
import operator
from typing import Any, Callable, Iterable, Mapping, Sequence

import sympy
import torch
from sympy.core.function import AppliedUndef, UndefinedFunction
from torch import nn

from .jet import derivatives
from .symbolic import is_complex_field, is_field

__all__ = ["compile_residual", "CompiledResidual", "HANDLERS", "CompileError"]


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

    Attributes
    ----------
    exprs : tuple of sympy.Expr
        The normalised expressions.
    needs : list of (channel, multi_index)
        The field derivatives requested from the engine, each once.
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
    ) -> None:
        self.coords = tuple(coords)
        for c in self.coords:
            if not isinstance(c, sympy.Symbol):
                raise CompileError(f"coordinate {c!r} is not a sympy.Symbol")
        self.engine = engine
        self.handlers = dict(HANDLERS)
        if handlers:
            self.handlers.update(handlers)
        # channel layout
        self.fields: dict[str, tuple[int, bool]] = {}
        ch = 0
        for f in fields:
            if not is_field(f):
                raise CompileError(f"{f!r} in fields is not a Field (make it with pinnsiren.Field)")
            name = f.func.__name__
            if name in self.fields:
                raise CompileError(f"field {name!r} is listed twice in fields")
            if tuple(f.args) != self.coords:
                raise CompileError(
                    f"field {name!r} is a function of {tuple(f.args)} but the coordinates are {self.coords}"
                )
            cplx = is_complex_field(f)
            self.fields[name] = (ch, cplx)
            ch += 2 if cplx else 1
        self.n_channels = ch
        self.user_coords = self.coords
        self._to_real = {c: c if c.is_extended_real else sympy.Symbol(c.name, real=True) for c in self.coords}
        self.coords = tuple(self._to_real[c] for c in self.coords)
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
        coord_names = {c.name for c in self.coords}
        # expressions
        self.is_vector = isinstance(expr, (list, tuple, sympy.MatrixBase))
        raw = list(expr) if self.is_vector else [expr]
        exprs = []
        for e in raw:
            if isinstance(e, str):
                raise CompileError("expressions must be SymPy objects; strings are not parsed")
            if isinstance(e, sympy.Equality):
                e = e.lhs - e.rhs
            elif isinstance(e, sympy.core.relational.Relational):
                raise CompileError(f"{e} is an inequality; a residual must be an expression or an Eq")
            e = sympy.sympify(e, strict=True)
            # coordinates are real: let SymPy know, so d|x|/dx = sign(x) etc.
            e = e.xreplace(self._to_real)
            exprs.append(self._normalize(e, coord_names))
        self.exprs = tuple(exprs)
        self.needs = self._collect_needs()
        self.coefficient_derivatives = sorted(
            {(d.expr.func.__name__, self._multi_index(d)) for e in self.exprs for d in e.atoms(sympy.Derivative)
             if d.expr.func.__name__ in self.coefficient_names}
        )
        self.is_complex = any(is_complex_field(a) for e in self.exprs for a in e.atoms(AppliedUndef)) or any(
            e.has(sympy.I) for e in self.exprs
        )

    # ---------------------------------------------------------------- compile

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
        elif name not in self.coefficient_names:
            raise CompileError(
                f"unknown function {name!r}: not among the fields {sorted(self.fields)} "
                f"nor the coefficients {sorted(self.coefficient_names)}"
            )
        if tuple(f.args) != self.coords:
            raise CompileError(
                f"{name!r} is applied to {tuple(f.args)} but must be applied to the coordinates {self.coords}"
            )

    def _normalize(self, e: sympy.Basic, coord_names: set[str]) -> sympy.Basic:
        if isinstance(e, sympy.Derivative):
            for v, _ in e.variable_count:
                if v not in self.coords:
                    raise CompileError(
                        f"derivative of {e.expr} with respect to {v}, which is not a coordinate {self.coords}"
                    )
            inner = e.expr
            if isinstance(inner, AppliedUndef):
                self._check_applied(inner)
                return sympy.Derivative(inner, *e.variable_count)
            if isinstance(inner, (sympy.re, sympy.im, sympy.conjugate)):
                # coordinates are real: d/dx re(f) = re(df/dx), etc.
                return inner.func(self._normalize(sympy.Derivative(inner.args[0], *e.variable_count), coord_names))
            d = sympy.diff(inner, *e.variable_count)
            if isinstance(d, sympy.Derivative) and d.expr == inner:
                raise CompileError(f"cannot differentiate {inner} (SymPy leaves {d} unevaluated)")
            return self._normalize(d, coord_names)
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

    def _collect_needs(self) -> list[tuple[int, tuple[int, ...]]]:
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

        for e in self.exprs:
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
        if self.needs:
            if model is None:
                raise ValueError("this residual uses fields, so it needs a model")
            check_channels(model, self.n_channels, self.fields)
        need_xgrad = bool(self.coefficient_derivatives)
        xg = x.detach().requires_grad_(True) if need_xgrad and not x.requires_grad else x
        ctx = _Context(self, model, xg, values)
        outs = [ctx.output(e) for e in self.exprs]
        if not self.is_vector:
            return outs[0]
        if any(o.is_complex() for o in outs):
            outs = [o.to(torch.promote_types(o.dtype, torch.complex64)) if not o.is_complex() else o for o in outs]
            dt = functools.reduce(torch.promote_types, [o.dtype for o in outs])
            outs = [o.to(dt) for o in outs]
        return torch.stack(outs, 1)

    def __repr__(self) -> str:
        if not hasattr(self, "needs"):
            return "CompiledResidual(<compiling>)"
        return f"CompiledResidual({list(self.exprs) if self.is_vector else self.exprs[0]}, needs={self.needs})"


def check_channels(model: nn.Module, n_channels: int, fields: Mapping[str, tuple[int, bool]]) -> None:
    """Raise if ``model.out_features`` (when present) differs from ``n_channels``."""
    have = getattr(model, "out_features", None)
    if have is not None and have != n_channels:
        layout = ", ".join(f"{n} ({'complex: 2' if c else 'real: 1'})" for n, (_, c) in fields.items())
        raise ValueError(
            f"model has {have} output channels but the fields {layout} need {n_channels}"
        )


class _Context:
    """State of one evaluation: points, jet, values, memo."""

    def __init__(self, comp: CompiledResidual, model, x: torch.Tensor, values: Mapping[str, Any]) -> None:
        self.comp = comp
        self.x = x
        self.N = x.shape[0]
        self.dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        self.cdtype = torch.complex128 if self.dtype == torch.float64 else torch.complex64
        self.device = x.device
        self.values = values
        self.memo: dict[sympy.Basic, Any] = {}
        self.coef_cache: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}
        self.jet = derivatives(model, x, comp.needs, method=comp.engine) if comp.needs else {}
        if comp.needs:
            C = None
            try:
                C = model(x[:1]).shape[1] if getattr(model, "out_features", None) is None else None
            except Exception:  # noqa: BLE001 - best effort, the engine raises its own error
                C = None
            if C is not None and C != comp.n_channels:
                check_channels(_Fake(C), comp.n_channels, comp.fields)

    def output(self, e: sympy.Basic) -> torch.Tensor:
        r = self.ev(e)
        r = torch.as_tensor(r)
        if r.ndim == 0:
            r = r.expand(self.N)
        return r

    def const(self, v: complex | float) -> torch.Tensor:
        if isinstance(v, complex):
            return torch.tensor(v, dtype=self.cdtype, device=self.device)
        return torch.tensor(v, dtype=self.dtype, device=self.device)

    def field(self, name: str, a: tuple[int, ...]) -> torch.Tensor:
        ch, cplx = self.comp.fields[name]
        if cplx:
            return torch.complex(self.jet[(ch, a)], self.jet[(ch + 1, a)])
        return self.jet[(ch, a)]

    def coefficient(self, name: str, a: tuple[int, ...]) -> torch.Tensor:
        key = (name, a)
        if key in self.coef_cache:
            return self.coef_cache[key]
        if sum(a) == 0:
            if name not in self.values:
                raise ValueError(f"coefficient {name!r} is missing: pass {name}=<tensor (N,) or callable x -> (N,)>")
            v = self.values[name]
            if callable(v) and not torch.is_tensor(v):
                t = v(self.x)
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
            self.coef_cache[key] = t
            return t
        # derivative: autograd through the callable, sharing parents
        v = self.values.get(name)
        if v is None:
            raise ValueError(f"coefficient {name!r} is missing: pass {name}=<callable x -> (N,)>")
        if not callable(v) or torch.is_tensor(v):
            raise ValueError(
                f"coefficient {name!r} is differentiated (multi-index {a}) so it must be given as a "
                "callable x -> (N,), not as values"
            )
        k = next(i for i, n in enumerate(a) if n > 0)
        parent = tuple(n - (i == k) for i, n in enumerate(a))
        p = self.coefficient(name, parent)
        if p.ndim == 0 or not p.requires_grad:
            g = torch.zeros_like(self.x)
        else:
            if p.is_complex():
                gr = torch.autograd.grad(p.real.sum(), self.x, create_graph=True, allow_unused=True)[0]
                gi = torch.autograd.grad(p.imag.sum(), self.x, create_graph=True, allow_unused=True)[0]
                gr = torch.zeros_like(self.x) if gr is None else gr
                gi = torch.zeros_like(self.x) if gi is None else gi
                g = torch.complex(gr, gi)
            else:
                g = torch.autograd.grad(p.sum(), self.x, create_graph=True, allow_unused=True)[0]
                g = torch.zeros_like(self.x) if g is None else g
        for j in range(self.x.shape[1]):
            child = tuple(n + (i == j) for i, n in enumerate(parent))
            self.coef_cache.setdefault((name, child), g[:, j])
        return self.coef_cache[key]

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

    def ev(self, node: sympy.Basic) -> Any:
        memo = self.memo
        if node in memo:
            return memo[node]
        comp = self.comp
        if isinstance(node, sympy.Derivative):
            name = node.expr.func.__name__
            a = comp._multi_index(node)
            out = self.field(name, a) if name in comp.fields else self.coefficient(name, a)
        elif isinstance(node, AppliedUndef):
            name = node.func.__name__
            zero = (0,) * len(comp.coords)
            out = self.field(name, zero) if name in comp.fields else self.coefficient(name, zero)
        elif isinstance(node, sympy.Symbol):
            if node in comp.coords:
                out = self.x[:, comp.coords.index(node)]
            elif node.name in comp.coefficient_names:
                out = self.coefficient(node.name, (0,) * len(comp.coords))
            else:
                out = self.parameter(node.name)
        elif isinstance(node, sympy.core.numbers.ImaginaryUnit):
            out = self.const(1j)
        elif isinstance(node, (sympy.Number, sympy.NumberSymbol)):
            c = complex(node)
            out = self.const(c.real if c.imag == 0 else c)
        else:
            handler = comp._handler(type(node))
            if handler is None:  # pragma: no cover - checked at compile time
                raise CompileError(f"no handler for {type(node).__name__}")
            out = handler(self, node, [self.ev(a) for a in node.args])
        memo[node] = out
        return out


class _Fake:
    def __init__(self, c: int) -> None:
        self.out_features = c


def compile_residual(
    expr: Any,
    fields: Sequence[sympy.Expr],
    coords: Sequence[sympy.Symbol],
    coefficients: Iterable[Any] = (),
    parameters: Iterable[Any] | Mapping[Any, Any] = (),
    handlers: Mapping[type, Callable] | None = None,
    engine: str = "auto",
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

    Raises
    ------
    CompileError
        For an unknown free symbol or function, a derivative with respect to
        a non-coordinate, a field applied to wrong arguments, a field whose
        complexity differs from the channel layout, or an unsupported node.
    """
    return CompiledResidual(expr, fields, coords, coefficients, parameters, handlers, engine)
