"""Model wrappers the derivative engine understands: normalised coordinates and exact Dirichlet data.

Both wrap a network ``net`` and are ordinary ``nn.Module``s (``forward``
gives the transformed field, so evaluation on grids needs nothing special).
:func:`pinnsiren.jet.derivatives` asks a wrapper for its derivatives
(``model.transform_derivatives(x, keys, method)``); the wrapper asks the
engine for the inner network's derivatives -- the Taylor-mode jet for a SIREN
-- and combines them in closed form, so the fast path is kept.

* :class:`Normalized`: the network sees ``xi = (x - c) / h`` in ``[-1, 1]^d``
  for the declared box ``c +- h`` (space and time alike), and its output is
  ``shift + scale * net(xi)``. Chain rule:
  ``d^a u / dx^a = scale * prod_i h_i^(-a_i) * d^a net / dxi^a``.
  The PDE stays written in physical coordinates.
* :class:`ExactDirichlet`: ``u = g + phi * net`` with ``phi`` vanishing where
  the Dirichlet (or initial) data ``g`` are imposed, e.g. an approximate
  distance function from :meth:`pinnsiren.geometry.Shape.adf`. Derivatives by
  the Leibniz rule ``D^a(phi N) = sum_{b <= a} C(a, b) D^b phi D^(a-b) N``,
  with ``phi`` and ``g`` compiled once from SymPy and their ``x``-derivatives
  taken by autograd (faster than SymPy's exact derivatives here; see
  ``_Compiled``).

Wrappers compose: ``ExactDirichlet(Normalized(Siren(...), bounds), coords, phi, g)``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterable, Sequence

import numpy as np
import sympy
import torch
from torch import nn

from .compiler import compile_residual
from .jet import derivatives
from .jet_keys import Laplacian
from .reverse_mode import autograd_derivatives

__all__ = ["Normalized", "ExactDirichlet"]

Key = tuple[int, tuple[int, ...]]


def _lower_closure(keys: Iterable[Key]) -> list[Key]:
    """Every ``(c, b)`` with ``b <= a`` componentwise for a requested ``(c, a)``."""
    out: list[Key] = []
    seen = set()
    for c, a in keys:
        for b in itertools.product(*[range(v + 1) for v in a]):
            if (c, b) not in seen:
                seen.add((c, b))
                out.append((c, b))
    return out


class Normalized(nn.Module):
    """``u(x) = shift + scale * net((x - c) / h)``: the network works on ``[-1, 1]^d``.

    Parameters
    ----------
    net : nn.Module
        Maps ``(N, d)`` normalised coordinates to ``(N, C)``.
    bounds : sequence of (lo, hi) per coordinate, or a Shape/region with ``bbox()``
        The declared domain (space and time); ``c = (lo + hi) / 2``,
        ``h = (hi - lo) / 2``.
    scale, shift : float or sequence of C floats
        Output scaling where the magnitude of the solution is known
        (default 1 and 0: none).
    """

    def __init__(self, net: nn.Module, bounds: Any, scale: Any = 1.0, shift: Any = 0.0) -> None:
        super().__init__()
        if hasattr(bounds, "bbox"):
            bounds = bounds.bbox(0)
        b = np.asarray(bounds, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != 2 or not np.all(b[:, 1] > b[:, 0]):
            raise ValueError(f"Normalized needs (lo, hi) pairs with lo < hi per coordinate, got {b.tolist()}")
        self.net = net
        self.register_buffer("center", torch.as_tensor(0.5 * (b[:, 0] + b[:, 1])))
        self.register_buffer("halfwidth", torch.as_tensor(0.5 * (b[:, 1] - b[:, 0])))
        self.register_buffer("scale", torch.as_tensor(np.atleast_1d(np.asarray(scale, dtype=np.float64))))
        self.register_buffer("shift", torch.as_tensor(np.atleast_1d(np.asarray(shift, dtype=np.float64))))
        self.in_features = b.shape[0]
        self.out_features = getattr(net, "out_features", None)

    @property
    def config(self) -> dict[str, Any]:
        """What :func:`pinnsiren.io.load_model` needs to rebuild it (the inner network's ``config`` nested)."""
        c, h = self.center.tolist(), self.halfwidth.tolist()
        return dict(cls="Normalized", inner=dict(getattr(self.net, "config", {})),
                    bounds=[[a - b, a + b] for a, b in zip(c, h)], scale=self.scale.tolist(), shift=self.shift.tolist())

    @classmethod
    def from_config(cls, config: dict[str, Any], build: Any) -> "Normalized":
        """Rebuild from :attr:`config`; ``build(inner_config)`` makes the inner network."""
        return cls(build(config["inner"]), config["bounds"], scale=config["scale"], shift=config["shift"])

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - c) / h``."""
        return (x - self.center.to(x.dtype)) / self.halfwidth.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(self.normalize(x))
        return self.shift.to(y.dtype) + self.scale.to(y.dtype) * y

    #: :class:`~pinnsiren.jet_keys.Laplacian` keys are passed on to ``net`` (see below)
    accepts_laplacian = True

    def transform_derivatives(self, x: torch.Tensor, keys: list[Key], method: str) -> dict[Key, torch.Tensor]:
        """Chain rule; a ``Laplacian(w)`` key becomes ``scale * Laplacian(w_k / h_k^2)`` of ``net``.

        So the inner network keeps its collapsed (forward-Laplacian) slot.
        """
        if x.shape[1] != self.in_features:
            raise ValueError(f"Normalized was declared for {self.in_features} coordinates, got x of shape {tuple(x.shape)}")
        inv = (1.0 / self.halfwidth).tolist()
        inner_lap: dict[Laplacian, Laplacian] = {}  # one inner request per outer one (identity keys)
        inner_keys = []
        for c, a in keys:
            if isinstance(a, Laplacian):
                a = inner_lap.setdefault(a, a.scaled([v * v for v in inv]))
            inner_keys.append((c, a))
        inner = derivatives(self.net, self.normalize(x), inner_keys, method=method)
        sc, sh = self.scale.to(x.dtype), self.shift.to(x.dtype)
        out = {}
        for (c, a), ik in zip(keys, inner_keys):
            s = sc[c if sc.numel() > 1 else 0]
            if not isinstance(a, Laplacian):
                s = s * math.prod(inv[i] ** k for i, k in enumerate(a))
            v = s * inner[ik]
            if not isinstance(a, Laplacian) and sum(a) == 0:
                v = v + sh[c if sh.numel() > 1 else 0]
            out[(c, a)] = v
        return out


class _Compiled(nn.Module):
    """A SymPy function of the coordinates, compiled once; derivatives by autograd in ``x``.

    Measured on the ADF of a square minus four discs (2000 points, one CPU
    thread): all derivatives up to order 2 by nested autograd took 5 ms per
    call; SymPy's exact second derivative took 6 s to form (18 000
    operations) and 6.7 ms per call for that one derivative. So autograd in
    ``x`` it is (these functions have no trainable parameters, and the
    results are detached: they enter the field's derivatives as values).
    """

    def __init__(self, expr: Any, coords: Sequence[sympy.Symbol]) -> None:
        super().__init__()
        self.expr = sympy.sympify(expr)
        self.coords = tuple(coords)
        bad = self.expr.free_symbols - set(self.coords)
        if bad:
            raise ValueError(f"{self.expr} uses {sorted(map(str, bad))}, which are not coordinates {self.coords}")
        self.is_zero = self.expr == 0
        self.fn = None if self.is_zero else compile_residual(self.expr, [], self.coords)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(None, x)[:, None]

    def derivs(self, x: torch.Tensor, idxs: Iterable[tuple[int, ...]]) -> dict[tuple[int, ...], torch.Tensor | None]:
        """``{b: D^b f at x (N,)}``; None where ``f`` is identically zero."""
        idxs = list(dict.fromkeys(idxs))
        if self.is_zero:
            return {b: None for b in idxs}
        if all(sum(b) == 0 for b in idxs):
            v = self.fn(None, x.detach())
            return {b: v for b in idxs}
        with torch.enable_grad():
            got = autograd_derivatives(self, x.detach(), [(0, b) for b in idxs])
        return {b: got[(0, b)].detach() for b in idxs}


class ExactDirichlet(nn.Module):
    """``u = g + phi * net``: Dirichlet data ``g`` hold exactly where ``phi = 0``.

    Parameters
    ----------
    net : nn.Module
        Maps ``(N, d)`` to ``(N, C)`` (may itself be a :class:`Normalized`).
    coords : sequence of sympy.Symbol
        Coordinates in column order.
    phi : sympy.Expr
        Vanishes on the constrained boundary, nonzero inside (e.g.
        ``domain.adf(coords)``; for an initial condition ``t - t0``; a
        product for both).
    g : sympy.Expr or sequence of C of them
        The boundary/initial data, extended smoothly inside (e.g. by
        :func:`pinnsiren.adf.transfinite`); one per channel or one for all.
    channels : sequence of int, optional
        Channels to transform (default all); the others pass through.
    """

    def __init__(self, net: nn.Module, coords: Sequence[sympy.Symbol], phi: Any, g: Any = 0,
                 channels: Sequence[int] | None = None) -> None:
        super().__init__()
        self.net = net
        self.coords = tuple(coords)
        self.phi = _Compiled(phi, self.coords)
        C = getattr(net, "out_features", None)
        self.out_features = C
        self.channels = list(channels) if channels is not None else (list(range(C)) if C else [0])
        gs = list(g) if isinstance(g, (list, tuple)) else [g] * len(self.channels)
        if len(gs) != len(self.channels):
            raise ValueError(f"ExactDirichlet: {len(gs)} data expressions for {len(self.channels)} channels")
        self._g = nn.ModuleList([_Compiled(e, self.coords) for e in gs])
        self.g = dict(zip(self.channels, self._g))

    @property
    def config(self) -> dict[str, Any]:
        """What :func:`pinnsiren.io.load_model` needs to rebuild it: ``phi`` and ``g`` as SymPy srepr text
        (read back by the restricted :func:`pinnsiren.specio.load_srepr`), the inner network's ``config``."""
        return dict(cls="ExactDirichlet", inner=dict(getattr(self.net, "config", {})),
                    coords=[sympy.srepr(c) for c in self.coords], phi=sympy.srepr(self.phi.expr),
                    g=[sympy.srepr(self.g[c].expr) for c in self.channels], channels=list(self.channels),
                    out_features=self.out_features)

    @classmethod
    def from_config(cls, config: dict[str, Any], build: Any) -> "ExactDirichlet":
        """Rebuild from :attr:`config`; ``build(inner_config)`` makes the inner network."""
        from .specio import load_srepr

        net = build(config["inner"])
        if getattr(net, "out_features", None) is None:
            net.out_features = config.get("out_features")
        coords = [load_srepr(c) for c in config["coords"]]
        return cls(net, coords, load_srepr(config["phi"]), [load_srepr(g) for g in config["g"]],
                   channels=config["channels"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        phi = None if self.phi.is_zero else self.phi.fn(None, x)
        cols = []
        for c in range(y.shape[1]):
            if c in self.g:
                gv = None if self.g[c].is_zero else self.g[c].fn(None, x)
                v = y[:, c] * phi if phi is not None else torch.zeros_like(y[:, c])
                cols.append(v + gv if gv is not None else v)
            else:
                cols.append(y[:, c])
        return torch.stack(cols, 1)

    #: :class:`~pinnsiren.jet_keys.Laplacian` keys are answered from a Laplacian of ``net`` (see below)
    accepts_laplacian = True

    def transform_derivatives(self, x: torch.Tensor, keys: list[Key], method: str) -> dict[Key, torch.Tensor]:
        """Leibniz rule; a weighted Laplacian of a transformed channel uses ``net``'s own Laplacian slot:
        ``sum_k w_k d_kk (phi N) = phi L_w N + sum_k w_k (2 phi_k N_k + phi_kk N)``."""
        if x.shape[1] != len(self.coords):
            raise ValueError(f"ExactDirichlet was declared for coordinates {self.coords}, got x of shape {tuple(x.shape)}")
        d, n = x.shape[1], x.shape[0]
        laps = {(c, a): a.resolve(d, n) for c, a in keys if isinstance(a, Laplacian) and c in self.g}
        plain = [k for k in keys if k[0] in self.g and k not in laps]
        inner_keys = [k for k in keys if k[0] not in self.g] + _lower_closure(plain)
        orders = {b for c, a in plain for b in itertools.product(*[range(v + 1) for v in a])}
        g_orders = {c: [a for cc, a in plain if cc == c] for c in self.g}
        for (c, lap), terms in laps.items():
            inner_keys += [(c, lap), (c, (0,) * d)] + [(c, _unit(d, k)) for k, _ in terms]
            orders |= {(0,) * d} | {_unit(d, k) for k, _ in terms} | {_unit(d, k, 2) for k, _ in terms}
            g_orders[c] += [_unit(d, k, 2) for k, _ in terms]
        inner = derivatives(self.net, x, inner_keys, method=method)
        phis = self.phi.derivs(x, orders)
        gd = {c: self.g[c].derivs(x, g_orders[c]) for c in self.g if g_orders[c]}
        out = {}
        for c, a in keys:
            if c not in self.g:
                out[(c, a)] = inner[(c, a)]
            elif (c, a) in laps:
                out[(c, a)] = _leibniz_laplacian(inner, phis, gd[c], c, a, laps[(c, a)], d)
            else:
                out[(c, a)] = _leibniz(inner, phis, gd[c][a], c, a)
        return out


def _unit(d: int, k: int, order: int = 1) -> tuple[int, ...]:
    return tuple(order * (i == k) for i in range(d))


def _leibniz(inner: dict, phis: dict, g: torch.Tensor | None, c: int, a: tuple[int, ...]) -> torch.Tensor:
    """``D^a (g + phi N) = D^a g + sum_{b <= a} C(a, b) D^b phi D^(a-b) N``."""
    total = g
    for b in itertools.product(*[range(v + 1) for v in a]):
        pb = phis[b]
        if pb is None:
            continue
        coef = math.prod(math.comb(ai, bi) for ai, bi in zip(a, b))
        rest = tuple(ai - bi for ai, bi in zip(a, b))
        term = pb * inner[(c, rest)] if coef == 1 else coef * pb * inner[(c, rest)]
        total = term if total is None else total + term
    return total if total is not None else torch.zeros_like(inner[(c, a)])


def _leibniz_laplacian(inner: dict, phis: dict, gd: dict, c: int, lap: Laplacian, terms: list, d: int) -> torch.Tensor:
    """``sum_k w_k d_kk (g + phi N)`` from ``N``'s collapsed slot, value and first derivatives."""
    zero = (0,) * d
    total = None if phis[zero] is None else phis[zero] * inner[(c, lap)]
    for k, w in terms:
        w = w.reshape(-1) if torch.is_tensor(w) else w
        parts = [gd[_unit(d, k, 2)]]
        if phis[_unit(d, k)] is not None:
            parts.append(2 * phis[_unit(d, k)] * inner[(c, _unit(d, k))])
        if phis[_unit(d, k, 2)] is not None:
            parts.append(phis[_unit(d, k, 2)] * inner[(c, zero)])
        for p in parts:
            if p is not None:
                total = w * p if total is None else total + w * p
    return total if total is not None else torch.zeros_like(inner[(c, lap)])
