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

  A :class:`Laplacian` request ``sum_k w_k d^2/dx_k^2`` (constant or
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
  and the big work buffers are reused between steps (:class:`_BufferPool`).
  This cut the elementwise work (which dominated a step on CPU) about
  threefold; matrix products are now ~80 % of a step (two thirds of them in
  the backward, which :func:`set_backward_precision` can run with bfloat16
  operands where that is native: ~3x faster products, the forward
  unchanged). When ``x`` requires grad
  the composable generic path is used, so derivatives w.r.t. ``x`` of any
  order still work.
* **Reverse-mode autograd** (nested ``torch.autograd.grad`` with
  ``create_graph=True``, :func:`autograd_partials`, also used by the compiler
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
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from .networks import ACTIVATIONS, MLP, PositionalEncoding, RBFLayer, Siren, sine_taylor

__all__ = ["derivatives", "jet_supported", "normalize_needs", "autograd_partials", "Laplacian",
           "ChannelCountError", "METHODS", "release_buffers", "BACKWARD_PRECISIONS", "set_backward_precision",
           "backward_precision", "PrecisionScope", "native_bfloat16"]

#: valid values of ``method``
METHODS = ("auto", "jet", "autograd")


class Laplacian:
    """A collapsed second-derivative request ``sum_k w_k d^2/dx_k^2`` (forward Laplacian).

    Request it like a multi-index: ``derivatives(model, x, [(0, lap)])`` with
    ``lap = Laplacian((1, 1))`` gives ``u_xx + u_yy`` of channel 0 under the
    key ``(0, lap)``. The jet path propagates it as ONE Taylor slot (Li et al.
    2024, "forward Laplacian"; Dangel et al. 2025, "collapsing Taylor mode")
    instead of one slot per second derivative: through ``h = s(z)``,
    ``L_h = s'(z) L_z + s''(z) sum_k w_k (dz_k)^2`` and through a linear layer
    ``L_z = W L_h``. Weights may differ per point (a weighted Laplacian
    ``sum_k w_k(x) d^2_k`` is still one slot).

    Parameters
    ----------
    weights : sequence of d entries, or None
        One weight per coordinate: a number (0 drops the direction), a 0-d
        tensor, or a real tensor ``(N,)`` of per-point weights (weights may
        require grad; the fused SIREN step is then replaced by the generic
        one). ``None`` means all ones (the plain Laplacian). Complex weights
        are refused: request the real and the imaginary part separately.

    Instances compare by identity, so each is its own dictionary key.
    """

    __slots__ = ("weights",)

    def __init__(self, weights: Sequence | None = None) -> None:
        self.weights = None if weights is None else tuple(weights)

    def resolve(self, d: int, n: int) -> list[tuple[int, float | torch.Tensor]]:
        """``[(direction, weight)]`` without zero weights: floats or real tensors ``(n, 1)``."""
        ws = (1.0,) * d if self.weights is None else self.weights
        if len(ws) != d:
            raise ValueError(f"Laplacian weights: {len(ws)} given for {d} coordinates")
        out = []
        for k, w in enumerate(ws):
            if torch.is_tensor(w):
                if w.is_complex():
                    raise ValueError("Laplacian weights must be real; request real and imaginary parts separately")
                if w.ndim == 0 and not w.requires_grad:
                    w = float(w)
                elif w.ndim == 0:
                    w = w.reshape(1, 1)
                elif w.shape != (n,):
                    raise ValueError(f"a per-point Laplacian weight must have shape ({n},), got {tuple(w.shape)}")
                else:
                    w = w[:, None]
            elif isinstance(w, complex):
                raise ValueError("Laplacian weights must be real; request real and imaginary parts separately")
            else:
                w = float(w)
            if isinstance(w, float) and w == 0.0:
                continue
            out.append((k, w))
        return out

    def scaled(self, factors: Sequence[float]) -> "Laplacian":
        """A new request with weights ``w_k * factors[k]`` (e.g. a chain rule's ``1 / h_k^2``)."""
        ws = (1.0,) * len(factors) if self.weights is None else self.weights
        if len(ws) != len(factors):
            raise ValueError(f"Laplacian weights: {len(ws)} given for {len(factors)} coordinates")
        return Laplacian(tuple(w * f for w, f in zip(ws, factors)))

    def __repr__(self) -> str:
        if self.weights is None:
            return "Laplacian()"
        return "Laplacian(" + ", ".join("<tensor>" if torch.is_tensor(w) else repr(w) for w in self.weights) + ")"


Key = tuple[int, "tuple[int, ...] | Laplacian"]


class ChannelCountError(ValueError):
    """The model's output channel count differs from the ``channels=`` a caller required."""

    def __init__(self, have: int, want: int) -> None:
        super().__init__(f"model has {have} output channels but {want} are required")
        self.have, self.want = have, want


def normalize_needs(needs: Iterable[Key] | Mapping[int, Iterable], d: int) -> list[Key]:
    """Validate and canonicalise a derivative request.

    ``needs`` is an iterable of ``(channel, multi_index)`` keys or a mapping
    ``channel -> iterable of multi_index``; every multi-index has ``d``
    non-negative ints. A :class:`Laplacian` may stand in for a multi-index.
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
            a = a if isinstance(a, Laplacian) else tuple(int(v) for v in a)
        except (TypeError, ValueError):
            raise ValueError(f"bad derivative request {item!r}; expected (channel, multi_index)") from None
        if c < 0 or (not isinstance(a, Laplacian) and (len(a) != d or any(v < 0 for v in a))):
            raise ValueError(
                f"bad derivative request {item!r}: the multi-index needs {d} non-negative "
                "entries (one per coordinate) and the channel must be >= 0"
            )
        if (c, a) not in seen:
            seen.add((c, a))
            out.append((c, a))
    return out


def _order(a) -> int:
    return 2 if isinstance(a, Laplacian) else sum(a)


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
        _check_count(model.out_features, channels)
        channels = None
    if hasattr(model, "transform_derivatives"):
        # a wrapper (normalised coordinates, exact Dirichlet data): it asks this
        # engine for its inner network's derivatives and combines them; one
        # that declares ``accepts_laplacian`` maps Laplacian keys itself (so
        # the inner network keeps the collapsed slot)
        if getattr(model, "accepts_laplacian", False):
            return model.transform_derivatives(x, keys, method)
        return _via_pure_seconds(lambda ks: model.transform_derivatives(x, ks, method), keys, x)
    max_order = max((_order(a) for _, a in keys), default=0)
    use_jet = method == "jet" or (method == "auto" and jet_supported(model) and max_order <= 2)
    if not use_jet:
        return _via_pure_seconds(lambda ks: _autograd(model, x, ks, channels), keys, x)
    if not jet_supported(model):
        raise ValueError(f"the jet path does not support {type(model).__name__}; use method='autograd'")
    if max_order > 2:
        raise ValueError(f"the jet path handles orders <= 2, got order {max_order}; use method='autograd'")
    return _jet(model, x, keys, channels)


def _check_count(have: int, want: int | None) -> None:
    if want is not None and have != want:
        raise ChannelCountError(have, want)


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


# --------------------------------------------------------------------------
# Taylor-mode path


class _Plan:
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
    def from_keys(cls, keys: list[Key], d: int, n: int) -> "_Plan":
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


def _by_weight(terms) -> list[tuple[float | torch.Tensor, list[int]]]:
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


def _weighted_squares(Z: torch.Tensor, terms, offset: int = 1) -> torch.Tensor:
    """``sum_i w_i Z[offset + i]^2`` over a group's ``(i, w)`` terms."""
    q = None
    for w, idx in _by_weight(terms):
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


def _activate(S: torch.Tensor, plan: _Plan, taylor: Callable) -> torch.Tensor:
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
            out[K + P + g] += d2 * _weighted_squares(S, terms)
    return torch.cat([v[None], out], 0)


def _linear(S: torch.Tensor, layer: nn.Linear, scale: float = 1.0, value_slot: bool = True) -> torch.Tensor:
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


def _input_jet(x: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """Jet of the identity map: value x, first derivatives e_k, zero second."""
    N, d = x.shape
    S = x.new_zeros((1 + plan.K + plan.P + plan.G, N, d))
    S[0] = x
    for i, k in enumerate(plan.dirs):
        S[1 + i, :, k] = 1.0
    return S


def _first_layer_jet(x: torch.Tensor, layer: nn.Linear, plan: _Plan, scale: float) -> torch.Tensor:
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


def _encoding_jet(enc: nn.Module, x: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """Jet of an input encoding; its collapsed slots from its pure second derivatives."""
    fn = _pe_jet if isinstance(enc, PositionalEncoding) else _rbf_jet
    if not plan.G:
        return fn(enc, x, plan)
    diag = {(plan.dirs[i], plan.dirs[i]) for ts in plan.terms for i, _ in ts}
    ext = _Plan(plan.dirs, set(plan.pairs) | diag)
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


def _pe_jet(enc: PositionalEncoding, x: torch.Tensor, plan: _Plan) -> torch.Tensor:
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


def _rbf_jet(enc: RBFLayer, x: torch.Tensor, plan: _Plan) -> torch.Tensor:
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


class _BufferPool:
    """Big CPU work buffers of the fused SIREN path, reused from step to step.

    A fresh (T, N, H) buffer is tens of MB: glibc maps blocks of 32 MiB and
    more anew on every allocation and the kernel zero-fills each page on
    first touch, ~0.5 ms per MB here -- 10-20 % of a training step -- while
    smaller blocks (the (N, H) tensors of nested autograd) come back from the
    heap; so only buffers of at least 32 MiB are pooled (pooling the smaller
    ones too added ~30 MB of peak memory and no measurable speed). A buffer is
    handed out as a *view* and taken again only when nothing but the pool
    references its storage (every view, saved tensor or user reference of
    it holds one), i.e. after the graph that used it is gone; so results
    are never overwritten, whatever the caller keeps. CPU only (the CUDA
    caching allocator already reuses memory). :func:`release_buffers`
    frees the pool.
    """

    MIN_BYTES = 32 << 20  # glibc serves smaller blocks from its heap after the first free
    PER_KEY = 64  # at most this many buffers of one size; beyond, plain allocations
    KEYS = 4  # buffer sizes kept (least recently used dropped)

    def __init__(self) -> None:
        self.pool: dict[tuple, list[torch.Tensor]] = {}
        count = getattr(torch._C, "_storage_Use_Count", None)
        self.count = count  # None: this torch cannot tell, so nothing is pooled

    def take(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        n = math.prod(shape)
        if (self.count is None or like.device.type != "cpu" or n * like.element_size() < self.MIN_BYTES
                or torch.is_inference_mode_enabled()):  # inference tensors could not be reused in training
            return like.new_empty(shape)
        key = (n, like.dtype)
        bufs = self.pool.pop(key, [])
        self.pool[key] = bufs  # most recently used last
        while len(self.pool) > self.KEYS:
            del self.pool[next(iter(self.pool))]
        for b in bufs:
            # 2 = the pool's tensor + the storage object made for this query
            if self.count(b.untyped_storage()._cdata) == 2:
                return b.view(shape)
        b = like.new_empty(n)
        if len(bufs) < self.PER_KEY:
            bufs.append(b)
        return b.view(shape)


_POOL = _BufferPool()


def release_buffers() -> None:
    """Free the fused SIREN path's reusable work buffers (they are kept between training steps)."""
    _POOL.pool.clear()


# ------------------------------------------------------------------ reduced-precision backward products

#: valid values of :func:`set_backward_precision`
BACKWARD_PRECISIONS = ("full", "bfloat16")
_BACKWARD_LOWP: torch.dtype | None = None  # None: the backward's products in the tensors' own dtype
_lowp_layers_run = 0  # fused layers whose backward products ran in low precision (see backward_precision)


def set_backward_precision(precision: str, device: str = "cpu") -> str:
    """Set the precision of the matrix products in the fused SIREN backward; returns the previous setting.

    ``"full"`` (default): the products run in the model's dtype. ``"bfloat16"``:
    in the backward of each fused hidden SIREN layer of a float32 model, the
    input-gradient product ``dZ W`` and the weight-gradient product ``dZ^T S``
    -- two thirds of a training step's multiply-adds -- take bfloat16 operands
    (float32 accumulation, results rounded to bfloat16 and stored as
    float32). The forward (the jet, the residual and the loss) is unchanged,
    so loss values, alarms and evaluations are exact; parameter gradients
    carry a relative error of about 2e-3 (``tests/compiler/test_jet.py``
    bounds it), far below the sampling noise of a fresh collocation draw
    (docs/benchmarks.md measures training with it). The setting is read
    when a layer's forward runs. Where bfloat16 products are native (CPUs
    with AVX512-BF16 or AMX, recent GPUs) they run ~3x faster than float32;
    elsewhere they may be slower, and setting it warns (``device``: where
    the model runs, for that check). Other paths (nested autograd, the
    generic jet when ``x`` requires grad, MLPs) are not affected; the
    trainer warns when a run asked for it and no fused layer used it.
    """
    global _BACKWARD_LOWP
    if precision not in BACKWARD_PRECISIONS:
        raise ValueError(f"unknown backward precision {precision!r}; must be one of {list(BACKWARD_PRECISIONS)}")
    previous = "full" if _BACKWARD_LOWP is None else "bfloat16"
    if precision == "bfloat16" and _BACKWARD_LOWP is None and not native_bfloat16(device):
        where = "this CPU (no avx512_bf16 or amx_bf16 flag)" if str(device).startswith("cpu") else f"{device}"
        warnings.warn(f"bfloat16 matrix products are not native on {where}: "
                      "backward_precision='bfloat16' may be slower than 'full'", stacklevel=2)
    _BACKWARD_LOWP = torch.bfloat16 if precision == "bfloat16" else None
    return previous


class PrecisionScope:
    """What :func:`backward_precision` yields: ``layers`` is set when the block ends to the
    number of fused layer forwards that ran with reduced-precision backward products in it."""

    layers: int = 0


@contextlib.contextmanager
def backward_precision(precision: str, device: str = "cpu") -> Iterator[PrecisionScope]:
    """Context manager: :func:`set_backward_precision` inside the block, the previous setting after it.

    Yields a :class:`PrecisionScope`; its ``layers`` tells afterwards whether
    the setting reached any layer (0: nothing in the block used it).
    """
    previous = set_backward_precision(precision, device)
    scope, start = PrecisionScope(), _lowp_layers_run
    try:
        yield scope
    finally:
        scope.layers = _lowp_layers_run - start
        set_backward_precision(previous)


def native_bfloat16(device: str = "cpu") -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (CPU: the avx512_bf16 or amx_bf16 flag, Linux)."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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
    out = _POOL.take((len(slots),) + Z.shape[1:], Z)
    s = torch.sin(z, out=out[0]) if 0 in slots else torch.sin(z, out=_POOL.take(z.shape, z))
    c = torch.cos(z, out=_POOL.take(z.shape, z))
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
        dZ, have = _POOL.take(Z.shape, Z), keep
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
        acc_c.addcmul_(Gg, q[g] if q[g] is not None else _weighted_squares(Z, ts), value=-1.0)
        r = Gg * s
        for w, idx in _by_weight(ts):
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

    The big buffers come from :class:`_BufferPool`; the backward writes
    ``dZ`` over the incoming gradient ``G`` (the output's only consumer is
    the next layer's product inside this module, whose backward hands over
    a tensor nothing else holds) and never writes a saved tensor, so
    ``retain_graph`` works.
    """

    @staticmethod
    def forward(ctx, S, W, b, K, pairs, terms, keep=None):
        global _lowp_layers_run
        T, N, H_in = S.shape
        Z = _POOL.take((T, N, W.shape[0]), S)
        torch.mm(S.view(T * N, H_in), W.t(), out=Z.view(T * N, -1))
        Z[0].add_(b)  # the backward reads only Z's tangent and second-order slots
        out, s, c, q = _sine_forward(Z, K, pairs, terms, keep)
        # sin z is the output's value slot when that is kept: saved through the output
        ctx.s_in_out = keep is None or 0 in keep
        ctx.save_for_backward(S, W, Z, out if ctx.s_in_out else s, c, *[t for t in q if t is not None])
        ctx.K, ctx.pairs, ctx.terms, ctx.keep = K, pairs, terms, keep
        ctx.have_q = [t is not None for t in q]
        ctx.lowp = _BACKWARD_LOWP if S.dtype == torch.float32 else None  # see set_backward_precision
        if ctx.lowp is not None:
            _lowp_layers_run += 1
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        S, W, Z, s, c, *saved_q = ctx.saved_tensors
        s = s[0] if ctx.s_in_out else s
        it = iter(saved_q)
        q = [next(it) if h else None for h in ctx.have_q]
        dZ, dz = _sine_backward(G, Z, s, c, q, ctx.K, ctx.pairs, ctx.terms, ctx.keep)
        dS = _POOL.take(S.shape, S) if ctx.needs_input_grad[0] else None
        dW = _backward_products(dZ, S, W, dS, ctx.needs_input_grad[1], ctx.lowp)
        db = dz.sum(0) if ctx.needs_input_grad[2] else None
        return dS, dW, db, None, None, None, None


class _LinearJet(torch.autograd.Function):
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
            dS = _POOL.take(S.shape, S)
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
    return _weighted_squares(Z, terms[p - len(pairs)])


def _first_collapsed(Wd: torch.Tensor, ts) -> torch.Tensor:
    """``sum_i w_i Wd[i]^2``: ``(H,)`` for constant weights, ``(N, H)`` per point."""
    q = None
    for w, idx in _by_weight(ts):
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
        out = _POOL.take((1 + K + len(pairs) + len(terms), N, H), z)
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
            for w, idx in _by_weight(ts):
                rs = torch.mv(r.t(), w.reshape(-1)) if torch.is_tensor(w) else w * r.sum(0)
                for i in idx:
                    dWd[i] -= 2.0 * Wd[i] * rs
        for k in range(K):  # after the pairs and groups, which read G's second-order slots only
            dWd[k] += G[1 + k].mul_(c).sum(0)
        dz = acc_c.mul_(c)
        if acc_s is not None:
            dz.addcmul_(acc_s, s, value=-1.0)
        return dz, (dWd if ctx.needs_input_grad[1] else None), None, None, None


def _siren_fused(model: Siren, x: torch.Tensor, plan: _Plan, keep: tuple[int, ...] | None) -> torch.Tensor:
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
    return S if hidden else _select(S, keep)


def _fused(model: nn.Module, x: torch.Tensor, plan: _Plan) -> bool:
    """The fused SIREN Functions apply (once differentiable: not when ``x`` or the weights need grad)."""
    return isinstance(model, Siren) and not x.requires_grad and not plan.grad_weights


def _hidden_jet(model: nn.Module, x: torch.Tensor, plan: _Plan, keep: tuple[int, ...] | None = None) -> torch.Tensor:
    """Jet of the last hidden layer's output: the slots in ``keep`` (sorted; all if None), ``(len(keep), N, H)``."""
    layers = list(model.layers)
    if isinstance(model, Siren):
        if _fused(model, x, plan):
            return _siren_fused(model, x, plan, keep)
        S = _activate(_first_layer_jet(x, layers[0], plan, model.omegas[0]), plan, sine_taylor)
        for layer, w0 in zip(layers[1:-1], model.omegas[1:]):
            S = _activate(_linear(S, layer, w0), plan, sine_taylor)
        return _select(S, keep)
    taylor = ACTIVATIONS[model.activation].taylor
    enc = model.encoding
    if enc is None:
        S = _first_layer_jet(x, layers[0], plan, 1.0)
    else:
        S = _linear(_encoding_jet(enc, x, plan), layers[0])
    S = _activate(S, plan, taylor)
    for layer in layers[1:-1]:
        S = _activate(_linear(S, layer), plan, taylor)
    return _select(S, keep)


def _select(S: torch.Tensor, keep: tuple[int, ...] | None) -> torch.Tensor:
    return S if keep is None else S[list(keep)]


def _jet(model: nn.Module, x: torch.Tensor, keys: list[Key], channels: int | None = None) -> dict[Key, torch.Tensor]:
    plan = _Plan.from_keys(keys, x.shape[1], x.shape[0])
    # the output layer computes only the slots the requests read
    read = tuple(sorted({plan.slot(a) for _, a in keys}))
    keep = None if len(read) == 1 + plan.K + plan.P + plan.G else read
    at = {t: o for o, t in enumerate(read)}
    S, last = _hidden_jet(model, x, plan, keep), model.layers[-1]
    if _fused(model, x, plan):
        Y = _LinearJet.apply(S, last.weight, last.bias, 0 in at)  # (len(read), N, C)
    else:
        Y = _linear(S, last, value_slot=0 in at)
    C = Y.shape[2]
    _check_count(C, channels)
    out = {}
    for c, a in keys:
        if c >= C:
            raise ValueError(f"derivative requested for channel {c} but the model has {C} output channels")
        out[(c, a)] = Y[at[plan.slot(a)], :, c]
    return out


# --------------------------------------------------------------------------
# Reverse-mode autograd: one recursion for model channels and coefficient functions


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


def _autograd(model: nn.Module, x: torch.Tensor, keys: list[Key], channels: int | None = None) -> dict[Key, torch.Tensor]:
    xg = x if x.requires_grad else x.detach().requires_grad_(True)
    y = model(xg)
    if y.ndim != 2:
        raise ValueError(f"model output must have shape (N, C), got {tuple(y.shape)}")
    C = y.shape[1]
    _check_count(C, channels)
    for c, _ in keys:
        if c >= C:
            raise ValueError(f"derivative requested for channel {c} but the model has {C} output channels")
    return autograd_partials(y, xg, keys)
