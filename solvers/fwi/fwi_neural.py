"""Neural full-waveform inversion with one SIREN (paper §4.3, supplement §5.2).

One SIREN maps ``(x, y)`` to 11 channels: 5 complex wavefields ``u_1..u_5``
(one per source) and one real raw slowness output ``q``, declared through the
SymPy spec as 5 complex :func:`pinnsiren.Field` s and 1 real (learnable) field.
The squared slowness is ``m = m_in(q)`` where ``|x|_inf <= 0.75`` and ``m = 1``
elsewhere, with ``m_in`` chosen by ``NeuralFWIConfig.m_param``:

* ``"bounded"`` (default; a deviation from the official code):
  ``m_lo + (m_hi - m_lo) sigmoid(q + b0)`` with the reference methods' bounds
  ``[1/9, 4]`` (velocity in ``[0.5, 3]``) and ``b0`` such that ``q = 0`` gives ``m = 1``;
* ``"clamp"``: ``min(max(1 + q, m_lo), m_hi)``;
* ``"official"``: ``1 + max(q, -0.999)`` (the official code; lets ``m -> 0.001``,
  where the PDE degenerates and, at CPU scale, stage 2 collapses).

Losses (every term an L1 mean, as in the paper):

* ``pde``: the Helmholtz-PML residual of every source (``equations.helmholtz``),
  divided by ``k^2`` so it is O(1), on uniform samples of ``[-1, 1]^2``;
* ``pde_src``: the same residuals on samples concentrated around the sources
  (Gaussian, std ``4 sigma``), weight ``source_weight`` (the paper's
  ``lambda(x) = k`` for the inhomogeneous part);
* stage 1 (pretraining, uniform model): ``pde`` and ``pde_src`` with ``m = 1``,
  plus ``slowness``: ``||m - 1||_1`` weight ``slowness_weight``;
* stage 2 (FWI, penalty method): ``pde`` and ``pde_src`` with the learned ``m``,
  plus ``data``: ``lambda_data * sum_s |u_s - d_s|`` at the receivers, plus
  (default; the paper drops it) ``slowness`` with weight ``slowness_weight_fwi``.

``formulation="scattered"`` (a deviation from the paper): the network's five
complex channels are the scattered fields ``us_s = u_s - u0_s``, with ``u0_s``
the FD field of source ``s`` in the uniform starting medium
(:func:`solvers.fwi.fwi_background.background_fields`, unit discrete mass like the
data, on a ``u0_grid``^2 grid, sampled by a cubic interpolant), and the
residual is ``equations.helmholtz.helmholtz_scattered`` (values of ``u0`` only,
no source term, so no ``pde_src`` samples). Stage 1 has ``m = m0``: the
residual is ``H(1) us`` with no forcing, whose solution is ``us = 0``: the
network's last layer starts at zero, i.e. at that solution (``m = 1`` too), and
stage 1 stays there. The data term is ``us_s - (d_s - u0_s)`` at the receivers.

See docs/benchmarks.md (FWI section) for what each of these levers does at CPU scale.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import sympy
import torch

from equations.helmholtz import helmholtz_pml, helmholtz_scattered
from pinnsiren import Box, Constraint, Field, PointSet, Problem, coefficient
from pinnsiren.evaluation import evaluate
from pinnsiren.geometry import Region
from pinnsiren.settings import ModelSettings, TrainerFlags
from pinnsiren.train import TrainConfig, train

from .fwi_background import CubicInterpolant, background_fields

__all__ = ["NeuralFWIConfig", "StageSettings", "NeuralFWIResult", "SourceCloud", "background_interpolants",
           "build_problems", "neural_fwi", "evaluate_model"]


@dataclass
class StageSettings(TrainerFlags):
    """The trainer's settings both stages share (documented in :class:`pinnsiren.settings.TrainSettings`); the
    step counts are per stage (``pretrain_steps``, ``fwi_steps``) and stage 2 may have its own learning rate
    (``fwi_lr``)."""

    lr: float = 1e-4
    schedule: str = "constant"
    final_lr_factor: float = 0.01
    grad_clip: float | None = None
    seed: int = 0
    device: str = "cpu"


@dataclass
class NeuralFWIConfig(ModelSettings, StageSettings):
    """Settings of a neural FWI run: the network (:class:`~pinnsiren.settings.ModelSettings`; the paper's is
    256 wide with 5 layers), the trainer settings of both stages (``StageSettings``; the paper's ``lr`` is
    2e-5 over 90k steps, larger here for short runs), and the run's own fields below."""

    hidden: int = 128
    layers: int = 3
    pretrain_steps: int = 1000
    """Adam steps of stage 1 (pretraining on the uniform model)."""
    fwi_steps: int = 1000
    """Adam steps of stage 2 (FWI)."""
    batch: int = 1000
    """Uniform collocation points per step (batch // 2 more near the sources)."""
    lambda_data: float = 10.0
    """Weight of the receiver misfit in stage 2."""
    slowness_weight: float = 1.0
    """Weight of ||m - 1||_1 in stage 1."""
    source_weight: float | str = 1.0
    """Weight of the near-source residual samples; ``auto`` makes pde_src start equal to pde (measured on the
    initial network)."""
    m_param: str = "bounded"
    """Squared-slowness parametrisation: bounded (m in m_bounds via a sigmoid), clamp, or official
    (1 + max(q, -0.999); see solvers.fwi.fwi_neural)."""
    m_bounds: tuple[float, float] = (1 / 9, 4.0)
    """(m_lo, m_hi) of the bounded and clamp parametrisations (default: velocity in [0.5, 3])."""
    slowness_weight_fwi: float = 0.1
    """Weight of ||m - 1||_1 kept in stage 2 (0 = the paper's loss)."""
    fwi_lr: float | None = None
    """Stage-2 learning rate (default: lr)."""
    formulation: str = "total"
    """total: the network's wavefields are the total field (the paper); scattered: u - u0 (see
    solvers.fwi.fwi_neural)."""
    u0_grid: int = 257
    """FD grid (nodes per axis) of the scattered formulation's background fields."""

    def stage_config(self, stage: int, **changes: Any) -> TrainConfig:
        """The trainer's configuration of stage 1 or 2 (stage 2: ``fwi_steps``, ``fwi_lr``, seed + 1)."""
        if stage == 1:
            return self.train_config(steps=self.pretrain_steps, **changes)
        return self.train_config(steps=self.fwi_steps, lr=self.fwi_lr or self.lr, seed=self.seed + 1, **changes)


