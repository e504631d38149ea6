"""Exact Dirichlet data on a holed domain: which distance functions make it train.

PINNacle's Poisson2d-C (Laplace on [-0.5, 0.5]^2 minus four discs of radius 0.1
at (+-0.3, +-0.3); u = 1 on the square's edges, u = 0 on the circles), posed as
``ExactDirichlet(Normalized(Siren(2, 1, 128, 3), dom), (x, y), phi, g)`` with the
PDE residual as the only loss term. Variants (``--variants``, comma separated):

- ``rfunc``: ``phi = dom.adf(xy)``, lift ``g`` with the R-function square;
- ``rfunc-norm``: as ``rfunc`` with ``phi = dom.adf(xy, normalize=True)``;
- ``smooth-norm``: normalised ``phi``, lift with ``sq.adf(xy, smooth=True)``;
- ``smooth-peak1``: as ``smooth-norm`` with the square piece scaled to peak 1
  (4x), to show that the lift's pieces must share the distance scale.

Prints JSON: relative L2 error against the reference data every ``--every``
steps, CPU seconds. Reference data from ``../shared/data/pinnacle/`` relative to
the repository root (``--data DIR`` otherwise); skipped with a message when
absent. ``--quick``: a few steps on a tiny sample (smoke run; numbers
meaningless). Example::

    python benchmarks/exact_bc.py --variants rfunc,rfunc-norm,smooth-norm,smooth-peak1 --steps 600 --threads 1
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import sympy  # noqa: E402
import torch  # noqa: E402

from pinnsiren import Ball, Box, Constraint, ExactDirichlet, Field, Normalized, Problem, Siren  # noqa: E402
from pinnsiren.adf import r_and, transfinite  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "pinnacle"
VARIANTS = ("rfunc", "rfunc-norm", "smooth-norm", "smooth-peak1")


def build(variant: str, hidden: int, layers: int):
    x, y = sympy.symbols("x y")
    xy = (x, y)
    u = Field("u", xy)
    sq = Box([(-0.5, 0.5)] * 2)
    holes = [Ball([a, b], 0.1) for a in (0.3, -0.3) for b in (0.3, -0.3)]
    dom = sq
    for h in holes:
        dom = dom - h
    hphi = -holes[0].adf(xy)
    for h in holes[1:]:
        hphi = r_and(hphi, -h.adf(xy))
    if variant.startswith("rfunc"):
        sq_piece = sq.adf(xy)
    elif variant == "smooth-norm":
        sq_piece = sq.adf(xy, smooth=True)
    elif variant == "smooth-peak1":
        sq_piece = 4 * sq.adf(xy, smooth=True)
    else:
        raise ValueError(f"unknown variant {variant!r}; must be one of {list(VARIANTS)}")
    g = transfinite([(sq_piece, 1), (hphi, 0)])
    phi = dom.adf(xy, normalize=variant != "rfunc")
    torch.manual_seed(0)
    model = ExactDirichlet(Normalized(Siren(2, 1, hidden, layers), dom), xy, phi, g)
    return dom, u, xy, model


def run(variant: str, ref: tuple[torch.Tensor, torch.Tensor], args) -> dict:
    dom, u, (x, y), model = build(variant, args.hidden, args.layers)
    prob = Problem([u], (x, y), [Constraint(u.diff(x, 2) + u.diff(y, 2), dom, n=args.points, name="pde")])
    P, U = ref
    opt = torch.optim.Adam(model.parameters(), args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    gen = torch.Generator().manual_seed(0)
    curve = {}
    t0 = time.process_time()
    for step in range(args.steps):
        L = prob.losses(model, step, gen)
        opt.zero_grad()
        sum(L.values()).backward()
        opt.step()
        sched.step()
        if (step + 1) % args.every == 0 or step == args.steps - 1:
            with torch.no_grad():
                err = float((model(P)[:, 0].double() - U).norm() / U.norm())
            curve[step + 1] = err
    return {"rel_l2": curve[args.steps], "curve": curve, "steps": args.steps,
            "cpu_seconds": round(time.process_time() - t0, 1)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = Path(args.data) / "poisson1_cg_data.dat"
    if path.exists():
        d = np.loadtxt(path, comments="%")
        ref = (torch.tensor(d[:, :2], dtype=torch.float32), torch.tensor(d[:, 2]))
    elif args.quick:
        # stand-in so the smoke run exercises the code: points of the domain, u = 1
        pts, _ = build("rfunc", 8, 1)[0].sample(64, 0, torch.Generator().manual_seed(0))
        ref = (pts.float(), torch.ones(64, dtype=torch.float64))
    else:
        print(f"skipped: reference data {path} not found (see ../shared/data/pinnacle/README.md)", file=sys.stderr)
        print(json.dumps({"results": {}, "skipped": str(path)}, indent=1))
        return
    if args.quick:
        args.steps, args.every, args.points, args.hidden, args.layers = 3, 1, 32, 8, 1
    results = {}
    for v in args.variants.split(","):
        results[v] = run(v.strip(), ref, args)
        print(json.dumps({v: results[v]}), flush=True)
    print(json.dumps({"case": "Poisson2d-C", "lr": args.lr, "points": args.points, "results": results}, indent=1))


if __name__ == "__main__":
    main()
