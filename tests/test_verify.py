"""train(..., verify="grid"): the grid check at the end of a run, and the alarm it raises."""

import functools
import math

import numpy as np
import pytest
import sympy
import torch
from torch import nn

from pinnsiren import Box, Constraint, Field, PointSet, Problem, Siren, SpaceTime, impose_exactly, verify
from pinnsiren.compiler import compile_residual
from pinnsiren.alarm import Alarm, TrainingAlarmWarning
from pinnsiren.io import read_result, write_result
from pinnsiren.phases import Adam
from pinnsiren.train import TrainConfig, train

x, y = sympy.symbols("x y")
u = Field("u", (x, y))
pi = sympy.pi


class _Closed(nn.Module):
    """A 'network' that is a given closed-form field (float64, differentiable in x)."""

    def __init__(self, expr):
        super().__init__()
        self.fn = compile_residual(sympy.sympify(expr) + 0 * x, [], (x, y))
        self.w = nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.out_features = 1

    def forward(self, z):
        return self.fn(None, z.double())[:, None] + self.w


def _helmholtz(k2, sol, bounds):
    q = sympy.diff(sol, x, 2) + sympy.diff(sol, y, 2) + k2 * sol
    return Problem([u], (x, y), [
        Constraint(u.diff(x, 2) + u.diff(y, 2) + k2 * u - q, Box(bounds), n=256, name="pde"),
        Constraint(u, Box(bounds).boundary(), n=64, name="boundary")])


def test_the_exact_field_passes_and_a_wrong_one_is_named():
    sol = sympy.sin(pi * x) * sympy.sin(4 * pi * y)
    prob = _helmholtz(16, sol, [(-1, 1), (-1, 1)])
    good = verify.run("grid", prob, _Closed(sol))
    assert good["available"] and good["disagree"] == []
    row = good["table"]["u"]
    assert row["rel_l2"] < 0.05 and row["limit"] >= verify.TOLERANCE
    assert 0 < good["grid_self"]["u"] < 0.2  # the 33-node grid differs from the 65-node one by its own error
    bad = verify.run("grid", prob, _Closed(1.3 * sol))
    assert bad["disagree"] == ["u"] and bad["table"]["u"]["rel_l2"] > 0.25


def test_a_near_resonant_helmholtz_error_is_invisible_in_the_loss_but_not_to_the_grid():
    # k^2 just below the first Dirichlet eigenvalue 2 pi^2 of the unit square: adding 30 % of the
    # eigenfunction changes the PDE residual by (k^2 - 2 pi^2) * 0.3 * phi only
    k2 = 2 * math.pi**2 - 0.05
    sol = sympy.sin(2 * pi * x) * sympy.sin(pi * y) + x * y * (1 - x) * (1 - y)
    prob = _helmholtz(k2, sol, [(0, 1), (0, 1)])
    eig = sympy.sin(pi * x) * sympy.sin(pi * y)
    wrong = _Closed(sol + 0.3 * eig)
    gen = torch.Generator().manual_seed(0)
    pde = float(prob.losses(wrong, 0, gen)["pde"].detach())
    scale = float(prob.losses(_Closed(0 * x), 0, torch.Generator().manual_seed(0))["pde"].detach())
    assert pde < 1e-5 * scale  # the loss says: solved
    res = verify.run("grid", prob, wrong)
    assert res["disagree"] == ["u"] and res["table"]["u"]["rel_l2"] > 0.2
    al = Alarm(prob, wrong, mode="warn", steps=1)
    with pytest.warns(TrainingAlarmWarning, match=r"grid: field 'u' differs from the grid solution"):
        al.verdict(res, 1)
    assert [a["kind"] for a in al.alarms] == ["grid"]


def test_a_short_run_raises_the_grid_alarm_and_the_file_keeps_the_table(tmp_path):
    sol = sympy.sin(pi * x) * sympy.sin(4 * pi * y)
    prob = _helmholtz(16, sol, [(-1, 1), (-1, 1)])
    torch.manual_seed(0)
    net = Siren(2, 1, 16, 1).double()
    model, rest = impose_exactly(prob, net)
    with pytest.warns(TrainingAlarmWarning, match="differs from the grid solution"):
        res = train(rest, model, TrainConfig(phases=[Adam(20, lr=1e-4)], seed=0, progress=False), verify="grid")
    v = res.verification
    assert v["available"] and v["disagree"] == ["u"]
    assert any(a["kind"] == "grid" for a in res.alarms)
    path = write_result(tmp_path / "run.h5", kind="test", config={}, verification=v)
    back = read_result(path)["verification"]
    assert back["disagree"] == ["u"] and back["table"]["u"]["rel_l2"] == pytest.approx(v["table"]["u"]["rel_l2"])


def test_a_problem_the_grid_cannot_take_is_reported_not_fatal():
    prob = Problem([u], (x, y), [Constraint(u.diff(x, 2) + u.diff(y, 2) - 1, Box([(0, 1), (0, 1)]), n=16, name="pde"),
                                 Constraint(u, PointSet(np.zeros((1, 2))), name="gauge")])
    res = verify.run("grid", prob, _Closed(0 * x))
    assert res["available"] is False and "SpecError" in res["reason"] and res["disagree"] == []
    with pytest.raises(ValueError, match="unknown verifier 'nope'"):
        verify.run("nope", prob, _Closed(0 * x))


class _Gridded(nn.Module):
    """A 'network' that is a grid solution with each field scaled: a constructed training error."""

    def __init__(self, sol, names, factors):
        super().__init__()
        self.sol, self.names, self.factors = sol, names, factors
        self.w = nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.out_features = len(names)

    def forward(self, z):
        pts = z.detach().double().cpu().numpy()
        cols = [f * self.sol[n].sample(pts) for n, f in zip(self.names, self.factors)]
        return torch.as_tensor(np.stack(cols, 1)) + self.w


