"""Checks of user input that run before any expensive work (one layer per entry point).

The CLI calls :func:`preflight` on the parsed arguments before a command
starts: every number finite and in range, the output folder writable and not
an existing file, input files readable and of the right format, sizes that fit
in memory (refused with the estimate), ``--resume`` with a checkpoint to
resume from. Each failure raises :class:`UsageError` (a ``ValueError``) with a
one-line message naming the argument or file and what was expected; the CLI
turns it into exit status 2. The helpers are public so that APIs can use the
same checks. No torch import here.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

__all__ = ["UsageError", "check_finite", "check_positive", "check_out_dir", "check_input_file",
           "check_memory", "available_memory", "preflight", "flag"]


class UsageError(ValueError):
    """Bad input found before any work started (the CLI exits with status 2)."""


def flag(name: str) -> str:
    """The command-line spelling of argument ``name`` (``grid_n`` -> ``--grid-n``)."""
    return "--" + name.replace("_", "-")


def check_finite(name: str, value: Any) -> None:
    """Raise :class:`UsageError` unless ``value`` (a number or sequence of numbers) is finite."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(v):
            raise UsageError(f"{name} {v}: expected a finite number")


def check_positive(name: str, value: Any, minimum: float = 0.0, strict: bool = True) -> None:
    """Raise :class:`UsageError` unless ``value > minimum`` (``>=`` when ``strict`` is false)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        check_finite(name, v)
        if (v <= minimum) if strict else (v < minimum):
            want = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise UsageError(f"{name} {v}: expected a number {want}")


def check_out_dir(path: Any, name: str = "--out") -> Path:
    """The output folder ``path``, checked writable before any work (nothing is created).

    Refused: an existing file (a folder is expected), a folder (or the
    nearest existing parent, when ``path`` is still to be made) that is not
    writable, a parent that is a file.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{name} {path}: is an existing file; expected a folder (existing or to be created)")
    q = p.absolute()
    while not q.exists():
        q = q.parent
    if not q.is_dir():
        raise UsageError(f"{name} {path}: {q} is a file, so the folder cannot be created there")
    try:  # a real probe: os.access says yes to root on a read-only file system's folders it cannot write
        fd, tmp = tempfile.mkstemp(prefix=".pinnsiren-probe-", dir=q)
    except OSError as e:
        raise UsageError(f"{name} {path}: folder {q} is not writable ({e.strerror})") from None
    os.close(fd)
    os.unlink(tmp)
    return p


