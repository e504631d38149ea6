"""solvers.pde.compare: the network and the generated grid solver on the same grid, and the error table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

torch = pytest.importorskip("torch")
pinn = pytest.importorskip("pinnsiren")

from solvers.pde.compare import compare  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
x, y = sympy.symbols("x y")
BOX = [(-1, 1), (-1, 1)]
UE = sympy.sin(sympy.pi * x) * sympy.cos(sympy.pi * y / 2) + x


def poisson_problem():
    u = pinn.Field("u", (x, y))
    lap = lambda v: v.diff(x, 2) + v.diff(y, 2)  # noqa: E731
    return pinn.Problem([u], (x, y), [
        pinn.Constraint(sympy.Eq(lap(u), lap(UE)), where=pinn.Box(BOX), n=16, name="pde"),
        pinn.Constraint(u - UE, where=pinn.Box(BOX).boundary(), n=16, name="bc"),
    ])


class Known(torch.nn.Module):
    """A stand-in for a trained network: the exact solution plus a known error 1e-3 * y."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

    def forward(self, p):
        X, Y = p[:, 0], p[:, 1]
        return (self.scale * (torch.sin(np.pi * X) * torch.cos(np.pi * Y / 2) + X) + 1e-3 * Y)[:, None]


def test_compare_table_against_an_independent_computation():
    cmp = compare(poisson_problem(), Known(), 33, exact={"u": UE}, order=4)
    g = cmp.fd["u"].grid
    X, Y = g.coords()
    ue = sympy.lambdify((x, y), UE)(X, Y)
    net = ue + 1e-3 * Y
    np.testing.assert_allclose(cmp.model["u"], net, atol=1e-12)
    fdv = cmp.fd["u"].values
    row = cmp.table["u"]
    assert row["rel_l2"] == pytest.approx(np.linalg.norm(net - fdv) / np.linalg.norm(fdv), rel=1e-10)
    assert row["rel_l2_model_exact"] == pytest.approx(np.linalg.norm(1e-3 * Y) / np.linalg.norm(ue), rel=1e-10)
    assert row["max_abs_fd_exact"] < 1e-4  # 4th order on 33^2
    assert abs(row["max_abs"] - 1e-3) < 1e-4
    assert "rel_l2" in cmp.format()


def test_compare_splits_complex_channels():
    u = pinn.Field("u", (x, y), complex=True)
    ue = sympy.exp(sympy.I * x) * (1 - y**2)
    L = lambda v: v.diff(x, 2) + v.diff(y, 2) + 4 * v  # noqa: E731
    prob = pinn.Problem([u], (x, y), [
        pinn.Constraint(L(u) - L(ue).doit(), where=pinn.Box(BOX), n=8, name="pde"),
        pinn.Constraint(u - ue, where=pinn.Box(BOX).boundary(), n=8, name="bc"),
    ])

    class Two(torch.nn.Module):
        def forward(self, p):
            X, Y = p[:, 0], p[:, 1]
            return torch.stack([torch.cos(X) * (1 - Y**2), torch.sin(X) * (1 - Y**2)], 1)

    cmp = compare(prob, Two().double(), 33, exact={"u": ue})
    assert np.iscomplexobj(cmp.model["u"])
    assert cmp.table["u"]["rel_l2_model_exact"] < 1e-6  # float32: the module has no parameters
    assert cmp.table["u"]["rel_l2"] == pytest.approx(cmp.table["u"]["rel_l2_fd_exact"], rel=1e-2)


