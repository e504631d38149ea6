"""The recommended configuration: what it turns on, and the network on normalised coordinates."""

import pytest
import torch

from pinnsiren import Normalized, Siren
from pinnsiren.phases import LBFGS, RAD, Adam, GradNorm
from pinnsiren.train import TrainConfig, recommended_model


def test_recommended_parts_and_overrides():
    cfg = TrainConfig.recommended()
    adam, lbfgs = cfg.phases
    assert adam == Adam(1000, lr=1e-4, schedule="cosine", final_lr_factor=0.01)  # uniform samples in the Adam phase
    # the budget is gradient evaluations in all: a third Adam, the rest L-BFGS on redrawn samples (RAD draws)
    assert lbfgs == LBFGS(2000, draw_every=100, batches=3, sampler=RAD(), max_batches=12)
    assert cfg.aids == (GradNorm(every=100),) and cfg.alarm == "warn" and cfg.evaluations == 3000
    assert [p.steps for p in TrainConfig.recommended(steps=301).phases] == [100, 201]
    assert TrainConfig.recommended(10, seed=3, progress=False).seed == 3
    with pytest.raises(ValueError, match="steps must be >= 3"):
        TrainConfig.recommended(2)
    # the plain default: one Adam phase, no aid, the alarm as a warning
    plain = TrainConfig()
    assert plain.phases == (Adam(),) and plain.aids == () and plain.alarm == "warn"


def test_config_as_plain_data_names_each_part():
    d = TrainConfig.recommended(30).to_dict()
    assert [p["kind"] for p in d["phases"]] == ["Adam", "LBFGS"] and d["phases"][1]["sampler"]["kind"] == "RAD"
    assert d["aids"] == [{"kind": "GradNorm", "every": 100, "momentum": 0.9}] and d["checkpoint"] is None


def test_recommended_model_maps_the_box_to_minus_one_one():
    torch.manual_seed(0)
    m = recommended_model([(0.0, 5.0), (-0.5, 0.5)])
    assert isinstance(m, Normalized) and isinstance(m.net, Siren)
    x = torch.tensor([[0.0, -0.5], [5.0, 0.5], [2.5, 0.0]], dtype=torch.float32)
    # the inner network sees the corners of [-1, 1]^2 and the centre
    torch.testing.assert_close(m(x), m.net(torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])))
