"""``pinnsiren fwi``: simulate (or read) data -> IR-WRI (ADMM), adjoint-state, and three neural FWIs.

Neural methods: PINN-FWI on the total field (the paper's joint network),
PINN-FWI on the scattered field (``solvers.fwi.fwi_neural``, ``formulation``), and
neural-reparameterised FWI (``solvers.fwi.fwi_reparam``: SIREN velocity, FD
wavefields, adjoint gradients chained by autograd). The scattered variant skips
stage 1: its network starts at the exact stage-1 solution ``us = 0``, ``m = 1``.

Writes ``<out>/fwi.h5`` (true and recovered models, wavefields, receiver data
and fits, histories), ``<out>/fwi.png`` (layout of paper Fig. 5, right) and
prints a table: velocity MSE vs the truth (over the physical region
``|x|_inf <= 0.5``) and the relative receiver misfit of each method.

The receiver misfit of a method is ``||P A(m_rec)^{-1} b - d|| / ||d||`` on the
inversion grid (the recovered model pushed through the FD solver), the same
yardstick for all three; for the SIREN the misfit of its own wavefields at the
receivers is reported as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # imported where used: they import torch
    from .fwi_neural import NeuralFWIConfig
    from .fwi_reparam import ReparamFWIConfig

__all__ = ["FWIPreset", "FWISettings", "QUICK", "FULL", "add_arguments", "main", "run_fwi", "format_table",
           "plot_fwi_figure"]


@dataclass(frozen=True)
class FWIPreset:
    """The settings ``fwi --quick`` and the full run set differently; a flag given on the command line wins.

    Field names are flag destinations: the pipeline's own (``n``,
    ``admm_iters``, ``adjoint_iters``), the PINN-FWI ones by their
    :class:`~solvers.fwi.fwi_neural.NeuralFWIConfig` field name, the
    neural-reparameterised ones by ``reparam_`` and their
    :class:`~solvers.fwi.fwi_reparam.ReparamFWIConfig` field name.
    """

    n: int
    admm_iters: int
    adjoint_iters: int
    pretrain_steps: int
    fwi_steps: int
    hidden: int
    layers: int
    batch: int
    reparam_iterations: int


#: ``fwi --quick``: CPU-sized (a few minutes on 2 cores)
QUICK = FWIPreset(n=81, admm_iters=20, adjoint_iters=30, pretrain_steps=800, fwi_steps=800, hidden=128, layers=3,
                  batch=500, reparam_iterations=500)
#: the full run
FULL = FWIPreset(n=101, admm_iters=30, adjoint_iters=50, pretrain_steps=20000, fwi_steps=10000, hidden=256, layers=4,
                 batch=3000, reparam_iterations=1000)
#: table row name -> key in fwi.h5
METHOD_KEYS = {"uniform start": "start", "ADMM (IR-WRI)": "admm", "adjoint-state": "adjoint",
               "PINN-FWI total (paper)": "neural", "PINN-FWI scattered": "neural_scattered",
               "neural-reparameterised": "reparam"}
#: configuration fields the pipeline sets itself: one seed and one device for every method, the PINN's
#: m bounds from the inversion problem, its formulation from --formulations
PINN_OWN = ("seed", "device", "m_bounds", "formulation")
REPARAM_OWN = ("seed", "device")
ALL_METHODS = ["admm", "adjoint", "pinn-total", "pinn-scattered", "reparam"]
#: the flags ``pinnsiren fwi --help`` shows (``--help-all``: every flag)
HELP_FLAGS = ("--model", "--quick", "--out", "--data", "--methods", "--seed", "--device")


@dataclass
class FWISettings:
    """The settings of one ``pinnsiren fwi`` run (``_settings`` makes them from the flags; see ``add_arguments``
    for each one's meaning): the pipeline's own, and the PINN-FWI (``pinn``) and neural-reparameterised
    (``reparam``) configurations."""

    pinn: NeuralFWIConfig
    reparam: ReparamFWIConfig
    model: str = "circle"
    n: int = FULL.n
    n_data: int = 2 * FULL.n - 1
    admm_iters: int = FULL.admm_iters
    adjoint_iters: int = FULL.adjoint_iters
    lam_rel: float = 0.1
    tv: float = 1.0
    snr: float | None = None
    seed: int = 0
    device: str = "cpu"
    quick: bool = False
    source_var: float | None = None
    data: str | None = None
    skip_neural: bool = False
    skip_pinn: bool = False
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS))
    formulations: list[str] = field(default_factory=lambda: ["total", "scattered"])


def _preset_flags(cls: type, prefix: str = "") -> tuple[dict[str, None], dict[str, str]]:
    """``(defaults, extra_help)`` of the flags of ``cls`` that have a preset: default ``None`` (= the preset)."""
    head = f"{prefix}_" if prefix else ""
    quick, full = dataclasses.asdict(QUICK), dataclasses.asdict(FULL)
    names = [f.name for f in dataclasses.fields(cls) if head + f.name in quick]
    return ({n: None for n in names}, {n: f"[quick {quick[head + n]}, full {full[head + n]}]" for n in names})


def add_arguments(p: argparse.ArgumentParser) -> None:
    from pinnsiren.networks import ARCHITECTURES
    from pinnsiren.settings import add_flags
    from pinnsiren.phases import SCHEDULES
    from reference.fwi import model_names

    from .fwi_neural import M_PARAMS, NeuralFWIConfig  # deferred: torch
    from .fwi_reparam import ReparamFWIConfig  # deferred: torch

    p.add_argument("--model", default="circle", choices=model_names(), help="true velocity model (default circle)")
    p.add_argument("--quick", action="store_true", help="CPU-sized run (a few minutes on 2 cores)")
    p.add_argument("--out", default="results/fwi", help="output folder (default results/fwi)")
    p.add_argument("--n", type=int, default=None, help="inversion grid points per axis (quick 81, full 101)")
    p.add_argument("--n-data", type=int, default=None, help="data grid points per axis (default 2n-1: no inverse crime)")
    p.add_argument("--snr", "--noise-snr", dest="snr", type=float, default=None,
                   help="add complex Gaussian noise at this SNR in dB (to simulated or file data)")
    p.add_argument("--data", default=None, metavar="FILE.mat",
                   help="invert the paper's data file (e.g. ../shared/data/siren/data_cylinder_5.mat; its geometry, "
                        "its receiver values divided by -(1+i)); the truth for the velocity MSE is then `circle`")
    p.add_argument("--seed", type=int, default=0, help="noise and network seed (every method)")
    p.add_argument("--admm-iters", type=int, default=None, help="IR-WRI iterations (quick 20, full 30)")
    p.add_argument("--lam-rel", type=float, default=0.1, help="IR-WRI wave-equation penalty (relative, default 0.1)")
    p.add_argument("--tv", type=float, default=1.0, help="IR-WRI TV split-Bregman weight (0 = none, default 1)")
    p.add_argument("--adjoint-iters", type=int, default=None,
                   help="adjoint-state L-BFGS-B iterations (quick 30, full 50)")
    p.add_argument("--source-var", type=float, default=None,
                   help="variance of the Gaussian sources (default 1e-4, the paper's; data and all methods use it)")
    p.add_argument("--skip-neural", action="store_true", help="run only the two reference methods")
    p.add_argument("--skip-pinn", action="store_true", help="skip the two PINN-FWI variants (keep reparameterised)")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated subset of {', '.join(ALL_METHODS)} (default all; the uniform start is "
                        "always listed)")
    p.add_argument("--formulations", default="total,scattered",
                   help="PINN-FWI formulations to run: total (paper), scattered, or both (default)")
    p.add_argument("--no-figure", action="store_true", help="do not draw fwi.png")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the neural methods)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: small batches on a shared CPU run ~20x slower with more)")
    defaults, extra = _preset_flags(NeuralFWIConfig)
    add_flags(p.add_argument_group("PINN-FWI (solvers.fwi.fwi_neural.NeuralFWIConfig)"), NeuralFWIConfig,
              skip=PINN_OWN, defaults=defaults, extra_help=extra, choices={"m_param": M_PARAMS, "arch": ARCHITECTURES, "schedule": SCHEDULES})
    defaults, extra = _preset_flags(ReparamFWIConfig, "reparam")
    add_flags(p.add_argument_group("neural-reparameterised FWI (solvers.fwi.fwi_reparam.ReparamFWIConfig)"),
              ReparamFWIConfig, prefix="reparam", skip=REPARAM_OWN,
              defaults={**defaults, "max_evals": None},
              extra_help={**extra, "max_evals": "[here: 1.2 iterations + 20]"},
              choices={"arch": ARCHITECTURES, "param": ("velocity", "slowness"), "optimizer": ("lbfgs", "adam")})


def _settings(args: argparse.Namespace) -> FWISettings:
    """The run's settings from the flags; every flag left unset takes the ``--quick``/full preset."""
    from pinnsiren.settings import from_args

    from .fwi_neural import NeuralFWIConfig  # deferred: torch
    from .fwi_reparam import ReparamFWIConfig  # deferred: torch

    ns = argparse.Namespace(**{k: v for k, v in vars(args).items() if v is not None})
    for k, v in dataclasses.asdict(QUICK if args.quick else FULL).items():
        setattr(ns, k, getattr(ns, k, v))
    pinn = from_args(NeuralFWIConfig, ns, seed=args.seed, device=args.device)
    if isinstance(pinn.source_weight, str) and pinn.source_weight != "auto":
        raise ValueError(f"fwi --source-weight: a number or auto, got {pinn.source_weight!r}")
    reparam = from_args(ReparamFWIConfig, ns, prefix="reparam", seed=args.seed, device=args.device)
    if getattr(ns, "reparam_max_evals", None) is None:
        reparam.max_evals = int(1.2 * reparam.iterations) + 20
    methods = getattr(args, "methods", None)
    methods = list(ALL_METHODS) if not methods else [m.strip() for m in methods.split(",") if m.strip()]
    bad_m = [m for m in methods if m not in ALL_METHODS]
    if bad_m:
        raise ValueError(f"fwi --methods: unknown {bad_m}; choose from {ALL_METHODS}")
    forms = [f.strip() for f in str(getattr(args, "formulations", "total,scattered")).split(",") if f.strip()]
    bad = [f for f in forms if f not in ("total", "scattered")]
    if bad:
        raise ValueError(f"fwi --formulations: unknown {bad}; use total, scattered or total,scattered")
    s = FWISettings(pinn=pinn, reparam=reparam, n=ns.n, n_data=args.n_data or 2 * ns.n - 1, admm_iters=ns.admm_iters,
                    adjoint_iters=ns.adjoint_iters, skip_pinn=bool(getattr(args, "skip_pinn", False)),
                    methods=methods, formulations=forms,
                    **{k: getattr(args, k) for k in ("model", "snr", "seed", "lam_rel", "tv", "skip_neural", "device",
                                                     "quick", "source_var", "data")})
    if s.n < 21 or s.n_data < s.n:
        raise ValueError(f"fwi: need n >= 21 and n_data >= n, got n={s.n}, n_data={s.n_data}")
    return s


def run_fwi(s: FWISettings, progress: bool = True) -> dict[str, Any]:
    """Run the whole chain with settings ``s`` (as ``_settings`` makes them from the flags); returns everything
    for the file/figure."""
    from reference.fwi import InversionProblem, admm_fwi, adjoint_fwi, model_mse, velocity_model

    t = time.perf_counter()
    acq, obs = _observed_data(s)
    t_sim = time.perf_counter() - t
    pb = InversionProblem(acq, obs.d, n=s.n)
    X, Y = pb.op.grid.coords()
    c_true = velocity_model(s.model)(X, Y).astype(float)

    def mse(m_full: np.ndarray) -> dict[str, float]:
        return {"velocity_mse": model_mse(1 / np.sqrt(m_full), c_true, (X, Y))}

    def free(m_full: np.ndarray) -> np.ndarray:
        return m_full[1:-1, 1:-1].ravel()[pb.free]

    out: dict[str, Any] = {"acq": acq, "obs": obs, "grid": pb.op.grid, "c_true": c_true, "methods": {}}
    start = pb.m_full(pb.start())
    out["methods"]["uniform start"] = dict(m=start, mse=mse(start)["velocity_mse"],
                                           misfit=pb.data_misfit(pb.start()), seconds=0.0, cpu_seconds=0.0)
    run = s.methods
    if "admm" in run:
        c0 = time.process_time()
        r = admm_fwi(pb, iterations=s.admm_iters, lam_rel=s.lam_rel, tv=s.tv, callback=mse)
        out["methods"]["ADMM (IR-WRI)"] = dict(m=r.m, waves=r.wavefields, mse=mse(r.m)["velocity_mse"],
                                              misfit=pb.data_misfit(free(r.m)), seconds=r.seconds,
                                              cpu_seconds=time.process_time() - c0, history=r.history)
    if "adjoint" in run:
        c0 = time.process_time()
        r2 = adjoint_fwi(pb, iterations=s.adjoint_iters, callback=mse)
        out["methods"]["adjoint-state"] = dict(m=r2.m, waves=r2.wavefields, mse=mse(r2.m)["velocity_mse"],
                                              misfit=pb.data_misfit(free(r2.m)), seconds=r2.seconds,
                                              cpu_seconds=time.process_time() - c0, history=r2.history)
    forms = [f for f in s.formulations if f"pinn-{f}" in run]
    if not s.skip_neural and not s.skip_pinn and forms:
        for form in forms:
            name = "PINN-FWI total (paper)" if form == "total" else "PINN-FWI scattered"
            out["methods"][name] = _pinn_method(s, form, acq, obs, pb, mse, free, progress)
    if not s.skip_neural and "reparam" in run:
        out["methods"]["neural-reparameterised"] = _reparam_method(s, pb, mse, free)
    out["seconds_simulate"] = t_sim
    return out


def _observed_data(s: FWISettings) -> tuple[Any, Any]:
    """The acquisition and the observed data: simulated on the ``n_data`` grid, or the paper's file."""
    from reference.fwi import Acquisition, simulate_data, slowness_model

    kw = {} if s.source_var is None else {"source_var": s.source_var}
    if not s.data:
        acq = Acquisition.paper(**kw)
        return acq, simulate_data(acq, slowness_model(s.model), n=s.n_data, snr_db=s.snr, seed=s.seed)
    from reference.fwi import add_noise, load_paper_data

    if s.model != "circle":
        raise ValueError(f"fwi --data: the paper's data file is the `circle` model; drop --model {s.model}.")
    acq, d_file = load_paper_data(s.data, **kw)
    obs = simulate_data(acq, slowness_model("circle"), n=s.n_data)  # true wavefields for the figure
    sim_vs_file = float(np.linalg.norm(obs.d_clean - d_file) / np.linalg.norm(d_file))
    obs.d_clean = d_file
    obs.d = d_file if s.snr is None else add_noise(d_file, s.snr, s.seed)
    obs.params.update(data_file=str(s.data), data_convention="file rec_val / (-(1+1j))",
                      data_vs_our_simulation=sim_vs_file)
    return acq, obs


def _pinn_method(s: FWISettings, form: str, acq: Any, obs: Any, pb: Any, mse: Callable, free: Callable,
                 progress: bool) -> dict[str, Any]:
    """PINN-FWI in formulation ``form`` (total: the paper; scattered), evaluated on the inversion grid."""
    from reference import GridField

    from .fwi_neural import evaluate_model, neural_fwi  # deferred: torch

    X, Y = pb.op.grid.coords()
    c0 = time.process_time()
    cfg = dataclasses.replace(s.pinn, m_bounds=tuple(pb.m_bounds), formulation=form)
    if form == "scattered":  # stage 1 is solved exactly at the start (us = 0, m = 1)
        cfg.pretrain_steps = 0
    rn = neural_fwi(acq, obs.d, cfg, progress=progress)
    m_nn, waves_nn = evaluate_model(rn.model, rn.m_fn, (X, Y), acq.n_sources, background=rn.background)
    m_nn = np.clip(m_nn, *pb.m_bounds)
    d_nn = np.stack([GridField(pb.op.grid, waves_nn[i]).sample(acq.receivers) for i in range(acq.n_sources)], 1)
    hist = {f"pretrain/{k}": v for k, v in rn.history_pretrain.items()}
    hist.update({f"fwi/{k}": v for k, v in rn.history_fwi.items()})
    return dict(m=m_nn, waves=waves_nn, mse=mse(m_nn)["velocity_mse"], misfit=pb.data_misfit(free(m_nn)),
                misfit_own=float(np.linalg.norm(d_nn - obs.d) / np.linalg.norm(obs.d)),
                seconds=rn.seconds_pretrain + rn.seconds_fwi, cpu_seconds=time.process_time() - c0, history=hist,
                model=rn.model, config=rn.config)


def _reparam_method(s: FWISettings, pb: Any, mse: Callable, free: Callable) -> dict[str, Any]:
    """Neural-reparameterised FWI (solvers.fwi.fwi_reparam)."""
    from .fwi_reparam import reparam_fwi  # deferred: torch

    rr = reparam_fwi(pb, dataclasses.replace(s.reparam), callback=mse)
    return dict(m=rr.m, waves=rr.wavefields, mse=mse(rr.m)["velocity_mse"], misfit=pb.data_misfit(free(rr.m)),
                seconds=rr.seconds, cpu_seconds=rr.cpu_seconds, history=rr.history, model=rr.model,
                config=rr.config)


def format_table(res: dict[str, Any]) -> str:
    """Markdown table of velocity MSE, receiver misfit, wall and CPU time per method."""
    base = res["methods"]["uniform start"]["mse"]
    lines = ["| method | velocity MSE | vs start | receiver misfit (FD of m) | own-wavefield misfit | wall (s) "
             "| CPU (s) |", "|---|---|---|---|---|---|---|"]
    for name, m in res["methods"].items():
        own = f"{m['misfit_own']:.3f}" if "misfit_own" in m else "-"
        lines.append(f"| {name} | {m['mse']:.5f} | {m['mse'] / base:.2f} | {m['misfit']:.3f} | {own} | "
                     f"{m['seconds']:.1f} | {m.get('cpu_seconds', 0.0):.1f} |")
    return "\n".join(lines)


def plot_fwi_figure(res: dict[str, Any], path: str | Path) -> Path:
    """Paper Fig. 5 (right) layout: velocities (true, ADMM, SIREN/adjoint) over wavefield real parts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acq, grid = res["acq"], res["grid"]
    ext = [grid.bounds[0][0], grid.bounds[0][1], grid.bounds[1][0], grid.bounds[1][1]]
    methods = [k for k in ("ADMM (IR-WRI)", "neural-reparameterised", "PINN-FWI total (paper)", "PINN-FWI scattered",
                           "adjoint-state") if k in res["methods"]]
    ncol = 1 + len(methods)
    fig, ax = plt.subplots(2, ncol, figsize=(3.2 * ncol, 6.4), squeeze=False)
    vel = [("true velocity", res["c_true"])] + [(k, 1 / np.sqrt(res["methods"][k]["m"])) for k in methods]
    from reference import GridField

    true_w = res["obs"].wavefields[0]
    pts = np.stack([c.ravel() for c in grid.coords()], 1)
    tw = GridField(res["obs"].grid, true_w).sample(pts).reshape(grid.shape)
    waves = [("true wavefield (src 1)", tw)] + [(k, res["methods"][k]["waves"][0]) for k in methods]
    vmin, vmax = float(res["c_true"].min()), float(res["c_true"].max())
    wmax = float(np.abs(tw.real).max())
    for j, (title, c) in enumerate(vel):
        im = ax[0, j].imshow(c.T, origin="lower", extent=ext, cmap="viridis", vmin=vmin, vmax=vmax)
        mse = "" if j == 0 else f"\nMSE {res['methods'][title]['mse']:.4f}"
        ax[0, j].set_title(f"{title}{mse}", fontsize=9)
    fig.colorbar(im, ax=ax[0, :].tolist(), shrink=0.8, label="velocity")
    for j, (title, w) in enumerate(waves):
        im2 = ax[1, j].imshow(w.real.T, origin="lower", extent=ext, cmap="RdBu_r", vmin=-wmax, vmax=wmax)
        ax[1, j].set_title(f"Re u: {title}", fontsize=9)
    fig.colorbar(im2, ax=ax[1, :].tolist(), shrink=0.8, label="Re u")
    for a in ax.ravel():
        a.scatter(acq.receivers[:, 0], acq.receivers[:, 1], s=6, c="tab:blue", label="receivers")
        a.scatter(acq.sources[1:, 0], acq.sources[1:, 1], s=10, c="tab:red", label="sources")
        a.scatter(acq.sources[:1, 0], acq.sources[:1, 1], s=14, c="tab:green", label="source 1 (shown)")
        a.set_xticks([])
        a.set_yticks([])
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write(res: dict[str, Any], s: FWISettings, path: Path) -> Path:
    from pinnsiren.io import write_result

    fields: dict[str, Any] = {"velocity_true": res["c_true"], "data_observed": res["obs"].d,
                              "data_clean": res["obs"].d_clean, "receivers": res["acq"].receivers,
                              "sources": res["acq"].sources, "wavefields_true_datagrid": res["obs"].wavefields}
    metrics: dict[str, float] = {"seconds_simulate": res["seconds_simulate"]}
    history: dict[str, Any] = {}
    models = {}
    for name, m in res["methods"].items():
        key = METHOD_KEYS[name]
        fields[f"m_{key}"] = m["m"]
        fields[f"velocity_{key}"] = 1 / np.sqrt(m["m"])
        if "waves" in m:
            fields[f"wavefields_{key}"] = m["waves"]
        metrics[f"{key}/velocity_mse"] = m["mse"]
        metrics[f"{key}/receiver_misfit"] = m["misfit"]
        metrics[f"{key}/seconds"] = m["seconds"]
        metrics[f"{key}/cpu_seconds"] = m.get("cpu_seconds", 0.0)
        if "misfit_own" in m:
            metrics[f"{key}/receiver_misfit_own_wavefields"] = m["misfit_own"]
        for hk, hv in m.get("history", {}).items():
            history[f"{key}.{hk.replace('/', '.')}"] = np.asarray(hv, dtype=float)
        if "model" in m:
            models[key] = m["model"]
    bounds = [list(b) for b in res["grid"].bounds]
    attrs = {k: {"bounds": bounds} for k in fields if k.startswith(("m_", "velocity_", "wavefields_")) and "datagrid" not in k}
    attrs["wavefields_true_datagrid"] = {"bounds": [list(b) for b in res["obs"].grid.bounds]}
    config = dict(dataclasses.asdict(s), acquisition=res["acq"].to_dict(), data=res["obs"].params)
    return write_result(path, kind="fwi", config=config, metrics=metrics, history=history, fields=fields,
                        field_attrs=attrs, models=models)


def main(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    s = _settings(args)
    t0 = time.perf_counter()
    res = run_fwi(s)
    from pinnsiren.distributed import is_writer

    out = Path(args.out)
    if is_writer():  # under torchrun rank 0 alone writes (write_result is gated itself)
        out.mkdir(parents=True, exist_ok=True)
    h5 = _write(res, s, out / "fwi.h5")
    print(f"FWI on model {s.model!r}: inversion grid {s.n}^2, data grid {s.n_data}^2, k = {res['acq'].k:g}, "
          f"{res['acq'].n_sources} sources, {res['acq'].n_receivers} receivers, SNR {s.snr or 'inf'} dB")
    if s.data:
        print(f"data: {s.data} (rec_val / -(1+i)); our {s.n_data}^2 simulation of `circle` differs from it by "
              f"{res['obs'].params['data_vs_our_simulation']:.3f} relative L2")
    print(format_table(res))
    if not args.no_figure and is_writer():
        print(f"figure: {plot_fwi_figure(res, out / 'fwi.png')}")
    print(f"result: {h5}  (total {time.perf_counter() - t0:.1f} s)")
    return 0
