"""reference.fdgen: PML Helmholtz against the hand-written scheme, periodic and second-order-in-time
problems, Crank-Nicolson, and the refusals (each message checked)."""

import numpy as np
import pytest
import sympy

from reference import HelmholtzOperator, fdgen, gaussian_source
from reference.fdgen import SpecError

x, y, t = sympy.symbols("x y t")
BOX = [(-1, 1), (-1, 1)]


def order_of(ns, errs, length=2.0):
    h = np.array([length / (n - 1) for n in ns])
    return float(np.polyfit(np.log(h), np.log(errs), 1)[0])


# ------------------------------------------------------------ PML Helmholtz
def helmholtz_problem(k=20):
    pinn = pytest.importorskip("pinnsiren")
    from equations import helmholtz

    u = pinn.Field("u", (x, y), complex=True)
    return pinn.Problem(
        fields=[u], coords=(x, y),
        constraints=[
            pinn.Constraint(helmholtz.helmholtz_pml(u, k=k), where=pinn.Box(BOX), n=64, name="pde"),
            pinn.Constraint(u, where=pinn.Box(BOX).boundary(), n=16, name="wall"),
        ],
    )


@pytest.mark.parametrize("n", [33, 65])
def test_pml_helmholtz_matches_the_hand_written_five_point_scheme(n):
    sol = fdgen.solve(helmholtz_problem(), n)
    op = HelmholtzOperator(n, 20.0, scheme=5)
    ref = op.solve_source(gaussian_source(op.grid))
    assert sol["u"].values.dtype == np.complex128
    scale = np.abs(ref.values).max()
    assert np.abs(sol["u"].values - ref.values).max() <= 1e-12 * scale
    # the matrices agree entry by entry: the generated interior system is -A of scheme 5
    el = sol.system.eliminate()
    J = (sol.system.pde_jacobian(np.zeros(sol.system.N, complex)) @ el.T).tocsr()
    assert abs(J + op.A).max() <= 1e-12 * abs(op.A).max()


def test_complex_field_orders_on_a_manufactured_pml_solution():
    # the PML stretching is only C^1 at |x| = 1/2, so order 2 (the 5-point-equivalent) is what holds
    prob = helmholtz_problem(k=4)
    pinn = pytest.importorskip("pinnsiren")
    from equations import helmholtz

    ue = sympy.exp(sympy.I * 2 * x) * sympy.cos(sympy.pi * y / 2) * (1 - x**2)
    w = pinn.Field("w", (x, y), complex=True)
    L = helmholtz.helmholtz_pml(w, k=4, f=0)
    Lw = L.subs(w, ue).doit()
    prob = pinn.Problem(
        fields=[w], coords=(x, y),
        constraints=[
            pinn.Constraint(L - Lw, where=pinn.Box(BOX), n=8, name="pde"),
            pinn.Constraint(w - ue, where=pinn.Box(BOX).boundary(), n=8, name="wall"),
        ],
    )
    fe = sympy.lambdify((x, y), ue, "numpy")
    errs = []
    for n in (17, 33, 65):
        s = fdgen.solve(prob, n)
        X, Y = s["w"].grid.coords()
        errs.append(np.abs(s["w"].values - fe(X, Y)).max())
    assert abs(order_of((17, 33, 65), errs) - 2) < 0.3, errs


# ------------------------------------------------------- periodic, u_tt, CN
def heat(n, order, integrator="BDF", **kw):
    u = sympy.Function("u", real=True)(x, t)
    ue = sympy.exp(-t) * sympy.sin(x) + sympy.exp(-4 * t) * sympy.cos(2 * x) / 2
    sol = fdgen.solve_pde(u.diff(t) - u.diff(x, 2), [u], (x, t), [(0, 2 * np.pi), (0, 1)], initial=u - ue.subs(t, 0),
                          shape=n, order=order, time=t, periodic=[x], times=5, integrator=integrator, **kw)
    X, T = sol["u"].grid.coords()
    return float(np.abs(sol["u"].values - sympy.lambdify((x, t), ue)(X, T)).max()), sol


