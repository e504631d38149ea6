"""Sampling primitives of the regions: step-dependent values, uniform boxes and balls,
and exact-count uniform sampling of a boundary made of primitive pieces with normals.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

__all__ = []  # helpers of pinnsiren.geometry and pinnsiren.regions


def _resolve(v: Any, step: int) -> Any:
    return v(step) if callable(v) else v


def _bounds(b: Any, step: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(_resolve(b, step), dtype=np.float64))
    if t.ndim != 2 or t.shape[1] != 2:
        raise ValueError(f"bounds must be a sequence of (lo, hi) pairs, got {t.tolist()}")
    if not bool((t[:, 1] >= t[:, 0]).all()):
        raise ValueError(f"bounds need lo <= hi on every axis, got {t.tolist()}")
    return t


def _check_extent(b: torch.Tensor, what: str) -> None:
    """Refuse a region box with an axis of zero width or a non-finite bound (it would sample nothing useful)."""
    if not bool(torch.isfinite(b).all()):
        raise ValueError(f"{what}: bounds must be finite, got {b.tolist()}")
    flat = [a for a in range(b.shape[0]) if not bool(b[a, 1] > b[a, 0])]
    if flat:
        raise ValueError(f"{what}: axis {flat[0]} has zero width (bounds {b[flat[0]].tolist()}); "
                         "every axis needs lo < hi")


def _uniform(n: int, b: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(n, b.shape[0], generator=g, dtype=torch.float64)
    return b[:, 0] + u * (b[:, 1] - b[:, 0])


def _unit_vectors(n: int, d: int, g: torch.Generator | None) -> torch.Tensor:
    v = torch.randn(n, d, generator=g, dtype=torch.float64)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-300)


def _ball_offsets(n: int, d: int, radius: Any, g: torch.Generator | None) -> torch.Tensor:
    """``n`` points uniform in the ``d``-ball of ``radius`` (a number or an ``(n, 1)`` tensor) around 0."""
    v = _unit_vectors(n, d, g)
    return radius * torch.rand(n, 1, generator=g, dtype=torch.float64) ** (1.0 / d) * v


class _Piece:
    """A part of a primitive's boundary: its measure and a uniform sampler with normals.

    ``draw(m, step, g) -> (x (m, d), normal (m, d), keep (m,) bool)``.
    """

    def __init__(self, measure: float, draw: Callable) -> None:
        self.measure = float(measure)
        self.draw = draw


def _filtered(piece: _Piece, keep: Callable[[torch.Tensor], torch.Tensor], flip: bool) -> _Piece:
    def draw(m, step, g):
        x, nrm, k = piece.draw(m, step, g)
        return x, (-nrm if flip else nrm), k & keep(x)

    return _Piece(piece.measure, draw)


def _sample_pieces(pieces: list[_Piece], n: int, step: int, g: torch.Generator | None, what: str):
    """Exactly ``n`` points uniform on the union of the kept parts of ``pieces``, with normals."""
    meas = torch.tensor([p.measure for p in pieces], dtype=torch.float64)
    if n == 0:
        d = pieces[0].draw(1, step, g)[0].shape[1]
        return torch.zeros(0, d, dtype=torch.float64), torch.zeros(0, d, dtype=torch.float64)
    if float(meas.sum()) <= 0:
        raise ValueError(f"{what}: the boundary has zero measure")
    probs = meas / meas.sum()
    xs, ns = [], []
    have, rate, tries = 0, 1.0, 0
    while have < n:
        m = int(math.ceil((n - have) / max(rate, 1e-3) * 1.1)) + 16
        counts = torch.bincount(torch.multinomial(probs, m, replacement=True, generator=g), minlength=len(pieces))
        kept = 0
        for p, c in zip(pieces, counts.tolist()):
            if c == 0:
                continue
            x, nrm, keep = p.draw(c, step, g)
            xs.append(x[keep])
            ns.append(nrm[keep])
            kept += int(keep.sum())
        rate = max(kept / m, 1e-3) if tries == 0 else 0.5 * rate + 0.5 * max(kept / m, 1e-3)
        have += kept
        tries += 1
        if tries > 200:
            raise ValueError(f"{what}: could not sample the boundary (is it empty?)")
    x, nrm = torch.cat(xs), torch.cat(ns)
    # the pieces were drawn in blocks: a random subset keeps the draw i.i.d.
    idx = torch.randperm(x.shape[0], generator=g)[:n]
    return x[idx], nrm[idx]
