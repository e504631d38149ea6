"""Fit a raw audio waveform with a coordinate network (paper supplement §8, Table 3).

The waveform is scaled to ``[-1, 1]`` (divided by the clip's peak magnitude), time
is mapped to ``[-1, 1]`` over the clip, and the SIREN's first layer uses
``omega_0 = 6000``, raised on clips longer than 7 s to keep its top frequency
at 273 Hz (``first_top_hz``; the paper: 3000, its ``[-100, 100]`` domain with
``omega_0 = 30``). The loss is the MSE over the samples (``batch`` of them per
step, at random), the optimiser Adam; ``start`` and ``seconds`` keep
an excerpt (scaled by the whole clip's peak). The reported MSE is always over
every sample kept.

``ls_every = K > 0`` makes the fit a hybrid: the network's last layer is
linear, so at the first step, every K steps and after the last one it is set
to the exact least-squares optimum over *all* samples
(:class:`pinnsiren.lstsq.LeastSquaresValues`), and Adam moves the hidden
layers (and, with ``ls_freeze=False``, the output layer) in between.
``cpu_budget`` stops the steps after that many CPU seconds; by default the
budget scales with the clip (``cpu_per_sample``, :meth:`AudioFitConfig.budget`).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from pinnsiren.evaluation import evaluate
from pinnsiren.settings import ModelSettings, add_flags, from_args
from pinnsiren.networks import ARCHITECTURES, check_architectures, nyquist_frequencies


from pinnsiren.lstsq import LeastSquaresValues
from pinnsiren.phases import SCHEDULES, Adam
from pinnsiren.train import train

from .signal_fit import (FitSettings, ValueFit, fit_config, fit_each, fit_trainer, fit_values, train_history,
                         write_fits)

__all__ = ["AudioFitConfig", "load_wav", "time_grid", "fit_audio", "plot_audio_figure", "run",
           "DEFAULT_WAV"]

#: the paper's Bach clip, relative to the repository root
DEFAULT_WAV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "siren" / "gt_bach.wav"


def load_wav(path: str | Path, seconds: float | None = None,
             start: float = 0.0) -> tuple[np.ndarray, int]:
    """Read a WAV file as a mono float64 waveform scaled to ``[-1, 1]``.

    Parameters
    ----------
    path : path
        WAV file (any integer or float sample format; channels are averaged).
    seconds : float or None
        Keep only ``seconds`` of the clip (from ``start``).
    start : float
        Start of the kept part, in seconds.

    Returns
    -------
    wave : ndarray, shape (N,)
        Divided by the peak magnitude of the whole clip (so an excerpt keeps
        the loudness it has in the clip; an all-zero clip stays zero).
    rate : int
        Samples per second.
    """
    from scipy.io import wavfile

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"WAV file not found: {p}")
    try:
        rate, data = wavfile.read(p)
    except (ValueError, EOFError, OSError) as e:
        raise ValueError(f"{p}: not a readable WAV file ({' '.join(str(e).split())})") from None
    wave = np.asarray(data, dtype=np.float64)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    i0 = int(round(start * rate))
    if seconds is not None:
        if seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        wave = wave[i0 : i0 + int(round(seconds * rate))]
    else:
        wave = wave[i0:]
    if wave.size < 2:
        raise ValueError(f"{p}: fewer than 2 samples from {start} s")
    if peak > 0 and float(np.max(np.abs(wave))) <= 1e-3 * peak:
        warnings.warn(f"{p}: the excerpt from {start} s ({wave.size / rate:g} s) is silent (amplitude "
                      f"{float(np.max(np.abs(wave))) / peak:.2g} of the clip's peak); the fit and its MSE say little; "
                      "choose another --start or a longer --seconds", stacklevel=2)
    return (wave / peak if peak > 0 else wave), int(rate)


def time_grid(n: int) -> torch.Tensor:
    """Sample times mapped to ``[-1, 1]``, shape ``(n, 1)``."""
    return torch.linspace(-1.0, 1.0, n).reshape(-1, 1)


@dataclass
class AudioFitConfig(ModelSettings, FitSettings):
    """Settings of one audio fit.

    The defaults are the measured CPU recipe (docs/signals.md): random batches
    of 4096 samples, a first-layer factor of 6000, Adam lr 1e-4 with a cosine
    decay to 1e-6 tied to a CPU budget of 8.56 ms per sample (44 minutes on
    Bach's 7 s, at most 59), the output layer solved over all samples every
    2000 steps, and half of each batch drawn where the residual is (``importance``). The paper's recipe is
    ``batch=None, first_omega_0=3000, lr=5e-5, schedule="constant", ls_every=0,
    cpu_budget=None``.
    """

    batch: int | None = 4096
    """Random samples per step (None, or at least the sample count: all of them, full batch)."""
    first_omega_0: float = 6000.0
    """The SIREN's first-layer factor on time in [-1, 1] (at least; see first_top_hz). A unit sin(omega_0 w t),
    |w| <= 1, oscillates at up to omega_0 / (pi T) Hz over a clip of T seconds: the paper's 3000 puts that at
    136 Hz on its 7 s clip, below most of a cello's partials; 6000 beats 3000 and 10000 on Bach's 7 s at the same
    CPU time (docs/signals.md)."""
    first_top_hz: float = 273.0
    """Keep the first layer's top frequency at this many Hz on a longer clip: the factor is the larger of
    first_omega_0 and pi * first_top_hz * T (:meth:`omega_0`; 0: first_omega_0 on any clip). A signal's spectrum is
    set in Hz, not in the clip's normalised time; 273 Hz is Bach's 6000 on its 7 s, so clips up to 7 s keep 6000
    and the 12 s counting clip gets 10 462 (MSE 3.56e-4 against 3.88e-4 with 6000 over the whole budget)."""
    steps: int = 100000
    """At most this many Adam steps: a cap the CPU budget reaches first on a whole clip (Bach: 28-38 thousand steps
    in 44 minutes), so the budget ends the fit and its cosine."""
    lr: float = 1e-4
    log_every: int = 25
    schedule: str = "cosine"
    """Learning-rate schedule of the Adam steps: constant, cosine (decays to lr * final_lr_factor) or exponential;
    with cpu_budget its progress is the larger of the steps' and the budget's fractions."""
    final_lr_factor: float = 0.01
    """End-of-schedule learning rate as a fraction of lr."""
    ls_every: int = 2000
    """Solve the output layer exactly by least squares over all samples at the first step and every this many
    steps, and at the end; Adam moves the hidden layers in between (see ls_freeze; 0: off, plain Adam on every
    layer)."""
    ls_ridge: float = 1e-12
    """Ridge of the output-layer solve, relative to the mean diagonal of the normal equations."""
    ls_precision: str = "float64"
    """Precision of the solve's feature products: float64 or float32 (summed in float64 either way)."""
    importance: float = 0.5
    """Draw each batch from the mixture of the residual's magnitude (this share) and the uniform distribution,
    the terms weighted to keep the loss an unbiased estimate of the MSE over all samples (0: uniform draws; see
    :class:`~solvers.signals.signal_fit.ValueFit`). An audio clip's error sits in its loud passages; measured on
    both whole clips, 0.5 matches uniform draws per CPU second with a third fewer steps (docs/signals.md)."""
    importance_every: int = 1000
    """Recompute the residuals over all samples that the draws follow every this many steps."""
    ls_freeze: bool = False
    """Between solves Adam moves the hidden layers only (default: the output layer too, from each solve's
    optimum)."""
    cpu_budget: float | None = 3540.0
    """Stop the Adam steps once they have used at most this many CPU seconds (see cpu_per_sample; with
    ls_every > 0 the output layer is then solved once more); None: no budget, all the steps. The default,
    59 minutes, leaves the last solve and the prediction of a 12 s clip inside an hour."""
    cpu_per_sample: float | None = 8.56e-3
    """Scale the budget with the clip: this many CPU seconds per sample, at least 5 minutes, at most cpu_budget
    (None: cpu_budget alone). At a fixed batch the steps a fit needs grow with the samples it has to visit;
    8.56 ms is the measured Bach recipe (2638 s for 308 207 samples, inside 45 minutes with the last solve)."""

    def omega_0(self, samples: int, rate: float) -> float:
        """The first-layer factor on a clip of ``samples`` samples at ``rate`` Hz (see ``first_top_hz``)."""
        return max(self.first_omega_0, math.pi * self.first_top_hz * (samples - 1) / rate)

    def budget(self, samples: int) -> float | None:
        """The CPU seconds the Adam steps may use on a clip of ``samples`` samples (None: no budget)."""
        if self.cpu_budget is None or self.cpu_per_sample is None:
            return self.cpu_budget
        return min(self.cpu_budget, max(MIN_SCALED_BUDGET, self.cpu_per_sample * samples))

    @classmethod
    def paper(cls, **changes: Any) -> "AudioFitConfig":
        """The paper's recipe (supplement §8): full batch, omega_0 3000, Adam lr 5e-5 constant, 2000 steps, no
        solve, no budget; ``changes`` replace any field."""
        recipe = dict(batch=None, first_omega_0=3000.0, first_top_hz=0.0, steps=2000, lr=5e-5, schedule="constant",
                      ls_every=0, importance=0.0, ls_freeze=True, cpu_budget=None)
        return cls(**{**recipe, **changes})

    def __post_init__(self) -> None:
        if self.batch is not None and self.batch < 1:
            raise ValueError(f"batch must be >= 1 or None (all samples), got {self.batch}")
        if not isinstance(self.ls_every, int) or self.ls_every < 0:
            raise ValueError(f"ls_every must be an integer >= 0 (0: off), got {self.ls_every!r}")
        if not 0 <= self.importance < 1:
            raise ValueError(f"importance must be in [0, 1), got {self.importance!r}")
        if not isinstance(self.importance_every, int) or self.importance_every < 1:
            raise ValueError(f"importance_every must be an integer >= 1, got {self.importance_every!r}")
        if not self.ls_ridge >= 0:
            raise ValueError(f"ls_ridge must be >= 0, got {self.ls_ridge!r}")
        if self.cpu_budget is not None and not self.cpu_budget > 0:
            raise ValueError(f"cpu_budget must be > 0 seconds or None, got {self.cpu_budget!r}")
        if self.cpu_per_sample is not None and not self.cpu_per_sample > 0:
            raise ValueError(f"cpu_per_sample must be > 0 seconds or None, got {self.cpu_per_sample!r}")
        if not self.first_omega_0 > 0:
            raise ValueError(f"first_omega_0 must be > 0, got {self.first_omega_0!r}")
        if not self.first_top_hz >= 0:
            raise ValueError(f"first_top_hz must be >= 0 (0: off), got {self.first_top_hz!r}")
        if self.ls_precision not in LS_PRECISIONS:
            raise ValueError(f"ls_precision must be one of {list(LS_PRECISIONS)}, got {self.ls_precision!r}")


#: the smallest budget ``cpu_per_sample`` gives (seconds): short clips are limited by their steps, not their length
MIN_SCALED_BUDGET = 300.0

#: the least-squares solve's product precisions (``ls_precision``)
LS_PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


def _make_model(cfg: AudioFitConfig, n: int) -> nn.Module:
    kwargs: dict[str, Any] = {}
    if cfg.arch == "relu-pe":
        # the Nyquist rate of n samples on [-1, 1], as for images
        kwargs["num_frequencies"] = nyquist_frequencies(max(n, 8))
    return cfg.build_model(1, 1, **kwargs)


def _predict(model: nn.Module, t: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    return evaluate(model, t, chunk)


def _train(model: nn.Module, t: torch.Tensor, target: torch.Tensor, cfg: AudioFitConfig,
           show_progress: bool) -> dict[str, list[float]]:
    """Adam on :class:`ValueFit` (plain), or on :class:`~pinnsiren.lstsq.LeastSquaresValues` around it
    (``ls_every > 0``: the output layer solved over all samples, also after the last step), within
    ``cpu_budget``; the history, with ``steps_done``, and ``ls_step``, ``ls_cpu_seconds``, ``ls_mse`` and
    ``ls_mse_before`` (MSE over all samples after and before each solve) when solving."""
    budget = cfg.budget(t.shape[0])
    if cfg.ls_every == 0 and cfg.schedule == "constant" and budget is None:  # the plain fit, as before
        return fit_values(model, t, target, steps=cfg.steps, lr=cfg.lr, batch=cfg.batch, seed=cfg.seed,
                          log_every=cfg.log_every, show_progress=show_progress)
    adam = Adam(cfg.steps, lr=cfg.lr, schedule=cfg.schedule, final_lr_factor=cfg.final_lr_factor,
                cpu_seconds=budget)
    trainer = replace(fit_trainer(cfg.steps, cfg.lr, cfg.seed, t.device, cfg.log_every, show_progress), phases=(adam,))
    loss = fit = ValueFit(t, target, cfg.batch, cfg.importance, cfg.importance_every)
    if cfg.ls_every > 0:
        loss = LeastSquaresValues(fit, model, every=cfg.ls_every, ridge=cfg.ls_ridge,
                                  dtype=LS_PRECISIONS[cfg.ls_precision], freeze=cfg.ls_freeze)
    run = train(loss, model, trainer)
    hist, last = train_history(run.history), run.steps_done
    if not isinstance(loss, LeastSquaresValues):
        return {**hist, "steps_done": [last]}
    loss.solve(model, last)
    solves = {f"ls_{k}": [h[key] for h in loss.history]
              for k, key in (("step", "step"), ("cpu_seconds", "cpu_seconds"), ("mse", "mse_after"),
                             ("mse_before", "mse_before"))}
    return {**hist, "steps_done": [last], **solves}


def fit_audio(wave: np.ndarray, cfg: AudioFitConfig, show_progress: bool = True,
              rate: float | None = None) -> dict[str, Any]:
    """Fit one network to one waveform in ``[-1, 1]`` sampled at ``rate`` Hz (None: the factor is
    ``first_omega_0`` as given; with a rate, :meth:`AudioFitConfig.omega_0`).

    Returns
    -------
    dict
        ``model`` (on CPU), ``prediction`` ((N,) float64), ``mse`` (over all
        samples), ``history`` (``step``, ``loss``; with ``ls_every``, ``ls_step``,
        ``ls_cpu_seconds`` and ``ls_mse`` of each solve), ``steps_done``, ``cpu_seconds``
        (process time of the training loop), ``cpu_budget`` (the steps' budget,
        :meth:`AudioFitConfig.budget`; None: none), ``seconds`` (wall time) and
        ``first_omega_0`` (the factor used).
    """
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    n = wave.size
    if rate is not None:
        cfg = replace(cfg, first_omega_0=cfg.omega_0(n, rate))
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = _make_model(cfg, n).to(device)
    t = time_grid(n).to(device)
    target = torch.as_tensor(wave.reshape(-1, 1), dtype=torch.float32, device=device)
    c0, t0 = time.process_time(), time.perf_counter()
    hist = _train(model, t, target, cfg, show_progress)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    model = model.cpu().eval()
    pred = _predict(model, time_grid(n)).reshape(-1).numpy().astype(np.float64)
    return dict(
        model=model,
        prediction=pred,
        mse=float(np.mean((pred - wave) ** 2)),
        history={k: np.asarray(v) for k, v in hist.items() if k != "steps_done"},
        steps_done=int(hist.get("steps_done", [cfg.steps])[0]),
        cpu_seconds=cpu,
        cpu_budget=cfg.budget(n),
        seconds=wall,
        first_omega_0=cfg.first_omega_0,
    )


def plot_audio_figure(wave: np.ndarray, rate: int, results: dict[str, dict[str, Any]],
                      path: str | Path) -> Path:
    """Waveform (ground truth and fit) and residual per architecture, over
    the whole clip and over a 20 ms window at its middle."""
    from pinnsiren.plotting import pyplot, save_figure

    plt = pyplot()
    n = wave.size
    time_s = np.arange(n) / rate
    mid, half = n // 2, max(1, int(0.01 * rate))
    win = slice(max(0, mid - half), min(n, mid + half))
    fig, axes = plt.subplots(len(results), 3, figsize=(13, 2.4 * len(results)), squeeze=False)
    for i, (arch, res) in enumerate(results.items()):
        ax = axes[i]
        ax[0].plot(time_s, wave, lw=0.3, color="0.5", label="ground truth")
        ax[0].plot(time_s, res["prediction"], lw=0.3, color="C0", alpha=0.8, label=arch)
        ax[0].set_title(f"{arch}: MSE {res['mse']:.2e}", fontsize=9)
        ax[1].plot(time_s[win], wave[win], color="0.5", lw=1.0)
        ax[1].plot(time_s[win], res["prediction"][win], color="C0", lw=0.8, ls="--")
        ax[1].set_title("20 ms at the middle", fontsize=9)
        ax[2].plot(time_s, res["prediction"] - wave, lw=0.3, color="C3")
        ax[2].set_ylim(-1, 1)
        ax[2].set_title("residual", fontsize=9)
        ax[0].set_ylim(-1.05, 1.05)
        ax[0].legend(fontsize=7, loc="upper right")
    for a in axes[-1]:
        a.set_xlabel("time [s]")
    return save_figure(fig, path, dpi=100)


def write_wav(path: str | Path, wave: np.ndarray, rate: int) -> Path:
    """Write a waveform in ``[-1, 1]`` as 16-bit PCM."""
    from scipy.io import wavfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16))
    return path