def test_compare_command(tmp_path):
    from pinnsiren import Siren
    from pinnsiren.io import write_result

    torch.manual_seed(0)
    model = Siren(in_features=2, out_features=1, hidden_features=16, hidden_layers=1, first_omega_0=3.0)
    res = write_result(tmp_path / "run.h5", kind="test", config={}, metrics={}, models={"siren": model})
    src = tmp_path / "my_pde.py"
    src.write_text(
        "from sympy import cos, pi, sin, symbols\n"
        "from pinnsiren import Box, Constraint, Field, Problem\n"
        "x, y = symbols('x y')\nu = Field('u', (x, y))\nue = sin(pi * x) * cos(pi * y / 2) + x\n"
        "box = [(-1, 1), (-1, 1)]\n"
        "problem = Problem([u], (x, y), [\n"
        "    Constraint(u.diff(x, 2) + u.diff(y, 2) - ue.diff(x, 2) - ue.diff(y, 2), where=Box(box), n=8),\n"
        "    Constraint(u - ue, where=Box(box).boundary(), n=8)])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "solvers.pde.compare", f"{src}:problem", str(res), "--model", "siren",
                          "--grid", "17"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    expect = compare(poisson_problem(), model, 17).table["u"]
    assert data["table"]["u"]["rel_l2"] == pytest.approx(expect["rel_l2"], rel=1e-5)


def test_the_tutorial_compare_block_runs_and_its_numbers_hold():
    """docs/tutorial.md section 7, run with a stand-in for the trained network (no training here)."""
    import re

    text = (ROOT / "docs" / "tutorial.md").read_text()
    blocks = [b for b in re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M) if "solvers.pde.compare" in b]
    assert len(blocks) == 1
    u = pinn.Field("u", (x, y))
    a = 1 + sympy.Rational(1, 2) * sympy.sin(sympy.pi * x) * y**2
    u_exact = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y) + x * y
    div = lambda v: sympy.diff(a * v.diff(x), x) + sympy.diff(a * v.diff(y), y)  # noqa: E731
    problem = pinn.Problem([u], (x, y), [
        pinn.Constraint(sympy.Eq(div(u), div(u_exact)), where=pinn.Box(BOX), n=8, name="pde"),
        pinn.Constraint(u - u_exact, where=pinn.Box(BOX).boundary(), n=8, name="boundary", weight=100.0),
    ])

    class Exact(torch.nn.Module):
        def forward(self, p):
            X, Y = p[:, 0], p[:, 1]
            return (torch.sin(np.pi * X) * torch.sin(np.pi * Y) + X * Y)[:, None]

    ns = {"problem": problem, "model": Exact(), "u_exact": u_exact}
    exec(compile(blocks[0], "tutorial[compare]", "exec"), ns)
    row = ns["check"].table["u"]
    # the numbers the tutorial quotes from section 5 (same scheme): FD vs exact 5.3e-4 rel L2, 8.1e-4 max
    assert row["rel_l2_fd_exact"] == pytest.approx(5.3e-4, rel=0.02)
    assert row["max_abs_fd_exact"] == pytest.approx(8.1e-4, rel=0.02)
    assert row["rel_l2_model_exact"] < 1e-6  # the stand-in is the exact solution (float32)
    assert row["rel_l2"] == pytest.approx(row["rel_l2_fd_exact"], rel=1e-2)
    # and the fourth-order claim: max error 1.1e-6 on 65^2
    four = compare(problem, Exact(), 65, exact={"u": u_exact}, order=4).table["u"]
    assert four["max_abs_fd_exact"] == pytest.approx(1.1e-6, rel=0.05)


def test_compare_a_time_dependent_problem():
    t = sympy.Symbol("t")
    u = pinn.Field("u", (x, t))
    ue = sympy.exp(-sympy.pi**2 * t / 4) * sympy.cos(sympy.pi * x / 2)
    box = [(-1, 1), (0, 1)]
    prob = pinn.Problem([u], (x, t), [
        pinn.Constraint(u.diff(t) - u.diff(x, 2), where=pinn.Box(box), n=8, name="pde"),
        pinn.Constraint(u, where=pinn.Box(box).boundary(faces=[(0, 0), (0, 1)]), n=8, name="walls"),
        pinn.Constraint(u - ue.subs(t, 0), where=pinn.SpaceTime(pinn.Box([(-1, 1)]), (0, 1), t_index=1).initial(), n=8, name="ic"),
    ])

    class Heat(torch.nn.Module):
        def forward(self, p):
            return (torch.exp(-np.pi**2 * p[:, 1] / 4) * torch.cos(np.pi * p[:, 0] / 2))[:, None]

    cmp = compare(prob, Heat().double(), 41, exact={"u": ue}, order=4, times=5, rtol=1e-10, atol=1e-12)
    assert cmp.model["u"].shape == cmp.fd["u"].values.shape == (41, 5)
    assert cmp.table["u"]["rel_l2_model_exact"] < 1e-6  # no parameters: evaluated in float32
    assert cmp.table["u"]["rel_l2"] < 1e-6 and cmp.table["u"]["max_abs_fd_exact"] < 1e-6
