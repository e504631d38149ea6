"""Poisson problems: ``Δu = f``, gradient supervision ``∇u = g``, Laplacian supervision.

Example
-------
>>> x, y = sympy.symbols("x y")
>>> u = Field("u", (x, y))
>>> poisson.poisson(u, "f")                  # Δu - f(x, y)
>>> poisson.gradient_supervised(u, ["gx", "gy"])   # [u_x - gx, u_y - gy]
>>> poisson.laplacian_supervised(u, "lap")   # Δu - lap(x, y)
"""

from __future__ import annotations

from typing import Any, Sequence

import sympy

from pinnsiren.symbolic import gradient, laplacian

from ._util import as_expr, coords_of

__all__ = ["poisson", "gradient_supervised", "laplacian_supervised"]


def poisson(u: sympy.Expr, f: Any = 0) -> sympy.Expr:
    """Residual ``Δu - f`` over all coordinates of ``u``.

    ``f``: SymPy expression in the coordinates, number, or coefficient name.
    """
    c = coords_of(u)
    return laplacian(u, c) - as_expr(f, c, "f")


def laplacian_supervised(u: sympy.Expr, lap: Any) -> sympy.Expr:
    """Residual ``Δu - lap`` (supervision by Laplacian samples, paper §3.2)."""
    return poisson(u, lap)


def gradient_supervised(u: sympy.Expr, g: Sequence[Any]) -> list[sympy.Expr]:
    """Vector residual ``∇u - g`` (one component per coordinate).

    ``g``: sequence of expressions or coefficient names, e.g. ``["gx", "gy"]``.
    """
    c = coords_of(u)
    if len(g) != len(c):
        raise ValueError(f"gradient target has {len(g)} components but u has {len(c)} coordinates")
    return [gi - as_expr(t, c, "g") for gi, t in zip(gradient(u, c), g)]