def run(
    path: str | Path | None,
    archs: Sequence[str],
    out: str | Path,
    seconds: float | None = None,
    start: float = 0.0,
    show_progress: bool = True,
    cfg: AudioFitConfig | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Fit the clip with each architecture; write ``audio_fit.h5``,
    ``audio_fit.png`` and ``audio_fit_<arch>.wav``.

    The settings are ``cfg`` (default ``AudioFitConfig()``) with any
    :class:`AudioFitConfig` field given in ``settings`` replaced (``steps=``,
    ``lr=``, ``batch=``, ``first_omega_0=``...); ``arch`` is set per fit.
    """
    check_architectures(archs)
    src = Path(path) if path is not None else DEFAULT_WAV
    wave, rate = load_wav(src, seconds, start)
    base = fit_config(AudioFitConfig, cfg, settings)
    results = fit_each(archs, base, lambda c: fit_audio(wave, c, show_progress=show_progress, rate=rate),
                       lambda r, n: f"MSE {r['mse']:.3e} after {r['steps_done']} steps ({r['cpu_seconds']:.1f} CPU s"
                                    + (f", budget {r['cpu_budget']:.0f} s)" if r["cpu_budget"] is not None else ")"))
    out = Path(out)
    h5 = write_fits(out / "audio_fit.h5", "audio-fit", results, ("wave", wave),
                    config=dict(wav=str(src), start=start, seconds=seconds, rate=rate, samples=int(wave.size),
                                first_omega_0=base.omega_0(wave.size, rate)),
                    metrics={**{f"mse_{a}": r["mse"] for a, r in results.items()},
                             **{f"cpu_seconds_{a}": r["cpu_seconds"] for a, r in results.items()}},
                    field_attrs={"wave": {"bounds": [[-1, 1]], "rate": rate}})
    png = plot_audio_figure(wave, rate, results, out / "audio_fit.png")
    wavs = {a: write_wav(out / f"audio_fit_{a}.wav", r["prediction"], rate) for a, r in results.items()}
    print(f"wrote {h5}, {png} and {len(wavs)} WAV file(s)")
    return dict(results=results, h5=h5, png=png, wavs=wavs, wave=wave, rate=rate)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default=None,
                   help="WAV file (default: ../shared/data/siren/gt_bach.wav)")
    p.add_argument("--arch", default="siren",
                   help=f"comma-separated architectures from {', '.join(ARCHITECTURES)} (default siren)")
    p.add_argument("--seconds", type=float, default=None, help="keep only the first SECONDS of the clip")
    p.add_argument("--start", type=float, default=0.0, help="start of the kept part in seconds (default 0)")
    p.add_argument("--out", default="results/audio_fit", help="output folder")
    p.add_argument("--recipe", choices=("cpu", "paper"), default="cpu",
                   help="cpu (default): the measured CPU recipe the flags below default to; paper: the paper's "
                        "(full batch, omega_0 3000, Adam 5e-5 constant, 2000 steps, no solve, no budget), with any "
                        "flag given a value other than its default applied on top")
    add_flags(p, AudioFitConfig, skip=("arch",),
              extra_help={"first_omega_0": "(on time in [-1, 1])"},
              choices={"ls_precision": tuple(LS_PRECISIONS), "schedule": SCHEDULES})


def main(args: argparse.Namespace) -> int:
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    cfg = from_args(AudioFitConfig, args, arch="siren")  # run() sets arch per fit
    if args.recipe == "paper":
        cpu = AudioFitConfig(arch="siren")
        cfg = AudioFitConfig.paper(**{f.name: getattr(cfg, f.name) for f in fields(AudioFitConfig)
                                      if getattr(cfg, f.name) != getattr(cpu, f.name)})
    run(args.path, archs, args.out, seconds=args.seconds, start=args.start, cfg=cfg)
    return 0
