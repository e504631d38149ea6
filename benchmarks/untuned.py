"""Problems nobody tuned: a wave, a heat and an inverse coefficient problem, each with a closed-form truth.

Both are trained with the recommended setup and nothing chosen per problem:
``pinnsiren.recommended_model`` (one per field through
``pinnsiren.fieldnets.FieldNetworks.recommended`` for the inverse problem),
``pinnsiren.impose_exactly`` on the declared value conditions, and
``TrainConfig.recommended(evals)``.

``wave``
    ``u_tt = 4 u_xx`` on ``(x, t) in [0, 1] x [0, 1]``, ``u = 0`` at
    ``x = 0, 1``, ``u(x, 0) = sin(pi x)``, ``u_t(x, 0) = 2 pi sin(2 pi x)``.
    Exact: ``u = sin(pi x) cos(2 pi t) + sin(2 pi x) sin(4 pi t) / 2`` (two
    standing modes, one and two periods over the interval). Lever
    ``--exact-velocity``: the initial velocity held exactly too, by
    ``u = u0(x) + t v0(x) + 4 t^2 x (1 - x) N`` (a trial function satisfying
    both initial conditions, Lagaris et al. 1998) instead of a soft term.
``heat``
    ``u_t = u_xx / (16 pi)^2`` on ``(x, t) in [0, 1] x [0, 1]``, ``u = 0`` at
    ``x = 0, 1``, ``u(x, 0) = sin(16 pi x) + sin(2 pi x) / 2``. Exact:
    ``u = exp(-t) sin(16 pi x) + exp(-t / 64) sin(2 pi x) / 2``. The initial
    data's RMS frequency (22.5 rad on the normalised ``x``) is above the
    first layer's default band (15): the check of the data band rule on a
    problem it was not chosen on (``--no-data-bands``: without it).
``inverse``
    ``-div(a grad u) = f`` on ``[0, 1]^2``, ``u = 0`` on the boundary, ``u``
    observed at ``--obs`` uniform random interior points (optionally with
    Gaussian noise ``--noise``, absolute), ``f`` known, ``a`` unknown inside
    and known on the boundary (imposed exactly from face-wise data). For a
    given ``u`` the PDE is a first-order equation for ``a``
    (``grad u . grad a + a lap u = -f``) whose characteristics follow
    ``grad u`` and start on the boundary: without boundary data ``a`` is not
    fixed by it (the usual assumption of conductivity recovery);
    ``--no-a-boundary`` leaves ``a`` unknown everywhere. Exact:
    ``u = sin(pi x) sin(pi y)``,
    ``a = 1 + exp(-10 ((x - 0.6)^2 + (y - 0.4)^2)) / 2``; ``f`` follows.
    Levers: ``--single-network`` (one network outputs ``u`` and ``a``),
    ``--causal`` (wave: causal weights along ``t``),
    ``--smoothness W`` (Tikhonov penalty ``W |grad a|^2`` inside the PDE term,
    ``pinnsiren.fieldnets.smoothness``).

Prints JSON: per case the relative L2 errors on a 101 x 101 grid (``u``; for
the inverse problem also the recovered coefficient ``a``, and the error of the
best constant coefficient for scale), CPU seconds of the training (one thread
with ``--threads 1``), the evaluations spent and the final per-constraint
report. ``--quick``: a few evaluations on small samples (smoke run; numbers
meaningless). Example::

    OMP_NUM_THREADS=1 python benchmarks/untuned.py --cases wave,inverse --evals 3000 --threads 1
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import sympy  # noqa: E402
import torch  # noqa: E402

from pinnsiren import (Box, Constraint, ExactDirichlet, Field, PointSet, Problem, SpaceTime,  # noqa: E402
                       coefficient, impose_exactly)
from pinnsiren.fieldnets import FieldNetworks, smoothness  # noqa: E402
from pinnsiren.phases import Causal  # noqa: E402
from pinnsiren.train import TrainConfig, recommended_model, train  # noqa: E402

x, y, t = sympy.symbols("x y t")
PI = sympy.pi
WAVE_C = 2
WAVE_U = sympy.sin(PI * x) * sympy.cos(2 * PI * t) + sympy.sin(2 * PI * x) * sympy.sin(4 * PI * t) / 2
HEAT_K = 1 / (16 * PI) ** 2
HEAT_U = sympy.exp(-t) * sympy.sin(16 * PI * x) + sympy.exp(-t / 64) * sympy.sin(2 * PI * x) / 2
INV_U = sympy.sin(PI * x) * sympy.sin(PI * y)
INV_A = 1 + sympy.exp(-10 * ((x - sympy.Rational(3, 5)) ** 2 + (y - sympy.Rational(2, 5)) ** 2)) / 2
UNIT = [(0.0, 1.0), (0.0, 1.0)]


def wave_problem(n: int) -> Problem:
    """The declared wave problem: PDE, walls, initial value and velocity (data at ``t = 0`` only)."""
    u = Field("u", (x, t))
    dom = SpaceTime(Box([(0.0, 1.0)]), (0.0, 1.0))
    return Problem([u], (x, t), [
        Constraint(u.diff(t, 2) - WAVE_C ** 2 * u.diff(x, 2), dom, n=n, name="pde"),
        Constraint(u, dom.boundary(), n=max(n // 4, 1), name="walls"),
        Constraint(u - WAVE_U.subs(t, 0), dom.initial(), n=max(n // 4, 1), name="u0"),
        Constraint(u.diff(t) - WAVE_U.diff(t).subs(t, 0), dom.initial(), n=max(n // 4, 1), name="v0"),
    ])


def wave_model(problem: Problem, exact_velocity: bool, bands: bool = True) -> tuple[torch.nn.Module, Problem]:
    """The recommended network (bands balanced by the PDE unless ``bands`` is False) with the value conditions
    imposed; optionally the velocity too."""
    net = recommended_model(UNIT, 1, problem=problem if bands else None)
    if not exact_velocity:
        return impose_exactly(problem, net)
    g = WAVE_U.subs(t, 0) + t * WAVE_U.diff(t).subs(t, 0)
    model = ExactDirichlet(net, (x, t), 4 * t ** 2 * x * (1 - x), g)
    return model, Problem(problem.fields, problem.coords, [problem.constraints["pde"]])


def heat_problem(n: int) -> Problem:
    """``u_t = u_xx / (16 pi)^2`` on ``(x, t) in [0, 1]^2``, zero walls, ``u(x, 0) = sin(16 pi x) + sin(2 pi x) / 2``:
    two modes that decay at rates 1 and 1/64; initial data faster than the default first-layer band."""
    u = Field("u", (x, t))
    dom = SpaceTime(Box([(0.0, 1.0)]), (0.0, 1.0))
    return Problem([u], (x, t), [
        Constraint(u.diff(t) - HEAT_K * u.diff(x, 2), dom, n=n, name="pde"),
        Constraint(u, dom.boundary(), n=max(n // 4, 1), name="walls"),
        Constraint(u - HEAT_U.subs(t, 0), dom.initial(), n=max(n // 4, 1), name="u0"),
    ])


def inverse_problem(n: int, obs: int, noise: float, smooth: float, a_boundary: bool = False,
                    seed: int = 1) -> Problem:
    """``-div(a grad u) = f``: ``u`` observed at ``obs`` random interior points, ``a`` unknown (``a_boundary``:
    known on the boundary, declared face by face so the lift is built from boundary data only)."""
    u, a = Field("u", (x, y)), Field("a", (x, y))
    f = -(sympy.diff(INV_A * INV_U.diff(x), x) + sympy.diff(INV_A * INV_U.diff(y), y))
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0.0, 1.0, (obs, 2))
    vals = sympy.lambdify((x, y), INV_U, "numpy")(pts[:, 0], pts[:, 1]) + noise * rng.standard_normal(obs)
    uobs = coefficient("uobs", (x, y))
    pde = -(sympy.diff(a * u.diff(x), x) + sympy.diff(a * u.diff(y), y)) - f
    dom = Box(UNIT)
    cons = [Constraint([pde] + (smoothness(a, smooth) if smooth else []), dom, n=n, name="pde"),
            Constraint(u, dom.boundary(), n=max(n // 4, 1), name="bc"),
            Constraint(u - uobs, PointSet(pts, {"uobs": vals}), name="data")]
    if a_boundary:
        cons += [Constraint(a - INV_A.subs(v, side), dom.boundary([(k, side)]), n=max(n // 16, 1), name=f"a_{v}{side}")
                 for k, v in enumerate((x, y)) for side in (0, 1)]
    return Problem([u, a], (x, y), cons)


def inverse_model(problem: Problem, single: bool) -> tuple[torch.nn.Module, Problem]:
    """One recommended network per field (``--single-network``: one for both), ``u = 0`` imposed exactly."""
    net = recommended_model(UNIT, 2) if single else FieldNetworks.recommended(problem.fields, problem.coords, UNIT)
    return impose_exactly(problem, net)


def grid_errors(model: torch.nn.Module, exact: dict[str, sympy.Expr], coords: tuple, m: int = 101) -> dict:
    """Relative L2 error of each channel against its closed form on an ``m x m`` grid of the unit square."""
    A, B = np.meshgrid(np.linspace(0, 1, m), np.linspace(0, 1, m), indexing="ij")
    pts = torch.tensor(np.stack([A.ravel(), B.ravel()], 1), dtype=next(model.parameters()).dtype)
    with torch.no_grad():
        v = model(pts).double().numpy()
    out = {}
    for c, (name, expr) in enumerate(exact.items()):
        ref = np.broadcast_to(sympy.lambdify(coords, expr, "numpy")(A, B), A.shape).ravel()
        out[f"rel_l2_{name}"] = float(np.linalg.norm(v[:, c] - ref) / np.linalg.norm(ref))
    return out


def run_case(name: str, args: argparse.Namespace) -> dict:
    """Build, train with ``TrainConfig.recommended(args.evals)``, measure; one case."""
    torch.manual_seed(args.seed)
    if name == "wave":
        model, problem = wave_model(wave_problem(args.points), args.exact_velocity, not args.no_bands)
        exact, coords = {"u": WAVE_U}, (x, t)
    elif name == "heat":
        problem = heat_problem(args.points)
        net = recommended_model(UNIT, 1, problem=None if args.no_bands else problem, data_bands=not args.no_data_bands)
        model, problem = impose_exactly(problem, net)
        exact, coords = {"u": HEAT_U}, (x, t)
    else:
        declared = inverse_problem(args.points, args.obs, args.noise, args.smoothness, args.a_boundary)
        model, problem = inverse_model(declared, args.single_network)
        exact, coords = {"u": INV_U, "a": INV_A}, (x, y)
    history: list[dict] = []

    def evaluate(m: torch.nn.Module, step: int) -> dict:
        e = grid_errors(m, exact, coords)
        history.append(dict(step=step, **e))
        return e

    cpu = time.process_time()
    cfg = TrainConfig.recommended(args.evals)
    if args.max_batches is not None:  # the L-BFGS draws' growth cap (= 3: no growth)
        lb = cfg.phases[1]
        cfg = dataclasses.replace(cfg, phases=(cfg.phases[0], dataclasses.replace(
            lb, max_batches=args.max_batches if args.max_batches > lb.batches else None)))
    if args.gap is not None:  # the growth test's threshold (fresh / fitted loss)
        cfg = dataclasses.replace(cfg, phases=(cfg.phases[0], dataclasses.replace(cfg.phases[1], gap=args.gap)))
    if args.causal and name == "wave":  # causal weights along t (Wang, Sankaran & Perdikaris 2024)
        cfg = dataclasses.replace(cfg, aids=cfg.aids + (Causal("t"),))
    run = train(problem, model, cfg, evaluate=evaluate)
    cpu = time.process_time() - cpu
    out = dict(history[-1], evaluations=run.steps_done, cpu_s=round(cpu, 1),
               after_adam={k: v for k, v in history[0].items() if k != "step"} if len(history) > 1 else None,
               report={k: {kk: vv for kk, vv in r.items() if kk != "alarms"} for k, r in run.report.items()},
               alarms=[str(a) for a in run.alarms], lbfgs_growth=run.history.get("lbfgs_growth"))
    if name == "inverse":
        A, B = np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 1, 101), indexing="ij")
        a = sympy.lambdify((x, y), INV_A, "numpy")(A, B)
        out["rel_l2_best_constant_a"] = float(np.linalg.norm(a - a.mean()) / np.linalg.norm(a))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="wave,heat,inverse", help="comma separated: wave, heat, inverse")
    ap.add_argument("--evals", type=int, default=3000, help="gradient evaluations in all (TrainConfig.recommended)")
    ap.add_argument("--points", type=int, default=1000, help="PDE points per step (conditions: a quarter)")
    ap.add_argument("--obs", type=int, default=300, help="inverse: observed interior points")
    ap.add_argument("--noise", type=float, default=0.0, help="inverse: std of Gaussian noise on the observations")
    ap.add_argument("--smoothness", type=float, default=0.0, help="inverse: Tikhonov weight on |grad a|^2")
    ap.add_argument("--a-boundary", action=argparse.BooleanOptionalAction, default=True,
                    help="inverse: the coefficient known on the boundary (the inflow data that make a unique; "
                         "--no-a-boundary: unknown everywhere)")
    ap.add_argument("--single-network", action="store_true", help="inverse: one network outputs u and a")
    ap.add_argument("--exact-velocity", action="store_true", help="wave: hold the initial velocity exactly too")
    ap.add_argument("--causal", action="store_true", help="wave: causal weights along t (Causal('t'))")
    ap.add_argument("--no-bands", action="store_true",
                    help="wave, heat: default first-layer bands (no balancing by the PDE or the data)")
    ap.add_argument("--no-data-bands", action="store_true",
                    help="heat: bands balanced by the PDE only, not widened to the initial data's frequency")
    ap.add_argument("--max-batches", type=int, default=None,
                    help="cap of the L-BFGS draws' growth in samples (default: the recommended 12; 3: no growth)")
    ap.add_argument("--gap", type=float, default=None,
                    help="fresh / fitted loss above which the L-BFGS draws grow (default: the recommended 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run: 12 evaluations, 64 points, 40 observations")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.evals, args.points, args.obs = 12, 64, 40
    results = {name: run_case(name, args) for name in args.cases.split(",")}
    doc = {"config": vars(args), "threads": torch.get_num_threads(), "results": results}
    print(json.dumps(doc, indent=1))
    return doc


if __name__ == "__main__":
    main()
