"""Benchmark: one training step (forward + residual + loss + backward) per derivative method.

Problems: (a) 2-D Poisson (Laplacian), (b) 2-D complex Helmholtz with PML,
(c) 2+1-D wave equation, (d) 3-D Eikonal ``|grad u| = 1`` (first derivatives
only, the SDF case). Model: SIREN, 256 wide, 3 hidden layers; 8192 points.

Methods, timed in the same process with interleaved repetitions (median of
``--reps``), by default in process CPU seconds on one thread (``--threads``,
``--clock wall`` for elapsed time); the load average at start and end is
recorded in the JSON:

* ``compiled``  - :func:`pinnsiren.compile_residual` on the jet engine (it
  collapses weighted sums of pure second derivatives into one
  forward-Laplacian slot where that saves slots: Poisson, wave);
* ``compiled_bf16`` - the same under
  :func:`pinnsiren.precision.backward_precision` ``("bfloat16")``: the backward's
  products with bfloat16 operands (forward and loss unchanged; the JSON
  gives each method's parameter-gradient difference from nested autograd,
  ``grad_rel_diff_vs_autograd``);
* ``hand_jet``  - :func:`pinnsiren.derivatives` (jet) + a hand-written residual,
  requesting the same derivatives as the compiled residual (a
  :class:`pinnsiren.jet_keys.Laplacian` for Poisson and the wave);
* ``full_jet``  - the hand-written jet requesting every second derivative
  separately (the engine before the collapsed slot);
* ``autograd``  - hand-written residual with nested
  ``torch.autograd.grad(create_graph=True)`` per component (official SIREN way);
* ``torch_func`` - ``vmap(jacfwd(jacrev(f)))`` (torch.func) for the Hessian.

Peak memory: each (problem, method) runs once more in a fresh subprocess
which reads its resident-set high-water mark (``VmHWM``) after building the
model and points and again after one step; the increase is the peak extra
resident memory of the step (forward, residual, loss, backward). torch's CPU
allocator uses malloc, which maps large blocks fresh, so this sees the peak
of the tensors alive at once; it includes allocator slack, the same for
every method.

Also (with ``poisson``): the Poisson step on :func:`pinnsiren.recommended_model`
(a SIREN on normalised coordinates), with the Laplacian request passed
through the wrapper (one collapsed slot inside) vs expanded into pure second
derivatives, and nested autograd (key ``recommended_model_poisson``).

Prints JSON. ``--quick`` uses tiny sizes (smoke test).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import sympy
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import equations  # noqa: E402
from pinnsiren import Field, Siren, compile_residual, derivatives, recommended_model  # noqa: E402
from pinnsiren.jet_keys import Laplacian  # noqa: E402
from pinnsiren.precision import backward_precision  # noqa: E402

PROBLEMS = ("poisson", "helmholtz", "wave", "eikonal")
METHODS = ("compiled", "compiled_bf16", "hand_jet", "full_jet", "autograd", "torch_func")
K_HELM = 20.0
A0, L_PML, S2 = 5.0, 0.5, 1e-4


# ------------------------------------------------------------------ symbolic specs


def spec(problem: str):
    if problem == "poisson":
        x, y = sympy.symbols("x y")
        u = Field("u", (x, y))
        return equations.poisson.poisson(u, sympy.sin(3 * x) * y), [u], (x, y), 1, 2
    if problem == "helmholtz":
        x, y = sympy.symbols("x y")
        u = Field("u", (x, y), complex=True)
        return equations.helmholtz.helmholtz_pml(u, k=K_HELM, m=1), [u], (x, y), 2, 2
    if problem == "eikonal":
        x, y, z = sympy.symbols("x y z")
        u = Field("u", (x, y, z))
        return equations.eikonal.eikonal_residual(u), [u], (x, y, z), 1, 3
    x, y, t = sympy.symbols("x y t")
    u = Field("u", (x, y, t))
    return equations.wave.wave(u, c=1 + x / 4), [u], (x, y, t), 1, 3


# ------------------------------------------------------------------ hand-written residuals (torch)


def _pml(c):
    """e, de/dc for e = 1 - i a0 (max(|c| - 0.5, 0) / L)^2."""
    l = torch.clamp(c.abs() - 0.5, min=0.0)
    e = 1 - 1j * A0 * (l / L_PML) ** 2
    de = -1j * A0 * 2 * l / L_PML**2 * torch.sign(c)
    return e, de


def _source(x):
    r2 = x[:, 0] ** 2 + x[:, 1] ** 2
    return torch.exp(-r2 / (2 * S2)) / (2 * math.pi * S2)


def _assemble(problem, x, D):
    """Residual from a derivative dict D[(channel, multi_index)]."""
    if problem == "poisson":
        return D[0, (2, 0)] + D[0, (0, 2)] - torch.sin(3 * x[:, 0]) * x[:, 1]
    if problem == "eikonal":
        return torch.sqrt(D[0, (1, 0, 0)] ** 2 + D[0, (0, 1, 0)] ** 2 + D[0, (0, 0, 1)] ** 2) - 1
    if problem == "wave":
        c = 1 + x[:, 0] / 4
        return D[0, (0, 0, 2)] - c * c * (D[0, (2, 0, 0)] + D[0, (0, 2, 0)])
    u = torch.complex(D[0, (0, 0)], D[1, (0, 0)])
    ux = torch.complex(D[0, (1, 0)], D[1, (1, 0)])
    uy = torch.complex(D[0, (0, 1)], D[1, (0, 1)])
    uxx = torch.complex(D[0, (2, 0)], D[1, (2, 0)])
    uyy = torch.complex(D[0, (0, 2)], D[1, (0, 2)])
    ex, dex = _pml(x[:, 0])
    ey, dey = _pml(x[:, 1])
    return (ey * (uxx / ex - ux * dex / ex**2) + ex * (uyy / ey - uy * dey / ey**2)
            + ex * ey * K_HELM**2 * u + _source(x))


NEEDS = {
    "poisson": [(0, (2, 0)), (0, (0, 2))],
    "wave": [(0, (2, 0, 0)), (0, (0, 2, 0)), (0, (0, 0, 2))],
    "eikonal": [(0, (1, 0, 0)), (0, (0, 1, 0)), (0, (0, 0, 1))],
    "helmholtz": [(c, a) for c in (0, 1) for a in [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2)]],
}


def residual_autograd(problem, model, x):
    xg = x.detach().requires_grad_(True)
    y = model(xg)
    D = {}
    for c, a in NEEDS[problem]:
        if sum(a) == 0:
            D[c, a] = y[:, c]
    for c in sorted({c for c, _ in NEEDS[problem]}):
        g = torch.autograd.grad(y[:, c].sum(), xg, create_graph=True)[0]
        for c2, a in NEEDS[problem]:
            if c2 != c or sum(a) == 0:
                continue
            k = a.index(max(a))
            if sum(a) == 1:
                D[c, a] = g[:, k]
            else:
                D[c, a] = torch.autograd.grad(g[:, k].sum(), xg, create_graph=True)[0][:, k]
    return _assemble(problem, xg, D)


def residual_torch_func(problem, model, x):
    from torch.func import functional_call, jacfwd, jacrev, vmap

    params = dict(model.named_parameters())

    def f(p):
        return functional_call(model, params, (p[None],))[0]

    needs = NEEDS[problem]
    if any(sum(a) == 2 for _, a in needs):
        H = vmap(jacfwd(jacrev(f)))(x)  # (N, C, d, d)
    D = {}
    if any(sum(a) in (0, 1) for _, a in needs):
        Y = functional_call(model, params, (x,))
        G = vmap(jacrev(f))(x)  # (N, C, d)
    for c, a in needs:
        if sum(a) == 0:
            D[c, a] = Y[:, c]
        elif sum(a) == 1:
            D[c, a] = G[:, c, a.index(1)]
        else:
            k = a.index(2)
            D[c, a] = H[:, c, k, k]
    return _assemble(problem, x, D)


def residual_full_jet(problem, model, x):
    return _assemble(problem, x, derivatives(model, x, NEEDS[problem], method="jet"))


def residual_hand_jet(problem, model, x):
    """The hand-written residual on the forward-Laplacian slot where the equation allows it."""
    if problem == "poisson":
        lap = Laplacian((1.0, 1.0))
        return derivatives(model, x, [(0, lap)], method="jet")[(0, lap)] - torch.sin(3 * x[:, 0]) * x[:, 1]
    if problem == "wave":
        c2 = (1 + x[:, 0] / 4) ** 2
        lap = Laplacian((-c2, -c2, 1.0))  # u_tt - c^2 (u_xx + u_yy) as one slot
        return derivatives(model, x, [(0, lap)], method="jet")[(0, lap)]
    return residual_full_jet(problem, model, x)


def make(problem, width, layers, n, seed=0):
    expr, fields, coords, C, d = spec(problem)
    torch.manual_seed(seed)
    model = Siren(d, C, width, layers)
    x = torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    compiled = compile_residual(expr, fields, coords, engine="jet")
    def compiled_bf16(m, p):  # the precision is read when the forward runs
        with backward_precision("bfloat16"):
            return compiled(m, p)

    fns = {
        "compiled": lambda m, p: compiled(m, p),
        "compiled_bf16": compiled_bf16,
        "hand_jet": lambda m, p: residual_hand_jet(problem, m, p),
        "full_jet": lambda m, p: residual_full_jet(problem, m, p),
        "autograd": lambda m, p: residual_autograd(problem, m, p),
        "torch_func": lambda m, p: residual_torch_func(problem, m, p),
    }
    return model, x, fns, compiled


def step(model, x, fn):
    model.zero_grad(set_to_none=True)
    r = fn(model, x)
    loss = (r.abs() ** 2).mean() if r.is_complex() else (r**2).mean()
    loss.backward()
    return loss.detach()


def check_agreement(problem, width, layers, n):
    """Loss and parameter gradient of every method against nested autograd (relative; float32)."""
    model, x, fns, _ = make(problem, width, layers, min(n, 1024))
    vals, grads = {}, {}
    for m, f in fns.items():
        vals[m] = float(step(model, x, f))
        grads[m] = torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten()
                              for p in model.parameters()])
    ref, gref = vals["autograd"], grads["autograd"]
    return ({m: abs(v - ref) / abs(ref) for m, v in vals.items()},
            {m: float((g - gref).norm() / gref.norm()) for m, g in grads.items()})


def _child(problem, method, width, layers, n, threads):
    torch.set_num_threads(threads)
    model, x, fns, _ = make(problem, width, layers, n)
    before = _hwm_kb()
    step(model, x, fns[method])
    after = _hwm_kb()
    print(json.dumps({"peak_rss_increase_mb": (after - before) / 1024, "rss_before_mb": before / 1024,
                      "rss_after_mb": after / 1024}))


def _hwm_kb() -> int:
    """Peak resident set size of this process (VmHWM, kB).

    ``ru_maxrss`` is not used: Linux carries the parent's high-water mark
    into a forked child, so it would report the benchmark parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_memory(problem, method, width, layers, n, threads):
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", problem, method, "--width", str(width),
         "--layers", str(layers), "--points", str(n), "--threads", str(threads)],
        capture_output=True, text=True, check=True,
    )
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  memory {problem}/{method}: {rec}", file=sys.stderr)
    return rec["peak_rss_increase_mb"]


