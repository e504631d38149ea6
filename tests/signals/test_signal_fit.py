"""The signal fits' losses trained by the one trainer: mini-batches from the trainer's generator, history."""

import numpy as np
import pytest
import torch

from pinnsiren.networks import Siren
from pinnsiren.train import NonFiniteLossError
from solvers.signals.signal_fit import ValueFit, fit_values


def _data(n=300):
    x = torch.linspace(-1, 1, n).reshape(-1, 1)
    return x, torch.sin(4 * x)


def test_value_fit_draws_its_batch_from_the_generator():
    x, y = _data()
    torch.manual_seed(0)
    net = Siren(1, 1, 16, 1)
    idx = torch.randint(0, 300, (50,), generator=torch.Generator().manual_seed(3))
    want = float(torch.mean((net(x[idx]) - y[idx]) ** 2))
    got = ValueFit(x, y, batch=50).losses(net, 1, torch.Generator().manual_seed(3))
    assert list(got) == ["mse"]
    assert float(got["mse"]) == pytest.approx(want, rel=1e-6)
    full = float(torch.mean((net(x) - y) ** 2))
    for batch in (None, 300, 1000):  # no batch, or one at least N: every point, nothing drawn
        gen = torch.Generator().manual_seed(3)
        assert float(ValueFit(x, y, batch).losses(net, 1, gen)["mse"]) == pytest.approx(full, rel=1e-6)
        assert torch.equal(gen.get_state(), torch.Generator().manual_seed(3).get_state())


def _burst(n=2000):
    """A signal whose error under a zero network sits in 5 % of the points."""
    x = torch.linspace(-1, 1, n).reshape(-1, 1)
    y = torch.zeros(n, 1)
    y[1000:1100] = torch.sin(300 * x[1000:1100])
    return x, y


class _Zero(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.shape[0], 1)


def test_importance_draws_follow_the_residual_and_keep_the_loss_unbiased():
    x, y = _burst()
    net, a = _Zero(), 0.6
    fit = ValueFit(x, y, batch=64, importance=a, refresh_every=10**6)
    fit.refresh(net)
    p = torch.diff(fit.cdf, prepend=torch.zeros(1))
    r = y.abs().sum(1).double()
    assert torch.allclose(p, a * r / r.sum() + (1 - a) / 2000, rtol=1e-9, atol=1e-15)
    # exact expectation of one weighted term over the draw: the MSE over all points
    full = float(torch.mean(y.double() ** 2))
    assert float((p * fit.weight.double() * y[:, 0].double() ** 2).sum()) == pytest.approx(full, rel=1e-6)
    assert float(fit.weight.max()) <= 1 / (1 - a) + 1e-6
    # the draws: a share of about a + (1 - a) * 0.05 inside the burst (uniform: 0.05), and, over many batches,
    # the same mean as uniform draws with a far smaller spread
    gen = torch.Generator().manual_seed(0)
    idx = torch.cat([fit._draw(net, 1, gen)[0] for _ in range(200)])
    assert float(((idx >= 1000) & (idx < 1100)).float().mean()) == pytest.approx(a + (1 - a) * 0.05, abs=0.02)
    est = torch.tensor([float(fit.losses(net, 1, gen)["mse"]) for _ in range(400)])
    plain = ValueFit(x, y, batch=64)
    uni = torch.tensor([float(plain.losses(net, 1, gen)["mse"]) for _ in range(400)])
    assert float(est.mean()) == pytest.approx(full, rel=0.05)
    assert float(uni.mean()) == pytest.approx(full, rel=0.25)
    assert float(est.std()) < 0.3 * float(uni.std())


def test_importance_is_recomputed_on_its_interval_and_checked():
    x, y = _burst(500)
    fit = ValueFit(x, y, batch=32, importance=0.5, refresh_every=3)
    calls = []
    fit.refresh = lambda model: (calls.append(1), ValueFit.refresh(fit, model))
    gen = torch.Generator().manual_seed(0)
    for step in range(1, 8):
        fit.losses(_Zero(), step, gen)
    assert len(calls) == 3  # step 1 (none yet), 3 and 6
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="importance"):
            ValueFit(x, y, batch=32, importance=bad)
    with pytest.raises(ValueError, match="refresh_every"):
        ValueFit(x, y, batch=32, importance=0.5, refresh_every=0)


def test_fit_values_history_and_seeded_batches():
    x, y = _data()

    def fit(seed):
        torch.manual_seed(0)
        net = Siren(1, 1, 32, 2, first_omega_0=10.0)
        return fit_values(net, x, y, steps=60, lr=1e-3, batch=64, seed=seed, log_every=25, show_progress=False)

    h = fit(0)
    assert h["step"] == [25, 50, 60] and sorted(h) == ["loss", "step"]
    assert h["loss"][-1] < 0.2 * h["loss"][0]
    assert fit(0)["loss"] == h["loss"]  # same seed, same batches
    assert fit(1)["loss"][-1] != pytest.approx(h["loss"][-1], rel=1e-9)


def test_fit_values_stops_on_a_non_finite_loss():
    x, y = _data(20)
    y[3] = float("nan")
    with pytest.raises(NonFiniteLossError, match="step 1"):
        fit_values(Siren(1, 1, 8, 1), x, y, steps=5, lr=1e-3, batch=None, seed=0, log_every=1, show_progress=False)
    assert issubclass(NonFiniteLossError, FloatingPointError)


def test_inpaint_history_loss_is_data_plus_weighted_prior():
    from solvers.signals.inpaint import InpaintConfig, inpaint_image, random_mask

    side = 16
    yy, xx = np.mgrid[0:side, 0:side] / (side - 1)
    img = 0.5 + 0.3 * np.sin(2.5 * xx) * np.cos(2.0 * yy)
    r = inpaint_image(img, random_mask(side, 0.3, 0), InpaintConfig(prior="tv", weight=1e-2, steps=20, log_every=5,
                                                                      hidden=16, layers=1), show_progress=False)
    h = r["history"]
    assert list(h["step"]) == [5, 10, 15, 20]
    np.testing.assert_allclose(h["loss"], h["data"] + 1e-2 * h["prior"], rtol=1e-6)
    assert np.all(h["prior"] > 0)
