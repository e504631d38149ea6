"""benchmarks/exact_bc.py runs at a tiny size so it cannot rot (no timing or accuracy asserted)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_exact_bc_benchmark_prints_json():
    out = subprocess.run([sys.executable, "benchmarks/exact_bc.py", "--quick", "--threads", "1"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout[out.stdout.index("{\n"):])
    assert set(data["results"]) == {"rfunc", "rfunc-norm", "smooth-norm", "smooth-peak1"}
    for r in data["results"].values():
        assert r["steps"] == 3 and 0 <= r["rel_l2"] == r["rel_l2"]  # finite, not NaN