REC_BOUNDS = [(0.0, 2.0), (-0.5, 0.5)]


def recommended_poisson(width, layers, n, reps, clock, seed=0):
    """The Poisson step on ``recommended_model`` (Normalized SIREN): Laplacian passed through vs expanded.

    ``compiled``: the compiled residual, whose Laplacian request reaches the
    inner SIREN as one collapsed slot; ``compiled_expanded``: the same with
    the wrapper's ``accepts_laplacian`` off (pure second derivatives, as
    before the pass-through); ``autograd``: nested autograd through the
    wrapper's forward. Same points (in the box ``REC_BOUNDS``), interleaved.
    """
    expr, fields, coords, _, _ = spec("poisson")
    torch.manual_seed(seed)
    model = recommended_model(REC_BOUNDS, 1, width, layers)
    lo = torch.tensor([b[0] for b in REC_BOUNDS])
    hi = torch.tensor([b[1] for b in REC_BOUNDS])
    x = lo + (hi - lo) * torch.rand(n, 2, generator=torch.Generator().manual_seed(seed))
    compiled = compile_residual(expr, fields, coords, engine="jet")

    def expanded(m, p):
        m.accepts_laplacian = False
        try:
            return compiled(m, p)
        finally:
            del m.accepts_laplacian

    fns = {"compiled": compiled, "compiled_expanded": expanded,
           "autograd": lambda m, p: residual_autograd("poisson", m, p)}
    losses = {k: float(step(model, x[:256], f)) for k, f in fns.items()}
    times = {k: [] for k in fns}
    for _ in range(reps + 1):  # the first round warms up
        for k, f in fns.items():
            t0 = clock()
            step(model, x, f)
            times[k].append(clock() - t0)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    print(f"recommended poisson: median step seconds {med}", file=sys.stderr)
    return {"model": f"recommended_model({REC_BOUNDS}, hidden_features={width}, hidden_layers={layers})",
            "median_s": med, "speedup_vs_autograd": {k: med["autograd"] / v for k, v in med.items()},
            "expanded_over_passed_through": med["compiled_expanded"] / med["compiled"],
            "loss_rel_diff_vs_autograd": {k: abs(v - losses["autograd"]) / abs(losses["autograd"])
                                          for k, v in losses.items()}}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--points", type=int, default=8192)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadiest on a shared machine)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: process CPU seconds (default; the cost, unaffected by other load); wall: elapsed")
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="skip timings, measure peak memory only")
    ap.add_argument("--child", nargs=2, metavar=("PROBLEM", "METHOD"), help=argparse.SUPPRESS)
    return ap


