"""Symbolic building blocks: unknown fields and constraint specifications.

This module imports SymPy only (no torch), so the PDE catalog in
``equations/`` can use it.

A *field* is a SymPy applied undefined function of the coordinate symbols,
``u = Field("u", (x, y))``; ``u.diff(x, 2)`` works as in plain SymPy. A real
field occupies one model output channel, a complex field two (real part, then
imaginary part), in the order the fields are declared.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import sympy

__all__ = [
    "Field",
    "is_field",
    "is_complex_field",
    "coefficient",
    "Constraint",
    "gradient",
    "laplacian",
    "divergence",
    "normal",
    "normal_derivative",
    "NORMS",
]

#: loss norms a :class:`Constraint` may use
NORMS = ("l2", "l1")


def _check_coords(coords: Sequence[sympy.Symbol]) -> tuple[sympy.Symbol, ...]:
    coords = tuple(coords)
    if not coords:
        raise ValueError("coords must name at least one coordinate symbol")
    for c in coords:
        if not isinstance(c, sympy.Symbol):
            raise TypeError(f"coordinate {c!r} is not a sympy.Symbol")
    if len(set(coords)) != len(coords):
        raise ValueError(f"coordinates must be distinct, got {coords}")
    return coords


def Field(name: str, coords: Sequence[sympy.Symbol], complex: bool = False) -> sympy.Expr:
    """Declare an unknown field ``name(*coords)``.

    Parameters
    ----------
    name : str
        Field name (a Python identifier).
    coords : sequence of sympy.Symbol
        The coordinate symbols, in the column order of the point array
        ``x`` of shape ``(N, d)``.
    complex : bool
        A complex field takes two network channels (real, imaginary); a real
        field one. Real fields carry SymPy's ``real=True`` assumption so
        ``conjugate(u)`` simplifies to ``u``.

    Returns
    -------
    sympy.Expr
        The applied function; ``.func.pinn_complex`` tells its kind.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"field name must be an identifier string, got {name!r}")
    coords = _check_coords(coords)
    if complex:
        f = sympy.Function(name, pinn_field=True, pinn_complex=True, diff=_field_diff)
    else:
        f = sympy.Function(name, real=True, pinn_field=True, pinn_complex=False, diff=_field_diff)
    return f(*coords)


def _field_diff(self: sympy.Expr, *symbols: Any, **kwargs: Any) -> sympy.Expr:
    """``u.diff(...)`` of a field: plain SymPy, except that a derivative along a symbol that is not one of the
    field's coordinates stays unevaluated (SymPy would give 0), so the compiler either names the symbol in an
    error (not a coordinate of the problem) or takes it as exactly 0 (a coordinate the field leaves out). Dummies (the
    compiler's own placeholders) differentiate as in plain SymPy."""
    own = set(self.args)
    if kwargs.get("evaluate", True) and any(isinstance(s, sympy.Symbol) and not isinstance(s, sympy.Dummy) and s not in own
                                               for s in symbols):
        return sympy.Derivative(self, *symbols, evaluate=False)
    return sympy.Expr.diff(self, *symbols, **kwargs)


def is_field(expr: Any) -> bool:
    """True if ``expr`` is a field application made by :func:`Field`."""
    return isinstance(expr, sympy.core.function.AppliedUndef) and bool(
        getattr(expr.func, "pinn_field", False)
    )


def is_complex_field(expr: Any) -> bool:
    """True if ``expr`` is a complex field application."""
    return is_field(expr) and bool(getattr(expr.func, "pinn_complex", False))