@pytest.mark.parametrize("order, slope", [(2, 2.0), (4, 4.0)])
def test_periodic_heat_orders(order, slope):
    ns = (17, 33, 65)
    errs = [heat(n, order, rtol=1e-11, atol=1e-13)[0] for n in ns]
    assert abs(order_of(ns, errs, 2 * np.pi) - slope) < 0.3, errs
    _, sol = heat(17, order, rtol=1e-11, atol=1e-13)
    v = sol["u"].values
    np.testing.assert_allclose(v[0], v[-1])  # the hi end is the lo end


def test_crank_nicolson_is_second_order_in_time():
    errs = [heat(257, 4, integrator="CN", steps=s)[0] for s in (8, 16, 32)]
    slope = np.polyfit(np.log([1 / 8, 1 / 16, 1 / 32]), np.log(errs), 1)[0]
    assert abs(slope - 2) < 0.2, errs


def test_wave_equation_by_first_order_reformulation():
    u = sympy.Function("u", real=True)(x, t)
    ue = sympy.sin(sympy.pi * x) * sympy.cos(sympy.pi * t) + sympy.sin(2 * sympy.pi * x) * sympy.sin(2 * sympy.pi * t) / 4
    conds = [(u, (x, "lo")), (u, (x, "hi")), (u - ue.subs(t, 0), (t, "lo")),
             (u.diff(t) - ue.diff(t).subs(t, 0), (t, "lo"))]
    errs = []
    for n in (21, 41, 81):
        sol = fdgen.solve_pde(u.diff(t, 2) - u.diff(x, 2), [u], (x, t), [(-1, 1), (0, 1)], conds, shape=n, order=4,
                              time=t, times=5, rtol=1e-11, atol=1e-12)
        X, T = sol["u"].grid.coords()
        errs.append(float(np.abs(sol["u"].values - sympy.lambdify((x, t), ue)(X, T)).max()))
    assert sol.system.slot_names == ["u", "u_t"]
    assert abs(order_of((21, 41, 81), errs) - 4) < 0.3, errs


def test_linear_steady_amg_matches_direct():
    u = sympy.Function("u", real=True)(x, y)
    ue = sympy.sin(sympy.pi * x) * sympy.cosh(y)
    a = 2 + x * y
    eq = sympy.diff(a * u.diff(x), x) + sympy.diff(a * u.diff(y), y)
    f = eq.subs(u, ue).doit()
    conds = [(u - ue, (c, s)) for c in (x, y) for s in ("lo", "hi")]
    d = fdgen.solve_pde(eq - f, [u], (x, y), BOX, conds, shape=65, method="direct")
    m = fdgen.solve_pde(eq - f, [u], (x, y), BOX, conds, shape=65, method="amg")
    assert m.stats["linear_solver"] == "amg"
    np.testing.assert_allclose(m["u"].values, d["u"].values, atol=1e-8)


# ---------------------------------------------------------------- refusals
def pinn_or_skip():
    return pytest.importorskip("pinnsiren")


def test_refuses_a_region_that_is_not_a_box():
    pinn = pinn_or_skip()
    u = pinn.Field("u", (x, y))
    prob = pinn.Problem([u], (x, y), [
        pinn.Constraint(u.diff(x, 2) + u.diff(y, 2) - 1, where=pinn.Box(BOX), n=8, name="pde"),
        pinn.Constraint(u, where=pinn.Ball((0, 0), 0.5), n=8, name="hole"),
    ])
    with pytest.raises(SpecError, match=r"constraint 'hole' is on a Ball region; .*boxes only"):
        fdgen.solve(prob, 9)


def test_refuses_a_curriculum_box():
    pinn = pinn_or_skip()
    u = pinn.Field("u", (x, t))
    prob = pinn.Problem([u], (x, t), [
        pinn.Constraint(u.diff(t) - u.diff(x, 2), where=pinn.Box(lambda s: [(-1, 1), (0, 1)]), n=8, name="pde"),
    ])
    with pytest.raises(SpecError, match=r"constraint 'pde': its bounds are a callable .* pass bounds="):
        fdgen.solve(prob, 9)


