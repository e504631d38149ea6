"""The signal fits' loss and their call of the one trainer (``fit image``, ``fit audio``, ``fit video``).

A signal fit is a problem like any other: :class:`ValueFit` is the plain MSE
between a network and target values at fixed coordinates, on a random
mini-batch drawn from the trainer's seeded CPU generator each step (or on all
points), and :func:`fit_values` trains it with
:func:`pinnsiren.train.train` (one Adam phase, the failure alarm off; the
trainer's progress bar, loss history and stop on a non-finite loss).
:func:`fit_trainer` is the :class:`~pinnsiren.train.TrainConfig` every signal
loop uses (inpainting and the hypernetwork too, with their own losses).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

import torch
from torch import nn

from pinnsiren.phases import Adam
from pinnsiren.settings import TrainerFlags
from pinnsiren.train import TrainConfig, train

__all__ = ["ValueFit", "fit_values", "fit_trainer", "train_history", "fit_each", "fit_config", "write_fits",
           "FitSettings"]

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


class ValueFit:
    """The loss ``mean((model(x) - y)^2)`` on ``batch`` points drawn (with replacement) from the trainer's
    generator each step, or on all N points when ``batch`` is ``None`` or at least N.

    ``x`` (N, d) and ``y`` (N, C) on the model's device; the indices are drawn on the CPU.

    The points are drawn uniformly, or with ``importance = a > 0`` from the mixture
    ``p_i = a |r_i| / sum |r| + (1 - a) / N`` of the residuals ``r_i`` over all N points (recomputed every
    ``refresh_every`` steps, from the first), each term weighted by ``1 / (N p_i)``: the batch loss stays an
    unbiased estimate of the MSE over all points while the gradient's variance falls where the error is
    concentrated (importance sampling for SGD, Katharopoulos & Fleuret 2018, "Not all samples are created
    equal"; for PINN points, Nabian, Gladstone & Meidani 2021). The uniform share bounds each weight by
    ``1 / (1 - a)``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int | None = None, importance: float = 0.0,
                 refresh_every: int = 1000, chunk: int = 65536) -> None:
        if not 0.0 <= importance < 1.0:
            raise ValueError(f"importance must be in [0, 1) (the residual's share of the sampling), got {importance!r}")
        if not isinstance(refresh_every, int) or refresh_every < 1:
            raise ValueError(f"refresh_every must be an integer >= 1, got {refresh_every!r}")
        self.x, self.y = x, y
        self.batch = batch if batch is not None and batch < x.shape[0] else None
        self.importance, self.refresh_every, self.chunk = importance, refresh_every, chunk
        self.cdf: torch.Tensor | None = None
        self.weight: torch.Tensor | None = None

    def refresh(self, model: nn.Module) -> None:
        """Recompute the sampling distribution from the residuals of ``model`` over all points."""
        from pinnsiren.evaluation import evaluate  # noqa: PLC0415 (the plain fit does not need it)

        n = self.x.shape[0]
        r = (evaluate(model, self.x, self.chunk) - self.y).abs().sum(1).double().cpu()
        total = float(r.sum())
        share = r / total if total > 0 and torch.isfinite(r).all() else torch.full_like(r, 1.0 / n)
        p = self.importance * share + (1.0 - self.importance) / n
        self.cdf = torch.cumsum(p, 0)
        self.weight = (1.0 / (n * p)).to(self.y.dtype).to(self.y.device)

    def _draw(self, model: nn.Module, step: int,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = self.x.shape[0]
        if self.importance == 0:
            return torch.randint(0, n, (self.batch,), generator=generator), None
        if self.cdf is None or step % self.refresh_every == 0:
            self.refresh(model)
        u = torch.rand(self.batch, generator=generator, dtype=torch.float64) * self.cdf[-1]
        idx = torch.searchsorted(self.cdf, u).clamp_max(n - 1)
        return idx, self.weight[idx.to(self.weight.device)]

    def losses(self, model: nn.Module, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        if self.batch is None:
            return {"mse": torch.mean((model(self.x) - self.y) ** 2)}
        idx, w = self._draw(model, step, generator)
        idx = idx.to(self.x.device)
        sq = (model(self.x[idx]) - self.y[idx]) ** 2
        return {"mse": torch.mean(sq if w is None else w[:, None] * sq)}


def fit_trainer(steps: int, lr: float, seed: int, device: Any, log_every: int, show_progress: bool) -> TrainConfig:
    """The trainer's settings of a signal fit: ``steps`` Adam steps at a constant ``lr``, the sampler seeded
    with ``seed``, the loss recorded every ``log_every`` steps and at the last, the alarm off."""
    return TrainConfig(phases=(Adam(steps, lr=lr),), alarm="off", seed=seed, device=str(device),
                       log_every=log_every, progress=show_progress)


def train_history(history: dict[str, list[float]], **terms: str) -> dict[str, list[float]]:
    """``step`` and ``loss`` of a trainer history, and each loss term ``loss.<term>`` under the name given
    (``train_history(h, data="data")``)."""
    return {"step": list(history["step"]), "loss": list(history["loss"]),
            **{name: list(history[f"loss.{term}"]) for name, term in terms.items()}}


def fit_values(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float,
               batch: int | None, seed: int, log_every: int, show_progress: bool = True) -> dict[str, list[float]]:
    """Train ``model`` so that ``model(x) ≈ y`` (``x`` (N, d), ``y`` (N, C), same device) by
    :func:`pinnsiren.train.train` on :class:`ValueFit`.

    Each step uses all N points, or ``batch`` random ones when ``batch < N``.
    Returns the history ``{"step": [...], "loss": [...]}`` (every
    ``log_every`` steps and the last). Raises
    :class:`~pinnsiren.train.NonFiniteLossError` (a ``FloatingPointError``)
    naming the step and the term when the loss becomes non-finite.
    """
    cfg = fit_trainer(steps, lr, seed, x.device, log_every, show_progress)
    return train_history(train(ValueFit(x, y, batch), model, cfg).history)
