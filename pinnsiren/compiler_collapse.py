"""Collapsed (forward-Laplacian) groups: weighted sums of pure second derivatives of a
field rewritten as one :class:`~pinnsiren.jet_keys.Laplacian` request where that saves
Taylor slots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy
import torch
from sympy.core.function import AppliedUndef

from .jet_keys import Laplacian

if TYPE_CHECKING:
    from .compiler import CompiledResidual

__all__ = ["Group", "collapse", "laplacians"]


class Group:
    """``sum_k w_k d^2/dx_k^2`` with SymPy weights, serving the fields in ``fields``."""

    def __init__(self, weights: tuple) -> None:
        self.weights = weights
        self.maybe_complex = any(w.is_real is not True for w in weights if w != 0)
        self.placeholders: dict[str, sympy.Dummy] = {}  # field name -> symbol standing for its sum

    def slots(self) -> int:
        return 2 if self.maybe_complex else 1


def collapse(comp: "CompiledResidual", exprs: tuple) -> tuple[tuple, list[Group]] | None:
    """Rewrite ``exprs`` so weighted sums of pure second derivatives become group placeholders.

    A field qualifies when, in every expression, its pure second derivatives
    ``D_kk f`` enter linearly with weights free of fields (coordinates,
    coefficients, parameters only). Returns None when nothing qualifies or
    collapsing would not save Taylor slots (e.g. the PML Helmholtz: complex
    weights need two slots, as many as its two pure second derivatives).
    """
    d = len(comp.coords)
    pure = {}
    for e in exprs:
        for D in e.atoms(sympy.Derivative):
            name = D.expr.func.__name__
            a = comp._multi_index(D)
            if name in comp.fields and name not in comp.sub_fields and sum(a) == 2 and max(a) == 2:
                pure.setdefault(name, {})[D] = a.index(2)
    if not pure:
        return None
    groups: dict[tuple, Group] = {}
    out = list(exprs)
    for name, nodes in pure.items():
        trial = _split_linear(comp, out, nodes, d)
        if trial is None:
            continue
        new_exprs, weights_per_expr = trial
        for i, weights in weights_per_expr.items():
            g = groups.setdefault(weights, Group(weights))
            ph = g.placeholders.setdefault(name, sympy.Dummy(f"lap_{name}"))
            new_exprs[i] = new_exprs[i] + ph
        out = new_exprs
    if not groups:
        return None
    full = {(k, l) for n in comp._collect_needs(exprs) for k, l in [_pair(n[1])] if k is not None}
    rest = {(k, l) for n in comp._collect_needs(out) for k, l in [_pair(n[1])] if k is not None}
    if len(rest) + sum(g.slots() for g in groups.values()) >= len(full):
        return None
    return tuple(out), list(groups.values())


def _pair(a: tuple[int, ...]) -> tuple[int | None, int | None]:
    nz = [i for i, v in enumerate(a) for _ in range(v)]
    return (nz[0], nz[1]) if len(nz) == 2 else (None, None)


def _split_linear(comp: "CompiledResidual", exprs: list, nodes: dict, d: int):
    """``e = R + sum_k w_k D_kk f`` for each expression, or None if ``f`` is not linear there."""
    dummies = {D: sympy.Dummy(f"s{k}") for D, k in nodes.items()}
    field_names = set(comp.fields)
    new = list(exprs)
    weights_per_expr = {}
    for i, e in enumerate(exprs):
        if not any(e.has(D) for D in nodes):
            continue
        es = e.xreplace(dummies)
        w = [sympy.S.Zero] * d
        for D, s in dummies.items():
            a = sympy.diff(es, s)
            if a.free_symbols & set(dummies.values()) or _has_field(a, field_names):
                return None
            w[nodes[D]] += a
        rest = es.xreplace({s: 0 for s in dummies.values()})
        weights_per_expr[i] = tuple(w)
        new[i] = rest
    return new, weights_per_expr


def _has_field(e: sympy.Basic, field_names: set[str]) -> bool:
    return any(f.func.__name__ in field_names for f in e.atoms(AppliedUndef))


def laplacians(weights: list[Any]) -> list[Laplacian]:
    """One real :class:`Laplacian` for real weights; real and imaginary parts for complex ones."""
    ws = [w if torch.is_tensor(w) else torch.as_tensor(w) for w in weights]
    if not any(w.is_complex() for w in ws):
        return [Laplacian(ws)]
    return [Laplacian([w.real if w.is_complex() else w for w in ws]),
            Laplacian([w.imag if w.is_complex() else torch.zeros_like(w) for w in ws])]
