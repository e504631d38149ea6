"""Loss balancing by gradient norms: closed-form factors, and the direction they move in training."""

import pytest
import torch

from pinnsiren import Siren
from pinnsiren.balancing import LossBalancer, grad_norm
from pinnsiren.phases import Adam, GradNorm
from pinnsiren.train import TrainConfig, train


def _terms(model, scale_a=100.0):
    x = torch.linspace(-1, 1, 33)[:, None]
    out = model(x)[:, 0]
    return {"a": scale_a * ((out - 1) ** 2).mean(), "b": ((out + torch.sin(3 * x[:, 0])) ** 2).mean()}


def test_factors_equalise_gradient_norms_closed_form():
    torch.manual_seed(0)
    model = Siren(1, 1, 16, 1)
    params = list(model.parameters())
    terms = _terms(model)
    ga, gb = (torch.cat([g.flatten() for g in torch.autograd.grad(terms[k], params, retain_graph=True)]).norm()
              for k in ("a", "b"))
    bal = LossBalancer("gradnorm", every=1, momentum=0.9)
    w = bal.update(terms, params)
    # lambda_i = (ga + gb) / g_i, normalised to mean 1  =>  lambda_a / lambda_b = gb / ga
    assert w["a"] / w["b"] == pytest.approx(float(gb / ga), rel=1e-5)
    assert (w["a"] + w["b"]) / 2 == pytest.approx(1.0, rel=1e-12)
    assert w["a"] < w["b"]  # the term with the larger gradient (scaled by 100) is turned down
    # after balancing both terms pull with the same gradient norm
    assert w["a"] * float(ga) == pytest.approx(w["b"] * float(gb), rel=1e-5)
    assert grad_norm(terms["a"], params) == pytest.approx(float(ga), rel=1e-6)


def test_moving_average():
    torch.manual_seed(0)
    model = Siren(1, 1, 16, 1)
    params = list(model.parameters())
    bal = LossBalancer("gradnorm", every=1, momentum=0.75)
    w1 = bal.update(_terms(model), params)
    new = bal.target(_terms(model, scale_a=1.0), params)
    w2 = bal.update(_terms(model, scale_a=1.0), params)
    raw = {k: 0.75 * w1[k] + 0.25 * new[k] for k in w1}
    mean = sum(raw.values()) / 2
    for k in w2:
        assert w2[k] == pytest.approx(raw[k] / mean, rel=1e-9)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="must be one of"):
        LossBalancer("magic")
    with pytest.raises(ValueError, match="not an aid"):
        TrainConfig(aids=["gradnorm"])
    with pytest.raises(ValueError, match="momentum"):
        GradNorm(momentum=1.0)


class _Toy:
    """Fit sin(pi x) on [-1, 1] (data) with a boundary value u(1) = 0, the data term scaled up by 1000."""

    def losses(self, model, step, generator):
        x = torch.rand(64, 1, generator=generator) * 2 - 1
        data = 1000 * torch.mean((model(x)[:, 0] - torch.sin(torch.pi * x[:, 0])) ** 2)
        bc = model(torch.tensor([[1.0]]))[0, 0] ** 2
        return {"data": data, "boundary": bc}


def test_weights_move_towards_the_starved_term_in_training():
    torch.manual_seed(0)
    cfg = TrainConfig(phases=[Adam(60, lr=1e-4)], aids=[GradNorm(every=10)], progress=False, alarm="off")
    res = train(_Toy(), Siren(1, 1, 16, 1), cfg)
    wd, wb = res.history["weight.data"], res.history["weight.boundary"]
    assert res.history["weight_step"] == [1, 10, 20, 30, 40, 50, 60]
    assert wb[0] > 1.0 > wd[0]  # the documented direction: the small-gradient term is turned up
    assert wb[-1] > 10 * wd[-1]
    for a, b in zip(wd, wb):
        assert (a + b) / 2 == pytest.approx(1.0, rel=1e-9)
