"""Smoke-run benchmarks/derivatives.py at tiny sizes so it cannot rot (no timing assertions)."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_benchmark_quick():
    spec = importlib.util.spec_from_file_location("bench_derivatives", os.path.join(ROOT, "benchmarks", "derivatives.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--quick"])
    assert set(out["problems"]) == {"poisson", "helmholtz", "wave", "eikonal"}
    for name, entry in out["problems"].items():
        assert set(entry["median_s"]) == {"compiled", "compiled_bf16", "hand_jet", "full_jet", "autograd",
                                          "torch_func"}
        # every method computes the same loss (float32; the bfloat16 backward leaves the forward alone)
        for method, rel in entry["loss_rel_diff_vs_autograd"].items():
            assert rel < 1e-4, (name, method, rel)
        # and the same parameter gradient: float32 methods to rounding, the bfloat16 backward within 1e-2
        for method, rel in entry["grad_rel_diff_vs_autograd"].items():
            assert rel < (1e-2 if method == "compiled_bf16" else 1e-4), (name, method, rel)
    # Poisson: one collapsed (forward-Laplacian) slot instead of u_xx and u_yy
    assert out["problems"]["poisson"]["derivatives_requested"] == []
    assert out["problems"]["poisson"]["laplacians_requested"] == [["1", "1"]]
    assert out["problems"]["wave"]["laplacians_requested"] == [["-(x/4 + 1)**2", "-(x/4 + 1)**2", "1"]]
    assert out["problems"]["helmholtz"]["laplacians_requested"] == []  # complex weights: no slot saved
    assert "compiled" in out["problems"]["poisson"]["peak_rss_increase_mb"]
    assert out["problems"]["eikonal"]["derivatives_requested"] == [[0, [1, 0, 0]], [0, [0, 1, 0]], [0, [0, 0, 1]]]
