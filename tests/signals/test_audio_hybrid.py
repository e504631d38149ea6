"""fit audio's hybrid: the output layer solved exactly over all samples between Adam steps on the hidden layers."""

import numpy as np
import pytest
import torch
from torch import nn

from pinnsiren.lstsq import LeastSquaresValues, output_normal_equations, solve_output_layer
from pinnsiren.networks import MLP, Siren
from solvers.signals.audio_fit import AudioFitConfig, fit_audio
from solvers.signals.signal_fit import ValueFit


def _tones(n=1500, rate=8000):
    t = np.arange(n) / rate
    return 0.6 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1250 * t + 0.3)


def _features(model, x):
    seen = []
    hook = model.layers[-1].register_forward_pre_hook(lambda _m, inp: seen.append(inp[0]))
    with torch.no_grad():
        model(x)
    hook.remove()
    return np.concatenate([seen[0].double().numpy(), np.ones((x.shape[0], 1))], 1)


@pytest.mark.parametrize("make", [lambda: Siren(1, 2, 16, 1, first_omega_0=30.0),
                                  lambda: MLP(1, 2, 16, 1, "relu", "pe", num_frequencies=4)])
def test_solve_output_layer_is_the_least_squares_optimum(make):
    torch.manual_seed(0)
    model = make()
    x = torch.linspace(-1, 1, 500)[:, None]
    y = torch.stack([torch.sin(7 * x[:, 0]), x[:, 0] ** 2], 1)
    phi = _features(model, x)
    theta, *_ = np.linalg.lstsq(phi, y.double().numpy(), rcond=None)
    best = float(np.mean((phi @ theta - y.double().numpy()) ** 2))
    with torch.no_grad():
        before = float(torch.mean((model(x) - y) ** 2))
    info = solve_output_layer(model, x, y, chunk=37, ridge=0.0)  # chunks that do not divide N
    assert info["rows"] == 500 and info["unknowns"] == 17 and info["rank"] == 17
    assert info["mse_after"] == pytest.approx(best, rel=1e-6)
    assert info["mse_before"] == pytest.approx(before, rel=1e-4)
    assert info["mse_before"] > 1.5 * info["mse_after"]  # measured 0.29 -> 0.14 (Siren)
    with torch.no_grad():
        got = float(torch.mean((model(x) - y) ** 2))
    assert got == pytest.approx(best, rel=1e-4)  # the float32 model reproduces the float64 optimum
    # at the optimum the loss's gradient with respect to the last layer vanishes
    loss = torch.mean((model(x) - y) ** 2)
    g = torch.autograd.grad(loss, model.layers[-1].weight)[0]
    assert float(g.abs().max()) < 1e-5


