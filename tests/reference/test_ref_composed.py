"""reference.fdgen on composed 2-D regions: observed orders against manufactured solutions.

Each Problem is declared with pinnsiren's regions (a disc, a square minus four
discs, L-shapes as a Polygon and as Box - Box, a polygon with a hole, a heat
equation on a holed domain); the source and boundary data come from a closed
form, and Neumann/Robin data are computed here with the outward normal written
out by hand (not with the symbols n_x, n_y), so a wrong normal from fdgen gives
an error that does not fall. The observed order between successive grids is
log2(e_h / e_{h/2}) of the max error over the unknowns (inside nodes and
boundary points).
"""

import numpy as np
import pytest
import sympy

pinn = pytest.importorskip("pinnsiren")

from pinnsiren.geometry import Ball, Box, Polygon, SpaceTime  # noqa: E402
from pinnsiren.symbolic import normal_derivative  # noqa: E402
from reference import fdgen  # noqa: E402
from reference.fdgen import SpecError  # noqa: E402

x, y, t = sympy.symbols("x y t")
UE = sympy.exp(x) * sympy.sin(2 * y) + x * y + 1
u = pinn.Field("u", (x, y))
GRIDS = (33, 65, 129)


def lap(v):
    return v.diff(x, 2) + v.diff(y, 2)


def dn_hole(c, r):
    """d UE / dn on a hole's circle, n the domain's outward normal (into the hole): -(p - c) / r."""
    return -((x - c[0]) * UE.diff(x) + (y - c[1]) * UE.diff(y)) / r


def dn_disc(c, r):
    """d UE / dn on a disc's circle, outward normal (p - c) / r."""
    return ((x - c[0]) * UE.diff(x) + (y - c[1]) * UE.diff(y)) / r


def max_err(sol, ue=UE, coords=(x, y), time_index=None):
    P = sol.points
    f = sympy.lambdify(coords, ue, "numpy")
    v = sol.unknowns["u"] if time_index is None else sol.unknowns["u"][time_index]
    return float(np.max(np.abs(v - f(P[:, 0], P[:, 1]))))


def orders(errs):
    e = np.asarray(errs)
    return np.log2(e[:-1] / e[1:])


def solve_steady(dom, conditions, n, order=2):
    cons = [pinn.Constraint(lap(u) - lap(UE), where=dom, n=8, name="pde")]
    cons += [pinn.Constraint(expr, where=reg, n=8, name=name) for name, expr, reg in conditions]
    return fdgen.solve(pinn.Problem([u], (x, y), cons), n, order=order)


def study(dom, conditions, grids=GRIDS):
    return [max_err(solve_steady(dom, conditions, n)) for n in grids]


# ------------------------------------------------------------------ regions
DISC_C, DISC_R = (0.1, -0.05), 0.8
HOLES = [((a, b), 0.1) for a in (0.3, -0.3) for b in (0.3, -0.3)]
SQUARE = Box([(-0.5, 0.5), (-0.5, 0.5)])


def square_minus_discs():
    dom = SQUARE
    for c, r in HOLES:
        dom = dom - Ball(c, r)
    return dom


def test_disc_dirichlet_second_order():
    dom = Ball(DISC_C, DISC_R)
    errs = study(dom, [("bc", u - UE, dom.boundary())])
    assert errs[-1] < 5e-5
    assert orders(errs).min() >= 1.9


def test_disc_robin_second_order_with_the_discs_normal():
    dom = Ball(DISC_C, DISC_R)
    robin = u + normal_derivative(u, (x, y)) - (UE + dn_disc(DISC_C, DISC_R))
    errs = study(dom, [("robin", robin, dom.boundary())])
    assert errs[-1] < 2e-4
    assert orders(errs).min() >= 1.5


def test_square_minus_four_discs_dirichlet():
    dom = square_minus_discs()
    conds = [("edges", u - UE, SQUARE.boundary())]
    conds += [(f"circle{i}", u - UE, Ball(c, r).boundary()) for i, (c, r) in enumerate(HOLES)]
    errs = study(dom, conds)
    assert errs[-1] < 2e-5
    assert orders(errs).min() >= 1.9


def test_square_minus_four_discs_neumann_on_the_circles():
    dom = square_minus_discs()
    conds = [("edges", u - UE, SQUARE.boundary())]
    # n on Ball(c, r).boundary() is the disc's own outward normal (into the domain), as the trainer samples it
    conds += [(f"circle{i}", normal_derivative(u, (x, y)) - dn_disc(c, r), Ball(c, r).boundary())
              for i, (c, r) in enumerate(HOLES)]
    errs = study(dom, conds)
    assert errs[-1] < 2e-4
    assert orders(errs).min() >= 1.5


