"""fit audio: WAV reading, the time axis, a SIREN far ahead of ReLU on a tone mix, the outputs."""

from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from pinnsiren.io import load_model, read_result
from solvers.signals.audio_fit import DEFAULT_WAV, AudioFitConfig, fit_audio, load_wav, run, time_grid


def _tones(n=1500, rate=8000):
    t = np.arange(n) / rate
    return 0.6 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1250 * t + 0.3), rate


def test_load_wav_scales_to_peak_one_and_cuts(tmp_path):
    w, rate = _tones()
    stereo = np.stack([w, w], axis=1)
    wavfile.write(tmp_path / "a.wav", rate, (stereo * 20000).astype(np.int16))
    got, r = load_wav(tmp_path / "a.wav")
    assert r == rate and got.shape == (1500,)
    assert np.max(np.abs(got)) == pytest.approx(1.0)
    np.testing.assert_allclose(got, w / np.max(np.abs(w)), atol=2e-4)  # 16-bit quantisation
    cut, _ = load_wav(tmp_path / "a.wav", seconds=0.1)
    assert cut.shape == (800,)
    # an excerpt keeps the scale of the whole clip
    mid, _ = load_wav(tmp_path / "a.wav", seconds=0.05, start=0.1)
    np.testing.assert_array_equal(mid, got[800:1200])
    with pytest.raises(FileNotFoundError):
        load_wav(tmp_path / "missing.wav")


def test_first_layer_keeps_its_top_frequency_in_hz_on_longer_clips():
    cfg = AudioFitConfig()
    # sin(omega_0 w t) over n samples at rate r: t in [-1, 1] spans (n - 1) / r seconds
    assert cfg.omega_0(308207, 44100) == 6000.0  # Bach's 7 s: the top frequency below 273 Hz, the floor
    counting = np.pi * 273.0 * 537935 / 44100
    assert cfg.omega_0(537936, 44100) == pytest.approx(counting, rel=1e-12)
    assert counting == pytest.approx(10461.7, abs=0.1)
    assert cfg.omega_0(2 * 537935 + 1, 44100) == pytest.approx(2 * counting, rel=1e-12)  # linear in duration
    assert cfg.omega_0(537936, 22050) == pytest.approx(2 * counting, rel=1e-12)  # in seconds, not samples
    assert cfg.omega_0(4410, 44100) == 6000.0  # a 0.1 s excerpt keeps the floor
    assert AudioFitConfig(first_top_hz=0.0).omega_0(537936, 44100) == 6000.0
    assert AudioFitConfig.paper().omega_0(10 * 537936, 44100) == 3000.0


def test_fit_audio_uses_the_rule_only_with_a_rate():
    w, rate = _tones(400)
    cfg = AudioFitConfig.paper(arch="siren", steps=2, hidden=8, layers=1, first_omega_0=10.0, first_top_hz=100.0)
    hz = fit_audio(w, cfg, show_progress=False, rate=rate)
    top = np.pi * 100.0 * 399 / rate  # 15.7 > 10
    assert hz["first_omega_0"] == pytest.approx(top) and hz["model"].first_omega_0 == pytest.approx(top)
    plain = fit_audio(w, cfg, show_progress=False)
    assert plain["first_omega_0"] == 10.0 and plain["model"].first_omega_0 == 10.0


def test_time_grid_spans_minus_one_to_one():
    t = time_grid(5)
    assert t.shape == (5, 1)
    np.testing.assert_allclose(t[:, 0].numpy(), [-1, -0.5, 0, 0.5, 1])


def test_siren_fits_tone_mix_far_better_than_relu():
    w, _ = _tones()
    res = {a: fit_audio(w, AudioFitConfig.paper(arch=a, steps=200, lr=1e-4, hidden=64,
                                          layers=2, first_omega_0=3000.0), show_progress=False)
           for a in ("siren", "relu")}
    # relu cannot follow a 440 Hz tone (MSE near the signal power ~0.2)
    assert res["relu"]["mse"] > 0.05
    assert res["siren"]["mse"] < 1e-3  # measured 1.1e-4
    assert res["relu"]["mse"] > 100 * res["siren"]["mse"]
    # the reported MSE is over every sample, independently recomputed
    assert res["siren"]["mse"] == pytest.approx(float(np.mean((res["siren"]["prediction"] - w) ** 2)))


