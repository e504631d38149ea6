"""Training loop for any problem on any model.

A *problem* is anything with ``losses(model, step, generator) -> dict[str,
Tensor]`` (fresh collocation samples each call, one scalar per constraint) and
optionally ``validate(model)`` and ``learnable_parameters()``;
:class:`pinnsiren.Problem` is one. The trainer adds: Adam with a learning-rate
schedule, an optional L-BFGS phase (:mod:`pinnsiren.lbfgs`; its budget in
gradient evaluations), gradient clipping, seeds, devices, tqdm
progress with the loss terms, periodic evaluation (error vs step), atomic
checkpoints with resume, and a stop with a diagnostic on a non-finite loss.

Training aids, each an option of :class:`TrainConfig` and off unless asked
for (``TrainConfig.recommended()`` turns on the measured set; see
docs/training.md): loss balancing by gradient norms
(:mod:`pinnsiren.balancing`), residual-based adaptive sampling and causal
weights in time (:mod:`pinnsiren.adaptive`), and the failure alarm
(:mod:`pinnsiren.alarm`, on by default as a warning), which also reports each
constraint's loss on a fresh sample at the end of every run.
"""

from __future__ import annotations

import dataclasses
import math
import time
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from . import distributed as _dist
from . import verify as _verify
from .adaptive import AdaptiveRegion, causal_loss, time_index
from .alarm import ALARM_MODES, Alarm, TrainingAlarm, TrainingAlarmWarning
from .balancing import BALANCERS, LossBalancer
from .io import atomic_torch_save
from .buffers import release_buffers
from .precision import BACKWARD_PRECISIONS, backward_precision
from .lbfgs import lbfgs_phase
from .progress import progress

__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "TrainingAlarm", "TrainingAlarmWarning", "train",
           "recommended_model", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
