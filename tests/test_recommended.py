"""The recommended configuration: what it turns on, and the network on normalised coordinates."""

import torch

from pinnsiren import Normalized, Siren
from pinnsiren.train import TrainConfig, recommended_model


def test_recommended_config_fields_and_overrides():
    cfg = TrainConfig.recommended()
    assert (cfg.steps, cfg.lr, cfg.schedule, cfg.balance, cfg.resample, cfg.alarm) == (
        1000, 1e-4, "cosine", "gradnorm", "none", "warn")
    # the budget is gradient evaluations in all: a third Adam, the rest L-BFGS on redrawn samples (RAD draws)
    assert (cfg.lbfgs_steps, cfg.lbfgs_draw_every, cfg.lbfgs_batches, cfg.lbfgs_resample,
            cfg.steps + cfg.lbfgs_steps) == (2000, 100, 3, "rad", 3000)
    assert TrainConfig.recommended(steps=300, lbfgs_steps=0).steps == 100
    cfg.validate()
    assert TrainConfig.recommended(steps=10, lr=3e-5, resample="rad").resample == "rad"
    # the plain default stays what the catalog pipelines were measured with
    plain = TrainConfig()
    assert (plain.balance, plain.resample, plain.lbfgs_resample, plain.causal_time) == ("none", "none", "none", None)


def test_recommended_model_maps_the_box_to_minus_one_one():
    torch.manual_seed(0)
    m = recommended_model([(0.0, 5.0), (-0.5, 0.5)])
    assert isinstance(m, Normalized) and isinstance(m.net, Siren)
    x = torch.tensor([[0.0, -0.5], [5.0, 0.5], [2.5, 0.0]], dtype=torch.float32)
    # the inner network sees the corners of [-1, 1]^2 and the centre
    torch.testing.assert_close(m(x), m.net(torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])))
