"""reference.fdgen on incompressible flow: a pressure with no boundary condition takes the normal momentum
equation on the walls, and a one-point gauge fixes its level (Kovasznay's closed-form flow)."""

import math

import numpy as np
import pytest
import sympy

from reference import fdgen
from reference.fdgen import SpecError

pinn = pytest.importorskip("pinnsiren")

x, y, t = sympy.symbols("x y t")
RE = 40
LAM = RE / 2 - math.sqrt(RE**2 / 4 + 4 * math.pi**2)
BOUNDS = [(-0.5, 1.0), (-0.5, 1.5)]


def kovasznay():
    """Kovasznay (1948): an exact steady Navier-Stokes flow behind a grid, Re = 40."""
    e = sympy.exp(LAM * x)
    return (1 - e * sympy.cos(2 * sympy.pi * y), LAM / (2 * sympy.pi) * e * sympy.sin(2 * sympy.pi * y),
            (1 - sympy.exp(2 * LAM * x)) / 2)


def flow_problem(gauge=True):
    u, v, p = (pinn.Field(n, (x, y)) for n in "uvp")
    ue, ve, pe = kovasznay()
    nu = sympy.Rational(1, RE)
    box = pinn.Box(BOUNDS)
    cons = [pinn.Constraint(u * u.diff(x) + v * u.diff(y) + p.diff(x) - nu * (u.diff(x, 2) + u.diff(y, 2)), box,
                            n=64, name="momentum_x"),
            pinn.Constraint(u * v.diff(x) + v * v.diff(y) + p.diff(y) - nu * (v.diff(x, 2) + v.diff(y, 2)), box,
                            n=64, name="momentum_y"),
            pinn.Constraint(u.diff(x) + v.diff(y), box, n=64, name="continuity"),
            pinn.Constraint(u - ue, box.boundary(), n=32, name="wall_u"),
            pinn.Constraint(v - ve, box.boundary(), n=32, name="wall_v")]
    if gauge:
        x0, y0 = 0.25, 0.5
        cons.append(pinn.Constraint(p - pe.subs({x: x0, y: y0}), pinn.PointSet(np.array([[x0, y0]])), name="gauge"))
    return pinn.Problem([u, v, p], (x, y), cons)


def errors(sol, shift_p=False):
    X, Y = np.meshgrid(*sol["u"].grid.axes(), indexing="ij")
    out = {}
    for name, ex in zip("uvp", kovasznay()):
        want = np.broadcast_to(sympy.lambdify((x, y), ex, "numpy")(X, Y), X.shape)
        got = sol[name].values
        if shift_p and name == "p":
            got = got - got.mean() + want.mean()
        out[name] = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    return out


def test_a_pressure_without_wall_conditions_converges_at_the_stencil_order():
    """Velocity on every wall, the pressure only through a one-point gauge: halving the spacing divides the
    error of every field by about 4 (second-order stencils)."""
    prob = flow_problem()
    sol17, sol33 = (fdgen.solve(prob, n) for n in (17, 33))
    e17, e33 = errors(sol17), errors(sol33)
    for name in "uvp":
        assert e33[name] < 0.04, (name, e33)  # measured u 3.4e-3, v 2.5e-2, p 8.8e-3
        assert e17[name] / e33[name] > 3.0, (name, e17, e33)  # measured 3.85 / 3.94 / 4.24
    stats = sol33.stats
    assert "p on (x, lo): momentum_x" in stats["face_equations"]
    assert "p on (y, hi): momentum_y" in stats["face_equations"]
    assert "p = " in stats["gauges"] and "'gauge'" in stats["gauges"]
    assert "null_space" not in stats
    # the gauge holds at its point: the grid's pressure there is the exact one
    pe = float(kovasznay()[2].subs({x: 0.25, y: 0.5}))
    assert float(sol33["p"].sample(np.array([[0.25, 0.5]]))[0]) == pytest.approx(pe, abs=1e-12)


def test_without_a_gauge_the_pressure_is_fixed_up_to_its_mean():
    sol = fdgen.solve(flow_problem(gauge=False), 33)
    assert "p: determined only up to an additive constant" in sol.stats["null_space"]
    assert abs(float(sol["p"].values.mean())) < 1e-12
    gauged = errors(fdgen.solve(flow_problem(), 33))
    shifted = errors(sol, shift_p=True)
    assert shifted["u"] == pytest.approx(gauged["u"], rel=1e-6) and shifted["p"] < 0.04


def test_a_field_with_a_second_normal_derivative_still_needs_its_condition():
    u = pinn.Field("u", (x, y))
    box = pinn.Box([(0, 1), (0, 1)])
    prob = pinn.Problem([u], (x, y), [pinn.Constraint(u.diff(x, 2) + u.diff(y, 2) + u.diff(y) - 1, box, n=16, name="pde"),
                                      pinn.Constraint(u, box.boundary([(0, 0), (0, 1), (1, 0)]), n=8, name="walls")])
    with pytest.raises(SpecError, match=r"face \(y, hi\) has no boundary condition for u"):
        fdgen.solve(prob, 9)


def test_a_gauge_is_refused_where_it_cannot_be_taken():
    u = pinn.Field("u", (x, t))
    st = pinn.SpaceTime(pinn.Box([(0, 1)]), (0, 1), t_index=1)
    prob = pinn.Problem([u], (x, t), [
        pinn.Constraint(u.diff(t) - u.diff(x, 2), pinn.Box([(0, 1), (0, 1)]), n=16, name="pde"),
        pinn.Constraint(u - sympy.sin(sympy.pi * x), st.initial(), n=8, name="initial"),
        pinn.Constraint(u, pinn.Box([(0, 1), (0, 1)]).boundary([(0, 0), (0, 1)]), n=8, name="walls"),
        pinn.Constraint(u - 1, pinn.PointSet(np.array([[0.5, 0.5]])), name="gauge")])
    with pytest.raises(SpecError, match="'gauge': a one-point gauge is taken on steady problems only"):
        fdgen.solve(prob, 9)
