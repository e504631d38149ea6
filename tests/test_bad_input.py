"""Bad input gets a clear one-line error before any work, and no run is lost.

A table of bad inputs: the CLI (in process, through ``pinnsiren.cli.main``),
the API and the grid solver ``reference.fdgen``. Each CLI case asserts the exit
status (2: usage, 1: failed work), a message naming the culprit, no traceback,
and that the files already in the working folder are byte-identical
afterwards (nothing added, nothing changed).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

from pinnsiren.cli import main as cli_main

x, y, z, t = sympy.symbols("x y z t")

# --- fixtures: the files the cases name (made in the test's own folder) -----------------------------------


def _write_wav(path: Path, data: np.ndarray, rate: int = 8000) -> None:
    from scipy.io import wavfile

    wavfile.write(path, rate, data.astype(np.int16))


def _make_files(root: Path) -> None:
    (root / "afile").write_text("I am a file, not a folder\n")
    (root / "empty.h5").write_bytes(b"")
    (root / "text.h5").write_text("not hdf5\n" * 20)
    import h5py

    with h5py.File(root / "good.h5", "w") as f:
        f["a"] = np.zeros(50_000)
    data = (root / "good.h5").read_bytes()
    (root / "trunc.h5").write_bytes(data[: len(data) // 2])
    (root / "text.mat").write_text("this is not a MATLAB file\n" * 10)
    (root / "empty.mat").write_bytes(b"")
    (root / "notwav.wav").write_text("RIFF? no.\n" * 10)
    (root / "empty.wav").write_bytes(b"")
    rng = np.random.default_rng(0)
    _write_wav(root / "clip.wav", np.concatenate([np.zeros(800), 8000 * rng.standard_normal(8000)]))
    (root / "text.npy").write_text("not numpy\n")
    np.save(root / "nan.npy", np.full((8, 8), np.nan))
    (root / "outdir").mkdir()
    (root / "outdir" / "keep.txt").write_text("results of an earlier run\n")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    _make_files(tmp_path)
    monkeypatch.chdir(tmp_path)  # default output folders (results/...) would land here: the snapshot sees them
    monkeypatch.setenv("PINNSIREN_NO_PROGRESS", "1")
    return tmp_path


# --- the CLI table: (argv, exit status, words the message must contain) -----------------------------------

BIG = ["--steps", "1000000"]  # a training budget a late failure would obviously exceed

CLI_CASES = {
    # --out
    "out is a file (reference)": (["reference", "helmholtz", "--out", "afile"], 2, ["--out", "afile", "existing file"]),
    "out is a file (solve helmholtz)": (["solve", "helmholtz", "--out", "afile", *BIG], 2, ["--out", "afile"]),
    "out is a file (solve wave)": (["solve", "wave", "--out", "afile", *BIG], 2, ["--out", "afile"]),
    "out is a file (fit audio)": (["fit", "audio", "clip.wav", "--out", "afile"], 2, ["--out", "afile"]),
    "out is a file (demo)": (["demo", "--out", "afile"], 2, ["--out", "afile"]),
    "out under a file": (["reference", "poisson", "--out", "afile/sub"], 2, ["--out", "afile/sub"]),
    "out read-only": (["reference", "helmholtz", "--out", "/proc/pinnsiren-out"], 2, ["--out", "not writable"]),
    "out read-only (solve sdf)": (["solve", "sdf", "sphere", "--out", "/proc/pinnsiren-out"], 2, ["--out"]),
    # sizes
    "sdf resolution 1": (["solve", "sdf", "sphere", "--resolution", "1", "--out", "outdir"], 2, ["--resolution"]),
    "reference n huge": (["reference", "helmholtz", "--n", "10000000"], 2, ["--n", "GiB", "available"]),
    "reference n 1": (["reference", "helmholtz", "--n", "1"], 2, ["--n", ">= 3"]),
    "reference poisson n 2": (["reference", "poisson", "--n", "2"], 2, ["--n"]),
    "reference wave n huge": (["reference", "wave", "--n", "5000000"], 2, ["--n", "GiB"]),
    "compare grid huge": (["compare", "good.h5", "--grid", "100000"], 2, ["--grid", "GiB"]),
    "compare grid 1": (["compare", "good.h5", "--grid", "1"], 2, ["--grid"]),
    "fwi n huge": (["fwi", "--n", "1000000"], 2, ["--n", "GiB"]),
    "fwi n 2": (["fwi", "--n", "2"], 2, ["--n"]),
    "helmholtz grid-n 1": (["solve", "helmholtz", "--grid-n", "1"], 2, ["--grid-n"]),
    "image size 1": (["fit", "image", "--size", "1"], 2, ["--size"]),
    "video frames 0": (["fit", "video", "--frames", "0"], 2, ["--frames"]),
    "poisson points 0": (["solve", "poisson", "--points", "0"], 2, ["--points"]),
    "helmholtz hidden 0": (["solve", "helmholtz", "--hidden", "0"], 2, ["--hidden"]),
    "helmholtz steps -1": (["solve", "helmholtz", "--steps", "-1"], 2, ["--steps"]),
    # numbers
    "reference k negative": (["reference", "helmholtz", "--k", "-20"], 2, ["--k", "-20"]),
    "reference k zero": (["reference", "helmholtz", "--k", "0"], 2, ["--k"]),
    "reference k inf": (["reference", "helmholtz", "--k", "inf"], 2, ["--k", "finite"]),
    "reference k nan": (["reference", "helmholtz", "--k", "nan"], 2, ["--k", "finite"]),
    "reference source nan": (["reference", "helmholtz", "--source", "nan,0"], 2, ["--source"]),
    "reference var negative": (["reference", "helmholtz", "--var", "-1e-4"], 2, ["--var"]),
    "reference wave times inf": (["reference", "wave", "--times", "0", "inf"], 2, ["--times"]),
    "reference wave cfl 0": (["reference", "wave", "--cfl", "0"], 2, ["--cfl"]),
    "reference wave c negative": (["reference", "wave", "--c", "-1"], 2, ["--c"]),
    "lr inf": (["solve", "helmholtz", "--lr", "inf"], 2, ["--lr", "finite"]),
    "lr nan (wave)": (["solve", "wave", "--lr", "nan"], 2, ["--lr"]),
    "lr zero": (["solve", "helmholtz", "--lr", "0"], 2, ["--lr"]),
    "lr negative (audio)": (["fit", "audio", "clip.wav", "--lr", "-1"], 2, ["--lr"]),
    "solve k negative": (["solve", "helmholtz", "--k", "-5"], 2, ["--k"]),
    "wave c zero": (["solve", "wave", "--c", "0"], 2, ["--c"]),
    "wave t-max nan": (["solve", "wave", "--t-max", "nan"], 2, ["--t-max"]),
    "audio seconds 0": (["fit", "audio", "clip.wav", "--seconds", "0"], 2, ["--seconds"]),
    "audio seconds negative": (["fit", "audio", "clip.wav", "--seconds", "-1"], 2, ["--seconds"]),
    "audio start negative": (["fit", "audio", "clip.wav", "--start", "-1"], 2, ["--start"]),
    "fwi lr inf": (["fwi", "--lr", "inf"], 2, ["--lr"]),
    "not a number (argparse)": (["reference", "helmholtz", "--k", "abc"], 2, ["--k"]),
    # input files
    "compare empty h5": (["compare", "empty.h5"], 2, ["empty.h5", "empty"]),
    "compare text h5": (["compare", "text.h5"], 2, ["text.h5", "HDF5"]),
    "compare truncated h5": (["compare", "trunc.h5"], 2, ["trunc.h5", "truncated"]),
    "compare missing h5": (["compare", "missing.h5"], 2, ["missing.h5", "no such file"]),
    "compare folder as h5": (["compare", "outdir"], 2, ["outdir", "folder"]),
    "fwi data text": (["fwi", "--data", "text.mat"], 2, ["--data", "text.mat"]),
    "fwi data empty": (["fwi", "--data", "empty.mat"], 2, ["--data", "empty.mat", "empty"]),
    "fwi data missing": (["fwi", "--data", "missing.mat"], 2, ["--data", "missing.mat"]),
    "audio not a wav": (["fit", "audio", "notwav.wav"], 2, ["notwav.wav", "WAV"]),
    "audio empty wav": (["fit", "audio", "empty.wav"], 2, ["empty.wav", "empty"]),
    "audio missing wav": (["fit", "audio", "missing.wav"], 2, ["missing.wav", "no such file"]),
    "velocity file text": (["reference", "helmholtz", "--velocity-file", "text.npy"], 2, ["--velocity-file", "text.npy"]),
    "velocity file nan": (["reference", "helmholtz", "--velocity-file", "nan.npy"], 2, ["--velocity-file", "finite"]),
    "sdf missing mesh": (["solve", "sdf", "missing.ply"], 2, ["SOURCE", "missing.ply"]),
    # resume
    "resume without checkpoint": (["solve", "helmholtz", "--resume", "--out", "outdir", *BIG], 2,
                                  ["--resume", "no checkpoint"]),
    "resume without out folder": (["solve", "helmholtz", "--resume", "--out", "nowhere"], 2, ["--resume"]),
}


def _run_cli(argv, capsys):
    try:
        rc = cli_main(list(argv))
    except SystemExit as e:  # argparse's own usage errors
        rc = e.code
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_bad_input(name, workdir, capsys):
    argv, status, words = CLI_CASES[name]
    before = _snapshot(workdir)
    t0 = time.perf_counter()
    rc, out, err = _run_cli(argv, capsys)
    elapsed = time.perf_counter() - t0
    assert rc == status, (rc, err)
    assert "Traceback" not in err and "Traceback" not in out
    msg = [ln for ln in err.strip().splitlines() if "error" in ln]
    assert msg, err
    for w in words:
        assert w in msg[-1], (w, msg[-1])
    assert _snapshot(workdir) == before  # nothing written, nothing changed
    assert elapsed < 30, elapsed  # refused before work (generous: a loaded 2-core machine)


def test_bad_out_fails_before_training(workdir):
    """A real process with a huge training budget and a bad --out fails in seconds, not after training."""
    env = dict(os.environ, PINNSIREN_NO_PROGRESS="1", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pinnsiren", "solve", "helmholtz", "--steps", "10000000",
                        "--out", "afile"], capture_output=True, text=True, env=env, cwd=workdir, timeout=120)
    elapsed = time.perf_counter() - t0
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("pinnsiren: error: --out afile")
    assert (workdir / "afile").read_text() == "I am a file, not a folder\n"
    # the check runs before the model is built: 10^7 steps could never finish in this time
    assert elapsed < 5 + 10, elapsed  # 5 s plus interpreter start-up on a loaded machine


def test_failed_work_exits_1_one_line(workdir, capsys, monkeypatch):
    """An error inside a command (not caught by the preflight) is one line with status 1, no traceback."""
    import reference.cli as rcli

    def boom(*a, **k):
        raise RuntimeError("factorisation failed\nsecond line")

    monkeypatch.setattr("reference.helmholtz.solve_helmholtz", boom)
    rc, out, err = _run_cli(["reference", "helmholtz", "--n", "8", "--out", "outdir"], capsys)
    assert rc == 1
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("pinnsiren: error:")]
    assert lines == ["pinnsiren: error: RuntimeError: factorisation failed second line"]
    assert rcli is not None


# --- the API table: (callable, exception type, words) ---------------------------------------------------


def _problem2d():
    from pinnsiren import Box, Constraint, Field, Problem

    u = Field("u", (x, y))
    box = [(-1.0, 1.0), (-1.0, 1.0)]
    return Problem([u], (x, y), [Constraint(u.diff(x, 2) + u.diff(y, 2) - 1, where=Box(box), n=16, name="pde"),
                                 Constraint(u, where=Box(box).boundary(), n=16, name="bc")])


def _diff_not_coordinate():
    from pinnsiren import Field, compile_residual

    u = Field("u", (x, y))
    assert u.diff(z) != 0  # SymPy alone would say 0
    compile_residual(u.diff(z) + u, [u], (x, y))


def _box(b):
    from pinnsiren import Box

    return lambda: Box(b)


def _ball(c, r):
    from pinnsiren.geometry import Ball

    return lambda: Ball(c, r)


def _siren_3_on_2d():
    from pinnsiren import Siren

    _problem2d().validate(Siren(3, 1, hidden_features=8, hidden_layers=1))


def _compare_unknown_exact():
    from pinnsiren import Siren
    from solvers.pde.compare import compare

    compare(_problem2d(), Siren(2, 1, hidden_features=8, hidden_layers=1), 9, exact={"v": lambda x, y: x})


def _helmholtz(**kw):
    from reference.helmholtz import solve_helmholtz

    return lambda: solve_helmholtz(**kw)


def _load_wav(name):
    def f():
        from solvers.signals.audio_fit import load_wav

        load_wav(name)
    return f


def _resume_other_hidden():
    from pinnsiren import Siren
    from pinnsiren.io import atomic_torch_save
    from pinnsiren.phases import Adam, Checkpoint
    from pinnsiren.train import CHECKPOINT_NAME, TrainConfig, train

    ck = Path("ck")
    small = Siren(2, 1, hidden_features=8, hidden_layers=1)
    atomic_torch_save(dict(step=5, model=small.state_dict()), ck / CHECKPOINT_NAME)
    big = Siren(2, 1, hidden_features=16, hidden_layers=1)
    train(_problem2d(), big, TrainConfig(phases=[Adam(10_000_000)], checkpoint=Checkpoint(str(ck), resume=True),
                                         progress=False))


def _check_out_dir(path):
    from pinnsiren.validate import check_out_dir

    return lambda: check_out_dir(path)


def _check_memory():
    from pinnsiren.validate import check_memory

    check_memory("--grid 100000 100000 100000", 1e15 * 8, "a grid of 1e15 nodes")


API_CASES = {
    "diff along a non-coordinate": (_diff_not_coordinate, ValueError, ["z", "not a coordinate"]),
    "Box zero width": (_box([(0.0, 0.0), (-1.0, 1.0)]), ValueError, ["Box", "zero width"]),
    "Box reversed": (_box([(1.0, -1.0)]), ValueError, ["lo"]),
    "Box inf bound": (_box([(-1.0, math.inf)]), ValueError, ["Box", "finite"]),
    "Ball negative radius": (_ball((0.0, 0.0), -1.0), ValueError, ["radius", "-1"]),
    "Ball zero radius": (_ball((0.0, 0.0), 0.0), ValueError, ["radius"]),
    "Ball nan centre": (_ball((math.nan, 0.0), 1.0), ValueError, ["center"]),
    "Siren(3) on a 2-D problem": (_siren_3_on_2d, ValueError, ["3 input", "x, y"]),
    "compare exact unknown field": (_compare_unknown_exact, ValueError, ["'v'", "not a field"]),
    "helmholtz k negative": (_helmholtz(n=16, k=-20.0), ValueError, ["k", "-20"]),
    "helmholtz k nan": (_helmholtz(n=16, k=math.nan), ValueError, ["k", "nan"]),
    "helmholtz n 1": (_helmholtz(n=1), ValueError, ["n", ">= 3"]),
    "load_wav not a wav": (_load_wav("notwav.wav"), ValueError, ["notwav.wav", "WAV"]),
    "resume with another hidden": (_resume_other_hidden, ValueError, ["--resume", "different model", "--hidden"]),
    "check_out_dir file": (_check_out_dir("afile"), ValueError, ["afile", "existing file"]),
    "check_memory": (_check_memory, ValueError, ["--grid", "GiB"]),
}


@pytest.mark.parametrize("name", list(API_CASES))
def test_api_bad_input(name, workdir):
    fn, exc, words = API_CASES[name]
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg.strip(), msg
    for w in words:
        assert w in msg, (w, msg)


def test_silent_audio_excerpt_warns(workdir):
    """The clip's first 0.1 s is silence: fitting it would report a tiny MSE of nothing."""
    from solvers.signals.audio_fit import load_wav

    with pytest.warns(UserWarning, match="silent"):
        load_wav("clip.wav", seconds=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_wav("clip.wav", seconds=0.05, start=0.2)  # the noisy part: no warning


# --- fdgen: SpecError naming the term ------------------------------------------------------------------

U = sympy.Function("u")(x, y)
K = sympy.Symbol("k")
A = sympy.Function("a")(x, y)
V = sympy.Function("v")(x, t)
CONDS = [(U, (x, "lo")), (U, (x, "hi")), (U, (y, "lo")), (U, (y, "hi"))]


def _fd(**kw):
    def run():
        from reference import fdgen

        args = dict(equations=sympy.Eq(U.diff(x, 2) + U.diff(y, 2) + K * U, 1), fields=[U], coords=(x, y),
                    bounds=[(-1, 1), (-1, 1)], conditions=CONDS, shape=9, values={"k": 1.0})
        args.update(kw)
        return fdgen.solve_pde(**args)
    return run


def _fd_heat(initial):
    return _fd(equations=[sympy.Eq(V.diff(t), V.diff(x, 2))], fields=[V], coords=(x, t), bounds=[(-1, 1), (0, 1)],
               conditions=[(V, (x, "lo")), (V, (x, "hi")), (V - initial, (t, "lo"))], time=t, values={})


def _nan_field(*xs):
    return np.full(np.broadcast(*xs).shape, np.nan)


FD_CASES = {
    "inf parameter": (_fd(values={"k": math.inf}), ["'k'", "inf"]),
    "nan parameter, amg": (_fd(values={"k": math.nan}, method="amg"), ["'k'", "nan"]),
    "nan parameter, direct": (_fd(values={"k": math.nan}, method="direct"), ["'k'"]),
    "nan coefficient function": (_fd(equations=sympy.Eq(A * U.diff(x, 2) + U.diff(y, 2), 1),
                                     values={"a": _nan_field}), ["a(x, y)", "not finite"]),
    "nan coefficient number": (_fd(equations=sympy.Eq(A * U.diff(x, 2) + U.diff(y, 2), 1),
                                   values={"a": math.nan}), ["'a'"]),
    "nan boundary data": (_fd(conditions=[(U - sympy.Float("nan"), (x, "lo"))] + CONDS[1:]), ["constraint"]),
    "inf boundary data": (_fd(conditions=[(U - sympy.oo, (x, "lo"))] + CONDS[1:]), ["constraint"]),
    "inf in the equation": (_fd(equations=sympy.Eq(U.diff(x, 2) + U.diff(y, 2) + sympy.zoo * U, 1)), ["equation"]),
    "nan initial value": (_fd_heat(sympy.nan), ["initial condition"]),
    "shape 1": (_fd(shape=1), ["shape", ">= 3"]),
    "shape -5": (_fd(shape=-5), ["shape", "-5"]),
    "shape 16.5": (_fd(shape=16.5), ["shape", "whole number", "16.5"]),
    "shape string": (_fd(shape="65"), ["shape", "'65'"]),
    "shape wrong length": (_fd(shape=(9,)), ["shape", "2 space axes"]),
    "shape with a 2": (_fd(shape=(9, 2)), ["shape", "y"]),
    "order 3": (_fd(order=3), ["order"]),
    "method unknown": (_fd(method="lu"), ["method", "'lu'"]),
    "zero-width box": (_fd(bounds=[(0, 0), (-1, 1)]), ["bounds"]),
}


@pytest.mark.parametrize("name", list(FD_CASES))
def test_fdgen_bad_input(name):
    from reference.fdgen import SpecError

    fn, words = FD_CASES[name]
    with pytest.raises(SpecError) as info:
        fn()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_fdgen_good_input_still_solves():
    """The checks pass a valid spec (the table's cases differ from it by the one bad item)."""
    sol = _fd()()
    assert np.all(np.isfinite(sol["u"].values))


# --- confusing, not wrong ----------------------------------------------------------------------------------


def test_result_file_follows_umask(tmp_path):
    from pinnsiren.io import write_result

    old = os.umask(0o022)
    try:
        p = write_result(tmp_path / "r.h5", kind="test", config={})
    finally:
        os.umask(old)
    assert (os.stat(p).st_mode & 0o777) == 0o644


def test_resumed_progress_counts_on(capsys):
    from pinnsiren.progress import LineProgress

    bar = LineProgress(range(61, 101), desc="train", total=100, file=sys.stderr, every_percent=20,
                       initial=60)
    list(bar)
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split()[1] for ln in lines] == ["80/100", "100/100"]