SCHEDULES = ("constant", "cosine", "exponential")
RESAMPLERS = ("none", "rad")


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
        L-BFGS phase after Adam (:mod:`pinnsiren.lbfgs`; strong-Wolfe line
        search): its budget in loss-and-gradient *evaluations* (line-search
        trials count), so ``steps + lbfgs_steps`` is the run's total number
        of gradient evaluations. Uses the balancing factors Adam ended with.
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
    progress : bool
        Show a tqdm progress bar with the current loss terms (on stderr).
        Turn it off in scripts that print machine-readable output.
    balance : {"none", "gradnorm"}
        Loss balancing: multiply each loss term by a factor updated every
        ``balance_every`` steps so that all terms pull with the same gradient
        norm (:mod:`pinnsiren.balancing`; factors recorded in ``history``
        as ``weight.<term>``).
    balance_every : int
        Steps between updates of the balancing factors.
    balance_momentum : float
        Weight of the old factor in their moving average.
    resample : {"none", "rad"}
        Residual-based adaptive sampling (RAD) of every sampled constraint
        (not point sets): every ``resample_every`` steps a pool of
        ``resample_pool`` times ``n`` candidates is drawn and later steps
        draw their points from it with probability
        ``∝ loss^rad_k / mean + rad_c`` (:mod:`pinnsiren.adaptive`).
    resample_every, resample_pool, rad_k, rad_c
        See ``resample``.
    causal_time : str, int or None
        Name (or column) of the time coordinate: each term whose points
        span a time interval is weighted causally, slab by slab
        (``causal_bins`` slabs, ``w_b = exp(-causal_eps * sum of earlier
        slab losses)``). Needs a problem with ``point_losses``
        (:class:`pinnsiren.Problem`).
    causal_eps, causal_bins
        See ``causal_time``.
    alarm : {"off", "warn", "raise"}
        Failure alarm (:mod:`pinnsiren.alarm`): collapse to a trivial field,
        a term stuck at its zero-field loss, a final loss on a fresh sample
        far above the training loss. ``"warn"`` warns, ``"raise"`` stops
        with :class:`TrainingAlarm`. Unless ``"off"``, the result carries
        ``report``: each constraint's loss on a fresh sample.
    alarm_every : int
        Steps between alarm checks (0: a tenth of ``steps``).
    lbfgs_draw_every : int
        L-BFGS evaluations per collocation draw (0: one fixed draw); each new
        draw restarts L-BFGS from the best point of the previous one.
    lbfgs_batches : int
        Samples of the problem (each of its ``n`` points per constraint)
        pooled into one L-BFGS draw: a larger fixed sample at that many
        times the cost per evaluation.
    lbfgs_resample : {"none", "rad"}
        How each L-BFGS draw is sampled: ``"none"`` uniformly from the
        constraints' regions; ``"rad"`` by RAD (see ``resample``; its
        ``resample_pool``, ``rad_k``, ``rad_c``) from a candidate pool
        drawn anew, with the current residual, at the start of every draw
        but the last, which stays uniform (the final point is chosen, and
        the alarm compares training and fresh losses, without the bias).
    lbfgs_float64 : bool
        Run the L-BFGS phase in double precision (the parameters are
        converted for the phase and back to their dtype after it): the line
        search and the curvature pairs then resolve changes float32 rounds
        away, at about twice the cost per evaluation on CPU. An evaluation
        hook called during the phase sees the double-precision model.
    backward_precision : {"full", "bfloat16"}
        Precision of the matrix products in the backward of the fused SIREN
        layers, in both phases (:func:`pinnsiren.jet.set_backward_precision`):
        ``"bfloat16"`` runs the input- and weight-gradient products (two
        thirds of a step's multiply-adds) with bfloat16 operands; the
        forward, the losses and the alarm stay exact, gradients carry a
        ~2e-3 relative error. ~1.3-1.4x faster steps where bfloat16 is
        native (AVX512-BF16/AMX CPUs); opt-in (docs/training.md measures
        training with it).
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
    balance: str = "none"
    balance_every: int = 100
    balance_momentum: float = 0.9
    resample: str = "none"
    resample_every: int = 100
    resample_pool: int = 8
    rad_k: float = 1.0
    rad_c: float = 1.0
    causal_time: str | int | None = None
    causal_eps: float = 1.0
    causal_bins: int = 16
    alarm: str = "warn"
    alarm_every: int = 0
    lbfgs_draw_every: int = 0
    lbfgs_batches: int = 1
    lbfgs_resample: str = "none"
    lbfgs_float64: bool = False
    backward_precision: str = "full"

    @classmethod
    def recommended(cls, steps: int = 3000, **changes: Any) -> "TrainConfig":
        """The measured default for a problem nobody has tuned (docs/training.md).

        ``steps`` is the whole budget of gradient evaluations: the first third
        Adam at 1e-4 with cosine decay to 1e-6 and loss balancing by gradient
        norms, the rest an L-BFGS phase (:mod:`pinnsiren.lbfgs`, a new
        collocation draw of three times the problem's points every 100
        evaluations, each draw sampled by RAD from the current residual);
        the alarm as a warning.
        Adaptive sampling in the Adam phase (``resample="rad"``) is opt-in:
        it hurt Burgers1d-C and Poisson2d-CG (docs/training.md). Pair it with
        :func:`recommended_model`. ``changes`` override fields (e.g.
        ``lbfgs_steps=0`` for Adam only: then set ``steps`` to the Adam steps).
        """
        lbfgs = steps - steps // 3
        base = dict(steps=steps - lbfgs, lr=1e-4, schedule="cosine", final_lr_factor=0.01, balance="gradnorm",
                    balance_every=100, resample="none", resample_every=100, alarm="warn", lbfgs_steps=lbfgs,
                    lbfgs_draw_every=100, lbfgs_batches=3, lbfgs_resample="rad")
        base.update(changes)
        return cls(**base)

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
        if self.balance not in BALANCERS:
            raise ValueError(f"unknown balance {self.balance!r}; must be one of {BALANCERS}")
        for k in ("resample", "lbfgs_resample"):
            if getattr(self, k) not in RESAMPLERS:
                raise ValueError(f"unknown {k} {getattr(self, k)!r}; must be one of {RESAMPLERS}")
        if self.alarm not in ALARM_MODES:
            raise ValueError(f"unknown alarm {self.alarm!r}; must be one of {ALARM_MODES}")
        if self.lbfgs_draw_every < 0:
            raise ValueError(f"lbfgs_draw_every must be >= 0, got {self.lbfgs_draw_every}")
        for k in ("balance_every", "resample_every", "resample_pool", "causal_bins", "lbfgs_batches"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.alarm_every < 0:
            raise ValueError(f"alarm_every must be >= 0, got {self.alarm_every}")
        if self.backward_precision not in BACKWARD_PRECISIONS:
            raise ValueError(f"unknown backward_precision {self.backward_precision!r}; "
                             f"must be one of {list(BACKWARD_PRECISIONS)}")


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: nn.Module
    history: dict[str, list[float]]
    steps_done: int
    seconds: float
    resumed_from: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    #: per constraint: loss on a fresh sample, last training loss, zero-field loss, alarms (see pinnsiren.alarm)
    report: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: every alarm raised (kind, step, term, message)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    #: with ``verify=``: the independent check's table and verdict (see pinnsiren.verify)
    verification: dict[str, Any] | None = None


def recommended_model(bounds: Any, out_features: int = 1, hidden_features: int = 128, hidden_layers: int = 3,
                      first_omega_0: float = 30.0, hidden_omega_0: float = 30.0) -> nn.Module:
    """The network that goes with :meth:`TrainConfig.recommended`: a SIREN on normalised coordinates.

    ``Normalized(Siren(d, C, 128, 3, first_omega_0=30), bounds)``: the network
    sees every coordinate (time included) mapped from the declared box
    ``bounds = [(lo, hi), ...]`` (or a region with ``bbox()``) to ``[-1, 1]``,
    so ``first_omega_0`` means the same on any domain; the PDE stays written in
    physical coordinates (the derivative engine applies the chain rule). Wrap
    the result in :class:`pinnsiren.ExactDirichlet` to impose Dirichlet or
    initial data exactly (docs/training.md).
    """
    from .networks import Siren  # noqa: PLC0415
    from .transforms import Normalized  # noqa: PLC0415

    if hasattr(bounds, "bbox"):
        bounds = bounds.bbox(0).tolist()
    d = len(bounds)
    return Normalized(Siren(d, out_features, hidden_features, hidden_layers, first_omega_0=first_omega_0,
                            hidden_omega_0=hidden_omega_0), bounds)


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
    verify: str | Callable[..., dict] | None = None,
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
    verify : str or callable, optional
        ``"grid"``: at the end, solve the declared problem on a grid and
        compare (:mod:`pinnsiren.verify`); the table goes to
        ``TrainResult.verification`` and a field that disagrees raises the
        failure alarm (kind ``"grid"``). For a model made by
        :func:`pinnsiren.impose_exactly` the problem as declared
        (``model.declared``) is checked, value conditions included.

    Returns
    -------
    TrainResult
        ``history`` has ``step``, ``loss``, ``lr`` and one series per loss
        term (``loss.<name>``); evaluation series under their own names.
    """
    cfg = config or TrainConfig()
    cfg.validate()
    run = _Run(problem, model, cfg, evaluate, extra_parameters)
    run.resume()
    t0 = time.perf_counter()
    with backward_precision(cfg.backward_precision, cfg.device) as precision:
        last_terms = run.adam_phase()
        steps_done = max(run.start, cfg.steps)
        if cfg.lbfgs_steps:
            run.record_eval_once(steps_done)  # the Adam phase's result, for comparison
            out = _lbfgs(problem, run.model, run.params, cfg, run.gen, steps_done, run.history, run.balancer,
                         run.dp, run.record_eval, run._refresh)
            steps_done += out["evaluations"]
            last_terms = {k[5:]: v[-1] for k, v in run.history.items() if k.startswith("loss.")}
    if cfg.backward_precision != "full" and steps_done > run.start and precision.layers == 0:
        warnings.warn(f"backward_precision={cfg.backward_precision!r} had no effect: no fused SIREN layer ran "
                      "(it serves SIREN models on the jet engine at points without grad; nested autograd, "
                      "MLPs and float64 models keep full precision)", stacklevel=2)
    run.record_eval_once(steps_done)
    if cfg.checkpoint_every:
        run.save(cfg.steps)
    report = run.alarm.finish(run.model, steps_done, last_terms) if steps_done > run.start else {}
    verification = None
    if verify is not None:
        verification = _verify.run(verify, getattr(run.model, "declared", problem), run.model)
        run.alarm.verdict(verification, steps_done)
    release_buffers()  # the derivative engine's work buffers are kept between steps only
    run.model.eval()
    return TrainResult(model=run.model, history=run.history, steps_done=steps_done,
                       seconds=time.perf_counter() - t0, resumed_from=run.start, config=asdict(cfg),
                       report=report, alarms=list(run.alarm.alarms), verification=verification)


def _collect_params(problem: Any, model: nn.Module, extra_parameters: Iterable[nn.Parameter]) -> list:
    """The model's parameters, the extra ones, then the problem's learnable ones (each once)."""
    params = list(model.parameters()) + list(extra_parameters)
    for getter in ("learnable_parameters", "trainable_parameters"):
        if hasattr(problem, getter):
            params += [p for p in getattr(problem, getter)() if all(p is not q for q in params)]
    return params


def _check_checkpoint_fits(model: nn.Module, saved: dict, path: Any) -> None:
    """Raise ``ValueError`` naming the first parameter whose shape differs between ``model`` and checkpoint."""
    own = model.state_dict()
    for k in sorted(set(own) | set(saved)):
        a, b = own.get(k), saved.get(k)
        if a is None or b is None or tuple(a.shape) != tuple(b.shape):
            want = "missing" if b is None else tuple(b.shape)
            have = "missing" if a is None else tuple(a.shape)
            from .validate import UsageError

            raise UsageError(f"--resume: checkpoint {path} was written by a different model ({k}: {want} in the "
                             f"checkpoint, {have} now); use the same --arch/--hidden/--layers or another --out")


class _Run:
    """One training run's state (optimiser, sampler stream, balancer, history, checkpoint) and its Adam phase."""

    def __init__(self, problem: Any, model: nn.Module, cfg: TrainConfig, evaluate: Callable | None,
                 extra_parameters: Iterable[nn.Parameter]) -> None:
        self.problem, self.cfg, self.evaluate = problem, cfg, evaluate
        self.dp = _dist.DataParallel(cfg.device)  # distributed: identity in a plain run
        self.model = model.to(self.dp.device)
        if hasattr(problem, "validate"):
            problem.validate(self.model)
        self.params = _collect_params(problem, self.model, extra_parameters)
        self.n_model = len(list(self.model.parameters()))
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(cfg))
        self.gen = torch.Generator()  # samplers draw on the CPU; points then move to the device
        self.gen.manual_seed(self.dp.seed(cfg.seed))  # distributed: rank-seeded stream (rank 0 = cfg.seed)
        self.balancer = LossBalancer(cfg.balance, cfg.balance_every, cfg.balance_momentum)
        self.history: dict[str, list[float]] = {"step": [], "loss": [], "lr": []}
        self.start = 0
        self.ckpt = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
        self.alarm: Alarm | None = None

    def resume(self) -> None:
        """Load the checkpoint when asked to resume and one exists; then align all ranks."""
        cfg, dp = self.cfg, self.dp
        state = dp.load(self.ckpt, dp.device) if cfg.resume and self.ckpt is not None else None  # from rank 0
        if state is not None:
            _check_checkpoint_fits(self.model, state["model"], self.ckpt)
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            self.gen.set_state(dp.generator_state(state, cfg.seed, int(state["step"])).cpu())  # distributed
            self.history = {k: list(v) for k, v in state["history"].items()}
            self.start = int(state["step"])
            self.balancer.load_state_dict(state.get("balancer", {}))
            for p, v in zip(self.params[self.n_model:], state.get("extra", [])):
                with torch.no_grad():
                    p.copy_(v)
            if _dist.is_writer():
                print(f"resuming from step {self.start} of {cfg.steps} ({self.ckpt})", file=sys.stderr, flush=True)
        dp.broadcast(self.params, [self.model])  # distributed: every rank starts from rank 0's parameters

    def save(self, step: int) -> None:
        if self.ckpt is None:
            return
        atomic_torch_save(
            dict(
                step=step,
                model=self.model.state_dict(),
                optimizer=self.opt.state_dict(),
                scheduler=self.sched.state_dict(),
                generator=self.gen.get_state(),
                history=self.history,
                extra=[p.detach() for p in self.params[self.n_model:]],
                **self.dp.checkpoint_extras(self.gen),  # distributed: every rank's sampler state
                balancer=self.balancer.state_dict(),
            ),
            self.ckpt,
        )

    def record_eval(self, step: int) -> None:
        if self.evaluate is None:
            return
        metrics = self.evaluate(self.model, step)
        self.history.setdefault("eval_step", []).append(step)
        for k, v in metrics.items():
            self.history.setdefault(k, []).append(float(v))

    def record_eval_once(self, step: int) -> None:
        """Evaluate at ``step`` unless that was the last evaluation."""
        if self.evaluate is not None and (not self.history.get("eval_step") or self.history["eval_step"][-1] != step):
            self.record_eval(step)

    def adam_phase(self) -> dict[str, float]:
        """Adam steps ``start + 1 .. cfg.steps`` with the aids; returns the last step's loss terms."""
        cfg, problem, model = self.cfg, self.problem, self.model
        self.alarm = Alarm(problem, model, cfg.alarm, cfg.steps, cfg.seed)
        alarm_every = cfg.alarm_every or max(cfg.steps // 10, 1)
        originals, adaptive = _wrap_adaptive(problem, cfg)
        ti = time_index(getattr(problem, "coords", ()), cfg.causal_time)
        if ti is not None and not hasattr(problem, "point_losses"):
            raise ValueError("causal_time needs a problem with point_losses() (a pinnsiren.Problem)")
        model.train()
        bar = progress(range(self.start + 1, cfg.steps + 1), desc="train", disable=not cfg.progress,
                       initial=self.start, total=cfg.steps)
        last_terms: dict[str, float] = {}
        try:
            for step in bar:
                if adaptive and (step == self.start + 1 or step % cfg.resample_every == 0):
                    self._refresh(adaptive, step)
                terms, loss = self.adam_step(step, ti)
                last_terms = {k: float(v.detach()) for k, v in terms.items()}
                if step % cfg.log_every == 0 or step == cfg.steps:
                    self.log(step, float(loss.detach()), last_terms)
                    bar.set_postfix({k[:12]: f"{v:.2e}" for k, v in last_terms.items()})
                if cfg.eval_every and step % cfg.eval_every == 0:
                    self.record_eval(step)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    self.save(step)
                if step % alarm_every == 0 and step < cfg.steps:
                    with _restored(problem, originals):
                        self.alarm.check(model, step)
        finally:
            _unwrap(problem, originals)
        return last_terms

    def _refresh(self, adaptive: dict[str, AdaptiveRegion], step: int) -> None:
        """Redraw the RAD candidate pools from the current residuals."""
        ref = next(iter(self.model.parameters()))
        for name, region in adaptive.items():
            region.refresh(lambda x, d, n=name: self.problem.pointwise(n, self.model, x, d), step, self.gen,
                           ref.dtype, ref.device)

    def adam_step(self, step: int, ti: int | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One Adam step on a fresh sample: loss terms (causal if asked), balancing, clipping, schedule."""
        cfg, problem = self.cfg, self.problem
        self.opt.zero_grad(set_to_none=True)
        if ti is None:
            terms = problem.losses(self.model, step, self.gen)
        else:
            terms = _causal_terms(problem.point_losses(self.model, step, self.gen), ti, cfg, self.history, step)
        _check_finite(terms, step)
        if self.balancer.due(step):
            for k, v in self.balancer.update(terms, self.params).items():
                self.history.setdefault(f"weight.{k}", []).append(v)
            self.history.setdefault("weight_step", []).append(step)
        loss = self.balancer.combine(terms)
        loss.backward()
        terms, loss = self.dp.all_reduce(self.params, terms, loss)  # distributed: average grads and logged terms
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        return terms, loss

    def log(self, step: int, loss: float, terms: dict[str, float]) -> None:
        self.history["step"].append(step)
        self.history["loss"].append(loss)
        self.history["lr"].append(self.opt.param_groups[0]["lr"])
        for k, v in terms.items():
            self.history.setdefault(f"loss.{k}", []).append(v)


def _wrap_adaptive(problem: Any, cfg: TrainConfig, mode: str | None = None) -> tuple[dict, dict[str, AdaptiveRegion]]:
    """Replace the sampled regions of ``problem`` by RAD regions (``mode``, default ``cfg.resample``); returns
    (originals, wrappers)."""
    if (mode or cfg.resample) == "none":
        return {}, {}
    cons = getattr(problem, "constraints", None)
    if not isinstance(cons, dict) or not hasattr(problem, "pointwise"):
        raise ValueError("resample='rad' needs a problem with constraints and pointwise() (a pinnsiren.Problem)")
    from .problem import PointSet  # noqa: PLC0415 (kept local: the trainer works on any problem object)

    originals, wrappers = {}, {}
    for name, c in cons.items():
        if isinstance(c.where, PointSet) or c.n is None or isinstance(c.where, AdaptiveRegion):
            continue
        wrappers[name] = AdaptiveRegion(c.where, cfg.resample_pool * c.n, cfg.rad_k, cfg.rad_c)
        originals[name] = c
        cons[name] = dataclasses.replace(c, where=wrappers[name])
    return originals, wrappers


def _unwrap(problem: Any, originals: dict) -> None:
    for name, c in originals.items():
        problem.constraints[name] = c


class _restored:
    """Context: the problem's own regions back in place (for the alarm's unbiased samples)."""

    def __init__(self, problem: Any, originals: dict) -> None:
        self.problem, self.originals, self.saved = problem, originals, {}

    def __enter__(self):
        if self.originals:
            self.saved = {k: self.problem.constraints[k] for k in self.originals}
            _unwrap(self.problem, self.originals)
        return self

    def __exit__(self, *exc):
        for k, c in self.saved.items():
            self.problem.constraints[k] = c
        return False


def _causal_terms(point_losses: dict, ti: int, cfg: TrainConfig, history: dict, step: int) -> dict[str, torch.Tensor]:
    terms = {}
    for name, (x, p) in point_losses.items():
        t = x[:, ti]
        if float(t.max() - t.min()) > 0:
            terms[name], w = causal_loss(t, p, cfg.causal_eps, cfg.causal_bins)
            if step % cfg.log_every == 0 or step == cfg.steps:
                history.setdefault(f"causal_min.{name}", []).append(float(w.min()))
        else:
            terms[name] = p.mean()
    return terms


def _lbfgs(problem, model, params, cfg, gen, step0, history, balancer, dp, record_eval, refresh) -> dict:
    """L-BFGS phase on fixed draws of collocation points (:mod:`pinnsiren.lbfgs`); logs into ``history``.

    The loss is the Adam phase's: the balancing factors it ended with, frozen.
    History steps continue from ``step0``, one per evaluation. With
    ``lbfgs_resample="rad"`` each draw but the last starts by refreshing the
    RAD pools (``refresh(adaptive, step)``) at the current parameters; the
    last draw is uniform.
    """
    originals, adaptive = _wrap_adaptive(problem, cfg, cfg.lbfgs_resample)
    dtypes = [p.dtype for p in params]
    if cfg.lbfgs_float64:
        for p in params:
            p.data = p.data.double()

    def redraw(step: int, last: bool) -> None:
        if last:  # the last draw is uniform: the final point is chosen, and the alarm compares, on unbiased losses
            for region in adaptive.values():
                region.clear()
        elif adaptive:
            refresh(adaptive, step)

    try:
        return _lbfgs_draws(problem, model, params, cfg, gen, step0, history, balancer, dp, record_eval, redraw)
    finally:
        _unwrap(problem, originals)
        for p, dt in zip(params, dtypes):
            p.data = p.data.to(dt)


def _lbfgs_draws(problem, model, params, cfg, gen, step0, history, balancer, dp, record_eval, refresh) -> dict:
    draws: dict[int, torch.Tensor] = {}  # draw -> sampler state; draw d+1 continues the stream after draw d

    def start_draw(d, remaining):
        refresh(step0 + cfg.lbfgs_steps - remaining, not cfg.lbfgs_draw_every or remaining <= cfg.lbfgs_draw_every)
        draws[d] = gen.get_state()

    def loss_fn(d):
        gen.set_state(draws[d])
        parts = [problem.losses(model, step0, gen) for _ in range(cfg.lbfgs_batches)]
        terms = parts[0] if len(parts) == 1 else {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
        return balancer.combine(terms), terms

    def log(step, loss, terms):
        history["step"].append(step)
        history["loss"].append(loss)
        history["lr"].append(float("nan"))
        for name, v in terms.items():
            history.setdefault(f"loss.{name}", []).append(v)

    def on_eval(k, loss, terms):
        if k % cfg.log_every == 0 and k < cfg.lbfgs_steps:
            log(step0 + k, loss, terms)
        if cfg.eval_every and k % cfg.eval_every == 0 and k < cfg.lbfgs_steps:
            record_eval(step0 + k)

    out = lbfgs_phase(loss_fn, params, cfg.lbfgs_steps, on_eval,
                      dp.all_reduce if dp is not None and dp.active else None, cfg.lbfgs_draw_every, start_draw)
    end = step0 + out["evaluations"]
    if history["step"] and history["step"][-1] == end:  # replace: the model is left at the best point
        for k in [k for k in history if k == "loss" or k == "lr" or k == "step" or k.startswith("loss.")]:
            history[k].pop()
    log(end, out["best_loss"], out["best_terms"])
    history["lbfgs"] = [float(out["evaluations"]), float(out["draws"]), out["best_loss"],
                        out["first_loss"] or float("nan")]
    history["lbfgs_draws"] = [list(fb) for fb in out["per_draw"]]
    return out
