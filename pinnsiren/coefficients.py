"""Data-backed coefficient functions for compiled residuals.

A named coefficient of a residual (see :func:`pinnsiren.compile_residual`)
may be given as a callable ``x -> (N,)``; the callables here are
differentiable with respect to ``x`` so the residual may differentiate them.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["GridInterpolant"]


class GridInterpolant(nn.Module):
    """Bilinear (2-D) or trilinear (3-D) interpolation of values on a regular grid.

    Parameters
    ----------
    values : array or Tensor, shape (n_0, n_1[, n_2])
        Grid values, ``values[i, j]`` at ``(lo_0 + i h_0, lo_1 + j h_1)``
        ("ij" indexing), real or complex. Must be finite.
    bounds : sequence of (lo, hi)
        Extent of the grid along each axis (grid nodes include both ends).

    Notes
    -----
    Points outside the box take the value at the nearest boundary point
    (constant extrapolation, zero derivative across). The interpolant is
    continuous and piecewise (bi/tri)linear, so its first derivatives are
    piecewise constant along each axis and pure second derivatives vanish
    almost everywhere; gradients flow to ``x`` through autograd.
    Call with ``x`` of shape ``(N, d)``; returns ``(N,)``.
    """

    def __init__(self, values: np.ndarray | torch.Tensor, bounds: Sequence[Sequence[float]]) -> None:
        super().__init__()
        v = torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values)
        if v.ndim not in (2, 3):
            raise ValueError(f"GridInterpolant needs 2-D or 3-D grid values, got shape {tuple(v.shape)}")
        if len(bounds) != v.ndim:
            raise ValueError(f"values are {v.ndim}-D but {len(bounds)} bounds were given")
        if any(n < 2 for n in v.shape):
            raise ValueError(f"every grid axis needs >= 2 nodes, got shape {tuple(v.shape)}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError("GridInterpolant values contain non-finite entries (NaN or inf)")
        lo = torch.tensor([float(b[0]) for b in bounds], dtype=torch.float64)
        hi = torch.tensor([float(b[1]) for b in bounds], dtype=torch.float64)
        if not bool((hi > lo).all()):
            raise ValueError(f"bounds must have lo < hi on every axis, got {bounds}")
        if not (v.is_complex() or v.is_floating_point()):
            v = v.to(torch.float64)
        self.register_buffer("values", v)
        self.register_buffer("lo", lo)
        self.register_buffer("hi", hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.values.ndim
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(f"GridInterpolant on a {d}-D grid needs x of shape (N, {d}), got {tuple(x.shape)}")
        shape = torch.tensor(self.values.shape, device=x.device)
        n = (shape - 1).to(x.dtype)
        t = (x - self.lo.to(x)) / (self.hi - self.lo).to(x) * n
        t = torch.minimum(torch.clamp(t, min=0.0), n)
        i0 = torch.minimum(torch.floor(t.detach()).long(), shape - 2)
        f = t - i0.to(x.dtype)  # (N, d) in [0, 1]
        vals = self.values
        vals = vals.to(torch.promote_types(vals.dtype, x.dtype) if vals.is_complex() else x.dtype)
        out = 0
        for corner in itertools.product((0, 1), repeat=d):
            idx = tuple(i0[:, k] + corner[k] for k in range(d))
            w = 1
            for k in range(d):
                w = w * (f[:, k] if corner[k] else 1 - f[:, k])
            out = out + w * vals[idx]
        return out
