"""One training loop for any problem on any model.

A *problem* is anything with ``losses(model, step, generator) -> dict[str,
Tensor]`` (fresh samples each call, one scalar per term) and optionally
``validate(model)`` and ``learnable_parameters()``; :class:`pinnsiren.Problem`
is one, and so are the signal fits, the inpainting priors, the hypernetwork
and the Adam phase of the reparametrised FWI (its L-BFGS stays scipy's). :func:`train` runs the phases of a :class:`TrainConfig`
(:mod:`pinnsiren.phases`: Adam, L-BFGS) with its aids (loss balancing,
causal weights, adaptive sampling), seeds, devices, a progress bar with the
loss terms, periodic evaluation, atomic checkpoints with resume, a stop with a
diagnostic on a non-finite loss, and the failure alarm (:mod:`pinnsiren.alarm`,
on by default as a warning), which also reports each term's loss on a fresh
sample at the end of every run. ``TrainConfig.recommended()`` is the measured
set for a problem nobody tuned (docs/training.md).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from . import distributed as _dist
from . import verify as _verify
from .alarm import ALARM_MODES, Alarm, TrainingAlarm, TrainingAlarmWarning
from .balancing import LossBalancer
from .buffers import release_buffers
from .io import atomic_torch_save
from .phase_runs import NonFiniteLossError, run_phases
from .phases import LBFGS, RAD, Adam, Causal, Checkpoint, GradNorm, part_dict
from .precision import BACKWARD_PRECISIONS, backward_precision

__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "TrainingAlarm", "TrainingAlarmWarning", "train",
           "recommended_model", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
AIDS = (GradNorm, Causal)


@dataclass
class TrainConfig:
    """A training run: its phases, aids and housekeeping.

    Parameters
    ----------
    phases : sequence of Adam and LBFGS
        Run in order on the same model (:mod:`pinnsiren.phases`); a run of
        ``evaluations`` gradient evaluations in all.
    aids : sequence of GradNorm and Causal
        Loss balancing by gradient norms and causal weights in time, at most
        one of each (:mod:`pinnsiren.phases`).
    alarm : {"off", "warn", "raise"}
        Failure alarm (:mod:`pinnsiren.alarm`): collapse to a trivial field,
        a term stuck at its zero-field loss, a final loss on a fresh sample
        far above the training loss. ``"warn"`` warns, ``"raise"`` stops
        with :class:`TrainingAlarm`. Unless ``"off"``, the result carries
        ``report``: each term's loss on a fresh sample.
    alarm_every : int
        Adam steps between alarm checks (0: a tenth of the Adam steps).
    seed : int
        Seeds the collocation sampler (the model's initialisation is the
        caller's).
    device : str
        ``"cpu"`` or ``"cuda"``.
    backward_precision : {"full", "bfloat16"}
        Precision of the matrix products in the backward of the fused SIREN
        layers (:func:`pinnsiren.precision.backward_precision`): ``"bfloat16"``
        runs two thirds of a step's multiply-adds with bfloat16 operands
        (forward, losses and alarm exact; gradients ~2e-3 relative error),
        ~1.3x faster where bfloat16 is native; opt-in.
    log_every : int
        Record the loss terms every this many steps.
    eval_every : int
        Call the evaluation hook every this many steps (0: at the end only).
    checkpoint : Checkpoint or None
        Where and how often to write checkpoints, and whether to resume.
    progress : bool
        A progress bar with the current loss terms on stderr.
    """

    phases: tuple = (Adam(),)
    aids: tuple = ()
    alarm: str = "warn"
    alarm_every: int = 0
    seed: int = 0
    device: str = "cpu"
    backward_precision: str = "full"
    log_every: int = 10
    eval_every: int = 0
    checkpoint: Checkpoint | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        self.phases, self.aids = tuple(self.phases), tuple(self.aids)
        for p in self.phases:
            if not isinstance(p, (Adam, LBFGS)):
                raise ValueError(f"phases: {p!r} is not a phase; use pinnsiren.phases.Adam(...) or LBFGS(...)")
        kinds = [type(a) for a in self.aids]
        for a in self.aids:
            if not isinstance(a, AIDS):
                raise ValueError(f"aids: {a!r} is not an aid; use pinnsiren.phases.GradNorm() or Causal(...)")
        if len(set(kinds)) < len(kinds):
            raise ValueError("aids: give each kind of aid once")
        if self.alarm not in ALARM_MODES:
            raise ValueError(f"unknown alarm {self.alarm!r}; must be one of {list(ALARM_MODES)}")
        if self.backward_precision not in BACKWARD_PRECISIONS:
            raise ValueError(f"unknown backward_precision {self.backward_precision!r}; "
                             f"must be one of {list(BACKWARD_PRECISIONS)}")
        if self.checkpoint is not None and not isinstance(self.checkpoint, Checkpoint):
            raise ValueError(f"checkpoint must be pinnsiren.phases.Checkpoint(...) or None, got {self.checkpoint!r}")
        for k in ("alarm_every", "eval_every"):
            if getattr(self, k) < 0:
                raise ValueError(f"{k} must be >= 0, got {getattr(self, k)}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")

    @property
    def evaluations(self) -> int:
        """Gradient evaluations of the whole run as planned (an L-BFGS phase may stop early)."""
        return sum(p.steps for p in self.phases)

    @property
    def adam_steps(self) -> int:
        return sum(p.steps for p in self.phases if isinstance(p, Adam))

    def aid(self, kind: type) -> Any:
        """The aid of type ``kind`` (e.g. ``GradNorm``), or ``None``."""
        return next((a for a in self.aids if isinstance(a, kind)), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for result files (every part with its ``kind``)."""
        return {k: part_dict(getattr(self, k)) for k in self.__dataclass_fields__}

    @classmethod
    def recommended(cls, steps: int = 3000, **changes: Any) -> "TrainConfig":
        """The measured default for a problem nobody has tuned (docs/training.md).

        ``steps`` is the whole budget of gradient evaluations: the first third
        Adam at 1e-4 with cosine decay to 1e-6 and loss balancing by gradient
        norms (:class:`~pinnsiren.phases.GradNorm`), the rest L-BFGS
        (a new collocation draw of three times the problem's points every 100
        evaluations, each draw sampled by :class:`~pinnsiren.phases.RAD` from
        the current residual; the draws double, up to twelve times the points,
        while a draw's end point has over ten times its fitted loss on fresh
        points); the alarm as a warning. Pair it with
        :func:`recommended_model`. ``changes`` replace fields (``seed=``,
        ``progress=``, ``eval_every=``, ``phases=``...).
        """
        if steps < 3:
            raise ValueError(f"recommended: steps must be >= 3 (a third Adam, the rest L-BFGS), got {steps}")
        lbfgs = steps - steps // 3
        parts = dict(phases=(Adam(steps - lbfgs, lr=1e-4, schedule="cosine", final_lr_factor=0.01),
                             LBFGS(lbfgs, draw_every=100, batches=3, sampler=RAD(), max_batches=12)),
                     aids=(GradNorm(every=100),), alarm="warn")
        return cls(**{**parts, **changes})


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: nn.Module
    history: dict[str, list[float]]
    steps_done: int
    seconds: float
    resumed_from: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    #: per term: loss on a fresh sample, last training loss, zero-field loss, alarms (see pinnsiren.alarm)
    report: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: every alarm raised (kind, step, term, message)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    #: with ``verify=``: the independent check's table and verdict (see pinnsiren.verify)
    verification: dict[str, Any] | None = None


def recommended_model(bounds: Any, out_features: int = 1, hidden_features: int = 128, hidden_layers: int = 3,
                      first_omega_0: float = 30.0, hidden_omega_0: float = 30.0, problem: Any = None,
                      data_bands: bool = True) -> nn.Module:
    """The network that goes with :meth:`TrainConfig.recommended`: a SIREN on normalised coordinates.

    ``Normalized(Siren(d, C, 128, 3, first_omega_0=30), bounds)``: the network
    sees every coordinate (time included) mapped from the declared box
    ``bounds = [(lo, hi), ...]`` (or a region with ``bbox()``) to ``[-1, 1]``,
    so ``first_omega_0`` means the same on any domain; the PDE stays written in
    physical coordinates (the derivative engine applies the chain rule). Wrap
    the result in :class:`pinnsiren.ExactDirichlet` to impose Dirichlet or
    initial data exactly (docs/training.md).

    With ``problem`` (the declared :class:`~pinnsiren.problem.Problem`,
    coordinates in the order of ``bounds``), each coordinate's first-layer
    band is narrowed until the PDE's terms along it are no stiffer than
    along the least stiff coordinate (:mod:`pinnsiren.bands`): a parabolic
    or anisotropic operator gets balanced features, an isotropic one keeps
    the default; and (``data_bands``) a coordinate along which the declared
    condition data oscillate faster than the band reaches is widened to
    their frequency. The factors are in ``model.bands``.
    """
    from .bands import balance_first_layer  # noqa: PLC0415
    from .networks import Siren  # noqa: PLC0415
    from .transforms import Normalized  # noqa: PLC0415

    if hasattr(bounds, "bbox"):
        bounds = bounds.bbox(0).tolist()
    d = len(bounds)
    if problem is not None and len(problem.coords) != d:
        raise ValueError(f"problem has {len(problem.coords)} coordinates {problem.coords} but bounds give {d}")
    net = Siren(d, out_features, hidden_features, hidden_layers, first_omega_0=first_omega_0,
                hidden_omega_0=hidden_omega_0)
    bands = balance_first_layer(net, problem, bounds, data=data_bands) if problem is not None else None
    model = Normalized(net, bounds)
    model.bands = bands
    return model


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
        ``config.eval_every`` steps, before each L-BFGS phase and at the end;
        recorded in ``history`` with ``eval_step``.
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
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {cfg.device!r} requested but CUDA is not available; use --device cpu")
    run = _Run(problem, model, cfg, evaluate, extra_parameters)
    run.resume()
    t0 = time.perf_counter()
    with backward_precision(cfg.backward_precision, cfg.device) as precision:
        steps_done, last_terms = run_phases(run)
    if cfg.backward_precision != "full" and steps_done > run.start and precision.layers == 0:
        warnings.warn(f"backward_precision={cfg.backward_precision!r} had no effect: no fused SIREN layer ran "
                      "(it serves SIREN models on the jet engine at points without grad; nested autograd, "
                      "MLPs and float64 models keep full precision)", stacklevel=2)
    return _finish(run, steps_done, last_terms, verify, t0)


def _finish(run: "_Run", steps_done: int, last_terms: dict[str, float], verify: Any, t0: float) -> TrainResult:
    """The last evaluation, checkpoint, the alarm's report and the independent check; the result."""
    run.record_eval_once(steps_done)
    if run.cfg.checkpoint is not None and steps_done > run.start:
        run.save(steps_done, len(run.cfg.phases) - 1)
    report = run.alarm.finish(run.model, steps_done, last_terms) if steps_done > run.start else {}
    verification = None
    if verify is not None:
        verification = _verify.run(verify, getattr(run.model, "declared", run.problem), run.model)
        run.alarm.verdict(verification, steps_done)
    release_buffers()  # the derivative engine's work buffers are kept between steps only
    run.model.eval()
    return TrainResult(model=run.model, history=run.history, steps_done=steps_done,
                       seconds=time.perf_counter() - t0, resumed_from=run.start, config=run.cfg.to_dict(),
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
    """One run's shared state: model, parameters, sampler stream, balancer, alarm, history, checkpoint.

    The phases (:mod:`pinnsiren.phase_runs`) read and extend it; ``opt`` and
    ``sched`` are the current Adam phase's, for checkpoints.
    """

    def __init__(self, problem: Any, model: nn.Module, cfg: TrainConfig, evaluate: Callable | None,
                 extra_parameters: Iterable[nn.Parameter]) -> None:
        self.problem, self.cfg, self.evaluate = problem, cfg, evaluate
        self.dp = _dist.DataParallel(cfg.device)  # distributed: identity in a plain run
        self.model = model.to(self.dp.device)
        if hasattr(problem, "validate"):
            problem.validate(self.model)
        self.params = _collect_params(problem, self.model, extra_parameters)
        self.n_model = len(list(self.model.parameters()))
        self.gen = torch.Generator()  # samplers draw on the CPU; points then move to the device
        self.gen.manual_seed(self.dp.seed(cfg.seed))  # distributed: rank-seeded stream (rank 0 = cfg.seed)
        g = cfg.aid(GradNorm)
        self.balancer = LossBalancer("gradnorm", g.every, g.momentum) if g else LossBalancer("none")
        self.history: dict[str, list[float]] = {"step": [], "loss": [], "lr": []}
        self.start, self.state = 0, None
        ck = cfg.checkpoint
        self.ckpt = Path(ck.folder) / CHECKPOINT_NAME if ck is not None else None
        self.opt: torch.optim.Optimizer | None = None
        self.sched: Any = None
        self.alarm = Alarm(problem, self.model, cfg.alarm, cfg.adam_steps, cfg.seed)

    def resume(self) -> None:
        """Load the checkpoint when asked to resume and one exists; then align all ranks."""
        cfg, dp = self.cfg, self.dp
        ck = cfg.checkpoint
        state = dp.load(self.ckpt, dp.device) if ck is not None and ck.resume else None  # from rank 0
        if state is not None:
            _check_checkpoint_fits(self.model, state["model"], self.ckpt)
            self.model.load_state_dict(state["model"])
            self.gen.set_state(dp.generator_state(state, cfg.seed, int(state["step"])).cpu())  # distributed
            self.history = {k: list(v) for k, v in state["history"].items()}
            self.start, self.state = int(state["step"]), state
            self.balancer.load_state_dict(state.get("balancer", {}))
            for p, v in zip(self.params[self.n_model:], state.get("extra", [])):
                with torch.no_grad():
                    p.copy_(v)
            if _dist.is_writer():
                print(f"resuming from step {self.start} of {cfg.evaluations} ({self.ckpt})", file=sys.stderr,
                      flush=True)
        dp.broadcast(self.params, [self.model])  # distributed: every rank starts from rank 0's parameters

    def save(self, step: int, phase: int) -> None:
        """Checkpoint at global ``step``, written in phase number ``phase``."""
        if self.ckpt is None:
            return
        state = dict(step=step, phase=phase, model=self.model.state_dict(),
                     generator=self.gen.get_state(), history=self.history,
                     extra=[p.detach() for p in self.params[self.n_model:]],
                     **self.dp.checkpoint_extras(self.gen),  # distributed: every rank's sampler state
                     balancer=self.balancer.state_dict())
        if self.opt is not None:
            state.update(optimizer=self.opt.state_dict(), scheduler=self.sched.state_dict())
        atomic_torch_save(state, self.ckpt)

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

    def log(self, step: int, loss: float, terms: dict[str, float], lr: float = float("nan")) -> None:
        self.history["step"].append(step)
        self.history["loss"].append(loss)
        self.history["lr"].append(lr)
        for k, v in terms.items():
            self.history.setdefault(f"loss.{k}", []).append(v)
