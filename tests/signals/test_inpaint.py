"""fit image --inpaint: the mask, the TV / Frobenius-Hessian priors against closed forms, the pipeline."""

import math

import numpy as np
import pytest
import torch

from pinnsiren.io import read_result
from pinnsiren.networks import Siren
from solvers.signals.inpaint import InpaintConfig, inpaint_image, prior_value, random_mask, run_inpaint


def test_random_mask_fraction_and_seed():
    m = random_mask(50, 0.1, seed=3)
    assert m.shape == (50, 50) and m.sum() == 250
    assert np.array_equal(m, random_mask(50, 0.1, seed=3))
    assert not np.array_equal(m, random_mask(50, 0.1, seed=4))
    with pytest.raises(ValueError):
        random_mask(10, 0.0)


def _one_unit_siren():
    """f(x) = c sin(w0 (a.x + b)) + d: one sine unit, closed-form derivatives."""
    torch.manual_seed(0)
    net = Siren(2, 1, hidden_features=1, hidden_layers=0, first_omega_0=3.0)
    return net


def test_tv_and_fh_priors_match_closed_forms():
    net = _one_unit_siren()
    a = net.layers[0].weight.detach()[0].double()
    b = float(net.layers[0].bias.detach())
    c = float(net.layers[1].weight.detach())
    w0 = net.first_omega_0
    x = torch.rand(200, 2) * 2 - 1
    arg = w0 * (x.double() @ a + b)
    tv = (abs(c) * w0 * torch.abs(torch.cos(arg)) * torch.linalg.norm(a)).mean()
    fh = (abs(c) * w0 ** 2 * torch.abs(torch.sin(arg)) * (a @ a)).mean()
    assert float(prior_value(net, x, "tv")) == pytest.approx(float(tv), rel=1e-4, abs=1e-5)
    assert float(prior_value(net, x, "fh")) == pytest.approx(float(fh), rel=1e-4, abs=1e-5)
    assert float(prior_value(net, x, "none")) == 0.0
    with pytest.raises(ValueError):
        prior_value(net, x, "l1")


def test_priors_are_differentiable_in_the_weights():
    net = _one_unit_siren()
    x = torch.rand(50, 2) * 2 - 1
    for p in ("tv", "fh"):
        net.zero_grad()
        prior_value(net, x, p).backward()
        assert torch.isfinite(net.layers[0].weight.grad).all()
        assert float(net.layers[0].weight.grad.abs().sum()) > 0


def test_inpaint_smooth_image_psnr_on_all_pixels():
    side = 32
    yy, xx = np.mgrid[0:side, 0:side] / (side - 1)
    img = 0.5 + 0.3 * np.sin(2.5 * xx + 1.0) * np.cos(2.0 * yy)
    mask = random_mask(side, 0.1, seed=0)
    res = {p: inpaint_image(img, mask, InpaintConfig(prior=p, steps=150, hidden=32,
                                                     layers=2), show_progress=False)
           for p in ("none", "tv")}
    for r in res.values():
        mse = float(np.mean((r["prediction"] - img) ** 2))
        assert r["psnr"] == pytest.approx(10 * math.log10(1 / mse))
        assert r["psnr_observed"] > r["psnr_unobserved"]
    # a smooth image is recovered from 10 % of its pixels
    assert res["tv"]["psnr"] > 21.0  # measured 23.3


def test_run_inpaint_and_cli(tmp_path):
    from pinnsiren.cli import main

    out = run_inpaint(None, ["none", "fh"], 0.1, tmp_path, steps=2, size=16, hidden=8,
                      layers=1, show_progress=False)
    r = read_result(out["h5"])
    assert r["attrs"]["kind"] == "image-inpaint"
    assert int(r["fields"]["mask"].sum()) == round(0.1 * 256)
    assert set(r["metrics"]) >= {"psnr_none", "psnr_fh"}
    assert main(["fit", "image", "--inpaint", "0.2", "--prior", "tv", "--steps", "1", "--size", "16",
                 "--hidden", "8", "--layers", "1", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "inpaint.png").is_file()
    assert main(["fit", "image", "--inpaint", "0.1", "--prior", "l2", "--size", "16",
                 "--out", str(tmp_path / "d")]) == 1


def test_inpainting_checks_its_architecture_before_any_work(tmp_path):
    from solvers.signals.inpaint import run_inpaint

    with pytest.raises(ValueError, match="unknown architecture 'nope'"):
        run_inpaint(None, ["none"], 0.1, tmp_path, arch="nope", steps=1, size=8, show_progress=False)
    assert list(tmp_path.iterdir()) == []