def coefficient(name: str, coords: Sequence[sympy.Symbol]) -> sympy.Expr:
    """A named coefficient function ``name(*coords)`` whose values are given at call time.

    The compiled residual takes its values as a keyword argument ``name=``:
    a tensor of shape ``(N,)`` (or a scalar) or a callable mapping ``x`` of
    shape ``(N, d)`` to ``(N,)``. Only a callable can be differentiated.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"coefficient name must be an identifier string, got {name!r}")
    return sympy.Function(name)(*_check_coords(coords))


def gradient(u: sympy.Expr, coords: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
    """``[du/dc for c in coords]``."""
    return [sympy.diff(u, c) for c in coords]


def laplacian(u: sympy.Expr, coords: Sequence[sympy.Symbol]) -> sympy.Expr:
    """Sum of the pure second derivatives of ``u`` over ``coords``."""
    return sympy.Add(*[sympy.diff(u, c, 2) for c in coords])


def divergence(v: Sequence[sympy.Expr], coords: Sequence[sympy.Symbol]) -> sympy.Expr:
    """``sum_i d v_i / d coords_i``."""
    if len(v) != len(coords):
        raise ValueError(f"vector has {len(v)} components but there are {len(coords)} coordinates")
    return sympy.Add(*[sympy.diff(vi, c) for vi, c in zip(v, coords)])


def normal(coords: Sequence[sympy.Symbol]) -> tuple[sympy.Symbol, ...]:
    """The outward-normal component symbols ``n_<coord>`` (e.g. ``n_x, n_y``).

    On a region whose samples carry normals (a boundary of a geometry shape,
    ``Box.boundary(faces)``, ...), a constraint may use
    these symbols; each point gets the components of its own outward unit
    normal.
    """
    return tuple(sympy.Symbol(f"n_{c.name}", real=True) for c in _check_coords(coords))


def normal_derivative(u: sympy.Expr, coords: Sequence[sympy.Symbol]) -> sympy.Expr:
    """``n . grad u`` with the per-point normal symbols of :func:`normal`."""
    coords = _check_coords(coords)
    return sympy.Add(*[n * sympy.diff(u, c) for n, c in zip(normal(coords), coords)])


@dataclasses.dataclass(frozen=True)
class Constraint:
    """One loss term: a residual expression imposed on a region.

    Parameters
    ----------
    expr : sympy.Expr, sympy.Eq, or sequence of them
        Residual (``Eq`` means ``lhs - rhs``). A sequence is a vector
        residual whose component norms are summed.
    where : region or None
        Where to sample (a region of :mod:`pinnsiren.problem`). Catalog
        functions leave it ``None``; set it with :meth:`on`.
    weight : float or sympy.Expr
        A float, or an expression in the coordinates (evaluated per point).
    norm : {"l2", "l1"}
        ``l2``: mean over points of ``weight * sum_j |r_j|^2``; ``l1``: mean
        of ``weight * sum_j |r_j|``. ``|r|`` is the modulus for complex
        residuals.
    name : str or None
        Key of this term in ``Problem.losses``; defaults to ``c<i>``.
    n : int or None
        Points per step (``None`` for a point set: all of its points).
    pair : sequence of float, or callable, optional
        A two-point condition: the residual becomes ``r(x) - r(x')`` with
        ``x' = x + pair`` (a shift, e.g. the period) or ``x' = pair(x)``
        (a callable on ``(N, d)`` tensors). ``Constraint([u, u.diff(x)],
        left_face, pair=(2, 0))`` makes ``u`` and ``u_x`` periodic in ``x``.
    """

    expr: Any
    where: Any = None
    weight: Any = 1.0
    norm: str = "l2"
    name: str | None = None
    n: int | None = None
    pair: Any = None

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; must be one of {list(NORMS)}")
        if self.n is not None and (not isinstance(self.n, int) or self.n < 1):
            raise ValueError(f"n (points per step) must be a positive integer, got {self.n!r}")
        if self.pair is not None and not callable(self.pair):
            try:
                shift = [float(v) for v in self.pair]
            except (TypeError, ValueError):
                raise TypeError(f"pair must be a shift (sequence of floats) or a callable x -> x', got {self.pair!r}") from None
            object.__setattr__(self, "pair", tuple(shift))
        if isinstance(self.expr, str) or isinstance(self.weight, str):
            raise TypeError("constraint expressions and weights must be SymPy objects, not strings")

    def on(self, where: Any, n: int | None = None, **changes: Any) -> "Constraint":
        """Copy of this constraint placed on region ``where`` with ``n`` points per step."""
        return dataclasses.replace(self, where=where, n=n if n is not None else self.n, **changes)
