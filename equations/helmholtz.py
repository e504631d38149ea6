"""Helmholtz equation with a perfectly matched layer (supplement Eq. 11).

On ``[-1, 1]^2`` with the PML on ``0.5 < |x|_inf < 1``::

    d/dx(e_y/e_x du/dx) + d/dy(e_x/e_y du/dy) + e_x e_y k^2 m(x) u = -f
    e_i = 1 - i a0 (l_i / L)^2,  l_i = max(|x_i| - 0.5, 0),  a0 = 5, L = 0.5

``m`` is the squared slowness (``1/c^2``), ``f`` a unit-mass Gaussian source
``exp(-|x - x0|^2 / (2 s^2)) / (2 pi s^2)`` (default ``s^2 = 1e-4``).

Time-sign convention (shared with ``reference/``): with ``e = 1 - i s`` the
outgoing solution of ``Δu + k^2 u = -δ`` is ``conj((i/4) H0^(1)(k r))``
``= -(i/4) H0^(2)(k r)``, i.e. time dependence ``exp(+i ω t)``.

Example
-------
>>> x, y = sympy.symbols("x y")
>>> u = Field("u", (x, y), complex=True)
>>> helmholtz.helmholtz_pml(u, k=20)                 # homogeneous m = 1
>>> helmholtz.helmholtz_pml(u, k=20, m="m")          # m(x, y) given at call time
>>> helmholtz.helmholtz_scattered(Field("us", (x, y), complex=True), k=20, m="m", m0=1, u0="u0")

Scattered-field form (values of ``u0`` only): with ``u = u0 + us`` and ``u0``
the field of the same source in a background ``m0`` (``H(m0) u0 = -f``), the
operator being affine in ``m``, ``H(m) u = -f`` becomes::

    H(m) us + k^2 e_x e_y (m - m0) u0 = 0

no source term, no derivative of ``u0``; for ``m = m0``, ``us = 0`` exactly.
"""

from __future__ import annotations

from typing import Any, Sequence

import sympy

from pinnsiren.symbolic import coefficient

from ._util import as_expr, coords_of, real_coords

__all__ = ["pml_stretch", "gaussian_source", "helmholtz_pml", "helmholtz_scattered", "helmholtz_scattered_pml", "A0",
           "L_PML", "INNER", "PML_DEFAULTS"]

A0 = 5
L_PML = sympy.Rational(1, 2)
INNER = sympy.Rational(1, 2)
#: the PML's settings, keywords of every residual here: strength ``a0``, width ``L``, half width ``inner`` of
#: the physical region (the PML is ``inner < |x|_inf < inner + L``)
PML_DEFAULTS = {"a0": A0, "L": L_PML, "inner": INNER}