def test_square_minus_four_discs_wrong_normal_sign_is_seen():
    """On Ball(c, r).boundary() n points out of the disc (into the domain): data written with the domain's
    outward normal (into the hole) must not be matched."""
    dom = square_minus_discs()
    conds = [("edges", u - UE, SQUARE.boundary())]
    conds += [(f"circle{i}", normal_derivative(u, (x, y)) - dn_hole(c, r), Ball(c, r).boundary())
              for i, (c, r) in enumerate(HOLES)]
    assert study(dom, conds, grids=(65,))[0] > 1e-3


L_VERTICES = [(-1, -1), (1, -1), (1, 0), (0, 0), (0, 1), (-1, 1)]


@pytest.mark.parametrize("make", [lambda: Polygon(L_VERTICES),
                                  lambda: Box([(-1, 1), (-1, 1)]) - Box([(0, 1), (0, 1)])],
                         ids=["polygon", "box-minus-box"])
def test_l_shape_dirichlet(make):
    dom = make()
    errs = study(dom, [("bc", u - UE, dom.boundary())], grids=(17, 33, 65))
    assert errs[-1] < 3e-4
    assert orders(errs).min() >= 1.9


def test_l_shape_robin_on_the_reentrant_edges():
    """Robin on the two edges that meet at the re-entrant corner (outward normals +y and +x), Dirichlet on
    the outer square's faces (which do not contain those two edges)."""
    dom = Polygon(L_VERTICES)
    conds = [("robin_y", u + normal_derivative(u, (x, y)) - (UE + UE.diff(y)),
              pinn.Box([(0, 1), (-1, 0)]).boundary(faces=[(1, 1)])),
             ("robin_x", u + normal_derivative(u, (x, y)) - (UE + UE.diff(x)),
              pinn.Box([(-1, 0), (0, 1)]).boundary(faces=[(0, 1)])),
             ("outer", u - UE, pinn.Box([(-1, 1), (-1, 1)]).boundary())]
    errs = study(dom, conds, grids=(17, 33, 65))
    assert errs[-1] < 3e-3
    assert orders(errs).min() >= 1.5
    # the same data with the normals reversed is not matched
    wrong = [(n, u + normal_derivative(u, (x, y)) - (UE - UE.diff(v)), reg)
             for (n, _, reg), v in zip(conds[:2], (y, x))] + conds[2:]
    assert study(dom, wrong, grids=(33,))[0] > 1e-2


def test_polygon_with_a_hole_dirichlet_and_robin():
    """A pentagon minus a disc: Dirichlet on the pentagon, Robin on the hole's circle."""
    pent = Polygon([(-1, -0.8), (0.9, -1), (1, 0.3), (0.1, 1), (-0.9, 0.6)])
    c, r = (0.05, -0.1), 0.35
    dom = pent - Ball(c, r)
    for kind, expr, tol_e, tol_p in (("dirichlet", u - UE, 5e-5, 1.9),
                                     ("robin", u + normal_derivative(u, (x, y)) - (UE + dn_disc(c, r)), 2e-4, 1.5)):
        conds = [("outer", u - UE, pent.boundary()), ("hole", expr, Ball(c, r).boundary())]
        errs = study(dom, conds)
        assert errs[-1] < tol_e, kind
        assert orders(errs).min() >= tol_p, kind


def test_heat_equation_on_a_holed_domain():
    """u_t = Delta u + f on the square minus a disc, t in [0, 1], Dirichlet on both boundaries."""
    ue = sympy.exp(-t / 2) * sympy.sin(x + 2 * y) + x * y
    v = pinn.Field("u", (x, y, t))
    f = ue.diff(t) - lap(ue)
    c, r = (0.1, 0.05), 0.25
    dom = Box([(-0.5, 0.5), (-0.5, 0.5)]) - Ball(c, r)
    st = SpaceTime(dom, (0.0, 1.0))
    prob = pinn.Problem([v], (x, y, t), [
        pinn.Constraint(v.diff(t) - lap(v) - f, where=st, n=8, name="pde"),
        pinn.Constraint(v - ue, where=st.boundary(), n=8, name="walls"),
        pinn.Constraint(v - ue, where=st.initial(), n=8, name="initial"),
    ])
    errs = []
    for n in (17, 33, 65):
        sol = fdgen.solve(prob, n, times=3, rtol=1e-10, atol=1e-12)
        errs.append(max_err(sol, ue.subs(t, 1), time_index=-1))
        assert sol["u"].values.shape == (n, n, 3)
    assert errs[-1] < 2e-5
    assert orders(errs).min() >= 1.9


