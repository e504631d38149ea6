"""pinnsiren.specio: a Problem stored in a result file and read back gives the same grid solution;
regions round-trip exactly; what cannot be stored marks the spec incomplete; the srepr reader refuses code."""

import json

import numpy as np
import pytest
import sympy
import torch

import pinnsiren as pinn
from pinnsiren.geometry import Polygon
from pinnsiren.io import load_problem, read_result, read_spec, write_result
from pinnsiren.specio import (IncompleteSpecError, SpecError, dump_srepr, load_srepr, problem_from_spec,
                              problem_spec, region_from_spec, region_spec)
from pinnsiren.symbolic import coefficient, divergence, gradient
from reference import fdgen

x, y, t = sympy.symbols("x y t")
BOX = [(-1, 1), (-1, 1)]


def tutorial_problem():
    u = pinn.Field("u", (x, y))
    a = 1 + sympy.Rational(1, 2) * sympy.sin(sympy.pi * x) * y**2
    ue = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y) + x * y

    def div(v):
        return divergence([a * d for d in gradient(v, (x, y))], (x, y))

    return pinn.Problem([u], (x, y), [
        pinn.Constraint(sympy.Eq(div(u), div(ue)), where=pinn.Box(BOX), n=64, name="pde"),
        pinn.Constraint(u - ue, where=pinn.Box(BOX).boundary(), n=16, name="boundary", weight=100.0),
    ])


def through_file(problem, tmp_path, name="run.h5"):
    path = write_result(tmp_path / name, kind="test", config={}, problem=problem)
    return load_problem(path), path


def same_constraints(p, q):
    assert list(p.constraints) == list(q.constraints)
    for name, c in p.constraints.items():
        d = q.constraints[name]
        assert (c.expr == d.expr) if not isinstance(c.expr, (list, tuple)) else list(c.expr) == list(d.expr), name
        assert (c.weight == d.weight, c.norm, c.n, c.pair) == (True, d.norm, d.n, d.pair), name
        assert type(c.where) is type(d.where), name


def test_tutorial_problem_round_trips_to_the_same_grid_solution(tmp_path):
    p = tutorial_problem()
    q, path = through_file(p, tmp_path)
    same_constraints(p, q)
    assert [f.func.__name__ for f in q.fields] == ["u"] and q.coords == p.coords
    assert q.fields[0] == p.fields[0]  # the field's function (real, pinn_field) is rebuilt, not a bare Function
    for order in (2, 4):
        a, b = fdgen.solve(p, 17, order=order)["u"].values, fdgen.solve(q, 17, order=order)["u"].values
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-13)
    # the answer is the right one, not two equally wrong solves (order 4 on 17^2: max error well under 1e-3)
    X, Y = fdgen.solve(q, 17, order=4)["u"].grid.coords()
    ue = np.sin(np.pi * X) * np.sin(np.pi * Y) + X * Y
    assert np.abs(fdgen.solve(q, 17, order=4)["u"].values - ue).max() < 1e-3
    spec = read_result(path)["spec"]
    assert spec["complete"] is True and spec["incomplete"] == []
    assert spec["constraints"][1]["weight"] == 100.0 and spec["constraints"][1]["region"]["faces"] == [
        [0, 0], [0, 1], [1, 0], [1, 1]]


def test_time_dependent_problem_with_parameters_coefficients_and_a_neumann_face(tmp_path):
    u = pinn.Field("u", (x, t))
    nu = sympy.Symbol("nu", positive=True)
    q = coefficient("q", (x, t))
    ue = sympy.exp(-t) * sympy.cos(sympy.pi * x / 2)
    src = (ue.diff(t) - sympy.Rational(1, 2) * ue.diff(x, 2))
    box = [(-1, 1), (0, 1)]
    p = pinn.Problem([u], (x, t), [
        pinn.Constraint(u.diff(t) - nu * u.diff(x, 2) - q, where=pinn.Box(box), n=8, name="pde", norm="l1"),
        pinn.Constraint(u, where=pinn.Box(box).boundary(faces=[(0, 0)]), n=8, name="left",
                        weight=1 + x**2),
        pinn.Constraint(u.diff(x) - ue.diff(x).subs(x, 1),
                        where=pinn.Box(box).boundary(faces=[(0, 1)]), n=8, name="right"),
        pinn.Constraint(u - ue.subs(t, 0), where=pinn.SpaceTime(pinn.Box([(-1, 1)]), (0, 1), t_index=1).initial(), n=8, name="ic"),
    ], coefficients={"q": src}, parameters={nu: torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))})
    r, path = through_file(p, tmp_path)
    same_constraints(p, r)
    assert isinstance(r.parameters["nu"], torch.nn.Parameter) and float(r.parameters["nu"].detach()) == 0.5
    assert r.coefficients["q"] == src
    kw = dict(order=4, times=5, rtol=1e-10, atol=1e-12)
    a, b = fdgen.solve(p, 21, **kw)["u"].values, fdgen.solve(r, 21, **kw)["u"].values
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)
    g = fdgen.solve(r, 21, **kw)["u"].grid
    X, T = g.coords()
    assert np.abs(b - np.exp(-T) * np.cos(np.pi * X / 2)).max() < 1e-4  # it solved the stored PDE, nu = 0.5


