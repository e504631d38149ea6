"""First-layer frequency bands balanced across coordinates by the PDE's own terms.

A SIREN's first layer draws each coordinate's frequency from the same band
(``|w| <= first_omega_0 / d`` on normalised coordinates). A PDE term of
order ``k`` along coordinate ``j`` multiplies a feature of normalised
frequency ``omega`` by ``|c| (omega / h_j)^k`` (``h_j`` the half-width that
:class:`~pinnsiren.transforms.Normalized` divides by). Where those factors
differ a lot between coordinates, as in any parabolic problem (``u_t``
against ``u_yy``) or a wave with speed ``c != 1``, the residual of the
features along the stiff coordinate swamps the rest, and training first
switches the network off instead of fitting the solution (Heat2d-MS stuck at
its lift). This is the nondimensionalisation that makes the PDE's terms
balance, applied to the network's features instead of to the equation: each
coordinate's band is narrowed until its largest term, at the band's edge,
is no larger than that of the least stiff coordinate. Isotropic operators
(Poisson, Helmholtz, steady Navier-Stokes on a square) keep the default
bands; coordinates whose terms are negligible (a diffusion coefficient 1e-6)
keep theirs and carry what the data put there.

:func:`operator_bands` computes the factors; :func:`recommended_model
<pinnsiren.train.recommended_model>` applies them with ``problem=``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
import torch
from sympy.core.function import AppliedUndef

__all__ = ["operator_bands"]

#: a coordinate whose largest term at the band's edge is below this fraction of the stiffest keeps its band
NEGLIGIBLE = 1e-3


def _pure_orders(d: sympy.Derivative, coords: tuple) -> tuple[int, int] | None:
    """``(coordinate index, order)`` of a derivative along one coordinate only; None for mixed ones."""
    counts = {}
    for v, n in d.variable_count:
        counts[v] = counts.get(v, 0) + int(n)
    if len(counts) != 1:
        return None
    (v, n), = counts.items()
    return (coords.index(v), n) if v in coords else None


def _coefficient_size(c: sympy.Expr, coords: tuple, bounds: np.ndarray, rng: np.random.Generator) -> float | None:
    """RMS of a term's coefficient over the box, fields set to 1 and their derivatives to 0; None if not numeric."""
    reps = {f: 1 for f in c.atoms(AppliedUndef)}
    c = c.subs({d: 0 for d in c.atoms(sympy.Derivative)}).subs(reps)
    if c.free_symbols - set(coords):
        return None
    f = sympy.lambdify(coords, c, "numpy")
    pts = bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * rng.random((256, len(coords)))
    with np.errstate(all="ignore"):
        v = np.broadcast_to(np.asarray(f(*pts.T), dtype=complex), (256,))
    v = v[np.isfinite(v)]
    return float(np.sqrt(np.mean(np.abs(v) ** 2))) if v.size else None


def _terms(residuals: list, coords: tuple, bounds: np.ndarray) -> list[tuple[int, int, float]]:
    """``(coordinate, order, |coefficient|)`` of each pure derivative of a field in the residuals."""
    rng = np.random.default_rng(0)
    out = []
    for r in residuals:
        r = sympy.sympify(r)
        for d in r.atoms(sympy.Derivative):
            if not isinstance(d.expr, AppliedUndef):
                continue
            jk = _pure_orders(d, coords)
            if jk is None:
                continue
            s = sympy.Dummy("d")
            size = _coefficient_size(sympy.diff(r.subs(d, s), s), coords, bounds, rng)
            if size is not None and size > 0:
                out.append((jk[0], jk[1], size))
    return out


def operator_bands(residuals: Any, coords: tuple, bounds: Any, band: float) -> np.ndarray:
    """Per-coordinate factors (each in ``(0, 1]``) for the first layer's frequencies.

    Parameters
    ----------
    residuals : SymPy expression or list of them
        The PDE residuals (interior equations; boundary conditions are not
        part of the operator's balance).
    coords : tuple of SymPy symbols
        The network's input coordinates, in order.
    bounds : sequence of (lo, hi)
        The box the network's coordinates are normalised from.
    band : float
        The first layer's largest normalised frequency (``first_omega_0 / d``
        for :class:`~pinnsiren.networks.Siren`).

    Returns
    -------
    numpy.ndarray
        ``s_j``: coordinate ``j``'s band becomes ``s_j * band``. A coordinate
        with no derivative in the residuals, or whose terms are negligible
        (below ``NEGLIGIBLE`` of the stiffest), keeps ``s_j = 1``; so does
        every coordinate of an isotropic operator.
    """
    residuals = residuals if isinstance(residuals, (list, tuple)) else [residuals]
    coords = tuple(coords)
    b = np.asarray(bounds, dtype=float).reshape(len(coords), 2)
    h = (b[:, 1] - b[:, 0]) / 2
    terms = _terms(list(residuals), coords, b)
    stiff = np.zeros(len(coords))
    for j, k, c in terms:
        stiff[j] = max(stiff[j], c * (band / h[j]) ** k)
    active = stiff > NEGLIGIBLE * stiff.max() if terms else np.zeros(len(coords), bool)
    scale = np.ones(len(coords))
    if active.sum() < 2:
        return scale
    target = stiff[active].min()
    for j in np.flatnonzero(active):
        # the largest s <= 1 with c (s band / h)^k <= target for every term along j
        mine = [(k, c) for jj, k, c in terms if jj == j]
        scale[j] = min([1.0] + [(target / (c * (band / h[j]) ** k)) ** (1.0 / k) for k, c in mine])
    return scale


def interior_residuals(problem: Any) -> list:
    """The residuals of the problem's constraints on its domain (a Shape or SpaceTime), not on boundary pieces."""
    from .geometry import Shape, SpaceTime  # noqa: PLC0415

    return [c.expr for c in problem.constraints.values() if isinstance(c.where, (Shape, SpaceTime))]


def balance_first_layer(siren: Any, problem: Any, bounds: Any) -> np.ndarray:
    """Scale ``siren``'s first-layer weights per coordinate by :func:`operator_bands`; return the factors."""
    layer = siren.layers[0]
    band = siren.first_omega_0 / layer.in_features
    scale = operator_bands(interior_residuals(problem), problem.coords, bounds, band)
    with torch.no_grad():
        layer.weight.mul_(torch.as_tensor(scale, dtype=layer.weight.dtype))
    return scale
