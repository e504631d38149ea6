"""Data-parallel training under torchrun: 2 CPU processes (gloo) on a small Poisson problem.

Every run is a subprocess launched as the user would (``python -m
torch.distributed.run --nproc-per-node 2 ...``, cwd = repo root, PYTHONPATH =
repo root, a free port, one thread per process). The driver below is written
to a temporary folder; each rank reports what it saw into a *probe* folder
(apart from the run's output folder, whose writes are audited).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
STEPS = 20
TIMEOUT = 600  # generous: the machine may be loaded; a run takes seconds when idle

DRIVER = textwrap.dedent(
    r"""
    import copy, json, os, signal, sys, time
    import sympy, torch
    from torch import nn
    torch.set_num_threads(1)

    mode, out, probe, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    kill_at = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    RANK = int(os.environ.get("RANK", "0"))
    os.makedirs(probe, exist_ok=True)
    with open(os.path.join(probe, f"pid{RANK}"), "w") as fh:
        fh.write(str(os.getpid()))

    # audit every write-like file-system event below the run's output folder
    OUT = os.path.realpath(out)
    writes = []

    def _under(p):
        try:
            r = os.path.realpath(os.fsdecode(p))
            return r == OUT or r.startswith(OUT + os.sep)
        except (TypeError, ValueError):
            return False

    def audit(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path, m, flags = (list(args) + [None, None])[:3]
            wr = (isinstance(m, str) and any(c in m for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if wr and _under(path):
                writes.append([event, os.fsdecode(path)])
        elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.copyfile") and _under(args[0]):
            writes.append([event, os.fsdecode(args[0])])

    sys.addaudithook(audit)

    from pinnsiren import Box, Constraint, Field, Problem, Siren
    from pinnsiren import distributed
    from pinnsiren.io import write_result
    from pinnsiren.plotting import pyplot, save_figure
    from pinnsiren.geometry import Region
    from pinnsiren.phases import LBFGS, Adam, Checkpoint
    from pinnsiren.train import TrainConfig, train

    SEED, N_IN, N_BC = 7, 64, 32
    x, y = sympy.symbols("x y", real=True)
    u = Field("u", (x, y))
    a = sympy.Symbol("a")
    f = -2 * sympy.pi**2 * sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y)
    BOX = [(-1, 1), (-1, 1)]

    class Union(Region):
        '''Rank 0's and rank 1's draws of ``inner`` concatenated (the single-process check).

        Rank 1's stream ``gen1`` follows the trainer's generator: whenever the trainer
        rewinds its generator (the L-BFGS polish redraws one fixed sample), gen1 is
        rewound to where it stood then, as rank 1's own generator would be.
        '''
        def __init__(self, inner, gen1, seen):
            self.inner, self.gen1, self.seen, self.dim = inner, gen1, seen, inner.dim
        def sample(self, n, step, generator):
            key = generator.get_state().numpy().tobytes()
            if key in self.seen:
                self.gen1.set_state(self.seen[key])
            else:
                self.seen[key] = self.gen1.get_state()
            x0, _ = self.inner.sample(n // 2, step, generator)
            x1, _ = self.inner.sample(n // 2, step, self.gen1)
            return torch.cat([x0, x1]), {}

    def make_problem(union=False):
        gen1, seen = torch.Generator(), {}
        gen1.manual_seed(distributed.seed_for_rank(SEED, 1))
        wrap = (lambda r: Union(r, gen1, seen)) if union else (lambda r: r)
        k = 2 if union else 1
        # Poisson with a learnable source amplitude (exact: a = 1, u = sin(pi x) sin(pi y)),
        # pinned by a few values of the exact solution
        pts = torch.tensor([[0.5, 0.5], [-0.5, 0.25], [0.1, -0.7]], dtype=torch.float64)
        from pinnsiren.regions import PointSet
        import math
        vals = [math.sin(math.pi * p[0]) * math.sin(math.pi * p[1]) for p in pts.tolist()]
        return Problem([u], [x, y], [
            Constraint(sympy.Eq(u.diff(x, 2) + u.diff(y, 2), a * f), wrap(Box(BOX)), n=k * N_IN, name="pde"),
            Constraint(sympy.Eq(u, 0), wrap(Box(BOX).boundary()), n=k * N_BC, name="bc", weight=10.0),
            Constraint(sympy.Eq(u, sympy.Function("g")(x, y)), PointSet(pts, {"g": vals}), name="data"),
        ], parameters={a: nn.Parameter(torch.tensor(0.5, dtype=torch.float64))})

    class Killable:
        '''The problem; with ``kill_at``, rank 0 freezes at that step (after the last checkpoint) and
        tells the test to SIGKILL the job.'''
        def __init__(self, problem):
            self.p = problem
        def learnable_parameters(self):
            return self.p.learnable_parameters()
        def losses(self, model, step, generator):
            if kill_at and step == kill_at and RANK == 0:
                open(os.path.join(probe, "frozen"), "w").close()
                time.sleep(3600)
            return self.p.losses(model, step, generator)

    def model0():
        torch.manual_seed(3)
        return Siren(2, 1, 16, 2).double()

    def params_of(model, problem):
        return {**{k: v.detach().clone() for k, v in model.state_dict().items()},
                "a": problem.learnable_parameters()[0].detach().clone()}

    modes, out0, probe0 = mode.split(","), out, probe
    for mode in modes:  # several single-process modes share one interpreter start
        out = os.path.join(out0, mode) if len(modes) > 1 else out0
        probe = os.path.join(probe0, mode) if len(modes) > 1 else probe0
        os.makedirs(probe, exist_ok=True)
        writes.clear()
        OUT = os.path.realpath(out)
        problem = make_problem(union=(mode == "union"))
        model = model0()
        cfg = TrainConfig(phases=[Adam(steps, lr=1e-3, schedule="cosine")], seed=SEED, log_every=5,
                          checkpoint=Checkpoint(out, every=5, resume=(mode == "resume")), alarm="off")
        # (Killable hides Problem.validate, and alarm="off" skips the alarm's fresh-sample checks:
        # both sample throwaway points, which would move gen1 in Union)
        res = train(Killable(problem), model, cfg)
        torch.save(params_of(res.model, problem), os.path.join(probe, f"params{RANK}.pt"))
        # then an L-BFGS polish (its line search must see the same global loss on every rank)
        train(Killable(problem), res.model, TrainConfig(phases=[LBFGS(4)], seed=SEED, progress=False,
                                                     alarm="off"))
        torch.save(params_of(res.model, problem), os.path.join(probe, f"lbfgs{RANK}.pt"))
        info = dict(resumed_from=res.resumed_from, loss=res.history["loss"], world=distributed.world_size(),
                    process_group=torch.distributed.is_initialized())

        # what a pipeline writes at the end: result file and figure (rank 0 only)
        write_result(os.path.join(out, "result.h5"), kind="test", config=dict(steps=steps), models=dict(model=res.model))
        plt = pyplot()
        fig, ax = plt.subplots()
        ax.plot(res.history["step"], res.history["loss"])
        save_figure(fig, os.path.join(out, "loss.png"))

        if mode == "train" and distributed.world_size() > 1:
            # DDP check: a step's losses as DDP's forward (LossModule) against the explicit all-reduce
            from torch.nn.parallel import DistributedDataParallel as DDP
            import pinnsiren.jet as jet

            dp = distributed.DataParallel("cpu")

            def grads(how):
                m, p = copy.deepcopy(res.model), make_problem()
                g = torch.Generator()
                g.manual_seed(distributed.seed_for_rank(99, RANK))
                params = list(m.parameters()) + p.learnable_parameters()
                if how == "ddp":  # keep the wrapper alive through backward: its reducer owns the hooks
                    ddp = DDP(distributed.LossModule(p, m, p.learnable_parameters()))
                    terms = ddp(1, g)
                elif how == "naive":  # the bare network in DDP, handed to the Problem
                    ddp = DDP(m)
                    terms = p.losses(ddp, 1, g)
                else:
                    terms = p.losses(m, 1, g)
                loss = sum(terms.values())
                loss.backward()
                if how == "allreduce":
                    dp.all_reduce(params, terms, loss)
                return [q.grad.clone() for q in params]

            def no_autograd(*args):
                raise AssertionError("the derivative engine left the jet path")

            fallback, jet.autograd_derivatives = jet.autograd_derivatives, no_autograd
            try:
                g_local, g_all, g_ddp = grads("local"), grads("allreduce"), grads("ddp")
            finally:
                jet.autograd_derivatives = fallback
            g_naive = grads("naive")[:-1]  # nested autograd through DDP's forward; a is not in that DDP
            info["ddp"] = dict(
                max_diff_ddp_vs_allreduce=max(float((p - q).abs().max()) for p, q in zip(g_ddp, g_all)),
                max_diff_ddp_vs_local=max(float((p - q).abs().max()) for p, q in zip(g_ddp, g_local)),
                max_grad=max(float(p.abs().max()) for p in g_all),
                ddp_wrapped_model_takes_jet_path=jet.jet_supported(DDP(copy.deepcopy(res.model))),
                max_diff_naive_ddp_vs_allreduce=max(float((p - q).abs().max()) for p, q in zip(g_naive, g_all)),
            )
            torch.save(g_ddp, os.path.join(probe, f"ddp_grads{RANK}.pt"))

        info["writes"] = writes
        with open(os.path.join(probe, f"info{RANK}.json"), "w") as fh:
            json.dump(info, fh)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                OPENBLAS_NUM_THREADS="1", PINNSIREN_NO_PROGRESS="1")


def _cmd(driver: Path, nproc: int | None, *args) -> list[str]:
    pre = [sys.executable]
    if nproc:
        pre += ["-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
                "--master-port", str(_free_port())]
    return pre + [str(driver), *map(str, args)]


def _run(driver: Path, nproc: int | None, *args) -> None:
    r = subprocess.run(_cmd(driver, nproc, *args), cwd=ROOT, env=_env(), capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]


def _info(probe: Path, rank: int) -> dict:
    return json.loads((probe / f"info{rank}.json").read_text())


def _params(probe: Path, rank: int, what: str = "params") -> dict:
    return torch.load(probe / f"{what}{rank}.pt", weights_only=True)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One uninterrupted 2-process run of STEPS steps (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("dist")
    driver = tmp / "driver.py"
    driver.write_text(DRIVER)
    _run(driver, 2, "train", tmp / "out", tmp / "probe", STEPS)
    return tmp, driver


@pytest.mark.slow
def test_two_ranks_agree_match_the_union_run_and_only_rank0_writes(two_ranks):
    tmp, driver = two_ranks
    probe = tmp / "probe"
    i0, i1 = _info(probe, 0), _info(probe, 1)
    assert i0["world"] == i1["world"] == 2 and i0["process_group"] and i1["process_group"]
    p0, p1 = _params(probe, 0), _params(probe, 1)
    # (a) bit-identical parameters (network and the Problem's learnable amplitude) on both ranks
    for k in p0:
        assert torch.equal(p0[k], p1[k]), k
    l0, l1 = _params(probe, 0, "lbfgs"), _params(probe, 1, "lbfgs")  # after the L-BFGS polish too
    assert all(torch.equal(l0[k], l1[k]) for k in l0)
    assert abs(float(p0["a"]) - 0.5) > 1e-3  # the learnable parameter did train
    # (b) a single-process run on the union of both ranks' points per step: same parameters to float tolerance
    _run(driver, None, "union,plain", tmp / "out_single", tmp / "probe_single", STEPS)
    pu = _params(tmp / "probe_single" / "union", 0)
    assert not _info(tmp / "probe_single" / "union", 0)["process_group"]
    gap = max(float((p0[k] - pu[k]).abs().max()) for k in p0)
    assert gap < 1e-10, gap
    lu = _params(tmp / "probe_single" / "union", 0, "lbfgs")
    assert max(float((l0[k] - lu[k]).abs().max()) for k in l0) < 1e-10
    # ... while rank 0's points alone give another run (the comparison can fail)
    pp = _params(tmp / "probe_single" / "plain", 0)
    assert max(float((p0[k] - pp[k]).abs().max()) for k in p0) > 1e-6
    # the logged loss is the mean over both ranks: the union run's loss
    assert i0["loss"] == pytest.approx(_info(tmp / "probe_single" / "union", 0)["loss"], rel=1e-9)
    # (c) only rank 0 wrote files: checkpoint, result file, figure
    assert i1["writes"] == []
    written = {Path(p).name for _, p in i0["writes"]}  # atomic writers: a temporary file, then a rename
    assert "loss.png" in written and any(n.endswith(".pt.tmp") for n in written)
    assert any(n.endswith(".h5.tmp") for n in written)
    assert sorted(p.name for p in (tmp / "out").iterdir()) == ["checkpoint.pt", "loss.png", "result.h5"]
    ck = torch.load(tmp / "out" / "checkpoint.pt", weights_only=True)
    assert ck["world_size"] == 2 and len(ck["generators"]) == 2
    assert not torch.equal(ck["generators"][0], ck["generators"][1])  # rank-seeded streams


@pytest.mark.slow
def test_ddp_hooks_fire_with_the_jet_engine(two_ranks):
    """The whole step's loss as DDP's forward (LossModule): the jet path is used (nested autograd would
    raise in the driver), DDP's hooks all-reduce every parameter including the Problem's learnable one,
    and the result equals the trainer's explicit all-reduce."""
    tmp, _ = two_ranks
    probe = tmp / "probe"
    for r in (0, 1):
        d = _info(probe, r)["ddp"]
        assert d["max_diff_ddp_vs_allreduce"] <= 1e-12 * d["max_grad"], d
        assert d["max_diff_ddp_vs_local"] > 1e-6 * d["max_grad"], d  # the hooks did communicate
        assert d["ddp_wrapped_model_takes_jet_path"] is False  # why the trainer does not wrap the bare network
        # ... which still gets the right gradients, on the slow nested-autograd path (torch 2.13, gloo)
        assert d["max_diff_naive_ddp_vs_allreduce"] <= 1e-9 * d["max_grad"], d
    g0 = torch.load(probe / "ddp_grads0.pt", weights_only=True)
    g1 = torch.load(probe / "ddp_grads1.pt", weights_only=True)
    assert len(g0) == 9 and all(torch.equal(a, b) for a, b in zip(g0, g1))  # 4 layers x (W, b) + a


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_sigkill_of_the_whole_job_then_resume_gives_the_uninterrupted_result(two_ranks):
    tmp, driver = two_ranks
    out, probe = tmp / "out_killed", tmp / "probe_killed"
    proc = subprocess.Popen(_cmd(driver, 2, "train", out, probe, STEPS, 13), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        t0 = time.monotonic()
        while not (probe / "frozen").exists():  # rank 0 is inside step 13; checkpoint of step 10 is on disk
            assert proc.poll() is None, proc.stderr.read()[-4000:]
            assert time.monotonic() - t0 < TIMEOUT, "the run never reached step 13"
            time.sleep(0.1)
        pids = [int((probe / f"pid{r}").read_text()) for r in (0, 1)]
        _kill([proc.pid] + pids)  # the launcher and both workers, no chance to clean up
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not (probe / "params0.pt").exists()
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 10
    # resume with the same launcher command: both ranks continue from rank 0's checkpoint
    _run(driver, 2, "resume", out, probe, STEPS)
    assert _info(probe, 0)["resumed_from"] == _info(probe, 1)["resumed_from"] == 10
    ref, got0, got1 = _params(tmp / "probe", 0), _params(probe, 0), _params(probe, 1)
    for k in ref:  # bit-identical to the uninterrupted run on both ranks
        assert torch.equal(ref[k], got0[k]) and torch.equal(ref[k], got1[k]), k
    ref, got = _params(tmp / "probe", 0, "lbfgs"), _params(probe, 0, "lbfgs")
    assert all(torch.equal(ref[k], got[k]) for k in ref)


@pytest.mark.slow
def test_cli_pipeline_under_torchrun_writes_once(tmp_path):
    """`torchrun -m pinnsiren solve poisson ...`: both ranks train, rank 0 alone prints and writes."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "pinnsiren", "--", "solve", "poisson", "--steps", "3",
           "--size", "24", "--hidden", "8", "--layers", "1", "--points", "128", "--out", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    assert r.stdout.count("FD least-squares reconstruction") == 1  # rank 1's stdout is muted
    assert sorted(p.name for p in out.iterdir()) == ["poisson.h5", "poisson.png"]


@pytest.mark.slow
def test_benchmark_prints_weak_scaling_json():
    r = subprocess.run([sys.executable, "benchmarks/distributed.py", "--quick"], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-6000:]
    data = json.loads(r.stdout)
    assert set(data["results"]) == {"1", "2"}
    one, two = data["results"]["1"], data["results"]["2"]
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert two["points_per_step"] == 2 * one["points_per_step"]
    assert all(v["steps_per_s"] > 0 and v["final_loss"] == v["final_loss"] for v in (one, two))


# --- in-process checks (no launcher) -----------------------------------------------------------


def test_plain_run_stays_single_process(tmp_path, monkeypatch):
    """No launcher: no process group, the checkpoint has only the single-process keys, rank 0 seeds."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    from pinnsiren import Siren, distributed
    from pinnsiren.phases import Adam, Checkpoint
    from pinnsiren.train import TrainConfig, train

    class Toy:
        def losses(self, model, step, generator):
            x = torch.rand(16, 1, generator=generator) * 2 - 1
            return {"data": torch.mean((model(x)[:, 0] - x[:, 0]) ** 2)}

    torch.manual_seed(0)
    train(Toy(), Siren(1, 1, 8, 1), TrainConfig(phases=[Adam(3)], checkpoint=Checkpoint(str(tmp_path), every=3), progress=False))
    assert not torch.distributed.is_initialized()
    assert distributed.is_writer() and distributed.world_size() == 1
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert sorted(ck) == ["balancer", "extra", "generator", "history", "model", "optimizer", "phase", "scheduler",
                          "step"]
    dp = distributed.DataParallel("cpu")
    terms, loss = {"a": torch.tensor(1.0)}, torch.tensor(1.0)
    assert not dp.active and dp.seed(11) == 11 and dp.all_reduce([], terms, loss) == (terms, loss)


def test_rank_seeds_are_distinct_streams():
    from pinnsiren.distributed import seed_for_rank

    assert seed_for_rank(5, 0) == 5
    seeds = {seed_for_rank(s, r) for s in range(4) for r in range(4)}
    assert len(seeds) == 16  # not seed + r: (0, 1) and (1, 0) differ
    assert seed_for_rank(5, 1) == seed_for_rank(5, 1)


def test_ranks_above_zero_write_nothing(tmp_path, monkeypatch):
    """The central writers are gated on the rank the launcher gives (read from the environment)."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    from pinnsiren.io import atomic_torch_save, write_result
    from pinnsiren.plotting import pyplot, save_figure

    assert write_result(tmp_path / "r" / "x.h5", kind="t", config={}) == tmp_path / "r" / "x.h5"
    atomic_torch_save({"a": 1}, tmp_path / "c" / "checkpoint.pt")
    fig, _ = pyplot().subplots()
    save_figure(fig, tmp_path / "f" / "x.png")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("RANK", "0")
    write_result(tmp_path / "r" / "x.h5", kind="t", config={})
    assert (tmp_path / "r" / "x.h5").exists()


BUDGET_DRIVER = textwrap.dedent(
    r"""
    import json, os, sys, time
    import sympy, torch
    torch.set_num_threads(1)
    from pinnsiren import Box, Constraint, Field, Problem, Siren
    from pinnsiren.phases import Adam
    from pinnsiren.train import TrainConfig, train

    RANK = int(os.environ.get("RANK", "0"))
    x = sympy.Symbol("x")
    u = Field("u", (x,))
    inner = Problem([u], (x,), [Constraint(u - sympy.sin(x), Box([(-1, 1)]), n=32, name="data")])

    class Slow:
        '''The problem, with rank 1 burning 20 ms of CPU per step: its budget runs out first.'''
        def __getattr__(self, name):
            return getattr(inner, name)
        def losses(self, model, step, generator):
            if RANK == 1:
                t = time.process_time()
                while time.process_time() - t < 0.02:
                    pass
            return inner.losses(model, step, generator)

    torch.manual_seed(0)
    cfg = TrainConfig(phases=[Adam(10**6, lr=1e-3, schedule="cosine", cpu_seconds=3.0)], alarm="off",
                      progress=False, log_every=1)
    res = train(Slow(), Siren(1, 1, 8, 1), cfg)
    out = sys.argv[1]
    torch.save({k: v.detach().clone() for k, v in res.model.state_dict().items()}, f"{out}/params{RANK}.pt")
    with open(f"{out}/info{RANK}.json", "w") as fh:
        json.dump({"steps": res.steps_done, "lr": res.history["lr"]}, fh)
    """
)


@pytest.mark.slow
def test_a_cpu_budget_stops_every_rank_at_the_same_step(tmp_path):
    """Each rank's process time differs (here rank 1 burns CPU every step): the budget's fraction is the
    ranks' largest, so both take the same learning rates, stop at the same step and keep equal parameters
    (one rank stopping alone would leave the other waiting in its gradient all-reduce)."""
    driver = tmp_path / "budget.py"
    driver.write_text(BUDGET_DRIVER)
    _run(driver, 2, tmp_path)
    i0, i1 = (json.loads((tmp_path / f"info{r}.json").read_text()) for r in (0, 1))
    assert i0["steps"] == i1["steps"] and 5 <= i0["steps"] < 150  # 3 s at >= 20 ms a step on rank 1
    assert i0["lr"] == i1["lr"] and i0["lr"][-1] < 0.05 * i0["lr"][0]  # the budget decayed the rate on both
    p0, p1 = (torch.load(tmp_path / f"params{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(p0[k], p1[k]) for k in p0)
