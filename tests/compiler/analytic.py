"""Analytic fields implemented both as an nn.Module and as SymPy expressions.

Two kinds:

* ``tiny_siren``: a small float64 :class:`~pinnsiren.networks.Siren` whose
  closed form is written out in SymPy (so the jet path is exercised);
* ``TrigExpField``: a smooth trig/exp module (not a Siren, so the autograd
  fallback is exercised).

The SymPy derivatives of the closed forms up to order 2 are computed once and
lambdified for numpy: the reference never touches torch.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy
import torch
from torch import nn

from pinnsiren.networks import Siren

X, Y = sympy.symbols("x y", real=True)
COORDS = (X, Y)
MULTI = [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]


def tiny_siren(out_features: int, seed: int = 1234, in_features: int = 2) -> Siren:
    torch.manual_seed(seed)
    m = Siren(in_features, out_features, hidden_features=3, hidden_layers=1, first_omega_0=2.0, hidden_omega_0=2.0)
    return m.double()


def siren_sympy(m: Siren, coords=COORDS) -> list[sympy.Expr]:
    """Closed form of each output channel of a Siren, in ``coords``."""
    h = list(coords)
    for layer, w0 in zip(m.layers[:-1], m.omegas):
        W = layer.weight.detach().numpy()
        b = layer.bias.detach().numpy()
        h = [sympy.sin(w0 * (sum(sympy.Float(W[i, j], 17) * h[j] for j in range(len(h))) + sympy.Float(b[i], 17)))
             for i in range(W.shape[0])]
    layer = m.layers[-1]
    W = layer.weight.detach().numpy()
    b = layer.bias.detach().numpy()
    return [sum(sympy.Float(W[i, j], 17) * h[j] for j in range(len(h))) + sympy.Float(b[i], 17) for i in range(W.shape[0])]


class TrigExpField(nn.Module):
    """``y_c = sin(a_c x + b_c y + p_c) * exp(q_c x - r_c y) + cos(s_c x y)``."""

    def __init__(self, out_features: int, seed: int = 99) -> None:
        super().__init__()
        g = np.random.default_rng(seed)
        self.p = g.uniform(-1.5, 1.5, size=(out_features, 6))
        self.out_features = out_features
        self.w = nn.Parameter(torch.ones(out_features, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.as_tensor(self.p, dtype=x.dtype)
        a, b, c, q, r, s = (p[:, i] for i in range(6))
        X_, Y_ = x[:, :1], x[:, 1:2]
        return self.w * (torch.sin(a * X_ + b * Y_ + c) * torch.exp(q * X_ - r * Y_)) + torch.cos(s * X_ * Y_)

    def sympy(self) -> list[sympy.Expr]:
        out = []
        for a, b, c, q, r, s in self.p:
            a, b, c, q, r, s = (sympy.Float(v, 17) for v in (a, b, c, q, r, s))
            out.append(sympy.sin(a * X + b * Y + c) * sympy.exp(q * X - r * Y) + sympy.cos(s * X * Y))
        return out


def channel_derivatives(exprs: list[sympy.Expr]):
    """``{(channel, multi_index): numpy function of (x, y)}`` up to order 2."""
    out = {}
    for c, e in enumerate(exprs):
        for a in MULTI:
            d = e
            for var, n in zip(COORDS, a):
                if n:
                    d = sympy.diff(d, var, n)
            out[(c, a)] = sympy.lambdify(COORDS, d, "numpy")
    return out


def points(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 2))


def all_keys(channels: int) -> list:
    return list(itertools.product(range(channels), MULTI))


DIRAC = [{"DiracDelta": lambda z, *order: 0.0 * z}, "numpy"]


def sympy_reference(expr, coords, replacements, pts):
    """Evaluate ``expr`` with fields/coefficients replaced by closed forms, differentiated by SymPy.

    Returns (values (N,) complex, scale (N,)): scale is the sum of the moduli
    of the top-level terms (the size the tolerance is relative to).
    """
    e = expr.xreplace(replacements).doit()
    assert not e.atoms(sympy.Derivative), e.atoms(sympy.Derivative)
    cols = [pts[:, i] for i in range(pts.shape[1])]
    n = len(pts)

    def ev(t):
        f = sympy.lambdify(coords, t, DIRAC)
        return np.broadcast_to(np.asarray(f(*cols), dtype=complex), (n,))

    val = ev(e)
    scale = sum(np.abs(ev(t)) for t in sympy.Add.make_args(e))
    return val, scale
