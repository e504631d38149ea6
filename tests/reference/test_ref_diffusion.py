"""reference.solve_diffusion_dirichlet: div(a grad u) = f with Dirichlet data, conservative 5-point stencil."""

import numpy as np
import pytest
import sympy

from reference import Grid, solve_diffusion_dirichlet, solve_poisson_dirichlet

NS = (33, 65, 129)


def _manufactured():
    """u = sin(pi x) sin(pi y) + x y,  a = 1 + 0.5 sin(pi x) y^2,  f = div(a grad u) (SymPy, exact)."""
    x, y = sympy.symbols("x y", real=True)
    u = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y) + x * y
    a = 1 + sympy.Rational(1, 2) * sympy.sin(sympy.pi * x) * y**2
    f = sympy.diff(a * sympy.diff(u, x), x) + sympy.diff(a * sympy.diff(u, y), y)
    return tuple(sympy.lambdify((x, y), e, "numpy") for e in (u, a, f))


def _order(errs):
    return np.polyfit(np.log(2.0 / (np.array(NS) - 1)), np.log(errs), 1)[0]


@pytest.mark.parametrize("method", ["amg", "direct"])
@pytest.mark.parametrize("a_as", ["callable", "nodes"])
def test_manufactured_second_order(method, a_as):
    u, a, f = _manufactured()
    errs = []
    for n in NS:
        g = Grid.square(n)
        X, Y = g.coords()
        coef = a if a_as == "callable" else a(X, Y)
        sol = solve_diffusion_dirichlet(g, coef, f(X, Y), u(X, Y), method=method)
        assert sol.params["method"] == method
        errs.append(np.abs(sol.values - u(X, Y)).max())
    order = _order(errs)
    assert abs(order - 2) <= 0.3, (order, errs)
    assert errs[-1] < 3e-4, errs  # measured 2.03e-4 (h = 1/64)
    assert errs[0] / errs[1] > 3.0 and errs[1] / errs[2] > 3.0, errs


def test_methods_agree_and_harmonic_mean_is_also_second_order():
    u, a, f = _manufactured()
    g = Grid(((-1, 1), (-0.5, 1)), (41, 31))  # non-square spacing
    X, Y = g.coords()
    A, F, G = a(X, Y), f(X, Y), u(X, Y)
    s1 = solve_diffusion_dirichlet(g, A, F, G, method="amg").values
    s2 = solve_diffusion_dirichlet(g, A, F, G, method="direct").values
    np.testing.assert_allclose(s1, s2, atol=1e-8 * np.abs(s2).max())
    errs = []
    for n in NS:
        gg = Grid.square(n)
        XX, YY = gg.coords()
        sol = solve_diffusion_dirichlet(gg, a(XX, YY), f(XX, YY), u(XX, YY), method="direct", mean="harmonic")
        errs.append(np.abs(sol.values - u(XX, YY)).max())
    assert abs(_order(errs) - 2) <= 0.3, errs


def test_constant_coefficient_matches_poisson_solver():
    g = Grid.square(37)
    rng = np.random.default_rng(1)
    F = rng.normal(size=g.shape)
    G = rng.normal(size=g.shape)
    ref = solve_poisson_dirichlet(g, F / 2.5, G, method="dst").values
    got = solve_diffusion_dirichlet(g, 2.5, F, G, method="direct").values
    np.testing.assert_allclose(got, ref, atol=1e-9 * np.abs(ref).max())


def test_boundary_values_are_kept_exactly():
    u, a, f = _manufactured()
    g = Grid.square(21)
    X, Y = g.coords()
    sol = solve_diffusion_dirichlet(g, a, f(X, Y), u(X, Y)).values
    ue = u(X, Y)
    for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
        np.testing.assert_array_equal(sol[edge], ue[edge])


def test_bad_input_is_refused_with_a_clear_error():
    g = Grid.square(9)
    F = np.zeros(g.shape)
    with pytest.raises(ValueError, match="a > 0"):
        solve_diffusion_dirichlet(g, -1.0, F)
    with pytest.raises(ValueError, match="grid shape"):
        solve_diffusion_dirichlet(g, np.ones((3, 3)), F)
    with pytest.raises(ValueError, match="method"):
        solve_diffusion_dirichlet(g, 1.0, F, method="cg")
    with pytest.raises(ValueError, match="mean"):
        solve_diffusion_dirichlet(g, np.ones(g.shape), F, mean="geometric")
