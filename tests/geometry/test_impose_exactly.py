"""impose_exactly: declared Dirichlet/initial constraints become an exact output transform."""

import math

import pytest
import sympy
import torch

from pinnsiren import (
    Ball, Box, Constraint, ExactDirichlet, Field, Normalized, Problem, Siren, SpaceTime,
    impose_exactly, normal_derivative, transfinite,
)
from pinnsiren.exact import dirichlet_value

x, y, t = sympy.symbols("x y t")


def _poisson2d_c():
    u = Field("u", (x, y))
    sq = Box([(-0.5, 0.5)] * 2)
    holes = [Ball([a, b], 0.1) for a in (0.3, -0.3) for b in (0.3, -0.3)]
    dom = sq
    for h in holes:
        dom = dom - h
    cons = [Constraint(u.diff(x, 2) + u.diff(y, 2), dom, n=64, name="pde"),
            Constraint(u - 1, sq.boundary(), n=32, name="edges")]
    cons += [Constraint(sympy.Eq(u, 0), h.boundary(), n=16, name=f"hole{i}") for i, h in enumerate(holes)]
    return u, sq, holes, dom, Problem([u], (x, y), cons)


def test_poisson2d_c_equals_the_hand_built_transform_and_holds_the_data():
    u, sq, holes, dom, prob = _poisson2d_c()
    torch.manual_seed(0)
    net = Normalized(Siren(2, 1, 32, 2).double(), dom)
    model, soft = impose_exactly(prob, net)
    assert sorted(model.imposed) == ["edges", "hole0", "hole1", "hole2", "hole3"]
    assert list(soft.constraints) == ["pde"]
    xy = (x, y)
    g = transfinite([(sq.adf(xy, smooth=True), 1)] + [(-h.adf(xy), 0) for h in holes])
    hand = ExactDirichlet(net, xy, dom.adf(xy, normalize=True), g)
    gen = torch.Generator().manual_seed(2)
    xi, _ = dom.sample(500, 0, gen)
    torch.testing.assert_close(model(xi), hand(xi), rtol=1e-12, atol=1e-12)
    xb, _ = dom.boundary().sample(1000, 0, gen)
    on_sq = (xb.abs().max(1).values - 0.5).abs() < 1e-12
    torch.testing.assert_close(model(xb)[:, 0], on_sq.double(), rtol=0, atol=1e-10)
    # the remaining problem trains the wrapped model
    L = soft.losses(model, 0, gen)
    assert set(L) == {"pde"} and math.isfinite(L["pde"].item())


def test_burgers_declared_two_ways_neumann_stays_soft():
    u = Field("u", (x, t))
    u0 = -sympy.sin(sympy.pi * x)
    st = SpaceTime(Box([(-1, 1)]), (0.0, 1.0))
    pde = u.diff(t) + u * u.diff(x) - 0.01 / sympy.pi * u.diff(x, 2)
    p1 = Problem([u], (x, t), [Constraint(pde, st, n=32, name="pde"),
                               Constraint(u - u0, st.initial(), n=16, name="ic"),
                               Constraint(u, st.boundary(), n=16, name="bc")])
    box = Box([(-1, 1), (0, 1)])
    p2 = Problem([u], (x, t), [Constraint(pde, box, n=32, name="pde"),
                               Constraint(sympy.Eq(u, u0), SpaceTime(Box([(-1, 1)]), (0, 1), t_index=1).initial(), n=16, name="ic"),
                               Constraint(u, box.boundary(faces=[(0, 0), (0, 1)]), n=16, name="bc")])
    torch.manual_seed(1)
    net = Normalized(Siren(2, 1, 16, 2).double(), box.bounds)
    gen = torch.Generator().manual_seed(3)
    outs, gs = [], []
    for prob in (p1, p2):
        model, soft = impose_exactly(prob, net)
        assert sorted(model.imposed) == ["bc", "ic"] and list(soft.constraints) == ["pde"]
        p0, _ = st.initial().sample(200, 0, gen)
        torch.testing.assert_close(model(p0)[:, 0], -torch.sin(math.pi * p0[:, 0]), rtol=0, atol=1e-12)
        pb, _ = st.boundary().sample(200, 0, gen)
        assert model(pb)[:, 0].abs().max().item() < 1e-12
        xi, _ = st.sample(100, 0, torch.Generator().manual_seed(4))
        outs.append(model(xi))
        gs.append(model.g[0].fn(None, xi))
    # both declarations give the same lift and the same multiplier up to its sampled normalisation constant
    torch.testing.assert_close(gs[0], gs[1], rtol=1e-12, atol=1e-12)
    ratio = (outs[0] - gs[0][:, None]) / (outs[1] - gs[1][:, None])
    assert ratio.std().item() < 1e-9 and ratio.mean().item() == pytest.approx(1.0, abs=0.02)
    # a Neumann condition and a coefficient-valued one stay soft
    v = Field("v", (x, y))
    d = Ball([0, 0], 1)
    hfun = sympy.Function("h")(x, y)
    prob = Problem([v], (x, y), [Constraint(v.diff(x, 2) + v.diff(y, 2) - 1, d, n=16, name="pde"),
                                 Constraint(normal_derivative(v, (x, y)), d.boundary(), n=8, name="neumann"),
                                 Constraint(v - hfun, d.boundary(), n=8, name="data")],
                   coefficients={"h": lambda p: p[:, 0]})
    model, soft = impose_exactly(prob, Siren(2, 1, 8, 1))
    assert list(soft.constraints) == ["pde", "neumann", "data"] and not hasattr(model, "imposed")


