"""How the trainer runs each phase of a :class:`~pinnsiren.train.TrainConfig` on a run's shared state.

:func:`run_phases` goes through the phases in order, skipping those a
resumed checkpoint had finished. An :class:`~pinnsiren.phases.Adam` phase
takes a fresh sample every step (adaptive when it has a sampler; causally
weighted with a :class:`~pinnsiren.phases.Causal` aid; balanced with
:class:`~pinnsiren.phases.GradNorm`), logs, evaluates, checkpoints and lets the
alarm look. An :class:`~pinnsiren.phases.LBFGS` phase minimises the loss the
previous phase ended with on fixed draws (:func:`pinnsiren.lbfgs.lbfgs_phase`).

Adaptive sampling never touches the user's problem: the phase trains on a
shallow copy whose constraints draw from RAD regions, and the alarm samples the
problem as declared.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Any, Callable

import torch

from .adaptive import AdaptiveRegion, causal_loss, time_index
from .lbfgs import lbfgs_phase
from .phases import LBFGS, RAD, Adam, Causal
from .progress import progress

__all__ = ["NonFiniteLossError", "run_phases", "lr_lambda", "sampled_problem"]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names step and term."""


def check_finite(terms: dict[str, torch.Tensor], step: int) -> None:
    for name, v in terms.items():
        if not torch.isfinite(v.detach()).all():
            others = ", ".join(f"{k}={float(t.detach()):.3e}" for k, t in terms.items() if k != name)
            raise NonFiniteLossError(
                f"loss term {name!r} became {float(v.detach())} at step {step} "
                f"(other terms: {others or 'none'}). Lower the learning rate, add --grad-clip, "
                f"or check the coefficients/data of that constraint."
            )


def run_phases(run: Any) -> tuple[int, dict[str, float]]:
    """Run what is left of each phase after the resume point; returns (global steps done, last loss terms).

    Phase ``i`` covers the steps after ``offset_i``, the planned steps of the
    phases before it. A checkpoint lies inside an Adam phase or at the end of
    the run: an Adam phase resumes at the checkpoint's step (with its optimiser
    state when the checkpoint was written in that phase); an L-BFGS phase that
    began before the checkpoint is not run again.
    """
    offset, done = 0, run.start
    last: dict[str, float] = {}
    for i, phase in enumerate(run.cfg.phases):
        start, offset = offset, offset + phase.steps
        if run.start >= offset or phase.steps == 0 or (isinstance(phase, LBFGS) and run.start > start):
            continue
        if isinstance(phase, Adam):
            last, done = adam_phase(run, i, phase, start, max(run.start - start, 0))
        else:
            run.record_eval_once(start)  # the previous phase's result, for comparison
            spent, last = lbfgs_run(run, phase, start)
            done = start + spent
    return done, last


def lr_lambda(phase: Adam, spent: Callable[[], float] | None = None) -> Callable[[int], float]:
    """The phase's learning-rate factor at local step ``s`` (0 .. steps).

    The schedule's progress is ``s / steps``; with ``phase.cpu_seconds`` and a
    ``spent()`` that returns the CPU seconds spent so far, it is the larger of that and the fraction of the CPU
    budget spent, so a run the budget stops still ends at the decayed rate (a
    schedule tied to the budget, Li, Yumer & Ramanan 2020, "Budgeted training").
    """
    n, f = max(phase.steps, 1), phase.final_lr_factor
    if phase.cpu_seconds is not None and spent is not None:
        budget = phase.cpu_seconds

        def progress(s: int) -> float:
            return min(max(s / n, spent() / budget), 1.0)
    else:

        def progress(s: int) -> float:
            return min(s, n) / n
    if phase.schedule == "cosine":
        return lambda s: f + (1 - f) * 0.5 * (1 + math.cos(math.pi * progress(s)))
    if phase.schedule == "exponential":
        return lambda s: f ** progress(s)
    return lambda s: 1.0


def sampled_problem(problem: Any, sampler: RAD | None) -> tuple[Any, dict[str, AdaptiveRegion]]:
    """``problem`` itself (no sampler), or a shallow copy whose sampled constraints draw by RAD; and the RAD
    regions by constraint name."""
    if sampler is None:
        return problem, {}
    cons = getattr(problem, "constraints", None)
    if not isinstance(cons, dict) or not hasattr(problem, "pointwise"):
        raise ValueError("RAD sampling needs a problem with constraints and pointwise() (a pinnsiren.Problem)")
    from .regions import PointSet  # noqa: PLC0415 (kept local: the trainer works on any problem object)

    wrappers = {name: AdaptiveRegion(c.where, sampler.pool * c.n, sampler.k, sampler.c) for name, c in cons.items()
                if not isinstance(c.where, (PointSet, AdaptiveRegion)) and c.n is not None}
    view = copy.copy(problem)
    view.constraints = {**cons, **{n: dataclasses.replace(cons[n], where=w) for n, w in wrappers.items()}}
    return view, wrappers