# ------------------------------------------------------------------ refusals and the interface
def test_missing_condition_on_a_hole_is_named():
    dom = square_minus_discs()
    conds = [("edges", u - UE, SQUARE.boundary())]
    conds += [(f"circle{i}", u - UE, Ball(c, r).boundary()) for i, (c, r) in enumerate(HOLES[:3])]
    with pytest.raises(SpecError, match=r"boundary points of the region, e\.g\. .* lie on no boundary part"):
        solve_steady(dom, conds, 33)


def test_3d_composed_region_is_refused():
    z = sympy.Symbol("z")
    w = pinn.Field("w", (x, y, z))
    dom = Box([(-1, 1)] * 3) - Ball((0, 0, 0), 0.5)
    prob = pinn.Problem([w], (x, y, z), [pinn.Constraint(w.diff(x, 2) - 1, where=dom, n=8, name="pde"),
                                         pinn.Constraint(w, where=dom.boundary(), n=8, name="bc")])
    with pytest.raises(SpecError, match=r"constraint 'pde': its region is 3-D in space; composed regions .* 2-D only"):
        fdgen.solve(prob, 9)


def test_user_normal_values_are_refused():
    dom = Ball(DISC_C, DISC_R)
    prob = pinn.Problem([u], (x, y), [pinn.Constraint(lap(u), where=dom, n=8, name="pde"),
                                      pinn.Constraint(u + normal_derivative(u, (x, y)), where=dom.boundary(), n=8,
                                                      name="robin")])
    with pytest.raises(SpecError, match=r"constraint 'robin': values gives n_x"):
        fdgen.solve(prob, 17, values={"n_x": 1.0})


def test_grid_field_is_nan_outside_and_at_interpolates():
    dom = square_minus_discs()
    conds = [("edges", u - UE, SQUARE.boundary())]
    conds += [(f"circle{i}", u - UE, Ball(c, r).boundary()) for i, (c, r) in enumerate(HOLES)]
    sol = solve_steady(dom, conds, 65)
    X, Y = sol["u"].grid.coords()
    outside = (X - 0.3) ** 2 + (Y - 0.3) ** 2 < 0.09**2
    assert np.all(np.isnan(sol["u"].values[outside]))
    rng = np.random.default_rng(0)
    P = rng.uniform(-0.5, 0.5, (4000, 2))
    P = P[np.all([(P[:, 0] - c[0]) ** 2 + (P[:, 1] - c[1]) ** 2 > r**2 for c, r in HOLES], 0)]
    want = sympy.lambdify((x, y), UE, "numpy")(P[:, 0], P[:, 1])
    got = sol.at("u", P)
    assert np.max(np.abs(got - want)) < 2e-3  # bilinear / linear interpolation at h = 1/64


def test_nonlinear_newton_on_a_disc():
    """-Delta u + u^3 = f on a disc, Dirichlet: Newton on the cut grid, second order."""
    dom = Ball(DISC_C, DISC_R)
    f = -lap(UE) + UE**3
    errs = []
    for n in GRIDS:
        prob = pinn.Problem([u], (x, y), [pinn.Constraint(-lap(u) + u**3 - f, where=dom, n=8, name="pde"),
                                          pinn.Constraint(u - UE, where=dom.boundary(), n=8, name="bc")])
        sol = fdgen.solve(prob, n)
        assert sol.stats["newton_iterations"] >= 3  # nonlinear: more than one step from the zero guess
        errs.append(max_err(sol))
    assert errs[-1] < 3e-5
    assert orders(errs).min() >= 1.9


def test_a_box_through_the_composed_path_matches_the_box_path():
    """Box + Boundary(box) (composed path: cut stencils, nodes on the faces as boundary points) gives the
    box path's solution (Box.boundary() faces) at every node it solves for (the four corners stay NaN)."""
    B = Box([(0, 1), (0, 2)])
    pde = pinn.Constraint(lap(u) - lap(UE), where=B, n=8, name="pde")
    cut = fdgen.solve(pinn.Problem([u], (x, y), [pde, pinn.Constraint(u - UE, where=pinn.Boundary(B), n=8,
                                                                       name="bc")]),
                      (17, 33))
    box = fdgen.solve(pinn.Problem([u], (x, y), [pde, pinn.Constraint(u - UE, where=B.boundary(), n=8,
                                                                       name="bc")]), (17, 33))
    assert type(cut).__name__ == "CutSolution" and type(box).__name__ == "FDSolution"
    known = np.isfinite(cut["u"].values)
    assert known.sum() == 17 * 33 - 4
    np.testing.assert_allclose(cut["u"].values[known], box["u"].values[known], rtol=0, atol=1e-12)
