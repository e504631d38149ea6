"""MSE over every sample of an audio clip against CPU seconds: plain Adam and the hybrid fit (least-squares
output layer over all samples every K Adam steps), one configuration per call.

Prints one JSON line per fit, then an indented JSON document. Each fit reports the MSE over all samples,
its CPU seconds, the steps taken, the parameter count against the sample count, and (hybrid) the MSE after
each output-layer solve against the CPU seconds spent so far (``curve``: CPU s, step, MSE before and
after the solve). Examples::

    python benchmarks/audio_hybrid.py --seconds 7 --budget 600 --set batch=4096 --set ls_every=100
    python benchmarks/audio_hybrid.py --seconds 7 --budget 600 --set batch=4096 --set ls_every=0  # plain Adam
    python benchmarks/audio_hybrid.py --wav ../shared/data/siren/gt_counting.wav --budget 600 --seeds 0,1,2

``--set FIELD=VALUE`` sets any field of ``AudioFitConfig`` (``none`` for None) on top of the fit's own
defaults (``pinnsiren fit audio``), or of the paper's recipe with ``--paper``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/reference.py would shadow the reference package: put the project root first
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from solvers.signals.audio_fit import DEFAULT_WAV, AudioFitConfig, fit_audio, load_wav  # noqa: E402


def parse_value(text: str) -> Any:
    """``none`` -> None, then int, float, or the text itself."""
    if text.lower() == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``["batch=4096", "ls_every=100"]`` -> settings of :class:`AudioFitConfig` (unknown fields raise)."""
    known = {f.name for f in dataclasses.fields(AudioFitConfig)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise SystemExit(f"--set {pair!r}: expected FIELD=VALUE with FIELD one of {sorted(known)}")
        out[key] = parse_value(value.strip())
    return out


def one_fit(wave: np.ndarray, rate: int, cfg: AudioFitConfig, points: int = 40) -> dict[str, Any]:
    """Fit and summarise: MSE, CPU seconds, steps, parameters, the first-layer factor and the solves' MSE curve
    (at most ``points``)."""
    c = time.process_time()
    r = fit_audio(wave, cfg, show_progress=False, rate=rate)
    h = r["history"]
    out = dict(mse=r["mse"], cpu_seconds=round(time.process_time() - c, 1),
               train_cpu_seconds=round(r["cpu_seconds"], 1), steps=r["steps_done"],
               parameters=sum(p.numel() for p in r["model"].parameters()), samples=int(wave.size),
               first_omega_0=round(r["first_omega_0"], 1))
    if "ls_mse" in h:
        keep = np.unique(np.linspace(0, len(h["ls_mse"]) - 1, min(points, len(h["ls_mse"]))).round().astype(int))
        out["curve"] = [[round(float(h["ls_cpu_seconds"][i]), 1), int(h["ls_step"][i]), float(h["ls_mse_before"][i]),
                         float(h["ls_mse"][i])] for i in keep]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wav", default=str(DEFAULT_WAV))
    p.add_argument("--seconds", type=float, default=7.0, help="first SECONDS of the clip (default 7)")
    p.add_argument("--start", type=float, default=0.0)
    p.add_argument("--archs", default="siren")
    p.add_argument("--seeds", default="0")
    p.add_argument("--budget", type=float, default=None, help="CPU seconds of each fit's steps (cpu_budget)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--paper", action="store_true",
                   help="start from the paper's recipe (AudioFitConfig.paper()) instead of the defaults; --set on top")
    p.add_argument("--label", default="")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="tiny run (smoke test, a synthetic tone mix)")
    a = p.parse_args()
    settings = parse_settings(a.set)
    if a.budget is not None:
        settings["cpu_budget"] = a.budget
    torch.set_num_threads(a.threads)
    if a.quick:
        rate = 8000
        t = np.arange(800) / rate
        wave = 0.6 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1250 * t + 0.3)
        settings.update(hidden=16, layers=1, steps=5, ls_every=2, batch=128)
    else:
        wave, rate = load_wav(a.wav, a.seconds, a.start)
    out = dict(benchmark="audio_hybrid", label=a.label, paper=a.paper, wav="synthetic" if a.quick else a.wav,
               seconds=a.seconds, start=a.start, settings=settings, threads=a.threads, machine=platform.machine(),
               load_average=os.getloadavg()[0], results={})
    with threadpool_limits(a.threads):
        for arch in a.archs.split(","):
            for seed in [int(s) for s in a.seeds.split(",")]:
                make = AudioFitConfig.paper if a.paper else AudioFitConfig
                cfg = make(**{**settings, "arch": arch, "seed": seed})
                key = f"{arch}/seed{seed}"
                out["results"][key] = one_fit(wave, rate, cfg)
                print(json.dumps({key: {k: v for k, v in out["results"][key].items() if k != "curve"}}), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
