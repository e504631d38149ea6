"""Declare once, compare always: a trained network against the grid solver generated from the same Problem.

``compare(problem, model, grid=65)`` solves the Problem's equations with
``reference.fdgen`` (finite differences generated from the same SymPy
objects), evaluates the network on the same grid and returns both plus an
error table. It lives in ``solvers/`` because it needs both torch (the model)
and ``reference/`` (the grid), and ``pinnsiren/`` must not import ``reference/``.

Command line (a Python file defining the Problem, and a result file holding the model)::

    pinnsiren compare my_pde.py:problem results/run.h5 --model siren --grid 65
    python -m solvers.compare ...   (the same)
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import sympy
import torch

from reference import fdgen

__all__ = ["Comparison", "compare", "model_on_grid"]


@dataclasses.dataclass
class Comparison:
    """Result of :func:`compare`.

    Attributes
    ----------
    fd : reference.fdgen.FDSolution
        The grid solution (``fd[name]`` a GridField per field, ``fd.stats`` timings).
    model : dict name -> ndarray
        The network on the same grid (complex for a complex field).
    table : dict name -> dict
        ``rel_l2`` and ``max_abs`` of network minus grid; with ``exact``, also
        ``rel_l2_fd_exact``, ``rel_l2_model_exact``, ``max_abs_fd_exact``.
    """

    fd: Any
    model: dict
    table: dict

    def format(self) -> str:
        """The table as aligned text, one row per field."""
        cols = sorted({k for r in self.table.values() for k in r})
        lines = ["field  " + "  ".join(f"{c:>18}" for c in cols)]
        for name, r in self.table.items():
            lines.append(f"{name:<6} " + "  ".join(f"{r.get(c, float('nan')):>18.3e}" for c in cols))
        return "\n".join(lines)


def model_on_grid(problem: Any, model: torch.nn.Module, points: np.ndarray, batch: int = 65536) -> dict:
    """Evaluate ``model`` at ``points`` (M, d) and split its channels into the Problem's fields.

    Returns
    -------
    dict name -> ndarray (M,): real fields one channel, complex fields two (real, imaginary).
    """
    from pinnsiren.evaluation import evaluate

    out = evaluate(model, points, batch).astype(np.float64)
    vals, c = {}, 0
    for f in problem.fields:
        name = f.func.__name__
        if getattr(f.func, "pinn_complex", False):
            vals[name] = out[:, c] + 1j * out[:, c + 1]
            c += 2
        else:
            vals[name] = out[:, c]
            c += 1
    if c != out.shape[1]:
        raise ValueError(f"the model has {out.shape[1]} output channels but the Problem's fields need {c}")
    return vals


def _exact_values(exact: Any, coords: tuple, grid_coords: list[np.ndarray], shape: tuple) -> np.ndarray:
    if isinstance(exact, sympy.Basic):
        exact = sympy.lambdify(coords, exact, "numpy")
    return np.broadcast_to(np.asarray(exact(*grid_coords)), shape)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / nb) if nb > 0 else float(np.linalg.norm(a - b))


def compare(
    problem: Any,
    model: torch.nn.Module,
    grid: Any = 65,
    *,
    exact: Mapping[str, Any] | None = None,
    **fd_options: Any,
) -> Comparison:
    """Solve ``problem`` on a grid and compare ``model`` with it.

    Parameters
    ----------
    problem : pinnsiren.Problem
        The Problem the network was trained on (box regions).
    model : nn.Module
        Maps (N, d) coordinates to the fields' channels.
    grid : int, tuple of int, or reference.fdgen.FDSolution
        Nodes per space axis for the grid solve, or a grid solution already computed.
    exact : mapping field name -> SymPy expression of the coordinates or numpy callable, optional
        A known solution: the table then also holds both solutions' errors against it.
    **fd_options
        Passed to :func:`reference.fdgen.solve` (``order``, ``time``, ``periodic``,
        ``values``, ``times``, ``method``...).

    Returns
    -------
    Comparison
    """
    fd = grid if isinstance(grid, fdgen.FDSolution) else fdgen.solve(problem, grid, **fd_options)
    coords = tuple(problem.coords)
    table, values = {}, {}
    first = next(iter(fd.fields.values()))
    pts = first.grid.points()
    net = model_on_grid(problem, model, pts)
    gc = first.grid.coords()
    for name, gf in fd.fields.items():
        m = net[name].reshape(gf.values.shape)
        values[name] = m
        row = {"rel_l2": _rel(m, gf.values), "max_abs": float(np.abs(m - gf.values).max())}
        if exact and name in exact:
            ue = _exact_values(exact[name], coords, gc, gf.values.shape)
            row.update({"rel_l2_fd_exact": _rel(gf.values, ue), "max_abs_fd_exact": float(np.abs(gf.values - ue).max()),
                        "rel_l2_model_exact": _rel(m, ue)})
        table[name] = row
    return Comparison(fd, values, table)


def _load_object(spec: str) -> Any:
    path, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--problem must be FILE.py:NAME, got {spec!r}")
    module_spec = importlib.util.spec_from_file_location("_user_problem", path)
    if module_spec is None or module_spec.loader is None:
        raise SystemExit(f"cannot load {path!r}")
    mod = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(mod)
    if not hasattr(mod, attr):
        raise SystemExit(f"{path} defines no {attr!r}")
    return getattr(mod, attr)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Flags of ``pinnsiren compare`` (also ``python -m solvers.compare``)."""
    ap.add_argument("problem", help="FILE.py:NAME, a Python file that builds the pinnsiren Problem")
    ap.add_argument("result", help="HDF5 result file holding the trained model (pinnsiren.io.write_result)")
    ap.add_argument("--model", default="model", help="model name inside the result file")
    ap.add_argument("--grid", type=int, nargs="+", default=[65], help="nodes per space axis")
    ap.add_argument("--order", type=int, choices=fdgen.ORDERS, default=2)


def main(a: argparse.Namespace) -> int:
    """Run the comparison for parsed flags ``a``; prints the table (stderr) and JSON (stdout)."""
    from pinnsiren.io import load_model

    problem = _load_object(a.problem)
    model = load_model(a.result, a.model)
    grid = a.grid[0] if len(a.grid) == 1 else tuple(a.grid)
    cmp = compare(problem, model, grid, order=a.order)
    print(cmp.format(), file=sys.stderr)
    print(json.dumps({"problem": a.problem, "result": str(Path(a.result)), "grid": a.grid, "order": a.order,
                      "table": cmp.table, "fd_stats": {k: v for k, v in cmp.fd.stats.items()
                                                        if isinstance(v, (int, float, str, bool))}}, indent=1))
    return 0


def _module_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m solvers.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return main(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_module_main())
