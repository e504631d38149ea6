"""fit video: the synthetic clip, coordinates, per-frame PSNR, SIREN ahead of ReLU-PE, the outputs."""

import numpy as np
import pytest

from pinnsiren.io import read_result
from solvers.signals.video_fit import VideoFitConfig, fit_video, frame_psnr, load_video, run, synthetic_clip, video_grid


def test_synthetic_clip_pans_and_stays_in_range():
    v = synthetic_clip(frames=5, size=20)
    assert v.shape == (5, 20, 20, 3)
    assert v.min() >= 0.0 and v.max() <= 1.0
    # consecutive frames differ (the camera moves) but not wildly
    d = np.abs(np.diff(v, axis=0)).mean(axis=(1, 2, 3))
    assert np.all(d > 1e-3) and np.all(d < 0.3)


def test_video_grid_order_matches_clip():
    g = video_grid(2, 3, 4).numpy()
    assert g.shape == (24, 3)
    np.testing.assert_allclose(g[0], [-1, -1, -1])
    np.testing.assert_allclose(g[1], [-1, -1, -1 + 2 / 3])  # x varies fastest
    np.testing.assert_allclose(g[12], [1, -1, -1])  # second frame


def test_frame_psnr_known_values():
    clip = np.zeros((2, 4, 4, 3))
    pred = clip.copy()
    pred[0] += 0.1
    pred[1] += 0.01
    np.testing.assert_allclose(frame_psnr(pred, clip), [20.0, 40.0])


def test_npy_source_round_trip(tmp_path):
    v = synthetic_clip(frames=3, size=16)
    np.save(tmp_path / "c.npy", v)
    got, desc = load_video(tmp_path / "c.npy", frames=2, size=None)
    np.testing.assert_allclose(got, v[:2])
    with pytest.raises(FileNotFoundError):
        load_video(tmp_path / "missing.mp4")


def test_siren_ahead_of_relu_pe_at_equal_steps():
    clip = synthetic_clip(frames=6, size=20)
    res = {a: fit_video(clip, VideoFitConfig(arch=a, steps=150, batch=1200, hidden=64,
                                             layers=2), show_progress=False)
           for a in ("siren", "relu-pe")}
    assert res["siren"]["mean_psnr"] > res["relu-pe"]["mean_psnr"] + 1.0
    assert res["siren"]["mean_psnr"] > 20.0  # measured 21.8
    np.testing.assert_allclose(res["siren"]["psnr"], frame_psnr(res["siren"]["prediction"], clip))


def test_run_writes_result_and_figure(tmp_path):
    out = run(None, ["siren", "relu-pe"], steps=2, out=tmp_path, frames=3, size=12,
              hidden=8, layers=1, show_progress=False)
    r = read_result(out["h5"])
    assert r["attrs"]["kind"] == "video-fit"
    assert r["fields"]["clip"].shape == (3, 12, 12, 3)
    assert r["history"]["siren/frame_psnr"].shape == (3,)
    assert r["metrics"]["mean_psnr_siren"] == pytest.approx(float(np.mean(r["history"]["siren/frame_psnr"])))
    assert out["png"].stat().st_size > 10_000
