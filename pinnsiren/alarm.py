"""Failure alarm: notice a run that is failing without a NaN, and say which term.

Three symptoms, each measured on the same fixed evaluation sample (its own
random generator, so the alarm never changes the training run), and a fourth
when the run is checked against a grid solver:

``collapse``
    after ``min_step`` steps the network's output hardly varies over the
    sample any more: the standard deviation of every channel is below
    ``collapse_tol`` (5 %) of its value at initialisation (or below 1e-8
    outright) while some term is still at its zero-field loss: a trivial
    field (u ≈ const, often u ≡ 0). A solution whose
    true variation is that small compared with the initial network's
    (about 0.02-0.5 for a SIREN) also trips it: give such a field an
    output scale (``Normalized(..., scale=...)``);
``stuck``
    after ``warmup`` of the run (and at least ``min_step`` steps), a term still sits at its
    *zero-field value*, within a factor ``1 / stuck_ratio`` either way, and has been there at
    every check so far (a term that was ever clearly away from it is being acted on; its loss when the network
    outputs 0 everywhere, or, for an exact-imposition model ``u = g + phi * net``, when ``u = g``: see
    :func:`baseline`; only terms whose zero-field value is at least 1 % of
    all terms' together count), carries at least a tenth of the total loss and,
    falling at its rate over the last check interval, would still be in that band at
    the end of the run's ``steps``: the optimiser is ignoring that constraint (a term
    coming down slowly but surely, as a wave's initial value does while its time window
    grows, is not);
``grid`` (with ``train(..., verify="grid")``)
    at the end, a field differs from the grid solver's solution of the same
    Problem by more than 5 % relative L2 and by more than twice the grid's own
    change between two resolutions (:mod:`pinnsiren.verify`);
``generalisation``
    at the end, a term on a fresh sample (``fresh_factor`` times more points,
    new seed) is above ``gap_factor`` times its training value and above
    1e-8 and 1 % of all terms' fresh losses: the residual is small only where
    the network was trained.

Every finished run gets :attr:`Alarm.report`: per constraint the loss on the
fresh sample, the last training loss, the zero-field loss, and the
alarms raised. ``mode="warn"`` issues a :class:`TrainingAlarmWarning`,
``mode="raise"`` stops with :class:`TrainingAlarm`, ``mode="off"`` does
nothing at all (not even the final report).
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import torch
from torch import nn

__all__ = ["Alarm", "TrainingAlarm", "TrainingAlarmWarning", "ALARM_MODES"]

ALARM_MODES = ("off", "warn", "raise")


class TrainingAlarm(RuntimeError):
    """A training run is failing; the message names the symptom, the term and what to do."""


class TrainingAlarmWarning(UserWarning):
    """Warning form of :class:`TrainingAlarm`."""


ADVICE = {
    "collapse": "the network collapsed to a trivial field. Lower the learning rate (SIREN with omega_0 = 30: "
                "about 1e-4), turn on loss balancing (aids=[GradNorm()]), or impose the boundary/initial "
                "values exactly; see docs/training.md",
    "stuck": "the optimiser is ignoring this constraint. Turn on loss balancing (aids=[GradNorm()]), "
             "lower the learning rate, or impose that condition exactly; see docs/training.md",
    "grid": "the network's field is not the grid solver's solution of the same Problem, though the loss terms "
            "may look small (a nearly singular operator, e.g. a Helmholtz k near a resonance, or a field held "
            "only through its gradient, e.g. a pressure). Train longer or with TrainConfig.recommended, check "
            "that the problem is well posed, and look at the field with pinnsiren compare",
    "generalisation": "the residual is small only on the training points. Use more points per step "
                      "(n=...), adaptive sampling (Adam(sampler=RAD())), or fewer steps at the end of the "
                      "schedule; see docs/training.md",
}


class _Zero(nn.Module):
    """The model times 0: the zero field, with derivatives, on any derivative path."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.0 * self.model(x)


def baseline(model: nn.Module) -> nn.Module:
    """What the model is when its network contributes nothing: the reference of "zero-field" losses.

    For a plain network the zero field. For an exact-imposition wrapper
    ``u = g + phi * net`` (:class:`pinnsiren.ExactDirichlet`, nested ones
    too) the lift ``g``: the wrapper with its network's output times 0, since
    ``u = 0`` is not a field such a model can take. A term still at this
    value is one the network has not acted on.
    """
    from .transforms import ExactDirichlet  # noqa: PLC0415 (transforms imports the engine; keep alarm light)

    if not isinstance(model, ExactDirichlet):
        return _Zero(model)
    lifted = copy.copy(model)
    lifted._modules = dict(model._modules)  # a shallow copy shares the submodule table: give it its own
    lifted.net = baseline(model.net)
    return lifted


