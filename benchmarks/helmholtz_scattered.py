"""What each lever buys for the scattered-field Helmholtz solve (paper's source, k = 20).

Runs variants one after another in one process (one thread) and prints JSON: for each,
the total-field relative L2 vs the 9-point FD solution of the same (sharp) medium on
|x|_inf < 0.5, the error-vs-step curve, and CPU seconds. Example::

    python benchmarks/helmholtz_scattered.py --variants full,no-smooth,no-scatterer,adam --media circle

Base (``full``): SIREN 128 x 3, 2048 uniform points + 512 on the scatterer per step, L2
residual, hybrid least squares / Adam (the last layer solved exactly on every batch,
Adam 1e-4 cosine on the hidden layers), medium Gaussian-smoothed (std 0.01) in the
network's residual, a final least-squares solve on 16384 fresh points.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json
import time

import torch
from threadpoolctl import threadpool_limits

from solvers.pde.helmholtz import HelmholtzConfig, reference_solution, solve

BASE = dict(k=20.0, source_var=1e-4, formulation="scattered", hidden=128, layers=3, points=2048, source_points=0,
            scatterer_points=512, norm="l2", lstsq_every=1, lstsq_points=16384, smooth_medium=0.01, steps=600,
            lr=1e-4, schedule="cosine", eval_every=100, progress=False)
VARIANTS = {
    "full": {},
    "no-smooth": dict(smooth_medium=0.0),
    "no-scatterer": dict(scatterer_points=0, points=2560),
    "no-hybrid": dict(lstsq_every=0),
    "adam": dict(lstsq_every=0, lstsq_points=0, scatterer_points=0, smooth_medium=0.0, points=2048, norm="l1"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="full")
    p.add_argument("--media", default="circle")
    p.add_argument("--steps", type=int, default=BASE["steps"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    base = dict(BASE, steps=a.steps, seed=a.seed)
    if a.quick:
        base.update(hidden=16, layers=1, points=64, scatterer_points=16, grid_n=64, steps=3, lstsq_points=256,
                    eval_every=0)
    out = dict(benchmark="helmholtz_scattered", threads=a.threads, base=base, results={})
    with threadpool_limits(a.threads):
        for medium in a.media.split(","):
            ref = None
            for name in a.variants.split(","):
                if name not in VARIANTS:
                    raise SystemExit(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
                cfg = HelmholtzConfig(**{**base, **VARIANTS[name]}, medium=medium)
                ref = ref if ref is not None else reference_solution(cfg)
                t = time.process_time()
                r = solve(cfg, ref)
                m = r["metrics"]
                h = r["history"]
                out["results"][f"{medium}/{name}"] = dict(
                    rel_l2=m["rel_l2"], rel_l2_far=m["rel_l2_far"], cpu_seconds=time.process_time() - t,
                    curve=dict(step=h.get("eval_step", []), rel_l2=h.get("rel_l2", [])), change=VARIANTS[name])
                print(json.dumps({f"{medium}/{name}": out["results"][f"{medium}/{name}"]}), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
