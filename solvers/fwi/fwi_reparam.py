"""Neural-reparameterised FWI: a SIREN velocity model, FD wavefields, adjoint gradients chained by autograd.

Implicit FWI (Sun et al. 2023; the hybrid Herrmann et al. 2023 found best
among PINN-based variants). The model on the free nodes of an
:class:`reference.fwi.InversionProblem` is a bounded map of one SIREN output,

    c(x) = c_lo + (c_hi - c_lo) sigmoid(q_theta(x / W_in) + b0),   m = 1 / c^2

(``param="velocity"``, default; ``param="slowness"`` maps ``m`` itself into
``[m_lo, m_hi]``), with ``b0`` such that ``q = 0`` gives the background and the
network's last layer zeroed, so the run starts at the uniform model exactly.
Every evaluation is exact physics: one LU of ``A(m)``, the forward and adjoint
solves of :meth:`InversionProblem.objective_and_gradient`; the adjoint
gradient ``dJ/dm`` enters torch through :class:`FDMisfit` and autograd
carries it into the weights (``dJ/dtheta = (dm/dtheta)^T dJ/dm``). No network
ever has to learn a wavefield.

Optional prior: isotropic total variation of ``c`` on the free block
(``tv``, smoothed with ``tv_eps``), added to the misfit.

The loss is a problem object like any other (:class:`ReparamLoss`: ``misfit``
and ``tv`` terms). Optimisers: ``"adam"`` runs through the one trainer,
:func:`pinnsiren.train.train` (one Adam phase, the alarm off). ``"lbfgs"``
(default; the objective is deterministic, so a quasi-Newton method applies as
it does to the adjoint-state method) stays scipy's L-BFGS-B on the flattened
weights (memory 20, ``iterations`` and ``max_evals`` caps), on the same loss,
and not the trainer's :class:`~pinnsiren.phases.LBFGS` phase (torch, strong
Wolfe, memory 50, an evaluation budget only). Measured with
``pinnsiren fwi --quick --methods reparam`` (velocity MSE, scipy -> the
trainer's phase with ``max_evals`` 620 evaluations; scipy stops at 500
iterations, about 535): circle 0.00365 -> 0.00356 (0.00370 at 535
evaluations), layered 0.00097 -> 0.00092, but circle at SNR 20 dB
0.0113 -> 0.0182 and layered at SNR 20 dB 0.0099 -> 0.0254. The trainer's
L-BFGS lowers the misfit faster per evaluation (circle at SNR 20 dB: the
objective 0.0026 after 400 evaluations, scipy's after 500), and on noisy data
the model error grows as the network fits the noise (its lowest, 0.0049 near
130 evaluations against scipy's 0.0044 near 165, rises sooner); the budgets
and the results in docs/fwi.md are tuned to scipy's pace, so it stays.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np
import torch

from pinnsiren.phases import Adam
from pinnsiren.settings import ModelSettings, TrainerFlags
from pinnsiren.train import TrainConfig, train

__all__ = ["ReparamFWIConfig", "OptimSettings", "ReparamFWIResult", "FDMisfit", "NeuralModel", "ReparamLoss",
           "reparam_fwi", "chained_taylor_test"]


@dataclass
class OptimSettings(TrainerFlags):
    """The trainer's settings the reparameterised run shares (documented in
    :class:`pinnsiren.settings.TrainSettings`; ``lr`` is Adam's, L-BFGS chooses its own steps)."""

    lr: float = 1e-4
    seed: int = 0
    device: str = "cpu"


