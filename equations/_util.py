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
