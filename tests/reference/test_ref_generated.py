"""reference.fdgen: finite differences generated from a SymPy spec.

Orders of accuracy are fitted from log-log slopes on manufactured solutions
(the answer is picked first, the data computed by SymPy), on small grids.
"""

import numpy as np
import pytest
import sympy

from reference import fdgen
from reference.fdgen import derivative_matrix, fd_weights, gallery

x, y, t = sympy.symbols("x y t")
BOX = [(-1, 1), (-1, 1)]


def order_of(ns, errs, lengths=2.0):
    h = np.array([lengths / (n - 1) for n in ns])
    return float(np.polyfit(np.log(h), np.log(errs), 1)[0])


def max_err(sol, name, exact, coords):
    G = sol[name].grid.coords()
    fe = sympy.lambdify(coords, exact, "numpy")
    return float(np.abs(sol[name].values - np.broadcast_to(fe(*G), sol[name].values.shape)).max())


# ------------------------------------------------------------------ stencils
def test_fd_weights_match_the_classical_tables():
    np.testing.assert_allclose(fd_weights(np.array([-1, 0, 1]), 2), [1, -2, 1], atol=1e-14)
    np.testing.assert_allclose(fd_weights(np.arange(-2, 3), 1), [1 / 12, -2 / 3, 0, 2 / 3, -1 / 12], atol=1e-14)
    np.testing.assert_allclose(fd_weights(np.arange(-2, 3), 2), [-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12], atol=1e-13)
    np.testing.assert_allclose(fd_weights(np.array([0, 1, 2]), 1), [-1.5, 2, -0.5], atol=1e-14)


@pytest.mark.parametrize("p", [2, 4])
@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_derivative_matrix_is_exact_on_polynomials_of_its_degree(m, p):
    n, h = 13, 0.1
    xs = 0.3 + h * np.arange(n)
    D = derivative_matrix(n, h, m, p)
    deg = m + p - 1  # the one-sided windows (m + p points) are exact up to this degree
    poly = np.polynomial.Polynomial(np.arange(1, deg + 2) / 7.0)
    np.testing.assert_allclose(D @ poly(xs), poly.deriv(m)(xs), rtol=1e-8, atol=1e-8 * np.abs(poly.deriv(m)(xs)).max())
    # and one degree more breaks it (the test can fail)
    bad = np.polynomial.Polynomial(np.r_[np.zeros(deg + 1 + (m % 2 == 0 and p == 2)), 1.0])
    assert np.abs(D @ bad(xs) - bad.deriv(m)(xs)).max() > 1e-6


# --------------------------------------------- tutorial diffusion (2-D, variable a)
def tutorial_problem():
    pinn = pytest.importorskip("pinnsiren")
    from pinnsiren.symbolic import divergence, gradient

    u = pinn.Field("u", (x, y))
    a = 1 + sympy.Rational(1, 2) * sympy.sin(sympy.pi * x) * y**2
    ue = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y) + x * y

    def diffusion(v):
        return divergence([a * d for d in gradient(v, (x, y))], (x, y))

    problem = pinn.Problem(
        fields=[u], coords=(x, y),
        constraints=[
            pinn.Constraint(sympy.Eq(diffusion(u), diffusion(ue)), where=pinn.Box(BOX), n=64, name="pde"),
            pinn.Constraint(u - ue, where=pinn.Box(BOX).boundary(), n=16, name="boundary", weight=100.0),
        ],
    )
    return problem, ue


@pytest.mark.parametrize("order, ns, slope", [(2, (17, 33, 65), 2.0), (4, (17, 33, 65), 4.0)])
def test_tutorial_diffusion_orders(order, ns, slope):
    problem, ue = tutorial_problem()
    errs = [max_err(fdgen.solve(problem, n, order=order), "u", ue, (x, y)) for n in ns]
    assert abs(order_of(ns, errs) - slope) < 0.25, errs
    if order == 2:  # the flux form is the hand-written solver's scheme: same 8.1e-4 on 65^2 (docs/tutorial.md)
        assert errs[-1] == pytest.approx(8.1e-4, rel=0.02)


def test_problem_and_plain_sympy_specs_give_the_same_grid_solution():
    problem, _ = tutorial_problem()
    a = fdgen.solve(problem, 17, order=4)["u"].values
    b = fdgen.solve(gallery.case("diffusion").spec, 17, order=4)["u"].values
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"Invalid case 'nope'. Must be one of \['burgers'"):
        gallery.case("nope")


