"""Derivative engine: partial derivatives of every model channel at a batch of points.

Two paths compute the same numbers:

* **Taylor-mode (jet)** for :class:`~pinnsiren.networks.Siren` and
  :class:`~pinnsiren.networks.MLP` (every activation of
  :data:`~pinnsiren.networks.ACTIVATIONS`, whose entries carry their Taylor
  rule, and every encoding), orders
  0-2 including mixed partials. Alongside each layer's value ``h`` it
  propagates the first derivative ``dh_k`` for each needed direction ``k`` and
  the second derivative ``d2h_kl`` only for the pairs ``(k, l)`` needed::

      z = W h + b,   dz_k = W dh_k,   d2z_kl = W d2h_kl
      h' = s(z),     dh'_k = s'(z) dz_k,
      d2h'_kl = s''(z) dz_k dz_l + s'(z) d2z_kl

  A :class:`~pinnsiren.jet_keys.Laplacian` request ``sum_k w_k d^2/dx_k^2`` (constant or
  per-point weights) is ONE more slot, the forward Laplacian
  ``L_h' = s'(z) L_z + s''(z) sum_k w_k dz_k^2`` (the compiler requests it
  for weighted sums of pure second derivatives).

  All Taylor slots are stacked into one ``(T, N, H)`` tensor so each layer
  is a single matrix product (for a SIREN, ``s = sin``, ``s' = cos``,
  ``s'' = -sin``: its derivative is again a sine network). For a SIREN whose
  input ``x`` does not require grad (training), each layer (GEMM + sine
  step) is one fused :class:`torch.autograd.Function` with a hand-written
  backward; the first layer's constant tangents ``dz_k = W[:, k]`` are never
  materialised, the last layer outputs only the slots the requests read,
  and the big work buffers are reused between steps (:mod:`pinnsiren.buffers`).
  This cut the elementwise work (which dominated a step on CPU) about
  threefold; matrix products are now ~80 % of a step (two thirds of them in
  the backward, which :func:`pinnsiren.precision.set_backward_precision` can run with bfloat16
  operands where that is native: ~3x faster products, the forward
  unchanged). When ``x`` requires grad
  the composable generic path is used, so derivatives w.r.t. ``x`` of any
  order still work.
* **Reverse-mode autograd** (nested ``torch.autograd.grad`` with
  ``create_graph=True``, :func:`pinnsiren.reverse_mode.autograd_partials`, also used by the compiler
  for coefficient derivatives) for any other ``nn.Module`` and for orders
  above 2.
  Each gradient call yields all ``d`` partials of its parent, and every
  parent is differentiated once (shared sub-derivatives).

Derivatives are keyed by ``(channel, multi_index)``, e.g. ``(0, (2, 0))`` is
``d^2 y_0 / dx_0^2``.

A model with a ``transform_derivatives(x, keys, method)`` method (the
wrappers of :mod:`pinnsiren.transforms`: normalised coordinates, exact
Dirichlet data) computes its own derivatives from its inner network's,
which it requests from this engine, so the jet path is kept inside.
:class:`Laplacian` keys reach a wrapper that sets ``accepts_laplacian``
as they are (both wrappers of :mod:`pinnsiren.transforms` map them to
Laplacian requests of the inner network), any other as the pure second
derivatives they sum.

This module is the entry point and the dispatch; the parts live in
:mod:`~pinnsiren.jet_keys` (requests), :mod:`~pinnsiren.jet_plan` (slot
layout), :mod:`~pinnsiren.jet_generic` (generic layer rules),
:mod:`~pinnsiren.siren_kernels` (fused SIREN Functions),
:mod:`~pinnsiren.buffers`, :mod:`~pinnsiren.precision` and
:mod:`~pinnsiren.reverse_mode` (autograd fallback).
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from .jet_generic import activate, encoding_jet, first_layer_jet, linear
from .jet_keys import Key, Laplacian, check_count, normalize_needs, order
from .jet_plan import Plan
from .networks import ACTIVATIONS, MLP, PositionalEncoding, RBFLayer, Siren, sine_taylor
from .reverse_mode import autograd_derivatives
from .siren_kernels import LinearJet, siren_fused

__all__ = ["derivatives", "jet_supported", "METHODS"]

#: valid values of ``method``
METHODS = ("auto", "jet", "autograd")


def jet_supported(model: nn.Module) -> bool:
    """True if the closed-form Taylor path handles ``model``."""
    if type(model) is Siren or (isinstance(model, Siren) and type(model).forward is Siren.forward):
        return True
    if isinstance(model, MLP) and type(model).forward is MLP.forward:
        enc = model.encoding
        return model.activation in ACTIVATIONS and (
            enc is None or type(enc) in (PositionalEncoding, RBFLayer)
        )
    return False


def derivatives(
    model: nn.Module,
    x: torch.Tensor,
    needs: Iterable[Key] | Mapping[int, Iterable],
    method: str = "auto",
    channels: int | None = None,
) -> dict[Key, torch.Tensor]:
    """Partial derivatives of the model's output channels.

    Parameters
    ----------
    model : nn.Module
        Maps ``(N, d)`` to ``(N, C)``.
    x : Tensor, shape (N, d)
        Points.
    needs : iterable of (channel, multi_index), or mapping channel -> multi-indices
        Requested derivatives; ``multi_index`` is a tuple of ``d`` ints (the
        derivative order along each coordinate) or a :class:`Laplacian`
        (a weighted sum of pure second derivatives, one slot on the jet
        path). ``(c, (0,)*d)`` is the value.
    method : {"auto", "jet", "autograd"}
        ``auto`` takes the jet path when :func:`jet_supported` and every
        order is <= 2, else autograd.
    channels : int, optional
        If given, the model must have exactly this many output channels
        (checked where the output is at hand, no extra forward); else
        :class:`ChannelCountError`.

    Returns
    -------
    dict
        ``(channel, multi_index) -> Tensor (N,)``, differentiable with
        respect to the model parameters.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; must be one of {list(METHODS)}")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, d), got {tuple(x.shape)}")
    d = x.shape[1]
    keys = normalize_needs(needs, d)
    if channels is not None and getattr(model, "out_features", None) is not None:
        check_count(model.out_features, channels)
        channels = None
    if hasattr(model, "transform_derivatives"):
        # a wrapper (normalised coordinates, exact Dirichlet data): it asks this
        # engine for its inner network's derivatives and combines them; one
        # that declares ``accepts_laplacian`` maps Laplacian keys itself (so
        # the inner network keeps the collapsed slot)
        if getattr(model, "accepts_laplacian", False):
            return model.transform_derivatives(x, keys, method)
        return _via_pure_seconds(lambda ks: model.transform_derivatives(x, ks, method), keys, x)
    max_order = max((order(a) for _, a in keys), default=0)
    use_jet = method == "jet" or (method == "auto" and jet_supported(model) and max_order <= 2)
    if not use_jet:
        return _via_pure_seconds(lambda ks: autograd_derivatives(model, x, ks, channels), keys, x)
    if not jet_supported(model):
        raise ValueError(f"the jet path does not support {type(model).__name__}; use method='autograd'")
    if max_order > 2:
        raise ValueError(f"the jet path handles orders <= 2, got order {max_order}; use method='autograd'")
    return _jet(model, x, keys, channels)


