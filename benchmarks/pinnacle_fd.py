"""PINNacle's Poisson2d-C and Poisson2d-CG solved by the grid check (reference.fdgen) from the trained Problem.

The Problem is the one ``benchmarks/pinnacle.py`` trains (same case builders:
PDE on the square minus discs, Dirichlet data on the square's edges and on each
circle, declared as constraints), handed to ``fdgen.solve`` unchanged; fdgen
discretises the composed region with cut stencils (docs/reference.md, "Composed
regions"). Prints JSON per case and grid: relative L2 error against PINNacle's
COMSOL reference over all its points, the error between successive grids (how
far the grid solution is from converged), the Richardson extrapolation of two grids against the
reference (the reference's own error shows there), CPU seconds, unknowns. Example::

    python benchmarks/pinnacle_fd.py --cases Poisson2d-C,Poisson2d-CG --grids 129,257,513

Reference data are read from ``../shared/data/pinnacle/`` (``--data DIR``); a
case whose file is absent is reported as skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/reference.py would shadow the reference package

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from reference import fdgen  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "pinnacle"


def problem_of(case):
    """The Problem that benchmarks/pinnacle.py trains for ``case`` (conditions as constraints)."""
    from pinnsiren import Constraint, Problem

    u, pde = case.pde
    cons = [Constraint(pde, where=case.interior, n=1024, name="pde")]
    cons += [Constraint(r, where=reg, n=64, name=nm) for nm, r, reg in case.conditions]
    return Problem([u], case.coords, cons)


def run(name: str, grids, data: Path) -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import pinnacle  # the case builders of the training benchmark

    case = pinnacle.CASES[name](data, False)
    if case.reference is None:
        return {"case": name, "skipped": f"reference file absent under {data}"}
    pts, ref = case.reference
    prob = problem_of(case)
    rows, prev = [], None
    for n in grids:
        c0 = time.process_time()
        sol = fdgen.solve(prob, n)
        cpu = time.process_time() - c0
        val = sol.at("u", pts)
        row = {"grid": n, "rel_l2_vs_reference": float(np.linalg.norm(val - ref) / np.linalg.norm(ref)),
               "cpu_s": round(cpu, 2), "unknowns": int(sol.stats["unknowns"]),
               "boundary_points": int(sol.stats["boundary_points"])}
        if prev is not None:
            row["rel_l2_vs_previous_grid"] = float(np.linalg.norm(val - prev) / np.linalg.norm(val))
            # Richardson extrapolation of this grid and the previous one (second order, h halved): what is left
            # against the reference is mostly the reference's own error (and the interpolation to its points)
            rich = (4 * val - prev) / 3
            row["rel_l2_richardson_vs_reference"] = float(np.linalg.norm(rich - ref) / np.linalg.norm(ref))
        prev = val
        rows.append(row)
    return {"case": name, "reference_points": int(len(ref)), "runs": rows}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="Poisson2d-C,Poisson2d-CG")
    ap.add_argument("--grids", default="129,257,513", help="nodes per axis, comma-separated")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, str(args.threads))
    grids = [int(g) for g in args.grids.split(",")]
    out = [run(c, grids, Path(args.data)) for c in args.cases.split(",")]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
