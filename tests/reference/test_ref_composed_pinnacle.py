"""PINNacle's Poisson2d-C and Poisson2d-CG solved by reference.fdgen from the very Problem a user trains.

The Problem comes from the case builders of benchmarks/pinnacle.py (square minus
discs, Dirichlet data on the square's edges and on each circle); the grid
solution, interpolated to PINNacle's COMSOL reference points, must be within
1 % relative L2 of the reference on a 257^2 grid (measured: 1.4e-4 and 5.2e-4;
the full study is benchmarks/pinnacle_fd.py). Skipped when the reference data
(../shared/data/pinnacle relative to the repository) are absent.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pinnsiren")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "pinnacle"
FILES = {"Poisson2d-C": "poisson1_cg_data.dat", "Poisson2d-CG": "poisson_boltzmann2d.dat"}


@pytest.mark.parametrize("name", sorted(FILES))
def test_pinnacle_poisson_from_the_trained_problem(name):
    if not (DATA / FILES[name]).exists():
        pytest.skip(f"PINNacle reference data absent: {DATA / FILES[name]} (see ../shared/data/pinnacle/README.md)")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import pinnacle
        import pinnacle_fd
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from reference import fdgen

    case = pinnacle.CASES[name](DATA, False)
    pts, ref = case.reference
    sol = fdgen.solve(pinnacle_fd.problem_of(case), 257)
    err = float(np.linalg.norm(sol.at("u", pts) - ref) / np.linalg.norm(ref))
    assert err <= 1e-2
    assert err <= 2e-3  # what the 257^2 grid reaches (1.4e-4, 5.2e-4 measured): a regression guard
    assert np.all(np.isfinite(sol.at("u", pts)))