def test_resume_says_so(tmp_path, capsys):
    from pinnsiren import Siren
    from pinnsiren.phases import Adam, Checkpoint
    from pinnsiren.train import TrainConfig, train

    torch.manual_seed(0)
    model = Siren(2, 1, hidden_features=8, hidden_layers=1)
    train(_problem2d(), model, TrainConfig(phases=[Adam(2)], checkpoint=Checkpoint(str(tmp_path), every=2),
                                           progress=False))
    capsys.readouterr()
    cfg = TrainConfig(phases=[Adam(4)], checkpoint=Checkpoint(str(tmp_path), every=2, resume=True), progress=False)
    res = train(_problem2d(), Siren(2, 1, hidden_features=8, hidden_layers=1), cfg)
    assert res.resumed_from == 2
    assert "resuming from step 2 of 4" in capsys.readouterr().err


def test_table_size():
    assert len(CLI_CASES) + len(API_CASES) + len(FD_CASES) >= 60


@pytest.mark.parametrize("argv", [["demo"], ["solve", "helmholtz"], ["solve", "sdf"], ["fwi"]])
def test_help_has_no_sphinx_markup(argv, capsys):
    rc, out, err = _run_cli([*argv, "--help"], capsys)
    assert rc == 0
    assert "--help" in out or "usage" in out
    for role in (":func:", ":class:", ":mod:", ":meth:", ":data:", "``"):
        assert role not in out, (role, argv)
