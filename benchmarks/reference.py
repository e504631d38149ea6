"""Benchmark the reference Helmholtz solver; prints JSON.

For each grid size, two fresh subprocesses (so ``ru_maxrss`` is a clean peak):
ours (nested-dissection ordering + SuperLU, 1 BLAS thread) and the baseline
(scipy ``splu`` with COLAMD, 1 BLAS thread) on the same matrix.  Reports
assemble / factor / solve wall seconds, factor CPU seconds (robust when
the machine is shared), the 1-minute load average, peak RSS (MiB), nnz(L+U), and the relative
L2 error vs the analytic solution (k=20, Gaussian source var 1e-4, 9-point,
|x|_inf < 0.5, r > 0.1).

Usage::

    python benchmarks/reference.py            # 256, 512, 1024; baseline everywhere
    python benchmarks/reference.py --quick    # baseline skipped above 512
    python benchmarks/reference.py --sizes 256 512 --scheme 5
    python benchmarks/reference.py --sizes 129 257 513 --generated   # + the generated solver
    python benchmarks/reference.py --sizes 129 257 513 1025 --only-generated   # only those rows
    python benchmarks/reference.py --orders            # observed orders of the generated solver

``--generated`` adds, per size, a child that solves the same PML Helmholtz
problem with ``reference.fdgen`` (finite differences generated from the SymPy
spec ``equations.helmholtz.helmholtz_pml``; at second order its flux form is the
hand-written ``scheme=5``) and, in the same process, the hand-written
``HelmholtzOperator(scheme=5)`` with the same factorization (nested dissection + SuperLU):
spec / assembly / factor+solve CPU seconds of both and their max difference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(n: int, ordering: str, scheme: int, k: float) -> dict:
    import resource
    import time

    import numpy as np

    sys.path.insert(0, str(ROOT))
    from reference.analytic import helmholtz_gaussian
    from reference.helmholtz import HelmholtzOperator, gaussian_source

    t0 = time.perf_counter()
    op = HelmholtzOperator(n, k, scheme=scheme, ordering=ordering)
    t1 = time.perf_counter()
    c1 = time.process_time()
    op.factorize()
    t2 = time.perf_counter()
    c2 = time.process_time()
    f = gaussian_source(op.grid)
    u = op.solve(op.interior(f.astype(complex)))
    t3 = time.perf_counter()
    U = op.to_full(u)
    X, Y = op.grid.coords()
    r = np.hypot(X, Y)
    mask = (np.maximum(abs(X), abs(Y)) < 0.5) & (r > 0.1)
    ua = helmholtz_gaussian(r[mask], k, 1e-4)
    err = float(np.linalg.norm(U[mask] - ua) / np.linalg.norm(ua))
    return {
        "n": n, "unknowns": op.N, "ordering": ordering, "scheme": scheme,
        "assemble_s": round(t1 - t0, 3), "factor_s": round(t2 - t1, 3), "solve_s": round(t3 - t2, 3),
        "factor_plus_solve_s": round(t3 - t1, 3), "factor_cpu_s": round(c2 - c1, 3),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "nnz_LU": op._lu.nnz_factors(), "rel_l2_error": err,  # type: ignore[union-attr]
    }


def _child_generated(n: int, k: float) -> dict:
    import time

    import numpy as np
    import sympy

    sys.path.insert(0, str(ROOT))
    from equations.helmholtz import helmholtz_pml
    from pinnsiren.symbolic import Field
    from reference import fdgen
    from reference.helmholtz import HelmholtzOperator, gaussian_source

    cpu = time.process_time
    x, y = sympy.symbols("x y")
    c0 = cpu()
    u = Field("u", (x, y), complex=True)
    eq = helmholtz_pml(u, k=k)
    walls = [(u, (c, s)) for c in (x, y) for s in ("lo", "hi")]
    spec = fdgen.from_sympy(eq, [u], (x, y), [(-1, 1), (-1, 1)], walls)
    c1 = cpu()
    sol = fdgen.solve(spec, n, method="direct")
    c2 = cpu()
    # the hand-written scheme 5, same grid, same factorization (nested dissection + SuperLU)
    op = HelmholtzOperator(n, k, scheme=5, ordering="nd")
    c3 = cpu()
    op.factorize()
    ref = op.solve(op.interior(gaussian_source(op.grid).astype(complex)))
    c4 = cpu()
    U = op.to_full(ref)
    return {
        "n": n, "unknowns": op.N,
        "generated": {"spec_cpu_s": round(c1 - c0, 3), "assemble_cpu_s": round(sol.stats["assemble_s"], 3),
                      "solve_cpu_s": round(sol.stats["solve_s"], 3), "total_cpu_s": round(c2 - c1, 3),
                      "linear_solver": sol.stats["linear_solver"]},
        "hand_written_scheme5": {"assemble_cpu_s": round(c3 - c2, 3), "factor_plus_solve_cpu_s": round(c4 - c3, 3)},
        "max_abs_difference": float(np.abs(sol["u"].values - U).max()), "max_abs_field": float(np.abs(U).max()),
    }


#: gallery case -> (grids for order 2, grids for order 4, norm)
ORDER_GRIDS = {
    "diffusion": ((17, 33, 65, 129), (17, 33, 65, 129), "max"),
    "nonlinear": ((17, 33, 65, 129), (17, 33, 65, 129), "max"),
    "burgers": ((1025, 2049, 4097), (513, 1025, 2049), "rel_l2"),
    "reaction_diffusion": ((11, 21, 41, 81), (11, 21, 41, 81), "max"),
}


def _orders(quick: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    from reference.fdgen import gallery

    out = {}
    for name, (n2, n4, norm) in ORDER_GRIDS.items():
        c = gallery.case(name)
        for order, ns in ((2, n2), (4, n4)):
            ns = ns[:2] if quick else ns
            r = gallery.observed_order(c, ns, order, norm=norm)
            out[f"{name}/order{order}"] = {**r, "norm": norm, "slope": round(r["slope"], 3),
                                           "cpu_s": [round(v, 3) for v in r["cpu_s"]]}
            print(json.dumps({name: out[f"{name}/order{order}"]}), file=sys.stderr, flush=True)
    return out


def _run(n: int, ordering: str, scheme: int, k: float) -> dict:
    if ordering == "generated":
        cmd = [sys.executable, __file__, "--child-generated", str(n), str(k)]
    else:
        cmd = [sys.executable, __file__, "--child", str(n), ordering, str(scheme), str(k)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        return {"n": n, "ordering": ordering, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--scheme", type=int, choices=(5, 9), default=9)
    ap.add_argument("--k", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="skip the COLAMD baseline above 512^2")
    ap.add_argument("--generated", action="store_true",
                    help="also time the generated solver (reference.fdgen) next to the hand-written scheme 5")
    ap.add_argument("--only-generated", action="store_true", help="run only the generated-vs-hand-written rows")
    ap.add_argument("--orders", action="store_true",
                    help="fit the observed orders of the generated solver on the gallery's exact solutions")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--child-generated", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child_generated:
        n, k = a.child_generated
        print(json.dumps(_child_generated(int(n), float(k))))
        return
    if a.orders:
        print(json.dumps({"benchmark": "reference.fdgen orders", "command": "python benchmarks/reference.py "
                          + " ".join(sys.argv[1:]), "results": _orders(a.quick)}, indent=1))
        return
    if a.child:
        n, ordering, scheme, k = a.child
        print(json.dumps(_child(int(n), ordering, int(scheme), float(k))))
        return
    rows = []
    for n in a.sizes:
        if a.only_generated:
            row = {"n": n, "generated_vs_scheme5": _run(n, "generated", 5, a.k)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            continue
        ours = _run(n, "nd", a.scheme, a.k)
        base = None if (a.quick and n > 512) else _run(n, "colamd", a.scheme, a.k)
        row = {"n": n, "ours_nd": ours, "splu_colamd": base}
        if base and "factor_plus_solve_s" in base and "factor_plus_solve_s" in ours:
            row["speedup_factor_plus_solve"] = round(base["factor_plus_solve_s"] / ours["factor_plus_solve_s"], 2)
            row["memory_ratio"] = round(base["peak_rss_mib"] / ours["peak_rss_mib"], 2)
        if a.generated:
            row["generated_vs_scheme5"] = _run(n, "generated", 5, a.k)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({
        "benchmark": "reference.helmholtz", "command": "python benchmarks/reference.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "k": a.k, "scheme": a.scheme, "results": rows,
    }, indent=1))


if __name__ == "__main__":
    main()
