"""What each training lever buys for the neural Helmholtz-PML solve (relative L2 vs FD).

Runs variants of one base configuration, one after another in the same process, and
prints JSON: for each variant the error vs the FD solution on |x| < 0.5 (whole region and
r > 0.1 around the source), the error-vs-step curve and the wall time. Example::

    python benchmarks/helmholtz_levers.py --steps 3000 --variants base,no-weight,paper-source

Variants (all on top of the base: k = 20, source variance 1e-3, SIREN 128 x 3,
2048 + 256 points per step, Adam 1e-4 cosine, L1 residual, plain mean over all samples):

* ``base``
* ``paper-source``: source variance 1e-4 (the paper's)
* ``auto-weight``: source term balanced against the uniform term at initialisation
* ``no-source-points``: no dense samples near the source
* ``constant-lr``: no cosine decay
* ``lbfgs``: + 200 L-BFGS iterations after Adam
* ``wide``: 256 x 3 (the paper's width) with the same points
* ``more-points``: 8192 + 1024 points per step
* ``omega10``: first-layer omega_0 = 10
* ``tanh``, ``relu-pe``: baselines under the same budget
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/reference.py would shadow the reference package: put the project root first
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json
import os
import time
from dataclasses import asdict

import torch
from threadpoolctl import threadpool_limits

from solvers.pde.helmholtz import HelmholtzConfig, reference_solution, solve

BASE = dict(k=20.0, source_var=1e-3, hidden=128, layers=3, points=2048, source_points=256, lr=1e-4,
            schedule="cosine", grid_n=256)
VARIANTS = {
    "base": {},
    "paper-source": dict(source_var=1e-4),
    "auto-weight": dict(source_weight="auto"),
    "no-source-points": dict(source_points=1, source_weight=0.0),
    "constant-lr": dict(schedule="constant"),
    "lbfgs": dict(lbfgs_steps=200),
    "wide": dict(hidden=256),
    "more-points": dict(points=8192, source_points=1024),
    "omega10": dict(first_omega_0=10.0),
    "tanh": dict(arch="tanh"),
    "relu-pe": dict(arch="relu-pe"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--variants", default="base")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    base = dict(BASE)
    if a.quick:
        base.update(hidden=16, layers=1, points=64, source_points=16, grid_n=64)
        a.steps = 3
    out = dict(benchmark="helmholtz_levers", steps=a.steps, threads=a.threads, base=base,
               load_average_start=os.getloadavg()[0], results={})
    with threadpool_limits(a.threads):
        ref = None
        for name in a.variants.split(","):
            if name not in VARIANTS:
                raise SystemExit(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
            cfg = HelmholtzConfig(**{**base, **VARIANTS[name]}, steps=a.steps, seed=a.seed,
                                  eval_every=max(a.steps // 10, 1), progress=False)
            r_ref = ref if (ref is not None and cfg.source_var == base["source_var"]) else reference_solution(cfg)
            if cfg.source_var == base["source_var"]:
                ref = r_ref
            t = time.perf_counter()
            r = solve(cfg, r_ref)
            h = r["history"]
            out["results"][name] = dict(
                rel_l2=round(r["metrics"]["rel_l2"], 4), rel_l2_far=round(r["metrics"]["rel_l2_far"], 4),
                seconds=round(time.perf_counter() - t, 1), steps_per_second=round(r["metrics"]["steps_per_second"], 2),
                curve=[[s, round(v, 4)] for s, v in zip(h.get("eval_step", []), h.get("rel_l2", []))],
                config={k: v for k, v in asdict(cfg).items() if k in VARIANTS[name]},
            )
            print(json.dumps({name: out["results"][name]}), flush=True)
    out["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
