"""Neural-reparameterised FWI: FD misfit chained into a SIREN's weights."""

import numpy as np
import pytest
import torch

from reference.fwi import Acquisition, InversionProblem, simulate_data, slowness_model


@pytest.fixture(scope="module")
def small_problem():
    acq = Acquisition.paper()
    obs = simulate_data(acq, slowness_model("circle"), n=81)
    return InversionProblem(acq, obs.d, n=41)


@pytest.mark.parametrize("param", ["velocity", "slowness"])
def test_start_is_background_and_bounds_hold(small_problem, param):
    from solvers.fwi.fwi_reparam import NeuralModel, ReparamFWIConfig

    pb = small_problem
    nm = NeuralModel(pb, ReparamFWIConfig(param=param)).double()
    np.testing.assert_allclose(nm().detach().numpy(), 1.0, atol=1e-12)
    lo, hi = pb.m_bounds if param == "slowness" else pb.m_bounds[::-1]  # a high velocity is a low m
    with torch.no_grad():
        nm.net.layers[-1].bias.fill_(100.0)
        assert float(nm().min()) == pytest.approx(hi, rel=1e-6)
        nm.net.layers[-1].bias.fill_(-100.0)
        assert float(nm().max()) == pytest.approx(lo, rel=1e-6)


def test_chained_gradient_taylor(small_problem):
    """J(m(theta)): first-order remainder halves, second-order remainder quarters; a wrong gradient fails."""
    from solvers.fwi.fwi_reparam import NeuralModel, ReparamFWIConfig, chained_taylor_test

    pb = small_problem
    nm = NeuralModel(pb, ReparamFWIConfig(first_omega_0=3.0, seed=1)).double()
    with torch.no_grad():  # a non-trivial point: random last layer, so every weight has a gradient
        nm.net.layers[-1].weight.normal_(0, 0.003)
    t = chained_taylor_test(pb, nm, h0=0.1, halvings=9)  # measured ratios ... 4.05, 4.03 and 2.00, 2.00
    assert np.all(np.abs(t["ratio0"][-2:] - 2) < 0.15), t
    assert np.all(np.abs(t["ratio1"][-2:] - 4) < 0.3), t
    # the same remainders with a gradient off by 20 % decrease only to first order
    bad = np.abs(t["dJ"] - t["h"] * 1.2 * t["slope"])
    assert np.all(np.abs(bad[-3:-1] / bad[-2:] - 2) < 0.15)


def test_reparam_fwi_reduces_misfit_and_model_error(small_problem):
    from reference.fwi import model_mse, velocity_model
    from solvers.fwi.fwi_reparam import ReparamFWIConfig, reparam_fwi

    pb = small_problem
    X, Y = pb.op.grid.coords()
    ct = velocity_model("circle")(X, Y)
    mse = lambda m: {"mse": model_mse(1 / np.sqrt(m), ct, (X, Y))}  # noqa: E731
    r = reparam_fwi(pb, ReparamFWIConfig(iterations=40, max_evals=60, hidden=32), callback=mse)
    assert r.history["objective"][-1] < 0.5 * r.history["objective"][0]
    assert r.history["mse"][-1] < 0.8 * r.history["mse"][0]
    assert r.m.shape == (41, 41) and r.wavefields.shape == (5, 41, 41)


def test_reparam_loss_terms_and_adam_through_the_trainer(small_problem):
    """ReparamLoss is misfit + tv * TV; Adam runs through pinnsiren.train.train with every evaluation logged."""
    from solvers.fwi.fwi_reparam import FDMisfit, NeuralModel, ReparamFWIConfig, ReparamLoss, reparam_fwi

    pb = small_problem
    cfg = ReparamFWIConfig(hidden=16, tv=0.3, seed=2)
    nm = NeuralModel(pb, cfg).double()
    with torch.no_grad():
        nm.net.layers[-1].weight.normal_(0, 0.01)
    terms = ReparamLoss(pb, cfg).losses(nm, 0, None)
    assert sorted(terms) == ["misfit", "tv"]
    assert float(terms["misfit"]) == pytest.approx(float(FDMisfit.apply(nm(), pb)), rel=1e-12)
    assert float(terms["tv"]) == pytest.approx(0.3 * float(nm.tv(cfg.tv_eps)), rel=1e-12)
    r = reparam_fwi(pb, ReparamFWIConfig(optimizer="adam", iterations=12, max_evals=10, hidden=16, lr=1e-2))
    assert r.n_evals == 10 and len(r.history["loss"]) == 10  # max_evals caps the Adam steps
    assert r.history["evals"] == list(range(11))  # recorded at the start and every step (12 // 30 -> 1)
    assert r.history["loss"][0] == pytest.approx(r.history["objective"][0], rel=1e-12)  # the start is the background
    assert r.history["objective"][-1] < 0.95 * r.history["objective"][0]  # measured 0.885
