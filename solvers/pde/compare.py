"""Declare once, compare always: a trained network against the grid solver generated from the same Problem.

``compare(problem, model, grid=65)`` solves the Problem's equations with
``reference.fdgen`` (finite differences generated from the same SymPy
objects), evaluates the network on the same grid and returns both plus an
error table. It lives in ``solvers/`` because it needs both torch (the model)
and ``reference/`` (the grid), and ``pinnsiren/`` must not import ``reference/``.

Command line::

    pinnsiren compare results/run.h5                      # the Problem stored in the file (write_result(problem=))
    pinnsiren compare my_pde.py:problem results/run.h5    # the Problem built by a script
    python -m solvers.pde.compare ...   (the same)

The result file is opened read-only, before anything else. ``--model``
defaults to the one model the file holds. A script is imported, never run:
its prints go to stderr (stdout carries only the JSON), and a script that
trains or writes result files at import is refused (put that under
``if __name__ == "__main__":``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import sympy
import torch

from reference import fdgen

__all__ = ["Comparison", "compare", "model_on_grid", "CompareError", "TrainingAtImport"]


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
    A field over some of the coordinates is evaluated as the compiler does (the others at 0).
    """
    from pinnsiren.compiler_layout import field_axes, project
    from pinnsiren.evaluation import evaluate

    full = evaluate(model, points, batch).astype(np.float64)
    vals, c = {}, 0
    for f in problem.fields:
        name = f.func.__name__
        axes = field_axes(f, tuple(problem.coords))
        out = full if len(axes) == points.shape[1] else evaluate(
            model, points, batch, fn=lambda m, x, axes=axes: m(project(x, axes))).astype(np.float64)
        if getattr(f.func, "pinn_complex", False):
            vals[name] = out[:, c] + 1j * out[:, c + 1]
            c += 2
        else:
            vals[name] = out[:, c]
            c += 1
    if c != full.shape[1]:
        raise ValueError(f"the model has {full.shape[1]} output channels but the Problem's fields need {c}")
    return vals


def _exact_values(exact: Any, coords: tuple, grid_coords: list[np.ndarray], shape: tuple) -> np.ndarray:
    if isinstance(exact, sympy.Basic):
        exact = sympy.lambdify(coords, exact, "numpy")
    return np.broadcast_to(np.asarray(exact(*grid_coords)), shape)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Relative L2 of ``a - b`` over the nodes where both are defined (a composed region's grid
    solution is NaN outside the region)."""
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / nb) if nb > 0 else float(np.linalg.norm(a - b))


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.abs(a[ok] - b[ok]).max()) if ok.any() else float("nan")


def _check_exact_names(problem: Any, exact: Mapping[str, Any] | None) -> None:
    """Refuse an ``exact=`` entry that names no field of ``problem`` (it would be ignored)."""
    names = [f.func.__name__ for f in getattr(problem, "fields", ())]
    unknown = [k for k in (exact or {}) if str(getattr(k, "__name__", getattr(getattr(k, "func", None), "__name__", k)))
               not in names]
    if names and unknown:
        raise ValueError(f"compare: exact= names {unknown[0]!r}, which is not a field of the problem "
                         f"(fields: {', '.join(names)})")


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
        (For a field held known on the grid, see ``values``: a SymPy expression of its own coordinates.)
    **fd_options
        Passed to :func:`reference.fdgen.solve` (``order``, ``time``, ``periodic``,
        ``values``, ``times``, ``method``, ``skip``...). A field named in ``values`` is held known on
        the grid (an inverse problem's coefficient, a numpy function of its own coordinates); its row
        compares the network with those values on the grid of its own coordinates.

    Returns
    -------
    Comparison
    """
    _check_exact_names(problem, exact)
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
        row = {"rel_l2": _rel(m, gf.values), "max_abs": _max_abs(m, gf.values)}
        if exact and name in exact:
            ue = _exact_values(exact[name], coords, gc, gf.values.shape)
            row.update({"rel_l2_fd_exact": _rel(gf.values, ue), "max_abs_fd_exact": _max_abs(gf.values, ue),
                        "rel_l2_model_exact": _rel(m, ue)})
        table[name] = row
    _known_fields(problem, model, first.grid, fd_options.get("values") or {}, exact, values, table)
    return Comparison(fd, values, table)


