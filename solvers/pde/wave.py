"""Wave-equation initial value problem, neural vs the leapfrog FD solver.

Supplement §5.4-5.6: ``u_tt = c^2 Δu`` on ``[-1, 1]^2 x [0, T]``,
``u(0, x)`` a Gaussian of variance 5e-4 scaled to peak 0.02, ``u_t(0, x) =
0``. The time window of the collocation samples grows linearly from 0 to
``T`` over ``grow_steps`` (the paper's curriculum). Losses are L1 as in the
paper; the initial-condition weights play the role of its ``λ1, λ2``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import sympy
import torch
from torch import nn

from equations import wave as weq
from pinnsiren.evaluation import evaluate
from pinnsiren.networks import OutputScale
from pinnsiren.geometry import Box, SpaceTime
from pinnsiren.problem import Problem
from pinnsiren.regions import Cone, NearPoint
from pinnsiren.symbolic import Field
from pinnsiren.settings import ModelSettings, TrainSettings, add_flags, from_args
from pinnsiren.train import train

__all__ = ["WaveConfig", "pose", "solve", "run", "frame_mse"]


@dataclass
class WaveConfig(ModelSettings, TrainSettings):
    """Settings of one neural wave solve (defaults: CPU-sized, 128x3 and 1500 steps: ~6 CPU minutes per network).

    The paper: 512 x 3 SIREN, 115 000 points per step, lr 2e-5, time window
    grown over 100 000 steps (25 h on a Quadro RTX 6000).

    ``normalize_amplitude`` (default on; the paper trains on the physical
    amplitude 0.02): the problem is linear and homogeneous, so the network is
    trained on ``u / amplitude`` (initial peak 1) and wrapped in
    :class:`~pinnsiren.networks.OutputScale` for evaluation. This keeps the
    network's initial output (of order 1) from dwarfing the 0.02 pulse; see
    docs/benchmarks.md (wave section) for what it buys.

    ``cone_fraction`` (default 0.5; 0 is the paper's uniform sampling): that
    share of the PDE collocation points is drawn in the domain of influence
    of the initial pulse, ``|x| <= 3 sqrt(var) + c t``
    (:class:`~pinnsiren.regions.Cone`), as its own constraint ``pde_cone``
    with the PDE's weight; the rest stays uniform in the whole window.
    Uniform points alone almost never land on the thin travelling ring.
    """

    c: float = 1.0
    """Wave speed."""
    amplitude: float = 0.02
    """Peak of the initial Gaussian pulse (the paper: 0.02)."""
    var: float = 5e-4
    """Variance of the initial Gaussian pulse."""
    t_max: float = 0.4
    """End of the time window."""
    points: int = 4096
    """Collocation points per step (the paper: 115000)."""
    initial_points: int = 2048
    """Points on the initial slice t = 0 per step (half of them near the pulse)."""
    grow_fraction: float = 0.8
    """Share of the steps over which the time window grows from 0 to t_max."""
    weight_initial_value: float = 1000.0
    """Weight of the initial value condition."""
    weight_initial_velocity: float = 100.0
    """Weight of the initial velocity condition."""
    normalize_amplitude: bool = True
    """Train on u / amplitude (initial peak 1) instead of the physical amplitude (the paper)."""
    cone_fraction: float = 0.5
    """Share of PDE points drawn in the pulse's domain of influence |x| <= r0 + c t (0 = uniform only, as the paper)."""
    frames: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4)
    """Times of the snapshots compared with the FD solution."""
    grid_n: int = 256
    """FD reference grid nodes per axis."""
    eval_every: int = 0
    """Steps between evaluations of the frame error during training (0 = never)."""
    hidden: int = 128
    steps: int = 1500
    lr: float = 5e-4
    schedule: str = "cosine"

    def validate(self) -> None:
        self.check_arch()
        if not 0 < self.grow_fraction <= 1:
            raise ValueError(f"grow_fraction must be in (0, 1], got {self.grow_fraction}")
        if not 0 <= self.cone_fraction < 1:
            raise ValueError(f"cone_fraction must be in [0, 1), got {self.cone_fraction}")
        if any(t < 0 or t > self.t_max for t in self.frames):
            raise ValueError(f"frames {self.frames} must lie in [0, t_max={self.t_max}]")