def test_refuses_a_derivative_order_the_stencils_lack():
    u = sympy.Function("u", real=True)(x, y)
    with pytest.raises(SpecError, match=r"term Derivative\(u\(x, y\), \(x, 5\)\): derivative order 5 in x is not in the stencil set"):
        fdgen.solve_pde(u.diff(x, 5) + u, [u], (x, y), BOX, [(u, f) for f in [(x, 0), (x, 1), (y, 0), (y, 1)]], shape=9)


def test_refuses_a_missing_boundary_condition():
    u = sympy.Function("u", real=True)(x, y)
    with pytest.raises(SpecError, match=r"face \(y, hi\) has no boundary condition for u"):
        fdgen.solve_pde(u.diff(x, 2) + u.diff(y, 2), [u], (x, y), BOX, [(u, (x, 0)), (u, (x, 1)), (u, (y, 0))], shape=9)


def test_refuses_a_non_holomorphic_complex_term():
    u = sympy.Function("u")(x, y)
    with pytest.raises(SpecError, match=r"term Abs\(.*\) is not complex-differentiable"):
        fdgen.solve_pde(u.diff(x, 2) + u.diff(y, 2) + sympy.Abs(u) ** 2 * u, [u], (x, y), BOX,
                        [(u, (c, s)) for c in (x, y) for s in (0, 1)], shape=9, complex_fields=[u])


def test_refuses_a_value_it_does_not_have():
    u = sympy.Function("u", real=True)(x, y)
    a = sympy.Function("a")(x, y)
    bcs = [(u, (c, s)) for c in (x, y) for s in (0, 1)]
    with pytest.raises(SpecError, match=r"coefficient a\(x, y\) has no value; pass values=\{'a'"):
        fdgen.solve_pde(a * u.diff(x, 2) + u.diff(y, 2) - 1, [u], (x, y), BOX, bcs, shape=9)
    k = sympy.Symbol("k")
    with pytest.raises(SpecError, match=r"symbol k has no value"):
        fdgen.solve_pde(u.diff(x, 2) + u.diff(y, 2) + k * u - 1, [u], (x, y), BOX, bcs, shape=9)
    # given values, the same specs solve
    s = fdgen.solve_pde(a * u.diff(x, 2) + u.diff(y, 2) + k * u - 1, [u], (x, y), BOX, bcs, shape=9,
                        values={"a": lambda X, Y: 1 + 0 * X, k: 0.5})
    assert np.isfinite(s["u"].values).all()


def test_refuses_time_problems_it_cannot_march():
    u = sympy.Function("u", real=True)(x, t)
    v = sympy.Function("v", real=True)(x, t)
    bcs = [(u, (x, 0)), (u, (x, 1)), (u - 1, (t, 0))]
    with pytest.raises(SpecError, match=r"final-time face of t"):
        fdgen.solve_pde(u.diff(t) - u.diff(x, 2), [u], (x, t), BOX, bcs + [(u, (t, 1))], time=t, shape=9)
    with pytest.raises(SpecError, match=r"each equation must contain the time derivative of exactly one field"):
        fdgen.solve_pde([u.diff(t) + v.diff(t) - u.diff(x, 2), v - u], [u, v], (x, t), BOX,
                        bcs + [(v, (x, 0)), (v, (x, 1)), (v, (t, 0))], time=t, shape=9)
    with pytest.raises(SpecError, match=r"mixes time and space derivatives of u"):
        fdgen.solve_pde(u.diff(t) - u.diff(x, t), [u], (x, t), BOX, bcs, time=t, shape=9)
    with pytest.raises(SpecError, match=r"no initial condition for \['u'\]"):
        fdgen.solve_pde(u.diff(t) - u.diff(x, 2), [u], (x, t), BOX, bcs[:2], time=t, shape=9)
    with pytest.raises(SpecError, match=r"order 3 is not in the stencil set|accuracy order 3"):
        fdgen.solve_pde(u.diff(t) - u.diff(x, 2), [u], (x, t), BOX, bcs, time=t, shape=9, order=3)


