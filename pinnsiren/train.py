"""Training loop for any problem on any model.

A *problem* is anything with ``losses(model, step, generator) -> dict[str,
Tensor]`` (fresh collocation samples each call, one scalar per constraint) and
optionally ``validate(model)`` and ``learnable_parameters()``;
:class:`pinnsiren.Problem` is one. The trainer adds: Adam with a learning-rate
schedule, an optional L-BFGS polish, gradient clipping, seeds, devices, tqdm
progress with the loss terms, periodic evaluation (error vs step), atomic
checkpoints with resume, and a stop with a diagnostic on a non-finite loss.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from . import distributed as _dist
from .io import atomic_torch_save
from .progress import progress

__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "train", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
SCHEDULES = ("constant", "cosine", "exponential")


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names step and term."""


@dataclass
class TrainConfig:
    """Settings of a training run.

    Parameters
    ----------
    steps : int
        Adam steps.
    lr : float
        Initial learning rate.
    schedule : {"constant", "cosine", "exponential"}
        Learning-rate schedule over ``steps`` (cosine decays to
        ``lr * final_lr_factor``; exponential reaches the same at the end).
    final_lr_factor : float
        End-of-schedule learning rate as a fraction of ``lr``.
    lbfgs_steps : int
        Optional L-BFGS iterations after Adam, on one fixed sample.
    grad_clip : float or None
        Clip the global gradient norm to this value.
    seed : int
        Seeds the model initialisation (when the trainer builds nothing, the
        caller seeds) and the collocation sampler.
    device : str
        ``"cpu"`` or ``"cuda"``.
    log_every : int
        Record loss terms every this many steps.
    eval_every : int
        Call the evaluation hook every this many steps (0 = never).
    checkpoint_every : int
        Write a checkpoint every this many steps (0 = never).
    checkpoint_dir : str or None
        Folder for ``checkpoint.pt``.
    resume : bool
        Continue from ``checkpoint_dir/checkpoint.pt`` when it exists.
    """

    steps: int = 1000
    lr: float = 1e-4
    schedule: str = "constant"
    final_lr_factor: float = 0.01
    lbfgs_steps: int = 0
    grad_clip: float | None = None
    seed: int = 0
    device: str = "cpu"
    log_every: int = 10
    eval_every: int = 0
    checkpoint_every: int = 0
    checkpoint_dir: str | None = None
    resume: bool = False
    progress: bool = True

    def validate(self) -> None:
        if self.steps < 0 or self.lbfgs_steps < 0:
            raise ValueError("steps and lbfgs_steps must be >= 0")
        if not (self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; must be one of {SCHEDULES}")
        if (self.checkpoint_every or self.resume) and not self.checkpoint_dir:
            raise ValueError("checkpoint_every/resume need checkpoint_dir (e.g. --out DIR)")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} requested but CUDA is not available; use --device cpu")


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: nn.Module
    history: dict[str, list[float]]
    steps_done: int
    seconds: float
    resumed_from: int = 0
    config: dict[str, Any] = field(default_factory=dict)


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    n = max(cfg.steps, 1)
    f = cfg.final_lr_factor
    if cfg.schedule == "cosine":
        return lambda s: f + (1 - f) * 0.5 * (1 + math.cos(math.pi * min(s, n) / n))
    if cfg.schedule == "exponential":
        return lambda s: f ** (min(s, n) / n)
    return lambda s: 1.0


def _check_finite(terms: dict[str, torch.Tensor], step: int) -> None:
    for name, v in terms.items():
        if not torch.isfinite(v.detach()).all():
            others = ", ".join(f"{k}={float(t.detach()):.3e}" for k, t in terms.items() if k != name)
            raise NonFiniteLossError(
                f"loss term {name!r} became {float(v.detach())} at step {step} "
                f"(other terms: {others or 'none'}). Lower the learning rate, add --grad-clip, "
                f"or check the coefficients/data of that constraint."
            )