def _time_problem(problem: str, a: argparse.Namespace, clock) -> dict:
    """Median step seconds of every method on ``problem``, their agreement and (unless --no-memory) peak memory."""
    model, x, fns, compiled = make(problem, a.width, a.layers, a.points)
    times = {m: [] for m in METHODS}
    for m in METHODS:  # warm-up
        step(model, x, fns[m])
    for _ in range(a.reps):
        for m in METHODS:
            t0 = clock()
            step(model, x, fns[m])
            times[m].append(clock() - t0)
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"{problem}: median step seconds {med}", file=sys.stderr)
    agree = check_agreement(problem, a.width, a.layers, a.points)
    entry = {
        "median_s": med,
        "speedup_vs_autograd": {m: med["autograd"] / med[m] for m in METHODS},
        "compiled_over_hand_jet": med["compiled"] / med["hand_jet"],
        "loss_rel_diff_vs_autograd": agree[0],
        "grad_rel_diff_vs_autograd": agree[1],
        "derivatives_requested": [[c, list(a_)] for c, a_ in compiled.needs],
        "laplacians_requested": [[str(w) for w in ws] for ws in compiled.laplacians],
    }
    if not a.no_memory:
        # --quick: one subprocess only, to keep the smoke test fast
        mem_methods = METHODS if not a.quick else (METHODS[0],) if problem == "poisson" else ()
        entry["peak_rss_increase_mb"] = {m: peak_memory(problem, m, a.width, a.layers, a.points, a.threads)
                                         for m in mem_methods}
    return entry


def main(argv=None):
    a = _parser().parse_args(argv)
    if a.quick:
        a.points, a.width, a.layers, a.reps = 64, 16, 1, 2
    if a.child:
        return _child(a.child[0], a.child[1], a.width, a.layers, a.points, a.threads)
    torch.set_num_threads(a.threads)
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    result = {
        "config": {"points": a.points, "width": a.width, "hidden_layers": a.layers, "reps": a.reps,
                   "threads": torch.get_num_threads(), "clock": a.clock, "dtype": "float32", "torch": torch.__version__,
                   "load_average_start": os.getloadavg(),
                   "machine": platform.processor() or platform.machine()},
        "problems": {},
    }
    if a.memory_only:
        for problem in a.problems.split(","):
            result["problems"][problem] = {"peak_rss_increase_mb": {
                m: peak_memory(problem, m, a.width, a.layers, a.points, a.threads) for m in METHODS}}
        print(json.dumps(result, indent=1))
        return result
    for problem in a.problems.split(","):
        result["problems"][problem] = _time_problem(problem, a, clock)
    if "poisson" in a.problems.split(","):
        result["recommended_model_poisson"] = recommended_poisson(a.width, a.layers, a.points, a.reps, clock)
    result["config"]["load_average_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
