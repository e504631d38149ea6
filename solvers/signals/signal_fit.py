"""The regression loop shared by the signal pipelines (``fit audio``, ``fit video``).

Plain MSE between a network and target values at fixed coordinates, with
Adam, optional random mini-batches drawn from a seeded CPU generator, a
progress bar, a loss history and a stop on a non-finite loss.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

import torch
from torch import nn

from pinnsiren.progress import progress
from pinnsiren.settings import TrainerFlags

__all__ = ["fit_values", "fit_each", "fit_config", "write_fits", "step_loss", "log_step", "FitSettings"]

@dataclass
class FitSettings(TrainerFlags):
    """Steps, learning rate, seed, device and logging of a signal fit (documented in
    :class:`pinnsiren.settings.TrainSettings`); a fit's config inherits this and
    :class:`~pinnsiren.settings.ModelSettings`."""

    steps: int = 1000
    lr: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    log_every: int = 10
    """Record the loss every this many steps."""


def fit_config(cls: type, cfg: Any, settings: dict[str, Any]) -> Any:
    """The configuration a fit command's ``run`` works with: ``cfg`` (an instance of ``cls``, or ``None`` for
    ``cls()``) with the fields in ``settings`` replaced."""
    return replace(cfg, **settings) if cfg is not None else cls(**settings)


def step_loss(opt: torch.optim.Optimizer, loss: torch.Tensor, step: int, desc: str) -> float:
    """Backpropagate ``loss``, take one optimiser step, return the loss as a float; raise
    ``FloatingPointError`` naming ``desc`` and ``step`` when it is not finite."""
    loss.backward()
    opt.step()
    lv = float(loss.detach())
    if not math.isfinite(lv):
        raise FloatingPointError(f"{desc}: loss became {lv} at step {step}; lower --lr")
    return lv


def log_step(step: int, log_every: int, steps: int) -> bool:
    """Whether ``step`` (1-based) is recorded: every ``log_every`` steps and the last."""
    return step % log_every == 0 or step == steps


def fit_each(archs: Sequence[str], base: Any, fit: Callable[[Any], dict[str, Any]],
             describe: Callable[[dict[str, Any], int], str]) -> dict[str, dict[str, Any]]:
    """``fit(cfg)`` for each architecture (``base`` with ``arch`` replaced); each result gets its ``config``
    (a dict) and a printed line ``arch: describe(result, steps)``."""
    results: dict[str, dict[str, Any]] = {}
    for a in archs:
        cfg = replace(base, arch=a)
        results[a] = fit(cfg)
        results[a]["config"] = asdict(cfg)
        print(f"{a:>9s}: {describe(results[a], cfg.steps)}")
    return results


def write_fits(path: Any, kind: str, results: dict[str, dict[str, Any]], target: tuple[str, Any],
               config: dict[str, Any], metrics: dict[str, float], field_attrs: dict[str, Any],
               history: dict[str, Any] | None = None) -> Any:
    """Write the fits of one signal (a run per architecture, from :func:`fit_each`) with
    :func:`pinnsiren.io.write_result`: ``config`` and each run's under ``runs``, ``metrics``, each run's loss
    history as ``<arch>/<key>`` (and ``history``), the target ``(name, values)`` and every
    ``prediction_<arch>`` as fields, the models."""
    from pinnsiren.io import write_result

    name, values = target
    return write_result(
        path, kind=kind, config={**config, "runs": {a: r["config"] for a, r in results.items()}}, metrics=metrics,
        history={**{f"{a}/{k}": v for a, r in results.items() for k, v in r["history"].items()}, **(history or {})},
        fields={name: values, **{f"prediction_{a}": r["prediction"] for a, r in results.items()}},
        field_attrs=field_attrs, models={a: r["model"] for a, r in results.items()})


def fit_values(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float,
               batch: int | None, seed: int, log_every: int, desc: str,
               show_progress: bool = True) -> dict[str, list[float]]:
    """Train ``model`` so that ``model(x) ≈ y`` (``x`` (N, d), ``y`` (N, C), same device).

    Each step uses all N points, or ``batch`` random ones when ``batch < N``.
    Returns the history ``{"step": [...], "loss": [...]}`` (every
    ``log_every`` steps and the last). Raises ``FloatingPointError`` naming
    ``desc`` and the step when the loss becomes non-finite.
    """
    n = x.shape[0]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    hist: dict[str, list[float]] = {"step": [], "loss": []}
    bar = progress(range(1, steps + 1), desc=desc, disable=not show_progress)
    for step in bar:
        if batch is not None and batch < n:
            idx = torch.randint(0, n, (batch,), generator=gen).to(x.device)
            xb, yb = x[idx], y[idx]
        else:
            xb, yb = x, y
        opt.zero_grad(set_to_none=True)
        lv = step_loss(opt, torch.mean((model(xb) - yb) ** 2), step, desc)
        if log_step(step, log_every, steps):
            hist["step"].append(step)
            hist["loss"].append(lv)
            bar.set_postfix(loss=f"{lv:.2e}")
    return hist
