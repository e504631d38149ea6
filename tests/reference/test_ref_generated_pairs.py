"""reference.fdgen reads ``Constraint(..., pair=shift)`` with the box's extent as a periodic axis;
a periodic Problem declared that way trains and goes through ``solvers.pde.compare.compare`` as it is."""

import numpy as np
import pytest
import sympy

torch = pytest.importorskip("torch")
pinn = pytest.importorskip("pinnsiren")

from reference import fdgen  # noqa: E402
from reference.fdgen import SpecError  # noqa: E402
from solvers.pde.compare import compare  # noqa: E402

x, y = sympy.symbols("x y")
BOX = [(-1.0, 1.0), (-1.0, 1.0)]
# 2-periodic in x, zero on y = +-1
UE = sympy.sin(sympy.pi * x) * sympy.cos(sympy.pi * y / 2) + sympy.cos(sympy.pi * x) * (1 - y ** 2) / 2


def periodic_problem(pair=(2.0, 0.0), faces=((0, 0),), n=256):
    u = pinn.Field("u", (x, y))
    lap = lambda v: v.diff(x, 2) + v.diff(y, 2)  # noqa: E731
    return pinn.Problem([u], (x, y), [
        pinn.Constraint(sympy.Eq(lap(u), lap(UE)), pinn.Box(BOX), n=n, name="pde"),
        pinn.Constraint(u - UE, pinn.Box(BOX).boundary(faces=[(1, 0), (1, 1)]), n=n // 2, name="walls"),
        pinn.Constraint([u, u.diff(x)], pinn.Box(BOX).boundary(faces=list(faces)), n=n // 4, pair=pair, name="per"),
    ])


def _grid_err(sol):
    X, Y = sol["u"].grid.coords()
    ue = sympy.lambdify((x, y), UE, "numpy")(X, Y)
    return float(np.linalg.norm(sol["u"].values - ue) / np.linalg.norm(ue))


@pytest.mark.parametrize("pair, faces", [((2.0, 0.0), ((0, 0),)), ((-2.0, 0.0), ((0, 1),))])
def test_pair_is_read_as_a_periodic_axis(pair, faces):
    prob = periodic_problem(pair, faces)
    spec = fdgen.from_problem(prob)
    assert spec.periodic == {0} and {c.face for c in spec.conditions} == {(1, 0), (1, 1)}
    e = [_grid_err(fdgen.solve(prob, n)) for n in (17, 33)]
    assert e[1] < 3e-3 and 3.0 < e[0] / e[1] < 5.0, e  # second order on the periodic grid


@pytest.mark.parametrize("pair, faces, bad", [
    ((1.0, 0.0), ((0, 0),), "pair=(1.0, 0.0)"),            # not the period of the box
    ((2.0, 0.5), ((0, 0),), "pair=(2.0, 0.5)"),            # a skew shift
    ((2.0, 0.0), ((0, 1),), "pair=(2.0, 0.0)"),            # from the hi face the shift leaves the box
    ((2.0, 0.0), ((0, 0), (1, 0)), "pair=(2.0, 0.0)"),     # faces of two axes
])
def test_other_pairs_refused_by_name(pair, faces, bad):
    with pytest.raises(SpecError, match=r"'per' \(" + bad.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        fdgen.from_problem(periodic_problem(pair, faces))


def test_callable_pair_refused():
    u = pinn.Field("u", (x, y))
    prob = pinn.Problem([u], (x, y), [
        pinn.Constraint(u.diff(x, 2) + u.diff(y, 2), pinn.Box(BOX), n=8, name="pde"),
        pinn.Constraint(u, pinn.Box(BOX).boundary(faces=[(1, 0), (1, 1)]), n=8, name="walls"),
        pinn.Constraint(u, pinn.Box(BOX).boundary(faces=[(0, 0)]), n=8, name="mirror",
                        pair=lambda p: torch.stack([p[:, 0] + 2, -p[:, 1]], 1)),
    ])
    with pytest.raises(SpecError, match="'mirror'"):
        fdgen.from_problem(prob)


def test_periodic_pair_problem_trains_and_compares():
    torch.manual_seed(0)
    prob = periodic_problem()
    model = pinn.Siren(2, 1, 48, 2, first_omega_0=3.0, hidden_omega_0=30.0).double()
    from pinnsiren.phases import Adam
    from pinnsiren.train import TrainConfig, train

    train(prob, model, TrainConfig(phases=[Adam(400, lr=2e-3, schedule="cosine")], seed=0, progress=False, alarm="off"))
    cmp = compare(prob, model, 33, exact={"u": UE})  # no periodic= argument: read from the pair
    row = cmp.table["u"]
    assert cmp.fd.system.layout.periodic == [True, False]
    assert row["rel_l2_fd_exact"] < 3e-3                      # the grid: tight
    assert row["rel_l2_model_exact"] < 0.25                   # the network after 400 steps: loose
    assert abs(row["rel_l2"] - row["rel_l2_model_exact"]) < 2 * row["rel_l2_fd_exact"] + 1e-12
