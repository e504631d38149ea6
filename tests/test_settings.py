"""Settings defined once (pinnsiren.settings): generated flags, their help, old flag names, per-solver defaults."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import pytest
import torch

from pinnsiren import settings as S
from pinnsiren.train import TrainConfig

# solver module, config class, fields the module parses itself (not one flag per field)
SOLVERS = [
    ("solvers.poisson", "PoissonConfig", {"arch", "supervision"}),
    ("solvers.helmholtz", "HelmholtzConfig", {"arch", "source"}),
    ("solvers.wave", "WaveConfig", {"arch", "frames"}),
    ("solvers.sdf", "SDFConfig", {"weights"}),
]


def _load(module: str, name: str):
    import importlib

    mod = importlib.import_module(module)
    return mod, getattr(mod, name)


def _parser(mod) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    mod.add_arguments(p)
    return p


@pytest.mark.parametrize("module,name,own", SOLVERS)
def test_every_field_has_a_flag_with_its_docstring(module, name, own):
    mod, cls = _load(module, name)
    assert issubclass(cls, S.ModelSettings) and issubclass(cls, S.TrainSettings)
    actions: dict[str, argparse.Action] = {}
    for a in _parser(mod)._actions:
        actions.setdefault(a.dest, a)  # the generated flag comes before its aliases
    for f in dataclasses.fields(cls):
        doc = S.field_help(cls, f.name)
        assert doc, f"{name}.{f.name} has no docstring"
        if f.name in own:
            continue
        assert f.name in actions, f"{name}.{f.name} has no flag"
        a = actions[f.name]
        assert "--" + f.name.replace("_", "-") in a.option_strings
        assert doc.replace("``", "") in a.help % {"default": a.default}


def test_train_settings_are_trainconfig_fields():
    hints, tc = typing.get_type_hints(TrainConfig), {f.name: f for f in dataclasses.fields(TrainConfig)}
    ts = typing.get_type_hints(S.TrainSettings)
    for f in dataclasses.fields(S.TrainSettings):
        assert ts[f.name] == hints[f.name] and f.default == tc[f.name].default
    assert S.field_help(S.TrainSettings, "grad_clip") == "Clip the global gradient norm to this value."


def test_flag_values_reach_config_trainer_and_network():
    from solvers import wave

    args = _parser(wave).parse_args(["--grad-clip", "0.5", "--first-omega-0", "7", "--hidden-omega-0", "11",
                                     "--hidden", "12", "--layers", "2", "--lbfgs-steps", "3", "--no-progress",
                                     "--final-lr-factor", "0.2", "--t-max", "0.3"])
    cfg = S.from_args(wave.WaveConfig, args, frames=(0.0, 0.3))
    assert (cfg.grad_clip, cfg.hidden, cfg.layers, cfg.t_max, cfg.progress) == (0.5, 12, 2, 0.3, False)
    tc = cfg.train_config(log_every=7)
    assert (tc.grad_clip, tc.lbfgs_steps, tc.final_lr_factor, tc.progress, tc.log_every) == (0.5, 3, 0.2, False, 7)
    assert (tc.steps, tc.lr, tc.schedule) == (1500, 5e-4, "cosine")
    net = cfg.build_model(3, 1)
    assert (net.first_omega_0, net.hidden_omega_0) == (7.0, 11.0)
    assert net.layers[0].weight.shape == (12, 3) and len(net.layers) == 4  # first + 2 hidden + last


def test_old_flag_names_still_work():
    from solvers import helmholtz, sdf, wave

    h = helmholtz.config_from_args(_parser(helmholtz).parse_args(["--omega0", "5", "--grid", "64",
                                                                  "--source-weight", "2.5", "--resume"]))
    assert (h.first_omega_0, h.grid_n, h.source_weight, h.resume) == (5.0, 64, 2.5, True)
    assert helmholtz.config_from_args(_parser(helmholtz).parse_args(["--source-weight", "auto"])).source_weight == "auto"
    w = _parser(wave).parse_args(["--no-normalize", "--grid", "32"])
    assert (w.normalize_amplitude, w.grid_n) == (False, 32)
    s = _parser(sdf).parse_args(["bunny", "--first-omega", "3", "--no-progress", "--grad-clip", "2"])
    assert (s.first_omega_0, s.progress, s.grad_clip) == (3.0, False, 2.0)
    with pytest.raises(SystemExit):
        _parser(sdf).parse_args(["bunny", "--arch", "nope"])


# the defaults each command had before the settings were shared
OLD_DEFAULTS = {
    "solvers.poisson": dict(steps=1000, lr=1e-4, schedule="constant", points=8192, hidden=256, layers=3, seed=0),
    "solvers.helmholtz": dict(steps=2000, lr=1e-4, schedule="cosine", points=4096, hidden=256, layers=3,
                              first_omega_0=30.0, source_points=512, grid_n=256, eval_every=250, lbfgs_steps=0,
                              source_weight="batch", out="results/helmholtz"),
    "solvers.wave": dict(steps=1500, lr=5e-4, schedule="cosine", points=4096, hidden=128, layers=3, grid_n=256,
                         cone_fraction=0.5, normalize_amplitude=True, t_max=0.4),
    "solvers.sdf": dict(steps=2000, lr=5e-4, schedule="cosine", hidden=128, layers=3, first_omega_0=15.0,
                        grad_clip=1.0, final_lr_factor=0.01, batch=2000, points=20000, progress=True,
                        sign_prior=100.0, engine="autograd"),
}


@pytest.mark.parametrize("module", sorted(OLD_DEFAULTS))
def test_defaults_per_solver_unchanged(module):
    import importlib

    mod = importlib.import_module(module)
    argv = ["bunny"] if module == "solvers.sdf" else []
    ns = vars(_parser(mod).parse_args(argv))
    for k, v in OLD_DEFAULTS[module].items():
        assert ns[k] == v, (module, k, ns[k], v)


def test_docstring_readers_on_a_snippet():
    @dataclasses.dataclass
    class A:
        """Doc.

        Parameters
        ----------
        x, y : int
            Two numbers.
        z : float
        """

        x: int = 1
        y: int = 2
        z: float = 3.0
        w: str = "a"
        """The w setting, 100 %."""
        v: dict = dataclasses.field(default_factory=dict)

    @dataclasses.dataclass
    class B(A):
        x: int = 5

    assert S.field_help(B, "x") == "Two numbers." and S.field_help(A, "y") == "Two numbers."
    assert S.field_help(A, "z") == "float"
    assert S.field_help(B, "w") == "The w setting, 100 %."
    assert [f.name for f, _ in S.flag_fields(B)] == ["x", "y", "z", "w"]  # no flag for a dict
    p = argparse.ArgumentParser()
    S.add_flags(p, B)
    p.format_help()  # '%' in a docstring must not break argparse
    ns = p.parse_args(["--w", "b"])
    assert S.from_args(B, ns) == B(x=5, y=2, z=3.0, w="b")


def test_tuple_and_union_flags():
    @dataclasses.dataclass
    class T:
        t: tuple[float, ...] = (0.0, 1.0)
        """Times."""
        o: int | None = None
        """Optional count."""
        s: float | str = "auto"
        """Number or word."""

    p = argparse.ArgumentParser()
    S.add_flags(p, T)
    ns = p.parse_args(["--t", "0.5,2", "--o", "4", "--s", "0.25"])
    assert S.from_args(T, ns) == T(t=(0.5, 2.0), o=4, s=0.25)
    assert S.from_args(T, p.parse_args([])) == T()
    torch.manual_seed(0)  # keep the module's global state tidy for later tests
