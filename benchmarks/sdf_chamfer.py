"""Chamfer-L1 of saved SDF runs at a chosen sample count, with its floor and the floor-free value.

Reads each run folder written by ``pinnsiren solve sdf SHAPE --out DIR``
(``mesh.ply`` in the normalised frame, ``sdf.h5`` with the shape name and the
transform) and measures, against the exact analytic surface:

* the sampled Chamfer-L1 with ``--samples`` points per surface and its floor
  (two independent samplings of the true surface), as ``pinnsiren solve sdf``
  reports with ``--eval-points``;
* the floor-free ``surface_chamfer_l1`` (exact distances to the surfaces).

Prints JSON, one object per run. Example::

    python benchmarks/sdf_chamfer.py runs/sdf-siren runs/sdf-relu --samples 4000000
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/reference.py would shadow the reference package: put the project root first
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from pinnsiren.io import read_result  # noqa: E402
from solvers.sdf import geometry_metrics as gm  # noqa: E402
from solvers.sdf.pointcloud import SHAPES, read_mesh, sample_mesh, shape_cloud, shape_sdf  # noqa: E402


def measure(run: Path, samples: int, seed: int = 0) -> dict:
    cfg = read_result(run / "sdf.h5")["config"]
    shape = cfg["source"]
    if shape not in SHAPES:
        raise ValueError(f"{run}: source {shape!r} is not an analytic shape ({', '.join(SHAPES)})")
    center, scale = np.asarray(cfg["transform"]["center"]), float(cfg["transform"]["scale"])
    v, f = read_mesh(run / "mesh.ply")
    rng = np.random.default_rng(seed)

    def truth(m):
        return (shape_cloud(shape, m, rng)[0] - center) * scale

    t0 = time.perf_counter()
    mesh_pts, _ = sample_mesh(v, f, samples, rng, orient=False)
    gt = truth(samples)
    out = dict(run=str(run), arch=cfg["arch"], samples=samples, mesh_faces=len(f))
    out.update(gm.chamfer_l1(mesh_pts, gt))
    out["chamfer_floor"] = gm.chamfer_l1(gt, truth(samples))["chamfer_l1"]
    out.update(gm.surface_chamfer_l1(mesh_pts, v, f, gt,
                                     gt_distance=lambda q: scale * shape_sdf(shape, q / scale + center)))
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="folders written by pinnsiren solve sdf SHAPE --out")
    p.add_argument("--samples", type=int, default=1_000_000, help="points per surface for the sampled Chamfer")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    with threadpool_limits(a.threads):
        for run in a.runs:
            print(json.dumps(measure(run, a.samples)), flush=True)


if __name__ == "__main__":
    main()
