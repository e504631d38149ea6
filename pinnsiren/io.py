"""HDF5 result files and atomic checkpoints.

Schema of a result file (documented in docs/results.md)::

    /                 attrs: kind, created (ISO 8601), pinnsiren_version,
                             torch_version, numpy_version, python_version
    /config           attrs: json  (the full run configuration, JSON text)
    /metrics          attrs: one scalar per metric
    /history/<name>   1-D datasets (loss terms, error-vs-step, ...), same length
                      as /history/step where present
    /fields/<name>    datasets (complex allowed), attrs: bounds (JSON), any
                      extra attributes the writer gives (units, description)
    /models/<name>    one dataset per state_dict entry; attrs: config (JSON of
                      the constructor arguments, see networks.model_from_config)
    /spec             (when written with problem=) attrs: json (the Problem as
                      data, pinnsiren.specio.problem_spec), format, complete
                      (bool), incomplete (JSON list of reasons)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
import torch
from torch import nn

from .distributed import is_writer

__all__ = ["write_result", "read_result", "read_spec", "load_problem", "model_names", "default_model_name",
           "load_model",
           "atomic_torch_save", "versions", "fields_on_grids"]


def versions() -> dict[str, str]:
    """Versions of the packages a result depends on."""
    from . import __version__

    return dict(
        pinnsiren_version=__version__,
        torch_version=torch.__version__,
        numpy_version=np.__version__,
        python_version=platform.python_version(),
    )


def _commit() -> str:
    """The project's git commit (with ``-dirty`` when the tree has changes), or ``"unknown"``."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return "unknown"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("-dirty" if dirty else "")) if head else "unknown"