def test_normal_equations_do_not_depend_on_the_chunk():
    torch.manual_seed(1)
    model = Siren(1, 1, 8, 1)
    x = torch.rand(300, 1) * 2 - 1
    y = torch.cos(3 * x)
    G1, B1, yy1 = output_normal_equations(model, x, y, chunk=300)
    G2, B2, yy2 = output_normal_equations(model, x, y, chunk=11)
    torch.testing.assert_close(G1, G2, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(B1, B2, rtol=1e-12, atol=1e-9)
    assert float(yy1[0]) == pytest.approx(float((y.double() ** 2).sum()), rel=1e-12)
    assert G1.shape == (9, 9) and B1.shape == (9, 1)


def test_bad_input_is_refused():
    model = Siren(1, 1, 8, 1)
    x = torch.zeros(10, 1)
    with pytest.raises(ValueError, match="channels"):
        solve_output_layer(model, x, torch.zeros(10, 2))
    with pytest.raises(ValueError, match="same N"):
        solve_output_layer(model, x, torch.zeros(9, 1))
    with pytest.raises(ValueError, match="chunk"):
        solve_output_layer(model, x, torch.zeros(10, 1), chunk=0)
    with pytest.raises(ValueError, match="ridge"):
        solve_output_layer(model, x, torch.zeros(10, 1), ridge=-1.0)
    with pytest.raises(TypeError, match="Siren or MLP"):
        solve_output_layer(nn.Sequential(nn.Linear(1, 1)), x, torch.zeros(10, 1))
    with pytest.raises(ValueError, match="every"):
        LeastSquaresValues(ValueFit(x, torch.zeros(10, 1)), model, every=0)
    with pytest.raises(TypeError, match="losses"):
        LeastSquaresValues(object(), model)
    for bad in (dict(ls_every=-1), dict(ls_precision="float16"), dict(cpu_budget=0.0), dict(batch=0),
                dict(ls_ridge=-1.0), dict(first_omega_0=0.0), dict(first_top_hz=-1.0)):
        with pytest.raises(ValueError):
            AudioFitConfig.paper(**bad)


def test_hybrid_beats_plain_adam_at_the_same_steps():
    w = _tones(2000)
    base = dict(hidden=32, layers=2, steps=100, lr=1e-4)
    plain = fit_audio(w, AudioFitConfig.paper(**base), show_progress=False)
    hybrid = fit_audio(w, AudioFitConfig.paper(**base, ls_every=20), show_progress=False)
    assert plain["steps_done"] == hybrid["steps_done"] == 100
    # measured: plain 0.114, hybrid 0.023 (the signal's power is 0.225)
    assert plain["mse"] > 0.05
    assert hybrid["mse"] < 0.05
    assert hybrid["mse"] < 0.4 * plain["mse"]
    h = hybrid["history"]
    assert list(h["ls_step"]) == [1, 20, 40, 60, 80, 100, 100]  # the first step, every 20, and after the last
    # the solves' float64 MSE is the float32 model's, independently recomputed
    assert h["ls_mse"][-1] == pytest.approx(hybrid["mse"], rel=1e-3)
    assert hybrid["mse"] == pytest.approx(float(np.mean((hybrid["prediction"] - w) ** 2)))
    # a float32 solve lands on nearly the same optimum here
    f32 = fit_audio(w, AudioFitConfig.paper(**base, ls_every=20, ls_precision="float32"), show_progress=False)
    assert f32["mse"] == pytest.approx(hybrid["mse"], rel=0.05)


def test_the_output_solve_serves_the_relu_baselines_too():
    w = _tones(1000)
    for arch in ("relu", "relu-pe"):
        base = dict(arch=arch, hidden=32, layers=2, steps=30, lr=1e-4)
        plain = fit_audio(w, AudioFitConfig.paper(**base), show_progress=False)
        hybrid = fit_audio(w, AudioFitConfig.paper(**base, ls_every=10), show_progress=False)
        assert hybrid["mse"] < plain["mse"]
        assert hybrid["mse"] == pytest.approx(hybrid["history"]["ls_mse"][-1], rel=1e-3)


def test_the_default_budget_scales_with_the_clip_between_its_floor_and_its_cap():
    cfg = AudioFitConfig()
    assert cfg.budget(308_207) == pytest.approx(8.56e-3 * 308_207)  # Bach's 7 s: 2638 s, inside 45 minutes
    assert cfg.budget(537_936) == 3540.0  # counting's 12 s: 4605 s by the rate, capped at 59 minutes
    assert cfg.budget(4410) == 300.0  # a 0.1 s excerpt: the 5-minute floor (its steps end it first)
    assert AudioFitConfig(cpu_per_sample=None).budget(10**9) == 3540.0
    assert AudioFitConfig(cpu_budget=100.0).budget(308_207) == 100.0
    assert AudioFitConfig.paper().budget(308_207) is None
    with pytest.raises(ValueError, match="cpu_per_sample"):
        AudioFitConfig(cpu_per_sample=0.0)


def test_cpu_budget_stops_and_a_huge_one_changes_nothing():
    w = _tones(600)
    base = dict(hidden=16, layers=1, steps=40, lr=1e-4, batch=64)
    plain = fit_audio(w, AudioFitConfig.paper(**base), show_progress=False)
    same = fit_audio(w, AudioFitConfig.paper(**base, cpu_budget=1e9), show_progress=False)
    np.testing.assert_array_equal(plain["prediction"], same["prediction"])  # the same trainer, bit for bit
    stopped = fit_audio(w, AudioFitConfig.paper(**{**base, "steps": 10**9}, ls_every=50, cpu_budget=0.3),
                        show_progress=False)
    assert 1 <= stopped["steps_done"] < 10**9
    assert stopped["history"]["ls_step"][-1] == stopped["steps_done"]  # solved again after the last step
    assert stopped["mse"] == pytest.approx(stopped["history"]["ls_mse"][-1], rel=1e-3)


def test_cli_takes_the_hybrid_flags(tmp_path):
    from scipy.io import wavfile

    from pinnsiren.cli import main

    wavfile.write(tmp_path / "in.wav", 8000, _tones(300).astype(np.float32))
    assert main(["fit", "audio", str(tmp_path / "in.wav"), "--steps", "3", "--hidden", "8", "--layers", "1",
                 "--ls-every", "2", "--batch", "64", "--cpu-budget", "60", "--ls-precision", "float32",
                 "--arch", "siren,relu", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "audio_fit_siren.wav").is_file()
    with pytest.raises(SystemExit) as e:  # argparse refuses a precision it does not know
        main(["fit", "audio", str(tmp_path / "in.wav"), "--ls-precision", "half", "--out", str(tmp_path)])
    assert e.value.code == 2


def test_no_freeze_leaves_the_output_layer_to_adam_between_solves():
    w = _tones(800)
    base = dict(hidden=16, layers=1, steps=30, lr=1e-3, ls_every=10)
    frozen = fit_audio(w, AudioFitConfig.paper(**base), show_progress=False)
    free = fit_audio(w, AudioFitConfig.paper(**base, ls_freeze=False), show_progress=False)
    hf, hg = frozen["history"], free["history"]
    assert not frozen["model"].layers[-1].weight.requires_grad
    assert free["model"].layers[-1].weight.requires_grad
    # both start from the same first solve; Adam on the output layer too makes the runs differ after it
    assert hf["ls_mse_before"][0] == pytest.approx(hg["ls_mse_before"][0], rel=1e-6)  # the same start
    assert hf["ls_mse_before"][1] != pytest.approx(hg["ls_mse_before"][1], rel=1e-6)
    assert all(a <= b * (1 + 1e-6) for a, b in zip(hg["ls_mse"], hg["ls_mse_before"]))  # a solve never loses


def test_benchmark_prints_json():
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "audio_hybrid.py"), "--quick", "--threads", "1",
                          "--archs", "siren,relu"], capture_output=True, text=True, timeout=120, cwd=root)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout[out.stdout.index("{\n"):])
    r = data["results"]["siren/seed0"]
    assert r["steps"] == 5 and r["samples"] == 800 and r["parameters"] == 16 * 2 + 16 * 16 + 16 + 17
    assert r["mse"] == pytest.approx(r["curve"][-1][3], rel=1e-3)
