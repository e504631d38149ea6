"""Failure alarm: a constructed collapse names the starved term; a healthy run stays quiet and reports."""

import warnings

import pytest
import sympy
import torch

from pinnsiren import Box, Constraint, Field, Problem, Siren
from pinnsiren.alarm import Alarm, TrainingAlarm, TrainingAlarmWarning
from pinnsiren.phases import Adam
from pinnsiren.train import TrainConfig, train

x = sympy.Symbol("x")
u = Field("u", (x,))


def _problem(penalty: float | None):
    cons = [Constraint(u - sympy.sin(sympy.pi * x), where=Box([(-1, 1)]), n=64, name="data")]
    if penalty is not None:
        # an overweighted term whose minimiser is u = 0: the network collapses onto it and ignores 'data'
        cons.append(Constraint(u, where=Box([(-1, 1)]), n=64, name="penalty", weight=penalty))
    return Problem([u], (x,), cons)


def test_collapse_raises_and_names_the_term():
    torch.manual_seed(0)
    with pytest.raises(TrainingAlarm, match=r"collapse in term 'data'.*zero-field value: 'data'") as err:
        train(_problem(1e4), Siren(1, 1, 32, 1), TrainConfig(phases=[Adam(400, lr=1e-3)], alarm="raise", progress=False))
    assert "aids=[GradNorm()]" in str(err.value)  # says what to do
    assert err.value.args[0].startswith("training alarm at step ")


def test_collapse_warns_and_reports():
    torch.manual_seed(0)
    with pytest.warns(TrainingAlarmWarning, match=r"stuck in term 'data'.*zero-field value 5\.\d+e-01"):
        res = train(_problem(1e4), Siren(1, 1, 32, 1), TrainConfig(phases=[Adam(400, lr=1e-3)], progress=False))
    kinds = {a["kind"] for a in res.alarms}
    assert "stuck" in kinds and "collapse" in kinds
    assert "stuck" in res.report["data"]["alarms"]
    # zero-field loss of 'data' = mean of sin^2 = 1/2 (Monte Carlo on 64 points)
    assert res.report["data"]["zero_field"] == pytest.approx(0.5, abs=0.1)
    assert res.report["data"]["fresh"] > 0.4


def test_healthy_run_is_quiet_and_reports_fresh_losses():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingAlarmWarning)
        res = train(_problem(None), Siren(1, 1, 32, 1), TrainConfig(phases=[Adam(400, lr=1e-3)], alarm="raise", progress=False))
    assert res.alarms == []
    r = res.report["data"]
    assert r["alarms"] == [] and r["fresh"] < 1e-3 and r["fresh"] < 10 * r["train"] + 1e-8
    assert r["zero_field"] == pytest.approx(0.5, abs=0.1)


def test_off_means_nothing():
    torch.manual_seed(0)
    res = train(_problem(1e4), Siren(1, 1, 32, 1), TrainConfig(phases=[Adam(50, lr=1e-3)], alarm="off", progress=False))
    assert res.report == {} and res.alarms == []
    with pytest.raises(ValueError, match="must be one of"):
        Alarm(_problem(None), Siren(1, 1, 8, 1), mode="loud")


def test_healthy_two_term_run_with_a_prior_that_is_zero_by_design_is_quiet():
    # Poisson-like: PDE + boundary (weight 100) + a hinge prior max(0, -u - 10) that is 0 for any sane field
    y = sympy.Symbol("y")
    v = Field("v", (x, y))
    sol = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y)
    prob = Problem([v], (x, y), [
        Constraint(v.diff(x, 2) + v.diff(y, 2) - sol.diff(x, 2) - sol.diff(y, 2), where=Box([(-1, 1)] * 2), n=128,
                   name="pde"),
        Constraint(v - sol, where=Box([(-1, 1)] * 2).boundary(), n=64, name="boundary", weight=100.0),
        Constraint(sympy.Max(0, -v - 10), where=Box([(-1, 1)] * 2), n=64, name="prior"),
    ])
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingAlarmWarning)
        res = train(prob, Siren(2, 1, 32, 1, first_omega_0=5), TrainConfig(phases=[Adam(300, lr=1e-3, schedule="cosine")], progress=False))
    assert res.alarms == [] and set(res.report) == {"pde", "boundary", "prior"}
    assert res.report["prior"]["zero_field"] == 0.0


