"""Trainer: schedules, non-finite diagnostics, SIGKILL + resume."""

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from pinnsiren import Siren
from pinnsiren.phases import LBFGS, Adam, Checkpoint
from pinnsiren.train import NonFiniteLossError, TrainConfig, train

TOY = textwrap.dedent(
    """
    import torch

    class ToyProblem:
        '''Fit u(x) = sin(pi x) on [-1, 1] from fresh random samples.'''

        def __init__(self, poison_at=None):
            self.poison_at = poison_at

        def validate(self, model):
            if model(torch.zeros(1, 1)).shape[1] != 1:
                raise ValueError("toy problem needs 1 channel")

        def losses(self, model, step, generator):
            x = torch.rand(64, 1, generator=generator) * 2 - 1
            data = torch.mean((model(x)[:, 0] - torch.sin(torch.pi * x[:, 0])) ** 2)
            bc = model(torch.tensor([[1.0]]))[0, 0] ** 2
            if self.poison_at is not None and step >= self.poison_at:
                data = data * float("nan")
            return {"data": data, "boundary": bc}
    """
)
exec(TOY)  # defines ToyProblem here too


def test_training_reduces_the_loss_and_records_history():
    torch.manual_seed(0)
    model = Siren(1, 1, 32, 1)
    res = train(ToyProblem(), model, TrainConfig(phases=[Adam(150, lr=1e-3, schedule="cosine")], log_every=10, progress=False))
    h = res.history
    assert h["step"][-1] == 150 and len(h["loss"]) == 15
    assert h["loss"][-1] < 0.02 * h["loss"][0]
    assert h["lr"][-1] == pytest.approx(1e-5, rel=0.05)  # cosine to lr * final_lr_factor
    assert set(h) >= {"loss.data", "loss.boundary"}


def test_lbfgs_polish_lowers_the_loss_further():
    torch.manual_seed(0)
    model = Siren(1, 1, 16, 1)
    res = train(ToyProblem(), model, TrainConfig(phases=[Adam(50, lr=1e-3), LBFGS(30)], log_every=50, progress=False))
    assert res.steps_done == 80
    assert res.history["loss"][-1] < res.history["loss"][-2]


def test_evaluation_hook_builds_error_vs_step_curve():
    torch.manual_seed(0)
    xs = torch.linspace(-1, 1, 101)[:, None]

    def err(model, step):
        with torch.no_grad():
            return {"max_error": float((model(xs)[:, 0] - torch.sin(torch.pi * xs[:, 0])).abs().max())}

    res = train(ToyProblem(), Siren(1, 1, 32, 1), TrainConfig(phases=[Adam(100, lr=1e-3)], eval_every=25, progress=False), evaluate=err)
    assert res.history["eval_step"] == [25, 50, 75, 100]
    assert res.history["max_error"][-1] < res.history["max_error"][0]


