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