def train(
    problem: Any,
    model: nn.Module,
    config: TrainConfig | None = None,
    evaluate: Callable[[nn.Module, int], dict[str, float]] | None = None,
    extra_parameters: Iterable[nn.Parameter] = (),
) -> TrainResult:
    """Train ``model`` on ``problem``.

    Parameters
    ----------
    problem
        Object with ``losses(model, step, generator) -> dict[str, Tensor]``.
    model : nn.Module
        Moved to ``config.device``.
    config : TrainConfig
    evaluate : callable, optional
        ``evaluate(model, step) -> {metric: float}``, called every
        ``config.eval_every`` steps and at the end (under ``torch.no_grad``
        is the hook's choice); recorded in ``history`` with ``eval_step``.
    extra_parameters
        Further learnable tensors (e.g. scalar PDE parameters); the problem's
        own ``learnable_parameters()`` are added automatically.

    Returns
    -------
    TrainResult
        ``history`` has ``step``, ``loss``, ``lr`` and one series per loss
        term (``loss.<name>``); evaluation series under their own names.
    """
    cfg = config or TrainConfig()
    cfg.validate()
    dp = _dist.DataParallel(cfg.device)  # distributed: identity in a plain run
    device = dp.device
    model = model.to(device)
    if hasattr(problem, "validate"):
        problem.validate(model)
    params = list(model.parameters()) + list(extra_parameters)
    for getter in ("learnable_parameters", "trainable_parameters"):
        if hasattr(problem, getter):
            params += [p for p in getattr(problem, getter)() if all(p is not q for q in params)]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    gen = torch.Generator()  # samplers draw on the CPU; points then move to the device
    gen.manual_seed(dp.seed(cfg.seed))  # distributed: rank-seeded stream (rank 0 = cfg.seed)
    history: dict[str, list[float]] = {"step": [], "loss": [], "lr": []}
    start = 0
    ckpt = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    state = dp.load(ckpt, device) if cfg.resume and ckpt is not None else None  # distributed: from rank 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(dp.generator_state(state, cfg.seed, int(state["step"])).cpu())  # distributed
        history = {k: list(v) for k, v in state["history"].items()}
        start = int(state["step"])
        for p, v in zip(params[len(list(model.parameters())):], state.get("extra", [])):
            with torch.no_grad():
                p.copy_(v)
    dp.broadcast(params, [model])  # distributed: every rank starts from rank 0's parameters

    def save(step: int) -> None:
        if ckpt is None:
            return
        n_model = len(list(model.parameters()))
        atomic_torch_save(
            dict(
                step=step,
                model=model.state_dict(),
                optimizer=opt.state_dict(),
                scheduler=sched.state_dict(),
                generator=gen.get_state(),
                history=history,
                extra=[p.detach() for p in params[n_model:]],
                **dp.checkpoint_extras(gen),  # distributed: every rank's sampler state
            ),
            ckpt,
        )

    def record_eval(step: int) -> None:
        if evaluate is None:
            return
        metrics = evaluate(model, step)
        history.setdefault("eval_step", []).append(step)
        for k, v in metrics.items():
            history.setdefault(k, []).append(float(v))

    t0 = time.perf_counter()
    model.train()
    bar = progress(range(start + 1, cfg.steps + 1), desc="train", disable=not cfg.progress,
                   initial=start, total=cfg.steps)
    for step in bar:
        opt.zero_grad(set_to_none=True)
        terms = problem.losses(model, step, gen)
        loss = sum(terms.values())
        _check_finite(terms, step)
        loss.backward()
        terms, loss = dp.all_reduce(params, terms, loss)  # distributed: average grads and logged terms
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            history["step"].append(step)
            history["loss"].append(float(loss.detach()))
            history["lr"].append(opt.param_groups[0]["lr"])
            for k, v in terms.items():
                history.setdefault(f"loss.{k}", []).append(float(v.detach()))
            bar.set_postfix({k[:12]: f"{float(v.detach()):.2e}" for k, v in terms.items()})
        if cfg.eval_every and step % cfg.eval_every == 0:
            record_eval(step)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            save(step)
    steps_done = max(start, cfg.steps)

    if cfg.lbfgs_steps:
        _lbfgs(problem, model, params, cfg, gen, steps_done, history, dp)
        steps_done += cfg.lbfgs_steps
    if evaluate is not None and (not history.get("eval_step") or history["eval_step"][-1] != steps_done):
        record_eval(steps_done)
    if cfg.checkpoint_every:
        save(cfg.steps)
    model.eval()
    return TrainResult(model=model, history=history, steps_done=steps_done,
                       seconds=time.perf_counter() - t0, resumed_from=start, config=asdict(cfg))


def _lbfgs(problem, model, params, cfg, gen, step0, history, dp=None) -> None:
    """L-BFGS polish on one fixed draw of collocation points."""
    fixed_gen_state = gen.get_state()
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.lbfgs_steps, history_size=50,
                            line_search_fn="strong_wolfe")
    last: dict[str, torch.Tensor] = {}

    def closure():
        gen.set_state(fixed_gen_state)
        opt.zero_grad(set_to_none=True)
        terms = problem.losses(model, step0, gen)
        _check_finite(terms, step0)
        loss = sum(terms.values())
        loss.backward()
        if dp is not None:  # distributed: the line search needs the global loss on every rank
            terms, loss = dp.all_reduce(params, terms, loss)
        last.clear()
        last.update(terms)
        return loss

    opt.step(closure)
    history["step"].append(step0 + cfg.lbfgs_steps)
    history["loss"].append(float(sum(v.detach() for v in last.values())))
    history["lr"].append(float("nan"))
    for k, v in last.items():
        history.setdefault(f"loss.{k}", []).append(float(v.detach()))
