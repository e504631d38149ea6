"""Wave equation in 2-D space + time: ``u_tt = c(x)^2 Δu``, ``u(0, x) = f(x)``, ``u_t(0, x) = 0``.

Example
-------
>>> x, y, t = sympy.symbols("x y t")
>>> u = Field("u", (x, y, t))
>>> wave.wave(u, c=1)                                   # u_tt - c^2 (u_xx + u_yy)
>>> wave.initial_conditions(u, sympy.exp(-100 * (x**2 + y**2)))   # [u - f, u_t] at t = 0
"""

from __future__ import annotations

from typing import Any

import sympy

from pinnsiren.symbolic import Constraint

from ._util import as_expr, coords_of

__all__ = ["wave", "initial_conditions", "wave_constraints"]


def _split(u: sympy.Expr, time: sympy.Symbol | None):
    c = coords_of(u)
    t = c[-1] if time is None else time
    if t not in c:
        raise ValueError(f"time symbol {t} is not a coordinate of {u}")
    return [s for s in c if s != t], t, c


def wave(u: sympy.Expr, c: Any = 1, time: sympy.Symbol | None = None) -> sympy.Expr:
    """Residual ``u_tt - c^2 Δ_space u``; ``time`` defaults to the last coordinate.

    ``c``: wave speed, an expression in the space coordinates, number, or
    coefficient name.
    """
    space, t, coords = _split(u, time)
    cc = as_expr(c, coords, "c")
    return sympy.diff(u, t, 2) - cc**2 * sympy.Add(*[sympy.diff(u, s, 2) for s in space])


def initial_conditions(u: sympy.Expr, f: Any, time: sympy.Symbol | None = None) -> list[sympy.Expr]:
    """Residuals ``[u - f, u_t]``, imposed on a time slice ``t = 0``."""
    _, t, coords = _split(u, time)
    return [u - as_expr(f, coords, "f"), sympy.diff(u, t)]


def wave_constraints(u: sympy.Expr, c: Any, f: Any, time: sympy.Symbol | None = None,
                     weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> dict[str, Constraint]:
    """Region-less constraints ``pde``, ``initial_value``, ``initial_velocity``."""
    u0, ut0 = initial_conditions(u, f, time)
    return {
        "pde": Constraint(wave(u, c, time), weight=weights[0], name="pde"),
        "initial_value": Constraint(u0, weight=weights[1], name="initial_value"),
        "initial_velocity": Constraint(ut0, weight=weights[2], name="initial_velocity"),
    }