def test_complex_field_and_periodic_pair_round_trip(tmp_path):
    w = pinn.Field("w", (x, y), complex=True)
    ue = sympy.exp(sympy.I * sympy.pi * x) * (1 - y**2)
    L = lambda v: v.diff(x, 2) + v.diff(y, 2) + 3 * v  # noqa: E731
    p = pinn.Problem([w], (x, y), [
        pinn.Constraint(L(w) - L(ue).doit(), where=pinn.Box(BOX), n=8, name="pde"),
        pinn.Constraint(w - ue, where=pinn.Box(BOX).boundary(faces=[(1, 0), (1, 1)]), n=8, name="walls"),
        pinn.Constraint([w, w.diff(x)], where=pinn.Box(BOX).boundary(faces=[(0, 0)]), n=8, name="period",
                        pair=(2.0, 0.0)),
    ])
    q, _ = through_file(p, tmp_path)
    same_constraints(p, q)
    assert q.n_channels == 2 and q.constraints["period"].pair == (2.0, 0.0)
    a, b = fdgen.solve(p, 17)["w"].values, fdgen.solve(q, 17)["w"].values
    assert np.iscomplexobj(b)
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-13)


def regions():
    sq = pinn.Box(BOX)
    hole = pinn.Ball([0.2, -0.1], 0.3)
    tri = Polygon([[0, 0], [0.8, 0], [0, 0.7]])
    shape = (sq - hole) | tri
    st = pinn.SpaceTime(sq & pinn.Ball([0, 0], 1.2), (0.0, 2.0), t_index=0)
    return {
        "box": sq, "faces": pinn.Box(BOX).boundary(faces=[(0, 1), (1, 0)]), "ball3": pinn.Ball([0, 0, 0.5], 0.7),
        "polygon": tri, "csg": shape, "csg_boundary": shape.boundary(), "st": st, "st_boundary": st.boundary(),
        "st_initial": st.initial(), "st_final": st.final(),
        "slice": pinn.SpaceTime(pinn.Box(BOX), (0.25, 1.0), t_index=2).initial(),
        "near": pinn.NearPoint([0.1, 0.2], 0.05, BOX), "cone": pinn.Cone([0, 0], 0.1, 1.0, (0, 1), BOX, 2),
    }


@pytest.mark.parametrize("name", sorted(regions()))
def test_regions_round_trip_and_sample_the_same_points(name):
    r = regions()[name]
    reasons = []
    d = json.loads(json.dumps(region_spec(r, name, reasons)))
    assert reasons == []
    s = region_from_spec(d)
    assert type(s) is type(r) and s.dim == r.dim
    xa, da = r.sample(200, 0, torch.Generator().manual_seed(3))
    xb, db = s.sample(200, 0, torch.Generator().manual_seed(3))
    assert torch.equal(xa, xb)
    assert sorted(da) == sorted(db) and all(torch.equal(da[k], db[k]) for k in da)


