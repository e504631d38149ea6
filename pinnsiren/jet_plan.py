"""Slot layout of a stacked Taylor jet, shared by the generic layer rules and the fused SIREN kernels.

A jet is one ``(T, N, H)`` tensor: slot 0 the value, then the first
derivatives along the needed directions, the needed second-derivative pairs,
and one collapsed slot per :class:`~pinnsiren.jet_keys.Laplacian` request.
"""

from __future__ import annotations

import torch

from .jet_keys import Key, Laplacian

__all__ = ["Plan", "by_weight", "weighted_squares"]


class Plan:
    """Slot layout: value, first derivatives along ``dirs``, second along
    ``pairs``, then one collapsed slot per :class:`Laplacian` in ``groups``.

    ``terms[g]`` lists ``(i, w)`` for group ``g``: ``i`` indexes ``dirs``,
    ``w`` is a float or a tensor ``(N, 1)``.
    """

    def __init__(self, dirs, pairs, groups=(), terms=()) -> None:
        self.dirs = sorted(dirs)
        self.pairs = sorted(pairs)
        self.groups = list(groups)
        self.K, self.P, self.G = len(self.dirs), len(self.pairs), len(self.groups)
        pos = {k: i for i, k in enumerate(self.dirs)}
        self.pair_pos = tuple((pos[k], pos[l]) for k, l in self.pairs)
        self.terms = tuple(tuple((pos[k], w) for k, w in ts) for ts in terms)
        self.grad_weights = any(torch.is_tensor(w) and w.requires_grad for ts in self.terms for _, w in ts)

    @classmethod
    def from_keys(cls, keys: list[Key], d: int, n: int) -> "Plan":
        dirs: set[int] = set()
        pairs: set[tuple[int, int]] = set()
        groups: list[Laplacian] = []
        terms = []
        for _, a in keys:
            if isinstance(a, Laplacian):
                if a not in groups:
                    groups.append(a)
                    terms.append(a.resolve(d, n))
                    dirs.update(k for k, _ in terms[-1])
                continue
            nz = [i for i, v in enumerate(a) for _ in range(v)]
            dirs.update(nz)
            if len(nz) == 2:
                pairs.add((nz[0], nz[1]))
        return cls(dirs, pairs, groups, terms)

    def slot(self, a) -> int:
        if isinstance(a, Laplacian):
            return 1 + self.K + self.P + self.groups.index(a)
        nz = [i for i, v in enumerate(a) for _ in range(v)]
        if not nz:
            return 0
        if len(nz) == 1:
            return 1 + self.dirs.index(nz[0])
        return 1 + self.K + self.pairs.index((nz[0], nz[1]))


def by_weight(terms) -> list[tuple[float | torch.Tensor, list[int]]]:
    """A group's ``(i, w)`` terms as ``(w, [i, ...])``: per-point weights that are one
    tensor (e.g. the wave's ``-c^2`` on both space axes) share an entry, so each
    broadcast product with them is done once."""
    out: list[tuple[float | torch.Tensor, list[int]]] = []
    for i, w in terms:
        same = next((e for e in out if torch.is_tensor(w) and e[0] is w), None)
        if same is None:
            out.append((w, [i]))
        else:
            same[1].append(i)
    return out


def weighted_squares(Z: torch.Tensor, terms, offset: int = 1) -> torch.Tensor:
    """``sum_i w_i Z[offset + i]^2`` over a group's ``(i, w)`` terms."""
    q = None
    for w, idx in by_weight(terms):
        sq = None if torch.is_tensor(w) else q  # constant weights accumulate directly
        for i in idx:
            zi = Z[offset + i]
            v = 1.0 if torch.is_tensor(w) else w
            if sq is None:
                sq = zi * zi if v == 1.0 else torch.mul(zi, zi).mul_(v)
            else:
                sq.addcmul_(zi, zi, value=v)
        if torch.is_tensor(w):
            q = sq.mul_(w) if q is None else q.addcmul_(sq, w)
        else:
            q = sq
    return q