def _losses(problem: Any, model: nn.Module, step: int, seed: int) -> dict[str, float]:
    g = torch.Generator()
    g.manual_seed(seed)
    with torch.enable_grad():
        terms = problem.losses(model, step, g)
    return {k: float(v.detach()) for k, v in terms.items()}


def _probe_points(problem: Any, model: nn.Module, seed: int) -> torch.Tensor | None:
    """Points of the problem's largest sampled constraint (for the field statistics), or None."""
    cons = getattr(problem, "constraints", None)
    if not isinstance(cons, dict) or not cons:
        return None
    g = torch.Generator()
    g.manual_seed(seed)
    best = max(cons.values(), key=lambda c: c.n or 0)
    x, _ = best.where.sample(min(best.n or 1024, 1024), 0, g)
    p = next(iter(model.parameters()), None)
    return x.to(device=p.device, dtype=p.dtype) if p is not None else x.float()


class Alarm:
    """Watches a run; see the module doc.

    Parameters
    ----------
    problem, model
        As given to the trainer.
    mode : {"off", "warn", "raise"}
    steps : int
        Planned Adam steps (for the warm-up).
    seed : int
        Seed of the evaluation samples (kept apart from training).
    collapse_tol, stuck_ratio, warmup, gap_factor, fresh_factor
        Thresholds (see module doc).
    min_step : int
        No stuck-term verdict before this step (nor before ``warmup`` of the run).
    """

    def __init__(self, problem: Any, model: nn.Module, mode: str = "warn", steps: int = 1000, seed: int = 0,
                 collapse_tol: float = 0.05, stuck_ratio: float = 0.5, warmup: float = 0.2,
                 gap_factor: float = 10.0, fresh_factor: int = 4, min_step: int = 100) -> None:
        if mode not in ALARM_MODES:
            raise ValueError(f"unknown alarm mode {mode!r}; must be one of {ALARM_MODES}")
        self.problem, self.mode, self.steps = problem, mode, steps
        self.seed = 7919 + 104729 * seed
        self.collapse_tol, self.stuck_ratio, self.warmup = collapse_tol, stuck_ratio, warmup
        self.gap_factor, self.fresh_factor, self.min_step = gap_factor, fresh_factor, min_step
        self.alarms: list[dict[str, Any]] = []
        self.report: dict[str, dict[str, float]] = {}
        self._last: dict[str, float] | None = None
        self._last_step = 0
        self._left: set[str] = set()
        if mode == "off":
            return
        base = baseline(model)
        self.zero = _losses(problem, base, 0, self.seed)
        #: for an exact-imposition model the zero-field value is the lift's (said in the messages)
        self.lifted = not isinstance(base, _Zero)
        self.points = _probe_points(problem, model, self.seed)
        self.std0 = self._std(model)

    def _std(self, model: nn.Module) -> torch.Tensor | None:
        if self.points is None:
            return None
        with torch.no_grad():
            y = model(self.points)
        return y.std(0) if y.shape[0] > 1 else None

    def _fire(self, kind: str, step: int, term: str | None, detail: str) -> None:
        name = f" in term {term!r}" if term else ""
        msg = f"training alarm at step {step}: {kind}{name}: {detail}. What to do: {ADVICE[kind]}."
        self.alarms.append(dict(kind=kind, step=step, term=term, message=msg))
        if self.mode == "raise":
            raise TrainingAlarm(msg)
        warnings.warn(msg, TrainingAlarmWarning, stacklevel=3)

    def check(self, model: nn.Module, step: int) -> None:
        """Look for a collapse or a stuck term now (call every few hundred steps)."""
        if self.mode == "off" or step < self.min_step:
            return
        now = _losses(self.problem, model, step, self.seed)
        total = sum(now.values())
        zsum = sum(self.zero.values())
        # a term counts only if its zero-field loss is not negligible next to the others' (an inequality or
        # prior that is ~0 for the zero field, e.g. a hinge, never does)
        # "at its zero-field value": within a factor 1/stuck_ratio of it either way. A term far above it is
        # being acted on (a source building up its field makes its residual grow first), not ignored.
        at_zero = [k for k, v in now.items()
                   if self.zero.get(k, 0.0) > max(1e-12, 0.01 * zsum)
                   and self.stuck_ratio * self.zero[k] <= v <= self.zero[k] / self.stuck_ratio]
        # a term that has been clearly away from its zero-field value at some check is being acted on:
        # later visits to the band (a source-driven residual coming down through it) are not "stuck"
        self._left.update(k for k in now if self.zero.get(k, 0.0) > max(1e-12, 0.01 * zsum) and k not in at_zero)
        std = self._std(model)
        if std is not None and self.std0 is not None and not any(a["kind"] == "collapse" for a in self.alarms):
            low = (std < self.collapse_tol * self.std0) | (std < 1e-8)
            if bool(low.all()) and at_zero:  # the spread fell while a term sits at its zero-field loss
                names = ", ".join(repr(k) for k in at_zero) or "none"
                self._fire("collapse", step, at_zero[0] if len(at_zero) == 1 else None,
                           f"output std {float(std.max()):.2e} vs {float(self.std0.max()):.2e} at the start; "
                           f"terms still at their zero-field value: {names}")
        if step >= self.warmup * self.steps and self._last is not None:
            for k in (k for k in at_zero if k not in self._left):
                v, prev = now[k], self._last.get(k, now[k])
                if v < 0.1 * total or self._leaving(v, prev, self.zero[k], step):
                    continue
                if any(a["kind"] == "stuck" and a["term"] == k for a in self.alarms):
                    continue
                lift = " (the loss of the lift u = g alone: the network has not improved on it)" if self.lifted else ""
                self._fire("stuck", step, k, f"loss {v:.3e} is still {v / self.zero[k]:.0%} of its zero-field "
                           f"value {self.zero[k]:.3e}{lift} and {v / total:.0%} of the total")
        self._last, self._last_step = now, step

    def _leaving(self, v: float, prev: float, zero: float, step: int) -> bool:
        """Whether a term falling from ``prev`` to ``v`` over the last interval would, at that rate, leave
        the zero-field band (below ``stuck_ratio * zero``) by the end of the run: it is being acted on."""
        if v <= 0:
            return True
        if prev <= v:  # not falling at all
            return False
        interval = max(step - self._last_step, 1)
        left = max(self.steps - step, 0) / interval
        return math.log(v / (self.stuck_ratio * zero)) <= left * math.log(prev / v)

    def finish(self, model: nn.Module, step: int, train_terms: dict[str, float]) -> dict[str, dict[str, float]]:
        """Final report on a fresh sample; raises the generalisation alarm where due."""
        if self.mode == "off":
            return {}
        self.check(model, step)
        fresh = self._fresh(model, step)
        for k, v in fresh.items():
            tr = train_terms.get(k, float("nan"))
            self.report[k] = dict(fresh=v, train=tr, zero_field=self.zero.get(k, float("nan")))
        fsum = sum(r["fresh"] for r in self.report.values())
        for k, r in self.report.items():
            # a term that is negligible next to the others on the fresh sample too (a prior that is ~0) is not a gap
            if r["fresh"] > max(1e-8, 0.01 * fsum) and r["fresh"] > self.gap_factor * r["train"]:
                self._fire("generalisation", step, k, f"loss on a fresh sample {r['fresh']:.3e} vs "
                           f"{r['train']:.3e} in training")
        for k, r in self.report.items():
            r["alarms"] = [a["kind"] for a in self.alarms if a["term"] in (k, None)]
        return self.report

    def verdict(self, verification: dict[str, Any], step: int) -> None:
        """Raise the ``grid`` alarm for each field an independent check found off (see pinnsiren.verify)."""
        if self.mode == "off" or not verification.get("available"):
            return
        for name in verification.get("disagree", []):
            row = verification["table"][name]
            own = (verification.get("grid_self") or {}).get(name)
            grid = f"{verification.get('grid')} nodes per axis"
            change = f"; the grid itself changes by {own:.2e} from {verification.get('coarse')} nodes" if own else ""
            est = (verification.get("grid_error") or {}).get(name)
            change += f", its own error is estimated at {est:.2e}" if est else ""
            self._fire("grid", step, None, f"field {name!r} differs from the grid solution ({grid}) by "
                       f"{row['rel_l2']:.3e} relative L2 (limit {row['limit']:.2e}){change}")

    def _fresh(self, model: nn.Module, step: int) -> dict[str, float]:
        cons = getattr(self.problem, "constraints", None)
        if isinstance(cons, dict) and hasattr(self.problem, "pointwise"):
            g = torch.Generator()
            g.manual_seed(self.seed + 1)
            p = next(iter(model.parameters()))
            out = {}
            for name, c in cons.items():
                n = None if c.n is None else c.n * self.fresh_factor
                x, data = c.where.sample(n, step, g)
                with torch.enable_grad():
                    out[name] = float(self.problem.pointwise(name, model, x.to(device=p.device, dtype=p.dtype),
                                                             data).detach().mean())
            return out
        return _losses(self.problem, model, step, self.seed + 1)