def test_callables_and_point_sets_mark_the_spec_incomplete(tmp_path):
    u = pinn.Field("u", (x, y))
    p = pinn.Problem([u], (x, y), [
        pinn.Constraint(u.diff(x, 2) + u.diff(y, 2) - coefficient("f", (x, y)),
                        where=pinn.Box(lambda step: [(-1, 1), (-1, min(1.0, 0.1 + step / 100))]), n=8, name="pde"),
        pinn.Constraint(u, where=pinn.Box(BOX).boundary(faces=[(0, 0)]), n=8, name="wrap", pair=lambda z: -z),
        pinn.Constraint(u - coefficient("d", (x, y)), where=pinn.PointSet(np.zeros((5, 2)), {"d": np.ones(5)}),
                        name="data"),
    ], coefficients={"f": lambda z: z[:, 0]})
    spec = problem_spec(p)
    assert spec["complete"] is False
    text = " | ".join(spec["incomplete"])
    for bit in ("constraint 'pde': Box bounds given as a callable", "constraint 'wrap': pair is a callable",
                "constraint 'data': a PointSet (5 points) is not stored", "coefficient 'f' is a function"):
        assert bit in text, text
    # what can be stored is stored
    assert spec["constraints"][0]["region"] == {"type": "Box", "bounds": None, "callable": ["bounds"]}
    assert spec["constraints"][2]["region"]["data_names"] == ["d"]
    path = write_result(tmp_path / "r.h5", kind="test", config={}, problem=p)
    assert read_spec(path)["incomplete"] == spec["incomplete"]
    with pytest.raises(IncompleteSpecError, match="Box bounds given as a callable"):
        load_problem(path)


def test_a_file_without_a_spec_reads_as_none(tmp_path):
    path = write_result(tmp_path / "r.h5", kind="test", config={})
    assert read_result(path)["spec"] is None and read_spec(path) is None
    with pytest.raises(LookupError, match="stores no problem spec"):
        load_problem(path)


def test_srepr_reader_rebuilds_sympy_and_refuses_code(tmp_path):
    u = pinn.Field("u", (x, y))
    exprs = [
        sympy.Piecewise((x, x > 0), (0, True)) + sympy.Heaviside(y) + sympy.Max(x, y) + sympy.Abs(x),
        sympy.conjugate(sympy.I * x) + sympy.re(y) + sympy.im(x) + sympy.Float("0.1", 30) + sympy.Rational(-3, 7),
        u.diff(x, 2) * sympy.exp(-x) + sympy.pi * sympy.E - sympy.oo * 0 + 10**30,
        sympy.Eq(x, y), sympy.Symbol("n_x", real=True) * u,
    ]
    for e in exprs:
        back = load_srepr(dump_srepr(e), {"u": u.func})
        assert back == e, (e, back)
    marker = tmp_path / "pwned"
    bad = [
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        f"Add(Symbol('x'), \"__import__('pathlib').Path({str(marker)!r}).touch()\")",
        f"sympify(\"__import__('pathlib').Path({str(marker)!r}).touch()\")",
        "Symbol('x').__class__", "(lambda: 1)()", "Symbol('x', real=Symbol('y'))", "Float('1e5; 2')",
        "Integer(*[1])", "eval('1')", "_sympy_", "x", "Function('f')(**{})",
    ]
    for text in bad:
        with pytest.raises(SpecError):
            load_srepr(text)
    assert not marker.exists()
    with pytest.raises(SpecError, match="format"):
        problem_from_spec({"format": "something-else/9"})


def test_composed_regions_subset_fields_and_vector_residuals_rebuild_to_the_same_spec(tmp_path):
    u = pinn.Field("u", (x, y))
    g = pinn.Field("g", (x,))  # a field over a subset of the coordinates
    dom = pinn.Box(BOX) - pinn.Ball([0.3, 0.3], 0.2)
    p = pinn.Problem([u, g], (x, y), [
        pinn.Constraint([u.diff(x) - g, u.diff(y)], where=dom, n=16, name="grad", norm="l1"),
        pinn.Constraint(u, where=dom.boundary(), n=16, name="wall", weight=sympy.exp(-x**2)),
    ], parameters={"k": 2.5})
    spec = problem_spec(p)
    assert spec["complete"], spec["incomplete"]
    assert spec["fields"][1] == {"name": "g", "coords": ["Symbol('x')"], "complex": False}
    q, _ = through_file(p, tmp_path)
    assert problem_spec(q) == spec  # idempotent: nothing lost or changed on the way
    same_constraints(p, q)
    assert q.fields[1].args == (x,) and q.parameters == {"k": 2.5}
    xa, da = p.constraints["wall"].where.sample(64, 0, torch.Generator().manual_seed(1))
    xb, db = q.constraints["wall"].where.sample(64, 0, torch.Generator().manual_seed(1))
    assert torch.equal(xa, xb) and torch.equal(da["normal"], db["normal"])