def _via_pure_seconds(compute: Callable, keys: list[Key], x: torch.Tensor) -> dict[Key, torch.Tensor]:
    """Answer :class:`Laplacian` keys from pure second derivatives (paths without a collapsed slot)."""
    laps = [(c, a) for c, a in keys if isinstance(a, Laplacian)]
    if not laps:
        return compute(keys)
    N, d = x.shape
    plain = [k for k in keys if not isinstance(k[1], Laplacian)]
    terms = {(c, a): a.resolve(d, N) for c, a in laps}
    extra = [(c, tuple(2 * (i == k) for i in range(d))) for (c, _), ts in terms.items() for k, _ in ts]
    got = compute(normalize_needs(plain + extra, d))
    out = {k: got[k] for k in plain}
    for (c, a), ts in terms.items():
        total = x.new_zeros(N)
        for k, w in ts:
            v = got[(c, tuple(2 * (i == k) for i in range(d)))]
            total = total + (w.reshape(-1) if torch.is_tensor(w) else w) * v
        out[(c, a)] = total
    return out


def _fused(model: nn.Module, x: torch.Tensor, plan: Plan) -> bool:
    """The fused SIREN Functions apply (once differentiable: not when ``x`` or the weights need grad)."""
    return isinstance(model, Siren) and not x.requires_grad and not plan.grad_weights


def _hidden_jet(model: nn.Module, x: torch.Tensor, plan: Plan, keep: tuple[int, ...] | None = None) -> torch.Tensor:
    """Jet of the last hidden layer's output: the slots in ``keep`` (sorted; all if None), ``(len(keep), N, H)``."""
    layers = list(model.layers)
    if isinstance(model, Siren):
        if _fused(model, x, plan):
            return siren_fused(model, x, plan, keep)
        S = activate(first_layer_jet(x, layers[0], plan, model.omegas[0]), plan, sine_taylor)
        for layer, w0 in zip(layers[1:-1], model.omegas[1:]):
            S = activate(linear(S, layer, w0), plan, sine_taylor)
        return _select(S, keep)
    taylor = ACTIVATIONS[model.activation].taylor
    enc = model.encoding
    if enc is None:
        S = first_layer_jet(x, layers[0], plan, 1.0)
    else:
        S = linear(encoding_jet(enc, x, plan), layers[0])
    S = activate(S, plan, taylor)
    for layer in layers[1:-1]:
        S = activate(linear(S, layer), plan, taylor)
    return _select(S, keep)


def _select(S: torch.Tensor, keep: tuple[int, ...] | None) -> torch.Tensor:
    return S if keep is None else S[list(keep)]


def _jet(model: nn.Module, x: torch.Tensor, keys: list[Key], channels: int | None = None) -> dict[Key, torch.Tensor]:
    plan = Plan.from_keys(keys, x.shape[1], x.shape[0])
    # the output layer computes only the slots the requests read
    read = tuple(sorted({plan.slot(a) for _, a in keys}))
    keep = None if len(read) == 1 + plan.K + plan.P + plan.G else read
    at = {t: o for o, t in enumerate(read)}
    S, last = _hidden_jet(model, x, plan, keep), model.layers[-1]
    if _fused(model, x, plan):
        Y = LinearJet.apply(S, last.weight, last.bias, 0 in at)  # (len(read), N, C)
    else:
        Y = linear(S, last, value_slot=0 in at)
    C = Y.shape[2]
    check_count(C, channels)
    out = {}
    for c, a in keys:
        if c >= C:
            raise ValueError(f"derivative requested for channel {c} but the model has {C} output channels")
        out[(c, a)] = Y[at[plan.slot(a)], :, c]
    return out