def _refresh(run: Any, adaptive: dict[str, AdaptiveRegion], step: int) -> None:
    """Redraw the RAD candidate pools from the current residuals."""
    ref = next(iter(run.model.parameters()))
    for name, region in adaptive.items():
        region.refresh(lambda x, d, n=name: run.problem.pointwise(n, run.model, x, d), step, run.gen,
                       ref.dtype, ref.device)


class _Spent:
    """CPU seconds since the phase began, read once per step; distributed, the ranks' largest, so every rank
    takes the same learning rates and stops at the same step."""

    def __init__(self, dp: Any) -> None:
        self.dp, self.c0, self.value = dp, time.process_time(), 0.0

    def tick(self) -> float:
        self.value = self.dp.agree(time.process_time() - self.c0, "max")
        return self.value

    def read(self) -> float:
        return self.value


def adam_phase(run: Any, index: int, phase: Adam, offset: int, local0: int) -> tuple[dict[str, float], int]:
    """Adam steps ``offset + local0 + 1 .. offset + phase.steps`` (fewer when ``phase.cpu_seconds`` runs out);
    returns the last step's loss terms and that step."""
    cfg = run.cfg
    clock = _Spent(run.dp) if phase.cpu_seconds is not None else None
    run.opt = torch.optim.Adam(run.params, lr=phase.lr)
    run.sched = torch.optim.lr_scheduler.LambdaLR(run.opt, lr_lambda(phase, spent=clock.read if clock else None))
    if local0 and run.state is not None and run.state.get("phase") == index and "optimizer" in run.state:
        run.opt.load_state_dict(run.state["optimizer"])
        run.sched.load_state_dict(run.state["scheduler"])
    problem, adaptive = sampled_problem(run.problem, phase.sampler)
    causal = cfg.aid(Causal)
    ti = time_index(getattr(run.problem, "coords", ()), causal.time) if causal else None
    if ti is not None and not hasattr(run.problem, "point_losses"):
        raise ValueError("causal weights need a problem with point_losses() (a pinnsiren.Problem)")
    alarm_every = cfg.alarm_every or max(cfg.adam_steps // 10, 1)
    end = offset + phase.steps
    run.model.train()
    bar = progress(range(offset + local0 + 1, end + 1), desc="adam", disable=not cfg.progress, initial=local0,
                   total=phase.steps)
    last: dict[str, float] = {}
    first, done = offset + local0 + 1, end
    for step in bar:
        if clock is not None and clock.tick() >= phase.cpu_seconds and step > first:
            done = step - 1  # the budget is spent: this step is not taken
            if done % cfg.log_every:
                run.log(done, last_loss, last, run.opt.param_groups[0]["lr"])
            break
        if adaptive and (step == first or step % phase.sampler.every == 0):
            _refresh(run, adaptive, step)
        terms, loss = _adam_step(run, problem, phase, step, ti, end)
        last, last_loss = {k: float(v.detach()) for k, v in terms.items()}, float(loss.detach())
        if step % cfg.log_every == 0 or step == end:
            run.log(step, last_loss, last, run.opt.param_groups[0]["lr"])
            bar.set_postfix({k[:12]: f"{v:.2e}" for k, v in last.items()})
        if cfg.eval_every and step % cfg.eval_every == 0:
            run.record_eval(step)
        if cfg.checkpoint is not None and cfg.checkpoint.every and step % cfg.checkpoint.every == 0:
            run.save(step, index)
        if step % alarm_every == 0 and step < end:
            run.alarm.check(run.model, step)
    return last, done


def _adam_step(run: Any, problem: Any, phase: Adam, step: int, ti: int | None,
               end: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One Adam step on a fresh sample: loss terms (causal if asked), balancing, clipping, schedule."""
    run.opt.zero_grad(set_to_none=True)
    if ti is None:
        terms = problem.losses(run.model, step, run.gen)
    else:
        log = step % run.cfg.log_every == 0 or step == end
        terms = _causal_terms(problem.point_losses(run.model, step, run.gen), ti, run.cfg.aid(Causal),
                              run.history if log else None)
    check_finite(terms, step)
    if run.balancer.due(step):
        for k, v in run.balancer.update(terms, run.params).items():
            run.history.setdefault(f"weight.{k}", []).append(v)
        run.history.setdefault("weight_step", []).append(step)
    loss = run.balancer.combine(terms)
    loss.backward()
    terms, loss = run.dp.all_reduce(run.params, terms, loss)  # distributed: average grads and logged terms
    if phase.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.params, phase.grad_clip)
    run.opt.step()
    run.sched.step()
    return terms, loss


def _causal_terms(point_losses: dict, ti: int, causal: Causal, history: dict | None) -> dict[str, torch.Tensor]:
    """Causally weighted terms; the smallest slab weight of each goes to ``history`` when given."""
    terms = {}
    for name, (x, p) in point_losses.items():
        t = x[:, ti]
        if float(t.max() - t.min()) > 0:
            terms[name], w = causal_loss(t, p, causal.eps, causal.bins)
            if history is not None:
                history.setdefault(f"causal_min.{name}", []).append(float(w.min()))
        else:
            terms[name] = p.mean()
    return terms


def _pooled(parts: list[dict]) -> dict:
    """Loss terms of several samples pooled into one draw: each term's mean over the samples."""
    return parts[0] if len(parts) == 1 else {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}


class _DrawSize:
    """Samples per L-BFGS draw: ``phase.batches``, doubled (up to ``phase.max_batches``) after a draw whose end
    point's loss on a fresh uniform sample of the same size is above ``phase.gap`` times its best loss there.

    The fresh samples come from their own generator, so a run whose draws never grow draws exactly the points
    it drew without the test. ``log`` keeps, per tested draw, ``(draw, fresh / fitted, batches after)``.
    """

    def __init__(self, run: Any, phase: LBFGS) -> None:
        self.run, self.phase, self.batches = run, phase, phase.batches
        self.best, self.log = math.inf, []
        self.gen = torch.Generator()
        self.gen.manual_seed(1000003 + 7919 * int(run.cfg.seed))

    def seen(self, loss: float) -> None:
        self.best = min(self.best, loss)

    def next_draw(self, d: int, step: int) -> None:
        """Before draw ``d``: test the previous draw's end point (the current parameters) and grow if due."""
        cap, best, self.best = self.phase.max_batches, self.best, math.inf
        if cap is None or d == 0 or self.batches >= cap or not 0 < best < math.inf:
            return
        with torch.enable_grad():
            parts = [self.run.problem.losses(self.run.model, step, self.gen) for _ in range(self.batches)]
            fresh = float(self.run.balancer.combine(_pooled(parts)).detach())
        ratio = self.run.dp.agree(fresh) / best  # distributed: one decision, so every rank's draws keep one size
        if ratio > self.phase.gap:
            self.batches = min(2 * self.batches, cap)
        self.log.append([float(d), ratio, float(self.batches)])


def lbfgs_run(run: Any, phase: LBFGS, offset: int) -> tuple[int, dict[str, float]]:
    """An L-BFGS phase; history steps continue from ``offset``, one per evaluation. Returns (evaluations, terms).

    With a sampler each draw but the last starts by refreshing the RAD pools at
    the current parameters; the last draw is uniform (the final point is
    chosen, and the alarm compares, on unbiased losses). With
    ``phase.max_batches`` the draws grow while they do not generalise
    (:class:`_DrawSize`).
    """
    problem, adaptive = sampled_problem(run.problem, phase.sampler)
    dtypes = [p.dtype for p in run.params]
    if phase.float64:
        for p in run.params:
            p.data = p.data.double()
    draws: dict[int, tuple[torch.Tensor, int]] = {}  # draw -> (sampler state, batches)
    size = _DrawSize(run, phase)

    def start_draw(d: int, remaining: int) -> None:
        size.next_draw(d, offset + phase.steps - remaining)
        if not phase.draw_every or remaining <= phase.draw_every:
            for region in adaptive.values():
                region.clear()
        elif adaptive:
            _refresh(run, adaptive, offset + phase.steps - remaining)
        draws[d] = (run.gen.get_state(), size.batches)

    def loss_fn(d: int):
        state, batches = draws[d]
        run.gen.set_state(state)
        parts = [problem.losses(run.model, offset, run.gen) for _ in range(batches)]
        terms = _pooled(parts)
        return run.balancer.combine(terms), terms

    def on_eval(k: int, loss: float, terms: dict[str, float]) -> None:
        size.seen(loss)
        if k % run.cfg.log_every == 0 and k < phase.steps:
            run.log(offset + k, loss, terms)
        if run.cfg.eval_every and k % run.cfg.eval_every == 0 and k < phase.steps:
            run.record_eval(offset + k)

    try:
        out = lbfgs_phase(loss_fn, run.params, phase.steps, on_eval, run.dp.all_reduce if run.dp.active else None,
                          phase.draw_every, start_draw)
    finally:
        for p, dt in zip(run.params, dtypes):
            p.data = p.data.to(dt)
    _log_lbfgs(run, offset, out)
    if size.log:
        run.history["lbfgs_growth"] = size.log
    return out["evaluations"], dict(out["best_terms"])


def _log_lbfgs(run: Any, offset: int, out: dict[str, Any]) -> None:
    """The phase's end point (the best evaluated one) and its summary in ``history``."""
    h, end = run.history, offset + out["evaluations"]
    if h["step"] and h["step"][-1] == end:  # replace: the model is left at the best point
        for k in [k for k in h if k in ("loss", "lr", "step") or k.startswith("loss.")]:
            h[k].pop()
    run.log(end, out["best_loss"], out["best_terms"])
    h["lbfgs"] = [float(out["evaluations"]), float(out["draws"]), out["best_loss"], out["first_loss"] or float("nan")]
    h["lbfgs_draws"] = [list(fb) for fb in out["per_draw"]]