def _cavity():
    """PINNacle's NS2d-C as benchmarks/pinnacle.py declares it: no pressure condition but a gauge."""
    uu, vv, p = (Field(n, (x, y)) for n in ("u", "v", "p"))
    nu = sympy.Rational(1, 100)
    box = Box([(0, 1), (0, 1)])
    lid, walls = box.boundary(faces=[(1, 1)]), box.boundary(faces=[(0, 0), (0, 1), (1, 0)])
    return Problem([uu, vv, p], (x, y), [
        Constraint(uu * uu.diff(x) + vv * uu.diff(y) + p.diff(x) - nu * (uu.diff(x, 2) + uu.diff(y, 2)), box, n=64,
                   name="momentum_x"),
        Constraint(uu * vv.diff(x) + vv * vv.diff(y) + p.diff(y) - nu * (vv.diff(x, 2) + vv.diff(y, 2)), box, n=64,
                   name="momentum_y"),
        Constraint(uu.diff(x) + vv.diff(y), box, n=64, name="continuity"),
        Constraint(uu - 4 * x * (1 - x), lid, n=16, name="lid_u"), Constraint(vv, lid, n=16, name="lid_v"),
        Constraint(uu, walls, n=16, name="wall_u"), Constraint(vv, walls, n=16, name="wall_v"),
        Constraint(p, PointSet(np.zeros((1, 2))), name="pressure_gauge")])


def test_the_cavity_as_it_trains_today_raises_the_grid_alarm():
    """NS2d-C trained with the recommended setup ends 6.3 % / 9.9 % / 5.6 % off in u / v / p with no alarm
    (issue record). The grid now solves the cavity (the pressure's wall rows are the normal momentum
    equation, its level the declared gauge): a field off by those amounts is named, the grid itself passes."""
    from reference import fdgen
    from solvers.pde.verify_grid import default_grid, grid_verifier

    check = functools.partial(grid_verifier, grid=65)  # 65 / 33 nodes keep the test short; the default is 129
    prob = _cavity()
    assert default_grid(prob) == 129  # three fields on 129^2 nodes: 49 923 unknowns
    sol = fdgen.solve(prob, 65)
    same = verify.run(check, prob, _Gridded(sol, "uvp", (1.0, 1.0, 1.0)))
    assert same["available"] and same["disagree"] == []
    assert same["grid_self"]["u"] < 0.025 and same["grid_self"]["v"] < 0.045  # measured 0.014, 0.033 (p 0.064)
    off = verify.run(check, prob, _Gridded(sol, "uvp", (1 - 0.063, 1 + 0.099, 1 + 0.056)))
    assert {"u", "v"} <= set(off["disagree"])
    al = Alarm(prob, _Gridded(sol, "uvp", (1.0, 1.0, 1.0)), mode="warn", steps=1)
    with pytest.warns(TrainingAlarmWarning, match="differs from the grid solution"):
        al.verdict(off, 1)


def test_the_default_grid_is_the_finest_the_unknowns_allow():
    """257 for one field in one space dimension marched in time, 129 for a 2-D scalar or a three-field
    flow, 65 for a 2-D problem marched in time."""
    from solvers.pde.verify_grid import default_grid

    t = sympy.Symbol("t")
    w = Field("w", (x, t))
    st = SpaceTime(Box([(0, 1)]), (0, 1), t_index=1)
    heat1 = Problem([w], (x, t), [Constraint(w.diff(t) - w.diff(x, 2), Box([(0, 1), (0, 1)]), n=8, name="pde"),
                                  Constraint(w - sympy.sin(pi * x), st.initial(), n=8, name="initial"),
                                  Constraint(w, Box([(0, 1), (0, 1)]).boundary([(0, 0), (0, 1)]), n=8, name="ends")])
    assert default_grid(heat1) == 257
    assert default_grid(_helmholtz(16, sympy.sin(pi * x), [(-1, 1), (-1, 1)])) == 129
    z = Field("z", (x, y, t))
    st2 = SpaceTime(Box([(0, 1), (0, 1)]), (0, 1), t_index=2)
    cube = Box([(0, 1), (0, 1), (0, 1)])
    heat2 = Problem([z], (x, y, t), [Constraint(z.diff(t) - z.diff(x, 2) - z.diff(y, 2), cube, n=8, name="pde"),
                                     Constraint(z, st2.initial(), n=8, name="initial"),
                                     Constraint(z, cube.boundary([(0, 0), (0, 1), (1, 0), (1, 1)]), n=8, name="walls")])
    assert default_grid(heat2) == 65


def test_helmholtz_k4_as_it_trains_today_raises_the_grid_alarm():
    """PINNacle-style Helmholtz2d, k = 4 (Delta u + 16 u = q on [-1, 1]^2, u = sin(pi x) sin(4 pi y)), ends at
    rel. L2 0.386 with the recommended setup and no loss alarm (issue record). A field that far off in the
    mode the run leaves out, sin(pi x) sin(3 pi y), is named by the grid check at its default 129 nodes; the
    exact field passes."""
    sol = sympy.sin(pi * x) * sympy.sin(4 * pi * y)
    prob = _helmholtz(16, sol, [(-1, 1), (-1, 1)])
    good = verify.run("grid", prob, _Closed(sol))
    assert good["grid"] == 129 and good["disagree"] == []
    off = sympy.sin(pi * x) * sympy.sin(3 * pi * y)
    bad = verify.run("grid", prob, _Closed(sol + 0.386 * off))
    assert bad["disagree"] == ["u"] and bad["table"]["u"]["rel_l2"] == pytest.approx(0.386, rel=0.05)
