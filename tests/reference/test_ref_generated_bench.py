"""benchmarks/reference.py --generated runs at a tiny size (no timing asserted), and its numbers are sane."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reference_benchmark_generated_rows():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "benchmarks/reference.py", "--sizes", "33", "--only-generated"], cwd=ROOT,
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    row = data["results"][0]["generated_vs_scheme5"]
    assert row["n"] == 33 and row["unknowns"] == 31**2
    assert row["max_abs_difference"] <= 1e-12 * row["max_abs_field"], row
    assert row["generated"]["linear_solver"] == "direct-nd"
    for part in (row["generated"], row["hand_written_scheme5"]):
        assert all(v >= 0 for v in part.values() if not isinstance(v, str))
