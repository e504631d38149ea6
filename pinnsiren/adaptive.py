"""Training aids that look at the residual: adaptive sampling and causal weights.

Residual-based adaptive distribution (RAD; Wu, Zhu, Tan, Kartha & Lu, CMAME
2023): every ``every`` steps a pool of candidate points is drawn from the
constraint's own region and the per-point loss ``p(x)`` evaluated there; until
the next refresh, each step's points are drawn from the pool with probability

``q(x) ∝ p(x)^k / mean(p^k) + c``

(``k = 1, c = 1`` is the paper's recommended RAD default: half the points
follow the residual, half stay uniform). :class:`AdaptiveRegion` wraps a
region and does exactly this; the trainer wraps every sampled constraint for
the duration of a run and restores the problem afterwards.

Causal weights for evolution problems (Wang, Sankaran & Perdikaris, CMAME
2024): the per-point losses of a term are grouped into ``bins`` slabs of the
time coordinate, ``L_b`` the mean loss of slab ``b``, and the term becomes

``sum_b w_b L_b / bins``,  ``w_b = exp(-eps * sum_{b' < b} L_b')`` (no gradient through ``w``),

so later times are not fitted before earlier ones are. See
:func:`causal_loss`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .geometry import Region
from .regions import PointSet

__all__ = ["AdaptiveRegion", "causal_loss", "rad_probabilities"]


def rad_probabilities(p: torch.Tensor, k: float = 1.0, c: float = 1.0) -> torch.Tensor:
    """RAD sampling probabilities from per-point losses ``p`` (N,): ``∝ p^k / mean(p^k) + c``, summing to 1."""
    p = p.detach().double().clamp_min(0)
    pk = p**k
    m = float(pk.mean())
    q = (pk / m if m > 0 and math.isfinite(m) else torch.zeros_like(pk)) + c
    if float(q.sum()) <= 0:
        q = torch.ones_like(q)
    return q / q.sum()


class AdaptiveRegion(Region):
    """A region whose samples follow the residual (RAD) over a pool drawn from ``base``.

    Parameters
    ----------
    base : Region
        The constraint's own region (not a :class:`PointSet`).
    pool : int
        Candidates per refresh.
    k, c : float
        RAD exponent and uniform share (see module doc).

    Until :meth:`refresh` has run once, sampling falls through to ``base``.
    """

    def __init__(self, base: Region, pool: int, k: float = 1.0, c: float = 1.0) -> None:
        if isinstance(base, PointSet):
            raise TypeError("AdaptiveRegion needs a sampled region, not a PointSet")
        if pool < 1:
            raise ValueError(f"pool must be >= 1, got {pool}")
        self.base = base
        self.dim = base.dim
        self.data_names = tuple(getattr(base, "data_names", ()))  # e.g. boundary normals: passed through by row
        self.pool_size = int(pool)
        self.k, self.c = float(k), float(c)
        self.points: torch.Tensor | None = None
        self.data: dict[str, torch.Tensor] = {}
        self.probs: torch.Tensor | None = None

    def refresh(self, pointwise, step: int, generator: torch.Generator | None, dtype, device) -> torch.Tensor:
        """Draw a new pool and set its probabilities from ``pointwise(x, data) -> (N,)``; returns the pool losses."""
        x, data = self.base.sample(self.pool_size, step, generator)
        with torch.enable_grad():
            p = pointwise(x.to(device=device, dtype=dtype), data).detach()
        self.points, self.data = x, dict(data)
        self.probs = rad_probabilities(p.cpu(), self.k, self.c)
        return p

    def clear(self) -> None:
        """Forget the pool: sampling falls through to ``base`` (uniform) until the next :meth:`refresh`."""
        self.points, self.data, self.probs = None, {}, None

    def sample(self, n: int | None, step: int, generator: torch.Generator | None) -> tuple[torch.Tensor, dict]:
        if self.points is None or n is None:
            return self.base.sample(n, step, generator)
        replace = n > self.points.shape[0]
        idx = torch.multinomial(self.probs, n, replacement=replace, generator=generator)
        return self.points[idx], {k: v[idx] for k, v in self.data.items()}


def causal_loss(t: torch.Tensor, p: torch.Tensor, eps: float, bins: int = 16,
                t_range: tuple[float, float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Causally weighted mean of per-point losses ``p`` (N,) at times ``t`` (N,).

    Returns ``(loss, w)`` with ``w`` (bins,) the slab weights (1 for the
    first slab, falling towards 0 while earlier slabs are unresolved).
    Empty slabs contribute nothing. ``t_range`` defaults to the sample's
    min and max.
    """
    if bins < 1:
        raise ValueError(f"causal bins must be >= 1, got {bins}")
    t = t.detach()
    lo, hi = (float(t.min()), float(t.max())) if t_range is None else t_range
    if not hi > lo:
        return p.mean(), torch.ones(1, dtype=p.dtype, device=p.device)
    b = ((t - lo) / (hi - lo) * bins).long().clamp(0, bins - 1)
    sums = torch.zeros(bins, dtype=p.dtype, device=p.device).index_add(0, b, p)
    counts = torch.zeros(bins, dtype=p.dtype, device=p.device).index_add(0, b, torch.ones_like(p))
    filled = counts > 0
    means = torch.where(filled, sums / counts.clamp_min(1), torch.zeros_like(sums))
    before = torch.cumsum(means.detach(), 0) - means.detach()
    w = torch.exp(-eps * before)
    loss = (w * means)[filled].sum() / filled.sum()
    return loss, w


def time_index(coords: Any, name: str | int | None) -> int | None:
    """Column of the time coordinate ``name`` (a symbol name or an index) among ``coords``."""
    if name is None:
        return None
    if isinstance(name, int):
        return name
    names = [getattr(c, "name", str(c)) for c in coords]
    if name not in names:
        raise ValueError(f"causal time coordinate {name!r} is not one of the coordinates {names}")
    return names.index(name)