class SourceCloud(Region):
    """Gaussian samples around several centres (equal shares), clipped to ``[-1, 1]^2``."""

    def __init__(self, centers: np.ndarray, std: float) -> None:
        self.centers = torch.as_tensor(np.asarray(centers, dtype=np.float64))
        self.std = float(std)
        self.dim = self.centers.shape[1]

    def sample(self, n, step, generator):
        idx = torch.randint(0, len(self.centers), (n,), generator=generator)
        x = self.centers[idx] + self.std * torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return x.clamp(-1.0, 1.0), {}


M_PARAMS = ("official", "bounded", "clamp")


def _inner_m(q: sympy.Expr, param: str, bounds: tuple[float, float]) -> sympy.Expr:
    """Squared slowness inside ``|x|_inf <= 0.75`` from the raw output ``q`` (``q = 0`` gives ``m = 1``)."""
    lo, hi = (sympy.Float(b) for b in bounds)
    if param == "official":
        return 1 + sympy.Max(q, sympy.Float(-0.999))
    if param == "clamp":
        return sympy.Min(sympy.Max(1 + q, lo), hi)
    if param == "bounded":
        b0 = sympy.Float(float(np.log((1 - bounds[0]) / (bounds[1] - 1))))  # sigmoid(b0) = (1 - lo) / (hi - lo)
        return lo + (hi - lo) / (1 + sympy.exp(-(q + b0)))
    raise ValueError(f"m_param must be one of {M_PARAMS}, got {param!r}")


def _symbols(n_sources: int, param: str = "official", bounds: tuple[float, float] = (1 / 9, 4.0)
             ) -> tuple[tuple[sympy.Symbol, sympy.Symbol], list[sympy.Expr], sympy.Expr, sympy.Expr]:
    x, y = sympy.symbols("x y", real=True)
    us = [Field(f"u{i + 1}", (x, y), complex=True) for i in range(n_sources)]
    q = Field("q", (x, y))  # the learnable real field (raw network output)
    inside = sympy.And(sympy.Abs(x) <= sympy.Rational(3, 4), sympy.Abs(y) <= sympy.Rational(3, 4))
    m = sympy.Piecewise((_inner_m(q, param, bounds), inside), (1, True))
    return (x, y), us, q, m


def background_interpolants(acq: Any, cfg: NeuralFWIConfig) -> list[torch.nn.Module]:
    """Cubic interpolants of the FD background fields ``u0_s`` (uniform medium), one per source."""
    fields = background_fields(acq.sources, acq.k, acq.source_var, cfg.u0_grid, m0=1.0, unit_mass=True,
                               half_width=acq.half_width, pml_width=acq.pml_width, a0=acq.a0)
    return [CubicInterpolant(f.values, f.grid.bounds) for f in fields]


