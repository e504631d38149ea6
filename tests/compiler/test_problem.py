"""Problem, Constraint, regions, GridInterpolant, learnable parameters/fields."""

import math

import numpy as np
import pytest
import sympy
import torch
from torch import nn

from pinnsiren import (
    Ball, Box, CompileError, Constraint, Field, GridInterpolant, NearPoint, PointSet, Problem, Siren, SpaceTime,
    compile_residual,
)

x, y, t = sympy.symbols("x y t")
U = Field("u", (x, y))


def _model(c=1, d=2):
    torch.manual_seed(1)
    return Siren(d, c, 16, 1).double()


def _autograd_laplacian(model, pts):
    p = pts.clone().requires_grad_(True)
    u = model(p)[:, 0]
    g = torch.autograd.grad(u.sum(), p, create_graph=True)[0]
    return sum(torch.autograd.grad(g[:, i].sum(), p, create_graph=True)[0][:, i] for i in range(2))


def test_losses_match_independent_computation():
    f = sympy.sin(x) * y
    cons = [
        Constraint(sympy.Eq(U.diff(x, 2) + U.diff(y, 2), f), Box([(-1, 1), (-1, 1)]), weight=2.5, name="pde", n=64),
        Constraint(U, Box([(-1, 1), (-1, 1)]).boundary(), weight=1 + x**2, norm="l1", name="bc", n=32),
    ]
    prob = Problem([U], (x, y), cons)
    model = _model()
    L = prob.losses(model, step=0, generator=torch.Generator().manual_seed(5))
    # replay the sampling with the same generator
    g = torch.Generator().manual_seed(5)
    p1, _ = cons[0].where.sample(64, 0, g)
    p2, _ = cons[1].where.sample(32, 0, g)
    r1 = _autograd_laplacian(model, p1) - torch.sin(p1[:, 0]) * p1[:, 1]
    want1 = 2.5 * (r1**2).mean()
    want2 = ((1 + p2[:, 0] ** 2) * model(p2)[:, 0].abs()).mean()
    torch.testing.assert_close(L["pde"], want1, rtol=1e-10, atol=0)
    torch.testing.assert_close(L["bc"], want2, rtol=1e-10, atol=0)
    # boundary points lie on the boundary
    assert torch.all((p2.abs() - 1).abs().min(1).values < 1e-15)
    # fresh samples each call
    L2 = prob.losses(model, step=1, generator=torch.Generator().manual_seed(6))
    assert L2["pde"].item() != L["pde"].item()
    # differentiable
    sum(L.values()).backward()
    assert model.layers[0].weight.grad is not None


