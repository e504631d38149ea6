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

The declared data can need more than the default band: a coordinate along
which the condition data oscillate faster than ``first_omega_0 / d``
(:func:`data_frequencies`, the data's RMS frequency on normalised
coordinates) gets a band that reaches that frequency (Heat2d-MS's
``sin(20 pi x)``: 31.4 against 10).

:func:`operator_bands` computes the operator's factors; :func:`recommended_model
<pinnsiren.train.recommended_model>` applies them with ``problem=``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
import torch
from sympy.core.function import AppliedUndef

__all__ = ["operator_bands", "data_frequencies", "balance_first_layer"]

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


def _rms(f: Any, pts: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        v = np.broadcast_to(np.asarray(f(*pts.T), dtype=complex), (len(pts),))
    v = v[np.isfinite(v)]
    return float(np.sqrt(np.mean(np.abs(v) ** 2))) if v.size else 0.0


def data_frequencies(problem: Any, bounds: Any, n: int = 4096) -> np.ndarray:
    """Per coordinate, the largest RMS frequency of the declared condition data along it, on normalised coordinates.

    For each condition off the domain's interior whose data (the residual with the fields set to 0) is a
    SymPy expression in the coordinates, ``h_j ||d g / d x_j|| / ||g||`` over points of its piece: the
    frequency ``omega`` of ``sin(omega x_j)`` exactly, the energy-weighted RMS frequency of a sum of modes
    (a Sobolev quotient). Coordinates a piece does not span (``t`` on the initial slice) are skipped.
    """
    from .geometry import Shape, SpaceTime  # noqa: PLC0415

    coords = tuple(problem.coords)
    b = np.asarray(bounds, dtype=float).reshape(len(coords), 2)
    h = (b[:, 1] - b[:, 0]) / 2
    out = np.zeros(len(coords))
    gen = torch.Generator().manual_seed(0)
    for c in problem.constraints.values():
        if isinstance(c.where, (Shape, SpaceTime)) or c.pair is not None or isinstance(c.expr, (list, tuple)):
            continue
        expr = sympy.sympify(c.expr)
        expr = expr.lhs - expr.rhs if isinstance(expr, sympy.Eq) else expr
        fields = expr.atoms(AppliedUndef) | expr.atoms(sympy.Derivative)
        g = -expr.subs({f: 0 for f in sorted(fields, key=sympy.count_ops, reverse=True)})
        if not g.free_symbols or g.free_symbols - set(coords):
            continue
        try:
            pts = c.where.sample(n, 0, gen)[0].detach().cpu().double().numpy()
        except Exception:  # noqa: BLE001 - a piece that cannot be sampled here adds nothing
            continue
        size = _rms(sympy.lambdify(coords, g, "numpy"), pts)
        if size <= 0:
            continue
        for j, v in enumerate(coords):
            if v in g.free_symbols and np.ptp(pts[:, j]) > 1e-9 * (b[j, 1] - b[j, 0]):
                slope = _rms(sympy.lambdify(coords, sympy.diff(g, v), "numpy"), pts)
                out[j] = max(out[j], h[j] * slope / size)
    return out


def interior_residuals(problem: Any) -> list:
    """The residuals of the problem's constraints on its domain (a Shape or SpaceTime), not on boundary pieces."""
    from .geometry import Shape, SpaceTime  # noqa: PLC0415

    return [c.expr for c in problem.constraints.values() if isinstance(c.where, (Shape, SpaceTime))]


def balance_first_layer(siren: Any, problem: Any, bounds: Any, data: bool = True) -> np.ndarray:
    """Scale ``siren``'s first-layer weights per coordinate; return the factors.

    Each factor is :func:`operator_bands`'s, or, where the declared data oscillate faster along a coordinate
    than the band reaches (``data``: :func:`data_frequencies` above ``first_omega_0 / d``), the factor that
    puts the band's edge at the data's frequency.
    """
    layer = siren.layers[0]
    band = siren.first_omega_0 / layer.in_features
    scale = operator_bands(interior_residuals(problem), problem.coords, bounds, band)
    if data:
        scale = np.maximum(scale, data_frequencies(problem, bounds) / band)
    with torch.no_grad():
        layer.weight.mul_(torch.as_tensor(scale, dtype=layer.weight.dtype))
    return scale