def test_run_writes_result_figure_and_wavs(tmp_path):
    w, rate = _tones(400)
    wavfile.write(tmp_path / "in.wav", rate, (w * 30000).astype(np.int16))
    out = run(tmp_path / "in.wav", ["siren", "relu-pe"], steps=2, out=tmp_path / "o",
              hidden=8, layers=1, show_progress=False)
    r = read_result(out["h5"])
    assert r["attrs"]["kind"] == "audio-fit"
    assert {"threads", "world_size", "commit", "seed", "device", "torch_version"} <= set(r["attrs"])  # provenance
    assert r["fields"]["wave"].shape == (400,)
    m = load_model(out["h5"], "siren")
    pred = m(time_grid(400)).detach().numpy()[:, 0]
    assert float(np.mean((pred - r["fields"]["wave"]) ** 2)) == pytest.approx(r["metrics"]["mse_siren"], rel=1e-4)
    r2, back = wavfile.read(out["wavs"]["siren"])
    assert r2 == rate and back.shape == (400,)
    assert out["png"].stat().st_size > 10_000


def test_cli_fit_audio(tmp_path):
    from pinnsiren.cli import main

    w, rate = _tones(300)
    wavfile.write(tmp_path / "in.wav", rate, w.astype(np.float32))
    assert main(["fit", "audio", str(tmp_path / "in.wav"), "--steps", "1", "--hidden", "8",
                 "--layers", "1", "--arch", "siren,relu", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "audio_fit.h5").is_file() and (tmp_path / "audio_fit_relu.wav").is_file()
    assert main(["fit", "audio", str(tmp_path / "nope.wav"), "--out", str(tmp_path)]) == 2  # a usage error


def test_bach_clip_reads_when_present():
    if not Path(DEFAULT_WAV).is_file():
        pytest.skip(f"the paper's Bach clip is not at {DEFAULT_WAV} (../shared/data/siren/gt_bach.wav)")
    w, rate = load_wav(DEFAULT_WAV, seconds=7.0)
    assert rate == 44100 and 300_000 < w.size <= 7 * 44100
    assert np.max(np.abs(w)) == pytest.approx(1.0)


def test_the_paper_recipe_from_the_command_line(tmp_path, monkeypatch):
    """``--recipe paper`` is AudioFitConfig.paper() with the flags that differ from the defaults on top."""
    from solvers.signals import audio_fit

    seen = {}
    monkeypatch.setattr(audio_fit, "run", lambda *a, cfg=None, **k: seen.setdefault("cfg", cfg))
    from pinnsiren.cli import main

    w, rate = _tones(100)
    wavfile.write(tmp_path / "x.wav", rate, w.astype(np.float32))
    wav = str(tmp_path / "x.wav")
    assert main(["fit", "audio", wav, "--recipe", "paper", "--steps", "7", "--out", str(tmp_path)]) == 0
    cfg = seen["cfg"]
    assert (cfg.batch, cfg.first_omega_0, cfg.lr, cfg.schedule, cfg.ls_every, cfg.cpu_budget, cfg.steps) == \
        (None, 3000.0, 5e-5, "constant", 0, None, 7)
    seen.clear()
    assert main(["fit", "audio", wav, "--out", str(tmp_path)]) == 0
    cfg = seen["cfg"]
    assert (cfg.batch, cfg.first_omega_0, cfg.lr, cfg.schedule, cfg.ls_every, cfg.cpu_budget, cfg.cpu_per_sample,
            cfg.importance, cfg.importance_every, cfg.first_top_hz) == \
        (4096, 6000.0, 1e-4, "cosine", 2000, 3540.0, 8.56e-3, 0.5, 1000, 273.0)
