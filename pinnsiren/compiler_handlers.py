"""The compiler's node handlers: SymPy class -> ``handler(ctx, node, args) -> tensor``.

:data:`HANDLERS` is the table :class:`~pinnsiren.compiler.CompiledResidual`
starts from (a user's ``handlers=`` win over it); :class:`CompileError` is
the compiler's error, raised at compile time and by handlers that meet a
value they cannot take at run time.
"""

from __future__ import annotations

import functools
import operator
from typing import Callable

import sympy
import torch

__all__ = ["HANDLERS", "CompileError"]


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
