"""docs/tutorial.md runs: its ```python blocks are executed in order, and the numbers they produce are checked.

The tutorial reads PINNSIREN_TUTORIAL_QUICK to train 300 steps instead of 2 000
(about 20 s on one core). Bounds are set from the measured quick run (values in
the comments) with room for platform noise, but tight enough that a wrong sign,
a wrong coefficient or a broken boundary term fails.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


def tutorial_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", TUTORIAL.read_text(), flags=re.S | re.M)


def test_tutorial_has_its_code_blocks():
    blocks = tutorial_blocks()
    assert len(blocks) >= 5, "docs/tutorial.md lost its ```python blocks"
    assert any("PINNSIREN_TUTORIAL_QUICK" in b for b in blocks), "the quick-run switch is gone: the test would train 2 000 steps"


@pytest.mark.slow
def test_tutorial_runs_and_its_numbers_hold(tmp_path, monkeypatch):
    monkeypatch.setenv("PINNSIREN_TUTORIAL_QUICK", "1")
    monkeypatch.chdir(tmp_path)  # the tutorial writes results/tutorial/diffusion.h5
    threads = torch.get_num_threads()
    ns: dict = {"__name__": "__tutorial__"}
    try:
        for i, block in enumerate(tutorial_blocks()):
            exec(compile(block, f"{TUTORIAL.name}[block {i}]", "exec"), ns)
    finally:
        torch.set_num_threads(threads)

    # neural solution vs the exact solution (quick run measured: rel L2 1.7e-3, max 1.7e-2)
    assert ns["STEPS"] == 300 and ns["run"].steps_done == 300
    assert ns["rel_l2_siren"] < 6e-3, ns["rel_l2_siren"]
    assert ns["max_err_siren"] < 6e-2, ns["max_err_siren"]
    curve = ns["run"].history["rel_l2"]
    assert curve[-1] < 0.25 * curve[0], curve  # the error-vs-step curve falls

    # FD reference vs exact: second order, and the 65^2 error (measured 8.1e-4 max, 5.3e-4 rel L2)
    assert abs(ns["fd_order"] - 2.0) <= 0.3, ns["fd_errors"]
    assert ns["fd_errors"][65] < 1.2e-3 and ns["rel_l2_fd"] < 1e-3, (ns["fd_errors"], ns["rel_l2_fd"])
    # the two independent solutions agree to within their errors (measured 1.8e-3)
    assert ns["rel_l2_siren_vs_fd"] < ns["rel_l2_siren"] + ns["rel_l2_fd"] + 1e-9

    # HDF5 round trip: metrics, fields, history, and the model rebuilt from the file
    path = tmp_path / "results" / "tutorial" / "diffusion.h5"
    assert path.is_file() and Path(ns["path"]) == Path("results/tutorial/diffusion.h5")
    res = ns["result"]
    assert res["attrs"]["kind"] == "tutorial-diffusion"
    for k in ("rel_l2_siren", "max_err_siren", "rel_l2_fd", "rel_l2_siren_vs_fd", "fd_order"):
        assert res["metrics"][k] == pytest.approx(ns[k], rel=1e-12, abs=0), k
    np.testing.assert_array_equal(res["fields"]["u_siren"], ns["U_siren"])
    np.testing.assert_array_equal(res["fields"]["u_fd"], ns["U_fd"])
    np.testing.assert_array_equal(res["fields"]["u_exact"], ns["U_exact"])
    assert res["field_attrs"]["u_fd"]["bounds"] == [[-1.0, 1.0], [-1.0, 1.0]]
    np.testing.assert_allclose(res["history"]["siren/rel_l2"], curve)
    assert res["config"]["train"]["phases"] == [{"kind": "Adam", "steps": 300, "lr": 1e-3, "schedule": "cosine",
                                                 "final_lr_factor": 0.01, "grad_clip": None, "sampler": None,
                                                 "cpu_seconds": None}]
    np.testing.assert_allclose(ns["U_reloaded"], ns["U_siren"], rtol=0, atol=1e-6)
    assert type(ns["reloaded"]).__name__ == "Siren"
    # the Problem stored with the result comes back whole: same constraints, same grid solution
    assert res["spec"]["complete"] is True, res["spec"]["incomplete"]
    from pinnsiren.io import load_problem
    from reference import fdgen

    back = load_problem(path)
    assert list(back.constraints) == ["pde", "boundary"] and back.constraints["boundary"].weight == 100.0
    np.testing.assert_allclose(fdgen.solve(back, 33)["u"].values, fdgen.solve(ns["problem"], 33)["u"].values,
                               rtol=0, atol=1e-13)
