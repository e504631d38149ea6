"""benchmarks/sdf_shapes.py runs at a smoke size and reports its phases (so it cannot rot)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_sdf_shapes_benchmark_smoke():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "benchmarks/sdf_shapes.py", "sphere", "--steps", "20", "--resolution", "24",
                          "--eval-points", "2000"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["source"] == "sphere" and row["steps"] == 20
    assert row["chamfer_over_floor"] == pytest.approx(row["chamfer_l1"] / row["chamfer_floor"])
    assert row["eval_over_train"] == pytest.approx(row["eval_cpu_s"] / row["train_cpu_s"])
    assert row["direction_ratio"] >= 1.0


def test_mesh_names_resolve_to_the_shared_folder():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import sdf_shapes
    finally:
        sys.path.pop(0)
    assert sdf_shapes.resolve("torus") == "torus"
    if not (sdf_shapes.MESHES / "fandisk.obj").exists():
        pytest.skip("../shared/data/meshes/fandisk.obj is not present")
    assert sdf_shapes.resolve("fandisk").endswith("fandisk.obj")
