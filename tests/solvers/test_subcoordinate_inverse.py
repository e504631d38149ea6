"""An inverse problem with a time-independent coefficient a(x, y) in an (x, y, t) problem.

u_t = a(x, y) (u_xx + u_yy) + f with u observed inside, closed forms for u and a.
The coefficient is Field("a", (x, y)): it trains at a small budget, is written
to a result file on its own (x, y) grid, and goes through solvers.pde.compare with
a held known on the grid (values=) and the observations left out (skip=).
"""

import numpy as np
import pytest
import sympy

torch = pytest.importorskip("torch")
pinn = pytest.importorskip("pinnsiren")

from reference import fdgen  # noqa: E402
from reference.fdgen import SpecError  # noqa: E402
from solvers.pde.compare import compare  # noqa: E402

x, y, t = sympy.symbols("x y t")
B3 = [(0.0, 1.0), (0.0, 1.0), (0.0, 0.5)]
UE = sympy.exp(-t) * (x ** 2 + y ** 2 + sympy.sin(2 * x) * sympy.sin(2 * y) / 4)  # lap UE >= 2.3 e^-t: a identifiable
AE = 1 + sympy.sin(sympy.pi * x) * y / 2
A_NP = sympy.lambdify((x, y), AE, "numpy")


def inverse_problem(n=256):
    u = pinn.Field("u", (x, y, t))
    a = pinn.Field("a", (x, y))
    lap = lambda v: v.diff(x, 2) + v.diff(y, 2)  # noqa: E731
    f = UE.diff(t) - AE * lap(UE)
    return pinn.Problem([u, a], (x, y, t), [
        pinn.Constraint(sympy.Eq(u.diff(t), a * lap(u) + f), pinn.Box(B3), n=n, name="pde"),
        pinn.Constraint(u - UE, pinn.Box(B3).boundary(faces=[(0, 0), (0, 1), (1, 0), (1, 1)]), n=n // 2, name="bc"),
        pinn.Constraint(u - UE, pinn.SpaceTime(pinn.Box(B3[:2]), B3[2], t_index=2).initial(), n=n // 2, name="ic"),
        pinn.Constraint(u - UE, pinn.Box(B3), n=n, name="data"),
    ])


def _fd_err(prob, n):
    sol = fdgen.solve(prob, n, values={"a": A_NP}, skip=["data"], times=6, rtol=1e-10, atol=1e-12)
    X, Y, T = sol["u"].grid.coords()
    ue = sympy.lambdify((x, y, t), UE, "numpy")(X, Y, T)
    return float(np.linalg.norm(sol["u"].values - ue) / np.linalg.norm(ue))


def test_grid_solves_the_forward_problem_with_a_known():
    prob = inverse_problem()
    e = [_fd_err(prob, n) for n in (9, 17)]
    assert e[1] < 2e-3 and 3.0 < e[0] / e[1] < 5.0, e  # second order in space


def test_unknown_subcoordinate_field_refused_clearly():
    with pytest.raises(SpecError, match=r"field a\(x, y\) leaves out t.*time-independent.*values=\{'a': f\(x, y\)\}"):
        fdgen.from_problem(inverse_problem(), skip=["data"])
    with pytest.raises(SpecError, match="skip names"):
        fdgen.from_problem(inverse_problem(), values={"a": A_NP}, skip=["nope"])


def test_inverse_problem_trains_writes_and_compares(tmp_path):
    from pinnsiren.io import fields_on_grids, read_result, write_result
    from pinnsiren.phases import LBFGS, Adam
    from pinnsiren.train import TrainConfig, train

    torch.manual_seed(0)
    prob = inverse_problem()
    model = pinn.Siren(3, 2, 48, 2, first_omega_0=3.0).double()
    train(prob, model, TrainConfig(phases=[Adam(300, lr=5e-4, schedule="cosine"), LBFGS(300)], seed=0, progress=False, alarm="off"))

    # result file: u on the (x, y, t) grid, a on its own (x, y) grid
    fields, attrs = fields_on_grids(prob, model, B3, (17, 17, 6))
    path = write_result(tmp_path / "inv.h5", kind="inverse", config={}, fields=fields, field_attrs=attrs)
    res = read_result(path)
    assert res["fields"]["u"].shape == (17, 17, 6) and res["fields"]["a"].shape == (17, 17)
    assert res["field_attrs"]["a"] == {"bounds": [[0.0, 1.0], [0.0, 1.0]], "coords": ["x", "y"]}
    X, Y = np.meshgrid(np.linspace(0, 1, 17), np.linspace(0, 1, 17), indexing="ij")
    a_file = res["fields"]["a"]
    with torch.no_grad():
        a_direct = model(torch.tensor(np.stack([X.ravel(), Y.ravel(), 0 * X.ravel()], 1)))[:, 1].numpy()
    np.testing.assert_allclose(a_file.ravel(), a_direct, rtol=0, atol=1e-14)  # the channel at t = 0

    cmp = compare(prob, model, 17, values={"a": A_NP}, skip=["data"], exact={"u": UE, "a": AE},
                  times=6, rtol=1e-10, atol=1e-12)
    u_row, a_row = cmp.table["u"], cmp.table["a"]
    assert u_row["rel_l2_fd_exact"] < 2e-3            # the grid: tight
    assert u_row["rel_l2_model_exact"] < 0.05         # the network: loose
    assert a_row["rel_l2"] < 0.3                      # the recovered coefficient (untrained: ~1)
    assert a_row["rel_l2"] == pytest.approx(a_row["rel_l2_model_exact"], rel=1e-12)
    assert cmp.model["a"].shape == (17, 17)
    a_true = A_NP(X, Y)
    assert np.linalg.norm(a_file - a_true) / np.linalg.norm(a_true) == pytest.approx(a_row["rel_l2"], rel=1e-9)