def test_tutorial_diffusion_matches_the_hand_written_solver():
    from reference import Grid, solve_diffusion_dirichlet

    problem, ue = tutorial_problem()
    sol = fdgen.solve(problem, 33)
    assert any(tm.label.startswith("d/dx(") for tm in sol.system.pde[0].terms)  # flux form recognised
    a = 1 + sympy.Rational(1, 2) * sympy.sin(sympy.pi * x) * y**2
    f = sympy.diff(a * ue.diff(x), x) + sympy.diff(a * ue.diff(y), y)
    g = Grid.square(33)
    X, Y = g.coords()
    ref = solve_diffusion_dirichlet(g, sympy.lambdify((x, y), a), sympy.lambdify((x, y), f)(X, Y),
                                    sympy.lambdify((x, y), ue)(X, Y), method="direct")
    np.testing.assert_allclose(sol["u"].values, ref.values, rtol=0, atol=1e-11)


# ---------------------------------------------- nonlinear steady: -Lap u + u^3 = f
@pytest.mark.parametrize("order, ns, slope", [(2, (17, 33, 65), 2.0), (4, (17, 33, 65), 4.0)])
def test_nonlinear_steady_orders_with_dirichlet_neumann_robin(order, ns, slope):
    c = gallery.case("nonlinear")
    res = gallery.observed_order(c, ns, order)
    assert abs(res["slope"] - slope) < 0.3, res
    sol = fdgen.solve(c.spec, ns[-1], order=order, **c.options)
    st = sol.stats
    assert not st["linear"] and 2 <= st["newton_iterations"] <= 12, st
    assert st["residual"] < 1e-8 * st["residual_initial"], st


def nonlinear_solve(n, order):
    c = gallery.case("nonlinear")
    return fdgen.solve(c.spec, n, order=order, **c.options)


def test_newton_jacobian_is_the_exact_derivative_of_the_discrete_residual():
    sol = nonlinear_solve(9, 2)
    system = sol.system
    rng = np.random.default_rng(3)
    U = rng.normal(size=system.N)
    dU = rng.normal(size=system.N)
    J = system.pde_jacobian(U)
    eps = 1e-6
    fd = (system.pde_residual(U + eps * dU) - system.pde_residual(U - eps * dU)) / (2 * eps)
    np.testing.assert_allclose(J @ dU, fd, rtol=1e-7, atol=1e-7 * np.abs(fd).max())


# --------------------------------------------------- Burgers vs Cole-Hopf
def test_cole_hopf_reference_is_accurate():
    nu = 0.01 / np.pi
    xs = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(fdgen.burgers_cole_hopf(xs, 0.0), -np.sin(np.pi * xs), atol=1e-14)
    for tt in (0.2, 1.0):
        # independent quadrature: trapezoid rule in the heat-kernel variable
        e = np.linspace(-12, 12, 20001) * np.sqrt(4 * nu * tt)
        yy = xs[:, None] - e
        E = -np.cos(np.pi * yy) / (2 * np.pi * nu) - e**2 / (4 * nu * tt)
        F = np.exp(E - E.max(1, keepdims=True))
        trap = -(np.sin(np.pi * yy) * F).sum(1) / F.sum(1)
        np.testing.assert_allclose(fdgen.burgers_cole_hopf(xs, tt), trap, atol=1e-11)
        np.testing.assert_allclose(fdgen.burgers_cole_hopf(xs, tt, nodes=100), trap, atol=1e-11)
    # and it solves the PDE: residual by centred differences in x and t at a smooth point
    h = 1e-4
    u = lambda a, b: fdgen.burgers_cole_hopf(a, b)  # noqa: E731
    x0, t0 = 0.4, 0.5
    res = (u(x0, t0 + h) - u(x0, t0 - h)) / (2 * h) + u(x0, t0) * (u(x0 + h, t0) - u(x0 - h, t0)) / (2 * h) \
        - nu * (u(x0 + h, t0) - 2 * u(x0, t0) + u(x0 - h, t0)) / h**2
    assert abs(res) < 1e-5


def test_burgers_against_cole_hopf():
    # measured: order 4 on 513 nodes: 6.7e-4 (space-time relative L2 over t = 0, 0.1, ..., 1)
    c = gallery.case("burgers")
    sol = fdgen.solve(c.spec, 513, order=4, **c.options)
    rel = c.errors(sol, "rel_l2")
    assert rel <= 1e-3, rel
    assert sol["u"].values.shape == (513, 11) and sol.stats["integrator"] == "BDF"
    r4 = gallery.observed_order(c, (513, 1025, 2049), 4, norm="rel_l2")
    assert r4["errors"][0] == pytest.approx(rel, rel=1e-9)
    assert abs(r4["slope"] - 4) < 0.3, r4
    r2 = gallery.observed_order(c, (1025, 2049), 2, norm="rel_l2")
    assert abs(r2["slope"] - 2) < 0.3, r2


# ------------------------------------------- reaction-diffusion system, two fields
@pytest.mark.parametrize("order, ns, slope", [(2, (11, 21, 41), 2.0), (4, (11, 21, 41), 4.0)])
def test_reaction_diffusion_system_orders(order, ns, slope):
    res = gallery.observed_order(gallery.case("reaction_diffusion"), ns, order)
    assert abs(res["slope"] - slope) < 0.3, res