def test_refuses_an_initial_slice_that_is_not_at_the_initial_time():
    pinn = pinn_or_skip()
    u = pinn.Field("u", (x, t))
    prob = pinn.Problem([u], (x, t), [
        pinn.Constraint(u.diff(t) - u.diff(x, 2), where=pinn.Box([(-1, 1), (0, 1)]), n=8, name="pde"),
        pinn.Constraint(u, where=pinn.Box([(-1, 1), (0, 1)]).boundary(faces=[(0, 0), (0, 1)]), n=8, name="walls"),
        pinn.Constraint(u - 1, where=pinn.SpaceTime(pinn.Box([(-1, 1)]), (0.5, 1), t_index=1).initial(), n=8,
                        name="late"),
    ])
    with pytest.raises(SpecError, match=r"constraint 'late': a time slice at t = 0.5 is not the initial time 0.0"):
        fdgen.solve(prob, 9)


def test_a_time_problem_from_a_pinnsiren_problem():
    pinn = pinn_or_skip()
    u = pinn.Field("u", (x, t))
    ue = sympy.exp(-sympy.pi**2 * t / 4) * sympy.cos(sympy.pi * x / 2)
    prob = pinn.Problem([u], (x, t), [
        pinn.Constraint(u.diff(t) - u.diff(x, 2), where=pinn.Box([(-1, 1), (0, 1)]), n=8, name="pde"),
        pinn.Constraint(u, where=pinn.Box([(-1, 1), (0, 1)]).boundary(faces=[(0, 0), (0, 1)]), n=8, name="walls"),
        pinn.Constraint(u - ue.subs(t, 0), where=pinn.SpaceTime(pinn.Box([(-1, 1)]), (0, 1), t_index=1).initial(), n=8, name="ic"),
    ])
    sol = fdgen.solve(prob, 41, order=4, times=6, rtol=1e-10, atol=1e-12)
    X, T = sol["u"].grid.coords()
    assert sol["u"].values.shape == (41, 6)
    assert np.abs(sol["u"].values - sympy.lambdify((x, t), ue)(X, T)).max() < 1e-6


def test_a_box_boundary_on_the_initial_face_is_an_initial_condition():
    pinn = pinn_or_skip()
    u = pinn.Field("u", (x, t))
    ue = sympy.exp(-sympy.pi**2 * t / 4) * sympy.cos(sympy.pi * x / 2)
    box = [(-1, 1), (0, 1)]
    cons = [
        pinn.Constraint(u.diff(t) - u.diff(x, 2), where=pinn.Box(box), n=8, name="pde"),
        pinn.Constraint(u - ue, where=pinn.Box(box).boundary(faces=[(0, 0), (0, 1), (1, 0)]), n=8, name="data"),
    ]
    sol = fdgen.solve(pinn.Problem([u], (x, t), cons), 41, order=4, time=t, times=3, rtol=1e-10, atol=1e-12)
    X, T = sol["u"].grid.coords()
    assert np.abs(sol["u"].values - sympy.lambdify((x, t), ue)(X, T)).max() < 1e-6
    cons[1] = pinn.Constraint(u - ue, where=pinn.Box(box).boundary(), n=8, name="all")  # includes t = 1
    with pytest.raises(SpecError, match=r"constraint 'all' is on the final-time face of t"):
        fdgen.solve(pinn.Problem([u], (x, t), cons), 9, time=t)


def test_refuses_counts_orders_and_nonlinear_time_boundaries():
    u = sympy.Function("u", real=True)(x, y)
    v = sympy.Function("v", real=True)(x, y)
    walls = [(w, (c, s)) for w in (u, v) for c in (x, y) for s in (0, 1)]
    with pytest.raises(SpecError, match=r"1 equations for 2 fields \['u', 'v'\]: a steady problem needs one equation per field"):
        fdgen.solve_pde(u.diff(x, 2) + v, [u, v], (x, y), BOX, walls, shape=9)
    w = sympy.Function("w", real=True)(x, t)
    bcs = [(w, (x, 0)), (w, (x, 1)), (w, (t, 0))]
    with pytest.raises(SpecError, match=r"time derivative of order 3 of w: the solver marches up to u_tt"):
        fdgen.solve_pde(w.diff(t, 3) - w.diff(x, 2), [w], (x, t), BOX, bcs, time=t, shape=9)
    with pytest.raises(SpecError, match=r"condition 1.*boundary rows must be linear"):
        fdgen.solve_pde(w.diff(t) - w.diff(x, 2), [w], (x, t), BOX, [bcs[0], (w.diff(x) + w**3, (x, 1)), bcs[2]],
                        time=t, shape=9)


