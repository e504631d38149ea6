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

Optimisers: ``"lbfgs"`` (default; scipy's L-BFGS-B on the flattened weights,
unbounded: the objective is deterministic, so a quasi-Newton method applies as
it does to the adjoint-state method) or ``"adam"``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np
import torch

from pinnsiren.settings import ModelSettings, TrainerFlags

__all__ = ["ReparamFWIConfig", "OptimSettings", "ReparamFWIResult", "FDMisfit", "NeuralModel", "reparam_fwi",
           "chained_taylor_test"]


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
    """lbfgs (scipy's L-BFGS-B on the weights) or adam."""
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


def _loss(model: NeuralModel, problem: Any, cfg: ReparamFWIConfig) -> tuple[torch.Tensor, torch.Tensor]:
    m = model()
    J = FDMisfit.apply(m, problem)
    loss = J + cfg.tv * model.tv(cfg.tv_eps) if cfg.tv > 0 else J
    return loss, J


class _Run:
    """State shared by the optimiser steps of one :func:`reparam_fwi` run: the model, the
    history, the misfit-evaluation count, and the recording of metrics."""

    def __init__(self, problem: Any, cfg: ReparamFWIConfig, callback: Callable[[np.ndarray], dict[str, float]] | None,
                 progress: bool) -> None:
        self.problem, self.cfg, self.callback, self.progress = problem, cfg, callback, progress
        self.dtype = getattr(torch, cfg.dtype)
        self.model = NeuralModel(problem, cfg).to(device=cfg.device, dtype=self.dtype)
        self.hist: dict[str, list[float]] = {"objective": [], "loss": [], "evals": []}
        self.evals = 0
        self.record_every = max(1, cfg.iterations // 30)

    def record(self) -> None:
        with torch.no_grad():
            m = self.model().cpu().double().numpy()
        J = self.problem.objective_and_gradient(m)[0]
        self.hist["objective"].append(float(J))
        self.hist["evals"].append(self.evals)
        if self.callback is not None:
            for k, v in self.callback(self.problem.m_full(m)).items():
                self.hist.setdefault(k, []).append(float(v))

    def loss_backward(self) -> None:
        """One misfit evaluation with its gradient in the parameters' ``.grad``."""
        loss, _ = _loss(self.model, self.problem, self.cfg)
        loss.backward()
        self.evals += 1
        self.hist["loss"].append(float(loss.detach()))

    def report(self, it: int) -> None:
        if self.progress and it % 10 == 0:
            print(f"reparam FWI: iteration {it}, evals {self.evals}, loss {self.hist['loss'][-1]:.3e}")

    def set_params(self, theta: np.ndarray, params: list[torch.nn.Parameter]) -> None:
        from torch.nn.utils import vector_to_parameters

        with torch.no_grad():
            vector_to_parameters(torch.as_tensor(theta, dtype=self.dtype, device=self.cfg.device), params)


def _run_lbfgs(run: _Run) -> None:
    """scipy L-BFGS-B on the weights; with a detail network, first the smooth network alone."""
    from scipy.optimize import minimize
    from torch.nn.utils import parameters_to_vector

    cfg, model = run.cfg, run.model
    current: dict[str, Any] = {"params": list(model.parameters()), "it": 0}

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = current["params"]
        run.set_params(theta, params)
        for p in params:
            p.grad = None
        run.loss_backward()
        grad = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        return run.hist["loss"][-1], grad.detach().cpu().double().numpy()

    def cb(theta: np.ndarray) -> None:
        current["it"] += 1
        if current["it"] % run.record_every == 0:
            run.set_params(theta, current["params"])
            run.record()
        run.report(current["it"])

    phases = [(list(model.net.parameters()), cfg.detail_from)] if model.detail is not None else []
    phases.append((list(model.parameters()), 1.0))
    done_it = 0
    for plist, frac in phases:
        current["params"] = plist
        it_budget = int(round(frac * cfg.iterations)) - done_it
        ev_budget = int(round(frac * cfg.max_evals)) - run.evals
        if it_budget <= 0 or ev_budget <= 0:
            continue
        theta0 = parameters_to_vector(plist).detach().cpu().double().numpy()
        res = minimize(fun, theta0, jac=True, method="L-BFGS-B", callback=cb,
                       options={"maxiter": it_budget, "maxfun": ev_budget, "maxcor": 20,
                                "ftol": 1e-15, "gtol": 1e-12})
        run.set_params(res.x, plist)
        done_it = current["it"]


def _run_adam(run: _Run) -> None:
    """Adam on the weights, one misfit evaluation per step."""
    opt = torch.optim.Adam(run.model.parameters(), lr=run.cfg.lr)
    for it in range(run.cfg.iterations):
        if run.evals >= run.cfg.max_evals:
            break
        opt.zero_grad()
        run.loss_backward()
        opt.step()
        if (it + 1) % run.record_every == 0:
            run.record()
        run.report(it + 1)


def reparam_fwi(problem: Any, cfg: ReparamFWIConfig | None = None,
                callback: Callable[[np.ndarray], dict[str, float]] | None = None,
                progress: bool = False) -> ReparamFWIResult:
    """Invert with the SIREN model; ``callback(m_full)`` metrics are recorded at every iteration."""
    cfg = cfg or ReparamFWIConfig()
    cfg.validate()
    run = _Run(problem, cfg, callback, progress)
    t0, c0 = time.perf_counter(), time.process_time()
    run.record()
    (_run_lbfgs if cfg.optimizer == "lbfgs" else _run_adam)(run)
    with torch.no_grad():
        m = run.model().cpu().double().numpy()
    U = problem.forward(m)
    waves = np.stack([problem.op.to_full(U[:, s]) for s in range(U.shape[1])])
    return ReparamFWIResult(m=problem.m_full(m), wavefields=waves, model=run.model, history=run.hist,
                            seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
                            n_evals=run.evals, config=asdict(cfg))


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
