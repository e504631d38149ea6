"""pinnsiren compare: never modifies its inputs, never trains a script at import, prints clean JSON,
works from the spec stored in the result file, and picks the one stored model by default."""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

import pinnsiren as pinn
import pinnsiren.io as pio
import pinnsiren.train as ptrain
from pinnsiren.io import write_result
from solvers.pde.compare import CompareError, compare, main

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
RESULT = Path("results/tutorial/diffusion.h5")


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tutorial_blocks():
    return re.findall(r"^```python\n(.*?)^```", TUTORIAL.read_text(), flags=re.S | re.M)


def tiny_siren(seed=0):
    torch.manual_seed(seed)
    return pinn.Siren(in_features=2, out_features=1, hidden_features=16, hidden_layers=1, first_omega_0=3.0)


@pytest.fixture
def tutorial_dir(tmp_path, monkeypatch):
    """tmp_path with the tutorial's script as diffusion.py, a guarded copy, and a result file from a tiny model."""
    blocks = tutorial_blocks()
    first_training = next(i for i, b in enumerate(blocks) if "train(" in b)
    (tmp_path / "diffusion.py").write_text("\n".join(blocks))
    head, tail = "\n".join(blocks[:first_training]), "\n".join(blocks[first_training:])
    (tmp_path / "guarded.py").write_text(head + '\n\nif __name__ == "__main__":\n' + textwrap.indent(tail, "    "))
    monkeypatch.setenv("PINNSIREN_TUTORIAL_QUICK", "1")
    ns: dict = {"__name__": "__built__"}
    threads = torch.get_num_threads()
    try:
        exec(compile(head, "tutorial[head]", "exec"), ns)  # declarations and the Problem only
    finally:
        torch.set_num_threads(threads)
    model = tiny_siren()
    write_result(tmp_path / RESULT, kind="tutorial-diffusion", config={}, models={"siren": model},
                 problem=ns["problem"])
    return tmp_path, ns["problem"], model