def test_non_finite_loss_stops_with_diagnostic():
    with pytest.raises(NonFiniteLossError, match=r"'data' became nan at step 7"):
        train(ToyProblem(poison_at=7), Siren(1, 1, 8, 1), TrainConfig(phases=[Adam(20)], progress=False))


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="must be one of"):
        TrainConfig(phases=[Adam(schedule="linear")])
    with pytest.raises(ValueError, match="folder must be a path"):
        TrainConfig(checkpoint=Checkpoint(None, resume=True))
    with pytest.raises(ValueError, match="CUDA is not available"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is here")
        train(ToyProblem(), Siren(1, 1, 8, 1), TrainConfig(device="cuda"))


SCRIPT = TOY + textwrap.dedent(
    """
    import sys, time
    from pinnsiren import Siren
    from pinnsiren.phases import Adam, Checkpoint
    from pinnsiren.train import TrainConfig, train
    torch.set_num_threads(1)

    class Slow(ToyProblem):
        def losses(self, model, step, generator):
            print(step, flush=True)
            time.sleep(float(sys.argv[3]))
            return super().losses(model, step, generator)

    torch.manual_seed(0)
    res = train(Slow(), Siren(1, 1, 16, 1), TrainConfig(
        phases=[Adam(60, lr=1e-3, schedule="cosine")], checkpoint=Checkpoint(sys.argv[1], every=10, resume=True),
        progress=False, alarm="off"))  # the alarm calls losses() too: keep the printed steps training's
    torch.save({k: v for k, v in res.model.state_dict().items()}, sys.argv[2])
    print("resumed_from", res.resumed_from, flush=True)
    """
)


def test_sigkill_then_resume_continues_from_last_checkpoint(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    # uninterrupted reference run
    ref = subprocess.run([sys.executable, str(script), str(tmp_path / "a"), str(tmp_path / "a.pt"), "0"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ref.returncode == 0, ref.stderr
    # killed run
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "b"), str(tmp_path / "b.pt"),
                             "0.02"], stdout=subprocess.PIPE, text=True, env=env)
    seen = 0
    for line in proc.stdout:
        seen = int(line.split()[0])
        if seen >= 35:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "b" / "checkpoint.pt").exists()
    assert not (tmp_path / "b.pt").exists()
    assert not list((tmp_path / "b").glob("*.tmp"))
    again = subprocess.run([sys.executable, str(script), str(tmp_path / "b"), str(tmp_path / "b.pt"), "0"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    steps = [int(s.split()[0]) for s in again.stdout.splitlines() if s[0].isdigit()]
    resumed_from = int(again.stdout.split("resumed_from")[1])
    assert resumed_from in (30, 40) and steps[0] == resumed_from + 1 and steps[-1] == 60
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    for k in a:  # bit-identical to the uninterrupted run: nothing lost but the steps redone
        assert torch.equal(a[k], b[k]), k


class _LaplacianProblem:
    """u_xx + u_yy = -2 pi^2 sin(pi x) sin(pi y) on fresh points (the jet's collapsed slot, fused path)."""

    def __init__(self):
        self.seen = []

    def losses(self, model, step, generator):
        from pinnsiren import jet, jet_keys, precision

        self.seen.append(precision._BACKWARD_LOWP)
        x = torch.rand(256, 2, generator=generator) * 2 - 1
        lap = jet_keys.Laplacian((1.0, 1.0))
        L = jet.derivatives(model, x, [(0, lap)], method="jet")[0, lap]
        f = -2 * math.pi**2 * torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])
        return {"pde": ((L - f) ** 2).mean()}


def test_backward_precision_reaches_the_steps_and_is_restored():
    """TrainConfig.backward_precision: active in both phases' steps, the same first
    loss (the forward is unchanged), training as effective, and reset after."""
    from pinnsiren import precision as prec

    runs = {}
    for precision in ("full", "bfloat16"):
        torch.manual_seed(0)
        problem = _LaplacianProblem()
        cfg = TrainConfig(phases=[Adam(60, lr=1e-3), LBFGS(10)], log_every=1, progress=False, alarm="off",
                          backward_precision=precision)
        res = train(problem, Siren(2, 1, 32, 2), cfg)
        runs[precision] = res.history["loss"]
        expected = torch.bfloat16 if precision == "bfloat16" else None
        assert problem.seen and all(s is expected for s in problem.seen)
        assert prec._BACKWARD_LOWP is None
    assert runs["full"][0] == runs["bfloat16"][0]
    full, bf = runs["full"], runs["bfloat16"]
    assert full[59] < 0.6 * full[0] and bf[59] < 0.6 * bf[0]
    for k in (10, 30, 59):  # the Adam phase: measured within 0.3 % of each other
        assert bf[k] == pytest.approx(full[k], rel=0.03), k
    assert full[-1] < 0.3 * full[59] and bf[-1] < 0.3 * bf[59]  # L-BFGS: both descend (measured 9.1, 6.0 from 97)
    with pytest.raises(ValueError, match="backward_precision"):
        TrainConfig(backward_precision="half")


def test_backward_precision_without_a_fused_layer_warns():
    """A run that asks for bfloat16 products but never reaches a fused SIREN layer
    (here: no derivatives at all) is told so; one that reaches them is not."""
    import warnings

    cfg = dict(phases=[Adam(5, lr=1e-3)], progress=False, alarm="off", backward_precision="bfloat16")
    with pytest.warns(UserWarning, match="had no effect"):
        train(ToyProblem(), Siren(1, 1, 8, 1), TrainConfig(**cfg))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*had no effect.*")
        train(_LaplacianProblem(), Siren(2, 1, 16, 2), TrainConfig(**cfg))
