"""Generic Taylor-mode layer rules: a stacked jet through linear layers, elementwise
activations (their Taylor rule from :data:`~pinnsiren.networks.ACTIVATIONS`) and the
input encodings (positional encoding, Gaussian RBF layer).

Composable autograd operations: used for every MLP, and for a SIREN when ``x``
or a Laplacian weight requires grad (else :mod:`pinnsiren.siren_kernels`).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .jet_plan import Plan, weighted_squares
from .networks import PositionalEncoding, RBFLayer

__all__ = ["activate", "linear", "first_layer_jet", "encoding_jet"]


def activate(S: torch.Tensor, plan: Plan, taylor: Callable) -> torch.Tensor:
    """Apply an elementwise activation to a stacked jet ``S`` of shape (T, N, H)."""
    K, P = plan.K, plan.P
    v, d1, d2 = taylor(S[0])
    if not K:
        return v[None]
    # one product for all tangent slots: dh_k = s' dz_k, d2h_kl = s' d2z_kl + ...
    out = d1[None] * S[1:]
    if d2 is not None:
        # the product's result is not saved for backward, so in-place is safe
        for p, (i, j) in enumerate(plan.pair_pos):
            out[K + p] += d2 * S[1 + i] * S[1 + j]
        for g, terms in enumerate(plan.terms):
            out[K + P + g] += d2 * weighted_squares(S, terms)
    return torch.cat([v[None], out], 0)


def linear(S: torch.Tensor, layer: nn.Linear, scale: float = 1.0, value_slot: bool = True) -> torch.Tensor:
    """``W S_t`` for every slot ``t``, plus the bias on slot 0 when ``value_slot`` (it is the value)."""
    W = layer.weight if scale == 1.0 else layer.weight * scale
    T, N, H = S.shape
    Z = torch.matmul(S.reshape(T * N, H), W.t()).reshape(T, N, -1)
    b = layer.bias if scale == 1.0 else layer.bias * scale
    if value_slot:
        Z[0] += b  # the bias enters the value slot only
    elif b is not None and b.requires_grad:
        Z = Z + 0.0 * b  # keep it in the graph (a zero gradient, as on every other path)
    return Z


def _input_jet(x: torch.Tensor, plan: Plan) -> torch.Tensor:
    """Jet of the identity map: value x, first derivatives e_k, zero second."""
    N, d = x.shape
    S = x.new_zeros((1 + plan.K + plan.P + plan.G, N, d))
    S[0] = x
    for i, k in enumerate(plan.dirs):
        S[1 + i, :, k] = 1.0
    return S


def first_layer_jet(x: torch.Tensor, layer: nn.Linear, plan: Plan, scale: float) -> torch.Tensor:
    """First linear layer on raw coordinates: dz_k = W[:, k] and every second-order slot 0."""
    W = layer.weight * scale
    z = torch.nn.functional.linear(x, W, layer.bias * scale)
    N = x.shape[0]
    parts = [z[None]]
    if plan.K:
        parts.append(W.t()[plan.dirs][:, None, :].expand(plan.K, N, -1))
    if plan.P + plan.G:
        parts.append(z.new_zeros((plan.P + plan.G, N, z.shape[1])))
    return torch.cat(parts, 0)


def encoding_jet(enc: nn.Module, x: torch.Tensor, plan: Plan) -> torch.Tensor:
    """Jet of an input encoding; its collapsed slots from its pure second derivatives."""
    fn = _pe_jet if isinstance(enc, PositionalEncoding) else _rbf_jet
    if not plan.G:
        return fn(enc, x, plan)
    diag = {(plan.dirs[i], plan.dirs[i]) for ts in plan.terms for i, _ in ts}
    ext = Plan(plan.dirs, set(plan.pairs) | diag)
    E = fn(enc, x, ext)
    slots = [E[: 1 + plan.K]] + [E[ext.slot(_pair_index(x.shape[1], k, l))][None] for k, l in plan.pairs]
    for ts in plan.terms:
        L = None
        for i, w in ts:
            t = w * E[ext.slot(_pair_index(x.shape[1], plan.dirs[i], plan.dirs[i]))]
            L = t if L is None else L + t
        slots.append(L[None])
    return torch.cat(slots, 0)


def _pair_index(d: int, k: int, l: int) -> tuple[int, ...]:
    a = [0] * d
    a[k] += 1
    a[l] += 1
    return tuple(a)


def _pe_jet(enc: PositionalEncoding, x: torch.Tensor, plan: Plan) -> torch.Tensor:
    """Jet of the positional encoding (same feature order as its forward); no collapsed slots."""
    N, d = x.shape
    f = enc.freqs.to(x.dtype)
    arg = x[:, None, :] * f[None, :, None]  # (N, L, d)
    s, c = torch.sin(arg), torch.cos(arg)
    xj = _input_jet(x, plan)

    def flat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.stack([a, b], dim=2).reshape(N, -1)

    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    slots = [torch.cat([x, flat(s, c)], 1)]
    for i, k in enumerate(plan.dirs):
        da = f[None, :, None] * eye[k][None, None, :]  # (1, L, d)
        slots.append(torch.cat([xj[1 + i], flat(c * da, -s * da)], 1))
    for i, (k, l) in enumerate(plan.pairs):
        dd = (f * f)[None, :, None] * (eye[k] * eye[l])[None, None, :]
        slots.append(torch.cat([xj[1 + plan.K + i], flat(-s * dd, -c * dd)], 1))
    return torch.stack(slots, 0)


def _rbf_jet(enc: RBFLayer, x: torch.Tensor, plan: Plan) -> torch.Tensor:
    """Jet of the Gaussian RBF layer ``exp(-s^2 |x - c|^2)``; no collapsed slots."""
    r = x[:, None, :] - enc.centres[None]  # (N, M, d)
    s2 = (enc.sigmas**2)[None]  # (1, M)
    phi = torch.exp(-(r * r).sum(-1) * s2)
    slots = [phi]
    for k in plan.dirs:
        slots.append(phi * (-2 * s2 * r[..., k]))
    for k, l in plan.pairs:
        val = 4 * s2 * s2 * r[..., k] * r[..., l]
        if k == l:
            val = val - 2 * s2
        slots.append(phi * val)
    return torch.stack(slots, 0)