def provenance(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """How a result was made: package versions, threads, world size, the commit, and from ``config``
    (at any depth, the outermost mention first) the device, seed and precision settings it names."""
    from .distributed import world_size

    out: dict[str, Any] = dict(versions())
    out.update(threads=torch.get_num_threads(), interop_threads=torch.get_num_interop_threads(),
               world_size=world_size(), default_dtype=str(torch.get_default_dtype()).replace("torch.", ""),
               commit=_commit(), platform=platform.platform(terse=True))
    levels, i = [config or {}], 0
    while i < len(levels):  # breadth first: the outermost mention of a key wins
        for v in levels[i].values():  # nested settings, and parts in lists (a TrainConfig's phases)
            levels += [v] if isinstance(v, Mapping) else [w for w in v if isinstance(w, Mapping)] \
                if isinstance(v, (list, tuple)) else []
        i += 1
    for key in ("device", "seed", "backward_precision", "dtype", "lbfgs_float64", "float64", "points_per_rank"):
        for level in levels:
            if key not in out and level.get(key) is not None:
                out[key] = level[key]
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


def _to_numpy(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def write_result(
    path: str | os.PathLike,
    *,
    kind: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, float] | None = None,
    history: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    field_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    models: Mapping[str, nn.Module] | None = None,
    problem: Any = None,
    verification: Mapping[str, Any] | None = None,
) -> Path:
    """Write a result file atomically (temporary file, then rename).

    Parameters
    ----------
    path : path
        Destination ``.h5`` file; parent folders are created.
    kind : str
        What produced it, e.g. ``"image-fit"``, ``"helmholtz"``.
    config : mapping
        The full configuration of the run (stored as JSON).
    metrics : mapping of str to float
        Scalar results.
    history : mapping of str to array-like
        1-D series (loss per step, error vs step).
    fields : mapping of str to array-like
        Arrays on grids (complex allowed).
    field_attrs : mapping of str to mapping
        Attributes per field (``bounds``, units, ...), stored as JSON text.
    models : mapping of str to nn.Module
        Models whose weights (and ``config``, when they have one) are stored.
    problem : pinnsiren.Problem, optional
        The Problem the models were trained on: stored as data in ``/spec``
        (:func:`pinnsiren.specio.problem_spec`), so ``pinnsiren compare
        RESULT.h5`` can rebuild it without the script that made it. Parts that
        cannot be stored (callables, point sets) mark the spec incomplete.
    verification : mapping, optional
        ``TrainResult.verification`` (the grid check of ``train(..., verify="grid")``):
        stored as JSON in ``/verification`` (attribute ``json``).

    In a distributed run only rank 0 writes; the other ranks return the path
    without touching the file system.
    """
    path = Path(path)
    if not is_writer():  # distributed: rank 0 alone writes
        return path
    spec = None
    if problem is not None:
        from .specio import problem_spec

        spec = problem_spec(problem)  # before any file is touched: a bad Problem leaves nothing behind
    _write_atomically(path, lambda f: _write_contents(f, kind, config, (metrics, history, fields, field_attrs, models),
                                                      verification, spec))
    return path


def _write_contents(f: h5py.File, kind: str, config: Mapping[str, Any], arrays: tuple, verification: Any,
                    spec: Any) -> None:
    """Every group of a result file, in order: header, arrays, ``/verification``, ``/spec``."""
    _write_header(f, kind, config)
    _write_arrays(f, *arrays)
    if verification is not None:
        f.create_group("verification").attrs["json"] = json.dumps(_jsonable(verification), indent=1)
    if spec is not None:
        _write_spec(f, spec)


def _write_atomically(path: Path, write: Any) -> None:
    """``write(f)`` into a temporary HDF5 file next to ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".h5.tmp", dir=path.parent)
    os.close(fd)
    _follow_umask(tmp)  # mkstemp makes 0600; a result file gets the mode open() would give (0644 typically)
    try:
        with h5py.File(tmp, "w") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_header(f: h5py.File, kind: str, config: Mapping[str, Any]) -> None:
    """The root attributes (kind, creation time, provenance) and ``/config``."""
    f.attrs["kind"] = kind
    f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
    for k, v in provenance(config).items():
        f.attrs[k] = v if isinstance(v, (int, float, bool)) else str(v)
    f.create_group("config").attrs["json"] = json.dumps(_jsonable(config), indent=1)


def _write_spec(f: h5py.File, spec: Mapping[str, Any]) -> None:
    """``/spec``: the Problem as data (:func:`pinnsiren.specio.problem_spec`)."""
    sg = f.create_group("spec")
    sg.attrs["json"] = json.dumps(spec)
    sg.attrs["format"] = spec["format"]
    sg.attrs["complete"] = bool(spec["complete"])
    sg.attrs["incomplete"] = json.dumps(spec["incomplete"])


def _write_arrays(f: h5py.File, metrics: Mapping | None, history: Mapping | None, fields: Mapping | None,
                  field_attrs: Mapping | None, models: Mapping | None) -> None:
    """The ``/metrics``, ``/history``, ``/fields`` and ``/models`` groups of a result file."""
    g = f.create_group("metrics")
    for k, v in (metrics or {}).items():
        g.attrs[k] = float(v)
    g = f.create_group("history")
    for k, v in (history or {}).items():
        g.create_dataset(k, data=_to_numpy(v))
    g = f.create_group("fields")
    for k, v in (fields or {}).items():
        ds = g.create_dataset(k, data=_to_numpy(v), compression="gzip")
        for ak, av in ((field_attrs or {}).get(k) or {}).items():
            ds.attrs[ak] = json.dumps(_jsonable(av))
    g = f.create_group("models")
    for name, model in (models or {}).items():
        mg = g.create_group(name)
        mg.attrs["config"] = json.dumps(_jsonable(getattr(model, "config", {})))
        for pname, t in model.state_dict().items():
            mg.create_dataset(pname, data=t.detach().cpu().numpy())


def fields_on_grids(
    problem: Any,
    model: nn.Module,
    bounds: Any,
    shape: Any,
    chunk: int = 65536,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Every field of a Problem on its own node grid, ready for :func:`write_result`.

    A field over all coordinates is sampled on the full grid; a field over
    some of them (``Field("a", (x, y))`` in an ``(x, y, t)`` problem) on the
    grid of its own coordinates only, evaluated as the compiler evaluates it
    (the model at the left-out coordinates set to
    :data:`pinnsiren.compiler_layout.LEFT_OUT_VALUE`).

    Parameters
    ----------
    problem : object with ``fields`` and ``coords`` (a :class:`pinnsiren.Problem`)
    model : nn.Module
        Maps ``(N, d)`` points to the fields' channels (real: 1, complex: 2).
    bounds : sequence of (lo, hi)
        One pair per coordinate.
    shape : int or sequence of int
        Nodes per coordinate, both ends included.
    chunk : int
        Rows per model evaluation.

    Returns
    -------
    (fields, field_attrs)
        ``fields[name]``: array of shape ``(n_k for k in the field's coordinates)``
        (``indexing="ij"``), complex for a complex field; ``field_attrs[name]``:
        ``bounds`` and ``coords`` (names) of that grid.
    """
    from .compiler_layout import field_axes, project
    from .evaluation import evaluate
    from .symbolic import is_complex_field

    coords = tuple(problem.coords)
    d = len(coords)
    b = [(float(lo), float(hi)) for lo, hi in bounds]
    n = [int(shape)] * d if np.ndim(shape) == 0 else [int(v) for v in shape]
    if len(b) != d or len(n) != d:
        raise ValueError(f"bounds and shape need one entry per coordinate {coords}; got {len(b)} and {len(n)}")
    fields: dict[str, np.ndarray] = {}
    attrs: dict[str, dict[str, Any]] = {}
    ch = 0
    for f in problem.fields:
        name, cplx = f.func.__name__, is_complex_field(f)
        axes = field_axes(f, coords)
        lines = [np.linspace(*b[k], n[k]) if k in axes else np.zeros(1) for k in range(d)]
        pts = np.stack([m.ravel() for m in np.meshgrid(*lines, indexing="ij")], 1)
        cs = [ch, ch + 1] if cplx else [ch]
        out = evaluate(model, pts, chunk, fn=lambda m, x, axes=axes, cs=cs: m(project(x, axes))[:, cs])
        out = np.asarray(out, dtype=np.float64)
        vals = out[:, 0] + 1j * out[:, 1] if cplx else out[:, 0]
        fields[name] = vals.reshape([n[k] for k in axes])
        attrs[name] = {"bounds": [b[k] for k in axes], "coords": [coords[k].name for k in axes]}
        ch += len(cs)
    return fields, attrs


def read_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read a result file into plain Python/numpy objects.

    Returns a dict with keys ``attrs``, ``config``, ``metrics``, ``history``,
    ``fields`` (name -> array), ``field_attrs``, ``models`` (name ->
    ``{"config": dict, "state": {param: array}}``) and ``spec`` (the stored
    Problem as data, see :mod:`pinnsiren.specio`; None when the file has none) and
    ``verification`` (the grid check of the run, or None).
    The file is opened read-only.
    """
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        out["config"] = json.loads(f["config"].attrs["json"])
        out["metrics"] = {k: float(v) for k, v in f["metrics"].attrs.items()}
        out["history"] = {k: v[()] for k, v in _datasets(f["history"]).items()}
        fields = _datasets(f["fields"])
        out["fields"] = {k: v[()] for k, v in fields.items()}
        out["field_attrs"] = {
            k: {ak: json.loads(av) for ak, av in v.attrs.items()} for k, v in fields.items()
        }
        models = {}
        for name, g in f["models"].items():
            state = {k: v[()] for k, v in _datasets(g).items()}
            models[name] = {"config": json.loads(g.attrs["config"]), "state": state}
        out["models"] = models
        out["spec"] = _spec(f)
        out["verification"] = json.loads(f["verification"].attrs["json"]) if "verification" in f else None
    return out


def _spec(f: h5py.File) -> dict | None:
    if "spec" not in f:
        return None
    return json.loads(f["spec"].attrs["json"])


def read_spec(path: str | os.PathLike) -> dict | None:
    """The Problem spec stored in a result file (None when it has none); opens the file read-only."""
    with h5py.File(path, "r") as f:
        return _spec(f)


def load_problem(path: str | os.PathLike) -> Any:
    """Rebuild the Problem stored in a result file (:func:`pinnsiren.specio.problem_from_spec`).

    Raises ``LookupError`` when the file stores no spec and
    :class:`pinnsiren.specio.IncompleteSpecError` when the spec is incomplete.
    """
    from .specio import problem_from_spec

    spec = read_spec(path)
    if spec is None:
        raise LookupError(f"{path} stores no problem spec (written without write_result(..., problem=...))")
    return problem_from_spec(spec)


def model_names(path: str | os.PathLike) -> list[str]:
    """Names of the models stored in a result file, sorted; opens the file read-only."""
    with h5py.File(path, "r") as f:
        return sorted(f["models"]) if "models" in f else []


def _datasets(group: h5py.Group) -> dict[str, h5py.Dataset]:
    """All datasets below ``group``, keyed by their path relative to it."""
    found: dict[str, h5py.Dataset] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found[name] = obj

    group.visititems(visit)
    return found


def default_model_name(path: str | os.PathLike) -> str:
    """The name of the one model a result file holds.

    Raises ``LookupError`` naming the stored models when there are none or several.
    """
    names = model_names(path)
    if len(names) == 1:
        return names[0]
    if not names:
        raise LookupError(f"{path} holds no model")
    raise LookupError(f"{path} holds {len(names)} models: {', '.join(names)}; choose one (--model NAME)")


def load_model(path: str | os.PathLike, name: str | None = "model") -> nn.Module:
    """Rebuild a trained model stored in a result file (opened read-only).

    ``name=None``: the one model the file holds (:func:`default_model_name`).
    """
    if name is None:
        name = default_model_name(path)
    res = read_result(path)
    if name not in res["models"]:
        raise KeyError(f"no model {name!r} in {path}; stored: {sorted(res['models'])}")
    entry = res["models"][name]
    model = _model_from_config(entry["config"])
    state = {k: torch.from_numpy(np.asarray(v)) for k, v in entry["state"].items()}
    floats = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(floats) == 1:  # a float64 run comes back in float64 (load_state_dict would round to float32)
        model.to(floats.pop())
    model.load_state_dict(state)
    return model


def _model_from_config(config: dict[str, Any]) -> nn.Module:
    """A network (:func:`pinnsiren.networks.model_from_config`), or a coordinate/exact-condition wrapper
    around one (:class:`~pinnsiren.transforms.Normalized`, :class:`~pinnsiren.transforms.ExactDirichlet`)."""
    from . import transforms
    from .networks import model_from_config

    cls = config.get("cls")
    if cls in ("Normalized", "ExactDirichlet"):
        return getattr(transforms, cls).from_config(config, _model_from_config)
    return model_from_config(config)


def _follow_umask(path: str) -> None:
    """Give ``path`` the permissions a plain ``open(path, "w")`` would (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename (rank 0 only when distributed)."""
    if not is_writer():  # distributed: rank 0 alone writes
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".pt.tmp", dir=path.parent)
    os.close(fd)
    _follow_umask(tmp)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
