"""Helpers shared by the catalog (SymPy only)."""

from __future__ import annotations

from typing import Any

import sympy

from pinnsiren.symbolic import coefficient, is_field


def coords_of(u: Any) -> tuple[sympy.Symbol, ...]:
    """The coordinate symbols a field is a function of."""
    if not is_field(u):
        raise TypeError(f"{u!r} is not a field; make it with pinnsiren.Field(name, coords)")
    return tuple(u.args)


def as_expr(v: Any, coords: tuple[sympy.Symbol, ...], what: str) -> sympy.Expr:
    """A SymPy expression, or a named coefficient function when ``v`` is a string name."""
    if isinstance(v, str):
        return coefficient(v, coords)
    if isinstance(v, (int, float, complex)):
        return sympy.sympify(v)
    if isinstance(v, sympy.Basic):
        return v
    raise TypeError(f"{what} must be a SymPy expression, a number or a coefficient name, got {type(v).__name__}")


def real_coords(expr_fn, u: Any, *args: Any, **kwargs: Any) -> sympy.Expr:
    """Build ``expr_fn(u_real, ...)`` with real-declared coordinates, then restore the originals.

    SymPy differentiates ``|x|`` as ``sign(x)`` only for real ``x``; for a
    plain symbol it produces ``re(x) d re(x)/dx ...`` terms (0/0 at x = 0).
    """
    c = coords_of(u)
    fwd = {s: sympy.Dummy(s.name, real=True) for s in c}
    back = {v: k for k, v in fwd.items()}
    ur = u.xreplace(fwd)
    args = tuple(a.xreplace(fwd) if isinstance(a, sympy.Basic) else a for a in args)
    kwargs = {k: (v.xreplace(fwd) if isinstance(v, sympy.Basic) else v) for k, v in kwargs.items()}
    out = expr_fn(ur, *args, **kwargs)
    return out.xreplace(back)