def run_cli(cwd, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "PINNSIREN_TUTORIAL_QUICK": "1"}
    return subprocess.run([sys.executable, "-m", "pinnsiren", "compare", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)


def test_compare_on_the_tutorials_own_script_refuses_and_leaves_the_file_byte_identical(tutorial_dir):
    tmp, _, _ = tutorial_dir
    before = sha256(tmp / RESULT)
    files_before = sorted(p.name for p in (tmp / RESULT.parent).iterdir())
    out = run_cli(tmp, "diffusion.py:problem", str(RESULT), "--grid", "17")
    assert out.returncode == 1, out.stderr
    assert out.stdout == ""  # the script's prints went to stderr; no JSON for a refusal
    assert "Derivative(u(x, y), x)" in out.stderr  # its print(pde.lhs) ran, on stderr
    last = out.stderr.strip().splitlines()[-1]
    assert "trains when imported (pinnsiren.train.train called at line" in last, last
    assert 'if __name__ == "__main__":' in last and f"pinnsiren compare {RESULT}" in last
    assert sha256(tmp / RESULT) == before
    assert sorted(p.name for p in (tmp / RESULT.parent).iterdir()) == files_before


def test_compare_on_the_guarded_script_prints_clean_json_and_keeps_the_file(tutorial_dir):
    tmp, problem, model = tutorial_dir
    before = sha256(tmp / RESULT)
    out = run_cli(tmp, "guarded.py:problem", str(RESULT), "--grid", "17")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # nothing but the JSON on stdout
    assert "Derivative(u(x, y), x)" in out.stderr  # the script's own print went to stderr
    assert sha256(tmp / RESULT) == before
    assert data["model"] == "siren"  # the one model in the file, without --model
    assert data["problem"] == "guarded.py:problem"
    assert data["spec"] == {"stored": True, "complete": True, "incomplete": [], "matches_script": True}
    expect = compare(problem, model, 17).table["u"]
    assert data["table"]["u"]["rel_l2"] == pytest.approx(expect["rel_l2"], rel=1e-9)
    assert data["table"]["u"]["max_abs"] == pytest.approx(expect["max_abs"], rel=1e-9)


def args(result, problem=None, model=None, grid=(17,), order=2):
    return argparse.Namespace(problem=problem, result=str(result), model=model, grid=list(grid), order=order)


def test_compare_of_the_result_file_alone_uses_its_stored_spec(tutorial_dir, capsys):
    tmp, problem, model = tutorial_dir
    before = sha256(tmp / RESULT)
    capsys.readouterr()
    assert main(args(tmp / RESULT, order=4)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["problem"] == f"{tmp / RESULT}:/spec" and data["model"] == "siren"
    expect = compare(problem, model, 17, order=4).table["u"]
    for k in ("rel_l2", "max_abs"):
        assert data["table"]["u"][k] == pytest.approx(expect[k], rel=1e-12), k
    # and the numbers are a real comparison: an untrained tiny SIREN is far from the solution
    assert data["table"]["u"]["rel_l2"] > 0.1
    assert sha256(tmp / RESULT) == before


def test_model_default_and_choices(tmp_path):
    a, b = tiny_siren(0), tiny_siren(1)
    two = write_result(tmp_path / "two.h5", kind="t", config={}, models={"siren": a, "relu": b})
    with pytest.raises(CompareError, match=r"holds 2 models \(relu, siren\); choose one with --model NAME"):
        main(args(two, problem="unused.py:problem"))
    with pytest.raises(CompareError, match=r"holds no model 'model'; it holds: relu, siren"):
        main(args(two, problem="unused.py:problem", model="model"))
    assert pio.default_model_name(write_result(tmp_path / "one.h5", kind="t", config={}, models={"x": a})) == "x"
    with pytest.raises(LookupError, match="relu, siren"):
        pio.default_model_name(two)


def test_missing_or_incomplete_spec_asks_for_the_script(tmp_path):
    x, y = sympy.symbols("x y")
    u = pinn.Field("u", (x, y))
    grow = pinn.Problem([u], (x, y), [
        pinn.Constraint(u.diff(x, 2) + u.diff(y, 2), where=pinn.Box(lambda s: [(-1, 1), (-1, 1)]), n=8, name="pde"),
        pinn.Constraint(u, where=pinn.Box([(-1, 1), (-1, 1)]).boundary(), n=8, name="bc")])
    f = write_result(tmp_path / "inc.h5", kind="t", config={}, models={"m": tiny_siren()}, problem=grow)
    with pytest.raises(CompareError, match=r"incomplete \(constraint 'pde': Box bounds given as a callable of the "
                                           r"step\); give the script too"):
        main(args(f))
    g = write_result(tmp_path / "none.h5", kind="t", config={}, models={"m": tiny_siren()})
    with pytest.raises(CompareError, match="stores no problem spec"):
        main(args(g))


@pytest.mark.parametrize("body, entry", [
    ("from pinnsiren.io import write_result\nwrite_result('out.h5', kind='x', config={})\n",
     "pinnsiren.io.write_result"),
    ("import h5py\nh5py.File('out.h5', 'w')\n", "h5py.File(..., mode='w')"),
    ("import pinnsiren.train as T\nT.train(None, None)\n", "pinnsiren.train.train"),
])
def test_writes_and_training_at_import_are_refused_and_restored(tmp_path, monkeypatch, body, entry):
    monkeypatch.chdir(tmp_path)
    res = write_result(tmp_path / "r.h5", kind="t", config={}, models={"m": tiny_siren()})
    before = sha256(res)
    script = tmp_path / "s.py"
    script.write_text("problem = None\n" + body)
    with pytest.raises(CompareError, match=re.escape(f"({entry} called at line ")):
        main(args(res, problem=f"{script}:problem"))
    assert not (tmp_path / "out.h5").exists() and sha256(res) == before
    # the patches are undone
    import h5py

    assert ptrain.train.__module__ == "pinnsiren.train" and pio.write_result.__module__ == "pinnsiren.io"
    assert h5py.File.__module__.startswith("h5py")
