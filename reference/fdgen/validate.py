"""Checks of a spec and the grid options before anything is assembled.

Called first by :func:`reference.fdgen.solve.solve_spec` (so by ``solve`` and
``solve_pde``). Refused with :class:`~reference.fdgen.spec.SpecError`, naming
the culprit: a grid ``shape`` that is not whole numbers >= 3 (one per space
axis), an unknown ``order`` or ``method``, a box with an empty or non-finite
extent, and non-finite numbers anywhere a solve would turn them into a NaN
field or a misleading error later: in an equation or constraint (a NaN
coefficient, NaN boundary data, a NaN initial value), in a parameter's value,
or in a coefficient function's values on the grid nodes.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterator

import numpy as np
import sympy

from .spec import Condition, Spec, SpecError

__all__ = ["check_solve"]

#: the fewest nodes per axis (a centred second difference needs three)
MIN_NODES = 3


def _check_shape(spec: Spec, shape: Any) -> tuple[int, ...]:
    axes = spec.space_axes
    names = [str(spec.coords[k]) for k in axes]
    items = [shape] * len(axes) if isinstance(shape, numbers.Number) else shape
    try:
        if isinstance(items, (str, bytes)):
            raise TypeError
        items = list(items)
    except TypeError:
        raise SpecError(f"grid shape {shape!r}: expected an int or one int per space axis {names}") from None
    if len(items) != len(axes):
        raise SpecError(f"grid shape {shape!r} has {len(items)} sizes but there are {len(axes)} space axes {names}")
    out = []
    for name, n in zip(names, items):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            if isinstance(n, numbers.Real) and float(n).is_integer():
                n = int(n)
            else:
                raise SpecError(f"grid shape {shape!r}: nodes along {name} must be a whole number, got {n!r}")
        if n < MIN_NODES:
            raise SpecError(f"grid shape {shape!r}: nodes along {name} must be >= {MIN_NODES}, got {n}")
        out.append(int(n))
    return tuple(out)


def _terms(spec: Spec) -> Iterator[tuple[str, Any]]:
    for name, e in spec.equations:
        yield f"equation {name!r}", e
    for c in spec.conditions:
        if isinstance(c, Condition):
            yield f"constraint {c.name!r}", c.expr
    for name, e in spec.initial:
        yield f"initial condition {name!r}", e


def _non_finite(e: Any) -> Any:
    """The first non-finite number in SymPy expression ``e`` (None when all are finite)."""
    if not isinstance(e, sympy.Basic):
        try:
            return None if np.all(np.isfinite(complex(e))) else e
        except (TypeError, ValueError):
            return None
    bad = (sympy.nan, sympy.oo, -sympy.oo, sympy.zoo)
    for node in sympy.preorder_traversal(e):
        if node in bad:
            return node
        if isinstance(node, sympy.Float) and not math.isfinite(float(node)):
            return node
    return None


def _user(spec: Spec, name: str) -> str:
    """Where value ``name`` is used (for the message)."""
    for where, e in _terms(spec):
        if not isinstance(e, sympy.Basic):
            continue
        if any(s.name == name for s in e.free_symbols) or any(
                a.func.__name__ == name for a in e.atoms(sympy.core.function.AppliedUndef)):
            return f" (used in {where})"
    return ""


def _applications(spec: Spec, name: str) -> list:
    out = []
    for _, e in _terms(spec):
        if isinstance(e, sympy.Basic):
            out += [a for a in e.atoms(sympy.core.function.AppliedUndef) if a.func.__name__ == name]
    return out


def _check_values(spec: Spec, shape: tuple[int, ...]) -> None:
    lines = {}
    for k, n in zip(spec.space_axes, shape):
        lo, hi = spec.bounds[k]
        lines[spec.coords[k]] = np.linspace(lo, hi, n)
    if spec.time is not None:
        lo, hi = spec.bounds[spec.time]
        lines[spec.coords[spec.time]] = np.linspace(lo, hi, 5)
    for name, v in spec.values.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (numbers.Number, sympy.Basic)):
            bad = _non_finite(v)
            if bad is not None:
                raise SpecError(f"value of {name!r} is {bad}{_user(spec, name)}: expected a finite number")
            continue
        if isinstance(v, np.ndarray):
            if np.issubdtype(v.dtype, np.number) and not np.all(np.isfinite(v)):
                raise SpecError(f"value of {name!r} has non-finite entries{_user(spec, name)}")
            continue
        if not callable(v):
            continue
        for a in _applications(spec, name)[:1]:
            if not all(arg in lines for arg in a.args):
                continue
            mesh = np.meshgrid(*[lines[arg] for arg in a.args], indexing="ij", sparse=True)
            try:
                with np.errstate(all="ignore"):
                    out = np.asarray(v(*mesh))
            except Exception:  # noqa: BLE001 - the solver reports a callable that fails in its own words
                continue
            if np.issubdtype(out.dtype, np.number) and not np.all(np.isfinite(out)):
                raise SpecError(f"coefficient {a} ({name!r}) is not finite on the grid nodes{_user(spec, name)}")


def check_solve(spec: Spec, shape: Any, order: Any = 2, method: str = "auto") -> tuple[int, ...]:
    """Check ``spec`` with grid ``shape``, ``order`` and ``method``; return the shape, one int per space axis."""
    from .solve import METHODS
    from .stencils import ORDERS

    if order not in ORDERS:
        raise SpecError(f"order {order!r} is not in the stencil set; choose one of {list(ORDERS)}")
    if method not in METHODS:
        raise SpecError(f"method {method!r}: choose one of {list(METHODS)}")
    for c, (lo, hi) in zip(spec.coords, spec.bounds):
        if not (math.isfinite(float(lo)) and math.isfinite(float(hi))) or not hi > lo:
            raise SpecError(f"box extent of {c} is [{lo}, {hi}]: expected finite bounds with lo < hi")
    shape_t = _check_shape(spec, shape)
    for where, e in _terms(spec):
        bad = _non_finite(e)
        if bad is not None:
            raise SpecError(f"{where} contains the non-finite number {bad}: {e}")
    _check_values(spec, shape_t)
    return shape_t
