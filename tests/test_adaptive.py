"""Residual-based adaptive sampling and causal weights: closed forms, and the trainer restoring the problem."""

import math

import pytest
import sympy
import torch

from pinnsiren import Box, Constraint, Field, PointSet, Problem, Siren
from pinnsiren.adaptive import AdaptiveRegion, causal_loss, rad_probabilities
from pinnsiren.phases import Adam, LBFGS, RAD, Causal
from pinnsiren.train import TrainConfig, train


def test_rad_probabilities_closed_form():
    q = rad_probabilities(torch.tensor([0.0, 1.0, 3.0]), k=1, c=1)
    # p / mean(p) + 1 = [1, 1.75, 3.25], over their sum 6
    torch.testing.assert_close(q, torch.tensor([1, 1.75, 3.25], dtype=torch.float64) / 6)
    q2 = rad_probabilities(torch.tensor([1.0, 2.0]), k=2, c=0)
    torch.testing.assert_close(q2, torch.tensor([0.2, 0.8], dtype=torch.float64))
    assert torch.allclose(rad_probabilities(torch.zeros(4)), torch.full((4,), 0.25, dtype=torch.float64))


def test_adaptive_region_follows_the_residual():
    # residual x^4 on [0, 1], k = 1, c = 1: density (5 x^4 + 1) / 2, so P(x > 1/2) = (1 - 1/32 + 1/2) / 2
    g = torch.Generator().manual_seed(3)
    reg = AdaptiveRegion(Box([(0.0, 1.0)]), pool=200_000)  # draws are without replacement: keep n << pool
    reg.refresh(lambda x, d: x[:, 0] ** 4, 0, g, torch.float64, torch.device("cpu"))
    xs, _ = reg.sample(4000, 1, g)
    assert float((xs[:, 0] > 0.5).double().mean()) == pytest.approx((1 - 1 / 32 + 0.5) / 2, abs=0.02)
    with pytest.raises(TypeError, match="PointSet"):
        AdaptiveRegion(PointSet([[0.0]]), pool=4)


def test_causal_loss_closed_form():
    t = torch.tensor([0.0, 0.1, 0.6, 0.9, 1.0])
    p = torch.tensor([1.0, 3.0, 0.5, 0.25, 0.75])
    loss, w = causal_loss(t, p, eps=2.0, bins=2)
    # slab means: [2, 0.5]; weights [1, exp(-2 * 2)]
    torch.testing.assert_close(w, torch.tensor([1.0, math.exp(-4.0)]))
    assert float(loss) == pytest.approx((2.0 + math.exp(-4.0) * 0.5) / 2, rel=1e-6)
    p.requires_grad_(True)
    loss, _ = causal_loss(t, p, eps=2.0, bins=2)
    loss.backward()
    # no gradient through the weights: d loss / d p_i = w_b / (2 * count_b)
    torch.testing.assert_close(p.grad, torch.tensor([0.25, 0.25, math.exp(-4) / 6, math.exp(-4) / 6, math.exp(-4) / 6]))


def _heat_problem():
    x, t = sympy.symbols("x t")
    u = Field("u", (x, t))
    dom = [(-1, 1), (0, 1)]
    return Problem([u], (x, t), [
        Constraint(u.diff(t) - u.diff(x, 2), where=Box(dom), n=64, name="pde"),
        Constraint(u - sympy.sin(sympy.pi * x), where=Box(dom).boundary(faces=[(1, 0)]), n=32, name="initial"),
    ])


def test_trainer_rad_and_causal_run_and_restore_the_problem():
    prob = _heat_problem()
    regions = {k: c.where for k, c in prob.constraints.items()}
    torch.manual_seed(0)
    cfg = TrainConfig(phases=[Adam(30, lr=1e-4, sampler=RAD(every=10))], aids=[Causal("t", eps=1.0)], progress=False)
    res = train(prob, Siren(2, 1, 16, 1, first_omega_0=5), cfg)
    assert {k: c.where for k, c in prob.constraints.items()} == regions  # no wrapper left behind
    assert len(res.history["causal_min.pde"]) == 3  # the initial condition has no time extent: not weighted
    assert "causal_min.initial" not in res.history
    assert all(0 < w <= 1 for w in res.history["causal_min.pde"])
    assert set(res.report) == {"pde", "initial"}
    with pytest.raises(ValueError, match="not one of the coordinates"):
        train(prob, Siren(2, 1, 8, 1), TrainConfig(phases=[Adam(1)], aids=[Causal("tau")], progress=False))


def test_lbfgs_draws_follow_the_residual(monkeypatch):
    # residual u - h with h = 10 on x > 1/2 and 0 elsewhere; a near-zero network: with k = 1, c = 0 RAD puts
    # almost every point of each L-BFGS draw where h = 10, uniform draws only half of them. The last draw
    # (evaluations 5-6 here) is uniform by design.
    x = sympy.symbols("x")
    u = Field("u", (x,))
    h = sympy.Piecewise((0, x < sympy.Rational(1, 2)), (10, True))
    drawn = []
    original = AdaptiveRegion.sample

    def recording(self, n, step, generator):
        pool = self.points is not None
        pts, data = original(self, n, step, generator)
        drawn.append((pool, pts))
        return pts, data

    monkeypatch.setattr(AdaptiveRegion, "sample", recording)
    shares = {}
    for mode in ("none", "rad"):
        drawn.clear()
        prob = Problem([u], (x,), [Constraint(u - h, where=Box([(0.0, 1.0)]), n=200, name="fit")])
        torch.manual_seed(0)
        model = Siren(1, 1, 8, 1)
        with torch.no_grad():
            model.layers[-1].weight.mul_(1e-3)
            model.layers[-1].bias.zero_()
        sampler = RAD(k=1.0, c=0.0) if mode == "rad" else None
        cfg = TrainConfig(phases=[LBFGS(6, draw_every=2, sampler=sampler)], progress=False, alarm="off")
        train(prob, model, cfg)
        assert isinstance(prob.constraints["fit"].where, Box)  # the trainer restored the problem
        shares[mode] = {pool: float((torch.cat([p for q, p in drawn if q == pool])[:, 0] > 0.5).double().mean())
                        for pool in (True, False) if any(q == pool for q, _ in drawn)}
    assert shares["none"] == {}  # uniform draws never go through a RAD region
    assert shares["rad"][True] > 0.95  # the first two draws
    assert shares["rad"][False] == pytest.approx(0.5, abs=0.1)  # the last draw: 200 uniform points
    with pytest.raises(ValueError, match="sampler must be RAD"):
        LBFGS(sampler="rad")
