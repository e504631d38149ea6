"""Weak scaling of data-parallel training: steps/s for 1, 2, ... processes at a fixed per-rank batch.

Each process count is a separate ``python -m torch.distributed.run
--nproc-per-node N`` launch of this script (``--worker``), training the same
Poisson problem (``Δu = -2π² sin(πx) sin(πy)`` on [-1, 1]², ``u = 0`` on the
boundary, a SIREN) with :func:`pinnsiren.train.train`; every rank draws
``--points`` interior and ``--points // 8`` boundary points per step, so a
step of N processes uses N times as many points. Timed: ``--steps`` steps
after ``--warmup`` steps, wall clock and process CPU time of rank 0.

On CPU every process gets ``--threads`` threads. A 2-core CPU shared with
other jobs says nothing about GPU scaling: there the processes compete for
the same cores, so perfect weak scaling (same steps/s at every N) is out of
reach as soon as N x threads exceeds the free cores. With ``--device cuda``
each rank uses ``cuda:LOCAL_RANK`` (so N can be at most the GPU count).

    python benchmarks/distributed.py                      # N = 1, 2 on CPU
    python benchmarks/distributed.py --device cuda --nprocs 1
    python benchmarks/distributed.py --quick              # smoke size
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _worker(args: argparse.Namespace) -> None:
    import sympy
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    from pinnsiren import Box, Constraint, Field, Problem, Siren, distributed
    from pinnsiren.phases import Adam
    from pinnsiren.train import TrainConfig, train

    x, y = sympy.symbols("x y", real=True)
    u = Field("u", (x, y))
    f = -2 * sympy.pi**2 * sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y)
    box = [(-1, 1), (-1, 1)]
    problem = Problem([u], [x, y], [
        Constraint(sympy.Eq(u.diff(x, 2) + u.diff(y, 2), f), Box(box), n=args.points, name="pde"),
        Constraint(sympy.Eq(u, 0), Box(box).boundary(), n=max(args.points // 8, 1), name="bc", weight=10.0),
    ])
    marks: dict[str, float] = {}

    class Timed:
        """The problem, with clocks read when the first timed step starts."""

        def losses(self, model, step, generator):
            if step == args.warmup + 1:
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                marks["wall"], marks["cpu"] = time.perf_counter(), time.process_time()
            return problem.losses(model, step, generator)

    torch.manual_seed(0)
    model = Siren(2, 1, args.hidden, args.layers)
    total = args.warmup + args.steps
    res = train(Timed(), model, TrainConfig(phases=[Adam(total, lr=1e-4)], seed=0, device=args.device,
                                           log_every=total, progress=False))
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - marks["wall"], time.process_time() - marks["cpu"]
    if distributed.is_writer():
        Path(args.worker).write_text(json.dumps(dict(
            world_size=distributed.world_size(), steps=args.steps, seconds=wall, cpu_seconds_rank0=cpu,
            steps_per_s=args.steps / wall, points_per_step=distributed.world_size() * args.points,
            points_per_s=distributed.world_size() * args.points * args.steps / wall,
            final_loss=res.history["loss"][-1],
            device=str(next(res.model.parameters()).device),
        )))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nprocs", default="1,2", help="comma-separated process counts (default 1,2)")
    p.add_argument("--steps", type=int, default=200, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--points", type=int, default=4096, help="interior points per step per process")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.steps, args.warmup, args.points, args.hidden, args.layers = 5, 2, 256, 16, 1
    if args.worker:
        _worker(args)
        return 0

    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(v) for v in args.nprocs.split(",") if v.strip()]:
            out = Path(tmp) / f"n{n}.json"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n),
                   "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(Path(__file__).resolve()),
                   "--worker", str(out), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--points", str(args.points), "--hidden", str(args.hidden), "--layers", str(args.layers),
                   "--threads", str(args.threads), "--device", args.device]
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stderr[-4000:], file=sys.stderr)
                return r.returncode
            results[str(n)] = json.loads(out.read_text())
    base = results.get("1")
    for v in results.values():
        if base:
            v["weak_scaling_efficiency"] = v["steps_per_s"] / base["steps_per_s"]
            v["throughput_speedup"] = v["points_per_s"] / base["points_per_s"]
    print(json.dumps(dict(
        config=dict(steps=args.steps, warmup=args.warmup, points_per_rank=args.points, hidden=args.hidden,
                    layers=args.layers, threads_per_process=args.threads, device=args.device,
                    cpu_count=os.cpu_count()),
        results=results,
        caveat=("processes share this machine's CPU cores: on a small CPU this measures contention, "
                "not how the same run scales over GPUs") if args.device == "cpu" else "",
    ), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
