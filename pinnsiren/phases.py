"""The parts of a training run: phases, samplers and aids, each a small object that checks itself.

:class:`pinnsiren.train.TrainConfig` holds a sequence of *phases* run one
after the other on the same model, and the *aids* that act during them::

    from pinnsiren.phases import Adam, LBFGS, RAD, GradNorm
    cfg = TrainConfig(phases=[Adam(1000, lr=1e-4, schedule="cosine"),
                              LBFGS(2000, draw_every=100, batches=3, sampler=RAD())],
                      aids=[GradNorm()])

:meth:`TrainConfig.recommended` returns exactly such a set. Every part is a
frozen dataclass whose constructor raises ``ValueError`` naming the bad
setting, so a wrong value stops before any training. Steps are counted in
gradient evaluations over the whole run: an Adam step is one, an L-BFGS
evaluation (line-search trials included) is one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["Adam", "LBFGS", "RAD", "GradNorm", "Causal", "Checkpoint", "SCHEDULES", "part_dict"]

SCHEDULES = ("constant", "cosine", "exponential")


def _at_least(owner: str, name: str, value: Any, low: float) -> None:
    if not value >= low:
        raise ValueError(f"{owner}: {name} must be >= {low}, got {value!r}")


@dataclass(frozen=True)
class RAD:
    """Residual-based adaptive sampling (Wu et al. 2023, "A comprehensive study of non-adaptive and
    residual-based adaptive sampling for PINNs").

    Every sampled constraint (not point sets) draws its points from a pool of
    ``pool`` times its ``n`` candidates with probability
    ``∝ loss^k / mean + c`` (:mod:`pinnsiren.adaptive`). In an :class:`Adam`
    phase the pool is redrawn, with the current residual, every ``every``
    steps; in an :class:`LBFGS` phase at the start of every collocation
    draw but the last, which stays uniform (the final point is chosen, and
    the alarm compares training and fresh losses, without the bias).
    """

    every: int = 100
    pool: int = 8
    k: float = 1.0
    c: float = 1.0

    def __post_init__(self) -> None:
        _at_least("RAD", "every", self.every, 1)
        _at_least("RAD", "pool", self.pool, 1)
        _at_least("RAD", "k", self.k, 0)
        _at_least("RAD", "c", self.c, 0)


@dataclass(frozen=True)
class Adam:
    """A phase of Adam steps, one fresh collocation sample per step.

    Parameters
    ----------
    steps : int
        Adam steps (each one gradient evaluation).
    lr : float
        Initial learning rate.
    schedule : {"constant", "cosine", "exponential"}
        Learning-rate schedule over the phase (cosine decays to
        ``lr * final_lr_factor``; exponential reaches the same at the end).
    final_lr_factor : float
        End-of-schedule learning rate as a fraction of ``lr``.
    grad_clip : float or None
        Clip the global gradient norm to this value.
    sampler : RAD or None
        Adaptive sampling of the collocation points (``None``: uniform).
    cpu_seconds : float or None
        Stop the phase before the first step that starts after its steps
        have used this much process time (``None``: all ``steps``). The
        schedule's progress is then the larger of the steps' fraction and
        the budget's, so a run the budget stops ends at the decayed rate;
        the run reports the steps done.
    """

    steps: int = 1000
    lr: float = 1e-4
    schedule: str = "constant"
    final_lr_factor: float = 0.01
    grad_clip: float | None = None
    sampler: RAD | None = None
    cpu_seconds: float | None = None

    def __post_init__(self) -> None:
        _at_least("Adam", "steps", self.steps, 0)
        if self.cpu_seconds is not None and not self.cpu_seconds > 0:
            raise ValueError(f"Adam: cpu_seconds must be positive or None, got {self.cpu_seconds!r}")
        if not self.lr > 0:
            raise ValueError(f"Adam: lr must be positive, got {self.lr!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Adam: unknown schedule {self.schedule!r}; must be one of {list(SCHEDULES)}")
        if not 0 < self.final_lr_factor <= 1:
            raise ValueError(f"Adam: final_lr_factor must be in (0, 1], got {self.final_lr_factor!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"Adam: grad_clip must be positive or None, got {self.grad_clip!r}")
        _check_sampler("Adam", self.sampler)


@dataclass(frozen=True)
class LBFGS:
    """A phase of L-BFGS with a strong-Wolfe line search on fixed collocation draws (:mod:`pinnsiren.lbfgs`).

    The loss is the one the previous phase ended with (balancing factors
    frozen). The model is left at the best evaluated point.

    Parameters
    ----------
    steps : int
        Budget in loss-and-gradient *evaluations* (line-search trials count).
    draw_every : int
        Evaluations per collocation draw (0: one fixed draw); each new draw
        restarts L-BFGS from the best point of the previous one.
    batches : int
        Samples of the problem (each of its ``n`` points per constraint)
        pooled into one draw: a larger fixed sample at that many times the
        cost per evaluation.
    sampler : RAD or None
        How each draw is sampled (``None``: uniformly; see :class:`RAD`).
    float64 : bool
        Run the phase in double precision (parameters converted for the phase
        and back after it): the line search and the curvature pairs then
        resolve changes float32 rounds away, at about twice the cost per
        evaluation on CPU.
    max_batches : int or None
        Adaptive draw size (with ``draw_every``): before each new draw the
        previous draw's end point is evaluated on a fresh uniform sample of
        the same size; where that loss is above ``gap`` times the draw's own
        best loss (the draw was fitted but does not generalise: the alarm's
        generalisation test), the draws that follow take twice the samples,
        up to ``max_batches``. The sample grows only where the fit needs it
        (dynamic sample sizes, Byrd, Chin, Nocedal & Wu 2012, "Sample size
        selection in optimization methods for machine learning"). ``None``:
        every draw takes ``batches``.
    gap : float
        The fresh-to-fitted loss ratio above which the draws grow.
    """

    steps: int = 1000
    draw_every: int = 0
    batches: int = 1
    sampler: RAD | None = None
    float64: bool = False
    max_batches: int | None = None
    gap: float = 10.0

    def __post_init__(self) -> None:
        _at_least("LBFGS", "steps", self.steps, 0)
        _at_least("LBFGS", "draw_every", self.draw_every, 0)
        _at_least("LBFGS", "batches", self.batches, 1)
        _check_sampler("LBFGS", self.sampler)
        if self.max_batches is not None:
            _at_least("LBFGS", "max_batches", self.max_batches, self.batches)
            if not self.draw_every:
                raise ValueError("LBFGS: max_batches needs draw_every > 0 (the draws grow from one to the next)")
        if not self.gap > 1:
            raise ValueError(f"LBFGS: gap must be > 1, got {self.gap!r}")


def _check_sampler(owner: str, sampler: Any) -> None:
    if sampler is not None and not isinstance(sampler, RAD):
        raise ValueError(f"{owner}: sampler must be RAD(...) or None, got {sampler!r}")


@dataclass(frozen=True)
class GradNorm:
    """Loss balancing by gradient norms (Wang, Teng & Perdikaris 2021; :mod:`pinnsiren.balancing`).

    Every ``every`` Adam steps each loss term gets a factor so that all terms
    pull with the same gradient norm, averaged with weight ``momentum`` on
    the old factor; recorded in ``history`` as ``weight.<term>``. L-BFGS
    phases use the factors the last Adam step ended with.
    """

    every: int = 100
    momentum: float = 0.9

    def __post_init__(self) -> None:
        _at_least("GradNorm", "every", self.every, 1)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"GradNorm: momentum must be in [0, 1), got {self.momentum!r}")


@dataclass(frozen=True)
class Causal:
    """Causal weights in time for Adam steps (Wang, Sankaran & Perdikaris 2024, "Respecting causality").

    Each term whose points span a time interval is cut into ``bins`` slabs
    of ``time`` (a coordinate name or column), weighted
    ``w_b = exp(-eps * sum of earlier slab losses)``. Needs a problem with
    ``point_losses`` (:class:`pinnsiren.Problem`).
    """

    time: str | int = "t"
    eps: float = 1.0
    bins: int = 16

    def __post_init__(self) -> None:
        _at_least("Causal", "bins", self.bins, 1)
        _at_least("Causal", "eps", self.eps, 0)


@dataclass(frozen=True)
class Checkpoint:
    """Atomic checkpoints of a run in ``folder/checkpoint.pt`` (written during Adam phases and at the end).

    ``every``: Adam steps between checkpoints (0: only at the end);
    ``resume``: continue from the checkpoint when it exists.
    """

    folder: str
    every: int = 0
    resume: bool = False

    def __post_init__(self) -> None:
        if not self.folder:
            raise ValueError("Checkpoint: folder must be a path (e.g. --out DIR)")
        _at_least("Checkpoint", "every", self.every, 0)


def part_dict(part: Any) -> Any:
    """A part as plain data for result files: ``{"kind": "Adam", "steps": ..., ...}`` (nested parts too)."""
    if dataclasses.is_dataclass(part) and not isinstance(part, type):
        out = {"kind": type(part).__name__}
        for f in dataclasses.fields(part):
            out[f.name] = part_dict(getattr(part, f.name))
        return out
    if isinstance(part, (list, tuple)):
        return [part_dict(p) for p in part]
    return part