def test_a_term_far_above_its_zero_field_value_is_not_stuck():
    """A source-driven residual that first grows above its zero-field value (the Helmholtz demo's PDE
    term at 11x) is being acted on, not ignored: no 'stuck' verdict while it comes down slowly."""

    class Loud(torch.nn.Module):  # the network output times 30: the residual starts far above the zero field's
        def __init__(self):
            super().__init__()
            self.net = Siren(1, 1, 32, 1)

        def forward(self, z):
            return 30.0 * self.net(z)

    torch.manual_seed(0)
    prob = _problem(None)
    model = Loud()
    alarm = Alarm(prob, model, mode="raise", steps=400, seed=0)
    zero = alarm.zero["data"]
    now = {k: float(v) for k, v in prob.losses(model, 0, torch.Generator().manual_seed(1)).items()}
    assert now["data"] > 3 * zero  # the premise: far above the zero-field loss
    for step in (100, 200, 300, 400):  # nothing changes between checks: flat, yet not "at its zero-field value"
        alarm.check(model, step)
    assert alarm.alarms == []
    # coming down into the band later (the demo's PDE term near the end) is still not "stuck"
    # (this toy's field also becomes trivial, which the collapse check rightly reports)
    model.forward = lambda z: 1e-3 * model.net(z)
    alarm.mode = "warn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingAlarmWarning)
        for step in (500, 600, 700):
            alarm.check(model, step)
    assert [a["kind"] for a in alarm.alarms] == ["collapse"]
    # the same flat run with the loss AT its zero-field value is stuck (the check can fail)
    quiet = Loud()
    quiet.forward = lambda z: 1e-3 * quiet.net(z)
    alarm = Alarm(prob, quiet, mode="warn", steps=400, seed=0)
    with pytest.warns(TrainingAlarmWarning, match="stuck in term 'data'"):
        for step in (100, 200, 300, 400):
            alarm.check(quiet, step)


def test_exact_imposition_baseline_is_the_lift_and_a_network_that_does_nothing_is_stuck():
    """u'' = 0 on [0, 1] with u = x^2 + x (1 - x) N: the lift x^2 leaves the residual 2 (loss 4) and u = 0 is not
    a field this model can take, so the zero-field reference is the lift's loss 4, not 0. A network whose
    output is 0 and that (almost) does not train sits there: stuck, named."""
    from pinnsiren import ExactDirichlet
    from pinnsiren.alarm import baseline

    prob = Problem([u], (x,), [Constraint(u.diff(x, 2), where=Box([(0, 1)]), n=64, name="pde")])
    torch.manual_seed(0)
    net = Siren(1, 1, 16, 1)
    with torch.no_grad():
        net.layers[-1].weight.zero_()
        net.layers[-1].bias.zero_()
    model = ExactDirichlet(net, (x,), x * (1 - x), x**2)
    X = torch.rand(16, 1)
    torch.testing.assert_close(baseline(model)(X)[:, 0], X[:, 0] ** 2)
    assert model.net is net  # the baseline is a view: the model itself is untouched
    with pytest.warns(TrainingAlarmWarning, match=r"stuck in term 'pde'.*zero-field value 4\.0.*the lift u = g"):
        res = train(prob, model, TrainConfig(phases=[Adam(500, lr=1e-12)], progress=False))
    assert res.report["pde"]["zero_field"] == pytest.approx(4.0, rel=1e-5)


class _Scaled(torch.nn.Module):
    """u = a sin(pi x): the 'data' term's loss is (1 - a)^2 times its zero-field value, set by ``a``."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.0))

    def forward(self, z):
        return self.a * torch.sin(torch.pi * z)

    def set_ratio(self, r: float):
        with torch.no_grad():
            self.a.fill_(1.0 - r ** 0.5)


@pytest.mark.parametrize("ratios, stuck", [
    ((0.95, 0.85, 0.75, 0.66), False),  # ~12 % less per interval: out of the band well before the end
    ((0.99, 0.98, 0.97, 0.96), True),  # ~1 % less per interval: still at its zero-field value at the end
])
def test_a_term_coming_down_steadily_is_not_stuck(ratios, stuck):
    """'stuck' extrapolates the last interval's fall to the end of the run: a term at 66-95 % of its
    zero-field value that falls by a tenth per check (a wave's initial value while its window grows) is
    acted on; one that falls by 1 % per check is ignored."""
    prob = _problem(None)
    model = _Scaled()
    model.set_ratio(1.0)
    alarm = Alarm(prob, model, mode="warn", steps=1000, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step, r in zip((200, 300, 400, 500), ratios):
            model.set_ratio(r)
            alarm.check(model, step)
    kinds = [a["kind"] for a in alarm.alarms]
    assert kinds == (["stuck"] if stuck else []), [str(w.message) for w in caught]
