"""Loss balancing: per-term weights updated during training from gradient norms.

The trainer minimises ``sum_i lambda_i L_i`` where ``L_i`` are the problem's
loss terms (already carrying their declared weights) and ``lambda_i`` are the
balancing factors kept here. The rule:

``"gradnorm"``
    Learning-rate annealing by gradient norms (Wang, Teng & Perdikaris,
    SIAM J. Sci. Comput. 2021, in the L2-norm form later used by the same
    group): every ``every`` steps,

    ``lambda_hat_i = (sum_j ||grad L_j||) / ||grad L_i||``,

    ``lambda_i <- m * lambda_i + (1 - m) * lambda_hat_i``,

    so that every term pulls on the parameters with the same gradient norm.
    A term whose gradient is small relative to the others (typically a
    boundary or initial condition next to a PDE residual with second
    derivatives) gets a larger factor; a dominating term a smaller one.

Factors start at 1. They are normalised so their mean is 1 (the overall
step size keeps the meaning of the learning rate).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import torch

__all__ = ["BALANCERS", "LossBalancer"]

BALANCERS = ("none", "gradnorm")


def grad_norm(loss: torch.Tensor, params: list[torch.Tensor]) -> float:
    """``||d loss / d params||_2`` (0 for a term that does not depend on ``params``)."""
    if not loss.requires_grad:
        return 0.0
    gs = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    sq = sum(float((g.detach() ** 2).sum()) for g in gs if g is not None)
    return sq**0.5


class LossBalancer:
    """Holds the balancing factors ``lambda_i`` and updates them.

    Parameters
    ----------
    method : {"none", "gradnorm"}
    every : int
        Update the factors every this many steps (and at the first step).
    momentum : float
        Weight of the old factor in the moving average (0: take the new value).
    max_factor : float
        Factors are clipped to ``[1 / max_factor, max_factor]`` before
        normalisation, so one term with a vanishing gradient cannot take
        over.
    """

    def __init__(self, method: str = "gradnorm", every: int = 100, momentum: float = 0.9,
                 max_factor: float = 1e4) -> None:
        if method not in BALANCERS:
            raise ValueError(f"unknown loss balancing {method!r}; must be one of {BALANCERS}")
        if every < 1:
            raise ValueError(f"balance_every must be >= 1, got {every}")
        if not 0 <= momentum < 1:
            raise ValueError(f"balance_momentum must be in [0, 1), got {momentum}")
        self.method = method
        self.every = every
        self.momentum = momentum
        self.max_factor = max_factor
        self.weights: dict[str, float] = {}
        self.updates = 0

    def due(self, step: int) -> bool:
        return self.method != "none" and (self.updates == 0 or step % self.every == 0)

    def target(self, terms: Mapping[str, torch.Tensor], params: Iterable[torch.Tensor]) -> dict[str, float]:
        """The new factors ``lambda_hat`` from the current terms (before averaging and normalising)."""
        params = [p for p in params if p.requires_grad]
        norms = {k: grad_norm(v, params) for k, v in terms.items()}
        total = sum(norms.values())
        out = {}
        for k, n in norms.items():
            lam = total / n if n > 0 else self.max_factor
            out[k] = min(max(lam, 1.0 / self.max_factor), self.max_factor)
        return out

    def update(self, terms: Mapping[str, torch.Tensor], params: Iterable[torch.Tensor]) -> dict[str, float]:
        """Recompute the factors (moving average, then mean 1); returns them."""
        new = self.target(terms, params)
        m = self.momentum if self.updates else 0.0
        w = {k: m * self.weights.get(k, v) + (1 - m) * v for k, v in new.items()}
        mean = sum(w.values()) / max(len(w), 1)
        self.weights = {k: v / mean for k, v in w.items()}
        self.updates += 1
        return dict(self.weights)

    def combine(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``sum_i lambda_i L_i`` (plain sum when balancing is off)."""
        if self.method == "none" or not self.weights:
            return sum(terms.values())
        return sum(self.weights.get(k, 1.0) * v for k, v in terms.items())

    def state_dict(self) -> dict:
        return {"weights": dict(self.weights), "updates": self.updates}

    def load_state_dict(self, state: Mapping) -> None:
        self.weights = {k: float(v) for k, v in state.get("weights", {}).items()}
        self.updates = int(state.get("updates", 0))
