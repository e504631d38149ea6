"""Fused SIREN layers: hand-written autograd Functions for the jet of a SIREN whose input
``x`` does not require grad (training).

Each layer (GEMM + sine step) is one :class:`torch.autograd.Function` with a
hand-written backward; the first layer's constant tangents ``dz_k = W[:, k]``
are never materialised, the last layer outputs only the slots the requests
read, and the big work buffers are reused between steps
(:mod:`pinnsiren.buffers`). The backward's products may run with bfloat16
operands (:mod:`pinnsiren.precision`).
"""

from __future__ import annotations

import torch

from .buffers import POOL
from .jet_plan import Plan, by_weight, weighted_squares
from .networks import Siren
from .precision import layer_lowp

__all__ = ["siren_fused", "LinearJet"]


def _backward_products(dZ: torch.Tensor, S: torch.Tensor, W: torch.Tensor, dS: torch.Tensor | None,
                       need_dW: bool, lowp: torch.dtype | None) -> torch.Tensor | None:
    """``dS = dZ W`` (written into ``dS`` when given) and the returned ``dW = sum_t dZ_t^T S_t``.

    ``dZ``, ``S``, ``dS``: stacked jets ``(T, N, H)``. In full precision each
    is one product over all slots; with ``lowp`` the operands are converted
    slot by slot (so the low-precision copies stay one slot's size: +~10 MB
    at the peak instead of +~40) and ``dW`` is summed over slots in ``S``'s dtype.
    """
    T, N, H_out = dZ.shape
    H_in = S.shape[-1]
    if lowp is None:
        dZ2 = dZ.view(T * N, H_out)
        if dS is not None:
            torch.mm(dZ2, W, out=dS.view(T * N, H_in))
        return dZ2.t().mm(S.view(T * N, H_in)) if need_dW else None
    Wl = W.to(lowp) if dS is not None else None
    dW = None
    for t in range(T):
        dZt = dZ[t].to(lowp)
        if dS is not None:
            dS[t].copy_(torch.mm(dZt, Wl))
        if need_dW:
            part = dZt.t().mm(S[t].to(lowp))
            dW = part.to(S.dtype) if dW is None else dW.add_(part)
    return dW


def _sine_forward(Z, K, pairs, terms, keep):
    """Sine step of a stacked pre-activation jet ``Z`` (bias included).

    Returns ``(out, sin z, cos z, q)``: ``q`` holds each collapsed group's
    ``sum_k w_k dz_k^2`` for the backward (None where not computed).
    """
    z = Z[0]
    slots = range(Z.shape[0]) if keep is None else keep
    out = POOL.take((len(slots),) + Z.shape[1:], Z)
    s = torch.sin(z, out=out[0]) if 0 in slots else torch.sin(z, out=POOL.take(z.shape, z))
    c = torch.cos(z, out=POOL.take(z.shape, z))
    q = [None] * len(terms)
    for o, t in enumerate(slots):
        if t == 0:
            continue
        torch.mul(Z[t], c, out=out[o])
        if t > K:
            src = _second_order_source(Z, t, K, pairs, terms)
            out[o].addcmul_(s, src, value=-1.0)
            if t > K + len(pairs):
                q[t - 1 - K - len(pairs)] = src
    return out, s, c, q


def _sine_backward(G, Z, s, c, q, K, pairs, terms, keep):
    """Gradient of :func:`_sine_forward` w.r.t. ``Z``, written over ``G`` when it has every slot."""
    T = Z.shape[0]
    if keep is None:
        dZ, have = G.contiguous(), range(T)  # overwritten in place, slot by slot
    else:
        dZ, have = POOL.take(Z.shape, Z), keep
        for t in range(T):
            if t in keep:
                dZ[t].copy_(G[keep.index(t)])
            else:
                dZ[t].zero_()
    # d out_t / d z = -sin(z) Z_t for t >= 1: collect sum_t G_t Z_t before G_t is overwritten
    acc_s = None
    for t in have:
        if t == 0:
            continue
        if acc_s is None:
            acc_s = dZ[t] * Z[t]
        else:
            acc_s.addcmul_(dZ[t], Z[t])
    for t in have:
        if 0 < t <= K:
            dZ[t].mul_(c)
    acc_c = dZ[0]  # G_0 (or zeros), multiplies cos(z); becomes dz in place
    for p, (i, j) in enumerate(pairs):
        if 1 + K + p not in have:
            continue
        Gp = dZ[1 + K + p]
        r = Gp * Z[1 + i]
        if i == j:  # pure second derivative
            dZ[1 + i].addcmul_(r, s, value=-2.0)
        else:
            dZ[1 + j].addcmul_(r, s, value=-1.0)
            dZ[1 + i].addcmul_(s * Gp, Z[1 + j], value=-1.0)
        acc_c.addcmul_(r, Z[1 + j], value=-1.0)
    for g, ts in enumerate(terms):
        if 1 + K + len(pairs) + g not in have:
            continue
        Gg = dZ[1 + K + len(pairs) + g]
        acc_c.addcmul_(Gg, q[g] if q[g] is not None else weighted_squares(Z, ts), value=-1.0)
        r = Gg * s
        for w, idx in by_weight(ts):
            rw = r * w if torch.is_tensor(w) else r
            for i in idx:
                dZ[1 + i].addcmul_(rw, Z[1 + i], value=-2.0 * (1.0 if torch.is_tensor(w) else w))
    for t in have:
        if t > K:
            dZ[t].mul_(c)
    dz = acc_c.mul_(c)
    if acc_s is not None:
        dz.addcmul_(acc_s, s, value=-1.0)
    return dZ, dz