def _known_fields(problem: Any, model: torch.nn.Module, grid: Any, given: Mapping[str, Any],
                  exact: Mapping[str, Any] | None, values: dict, table: dict) -> None:
    """Rows for the fields the grid held known (given in ``values``, e.g. an inverse problem's coefficient):
    the network against the given values on the grid of the field's own coordinates."""
    from pinnsiren.compiler_layout import field_axes

    coords = tuple(problem.coords)
    for f in problem.fields:
        name = f.func.__name__
        if name in table or name not in given:
            continue
        axes = field_axes(f, coords)
        lines = [np.linspace(*grid.bounds[k], grid.shape[k]) if k in axes else np.zeros(1) for k in range(len(coords))]
        pts = np.stack([m.ravel() for m in np.meshgrid(*lines, indexing="ij")], 1)
        shape = tuple(grid.shape[k] for k in axes)
        m = model_on_grid(problem, model, pts)[name].reshape(shape)
        sub = [np.meshgrid(*[lines[k] for k in axes], indexing="ij")[j] for j in range(len(axes))]
        ref = _exact_values(given[name], tuple(f.args), sub, shape)
        values[name] = m
        row = {"rel_l2": _rel(m, ref), "max_abs": _max_abs(m, ref)}
        if exact and name in exact:
            row["rel_l2_model_exact"] = _rel(m, _exact_values(exact[name], tuple(f.args), sub, shape))
        table[name] = row


class CompareError(ValueError):
    """Bad input to ``pinnsiren compare`` (one line, naming the problem and the fix)."""


class TrainingAtImport(RuntimeError):
    """Raised by pinnsiren's training and result-writing entry points while ``compare`` imports a script.

    ``entry`` names the entry point that was called.
    """

    def __init__(self, entry: str) -> None:
        self.entry = entry
        super().__init__(f"{entry} was called while pinnsiren compare imported a script")


GUARD = 'if __name__ == "__main__":'


def _blocked(entry: str):
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise TrainingAtImport(entry)

    refuse.__name__ = entry.rsplit(".", 1)[-1]
    return refuse


@contextlib.contextmanager
def _no_training():
    """While active: training and result writing raise :class:`TrainingAtImport`, HDF5 opens read-only only.

    Patches ``pinnsiren.train.train``, ``pinnsiren.io.write_result``,
    ``pinnsiren.io.atomic_torch_save`` (and every already imported module's
    own binding of them) and ``h5py.File`` for modes other than ``"r"``.
    """
    import h5py

    import pinnsiren.io as pio
    import pinnsiren.train as ptrain

    originals = {
        "pinnsiren.train.train": ptrain.train,
        "pinnsiren.io.write_result": pio.write_result,
        "pinnsiren.io.atomic_torch_save": pio.atomic_torch_save,
    }
    blocked = {entry: _blocked(entry) for entry in originals}
    undo: list[tuple[Any, str, Any]] = []
    for mod in list(sys.modules.values()):
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        for name, obj in list(d.items()):
            for entry, orig in originals.items():
                if obj is orig:
                    undo.append((mod, name, obj))
                    setattr(mod, name, blocked[entry])
    file_cls = h5py.File

    class ReadOnlyFile(file_cls):  # type: ignore[misc, valid-type]
        def __init__(self, name: Any, mode: str = "r", *args: Any, **kwargs: Any) -> None:
            if mode not in ("r", None):
                raise TrainingAtImport(f"h5py.File(..., mode={mode!r})")
            super().__init__(name, mode, *args, **kwargs)

    h5py.File = ReadOnlyFile
    try:
        yield
    finally:
        h5py.File = file_cls
        for mod, name, obj in reversed(undo):
            setattr(mod, name, obj)


def _script_line(exc: BaseException, path: Path) -> int | None:
    line = None
    for fs in traceback.extract_tb(exc.__traceback__):
        try:
            if Path(fs.filename).resolve() == path:
                line = fs.lineno
        except OSError:
            pass
    return line


def _load_object(spec: str, result: str | None = None) -> Any:
    """Import ``FILE.py`` of ``FILE.py:NAME`` without letting it train, and return its ``NAME``.

    The import runs with stdout sent to stderr and training/result writing
    refused (:func:`_no_training`); a script that trains at import is refused
    with a one-line message showing the ``__main__`` guard.
    """
    path_s, _, attr = spec.rpartition(":")
    if not attr or not path_s or not attr.isidentifier():
        raise CompareError(f"the problem must be given as FILE.py:NAME, got {spec!r}")
    path = Path(path_s).resolve()
    if not path.is_file():
        raise CompareError(f"no such file {path_s!r} (the problem is given as FILE.py:NAME)")
    module_spec = importlib.util.spec_from_file_location("_user_problem", path)
    if module_spec is None or module_spec.loader is None:
        raise CompareError(f"cannot load {path_s!r} as a Python module")
    mod = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.parent))
    try:
        with contextlib.redirect_stdout(sys.stderr), _no_training():
            module_spec.loader.exec_module(mod)
    except TrainingAtImport as e:
        line = _script_line(e, path)
        where = f"line {line}" if line else "import"
        alt = f" or compare the result file alone: pinnsiren compare {result}" if result else ""
        raise CompareError(
            f"{path_s} trains when imported ({e.entry} called at {where}); compare only imports it to get "
            f"{attr!r}: put the training under `{GUARD}`{alt}") from None
    finally:
        if sys.path and sys.path[0] == str(path.parent):
            sys.path.pop(0)
    if not hasattr(mod, attr):
        raise CompareError(f"{path_s} defines no {attr!r}")
    return getattr(mod, attr)


