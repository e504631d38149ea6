"""One network per unknown field: a coefficient field gets its own network and its own coordinates.

An inverse problem declares the coefficient it recovers as a further unknown
(``a = Field("a", (x, y))``, :func:`pinnsiren.Field`), next to the solution
``u``. By default one network outputs every field's channels. With
:class:`FieldNetworks` each field has a network of its own, fed only the
coordinates the field is a function of (``a(x, y)`` in a problem over
``(x, y, t)`` never sees ``t``); their outputs are stacked in the problem's
channel order, so the result is an ordinary model for :class:`pinnsiren.Problem`,
:func:`pinnsiren.impose_exactly` and the trainer.

:func:`smoothness` is the regularisation that goes with it: a Tikhonov
(H1-seminorm) penalty ``weight * |grad a|^2`` as residual components to append
to a constraint's vector residual, usually the PDE's. Inside one constraint the
penalty keeps its declared ratio to that term, also under loss balancing
(which equalises separate terms and would turn a small penalty up).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import sympy
import torch
from torch import nn

from .compiler_layout import channel_layout, field_axes
from .jet import derivatives
from .jet_keys import Key, Laplacian

__all__ = ["FieldNetworks", "smoothness"]


class FieldNetworks(nn.Module):
    """The channels of every field, each from its own network on the field's own coordinates.

    Parameters
    ----------
    fields : sequence of Field
        The problem's unknowns in channel order (``problem.fields``).
    coords : sequence of sympy.Symbol
        The problem's coordinates, in column order of the points.
    nets : mapping field name -> nn.Module
        One network per field, mapping ``(N, k)`` (the ``k`` coordinates the
        field is a function of, in the problem's order) to ``(N, C)`` (the
        field's channels: 1 real, 2 complex).

    Notes
    -----
    Call with ``x`` of shape ``(N, d)``; returns ``(N, total channels)``.
    Derivatives go through :func:`pinnsiren.derivatives` on each network (the
    Taylor-mode path is kept for SIRENs, also inside :class:`pinnsiren.Normalized`);
    a derivative of a field along a coordinate it leaves out is exactly zero,
    and a network no requested channel belongs to is not evaluated.
    """

    def __init__(self, fields: Sequence[sympy.Expr], coords: Sequence[sympy.Symbol],
                 nets: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.coords = tuple(coords)
        layout, total = channel_layout(list(fields), self.coords)
        missing = [n for n in layout if n not in nets]
        extra = [n for n in nets if n not in layout]
        if missing or extra:
            raise ValueError(f"FieldNetworks needs one network per field {list(layout)}; "
                             f"missing {missing}, unknown {extra}")
        self.names = list(layout)
        self.nets = nn.ModuleDict({n: nets[n] for n in self.names})
        self.axes = {f.func.__name__: field_axes(f, self.coords) for f in fields}
        self.first = {n: layout[n][0] for n in self.names}
        self.width = {n: 2 if layout[n][1] else 1 for n in self.names}
        self.in_features = len(self.coords)
        self.out_features = total

    @classmethod
    def recommended(cls, fields: Sequence[sympy.Expr], coords: Sequence[sympy.Symbol], bounds: Any,
                    **sizes: Any) -> "FieldNetworks":
        """:func:`pinnsiren.recommended_model` for each field, on the box ``bounds`` restricted to its coordinates.

        ``sizes`` may give a field's ``recommended_model`` arguments, e.g.
        ``a=dict(hidden_features=64)``.
        """
        from .train import recommended_model  # noqa: PLC0415

        if hasattr(bounds, "bbox"):
            bounds = bounds.bbox(0).tolist()
        layout, _ = channel_layout(list(fields), tuple(coords))
        nets = {}
        for f in fields:
            name = f.func.__name__
            sub = [bounds[i] for i in field_axes(f, tuple(coords))]
            nets[name] = recommended_model(sub, 2 if layout[name][1] else 1, **dict(sizes.get(name, {})))
        return cls(fields, coords, nets)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"FieldNetworks was declared for coordinates {self.coords}, "
                             f"got x of shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        outs = []
        for n in self.names:
            y = self.nets[n](x[:, list(self.axes[n])])
            if y.ndim != 2 or y.shape[1] != self.width[n]:
                raise ValueError(f"the network of field {n!r} must output {self.width[n]} channel(s), "
                                 f"got shape {tuple(y.shape)}")
            outs.append(y)
        return torch.cat(outs, 1)

    def owner(self, c: int) -> str:
        """The field that channel ``c`` belongs to."""
        for n in self.names:
            if self.first[n] <= c < self.first[n] + self.width[n]:
                return n
        raise ValueError(f"channel {c} out of range: the fields have {self.out_features} channels")

    #: :class:`~pinnsiren.jet_keys.Laplacian` keys are restricted to each field's coordinates (see below)
    accepts_laplacian = True

    def transform_derivatives(self, x: torch.Tensor, keys: list[Key], method: str) -> dict[Key, torch.Tensor]:
        """Each key from its field's network: the multi-index (or a Laplacian's weights) restricted to the
        field's coordinates; a derivative along a coordinate the field leaves out is zero."""
        self._check(x)
        wanted: dict[str, list[tuple[Key, Key]]] = {}
        out: dict[Key, torch.Tensor] = {}
        for c, a in keys:
            n = self.owner(c)
            inner = _restrict(a, self.axes[n])
            if inner is None:
                out[(c, a)] = x.new_zeros(x.shape[0])
            else:
                wanted.setdefault(n, []).append(((c, a), (c - self.first[n], inner)))
        for n, pairs in wanted.items():
            got = derivatives(self.nets[n], x[:, list(self.axes[n])], [ik for _, ik in pairs], method=method)
            out.update({k: got[ik] for k, ik in pairs})
        return out


def _restrict(a: Any, axes: Sequence[int]) -> Any:
    """A multi-index or Laplacian on the coordinates ``axes`` only; None where it is identically zero."""
    if isinstance(a, Laplacian):
        if a.weights is None:
            return Laplacian(None)
        ws = [a.weights[i] for i in axes]
        if all(not torch.is_tensor(w) and float(w) == 0.0 for w in ws):
            return None
        return Laplacian(tuple(ws))
    if any(k for i, k in enumerate(a) if i not in axes):
        return None
    return tuple(a[i] for i in axes)


def smoothness(field: sympy.Expr, weight: float) -> list[sympy.Expr]:
    """Tikhonov (H1-seminorm) residual components ``sqrt(weight) * d field / d x_k`` for each argument ``x_k``.

    Append them to a constraint's residual, e.g.
    ``Constraint([pde] + smoothness(a, 1e-4), domain)``: its loss becomes
    ``mean(|pde|^2 + weight * |grad a|^2)``, a penalty on the recovered
    coefficient's roughness at a fixed ratio to the PDE residual.
    """
    if not (weight >= 0):
        raise ValueError(f"smoothness weight must be >= 0, got {weight}")
    s = sympy.Float(math.sqrt(weight))
    return [s * field.diff(v) for v in field.args]
