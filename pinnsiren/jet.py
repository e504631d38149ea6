"""Derivative engine: partial derivatives of every model channel at a batch of points.

Two paths compute the same numbers:

* **Taylor-mode (jet)** for :class:`~pinnsiren.networks.Siren` and
  :class:`~pinnsiren.networks.MLP` (every activation and encoding), orders
  0-2 including mixed partials. Alongside each layer's value ``h`` it
  propagates the first derivative ``dh_k`` for each needed direction ``k`` and
  the second derivative ``d2h_kl`` only for the pairs ``(k, l)`` needed::

      z = W h + b,   dz_k = W dh_k,   d2z_kl = W d2h_kl
      h' = s(z),     dh'_k = s'(z) dz_k,
      d2h'_kl = s''(z) dz_k dz_l + s'(z) d2z_kl

  All Taylor slots are stacked into one ``(T, N, H)`` tensor so each layer
  is a single matrix product (for a SIREN, ``s = sin``, ``s' = cos``,
  ``s'' = -sin``: its derivative is again a sine network). For a SIREN whose
  input ``x`` does not require grad (training), the sine step is one fused
  :class:`torch.autograd.Function` with a hand-written backward that saves
  only ``Z``, ``sin z`` and ``cos z``; the first layer's constant tangents
  ``dz_k = W[:, k]`` are never materialised. This cut the elementwise work
  (which dominated a step on CPU) about threefold. When ``x`` requires grad
  the composable generic path is used, so derivatives w.r.t. ``x`` of any
  order still work.
* **Reverse-mode autograd** (nested ``torch.autograd.grad`` with
  ``create_graph=True``) for any other ``nn.Module`` and for orders above 2.
  Each gradient call yields all ``d`` partials of its parent, and every
  parent is differentiated once (shared sub-derivatives).

Derivatives are keyed by ``(channel, multi_index)``, e.g. ``(0, (2, 0))`` is
``d^2 y_0 / dx_0^2``.

A model with a ``transform_derivatives(x, keys, method)`` method (the
wrappers of :mod:`pinnsiren.transforms`: normalised coordinates, exact
Dirichlet data) computes its own derivatives from its inner network's,
which it requests from this engine, so the jet path is kept inside.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from .networks import MLP, PositionalEncoding, RBFLayer, Siren

__all__ = ["derivatives", "jet_supported", "normalize_needs", "METHODS"]

Key = tuple[int, tuple[int, ...]]

#: valid values of ``method``
METHODS = ("auto", "jet", "autograd")


def normalize_needs(needs: Iterable[Key] | Mapping[int, Iterable[tuple[int, ...]]], d: int) -> list[Key]:
    """Validate and canonicalise a derivative request.

    ``needs`` is an iterable of ``(channel, multi_index)`` keys or a mapping
    ``channel -> iterable of multi_index``; every multi-index has ``d``
    non-negative ints.
    """
    if isinstance(needs, Mapping):
        items = [(c, a) for c, idxs in needs.items() for a in idxs]
    else:
        items = list(needs)
    out: list[Key] = []
    seen = set()
    for item in items:
        try:
            c, a = item
            c = int(c)
            a = tuple(int(v) for v in a)
        except (TypeError, ValueError):
            raise ValueError(f"bad derivative request {item!r}; expected (channel, multi_index)") from None
        if len(a) != d or any(v < 0 for v in a) or c < 0:
            raise ValueError(
                f"bad derivative request {item!r}: the multi-index needs {d} non-negative "
                "entries (one per coordinate) and the channel must be >= 0"
            )
        if (c, a) not in seen:
            seen.add((c, a))
            out.append((c, a))
    return out


def jet_supported(model: nn.Module) -> bool:
    """True if the closed-form Taylor path handles ``model``."""
    if type(model) is Siren or (isinstance(model, Siren) and type(model).forward is Siren.forward):
        return True
    if isinstance(model, MLP) and type(model).forward is MLP.forward:
        enc = model.encoding
        return model.activation in _ACT_JETS and (
            enc is None or type(enc) in (PositionalEncoding, RBFLayer)
        )
    return False


def derivatives(
    model: nn.Module,
    x: torch.Tensor,
    needs: Iterable[Key] | Mapping[int, Iterable[tuple[int, ...]]],
    method: str = "auto",
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
        derivative order along each coordinate). ``(c, (0,)*d)`` is the value.
    method : {"auto", "jet", "autograd"}
        ``auto`` takes the jet path when :func:`jet_supported` and every
        order is <= 2, else autograd.

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
    if hasattr(model, "transform_derivatives"):
        # a wrapper (normalised coordinates, exact Dirichlet data): it asks this
        # engine for its inner network's derivatives and combines them
        return model.transform_derivatives(x, keys, method)
    max_order = max((sum(a) for _, a in keys), default=0)
    use_jet = method == "jet" or (method == "auto" and jet_supported(model) and max_order <= 2)
    if use_jet:
        if not jet_supported(model):
            raise ValueError(f"the jet path does not support {type(model).__name__}; use method='autograd'")
        if max_order > 2:
            raise ValueError(f"the jet path handles orders <= 2, got order {max_order}; use method='autograd'")
        out = _jet(model, x, keys)
    else:
        out = _autograd(model, x, keys)
    return out


# --------------------------------------------------------------------------
# Taylor-mode path


def _relu_jet(z: torch.Tensor):
    return torch.relu(z), (z > 0).to(z.dtype), None


def _tanh_jet(z: torch.Tensor):
    t = torch.tanh(z)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _sigmoid_jet(z: torch.Tensor):
    s = torch.sigmoid(z)
    d1 = s * (1 - s)
    return s, d1, d1 * (1 - 2 * s)


def _softplus_jet(z: torch.Tensor):
    # torch's softplus (beta=1, threshold=20) is linear above the threshold
    lin = z > 20
    s = torch.sigmoid(z)
    d1 = torch.where(lin, torch.ones_like(z), s)
    d2 = torch.where(lin, torch.zeros_like(z), s * (1 - s))
    return nn.functional.softplus(z), d1, d2


def _elu_jet(z: torch.Tensor, alpha: float = 1.0, scale: float = 1.0):
    pos = z > 0
    e = torch.exp(torch.clamp(z, max=0.0))
    v = torch.where(pos, z, alpha * (e - 1)) * scale
    d1 = torch.where(pos, torch.ones_like(z), alpha * e) * scale
    d2 = torch.where(pos, torch.zeros_like(z), alpha * e) * scale
    return v, d1, d2


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu_jet(z: torch.Tensor):
    return _elu_jet(z, _SELU_ALPHA, _SELU_SCALE)


def _sin_jet(z: torch.Tensor):
    s = torch.sin(z)
    return s, torch.cos(z), -s


#: activation name -> z -> (s(z), s'(z), s''(z) or None for zero)
_ACT_JETS: dict[str, Callable] = {
    "relu": _relu_jet,
    "tanh": _tanh_jet,
    "sigmoid": _sigmoid_jet,
    "softplus": _softplus_jet,
    "elu": _elu_jet,
    "selu": _selu_jet,
}


class _Plan:
    """Slot layout: value, first derivatives along ``dirs``, second along ``pairs``."""

    def __init__(self, keys: list[Key], d: int) -> None:
        dirs: set[int] = set()
        pairs: set[tuple[int, int]] = set()
        for _, a in keys:
            nz = [i for i, v in enumerate(a) for _ in range(v)]
            dirs.update(nz)
            if len(nz) == 2:
                pairs.add((nz[0], nz[1]))
        self.dirs = sorted(dirs)
        self.pairs = sorted(pairs)
        self.K, self.P = len(self.dirs), len(self.pairs)
        self.diagonal = all(k == l for k, l in self.pairs)
        pos = {k: i for i, k in enumerate(self.dirs)}
        self.pa = torch.tensor([pos[k] for k, _ in self.pairs], dtype=torch.long)
        self.pb = torch.tensor([pos[l] for _, l in self.pairs], dtype=torch.long)
        self.slot: dict[tuple[int, ...], int] = {}
        self.slot[(0,) * d] = 0
        for i, k in enumerate(self.dirs):
            a = [0] * d
            a[k] = 1
            self.slot[tuple(a)] = 1 + i
        for i, (k, l) in enumerate(self.pairs):
            a = [0] * d
            a[k] += 1
            a[l] += 1
            self.slot[tuple(a)] = 1 + self.K + i


def _activate(S: torch.Tensor, plan: _Plan, act: Callable) -> torch.Tensor:
    """Apply an elementwise activation to a stacked jet ``S`` of shape (T, N, H)."""
    K = plan.K
    v, d1, d2 = act(S[0])
    if not K:
        return v[None]
    # one product for all tangent slots: dh_k = s' dz_k, d2h_kl = s' d2z_kl + ...
    out = d1[None] * S[1:]
    if plan.P and d2 is not None:
        dz = S[1 : 1 + K]
        if plan.diagonal:
            corr = d2[None] * (dz * dz if plan.P == K else dz[plan.pa] ** 2)
        else:
            corr = d2[None] * dz[plan.pa] * dz[plan.pb]
        # the product's result is not saved for backward, so in-place is safe
        out[K:] += corr
    return torch.cat([v[None], out], 0)


def _linear(S: torch.Tensor, layer: nn.Linear, scale: float = 1.0) -> torch.Tensor:
    W = layer.weight if scale == 1.0 else layer.weight * scale
    b = layer.bias if scale == 1.0 else layer.bias * scale
    T, N, H = S.shape
    Z = torch.matmul(S.reshape(T * N, H), W.t()).reshape(T, N, -1)
    Z[0] += b  # the bias enters the value slot only
    return Z


def _input_jet(x: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """Jet of the identity map: value x, first derivatives e_k, zero second."""
    N, d = x.shape
    T = 1 + plan.K + plan.P
    S = x.new_zeros((T, N, d))
    S[0] = x
    for i, k in enumerate(plan.dirs):
        S[1 + i, :, k] = 1.0
    return S


def _first_layer_jet(x: torch.Tensor, layer: nn.Linear, plan: _Plan, scale: float) -> torch.Tensor:
    """First linear layer on raw coordinates: dz_k = W[:, k] and d2z = 0."""
    W = layer.weight * scale
    z = torch.nn.functional.linear(x, W, layer.bias * scale)
    N = x.shape[0]
    parts = [z[None]]
    if plan.K:
        parts.append(W.t()[plan.dirs][:, None, :].expand(plan.K, N, -1))
    if plan.P:
        parts.append(z.new_zeros((plan.P, N, z.shape[1])))
    return torch.cat(parts, 0)


def _pe_jet(enc: PositionalEncoding, x: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """Jet of the positional encoding (same feature order as its forward)."""
    N, d = x.shape
    L = enc.num_frequencies
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
    assert slots[0].shape[1] == enc.out_features and L == f.numel()
    return torch.stack(slots, 0)


def _rbf_jet(enc: RBFLayer, x: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """Jet of the Gaussian RBF layer ``exp(-s^2 |x - c|^2)``."""
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


class _SineJet(torch.autograd.Function):
    """Fused sine activation of a stacked jet, with a hand-written backward.

    Input ``Z`` (T, N, H): pre-activation jet *without* the bias (the bias
    ``b`` enters the value slot only). Output: ``sin`` of the value slot,
    ``cos(z) dz_k`` for the first-derivative slots and
    ``cos(z) d2z_kl - sin(z) dz_k dz_l`` for the pair slots. Saved for
    backward: ``Z``, ``sin(z)``, ``cos(z)`` only (the generic path saves
    several (T, N, H) products and runs ~3x more elementwise kernels).
    Once differentiable: used only when ``x`` does not require grad.
    """

    @staticmethod
    def forward(ctx, Z, b, K, pairs):
        z = Z[0] + b
        s, c = torch.sin(z), torch.cos(z)
        out = torch.empty_like(Z)
        out[0].copy_(s)
        if Z.shape[0] > 1:
            torch.mul(Z[1:], c, out=out[1:])
        for p, (i, j) in enumerate(pairs):
            out[1 + K + p].addcmul_(s * Z[1 + i], Z[1 + j], value=-1.0)
        ctx.save_for_backward(Z, s, c)
        ctx.K, ctx.pairs = K, pairs
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        Z, s, c = ctx.saved_tensors
        K, pairs = ctx.K, ctx.pairs
        T = Z.shape[0]
        dZ = torch.empty_like(Z)
        acc_c = G[0].clone()  # multiplies cos(z)
        if T > 1:
            torch.mul(G[1:], c, out=dZ[1:])
            acc_s = G[1] * Z[1]  # multiplies -sin(z): sum_t G_t Z_t over tangent slots
            for t in range(2, T):
                acc_s.addcmul_(G[t], Z[t])
        for p, (i, j) in enumerate(pairs):
            Gp = G[1 + K + p]
            r = Gp * Z[1 + i]
            if i == j:  # pure second derivative: 3 passes
                dZ[1 + i].addcmul_(r, s, value=-2.0)
            else:
                dZ[1 + j].addcmul_(r, s, value=-1.0)
                dZ[1 + i].addcmul_(s * Gp, Z[1 + j], value=-1.0)
            acc_c.addcmul_(r, Z[1 + j], value=-1.0)
        dz = torch.mul(acc_c, c, out=dZ[0])
        if T > 1:
            dz.addcmul_(acc_s, s, value=-1.0)
        db = dz.sum(0) if ctx.needs_input_grad[1] else None
        return dZ, db, None, None


class _FirstSineJet(torch.autograd.Function):
    """First SIREN layer: ``z = W x + b`` given, ``dz_k = w_k`` (column k of
    the scaled ``W``, same at every point), ``d2z = 0``. Output as
    :class:`_SineJet`; nothing of size (T, N, H) is materialised or saved."""

    @staticmethod
    def forward(ctx, z, Wd, K, pairs):
        N, H = z.shape
        s, c = torch.sin(z), torch.cos(z)
        out = z.new_empty((1 + K + len(pairs), N, H))
        out[0].copy_(s)
        for k in range(K):
            torch.mul(c, Wd[k], out=out[1 + k])
        for p, (i, j) in enumerate(pairs):
            torch.mul(s, -(Wd[i] * Wd[j]), out=out[1 + K + p])
        ctx.save_for_backward(s, c, Wd)
        ctx.K, ctx.pairs = K, pairs
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        s, c, Wd = ctx.saved_tensors
        K, pairs = ctx.K, ctx.pairs
        acc_c = G[0].clone()
        acc_s = None
        dWd = torch.zeros_like(Wd)
        for k in range(K):
            dWd[k] += (G[1 + k] * c).sum(0)
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
        dz = acc_c.mul_(c)
        if acc_s is not None:
            dz.addcmul_(acc_s, s, value=-1.0)
        return dz, (dWd if ctx.needs_input_grad[1] else None), None, None


def _siren_fused(model: Siren, x: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """SIREN hidden jet via the fused activations: one GEMM per layer."""
    layers = list(model.layers)
    w0 = model.omegas[0]
    W = layers[0].weight * w0
    z = torch.nn.functional.linear(x, W, layers[0].bias * w0)
    pairs = tuple((int(a), int(b)) for a, b in zip(plan.pa.tolist(), plan.pb.tolist()))
    Wd = W.t()[plan.dirs] if plan.K else W.new_zeros((0, W.shape[0]))
    S = _FirstSineJet.apply(z, Wd, plan.K, pairs)
    for layer, w0 in zip(layers[1:-1], model.omegas[1:]):
        T, N, H = S.shape
        Z = torch.mm(S.reshape(T * N, H), (layer.weight * w0).t()).reshape(T, N, -1)
        S = _SineJet.apply(Z, layer.bias * w0, plan.K, pairs)
    return S


def _jet(model: nn.Module, x: torch.Tensor, keys: list[Key]) -> dict[Key, torch.Tensor]:
    plan = _Plan(keys, x.shape[1])
    layers = list(model.layers)
    if isinstance(model, Siren) and not x.requires_grad:
        S = _siren_fused(model, x, plan)
    elif isinstance(model, Siren):
        S = _first_layer_jet(x, layers[0], plan, model.omegas[0])
        S = _activate(S, plan, _sin_jet)
        for layer, w0 in zip(layers[1:-1], model.omegas[1:]):
            S = _activate(_linear(S, layer, w0), plan, _sin_jet)
    else:
        act = _ACT_JETS[model.activation]
        enc = model.encoding
        if enc is None:
            S = _first_layer_jet(x, layers[0], plan, 1.0)
        elif isinstance(enc, PositionalEncoding):
            S = _linear(_pe_jet(enc, x, plan), layers[0])
        else:
            S = _linear(_rbf_jet(enc, x, plan), layers[0])
        S = _activate(S, plan, act)
        for layer in layers[1:-1]:
            S = _activate(_linear(S, layer), plan, act)
    Y = _linear(S, layers[-1])  # (T, N, C)
    C = Y.shape[2]
    out = {}
    for c, a in keys:
        if c >= C:
            raise ValueError(f"derivative requested for channel {c} but the model has {C} output channels")
        out[(c, a)] = Y[plan.slot[a], :, c]
    return out


# --------------------------------------------------------------------------
# Autograd fallback


def _autograd(model: nn.Module, x: torch.Tensor, keys: list[Key]) -> dict[Key, torch.Tensor]:
    xg = x if x.requires_grad else x.detach().requires_grad_(True)
    y = model(xg)
    if y.ndim != 2:
        raise ValueError(f"model output must have shape (N, C), got {tuple(y.shape)}")
    N, d = xg.shape
    C = y.shape[1]
    memo: dict[Key, torch.Tensor] = {}

    def get(c: int, a: tuple[int, ...]) -> torch.Tensor:
        if (c, a) in memo:
            return memo[(c, a)]
        if sum(a) == 0:
            memo[(c, a)] = y[:, c]
            return memo[(c, a)]
        k = next(i for i, v in enumerate(a) if v > 0)
        parent = tuple(v - (i == k) for i, v in enumerate(a))
        p = get(c, parent)
        if p.requires_grad:
            (g,) = torch.autograd.grad(p.sum(), xg, create_graph=True, allow_unused=True)
        else:
            g = None
        if g is None:
            g = torch.zeros_like(xg)
        for j in range(d):
            child = tuple(v + (i == j) for i, v in enumerate(parent))
            memo.setdefault((c, child), g[:, j])
        return memo[(c, a)]

    out = {}
    for c, a in sorted(keys, key=lambda ka: sum(ka[1])):
        if c >= C:
            raise ValueError(f"derivative requested for channel {c} but the model has {C} output channels")
        out[(c, a)] = get(c, a)
    return out