def _pml(options: dict[str, Any]) -> dict[str, Any]:
    """The PML settings: :data:`PML_DEFAULTS` with ``options`` replaced; a ``TypeError`` names an unknown key."""
    unknown = sorted(set(options) - set(PML_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown PML setting(s) {unknown}; the PML takes {list(PML_DEFAULTS)}")
    return {**PML_DEFAULTS, **options}


def pml_stretch(c: sympy.Symbol, **pml: Any) -> sympy.Expr:
    """``e = 1 - i a0 (l / L)^2`` with ``l = max(|c| - inner, 0)`` (1 outside the PML); ``pml``: a0, L, inner."""
    p = _pml(pml)
    l = sympy.Max(sympy.Abs(c) - p["inner"], 0)
    return 1 - sympy.I * p["a0"] * (l / p["L"]) ** 2


def gaussian_source(coords: Sequence[sympy.Symbol], x0: Sequence[Any] = (0, 0), s2: Any = sympy.Rational(1, 10000)) -> sympy.Expr:
    """Unit-mass 2-D Gaussian ``exp(-|x - x0|^2 / (2 s2)) / (2 pi s2)``."""
    r2 = sum((c - c0) ** 2 for c, c0 in zip(coords, x0))
    return sympy.exp(-r2 / (2 * s2)) / (2 * sympy.pi * s2)


def helmholtz_pml(
    u: sympy.Expr,
    k: Any,
    m: Any = 1,
    f: Any = None,
    x0: Sequence[Any] = (0, 0),
    s2: Any = sympy.Rational(1, 10000),
    **pml: Any,
) -> sympy.Expr:
    """Residual of the PML Helmholtz equation (left side + f).

    Parameters
    ----------
    u : Field
        Complex field of two coordinates ``(x, y)``.
    k : number or Symbol
        Wavenumber (a Symbol becomes a compile-time parameter).
    m : expression, number, or coefficient name
        Squared slowness.
    f : expression, number, coefficient name, or None
        Source; ``None`` means :func:`gaussian_source` at ``x0`` with ``s2``.
    **pml
        ``a0``, ``L``, ``inner`` (:data:`PML_DEFAULTS`).
    """
    coords = coords_of(u)
    if len(coords) != 2:
        raise ValueError(f"helmholtz_pml is 2-D; {u} has {len(coords)} coordinates")
    ff = gaussian_source(coords, x0, s2) if f is None else as_expr(f, coords, "f")
    return _operator(u, k, m, _pml(pml)) + ff


def helmholtz_scattered(
    us: sympy.Expr,
    k: Any,
    m: Any = 1,
    m0: Any = 1,
    u0: Any = "u0",
    **pml: Any,
) -> sympy.Expr:
    """Scattered-field residual ``H(m) us + k^2 e_x e_y (m - m0) u0`` (values of ``u0`` only).

    Parameters
    ----------
    us : Field
        Complex scattered field of ``(x, y)``; the total field is ``u0 + us``.
    k : number or Symbol
        Wavenumber.
    m, m0 : expression, number, or coefficient name
        Squared slowness of the medium and of the background that made ``u0``.
    u0 : expression or coefficient name
        Background field (complex); as a coefficient name its values are given
        at call time (a tensor or a callable ``x -> (N,)``) and never differentiated.
    **pml
        ``a0``, ``L``, ``inner`` (:data:`PML_DEFAULTS`).

    Returns
    -------
    sympy.Expr, complex: zero where ``u0 + us`` solves ``H(m) u = -f`` and ``H(m0) u0 = -f``.
    """
    coords = coords_of(us)
    if len(coords) != 2:
        raise ValueError(f"helmholtz_scattered is 2-D; {us} has {len(coords)} coordinates")
    p = _pml(pml)
    ex, ey = (pml_stretch(c, **p) for c in coords)
    mm, mm0, uu0 = (as_expr(v, coords, w) for v, w in ((m, "m"), (m0, "m0"), (u0, "u0")))
    return _operator(us, k, m, p) + k**2 * ex * ey * (mm - mm0) * uu0


def helmholtz_scattered_pml(us: sympy.Expr, k: Any, m: Any = 1, u0: str = "u0", **kwargs: Any) -> sympy.Expr:
    """The PML residual for ``u = u0 + us`` with the operator applied to ``u0`` (differentiates ``u0``).

    Prefer :func:`helmholtz_scattered` (values of ``u0`` only, no source term).

    ``u0`` names a coefficient function (e.g. the analytic homogeneous
    Gaussian-source solution) supplied at call time as a callable
    ``x -> complex (N,)``; its derivatives are taken by autograd through it.
    Other keywords as :func:`helmholtz_pml`.
    """
    u0f = coefficient(u0, coords_of(us))
    pml = _pml({k_: v for k_, v in kwargs.items() if k_ in PML_DEFAULTS})
    # the operator is linear in u: L(u0 + us) + f
    return helmholtz_pml(us, k, m, **kwargs) + _operator(u0f, k, m, pml, field=us)


def _operator(w: sympy.Expr, k: Any, m: Any, pml: dict[str, Any], field: sympy.Expr | None = None) -> sympy.Expr:
    """``d/dx(e_y/e_x dw/dx) + d/dy(e_x/e_y dw/dy) + e_x e_y k^2 m w`` (real coordinates inside; ``pml`` the
    full settings, :func:`_pml`)."""
    coords = coords_of(field if field is not None else w)

    def build(fr):
        xr, yr = fr.args
        wr = w.xreplace(dict(zip(coords, (xr, yr))))
        ex, ey = pml_stretch(xr, **pml), pml_stretch(yr, **pml)
        mm = as_expr(m, (xr, yr), "m") if not isinstance(m, sympy.Basic) else m.xreplace(dict(zip(coords, (xr, yr))))
        return sympy.diff(ey / ex * sympy.diff(wr, xr), xr) + sympy.diff(ex / ey * sympy.diff(wr, yr), yr) + ex * ey * k**2 * mm * wr

    return real_coords(build, field if field is not None else w)
