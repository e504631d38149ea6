"""The trainer's parts (pinnsiren.phases): each refuses a bad setting by name; phases run in order, resume
across them, and adaptive sampling never touches the user's problem."""

import math

import pytest
import sympy
import torch

from pinnsiren import Box, Constraint, Field, Problem, Siren
from pinnsiren.phases import LBFGS, RAD, Adam, Causal, Checkpoint, GradNorm, part_dict
from pinnsiren.train import TrainConfig, train


class Fit:
    """Fit sin(pi x) on [-1, 1] from fresh samples; counts the calls."""

    def __init__(self):
        self.calls = 0

    def losses(self, model, step, generator):
        self.calls += 1
        x = torch.rand(64, 1, generator=generator) * 2 - 1
        return {"data": torch.mean((model(x)[:, 0] - torch.sin(math.pi * x[:, 0])) ** 2)}


@pytest.mark.parametrize("make,match", [
    (lambda: Adam(lr=0), "Adam: lr must be positive"),
    (lambda: Adam(steps=-1), "Adam: steps must be >= 0"),
    (lambda: Adam(schedule="linear"), "unknown schedule"),
    (lambda: Adam(final_lr_factor=0), "final_lr_factor"),
    (lambda: Adam(grad_clip=0), "grad_clip"),
    (lambda: Adam(sampler="rad"), "sampler must be RAD"),
    (lambda: LBFGS(draw_every=-1), "LBFGS: draw_every"),
    (lambda: LBFGS(batches=0), "LBFGS: batches"),
    (lambda: LBFGS(draw_every=10, batches=3, max_batches=2), "LBFGS: max_batches"),
    (lambda: LBFGS(batches=1, max_batches=4), "max_batches needs draw_every"),
    (lambda: LBFGS(draw_every=10, max_batches=4, gap=1.0), "LBFGS: gap"),
    (lambda: RAD(pool=0), "RAD: pool"),
    (lambda: RAD(every=0), "RAD: every"),
    (lambda: GradNorm(momentum=1.0), "GradNorm: momentum"),
    (lambda: Causal(bins=0), "Causal: bins"),
    (lambda: Checkpoint("", every=1), "folder"),
    (lambda: TrainConfig(phases=[{"steps": 3}]), "is not a phase"),
    (lambda: TrainConfig(aids=["gradnorm"]), "is not an aid"),
    (lambda: TrainConfig(aids=[GradNorm(), GradNorm(every=5)]), "each kind of aid once"),
    (lambda: TrainConfig(alarm="loud"), "unknown alarm"),
    (lambda: TrainConfig(backward_precision="half"), "unknown backward_precision"),
    (lambda: TrainConfig(log_every=0), "log_every"),
    (lambda: TrainConfig(checkpoint="ck"), "Checkpoint"),
])
def test_parts_refuse_bad_settings_by_name(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_part_dict_names_every_part():
    d = part_dict(LBFGS(5, sampler=RAD(pool=2)))
    assert d == {"kind": "LBFGS", "steps": 5, "draw_every": 0, "batches": 1, "float64": False,
                 "max_batches": None, "gap": 10.0, "sampler": {"kind": "RAD", "every": 100, "pool": 2, "k": 1.0, "c": 1.0}}


def test_three_phases_run_in_order_with_one_step_count():
    torch.manual_seed(0)
    prob = Fit()
    cfg = TrainConfig(phases=[Adam(20, lr=1e-3), LBFGS(10), Adam(10, lr=1e-4)], log_every=1, progress=False,
                      alarm="off")
    res = train(prob, Siren(1, 1, 16, 1, first_omega_0=3.0), cfg)
    h = res.history
    assert res.steps_done == 40 and prob.calls == 40
    assert h["step"] == list(range(1, 41))  # one count over the phases
    lr = h["lr"]
    assert lr[:20] == [1e-3] * 20 and all(math.isnan(v) for v in lr[20:30]) and lr[30:] == [1e-4] * 10
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert res.config["phases"][2] == part_dict(Adam(10, lr=1e-4))


def test_resume_skips_the_finished_adam_phase_and_runs_the_lbfgs_one(tmp_path):
    torch.manual_seed(0)
    ck = Checkpoint(str(tmp_path), every=5)
    first = train(Fit(), Siren(1, 1, 16, 1), TrainConfig(phases=[Adam(10, lr=1e-3)], checkpoint=ck, progress=False,
                                                          alarm="off"))
    prob = Fit()
    cfg = TrainConfig(phases=[Adam(10, lr=1e-3), LBFGS(6)], checkpoint=Checkpoint(str(tmp_path), resume=True),
                      progress=False, alarm="off", log_every=1)
    res = train(prob, Siren(1, 1, 16, 1), cfg)
    assert res.resumed_from == 10 and res.steps_done == 16 and prob.calls == 6  # L-BFGS evaluations only
    assert res.history["step"][:len(first.history["step"])] == first.history["step"]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 16


class Sparse(Fit):
    """Fit sin(3 pi x) from 4 points per sample: a 32-wide SIREN interpolates one draw and misses fresh points."""

    def losses(self, model, step, generator):
        self.calls += 1
        x = torch.rand(4, 1, generator=generator) * 2 - 1
        return {"data": torch.mean((model(x)[:, 0] - torch.sin(3 * math.pi * x[:, 0])) ** 2)}


def _sparse_run(**lbfgs):
    torch.manual_seed(0)
    prob = Sparse()
    cfg = TrainConfig(phases=[LBFGS(60, draw_every=15, **lbfgs)], log_every=1, progress=False, alarm="off")
    return prob, train(prob, Siren(1, 1, 32, 1, first_omega_0=10.0), cfg)


def test_lbfgs_draws_grow_while_they_do_not_generalise():
    prob, res = _sparse_run(batches=1, max_batches=4)
    growth = res.history["lbfgs_growth"]  # (draw, fresh / fitted, batches after) before draws 1, 2, ...
    assert [g[0] for g in growth] == [1.0, 2.0]  # at the cap after two tests: none after that
    assert all(g[1] > 10.0 for g in growth) and [g[2] for g in growth] == [2.0, 4.0]
    # four draws of 1, 2, 4, 4 samples, each drawn once per evaluation, plus the fresh samples of the two tests
    per_draw = [1, 2, 4, 4]
    evals = [15] * 4
    assert res.steps_done == 60
    assert prob.calls == sum(n * e for n, e in zip(per_draw, evals)) + 1 + 2


def test_lbfgs_draws_that_generalise_do_not_grow_and_draw_the_same_points():
    _, plain = _sparse_run(batches=2)
    _, tested = _sparse_run(batches=2, max_batches=8, gap=1e30)
    assert all(g[2] == 2.0 for g in tested.history["lbfgs_growth"])
    assert tested.history["loss"] == plain.history["loss"]  # the tests draw from their own generator


def test_rad_sampling_trains_on_a_copy_of_the_problem():
    x = sympy.symbols("x")
    u = Field("u", (x,))
    prob = Problem([u], (x,), [Constraint(u - sympy.sin(x), where=Box([(0.0, 1.0)]), n=32, name="fit")])
    region = prob.constraints["fit"].where
    seen = []

    def evaluate(model, step):
        seen.append(prob.constraints["fit"].where is region)  # during the run, not only after it
        return {}

    cfg = TrainConfig(phases=[Adam(6, lr=1e-4, sampler=RAD(every=2, pool=2)), LBFGS(4, draw_every=2, sampler=RAD())],
                      eval_every=2, progress=False, alarm="off")
    train(prob, Siren(1, 1, 8, 1), cfg, evaluate=evaluate)
    assert seen and all(seen) and prob.constraints["fit"].where is region


def test_an_adam_phase_stops_when_its_cpu_seconds_are_spent():
    """``Adam(cpu_seconds=)`` ends the phase before the first step past the budget: the run reports the steps
    done, the history ends at that step, and a budget no run reaches changes nothing."""
    x = sympy.Symbol("x")
    u = Field("u", (x,))
    prob = Problem([u], (x,), [Constraint(u - sympy.sin(x), Box([(-1, 1)]), n=32, name="data")])

    def run(**adam):
        torch.manual_seed(0)
        cfg = TrainConfig(phases=[Adam(**{"steps": 30, "lr": 1e-3, **adam})], alarm="off", progress=False,
                          log_every=7)
        return train(prob, Siren(1, 1, 8, 1), cfg)

    full, roomy = run(), run(cpu_seconds=1e9)
    assert full.steps_done == roomy.steps_done == 30 and full.history["loss"] == roomy.history["loss"]
    cut = run(steps=10**9, cpu_seconds=0.2)
    assert 1 <= cut.steps_done < 10**9
    assert cut.history["step"][-1] == cut.steps_done  # the last step taken is logged
    with pytest.raises(ValueError, match="cpu_seconds"):
        Adam(cpu_seconds=0.0)


def test_a_budgeted_schedule_decays_with_the_cpu_seconds_spent(monkeypatch):
    """With ``cpu_seconds`` the schedule's progress is the larger of the steps' and the budget's fractions:
    half the budget spent at step 10 of 1000 puts the cosine at its middle, a spent budget at its end."""
    from pinnsiren import phase_runs

    clock = [100.0]
    monkeypatch.setattr(phase_runs.time, "process_time", lambda: clock[0])
    phase = Adam(1000, lr=1e-3, schedule="cosine", final_lr_factor=0.01, cpu_seconds=50.0)
    lam = phase_runs.lr_lambda(phase, spent=lambda: phase_runs.time.process_time() - 100.0)
    assert lam(0) == pytest.approx(1.0)
    clock[0] = 125.0
    assert lam(10) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lam(900) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.9)))  # the steps lead
    clock[0] = 160.0
    assert lam(10) == pytest.approx(0.01)
    steps_only = phase_runs.lr_lambda(phase)  # no start time: the steps alone
    assert steps_only(500) == pytest.approx(0.01 + 0.99 * 0.5)
    exp = phase_runs.lr_lambda(Adam(1000, schedule="exponential", final_lr_factor=0.01, cpu_seconds=50.0),
                                 spent=lambda: phase_runs.time.process_time() - 135.0)
    assert exp(0) == pytest.approx(0.01 ** 0.5)
