"""Poisson image reconstruction from the gradient (paper §4.1), short CPU version."""

import numpy as np
import pytest
import torch

import solvers.pde.poisson as P
from pinnsiren.io import read_result


def test_normalized_psnr_ignores_scale_and_offset():
    rng = np.random.default_rng(0)
    gt = rng.random((16, 16))
    assert P.normalized_psnr(3.0 * gt - 7.0, gt) > 250.0  # exact up to rounding
    noisy = gt + 0.01 * rng.standard_normal(gt.shape)
    expected = 10 * np.log10((gt.max() - gt.min()) ** 2 / 1e-4)
    assert P.normalized_psnr(noisy, gt) == pytest.approx(expected, abs=0.3)


def test_targets_are_sobel_and_laplace_of_the_image():
    img = np.outer(np.linspace(0, 1, 8), np.ones(8))  # ramp along axis 0
    t = P.targets(img)
    inner = t["gx"][2:-2, 2:-2]
    assert np.allclose(inner, inner[0, 0]) and inner[0, 0] > 0
    assert np.allclose(t["gy"], 0) and np.allclose(t["lap"][1:-1, 1:-1], 0)


@pytest.mark.slow
def test_siren_reconstructs_image_from_its_gradient(tmp_path):
    torch.set_num_threads(1)
    cfg = P.PoissonConfig(hidden=128, layers=3, steps=300, points=2048, progress=False)
    res = P.run(None, ["siren"], ["gradient"], cfg, 128, tmp_path)
    m = res["results"][("siren", "gradient")]["metrics"]
    # measured 25.8 / 43.4 / 29.9 dB (see docs/benchmarks.md); a broken pipeline gives < 15 dB
    assert m["psnr_image"] > 22.0
    assert m["psnr_gradient"] > 35.0
    assert res["reference"]["psnr_image"] > 40.0  # the FD least-squares solve alongside
    r = read_result(res["h5"])
    assert {"threads", "world_size", "commit", "seed", "device", "torch_version"} <= set(r["attrs"])  # provenance
    assert r["metrics"]["psnr_image_siren_gradient"] == pytest.approx(m["psnr_image"])
    assert r["fields"]["siren_gradient/image"].shape == (128, 128)


def test_blend_is_the_convex_combination_of_gradients():
    a = P.load_image(None, 16)
    b = a[::-1].copy()
    t = P.blend_targets(a, b, 0.25)
    assert np.allclose(t["gx"], 0.25 * P.targets(a)["gx"] + 0.75 * P.targets(b)["gx"])
    with pytest.raises(ValueError, match="alpha"):
        P.blend_targets(a, b, 1.5)
