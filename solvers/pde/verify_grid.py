"""The grid check as a verifier of a finished run: ``train(..., verify="grid")`` (see pinnsiren.verify).

The declared Problem is solved by ``reference.fdgen`` on three nested grids
(``grid`` nodes per space axis, ``(grid + 1) // 2`` and the next halving); the
network is compared with the finest solution (:func:`solvers.pde.compare.compare`)
and the grid's own change between the two finer resolutions is reported per
field (``grid_self``, relative L2 on the coarse nodes), so a disagreement can be
told apart from a grid that is too coarse to judge.

The third grid gives each field's observed order of convergence ``q`` from the
ratio of the two changes, and with it the finest grid's estimated error
(``grid_error``): Roache's grid convergence index, ``F_s * change / (2^q - 1)``
with the safety factor 1.25 of a three-grid study (Roache 1994, "Perspective: a
method for uniform reporting of grid refinement studies", J. Fluids Eng. 116),
``q`` kept within [0.5, the scheme's order]. A field the grid resolves at a
lower order than the scheme's, such as the lid-driven cavity's pressure near
the lid's corners (observed order 1.2 at 129 / 65 / 33 nodes, against 1.8-2.0
for the velocities), gets the larger error estimate it needs; without a third
grid (fewer than :data:`MIN_COARSEST` nodes) the two-grid factor 3 and the
scheme's order are used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from reference import fdgen

from .compare import compare

__all__ = ["grid_verifier", "default_grid", "grid_error", "MAX_UNKNOWNS", "MAX_UNKNOWNS_MARCHED", "MIN_COARSEST"]

#: fewest nodes per axis of the third, coarsest grid of the order estimate
MIN_COARSEST = 9
#: Roache's safety factors: three grids (observed order), two grids (assumed order)
SAFETY_THREE, SAFETY_TWO = 1.25, 3.0
#: the lowest observed order an estimate uses (a smaller ratio of changes is not yet convergence)
MIN_ORDER = 0.5


def _nested_change(fine: Any, coarse: Any) -> float | None:
    """Relative L2 change of a field between nested grids, on the coarse nodes (None if they do not nest)."""
    fs, cs = fine.values.shape, coarse.values.shape
    if len(fs) != len(cs):
        return None
    index = []
    for n, m in zip(fs, cs):
        if n == m:
            index.append(slice(None))
        elif n == 2 * m - 1:
            index.append(slice(None, None, 2))
        else:
            return None
    a, b = fine.values[tuple(index)], coarse.values
    ok = np.isfinite(a) & np.isfinite(b)
    den = float(np.sqrt(np.mean(np.abs(a[ok]) ** 2)))
    return float(np.sqrt(np.mean(np.abs(a[ok] - b[ok]) ** 2))) / den if den > 0 else None


def grid_error(change: float | None, coarser_change: float | None, order: int) -> tuple[float | None, float | None]:
    """The finer grid's estimated relative error and the observed order, from the changes between three grids.

    ``change`` is between the finest and the middle grid, ``coarser_change`` between the middle and the coarsest
    (None: two grids only, the scheme's ``order`` assumed). Returns ``(estimate, observed order or None)``.
    """
    if change is None:
        return None, None
    if coarser_change is None or change <= 0 or coarser_change <= 0:
        return SAFETY_TWO * change / (2.0**order - 1), None
    q = float(np.log2(coarser_change / change))
    qc = min(max(q, MIN_ORDER), float(order))
    return SAFETY_THREE * change / (2.0**qc - 1), q


#: the most unknowns (fields x nodes) of the finer grid that :func:`default_grid` allows itself: steady,
#: and per time level of a marched problem
MAX_UNKNOWNS = 2**16
MAX_UNKNOWNS_MARCHED = 2**13


def default_grid(problem: Any) -> int:
    """Nodes per space axis of the finer grid: the finest of 257, 129 and 65 whose unknowns (fields x nodes)
    stay within :data:`MAX_UNKNOWNS` (steady) or :data:`MAX_UNKNOWNS_MARCHED` (per level of a marched
    problem); 65 for a composed region or a problem the grid cannot take (the solve reports it).

    The finer the pair, the smaller the grid's own change and so the limit of the verdict: at 65 / 33 nodes
    the lid-driven cavity's own change (v 0.033) lets a network 6 % off in v pass; at 129 / 65 it is 0.008.
    So: a 2-D flow of three fields gets 129, a 2-D scalar problem 129, a 1-D problem in time 257, a 2-D one 65.
    """
    try:
        spec = fdgen.from_problem(problem)
    except Exception:  # noqa: BLE001 - the solve reports it
        return 65
    if getattr(spec, "region", None) is not None:
        return 65
    cap = MAX_UNKNOWNS if spec.time is None else MAX_UNKNOWNS_MARCHED
    return next((n for n in (257, 129) if len(spec.fields) * n ** len(spec.space_axes) <= cap), 65)


def grid_verifier(problem: Any, model: torch.nn.Module, grid: int | None = None, order: int = 2,
                  **fd_options: Any) -> dict[str, Any]:
    """Compare ``model`` with the grid solution of ``problem``; report the grid's own change too.

    Parameters
    ----------
    problem : pinnsiren.Problem
        The problem as declared (value conditions included: for a model made
        by :func:`pinnsiren.impose_exactly`, pass ``model.declared``).
    model : nn.Module
    grid : int or None
        Nodes per space axis of the finer grid (odd, so the coarser one nests in it; None: :func:`default_grid`).
    order : {2, 4}
    **fd_options
        Passed to :func:`reference.fdgen.solve`.

    Returns
    -------
    dict: ``table`` (per field ``rel_l2``, ``max_abs`` of network minus grid), ``grid_self``
    (per field), ``grid_error`` and ``grid_order`` (per field: :func:`grid_error`), ``grid``, ``coarse`` and
    ``coarsest`` (nodes per axis; None without a third grid), ``fd_stats``.
    """
    grid = int(grid if grid is not None else default_grid(problem)) | 1
    coarse = (grid + 1) // 2
    coarsest = (coarse + 1) // 2
    fine_sol = fdgen.solve(problem, grid, order=order, **fd_options)
    coarse_sol = fdgen.solve(problem, coarse, order=order, **fd_options)
    third = None
    if coarsest >= MIN_COARSEST:
        try:
            third = fdgen.solve(problem, coarsest, order=order, **fd_options)
        except (ValueError, RuntimeError, np.linalg.LinAlgError):  # a grid too coarse to solve: two grids then
            third = None
    cmp = compare(problem, model, fine_sol)
    selfd = {name: _nested_change(fine_sol[name], coarse_sol[name]) for name in fine_sol.fields}
    errs, orders = {}, {}
    for name in fine_sol.fields:
        before = _nested_change(coarse_sol[name], third[name]) if third is not None else None
        errs[name], orders[name] = grid_error(selfd[name], before, order)
    stats = {k: v for k, v in fine_sol.stats.items() if isinstance(v, (int, float, str, bool))}
    return {"table": cmp.table, "grid_self": selfd, "grid_error": errs, "grid_order": orders, "grid": grid,
            "coarse": coarse, "coarsest": coarsest if third is not None else None, "order": order,
            "fd_stats": stats}
