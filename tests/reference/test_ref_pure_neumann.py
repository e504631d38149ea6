"""A field fixed only up to a constant (pure Neumann, fully periodic) gets zero mean, and the stats say so."""

import numpy as np
import pytest
import sympy

from pinnsiren import Ball, Box, Constraint, Field, Problem, normal_derivative
from reference import fdgen

x, y = sympy.symbols("x y")
u = Field("u", (x, y))
UE = sympy.cos(sympy.pi * x) * sympy.cos(sympy.pi * y) + 0.3 * sympy.cos(2 * sympy.pi * x)


def _neumann_box():
    b = [(0, 1), (0, 1)]
    f = sympy.diff(UE, x, 2) + sympy.diff(UE, y, 2)
    return Problem([u], (x, y), [Constraint(u.diff(x, 2) + u.diff(y, 2) - f, Box(b), n=8, name="pde"),
                                 Constraint(normal_derivative(u, (x, y)), Box(b).boundary(), n=8, name="flux")])


def _err(sol):
    X, Y = sol["u"].grid.coords()
    ue = sympy.lambdify((x, y), UE, "numpy")(X, Y)
    v = sol["u"].values
    return v, float(np.abs(v - (ue - ue.mean())).max())


@pytest.mark.parametrize("method", ["direct", "amg"])
def test_pure_neumann_box_has_zero_mean_and_converges(method):
    errs, res = [], []
    for n in (33, 65, 129):
        sol = fdgen.solve(_neumann_box(), n, method=method)
        v, e = _err(sol)
        assert abs(v.mean()) < 1e-12
        assert "u: determined only up to an additive constant" in sol.stats["null_space"]
        errs.append(e)
        res.append(sol.stats["residual"])
    # second order asymptotically (measured 2.9 then 3.4 per halving); the residual left is the
    # discrete data's incompatibility, which falls as h^2
    assert errs[-1] < 2e-4 and errs[1] / errs[2] > 3.0
    assert res[1] / res[2] > 3.5


def test_the_constant_does_not_depend_on_the_run():
    a = fdgen.solve(_neumann_box(), 33)["u"].values
    b = fdgen.solve(_neumann_box(), 33, method="amg")["u"].values
    np.testing.assert_allclose(a, b, atol=1e-10)


def test_a_dirichlet_problem_has_no_null_space_note():
    b = [(0, 1), (0, 1)]
    prob = Problem([u], (x, y), [Constraint(u.diff(x, 2) + u.diff(y, 2) - 1, Box(b), n=8, name="pde"),
                                 Constraint(u, Box(b).boundary(), n=8, name="wall")])
    assert "null_space" not in fdgen.solve(prob, 17).stats


def test_pure_neumann_on_a_disc():
    disc = Ball([0.0, 0.0], 1.0)
    ue = x**2 - y**2 + x * y  # harmonic
    dudn = x * sympy.diff(ue, x) + y * sympy.diff(ue, y)  # outward normal (x, y) on the unit circle
    prob = Problem([u], (x, y), [Constraint(u.diff(x, 2) + u.diff(y, 2), disc, n=8, name="pde"),
                                 Constraint(normal_derivative(u, (x, y)) - dudn, disc.boundary(), n=8, name="flux")])
    sol = fdgen.solve(prob, 65)
    assert "null_space" in sol.stats
    v = sol.unknowns["u"]
    ex = sympy.lambdify((x, y), ue, "numpy")(sol.points[:, 0], sol.points[:, 1])
    assert float(np.abs((v - v.mean()) - (ex - ex.mean())).max()) < 2e-2