_MAGIC = {
    "hdf5": (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    "wav": (b"RIFF", "a WAV file (RIFF/WAVE)"),
}


def check_input_file(path: Any, name: str, kind: str | None = None) -> Path:
    """Check input file ``path`` (argument ``name``) exists, is readable, non-empty and of format ``kind``.

    ``kind``: ``"hdf5"`` (opened and closed with h5py), ``"wav"`` (RIFF/WAVE
    header), ``"mat"`` (a MATLAB file scipy or h5py can read), ``"npy"``
    (a finite numeric array) or ``None`` (existence only).
    """
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{name} {path}: no such file")
    if p.is_dir():
        raise UsageError(f"{name} {path}: is a folder; expected a file")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise UsageError(f"{name} {path}: cannot be read ({e.strerror})") from None
    if not head:
        raise UsageError(f"{name} {path}: is empty")
    if kind == "hdf5":
        import h5py

        if not head.startswith(_MAGIC["hdf5"][0]):
            raise UsageError(f"{name} {path}: not an HDF5 file (expected a pinnsiren result .h5)")
        try:
            with h5py.File(p, "r") as f:
                f.visit(lambda _name: None)  # walks the whole index: a truncated file fails here
        except Exception as e:  # h5py raises OSError, KeyError, RuntimeError on damaged files
            raise UsageError(f"{name} {path}: damaged or truncated HDF5 file ({_one_line(e)})") from None
    elif kind == "wav":
        if not (head.startswith(b"RIFF") and head[8:12] == b"WAVE"):
            raise UsageError(f"{name} {path}: not a WAV file (expected a RIFF/WAVE header)")
    elif kind == "mat":
        if head.startswith(_MAGIC["hdf5"][0]) or _is_mat73(p):
            return p
        import scipy.io

        try:
            contents = scipy.io.whosmat(str(p))
        except Exception as e:
            raise UsageError(f"{name} {path}: not a MATLAB .mat file ({_one_line(e)})") from None
        if not contents:
            raise UsageError(f"{name} {path}: a .mat file with no variables")
    elif kind == "npy":
        import numpy as np

        try:
            a = np.load(p, allow_pickle=False)
        except Exception as e:
            raise UsageError(f"{name} {path}: not a .npy array ({_one_line(e)})") from None
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
            raise UsageError(f"{name} {path}: expected a finite numeric array")
    return p


def _is_mat73(p: Path) -> bool:
    with open(p, "rb") as f:
        f.seek(512)
        return f.read(8) == _MAGIC["hdf5"][0]


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo, else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_memory(name: str, nbytes: float, what: str = "") -> None:
    """Refuse (``UsageError``, with the estimate) work that needs more than the available memory."""
    avail = available_memory()
    if nbytes > avail:
        raise UsageError(f"{name}: {what + ' ' if what else ''}needs about {_gib(nbytes)} of memory but "
                         f"{_gib(avail)} is available; choose a smaller size")


# --- the CLI's preflight, by argument name ------------------------------------------------------------

#: arguments that must be > the value (floats and ints)
_POSITIVE = {"lr": 0, "k": 0, "c": 0, "var": 0, "source_var": 0, "seconds": 0, "cfl": 0, "t_max": 0,
             "fwi_lr": 0, "reparam_lr": 0, "amplitude": None}
#: arguments that must be >= the value
_AT_LEAST = {"resolution": 2, "n": 3, "n_data": 3, "grid": 2, "grid_n": 2, "size": 2, "hidden": 1,
             "steps": 0, "lbfgs_steps": 0, "points": 1, "batch": 1, "frames": 1, "start": 0, "eval_points": 1,
             "surface_points": 1, "u0_grid": 2, "reparam_hidden": 1, "siren_hidden": 1, "threads": 1,
             "log_every": 1, "checkpoint_every": 0, "eval_every": 0}
#: float arguments where inf means something (left unchecked for finiteness)
_INF_OK = {"snr", "grad_clip"}
#: grid sizes by argument: (space dimensions a single size applies to, bytes per node: a low estimate of the peak)
_GRIDS = {"n": (2, 400.0), "n_data": (2, 400.0), "grid": (3, 64.0), "grid_n": (2, 64.0), "resolution": (3, 24.0)}
#: input files by argument name -> format (by the file's suffix where the argument takes several)
_INPUTS = {"result": "hdf5", "data": "mat", "velocity_file": "npy"}
_BY_SUFFIX = {".wav": "wav", ".h5": "hdf5", ".mat": "mat", ".npy": "npy"}


def preflight(args: argparse.Namespace) -> None:
    """Check the parsed arguments of a ``pinnsiren`` command before it runs; raise :class:`UsageError`."""
    values = {k: v for k, v in vars(args).items() if k not in ("func", "command", "subcommand")}
    for k, v in values.items():
        if k not in _INF_OK:
            check_finite(flag(k), v)
    for k, v in values.items():
        if k in _POSITIVE and _POSITIVE[k] is not None:
            check_positive(flag(k), v, _POSITIVE[k])
        if k in _AT_LEAST and isinstance(v, (int, float, list, tuple)) and not isinstance(v, bool):
            check_positive(flag(k), v, _AT_LEAST[k], strict=False)
    for k, kind in _INPUTS.items():
        if values.get(k):
            check_input_file(values[k], flag(k) if k != "result" else "RESULT", kind)
    for k in ("path", "source"):  # positional inputs (fit audio/image/poisson PATH, sdf/video SOURCE)
        v = values.get(k)
        if isinstance(v, str) and Path(v).suffix:  # a file (the others are built-in names)
            check_input_file(v, k.upper(), _BY_SUFFIX.get(Path(v).suffix.lower()))
    for k, (dims, per_node) in _GRIDS.items():
        v = values.get(k)
        if v is None or isinstance(v, bool):
            continue
        sizes = [int(s) for s in v] if isinstance(v, (list, tuple)) else [int(v)]
        if len(sizes) == 1:
            sizes = sizes * dims  # one size applies to every space axis
        nodes = math.prod(sizes)
        shown = " ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
        check_memory(f"{flag(k)} {shown}", nodes * per_node, f"a grid of {nodes:.3g} nodes")
    if values.get("out") is not None:
        check_out_dir(values["out"], "--out")
    if values.get("resume"):
        _check_resume(values.get("out"))


def _check_resume(out: Any) -> None:
    from_dir = Path(out) if out is not None else None
    from .train import CHECKPOINT_NAME as name

    if from_dir is None or not any(from_dir.glob(f"**/{name}")):
        raise UsageError(f"--resume: no checkpoint ({name}) under --out {out}; run without --resume to start "
                         "fresh, or give the --out of the run to continue")
