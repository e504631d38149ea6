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


def test_the_three_grid_error_estimate_bounds_the_grids_own_error():
    """Poisson with a closed-form solution on 65 / 33 / 17 nodes: the observed order is the scheme's (2), and
    the estimated error of the 65-node grid (Roache's GCI) is at least its true error and within 3 times it."""
    from solvers.pde.verify_grid import grid_verifier

    sol = sympy.sin(pi * x) * sympy.sin(2 * pi * y) + 4 * x * (1 - x) * y * (1 - y)
    prob = _helmholtz(0, sol, [(0, 1), (0, 1)])
    out = verify.run(functools.partial(grid_verifier, grid=65), prob, _Closed(sol))
    true = out["table"]["u"]["rel_l2"]  # the exact field against the grid: the grid's own error
    assert out["coarsest"] == 17 and 1.8 < out["grid_order"]["u"] < 2.2
    assert true <= out["grid_error"]["u"] <= 3 * true
    assert out["table"]["u"]["limit"] == pytest.approx(verify.TOLERANCE + out["grid_error"]["u"])


def test_the_grid_error_falls_back_to_two_grids_and_clips_the_order():
    from solvers.pde.verify_grid import grid_error

    assert grid_error(0.01, None, 2) == (pytest.approx(0.01), None)  # 3 * 0.01 / (2^2 - 1)
    est, q = grid_error(0.01, 0.04, 2)
    assert q == pytest.approx(2.0) and est == pytest.approx(1.25 * 0.01 / 3)
    est, q = grid_error(0.01, 0.009, 2)  # not converging yet: the order is held at 0.5
    assert q < 0 and est == pytest.approx(1.25 * 0.01 / (2**0.5 - 1))
    assert grid_error(None, 0.1, 2) == (None, None)


def _recorded(table, changes):
    """A verifier that returns recorded numbers: per field (network vs grid, change 129/65, change 65/33)."""
    from solvers.pde.verify_grid import grid_error

    def fn(problem, model):
        est = {k: grid_error(c[0], c[1], 2) for k, c in changes.items()}
        return {"table": {k: {"rel_l2": v} for k, v in table.items()}, "grid": 129, "coarse": 65,
                "grid_self": {k: c[0] for k, c in changes.items()}, "grid_error": {k: e[0] for k, e in est.items()}}
    return fn


# the cavity's grid at 129 / 65 / 33 nodes (benchmarks/pinnacle.py --grid-vs-reference --cases NS2d-C):
# u 0.0040 / 0.0142 (order 1.8), v 0.0084 / 0.0328 (2.0), p 0.0284 / 0.0645 (1.2; the grid's p is 0.030 from
# the reference)
_CAVITY_CHANGES = {"u": (0.0040, 0.0142), "v": (0.0084, 0.0328), "p": (0.0284, 0.0645)}


def test_the_cavity_trained_today_passes_and_the_cavity_of_the_issue_does_not():
    """NS2d-C with today's recommended setup (0.0140 against the reference) was 0.065 off the 129-node grid in
    p, which the two-grid limit (0.057) called wrong; the grid's p converges at order 1.2 only, so its error
    estimate is 0.028 and the limit 0.078. The run of the issue (u 0.063, v 0.099 off) is still named."""
    today = verify.run(_recorded({"u": 0.0061, "v": 0.0068, "p": 0.065}, _CAVITY_CHANGES), None, None)
    assert today["disagree"] == [] and today["table"]["p"]["limit"] == pytest.approx(0.078, abs=0.001)
    issue = verify.run(_recorded({"u": 0.063, "v": 0.099, "p": 0.056}, _CAVITY_CHANGES), None, None)
    assert issue["disagree"] == ["u", "v"]
    assert issue["table"]["u"]["limit"] < 0.053 and issue["table"]["v"]["limit"] < 0.055