def test_dirichlet_value_recognises_only_value_conditions():
    u = Field("u", (x, y))
    assert dirichlet_value(2 * u - x, [u], (x, y)) == (u, x / 2)
    assert dirichlet_value(sympy.Eq(u, sympy.sin(x)), [u], (x, y)) == (u, sympy.sin(x))
    assert dirichlet_value(u.diff(x) - 1, [u], (x, y)) is None
    assert dirichlet_value(u**2 - 1, [u], (x, y)) is None
    assert dirichlet_value([u, u], [u], (x, y)) is None
    assert dirichlet_value(u - sympy.Symbol("k"), [u], (x, y)) is None
    with pytest.raises(ValueError, match="needs a constraint on the domain"):
        impose_exactly(Problem([u], (x, y), [Constraint(u, Box([(-1, 1)] * 2).boundary(), n=4),
                                             Constraint(u - 1, Box([(-1, 1)] * 2), n=4)]), Siren(2, 1, 8, 1))


@pytest.mark.slow
def test_exact_transform_trains_a_manufactured_poisson_problem():
    """Δu = f on a square minus a disc, u = u_exact on both boundary pieces; only the PDE term is trained."""
    u = Field("u", (x, y))
    ue = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y) + x * y
    sq = Box([(-1, 1)] * 2)
    hole = Ball([0.3, 0.2], 0.3)
    dom = sq - hole
    prob = Problem([u], (x, y), [Constraint(u.diff(x, 2) + u.diff(y, 2) - (ue.diff(x, 2) + ue.diff(y, 2)), dom, n=256,
                                            name="pde"),
                                 Constraint(u - ue, sq.boundary(), n=64, name="outer"),
                                 Constraint(sympy.Eq(u, ue), hole.boundary(), n=64, name="hole")])
    torch.manual_seed(0)
    model, soft = impose_exactly(prob, Normalized(Siren(2, 1, 32, 2, first_omega_0=3.0, hidden_omega_0=3.0), sq))
    assert sorted(model.imposed) == ["hole", "outer"]
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    gen = torch.Generator().manual_seed(0)
    xi, _ = dom.sample(2000, 0, torch.Generator().manual_seed(9))
    exact = torch.sin(math.pi * xi[:, 0]) * torch.sin(math.pi * xi[:, 1]) + xi[:, 0] * xi[:, 1]

    def err():
        with torch.no_grad():
            return ((model(xi.float())[:, 0].double() - exact).norm() / exact.norm()).item()

    before = err()
    for step in range(400):
        L = soft.losses(model, step, gen)
        opt.zero_grad()
        L["pde"].backward()
        opt.step()
    after = err()
    print(f"rel. L2 {before:.3f} -> {after:.4f}")
    assert after < 0.05 and after < before / 5, (before, after)
