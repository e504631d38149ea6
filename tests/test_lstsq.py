"""Last-layer least squares for residuals affine in the fields (pinnsiren.lstsq)."""

import math

import pytest
import sympy
import torch

from pinnsiren.lstsq import LeastSquaresLastLayer, NotAffineError, linear_form, solve_last_layer
from pinnsiren.networks import build_model
from pinnsiren.geometry import Box
from pinnsiren.problem import Problem
from pinnsiren.regions import PointSet
from pinnsiren.symbolic import Constraint
from pinnsiren.symbolic import Field
from pinnsiren.phases import Adam
from pinnsiren.train import TrainConfig, train

x = sympy.symbols("x", real=True)


def _poisson(n=256):
    """u'' = -pi^2 sin(pi x) on (-1, 1), u(+-1) = 0: u = sin(pi x)."""
    u = Field("u", (x,))
    f = -sympy.pi**2 * sympy.sin(sympy.pi * x)
    return Problem([u], [x], [
        Constraint(u.diff(x, 2) - f, Box([(-1, 1)]), n=n, name="pde", norm="l2"),
        Constraint(u, PointSet(torch.tensor([[-1.0], [1.0]], dtype=torch.float64)), name="bc", norm="l2", weight=10.0),
    ])


def _net(hidden=64, layers=1, omega=3.0, out=1, seed=0):
    torch.manual_seed(seed)
    return build_model("siren", 1, out, hidden, layers, first_omega_0=omega).double()


def test_linear_form_probes_coefficients():
    # r = 3 u'' - x u' + 2 u + x^2: c0 = x^2, g = {u'': 3, u': -x, u: 2}
    u = Field("u", (x,))
    prob = Problem([u], [x], [Constraint(3 * u.diff(x, 2) - x * u.diff(x) + 2 * u + x**2, Box([(-1, 1)]), n=8,
                                         name="pde")])
    xs = torch.linspace(-1, 1, 7, dtype=torch.float64)[:, None]
    c0, g = linear_form(prob, "pde", xs)
    t = xs[:, 0]
    assert torch.allclose(c0[:, 0], t**2, atol=1e-14)
    assert set(g) == {(0, (2,)), (0, (1,)), (0, (0,))}
    assert torch.allclose(g[(0, (2,))][:, 0], torch.full_like(t, 3.0), atol=1e-14)
    assert torch.allclose(g[(0, (1,))][:, 0], -t, atol=1e-14)
    assert torch.allclose(g[(0, (0,))][:, 0], torch.full_like(t, 2.0), atol=1e-14)


def test_poisson_solved_by_one_least_squares():
    prob, net = _poisson(), _net()
    info = solve_last_layer(prob, net, points={"pde": 512, "bc": 2}, generator=torch.Generator().manual_seed(1))
    xs = torch.linspace(-1, 1, 201, dtype=torch.float64)[:, None]
    with torch.no_grad():
        err = (net(xs)[:, 0] - torch.sin(math.pi * xs[:, 0])).abs().max()
    assert info["loss_after"] < 1e-10 * info["loss_before"]
    assert err < 1e-5, err


def test_solution_is_the_least_squares_minimiser():
    # the gradient of the (squared) loss w.r.t. the last layer vanishes at the solution, and not before
    prob, net = _poisson(n=64), _net(hidden=16)
    g = torch.Generator().manual_seed(3)
    xs = {n: c.where.sample(c.n, 0, g) for n, c in prob.constraints.items()}
    xs = {n: (v[0].double(), v[1]) for n, v in xs.items()}

    def grad_last():
        net.zero_grad()
        loss = sum(prob.pointwise(n, net, v[0], v[1]).mean() for n, v in xs.items())
        loss.backward()
        return torch.cat([net.layers[-1].weight.grad.ravel(), net.layers[-1].bias.grad]).norm(), float(loss.detach())

    g0, l0 = grad_last()
    info = solve_last_layer(prob, net, samples=xs)
    g1, l1 = grad_last()
    assert g1 < 1e-6 * g0
    assert l1 == pytest.approx(info["loss_after"], rel=1e-8)
    assert l0 == pytest.approx(info["loss_before"], rel=1e-8)


def test_complex_field_helmholtz_1d():
    # u'' + k^2 u = 0 on (0, 1), u(0) = 1, u'(1) = -i k u(1) (outgoing, exp(+i w t)): u = exp(-i k x)
    k = 6.0
    u = Field("u", (x,), complex=True)
    prob = Problem([u], [x], [
        Constraint(u.diff(x, 2) + k**2 * u, Box([(0, 1)]), n=256, name="pde", norm="l2"),
        Constraint(u - sympy.Piecewise((1, x < 0.5), (0, True)) * 1
                   + sympy.Piecewise((0, x < 0.5), (1, True)) * (u.diff(x) + sympy.I * k * u - u),
                   PointSet(torch.tensor([[0.0], [1.0]], dtype=torch.float64)), name="bc", norm="l2", weight=10.0),
    ])
    net = _net(hidden=48, omega=4.0, out=2)
    solve_last_layer(prob, net, points={"pde": 512, "bc": 2}, generator=torch.Generator().manual_seed(0))
    xs = torch.linspace(0, 1, 101, dtype=torch.float64)[:, None]
    with torch.no_grad():
        o = net(xs)
    exact = torch.exp(-1j * k * xs[:, 0])
    err = (torch.complex(o[:, 0], o[:, 1]) - exact).abs().max()
    assert err < 1e-4, err


def test_nonlinear_residual_is_refused():
    u = Field("u", (x,))
    prob = Problem([u], [x], [Constraint(u.diff(x, 2) + u**2 - 1, Box([(-1, 1)]), n=64, name="pde", norm="l2")])
    with pytest.raises(NotAffineError, match="not affine"):
        solve_last_layer(prob, _net(), generator=torch.Generator().manual_seed(0))


def test_needs_siren_or_mlp():
    prob = _poisson()
    with pytest.raises(TypeError, match="Siren or MLP"):
        solve_last_layer(prob, torch.nn.Sequential(torch.nn.Linear(1, 1)))


def test_hybrid_training_moves_only_hidden_layers_and_beats_adam():
    prob = _poisson(n=128)
    cfg = TrainConfig(phases=[Adam(60, lr=1e-3)], progress=False, alarm="off", log_every=10)
    net = _net(hidden=16, layers=1, omega=3.0)
    hidden0 = net.layers[0].weight.detach().clone()
    hyb = LeastSquaresLastLayer(prob, net, every=1)
    res = train(hyb, net, cfg)
    assert not net.layers[-1].weight.requires_grad
    assert not torch.equal(hidden0, net.layers[0].weight.detach())
    assert hyb.solves == 60
    plain = train(prob, _net(hidden=16, layers=1, omega=3.0), cfg)
    assert res.history["loss"][-1] < 1e-3 * plain.history["loss"][-1]


def test_hybrid_view_gives_plain_losses_for_another_model():
    # the trainer's alarm evaluates other models (a zero field) through the same problem
    prob = _poisson(n=32)
    net, other = _net(hidden=8), _net(hidden=8, seed=1)
    hyb = LeastSquaresLastLayer(prob, net)
    a = hyb.losses(other, 0, torch.Generator().manual_seed(5))
    b = prob.losses(other, 0, torch.Generator().manual_seed(5))
    assert hyb.solves == 0 and set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