def test_newton_guess_and_a_nonlinear_boundary_condition_steady():
    # steady, nonlinear Robin face u_x + u^3 = g: no elimination, Newton on all rows
    u = sympy.Function("u", real=True)(x, y)
    ue = 1 + x / 3 + sympy.sin(y) / 4
    lap = lambda w: w.diff(x, 2) + w.diff(y, 2)  # noqa: E731
    conds = [(u - ue, (x, 0)), (u - ue, (y, 0)), (u - ue, (y, 1)),
             (u.diff(x) + u**3 - (ue.diff(x) + ue**3), (x, 1))]
    errs = []
    for n in (17, 33):
        sol = fdgen.solve_pde(sympy.Eq(lap(u), lap(ue)), [u], (x, y), BOX, conds, shape=n, guess=lambda X, Y: 1 + 0 * X)
        X, Y = sol["u"].grid.coords()
        errs.append(np.abs(sol["u"].values - sympy.lambdify((x, y), ue)(X, Y)).max())
    assert not sol.stats["linear"] and sol.stats["newton_iterations"] >= 2
    assert 3.2 < errs[0] / errs[1] < 4.8, errs


def test_a_problem_coefficient_given_as_a_torch_callable_needs_a_numpy_value():
    pinn = pinn_or_skip()
    torch = pytest.importorskip("torch")
    u = pinn.Field("u", (x, y))
    a = pinn.coefficient("a", (x, y))
    ue = x**2 + y
    prob = pinn.Problem([u], (x, y), [
        pinn.Constraint(a * (u.diff(x, 2) + u.diff(y, 2)) - 2 * (1 + x**2), where=pinn.Box(BOX), n=8, name="pde"),
        pinn.Constraint(u - ue, where=pinn.Box(BOX).boundary(), n=8, name="wall"),
    ], coefficients={"a": lambda p: 1 + p[:, 0] ** 2 + 0 * torch.zeros(())})
    with pytest.raises(SpecError, match=r"coefficient a\(x, y\) is a callable of the Problem .* values=\{'a'"):
        fdgen.solve(prob, 9)
    sol = fdgen.solve(prob, 9, values={"a": lambda X, Y: 1 + X**2})
    X, Y = sol["u"].grid.coords()
    np.testing.assert_allclose(sol["u"].values, X**2 + Y, atol=1e-12)  # quadratic: exact at 2nd order


@pytest.mark.parametrize("order, slope", [(2, 2.0), (4, 4.0)])
def test_mixed_derivative_orders(order, slope):
    u = sympy.Function("u", real=True)(x, y)
    ue = sympy.exp(x * y / 2) + sympy.sin(x - y)
    op = lambda w: w.diff(x, 2) + w.diff(y, 2) + w.diff(x, y) / 2  # noqa: E731
    conds = [(u - ue, (c, s)) for c in (x, y) for s in (0, 1)]
    errs = []
    for n in (17, 33, 65):
        sol = fdgen.solve_pde(sympy.Eq(op(u), op(ue)), [u], (x, y), BOX, conds, shape=n, order=order)
        X, Y = sol["u"].grid.coords()
        errs.append(np.abs(sol["u"].values - sympy.lambdify((x, y), ue)(X, Y)).max())
    assert abs(order_of((17, 33, 65), errs) - slope) < 0.3, errs


def test_radau_agrees_with_bdf():
    e_bdf, s_bdf = heat(33, 4, rtol=1e-10, atol=1e-12)
    e_rad, s_rad = heat(33, 4, integrator="Radau", rtol=1e-10, atol=1e-12)
    assert s_rad.stats["integrator"] == "Radau"
    np.testing.assert_allclose(s_rad["u"].values, s_bdf["u"].values, atol=1e-8)
    assert e_rad < 1e-4
