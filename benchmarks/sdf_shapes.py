"""SDF fits of real and analytic shapes with the defaults: accuracy against the sampling floor and phase times.

Each run is ``solvers.sdf.sdf.run(SOURCE, SDFConfig(...))``, exactly what
``pinnsiren solve sdf SOURCE`` does with the same flags. For each source and
architecture prints one JSON object: the Chamfer-L1 (and its floor, both
directions), the floor-free surface Chamfer, the normal consistency
(absolute and signed), the CPU seconds of training and of evaluation
(meshing + all metrics) and their ratio.

Mesh names are looked up in ``../shared/data/meshes/`` (relative to the
repository root) unless a path is given. Example::

    python benchmarks/sdf_shapes.py stanford-bunny fandisk torus --arch siren relu
    python benchmarks/sdf_shapes.py sphere --steps 50 --resolution 32 --eval-points 2000   # smoke size
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/reference.py would shadow the reference package: put the project root first
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402

import torch  # noqa: E402

from solvers.sdf.pointcloud import SHAPES  # noqa: E402
from solvers.sdf.sdf import SDFConfig, run  # noqa: E402

MESHES = ROOT.parent / "shared" / "data" / "meshes"


def resolve(source: str) -> str:
    """A shape name or an existing path as given; else ``../shared/data/meshes/<source>.obj``."""
    if source in SHAPES or Path(source).exists():
        return source
    cand = MESHES / (source if Path(source).suffix else source + ".obj")
    if not cand.exists():
        raise SystemExit(f"{source!r}: not a shape name ({', '.join(SHAPES)}), a file, nor {cand}")
    return str(cand)


KEYS = ("chamfer_l1", "chamfer_floor", "a_to_b", "b_to_a", "a_to_b_p99", "surface_chamfer_l1",
        "surface_a_to_b", "surface_b_to_a", "normal_consistency", "normal_consistency_signed",
        "band_sdf_error", "mesh_faces", "steps")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="shape names, mesh names in ../shared/data/meshes, or paths")
    p.add_argument("--arch", nargs="+", default=["siren"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--eval-points", type=int, default=None)
    p.add_argument("--out", default=None, help="folder for each run's outputs (OUT/<source>-<arch>)")
    a = p.parse_args()
    torch.set_num_threads(1)
    over = {k: v for k, v in (("steps", a.steps), ("resolution", a.resolution), ("eval_points", a.eval_points))
            if v is not None}
    for src in a.sources:
        path = resolve(src)
        for arch in a.arch:
            cfg = SDFConfig(arch=arch, seed=a.seed, threads=1, progress=False, **over)
            out = None if a.out is None else Path(a.out) / f"{Path(src).stem}-{arch}"
            r = run(path, cfg, out)
            m = r["metrics"]
            row = dict(source=src, arch=arch, seed=a.seed, **{k: m.get(k) for k in KEYS})
            row["chamfer_over_floor"] = m["chamfer_l1"] / m["chamfer_floor"] if m.get("chamfer_floor") else None
            row["direction_ratio"] = max(m["a_to_b"], m["b_to_a"]) / max(min(m["a_to_b"], m["b_to_a"]), 1e-300)
            row["train_cpu_s"] = r["phases"]["train"]["cpu_s"]
            row["eval_cpu_s"] = r["phases"]["evaluate"]["cpu_s"]
            row["eval_over_train"] = row["eval_cpu_s"] / max(row["train_cpu_s"], 1e-9)
            row["phases_cpu_s"] = {k: round(v["cpu_s"], 2) for k, v in r["phases"].items()}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
