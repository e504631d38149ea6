"""A gallery of specs with known solutions, shared by the tests, docs and benchmarks.

Each case is plain SymPy (no pinnsiren), with the answer chosen first and the
data computed from it (manufactured solutions), except Burgers, whose answer
is the Cole-Hopf solution. :func:`observed_order` solves a case on a sequence
of grids and fits the order of accuracy from the log-log slope.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np
import sympy

from .exact import burgers_cole_hopf
from .solve import solve_spec
from .spec import Spec, from_sympy

__all__ = ["Case", "CASES", "case", "observed_order"]

x, y, t = sympy.symbols("x y t")


@dataclasses.dataclass
class Case:
    """A spec, its exact solution per field (SymPy expression or numpy callable of the coordinates),
    and the solve options it needs (time tolerances, output times)."""

    name: str
    spec: Spec
    exact: dict
    options: dict = dataclasses.field(default_factory=dict)

    def errors(self, sol: Any, norm: str = "max") -> float:
        """Error of a grid solution: max over fields of the max-abs (``"max"``) or relative L2 (``"rel_l2"``) error."""
        out = []
        for name, ue in self.exact.items():
            gf = sol[name]
            G = gf.grid.coords()
            f = sympy.lambdify(self.spec.coords, ue, "numpy") if isinstance(ue, sympy.Basic) else ue
            ref = np.broadcast_to(np.asarray(f(*G)), gf.values.shape)
            d = gf.values - ref
            out.append(float(np.abs(d).max()) if norm == "max" else float(np.linalg.norm(d) / np.linalg.norm(ref)))
        return max(out)


def _faces(u, ue, axes) -> list:
    return [(u - ue, (a, s)) for a in axes for s in ("lo", "hi")]


def diffusion() -> Case:
    """The tutorial's ``div(a grad u) = f`` on [-1, 1]^2, ``a = 1 + sin(pi x) y^2 / 2``, Dirichlet."""
    u = sympy.Function("u", real=True)(x, y)
    a = 1 + sympy.Rational(1, 2) * sympy.sin(sympy.pi * x) * y**2
    ue = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y) + x * y
    op = lambda v: sympy.diff(a * v.diff(x), x) + sympy.diff(a * v.diff(y), y)  # noqa: E731
    spec = from_sympy(sympy.Eq(op(u), op(ue)), [u], (x, y), [(-1, 1), (-1, 1)], _faces(u, ue, (x, y)))
    return Case("diffusion", spec, {"u": ue})


def nonlinear() -> Case:
    """``-Lap u + u^3 = f`` on [-1, 1]^2: Dirichlet on two faces, Neumann on one, Robin on one."""
    u = sympy.Function("u", real=True)(x, y)
    ue = sympy.exp(x) * sympy.sin(sympy.pi * y / 2) + 1
    op = lambda v: -(v.diff(x, 2) + v.diff(y, 2)) + v**3  # noqa: E731
    conds = [
        (u - ue, (x, "lo")), (u - ue, (y, "lo")),
        (u.diff(x) - ue.diff(x), (x, "hi")),
        (u.diff(y) + 2 * u - (ue.diff(y) + 2 * ue), (y, "hi")),
    ]
    spec = from_sympy(sympy.Eq(op(u), op(ue)), [u], (x, y), [(-1, 1), (-1, 1)], conds)
    return Case("nonlinear", spec, {"u": ue}, {"tol": 1e-12})


def burgers(nu: float | sympy.Expr = sympy.Rational(1, 100) / sympy.pi) -> Case:
    """Viscous Burgers on [-1, 1] x [0, 1], ``u(x, 0) = -sin(pi x)``, ``u(+-1, t) = 0``, vs Cole-Hopf."""
    u = sympy.Function("u", real=True)(x, t)
    eq = u.diff(t) + u * u.diff(x) - nu * u.diff(x, 2)
    conds = [(u, (x, "lo")), (u, (x, "hi")), (u + sympy.sin(sympy.pi * x), (t, "lo"))]
    spec = from_sympy(eq, [u], (x, t), [(-1, 1), (0, 1)], conds, time=t)
    return Case("burgers", spec, {"u": lambda X, T: burgers_cole_hopf(X, T, float(nu))},
                {"times": 11, "rtol": 1e-8, "atol": 1e-10})


def reaction_diffusion() -> Case:
    """Two fields, ``u_t = u_xx/10 - u v + u^2/4 + f``, ``v_t = v_xx/20 + u v - v/2 + g`` on [0, 2] x [0, 1];
    Dirichlet and Neumann for u, Dirichlet and Robin for v."""
    u = sympy.Function("u", real=True)(x, t)
    v = sympy.Function("v", real=True)(x, t)
    ue = sympy.exp(-t) * sympy.cos(x) + 1
    ve = sympy.exp(-t / 2) * sympy.sin(x + t)
    ops = [
        lambda a, b: a.diff(t) - a.diff(x, 2) / 10 + a * b - a**2 / 4,
        lambda a, b: b.diff(t) - b.diff(x, 2) / 20 - a * b + b / 2,
    ]
    conds = [
        (u - ue, (x, "lo")), (u.diff(x) - ue.diff(x), (x, "hi")),
        (v - ve, (x, "hi")), (v.diff(x) + v - (ve.diff(x) + ve), (x, "lo")),
        (u - ue, (t, "lo")), (v - ve, (t, "lo")),
    ]
    spec = from_sympy([sympy.Eq(op(u, v), op(ue, ve)) for op in ops], [u, v], (x, t), [(0, 2), (0, 1)], conds, time=t)
    return Case("reaction_diffusion", spec, {"u": ue, "v": ve}, {"times": 5, "rtol": 1e-11, "atol": 1e-12})


CASES: dict[str, Callable[[], Case]] = {
    "diffusion": diffusion, "nonlinear": nonlinear, "burgers": burgers, "reaction_diffusion": reaction_diffusion,
}


def case(name: str) -> Case:
    """The gallery case ``name`` (one of :data:`CASES`)."""
    if name not in CASES:
        raise ValueError(f"Invalid case {name!r}. Must be one of {sorted(CASES)}")
    return CASES[name]()


def observed_order(c: Case, ns: Sequence[int], order: int, norm: str = "max", **options: Any) -> dict:
    """Solve ``c`` on ``n`` nodes per space axis for each ``n`` in ``ns``; fit the log-log slope.

    Returns
    -------
    dict with ``ns``, ``h``, ``errors``, ``slope`` (least-squares fit of log error vs log h),
    ``cpu_s`` (assembly + solve CPU seconds per grid).
    """
    errs, cpu, hs = [], [], []
    for n in ns:
        sol = solve_spec(c.spec, n, order=order, **{**c.options, **options})
        errs.append(c.errors(sol, norm))
        cpu.append(sol.stats["assemble_s"] + sol.stats["solve_s"])
        hs.append(sol.system.layout.h[0])
    slope = float(np.polyfit(np.log(hs), np.log(errs), 1)[0])
    return {"ns": list(ns), "h": hs, "errors": errs, "slope": slope, "cpu_s": cpu}