@dataclass
class ReparamFWIConfig(ModelSettings, OptimSettings):
    """Settings of a neural-reparameterised FWI run: the velocity network
    (:class:`~pinnsiren.settings.ModelSettings`: 64 wide, 2 hidden layers, and ``first_omega_0`` 5, the
    network's prior on the model's smoothness: 30 fits the data with a rough model, 1-3 is a smooth prior),
    ``lr``, ``seed`` and ``device`` as the trainer's, and the run's own fields below."""

    hidden: int = 64
    layers: int = 2
    first_omega_0: float = 5.0
    lr: float = 1e-3
    param: str = "velocity"
    """Which quantity the sigmoid bounds, velocity or slowness (both use the problem's m_bounds)."""
    optimizer: str = "lbfgs"
    """lbfgs (scipy's L-BFGS-B on the weights) or adam (the trainer's Adam phase)."""
    iterations: int = 500
    """L-BFGS outer iterations (each up to several misfit evaluations) or Adam steps (one evaluation each)."""
    max_evals: int = 620
    """Cap on misfit evaluations (each = 1 LU + 2 solves per source) over the whole run."""
    tv: float = 0.0
    """Weight of the TV prior on c (relative to the normalised misfit, which starts near 0.5)."""
    tv_eps: float = 1e-3
    """Smoothing of |grad c| (velocity units per node)."""
    detail_omega_0: float = 0.0
    """If > 0, omega_0 continuation: a second network with this first-layer omega_0 (its last layer zero) is
    added to q and optimised jointly from the fraction detail_from of the iterations and evaluations on."""
    detail_from: float = 0.5
    """Fraction of the run after which the detail network moves too (before, only the smooth network)."""
    dtype: str = "float64"
    """torch dtype of the network (float64: L-BFGS wants exact arithmetic)."""

    def validate(self) -> None:
        self.check_arch()
        if self.param not in ("velocity", "slowness"):
            raise ValueError(f"ReparamFWIConfig.param must be 'velocity' or 'slowness', got {self.param!r}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"ReparamFWIConfig.optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if self.iterations < 0 or self.max_evals < 1 or self.tv < 0:
            raise ValueError("ReparamFWIConfig: need iterations >= 0, max_evals >= 1, tv >= 0")


class FDMisfit(torch.autograd.Function):
    """``J(m)`` of an :class:`InversionProblem` as a torch function of the free model values.

    Forward: one LU and the forward solves; backward: the adjoint-state
    gradient (computed in the same call), scaled by the incoming gradient.
    """

    @staticmethod
    def forward(ctx: Any, m_free: torch.Tensor, problem: Any) -> torch.Tensor:
        J, g, _ = problem.objective_and_gradient(m_free.detach().cpu().double().numpy())
        ctx.save_for_backward(torch.as_tensor(g, dtype=m_free.dtype, device=m_free.device))
        return torch.as_tensor(J, dtype=m_free.dtype, device=m_free.device)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        (g,) = ctx.saved_tensors
        return grad_out * g, None


class NeuralModel(torch.nn.Module):
    """``m`` on the free nodes of a problem from a SIREN of the node coordinates.

    Parameters
    ----------
    problem : reference.fwi.InversionProblem
    cfg : ReparamFWIConfig
    """

    def __init__(self, problem: Any, cfg: ReparamFWIConfig) -> None:
        super().__init__()
        self.param = cfg.param
        torch.manual_seed(cfg.seed)
        self.net = cfg.build_model(2, 1)
        # optional detail network (omega_0 continuation): q = q_smooth + q_detail, added later in the run
        self.detail = replace(cfg, first_omega_0=cfg.detail_omega_0).build_model(2, 1) \
            if cfg.detail_omega_0 > 0 else None
        with torch.no_grad():  # start exactly at the background model
            for net in (self.net, self.detail):
                if net is not None:
                    net.layers[-1].weight.zero_()
                    net.layers[-1].bias.zero_()
        X, Y = problem.op.grid.coords()
        pts = np.stack([problem.op.interior(X)[problem.free], problem.op.interior(Y)[problem.free]], 1)
        scale = problem.acq.inner_half_width
        self.register_buffer("x", torch.as_tensor(pts / scale))
        m_lo, m_hi = problem.m_bounds
        mb = problem.m_background
        if self.param == "velocity":
            lo, hi, bg = 1 / math.sqrt(m_hi), 1 / math.sqrt(m_lo), 1 / math.sqrt(mb)
        else:
            lo, hi, bg = m_lo, m_hi, mb
        self.lo, self.hi = lo, hi
        self.b0 = math.log((bg - lo) / (hi - bg))  # sigmoid(b0) = (bg - lo) / (hi - lo)
        nf = int(round(math.sqrt(len(pts))))
        self.block = nf if nf * nf == len(pts) else None  # the free region is a square block (for TV)

    def raw(self) -> torch.Tensor:
        """The bounded quantity (velocity or squared slowness) on the free nodes, (n_free,)."""
        x = self.x.to(self.net.layers[0].weight.dtype)
        q = self.net(x)[:, 0]
        if self.detail is not None:
            q = q + self.detail(x)[:, 0]
        return self.lo + (self.hi - self.lo) * torch.sigmoid(q + self.b0)

    def forward(self) -> torch.Tensor:
        """Squared slowness on the free nodes, (n_free,)."""
        v = self.raw()
        return 1.0 / v**2 if self.param == "velocity" else v

    def velocity(self) -> torch.Tensor:
        v = self.raw()
        return v if self.param == "velocity" else 1.0 / torch.sqrt(v)

    def tv(self, eps: float) -> torch.Tensor:
        """Mean isotropic TV of the velocity on the free block (0 if the block is not square)."""
        if self.block is None:
            return torch.zeros((), dtype=self.x.dtype)
        c = self.velocity().reshape(self.block, self.block)
        dx = c[1:, :-1] - c[:-1, :-1]
        dy = c[:-1, 1:] - c[:-1, :-1]
        return torch.sqrt(dx**2 + dy**2 + eps**2).mean()


@dataclass
class ReparamFWIResult:
    """Outcome of :func:`reparam_fwi`."""

    m: np.ndarray  # (n, n) squared slowness
    wavefields: np.ndarray  # (ns, n, n)
    model: NeuralModel
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    n_evals: int = 0
    config: dict[str, Any] = field(default_factory=dict)


class ReparamLoss:
    """The reparameterised FWI's loss as a problem of :func:`pinnsiren.train.train`: ``misfit``, ``J(m(theta))``
    by :class:`FDMisfit`, and with ``cfg.tv > 0`` ``tv``, ``cfg.tv`` times the TV of the velocity. The loss is
    deterministic: the trainer's generator is not drawn from."""

    def __init__(self, problem: Any, cfg: ReparamFWIConfig) -> None:
        self.problem, self.cfg = problem, cfg

    def losses(self, model: NeuralModel, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        terms = {"misfit": FDMisfit.apply(model(), self.problem)}
        if self.cfg.tv > 0:
            terms["tv"] = self.cfg.tv * model.tv(self.cfg.tv_eps)
        return terms


class _Recorder:
    """The trainer's evaluation hook: the misfit ``objective`` of the current model (one more forward solve),
    the misfit evaluations so far (``evals``; ``offset`` of the stages before) and the callback's metrics."""

    def __init__(self, problem: Any, callback: Callable[[np.ndarray], dict[str, float]] | None,
                 progress: bool) -> None:
        self.problem, self.callback, self.progress = problem, callback, progress
        self.hist: dict[str, list[float]] = {"objective": [], "loss": [], "evals": []}
        self.offset = 0

    def __call__(self, model: NeuralModel, step: int) -> dict[str, float]:
        evals = self.offset + step
        if self.hist["evals"] and self.hist["evals"][-1] == evals:
            return {}  # already recorded (the end of a stage, the start of the next)
        with torch.no_grad():
            m = model().cpu().double().numpy()
        J = float(self.problem.objective_and_gradient(m)[0])
        self.hist["objective"].append(J)
        self.hist["evals"].append(evals)
        if self.callback is not None:
            for k, v in self.callback(self.problem.m_full(m)).items():
                self.hist.setdefault(k, []).append(float(v))
        if self.progress:
            print(f"reparam FWI: evals {evals}, objective {J:.3e}")
        return {}


def _run_adam(model: NeuralModel, loss: ReparamLoss, rec: _Recorder, cfg: ReparamFWIConfig, progress: bool) -> None:
    """Adam by :func:`pinnsiren.train.train`: ``min(iterations, max_evals)`` steps at ``lr`` on all the weights
    (the detail network included), the alarm off, every step's loss logged, the recorder every thirtieth."""
    steps = min(cfg.iterations, cfg.max_evals)
    tc = TrainConfig(phases=(Adam(steps, lr=cfg.lr),), alarm="off", seed=cfg.seed, device=cfg.device, log_every=1,
                     eval_every=max(1, cfg.iterations // 30), progress=progress)
    out = train(loss, model, tc, evaluate=rec)
    rec.hist["loss"] += out.history["loss"]
    rec.offset += out.steps_done


def _run_lbfgs(model: NeuralModel, loss: ReparamLoss, rec: _Recorder, cfg: ReparamFWIConfig, progress: bool) -> None:
    """scipy's L-BFGS-B on the flattened weights (why not the trainer's L-BFGS: the module doc); with a detail
    network, first the smooth network alone for ``detail_from`` of the iterations and evaluations."""
    from scipy.optimize import minimize
    from torch.nn.utils import parameters_to_vector, vector_to_parameters

    state: dict[str, Any] = {"params": list(model.parameters()), "it": 0}
    every = max(1, cfg.iterations // 30)

    def put(theta: np.ndarray) -> None:
        with torch.no_grad():
            vector_to_parameters(torch.as_tensor(theta, dtype=model.x.dtype, device=model.x.device), state["params"])

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        put(theta)
        for p in state["params"]:
            p.grad = None
        value = sum(loss.losses(model, rec.offset, None).values())
        value.backward()
        rec.offset += 1
        rec.hist["loss"].append(float(value.detach()))
        grad = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in state["params"]])
        return rec.hist["loss"][-1], grad.detach().cpu().double().numpy()

    def callback(theta: np.ndarray) -> None:
        state["it"] += 1
        if state["it"] % every == 0:
            put(theta)
            rec(model, 0)

    stages = [(list(model.net.parameters()), cfg.detail_from)] if model.detail is not None else []
    for plist, frac in stages + [(list(model.parameters()), 1.0)]:
        state["params"] = plist
        its, evs = int(round(frac * cfg.iterations)) - state["it"], int(round(frac * cfg.max_evals)) - rec.offset
        if its > 0 and evs > 0:
            res = minimize(fun, parameters_to_vector(plist).detach().cpu().double().numpy(), jac=True,
                           method="L-BFGS-B", callback=callback,
                           options={"maxiter": its, "maxfun": evs, "maxcor": 20, "ftol": 1e-15, "gtol": 1e-12})
            put(res.x)
    rec(model, 0)


def reparam_fwi(problem: Any, cfg: ReparamFWIConfig | None = None,
                callback: Callable[[np.ndarray], dict[str, float]] | None = None,
                progress: bool = False) -> ReparamFWIResult:
    """Invert with the SIREN model, trained by :func:`pinnsiren.train.train` on :class:`ReparamLoss`.

    ``history``: ``loss`` at every misfit evaluation (an L-BFGS stage's last entry is its best point, where
    the model is left), and at the start, every thirtieth of the run and the end ``objective``, ``evals``
    and the metrics of ``callback(m_full)``.
    """
    cfg = cfg or ReparamFWIConfig()
    cfg.validate()
    t0, c0 = time.perf_counter(), time.process_time()
    model = NeuralModel(problem, cfg).to(device=cfg.device, dtype=getattr(torch, cfg.dtype))
    rec = _Recorder(problem, callback, progress)
    rec(model, 0)
    (_run_lbfgs if cfg.optimizer == "lbfgs" else _run_adam)(model, ReparamLoss(problem, cfg), rec, cfg, progress)
    with torch.no_grad():
        m = model().cpu().double().numpy()
    U = problem.forward(m)
    waves = np.stack([problem.op.to_full(U[:, s]) for s in range(U.shape[1])])
    return ReparamFWIResult(m=problem.m_full(m), wavefields=waves, model=model, history=rec.hist,
                            seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
                            n_evals=rec.offset, config=asdict(cfg))


def chained_taylor_test(problem: Any, model: NeuralModel, h0: float = 1e-1, halvings: int = 4,
                        seed: int = 0) -> dict[str, np.ndarray]:
    """Taylor remainders of ``theta -> J(m(theta))`` along a random weight direction.

    ``r0(h) = |J(theta + h v) - J(theta)|`` is O(h); ``r1(h) = |... - h <dJ/dtheta, v>|``
    is O(h^2) when the chained gradient is right (halving ratios 2 and 4).
    Returns ``h``, ``r0``, ``r1``, ``ratio0``, ``ratio1``, ``slope`` (``<dJ/dtheta, v>``) and
    ``dJ`` (``J(theta + h v) - J(theta)``).
    """
    params = [p for p in model.parameters()]
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) * (p.detach().abs().mean() + 1e-2) for p in params]
    for p in params:
        p.grad = None
    J = FDMisfit.apply(model(), problem)
    J.backward()
    slope = float(sum((p.grad * vi).sum() for p, vi in zip(params, v)))
    J0 = float(J.detach())
    base = [p.detach().clone() for p in params]
    hs = h0 * 0.5 ** np.arange(halvings + 1)
    r0, r1, dJ = [], [], []
    with torch.no_grad():
        for h in hs:
            for p, b, vi in zip(params, base, v):
                p.copy_(b + h * vi)
            Jh = float(FDMisfit.apply(model(), problem))
            dJ.append(Jh - J0)
            r0.append(abs(Jh - J0))
            r1.append(abs(Jh - J0 - h * slope))
        for p, b in zip(params, base):
            p.copy_(b)
    r0a, r1a = np.array(r0), np.array(r1)
    return {"h": hs, "r0": r0a, "r1": r1a, "ratio0": r0a[:-1] / r0a[1:], "ratio1": r1a[:-1] / r1a[1:],
            "slope": slope, "dJ": np.array(dJ)}
