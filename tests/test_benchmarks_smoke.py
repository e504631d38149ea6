"""Benchmarks run at tiny sizes so they cannot rot (no timing is asserted)."""

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("script", ["benchmarks/image_fit.py", "benchmarks/helmholtz_levers.py", "benchmarks/pinnacle.py",
                                    "benchmarks/untuned.py"])
def test_benchmark_prints_json(script):
    out = subprocess.run([sys.executable, script, "--quick", "--threads", "1"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    data = json.loads(text[text.index("{\n"):])  # the final, indented document
    assert data["results"]
    for r in data["results"].values():
        assert all(v == v for v in r.values() if isinstance(v, float))  # no NaN