def time_window(cfg: WaveConfig):
    """Curriculum: ``t`` sampled from ``[0, T(step)]``, T growing linearly to ``t_max``."""
    grow = max(1, int(cfg.grow_fraction * cfg.steps))

    def bounds(step: int):
        T = cfg.t_max * min(1.0, max(step, 1) / grow)
        return [(-1.0, 1.0), (-1.0, 1.0), (0.0, T)]

    return bounds


def pose(cfg: WaveConfig) -> Problem:
    x, y, t = sympy.symbols("x y t", real=True)
    u = Field("u", (x, y, t))
    peak = 1.0 if cfg.normalize_amplitude else cfg.amplitude
    f = peak * sympy.exp(-(x**2 + y**2) / (2 * sympy.Float(cfg.var)))
    terms = weq.wave_constraints(u, c=sympy.Float(cfg.c), f=f,
                                 weights=(1.0, cfg.weight_initial_value, cfg.weight_initial_velocity))
    space = [(-1.0, 1.0), (-1.0, 1.0)]
    slab = [(-1.0, 1.0), (-1.0, 1.0), (0.0, 0.0)]
    std = 3.0 * math.sqrt(cfg.var)
    n2 = cfg.initial_points // 2
    window = time_window(cfg)
    n_cone = int(round(cfg.cone_fraction * cfg.points))
    initial = SpaceTime(Box(space), (0.0, cfg.t_max), t_index=2).initial()
    cone = []
    if n_cone:
        cone = [terms["pde"].on(Cone((0.0, 0.0), std, cfg.c, lambda step: window(step)[2], space, 2),
                                n=n_cone, norm="l1", name="pde_cone")]
    return Problem([u], [x, y, t], [
        terms["pde"].on(Box(window), n=cfg.points - n_cone, norm="l1"),
        *cone,
        terms["initial_value"].on(initial, n=n2, norm="l1"),
        terms["initial_value"].on(NearPoint((0.0, 0.0, 0.0), std, slab), n=n2, norm="l1",
                                  name="initial_value_near"),
        terms["initial_velocity"].on(initial, n=n2, norm="l1"),
        terms["initial_velocity"].on(NearPoint((0.0, 0.0, 0.0), std, slab), n=n2, norm="l1",
                                     name="initial_velocity_near"),
    ])


def reference_frames(cfg: WaveConfig):
    from reference import solve_wave

    return solve_wave(cfg.grid_n, list(cfg.frames), c=cfg.c, order=4, amplitude=cfg.amplitude, var=cfg.var)


def predict_frame(model: nn.Module, X: np.ndarray, Y: np.ndarray, t: float, chunk: int = 32768) -> np.ndarray:
    pts = np.stack([X.ravel(), Y.ravel(), np.full(X.size, t)], 1)
    return evaluate(model, pts, chunk, lambda m, x: m(x)[:, 0]).astype(np.float64).reshape(X.shape)


def frame_errors(model: nn.Module, frames) -> tuple[list[float], list[float]]:
    """MSE and relative L2 error of the network against each FD snapshot, on the FD grid.

    The relative error (``||u - u_FD|| / ||u_FD||``) is the readable one: the
    pulse's peak is 0.02 and it covers little of the domain, so even the zero
    field has a tiny MSE.
    """
    mse, rel = [], []
    for fr in frames:
        X, Y = fr.grid.coords()
        d = predict_frame(model, X, Y, fr.params["t"]) - fr.values
        mse.append(float(np.mean(d**2)))
        rel.append(float(np.linalg.norm(d) / np.linalg.norm(fr.values)))
    return mse, rel


def frame_mse(model: nn.Module, frames) -> list[float]:
    """MSE of the network against each FD snapshot, on the FD grid (``|x| <= 1``)."""
    return frame_errors(model, frames)[0]


def solve(cfg: WaveConfig, frames=None) -> dict[str, Any]:
    cfg.validate()
    frames = frames if frames is not None else reference_frames(cfg)
    torch.manual_seed(cfg.seed)
    model = cfg.build_model(3, 1)
    scale = cfg.amplitude if cfg.normalize_amplitude else 1.0
    evaluate = ((lambda m, s: {"mean_frame_mse": float(np.mean(frame_mse(OutputScale(m, scale), frames)))})
                if cfg.eval_every else None)
    res = train(pose(cfg), model, cfg.train_config(), evaluate=evaluate)
    model = res.model.cpu()
    if cfg.normalize_amplitude:
        model = OutputScale(model, cfg.amplitude)
    mses, rels = frame_errors(model, frames)
    metrics = {f"mse_t{t:g}": v for t, v in zip(cfg.frames, mses)}
    metrics.update({f"rel_l2_t{t:g}": v for t, v in zip(cfg.frames, rels)})
    metrics.update(mean_frame_mse=float(np.mean(mses)), seconds=res.seconds)
    return dict(model=model, metrics=metrics, history=res.history, frame_mse=mses, frame_rel_l2=rels,
                config=asdict(cfg))