def _same_spec(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("coords", "fields", "constraints", "coefficients", "parameters")
    return all(a.get(k) == b.get(k) for k in keys)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Flags of ``pinnsiren compare`` (also ``python -m solvers.pde.compare``)."""
    ap.add_argument("problem", nargs="?", default=None,
                    help="FILE.py:NAME, a Python file that builds the pinnsiren Problem (imported, never run as "
                         "a script: training at import is refused). Leave out when RESULT stores the problem spec")
    ap.add_argument("result", help="HDF5 result file holding the trained model (pinnsiren.io.write_result); "
                                   "opened read-only")
    ap.add_argument("--model", default=None,
                    help="model name inside the result file (default: the one model it holds)")
    ap.add_argument("--grid", type=int, nargs="+", default=[65], help="nodes per space axis")
    ap.add_argument("--order", type=int, choices=fdgen.ORDERS, default=2)


def main(a: argparse.Namespace) -> int:
    """Run the comparison for parsed flags ``a``; prints the table (stderr) and JSON (stdout).

    The result file is only read (opened with mode ``"r"``) and is read before
    any script is imported.
    """
    import h5py

    from pinnsiren.io import load_model
    from pinnsiren.specio import IncompleteSpecError, problem_from_spec, problem_spec

    result = Path(a.result)
    if not result.is_file():
        raise CompareError(f"no result file {a.result!r}")
    with h5py.File(result, "r") as f:
        names = sorted(f["models"]) if "models" in f else []
        stored = json.loads(f["spec"].attrs["json"]) if "spec" in f else None
    name = a.model
    if name is None:
        if len(names) != 1:
            raise CompareError(f"{a.result} holds {len(names)} models ({', '.join(names) or 'none'}); "
                               "choose one with --model NAME")
        name = names[0]
    elif name not in names:
        raise CompareError(f"{a.result} holds no model {name!r}; it holds: {', '.join(names) or 'none'}")
    model = load_model(result, name)
    spec_info: dict[str, Any] = {"stored": stored is not None,
                                 "complete": None if stored is None else bool(stored.get("complete")),
                                 "incomplete": [] if stored is None else list(stored.get("incomplete", []))}
    if a.problem is not None:
        problem = _load_object(a.problem, a.result if spec_info["complete"] else None)
        source = a.problem
        if stored is not None:
            spec_info["matches_script"] = _same_spec(problem_spec(problem), stored)
            if not spec_info["matches_script"]:
                print(f"note: the problem in {a.problem} differs from the spec stored in {a.result}", file=sys.stderr)
    else:
        if stored is None:
            raise CompareError(f"{a.result} stores no problem spec (written without write_result(..., problem=)); "
                               f"give the script too: pinnsiren compare FILE.py:NAME {a.result}")
        try:
            problem = problem_from_spec(stored)
        except IncompleteSpecError as e:
            raise CompareError(f"the problem spec stored in {a.result} is incomplete ({'; '.join(e.reasons)}); "
                               f"give the script too: pinnsiren compare FILE.py:NAME {a.result}") from None
        source = f"{a.result}:/spec"
    grid = a.grid[0] if len(a.grid) == 1 else tuple(a.grid)
    cmp = compare(problem, model, grid, order=a.order)
    print(cmp.format(), file=sys.stderr)
    print(json.dumps({"problem": source, "result": str(result), "model": name, "spec": spec_info,
                      "grid": a.grid, "order": a.order,
                      "table": cmp.table, "fd_stats": {k: v for k, v in cmp.fd.stats.items()
                                                        if isinstance(v, (int, float, str, bool))}}, indent=1))
    return 0


def _module_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m solvers.pde.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    try:
        return main(ap.parse_args(argv))
    except CompareError as e:
        print(f"compare: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_module_main())