class _SineJet(torch.autograd.Function):
    """One fused SIREN layer on a stacked jet: ``Z = S W^T`` (one GEMM), then the sine step.

    Input ``S`` (T, N, H_in): the previous layer's jet; ``W``, ``b``: the
    layer's weight and bias, already times omega_0 (the bias enters the
    value slot only). Output: ``sin`` of the value slot, ``cos(z) dz_k`` for
    the first-derivative slots, ``cos(z) d2z_kl - sin(z) dz_k dz_l`` for the
    pair slots and ``cos(z) L_z - sin(z) sum_k w_k dz_k^2`` for the collapsed
    slots -- only the slots listed in ``keep`` (all when None), in that
    order: the last hidden layer outputs only what the requests read (a
    Poisson or wave residual reads the collapsed slot alone). Saved for
    backward: ``S``, ``W``, ``Z``, ``sin z``, ``cos z`` and each collapsed
    group's ``sum_k w_k dz_k^2``; the backward is
    hand-written (the generic path saves several (T, N, H) products and runs
    ~3x more elementwise kernels) and once differentiable: used only when
    ``x`` does not require grad, with constant collapsed weights ``terms``.

    The big buffers come from :class:`~pinnsiren.buffers.BufferPool`; the backward writes
    ``dZ`` over the incoming gradient ``G`` (the output's only consumer is
    the next layer's product inside this module, whose backward hands over
    a tensor nothing else holds) and never writes a saved tensor, so
    ``retain_graph`` works.
    """

    @staticmethod
    def forward(ctx, S, W, b, K, pairs, terms, keep=None):
        T, N, H_in = S.shape
        Z = POOL.take((T, N, W.shape[0]), S)
        torch.mm(S.view(T * N, H_in), W.t(), out=Z.view(T * N, -1))
        Z[0].add_(b)  # the backward reads only Z's tangent and second-order slots
        out, s, c, q = _sine_forward(Z, K, pairs, terms, keep)
        # sin z is the output's value slot when that is kept: saved through the output
        ctx.s_in_out = keep is None or 0 in keep
        ctx.save_for_backward(S, W, Z, out if ctx.s_in_out else s, c, *[t for t in q if t is not None])
        ctx.K, ctx.pairs, ctx.terms, ctx.keep = K, pairs, terms, keep
        ctx.have_q = [t is not None for t in q]
        ctx.lowp = layer_lowp(S.dtype)  # see pinnsiren.precision.set_backward_precision
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        S, W, Z, s, c, *saved_q = ctx.saved_tensors
        s = s[0] if ctx.s_in_out else s
        it = iter(saved_q)
        q = [next(it) if h else None for h in ctx.have_q]
        dZ, dz = _sine_backward(G, Z, s, c, q, ctx.K, ctx.pairs, ctx.terms, ctx.keep)
        dS = POOL.take(S.shape, S) if ctx.needs_input_grad[0] else None
        dW = _backward_products(dZ, S, W, dS, ctx.needs_input_grad[1], ctx.lowp)
        db = dz.sum(0) if ctx.needs_input_grad[2] else None
        return dS, dW, db, None, None, None, None


class LinearJet(torch.autograd.Function):
    """The output layer on the fused path: ``Y_t = S_t W^T`` (+ ``b`` on the value slot
    when ``value_slot``), with ``dS`` written into a reused buffer (it becomes the
    last sine layer's incoming gradient). The bias gets a zero gradient when no
    value is read, as on every other path."""

    @staticmethod
    def forward(ctx, S, W, b, value_slot):
        T, N, H = S.shape
        Y = torch.mm(S.view(T * N, H), W.t()).view(T, N, -1)
        if value_slot:
            Y[0].add_(b)
        ctx.save_for_backward(S, W)
        ctx.value_slot = value_slot
        return Y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dY):
        S, W = ctx.saved_tensors
        T, N, H = S.shape
        dY2 = dY.reshape(T * N, -1)
        dS = dW = db = None
        if ctx.needs_input_grad[0]:
            dS = POOL.take(S.shape, S)
            out = dS.view(T * N, H)
            if W.shape[0] <= 4:  # a few channels: outer products (a GEMM with inner size C is slow here)
                torch.mul(dY2[:, :1], W[0], out=out)
                for c in range(1, W.shape[0]):
                    out.addcmul_(dY2[:, c:c + 1], W[c])
            else:
                torch.mm(dY2, W, out=out)
        if ctx.needs_input_grad[1]:
            dW = dY2.t().mm(S.view(T * N, H))
        if ctx.needs_input_grad[2]:
            db = dY[0].sum(0) if ctx.value_slot else torch.zeros_like(W[:, 0])
        return dS, dW, db, None