def test_complex_norm_pointset_and_learnable_fields():
    """FWI-like: complex wavefield + real field q, receivers as a point set, learnable k."""
    u = Field("u", (x, y), complex=True)
    q = Field("q", (x, y))
    k = sympy.Symbol("k")
    m = 1 + sympy.Piecewise((sympy.Max(q, -0.999), sympy.And(sympy.Abs(x) < 0.75, sympy.Abs(y) < 0.75)), (0, True))
    pts = np.random.default_rng(0).uniform(-1, 1, size=(50, 2))
    data = pts[:, 0] + 1j * pts[:, 1]
    kp = nn.Parameter(torch.tensor(2.0, dtype=torch.float64))
    prob = Problem(
        [u, q], (x, y),
        [Constraint(u.diff(x, 2) + u.diff(y, 2) + k**2 * m * u, Box([(-1, 1)] * 2), name="pde", n=20),
         Constraint(u - sympy.Function("d")(x, y), PointSet(pts, {"d": data}), name="data", n=10)],
        parameters={k: kp},
    )
    assert prob.n_channels == 3 and prob.learnable_parameters() == [kp]
    model = _model(3)
    prob.validate(model)
    L = prob.losses(model, 0, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    Box([(-1, 1)] * 2).sample(20, 0, g)
    idx = torch.randperm(50, generator=g)[:10]
    P = torch.from_numpy(pts)[idx]
    out = model(P)
    want = ((torch.complex(out[:, 0], out[:, 1]) - torch.from_numpy(data)[idx]).abs() ** 2).mean()
    torch.testing.assert_close(L["data"], want, rtol=1e-12, atol=0)
    L["pde"].backward()
    assert kp.grad is not None and kp.grad.abs() > 0
    # the Piecewise holds m = 1 outside |x|_inf > 0.75
    r = compile_residual(m, [u, q], (x, y))
    P = torch.tensor([[0.9, 0.0], [0.1, 0.2]], dtype=torch.float64)
    mv = r(model, P)
    assert mv[0].item() == 1.0
    assert mv[1].item() == pytest.approx(1 + max(model(P)[1, 2].item(), -0.999), rel=1e-12)


def test_validate_errors():
    prob = Problem([U], (x, y), [Constraint(U, Box([(-1, 1)] * 2), n=4)])
    with pytest.raises(ValueError, match=r"model has 2 output channels but the fields u \(real: 1\) need 1"):
        prob.validate(_model(2))
    m = sympy.Function("m")(x, y)
    with pytest.raises(CompileError, match="unknown function 'm'"):
        Problem([U], (x, y), [Constraint(U - m, Box([(-1, 1)] * 2), n=4, name="fit")])
    prob = Problem([U], (x, y), [Constraint(U - m, Box([(-1, 1)] * 2), n=4, name="fit")], coefficients={"m": lambda p: p})
    with pytest.raises(ValueError, match=r"constraint 'fit' cannot be evaluated: the callable given for coefficient 'm' has shape"):
        prob.validate(_model())


def test_problem_construction_errors():
    with pytest.raises(ValueError, match="needs n"):
        Problem([U], (x, y), [Constraint(U, Box([(-1, 1)] * 2))])
    with pytest.raises(ValueError, match="has no region"):
        Problem([U], (x, y), [Constraint(U)])
    with pytest.raises(ValueError, match="3-D but there are 2"):
        Problem([U], (x, y), [Constraint(U, Box([(-1, 1)] * 3), n=3)])
    with pytest.raises(ValueError, match="unknown norm"):
        Constraint(U, norm="linf")


def test_regions():
    g = torch.Generator().manual_seed(3)
    p, _ = Ball([0.2, -0.1], 0.3).sample(500, 0, g)
    assert torch.all(((p - torch.tensor([0.2, -0.1])) ** 2).sum(1) <= 0.09 + 1e-12)
    # uniform in a disk: mean squared radius = r^2 / 2
    assert ((p - torch.tensor([0.2, -0.1])) ** 2).sum(1).mean().item() == pytest.approx(0.045, rel=0.1)
    p, _ = SpaceTime(Box([(-1, 1), (-1, 1)]), (0, 1), t_index=2).initial().sample(10, 0, g)
    assert p.shape == (10, 3) and torch.all(p[:, 2] == 0)
    p, _ = NearPoint([0.9, 0.0], 0.5, [(-1, 1), (-1, 1)]).sample(2000, 0, g)
    assert p[:, 0].max().item() == 1.0 and p.abs().max().item() <= 1.0
    # curriculum: the time window grows with the step
    box = Box(lambda step: [(-1, 1), (-1, 1), (0, min(1.0, step / 100))])
    assert box.sample(100, 10, g)[0][:, 2].max().item() <= 0.1
    assert box.sample(100, 100, g)[0][:, 2].max().item() > 0.5
    p, _ = Box([(-1, 1), (0, 2)]).boundary(faces=[(1, 1)]).sample(20, 0, g)
    assert torch.all(p[:, 1] == 2)
    pts = np.arange(10.0).reshape(5, 2)
    P, d = PointSet(pts, {"a": np.arange(5.0)}).sample(3, 0, g)
    torch.testing.assert_close(P[:, 0] / 2, d["a"])  # rows stay aligned


def test_cone_samples_the_domain_of_influence():
    from pinnsiren.regions import Cone

    g = torch.Generator().manual_seed(5)
    cone = Cone([0.1, 0.0], r0=0.05, c=2.0, t_bounds=lambda step: (0.0, 0.4 * min(1.0, step / 100)),
                space_bounds=[(-1, 1), (-1, 1)], t_index=2)
    p, _ = cone.sample(50_000, 50, g)
    t = p[:, 2]
    r = (p[:, :2] - torch.tensor([0.1, 0.0])).norm(dim=1)
    assert t.min().item() >= 0 and t.max().item() <= 0.2 + 1e-12  # window at step 50 of 100
    assert t.mean().item() == pytest.approx(0.1, rel=0.02)  # uniform in time
    assert torch.all(r <= 0.05 + 2.0 * t + 1e-12)  # inside the cone
    # uniform in each disk: E[(r / R(t))^2] = 1/2
    assert ((r / (0.05 + 2.0 * t)) ** 2).mean().item() == pytest.approx(0.5, rel=0.02)
    # clipped to the space box when the cone outgrows it
    p, _ = Cone([0.9, 0.0], 0.5, 1.0, (0.0, 1.0), [(-1, 1), (-1, 1)], t_index=0).sample(2000, 0, g)
    assert p[:, 1:].abs().max().item() <= 1.0 and p[:, 0].max().item() <= 1.0
    with pytest.raises(ValueError, match="r0 and c"):
        Cone([0.0], -1.0, 1.0, (0, 1), [(-1, 1)], 1)


def test_grid_interpolant_exact_on_bilinear_and_trilinear():
    f2 = lambda a, b: 1 + 2 * a - 3 * b + 0.5 * a * b  # noqa: E731 - bilinear: reproduced exactly
    ga, gb = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(0, 2, 9), indexing="ij")
    interp = GridInterpolant(f2(ga, gb), [(-1, 1), (0, 2)])
    p = torch.rand(50, 2, dtype=torch.float64) * torch.tensor([2.0, 2.0]) + torch.tensor([-1.0, 0.0])
    p.requires_grad_(True)
    v = interp(p)
    torch.testing.assert_close(v, f2(p[:, 0], p[:, 1]), rtol=1e-12, atol=1e-12)
    g = torch.autograd.grad(v.sum(), p)[0]
    torch.testing.assert_close(g[:, 0], 2 + 0.5 * p[:, 1].detach(), rtol=1e-10, atol=1e-10)
    f3 = lambda a, b, c: a * b * c - a + 2 * c  # noqa: E731
    G = np.meshgrid(*[np.linspace(-1, 1, 4)] * 3, indexing="ij")
    i3 = GridInterpolant(f3(*G), [(-1, 1)] * 3)
    q = torch.rand(20, 3, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(i3(q), f3(q[:, 0], q[:, 1], q[:, 2]), rtol=1e-12, atol=1e-12)
    # as a differentiated coefficient in a residual
    r = compile_residual(sympy.Function("m")(x, y).diff(x) - U * 0, [U], (x, y), coefficients=["m"])
    pts = (torch.rand(10, 2, dtype=torch.float64) * torch.tensor([2.0, 2.0]) + torch.tensor([-1.0, 0.0])) * 0.99
    torch.testing.assert_close(r(_model(), pts, m=interp), 2 + 0.5 * pts[:, 1], rtol=1e-10, atol=1e-10)
