"""Check a trained model against an independent solver of the same Problem, at the end of a run.

``train(problem, model, config, verify="grid")`` solves the declared Problem
on a grid (finite differences generated from the same SymPy objects) at two
resolutions, compares the network with the finer one, and records the table
in ``TrainResult.verification`` (and in the result file when it is passed to
:func:`pinnsiren.io.write_result`). A field raises the failure alarm (kind
``"grid"``) when it differs from the grid by more than :func:`limit`: more
than :data:`TOLERANCE` (relative L2) plus the grid's own estimated error
(``grid_error``, where the verifier gives one), and more than :data:`MARGIN`
times the grid's change between two resolutions. The loss terms can look fine
while the answer is not the PDE's solution (a nearly singular operator, such as
a Helmholtz problem near a resonance, or a field held only through its
gradient, such as a pressure). By the triangle inequality a network that far
from the grid is more than :data:`TOLERANCE` from the PDE's solution whenever
the grid's error is within its estimate.

``pinnsiren/`` does not import the grid solvers (``reference/``). A verifier is
registered by the package that can run it: :func:`register`, or the
entry-point group ``pinnsiren.verifiers`` (setup.cfg names ``grid =
solvers.pde.verify_grid:grid_verifier``). A verifier is ``fn(problem, model) ->
{"table": {field: {"rel_l2": ..., "max_abs": ...}}, "grid_self": {field:
rel. change between two grids}, "grid_error": {field: estimated rel. error of
the finer grid} (optional), ...}``.
"""

from __future__ import annotations

from importlib import metadata
import time
from typing import Any, Callable

__all__ = ["register", "get", "run", "limit", "TOLERANCE", "MARGIN"]

#: relative L2 difference from the grid below which a field is never called wrong
TOLERANCE = 0.05
#: ... and the multiple of the grid's own change between two resolutions it must also exceed
MARGIN = 2.0


def limit(change: float | None, grid_error: float | None = None) -> float:
    """Relative L2 distance from the grid beyond which a field is called wrong.

    ``max(TOLERANCE + grid_error, MARGIN * change)``: ``change`` is the grid's own change between two
    resolutions, ``grid_error`` its estimated error (0 when the verifier gives none).
    """
    return max(TOLERANCE + float(grid_error or 0.0), MARGIN * float(change or 0.0))


_REGISTRY: dict[str, Callable[..., dict]] = {}


def register(name: str, fn: Callable[..., dict]) -> None:
    """Make ``fn(problem, model) -> dict`` available as ``verify=name``."""
    _REGISTRY[name] = fn


def get(name: str) -> Callable[..., dict]:
    """The verifier registered as ``name`` (by :func:`register` or an installed entry point)."""
    if name not in _REGISTRY:
        for ep in metadata.entry_points(group="pinnsiren.verifiers"):
            if ep.name == name:
                _REGISTRY[name] = ep.load()
    if name not in _REGISTRY:
        known = sorted(set(_REGISTRY) | {ep.name for ep in metadata.entry_points(group="pinnsiren.verifiers")})
        raise ValueError(f"unknown verifier {name!r}; known: {known or 'none (is pinnsiren installed?)'}")
    return _REGISTRY[name]


def run(verify: str | Callable[..., dict], problem: Any, model: Any) -> dict[str, Any]:
    """Run a verifier; add the verdict per field. Never raises for a problem the verifier cannot take.

    Returns
    -------
    dict
        The verifier's output plus ``available`` (bool), ``reason`` (why not,
        when unavailable), ``cpu_seconds`` (the check's process time) and ``disagree``: the fields whose difference from
        the grid exceeds :func:`limit`.
    """
    fn = get(verify) if isinstance(verify, str) else verify
    c0 = time.process_time()
    try:
        out = dict(fn(problem, model))
    except Exception as e:  # noqa: BLE001 - a problem the grid solver refuses is reported, not fatal
        return {"available": False, "reason": f"{type(e).__name__}: {e}", "table": {}, "disagree": [],
                "cpu_seconds": time.process_time() - c0}
    out["cpu_seconds"] = time.process_time() - c0
    selfd, errs = out.get("grid_self") or {}, out.get("grid_error") or {}
    bad = []
    for name, row in out.get("table", {}).items():
        row["limit"] = limit(selfd.get(name), errs.get(name))
        if float(row.get("rel_l2", 0.0)) > row["limit"]:
            bad.append(name)
    out.update(available=True, disagree=bad)
    return out
