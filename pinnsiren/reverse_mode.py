"""Reverse-mode fallback of the derivative engine: nested ``torch.autograd.grad``.

Used for any model the jet path does not handle, for orders above 2, and by
the compiler for coefficient derivatives (:func:`autograd_partials`).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from .jet_keys import Key, check_count

__all__ = ["autograd_partials", "autograd_derivatives"]


def autograd_partials(y: torch.Tensor, x: torch.Tensor, keys: Iterable[tuple[int, tuple[int, ...]]]) -> dict:
    """Partial derivatives of the columns of ``y`` w.r.t. ``x`` by nested autograd.

    Parameters
    ----------
    y : Tensor (N, C)
        Real values computed from ``x`` (pointwise: row n depends on x[n] only).
    x : Tensor (N, d)
        Points; must require grad if any derivative is nonzero.
    keys : iterable of (column, multi_index)

    Every parent derivative is differentiated once (one ``autograd.grad`` call
    gives all ``d`` children), and the results keep the graph
    (``create_graph=True``). A column that does not depend on ``x`` gets
    zeros.
    """
    d = x.shape[1]
    memo: dict = {}

    def get(c: int, a: tuple[int, ...]) -> torch.Tensor:
        if (c, a) in memo:
            return memo[(c, a)]
        if sum(a) == 0:
            memo[(c, a)] = y[:, c]
            return memo[(c, a)]
        k = next(i for i, v in enumerate(a) if v > 0)
        parent = tuple(v - (i == k) for i, v in enumerate(a))
        p = get(c, parent)
        g = None
        if p.requires_grad:
            (g,) = torch.autograd.grad(p.sum(), x, create_graph=True, allow_unused=True)
        if g is None:
            g = torch.zeros_like(x)
        for j in range(d):
            memo.setdefault((c, tuple(v + (i == j) for i, v in enumerate(parent))), g[:, j])
        return memo[(c, a)]

    return {(c, a): get(c, a) for c, a in sorted(keys, key=lambda ka: sum(ka[1]))}


def autograd_derivatives(model: nn.Module, x: torch.Tensor, keys: list[Key], channels: int | None = None) -> dict[Key, torch.Tensor]:
    xg = x if x.requires_grad else x.detach().requires_grad_(True)
    y = model(xg)
    if y.ndim != 2:
        raise ValueError(f"model output must have shape (N, C), got {tuple(y.shape)}")
    C = y.shape[1]
    check_count(C, channels)
    for c, _ in keys:
        if c >= C:
            raise ValueError(f"derivative requested for channel {c} but the model has {C} output channels")
    return autograd_partials(y, xg, keys)