def plot_figure(results: dict[str, dict[str, Any]], frames, path: str | Path) -> Path:
    """Supplement Fig. 5 layout: rows FD then each network, columns the frame times, MSE per panel."""
    from pinnsiren.plotting import pyplot, save_figure

    plt = pyplot()

    rows = [("FD (leapfrog)", None)] + [(a, r) for a, r in results.items()]
    fig, axes = plt.subplots(len(rows), len(frames), figsize=(2.4 * len(frames), 2.5 * len(rows)), squeeze=False)
    v = 0.5 * max(float(np.abs(fr.values).max()) for fr in frames[1:]) if len(frames) > 1 else 0.02
    for j, fr in enumerate(frames):
        X, Y = fr.grid.coords()
        t = fr.params["t"]
        for i, (name, r) in enumerate(rows):
            img = fr.values if r is None else predict_frame(r["model"], X, Y, t)
            ax = axes[i, j]
            ax.imshow(img.T, origin="lower", extent=(-1, 1, -1, 1), cmap="RdBu_r", vmin=-v, vmax=v)
            ax.set_xticks([])
            ax.set_yticks([])
            title = f"t = {t:.2f}" if r is None else f"MSE {r['frame_mse'][j]:.1e} (rel {r['frame_rel_l2'][j]:.2f})"
            ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(name)
    return save_figure(fig, path, dpi=100)


def run(cfg: WaveConfig, archs: Sequence[str], out: str | Path) -> dict[str, Any]:
    from pinnsiren.io import write_result

    out = Path(out)
    t0 = time.perf_counter()
    frames = reference_frames(cfg)
    print(f"FD reference: {cfg.grid_n}^2 nodes, 4th order, {time.perf_counter() - t0:.1f} s")
    results = {}
    for a in archs:
        results[a] = solve(WaveConfig(**{**asdict(cfg), "arch": a}), frames)
        m, rl = results[a]["frame_mse"], results[a]["frame_rel_l2"]
        print(f"{a:>8s}: MSE (rel. L2) per frame "
              + ", ".join(f"t={t:g}: {v:.2e} ({e:.2f})" for t, v, e in zip(cfg.frames, m, rl)))
    fields = {f"fd_t{fr.params['t']:g}": fr.values for fr in frames}
    for a, r in results.items():
        for fr in frames:
            X, Y = fr.grid.coords()
            fields[f"{a}_t{fr.params['t']:g}"] = predict_frame(r["model"], X, Y, fr.params["t"])
    h5 = write_result(out / "wave.h5", kind="wave", config=dict(cfg=asdict(cfg), archs=list(archs)),
                      metrics={f"{k}_{a}": v for a, r in results.items() for k, v in r["metrics"].items()},
                      history={f"{a}/{k}": np.asarray(v) for a, r in results.items() for k, v in r["history"].items()},
                      fields=fields, models={a: r["model"] for a, r in results.items()},
                      problem=pose(cfg))  # the same Problem for every arch (stored as data; its window is a callable)
    png = plot_figure(results, frames, out / "wave.png")
    print(f"wrote {h5} and {png}")
    return dict(results=results, frames=frames, h5=h5, png=png)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="siren", help="comma-separated architectures (siren, tanh, ...)")
    p.add_argument("--out", default="results/wave")
    add_flags(p, WaveConfig, skip=("arch", "frames"),
              extra_help={"lr": "(the paper: 2e-5)", "hidden": "(the paper: 512)",
                          "schedule": "(the paper: constant)", "frames": "(five frames from 0 to --t-max)"})


def main(args: argparse.Namespace) -> int:
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    frames = tuple(round(args.t_max * i / 4, 6) for i in range(5))
    cfg = from_args(WaveConfig, args, arch="siren", frames=frames)  # run() sets arch per fit
    res = run(cfg, archs, args.out)
    print(json.dumps({a: r["metrics"] for a, r in res["results"].items()}, indent=1))
    return 0
