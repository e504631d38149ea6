"""Derivative requests: the keys of :func:`pinnsiren.jet.derivatives` and their validation.

A request is a ``(channel, multi_index)`` key, e.g. ``(0, (2, 0))`` for
``d^2 y_0 / dx_0^2``; a :class:`Laplacian` may stand in for a multi-index
(a weighted sum of pure second derivatives, one Taylor slot on the jet path).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import torch

__all__ = ["Laplacian", "Key", "ChannelCountError", "normalize_needs", "order", "check_count"]


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


def order(a) -> int:
    """Derivative order of a multi-index (2 for a :class:`Laplacian`)."""
    return 2 if isinstance(a, Laplacian) else sum(a)


def check_count(have: int, want: int | None) -> None:
    """Raise :class:`ChannelCountError` when ``want`` is given and differs from ``have``."""
    if want is not None and have != want:
        raise ChannelCountError(have, want)