def _second_order_source(Z: torch.Tensor, t: int, K: int, pairs, terms) -> torch.Tensor:
    """The ``dz dz`` factor of second-order slot ``t``: ``dz_k dz_l`` (pair) or ``sum_k w_k dz_k^2`` (group)."""
    p = t - 1 - K
    if p < len(pairs):
        i, j = pairs[p]
        return Z[1 + i] * Z[1 + j]
    return weighted_squares(Z, terms[p - len(pairs)])


def _first_collapsed(Wd: torch.Tensor, ts) -> torch.Tensor:
    """``sum_i w_i Wd[i]^2``: ``(H,)`` for constant weights, ``(N, H)`` per point."""
    q = None
    for w, idx in by_weight(ts):
        t = w * sum(Wd[i] * Wd[i] for i in idx)
        q = t if q is None else q + t
    return q


class _FirstSineJet(torch.autograd.Function):
    """First SIREN layer: ``z = W x + b`` given, ``dz_k = w_k`` (column k of
    the scaled ``W``, same at every point), ``d2z = 0``. Output as
    :class:`_SineJet` (a collapsed slot is ``-sin(z) sum_k w_k W[:, k]^2``);
    nothing of size (T, N, H) is materialised or saved."""

    @staticmethod
    def forward(ctx, z, Wd, K, pairs, terms):
        N, H = z.shape
        s, c = torch.sin(z), torch.cos(z)
        out = POOL.take((1 + K + len(pairs) + len(terms), N, H), z)
        out[0].copy_(s)
        for k in range(K):
            torch.mul(c, Wd[k], out=out[1 + k])
        for p, (i, j) in enumerate(pairs):
            torch.mul(s, -(Wd[i] * Wd[j]), out=out[1 + K + p])
        for g, ts in enumerate(terms):
            torch.mul(s, -_first_collapsed(Wd, ts), out=out[1 + K + len(pairs) + g])
        ctx.save_for_backward(s, c, Wd)
        ctx.K, ctx.pairs, ctx.terms = K, pairs, terms
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        s, c, Wd = ctx.saved_tensors
        K, pairs, terms = ctx.K, ctx.pairs, ctx.terms
        G = G.contiguous()  # written over, like _SineJet's: a fresh tensor only this Function holds
        acc_c = G[0]
        acc_s = None
        dWd = torch.zeros_like(Wd)
        for k in range(K):
            if acc_s is None:
                acc_s = G[1 + k] * Wd[k]
            else:
                acc_s.addcmul_(G[1 + k], Wd[k])
        for p, (i, j) in enumerate(pairs):
            Gp = G[1 + K + p]
            ss = (Gp * s).sum(0)
            dWd[i] -= ss * Wd[j]
            dWd[j] -= ss * Wd[i]
            acc_c.addcmul_(Gp, Wd[i] * Wd[j], value=-1.0)
        for g, ts in enumerate(terms):
            Gg = G[1 + K + len(pairs) + g]
            acc_c.addcmul_(Gg, _first_collapsed(Wd, ts), value=-1.0)
            r = Gg * s
            for w, idx in by_weight(ts):
                rs = torch.mv(r.t(), w.reshape(-1)) if torch.is_tensor(w) else w * r.sum(0)
                for i in idx:
                    dWd[i] -= 2.0 * Wd[i] * rs
        for k in range(K):  # after the pairs and groups, which read G's second-order slots only
            dWd[k] += G[1 + k].mul_(c).sum(0)
        dz = acc_c.mul_(c)
        if acc_s is not None:
            dz.addcmul_(acc_s, s, value=-1.0)
        return dz, (dWd if ctx.needs_input_grad[1] else None), None, None, None


def siren_fused(model: Siren, x: torch.Tensor, plan: Plan, keep: tuple[int, ...] | None) -> torch.Tensor:
    """SIREN hidden jet via the fused activations: one GEMM per layer.

    The last sine layer outputs only the slots in ``keep`` (when it is not
    the first layer); the others are returned whole.
    """
    layers = list(model.layers)
    w0 = model.omegas[0]
    W = layers[0].weight * w0
    z = torch.nn.functional.linear(x, W, layers[0].bias * w0)
    Wd = W.t()[plan.dirs] if plan.K else W.new_zeros((0, W.shape[0]))
    S = _FirstSineJet.apply(z, Wd, plan.K, plan.pair_pos, plan.terms)
    hidden = list(zip(layers[1:-1], model.omegas[1:]))
    for n, (layer, w0) in enumerate(hidden):
        S = _SineJet.apply(S, layer.weight * w0, layer.bias * w0, plan.K, plan.pair_pos, plan.terms,
                           keep if n == len(hidden) - 1 else None)
    return S if hidden else S if keep is None else S[list(keep)]