def _values_only(fn: Callable) -> Callable:
    def call(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return fn(x.detach())

    return call


def _residuals(acq: Any, us: list, model_m: Any, scattered: bool) -> list[sympy.Expr]:
    """The Helmholtz residual (PML, scaled by 1/k^2) of each source's field ``us`` in the medium ``model_m``."""
    k = acq.k
    s2 = sympy.Float(acq.source_var)
    a0, L = acq.a0, sympy.Float(acq.pml_width)
    inner = sympy.Float(acq.inner_half_width)
    if scattered:
        return [helmholtz_scattered(u, k, model_m, 1, f"u0_{i + 1}", a0=a0, L=L, inner=inner) / k**2
                for i, u in enumerate(us)]
    return [helmholtz_pml(u, k, model_m, x0=tuple(map(float, s)), s2=s2, a0=a0, L=L, inner=inner) / k**2
            for u, s in zip(us, acq.sources)]


def _data_term(acq: Any, d: np.ndarray, us: list, coords: tuple, u0: list | None, weight: float) -> Constraint:
    """The receiver-data misfit ``u_i - d_i``; with backgrounds ``u0`` (scattered formulation) the network's
    channels are ``us``, fitted to ``d - u0`` at the receivers."""
    if u0 is not None:
        rec = torch.as_tensor(acq.receivers, dtype=torch.float64)
        u0_rec = np.stack([f(rec).numpy() for f in u0], 1)
        d = d - u0_rec
    data_names = {f"d{i + 1}": d[:, i] for i in range(acq.n_sources)}
    dsyms = [coefficient(nm, coords) for nm in data_names]
    data_res = [u - ds for u, ds in zip(us, dsyms)]
    return Constraint(data_res, name="data", norm="l1", weight=weight).on(PointSet(acq.receivers, data_names))


def build_problems(acq: Any, d: np.ndarray, cfg: NeuralFWIConfig, source_weight: float | None = None,
                   u0: list[torch.nn.Module] | None = None) -> tuple[Problem, Problem, Callable]:
    """The stage-1 (pretraining) and stage-2 (FWI) problems, and ``m(model, x)``.

    Parameters
    ----------
    acq : reference.fwi.Acquisition
    d : ndarray (nr, ns), complex — receiver data.
    source_weight : float, optional
        Overrides ``cfg.source_weight`` (used to resolve ``"auto"``).
    u0 : list of interpolants, optional
        Background fields of the scattered formulation (default :func:`background_interpolants`).
    """
    source_weight = cfg.source_weight if source_weight is None else source_weight
    if cfg.formulation not in ("total", "scattered"):
        raise ValueError(f"formulation must be 'total' or 'scattered', got {cfg.formulation!r}")
    scattered = cfg.formulation == "scattered"
    (x, y), us, q, m = _symbols(acq.n_sources, cfg.m_param, tuple(cfg.m_bounds))
    coefs: dict[str, Any] = {}
    if scattered:
        u0 = background_interpolants(acq, cfg) if u0 is None else u0
        coefs = {f"u0_{i + 1}": _values_only(f) for i, f in enumerate(u0)}

    box = Box([(-acq.half_width, acq.half_width)] * 2)
    cloud = SourceCloud(acq.sources, 4 * float(np.sqrt(acq.source_var)))
    n_src = max(cfg.batch // 2, 1)

    def pde_terms(model_m: Any, src_w: float) -> list[Constraint]:
        r = _residuals(acq, us, model_m, scattered)
        if scattered:  # no source term: the budget of the source samples goes to the box
            return [Constraint(r, name="pde", norm="l1").on(box, n=cfg.batch + n_src)]
        return [Constraint(r, name="pde", norm="l1").on(box, n=cfg.batch),
                Constraint(r, name="pde_src", norm="l1", weight=src_w).on(cloud, n=n_src)]

    fields = us + [q]
    src_w = 1.0 if isinstance(source_weight, str) else float(source_weight)
    pre = Problem(fields, (x, y), pde_terms(1, src_w) + [
        Constraint(m - 1, name="slowness", norm="l1", weight=cfg.slowness_weight).on(box, n=cfg.batch)],
        coefficients=coefs)
    data = _data_term(acq, d, us, (x, y), u0 if scattered else None, cfg.lambda_data)
    extra = [Constraint(m - 1, name="slowness", norm="l1", weight=cfg.slowness_weight_fwi).on(box, n=cfg.batch)] \
        if cfg.slowness_weight_fwi > 0 else []
    fwi = Problem(fields, (x, y), pde_terms(m, src_w) + [data] + extra, coefficients=coefs)
    m_of = Problem(fields, (x, y), [Constraint(m, name="m").on(box, n=1)])

    def m_fn(model: torch.nn.Module, pts: torch.Tensor) -> torch.Tensor:
        return m_of.residual("m", model, pts).real

    return pre, fwi, m_fn


def _auto_weight(acq: Any, d: np.ndarray, cfg: NeuralFWIConfig, model: torch.nn.Module) -> float:
    """Source-sample weight that makes ``pde_src`` start equal to ``pde`` (as ``solvers.pde.helmholtz``)."""
    pre, _, _ = build_problems(acq, d, cfg, 1.0)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    tot = {"pde": 0.0, "pde_src": 0.0}
    with torch.no_grad():
        for _ in range(4):
            for k, v in pre.losses(model, 0, g).items():
                if k in tot:
                    tot[k] += float(v)
    return tot["pde"] / max(tot["pde_src"], 1e-30)


@dataclass
class NeuralFWIResult:
    """Outcome of :func:`neural_fwi`: model, the ``m`` evaluator, histories and timings."""

    model: torch.nn.Module
    m_fn: Callable
    history_pretrain: dict[str, list[float]]
    history_fwi: dict[str, list[float]]
    seconds_pretrain: float
    seconds_fwi: float
    config: dict[str, Any]
    background: list[torch.nn.Module] | None = None


def evaluate_model(model: torch.nn.Module, m_fn: Callable, grid_xy: tuple[np.ndarray, np.ndarray],
                   n_sources: int, chunk: int = 8192, background: list[torch.nn.Module] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Squared slowness (n, n) and wavefields (ns, n, n) of a trained model on a grid.

    ``background`` (the scattered formulation's ``u0`` interpolants) is added to the network's fields.
    """
    X, Y = grid_xy
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    out, m = evaluate(model, pts, chunk, lambda net, x: (net(x), m_fn(net, x)))
    out, m = out.astype(np.float64), m.astype(np.float64).reshape(X.shape)
    waves = np.stack([(out[:, 2 * s] + 1j * out[:, 2 * s + 1]).reshape(X.shape) for s in range(n_sources)])
    if background is not None:
        with torch.no_grad():
            pt = torch.as_tensor(pts, dtype=torch.float64)
            waves = waves + np.stack([f(pt).numpy().reshape(X.shape) for f in background])
    return m, waves


def neural_fwi(acq: Any, d: np.ndarray, cfg: NeuralFWIConfig | None = None,
               evaluate: Callable[[torch.nn.Module, int], dict[str, float]] | None = None,
               eval_every: int = 0, progress: bool = True,
               pretrain_evaluate: Callable[[torch.nn.Module, int], dict[str, float]] | None = None,
               pretrain_eval_every: int = 0) -> NeuralFWIResult:
    """Pretrain on the uniform model, then run penalty-method FWI; both with :func:`pinnsiren.train.train`.

    ``evaluate(model, step)`` (optional) is called every ``eval_every`` steps of stage 2.
    """
    cfg = cfg or NeuralFWIConfig()
    torch.manual_seed(cfg.seed)
    model = cfg.build_model(2, 2 * acq.n_sources + 1)
    if cfg.formulation == "scattered":  # start at the exact stage-1 solution: us = 0, q = 0 (m = m0 = 1)
        with torch.no_grad():
            model.layers[-1].weight.zero_()
            model.layers[-1].bias.zero_()
    t0 = time.perf_counter()
    u0 = background_interpolants(acq, cfg) if cfg.formulation == "scattered" else None
    lam = _auto_weight(acq, d, cfg, model) if cfg.source_weight == "auto" and u0 is None else \
        (1.0 if isinstance(cfg.source_weight, str) else float(cfg.source_weight))
    pre, fwi, m_fn = build_problems(acq, d, cfg, lam, u0=u0)
    r1 = train(pre, model, cfg.stage_config(1, log_every=10, eval_every=pretrain_eval_every, progress=progress),
               evaluate=pretrain_evaluate)
    t1 = time.perf_counter()
    r2 = train(fwi, r1.model, cfg.stage_config(2, log_every=10, eval_every=eval_every, progress=progress),
               evaluate=evaluate)
    t2 = time.perf_counter()
    return NeuralFWIResult(model=r2.model, m_fn=m_fn, history_pretrain=r1.history, history_fwi=r2.history,
                           seconds_pretrain=t1 - t0, seconds_fwi=t2 - t1, config=asdict(cfg), background=u0)
