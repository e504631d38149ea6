"""Channel layout of the fields of a residual, and fields over a subset of the coordinates."""

from __future__ import annotations

from typing import Any, Sequence

import sympy
import torch

from .compiler_handlers import CompileError
from .symbolic import is_complex_field, is_field

__all__ = ["channel_layout", "subsequence", "field_axes", "project", "LEFT_OUT_VALUE"]

#: the value a field over a subset of the coordinates is evaluated at along the coordinates it leaves out
LEFT_OUT_VALUE = 0.0


def channel_layout(fields: Sequence[sympy.Expr], coords: tuple) -> tuple[dict[str, tuple[int, bool]], int]:
    """``{field name: (first channel, complex)}`` in declaration order, and the channel count."""
    layout: dict[str, tuple[int, bool]] = {}
    ch = 0
    for f in fields:
        if not is_field(f):
            raise CompileError(f"{f!r} in fields is not a Field (make it with pinnsiren.Field)")
        name = f.func.__name__
        if name in layout:
            raise CompileError(f"field {name!r} is listed twice in fields")
        try:
            subsequence(f.args, coords)
        except ValueError:
            raise CompileError(
                f"field {name!r} is a function of {tuple(f.args)} but the coordinates are {coords}: a field takes "
                "all of them, or some of them in that order (e.g. a time-independent coefficient a(x, y) in (x, y, t))"
            ) from None
        layout[name] = (ch, is_complex_field(f))
        ch += 2 if layout[name][1] else 1
    return layout, ch


def subsequence(args: Sequence[Any], coords: Sequence[sympy.Symbol]) -> tuple[int, ...]:
    """Indices of ``args`` among ``coords`` (matched by name), increasing; else ValueError."""
    names = [c.name for c in coords]
    out = []
    for a in args:
        if not isinstance(a, sympy.Symbol) or a.name not in names:
            raise ValueError(f"{a} is not a coordinate")
        out.append(names.index(a.name))
    if not out or any(j <= i for i, j in zip(out, out[1:])):
        raise ValueError("not a subsequence")
    return tuple(out)


def field_axes(field: sympy.Expr, coords: Sequence[sympy.Symbol]) -> tuple[int, ...]:
    """The indices of the coordinates ``field`` is a function of (all of them for an ordinary field).

    ``Field("a", (x, y))`` in a problem over ``(x, y, t)`` gives ``(0, 1)``.

    Raises
    ------
    CompileError
        If the field's arguments are not some of ``coords`` in their order.
    """
    try:
        return subsequence(field.args, coords)
    except ValueError:
        raise CompileError(
            f"{field} must be a function of the coordinates {tuple(coords)}, or of some of them in that order"
        ) from None


def project(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """``x`` (N, d) with every column not in ``axes`` set to :data:`LEFT_OUT_VALUE`.

    The model's channels of a field over the coordinates ``axes`` are
    evaluated at these points, so the field cannot depend on the other
    coordinates and its derivatives along them are exactly zero.
    """
    keep = torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
    keep[list(axes)] = True
    return torch.where(keep, x, torch.full((), LEFT_OUT_VALUE, dtype=x.dtype, device=x.device))
