"""PSNR per architecture after a fixed number of steps on the 256^2 cameraman (paper Fig. 1).

Prints JSON. Example::

    python benchmarks/image_fit.py --steps 300 --archs siren,relu-pe,tanh,relu
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/reference.py would shadow the reference package: put the project root first
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json  # noqa: E402
import os
import platform
import time

import torch
from threadpoolctl import threadpool_limits

from solvers.signals.image_fit import ImageFitConfig, fit_image
from solvers.signals.images import load_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--archs", default="siren,relu-pe,tanh,relu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    a = p.parse_args()
    if a.quick:
        a.steps, a.size = 2, 16
    torch.set_num_threads(a.threads)
    img = load_image(None, a.size)
    out = dict(benchmark="image_fit", size=a.size, steps=a.steps, threads=a.threads, machine=platform.machine(),
               load_average=os.getloadavg()[0], results={})
    with threadpool_limits(a.threads):
        for arch in a.archs.split(","):
            t, c = time.perf_counter(), time.process_time()
            r = fit_image(img, ImageFitConfig(arch=arch, steps=a.steps, hidden=16 if a.quick else 256),
                          show_progress=False)
            out["results"][arch] = dict(psnr_db=round(r["psnr"], 2), seconds=round(time.perf_counter() - t, 1),
                                        cpu_seconds=round(time.process_time() - c, 1))
            print(json.dumps({arch: out["results"][arch]}), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
