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
    ("solvers.pde.poisson", "PoissonConfig", {"arch", "supervision"}),
    ("solvers.pde.helmholtz", "HelmholtzConfig", {"arch", "source"}),
    ("solvers.pde.wave", "WaveConfig", {"arch", "frames"}),
    ("solvers.sdf.sdf", "SDFConfig", {"weights"}),
    ("solvers.signals.image_fit", "ImageFitConfig", {"arch", "extra"}),
    ("solvers.signals.audio_fit", "AudioFitConfig", {"arch"}),
    ("solvers.signals.video_fit", "VideoFitConfig", {"arch"}),
    ("solvers.signals.hyper", "HyperConfig", set()),
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
    from solvers.signals.signal_fit import FitSettings

    assert issubclass(cls, S.TrainSettings) or issubclass(cls, FitSettings)
    assert issubclass(cls, S.ModelSettings) or name == "HyperConfig"
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
        assert S._plain(doc) in a.help % {"default": a.default}  # Sphinx roles and ``..`` dropped


def test_train_settings_make_the_trainers_parts_with_their_defaults():
    from pinnsiren.phases import LBFGS, Adam, Checkpoint

    assert S.TrainSettings().train_config() == TrainConfig()  # the flags' defaults are the parts' defaults
    for f in dataclasses.fields(S.TrainSettings):
        assert f.name in S.FLAT_TRAIN_SETTINGS and S.field_help(S.TrainSettings, f.name)
    tc = S.train_config(steps=7, lr=2e-3, schedule="cosine", final_lr_factor=0.1, grad_clip=3.0, lbfgs_steps=5,
                        seed=4, eval_every=2, checkpoint_dir="ck", checkpoint_every=3)
    assert tc.phases == (Adam(7, lr=2e-3, schedule="cosine", final_lr_factor=0.1, grad_clip=3.0), LBFGS(5))
    assert (tc.seed, tc.eval_every, tc.checkpoint) == (4, 2, Checkpoint("ck", every=3, resume=False))
    assert S.train_config(checkpoint_dir="ck").checkpoint is None  # no checkpoint asked for
    with pytest.raises(ValueError, match="need checkpoint_dir"):
        S.train_config(resume=True)
    with pytest.raises(ValueError, match="unknown settings.*'balance'"):
        S.train_config(balance="gradnorm")
    # setup="recommended": the measured parts over steps + lbfgs_steps evaluations, the flags' clip kept
    rec = S.train_config(steps=100, lbfgs_steps=200, grad_clip=2.0, setup="recommended", seed=5)
    assert rec.phases == (dataclasses.replace(TrainConfig.recommended(300).phases[0], grad_clip=2.0),
                          TrainConfig.recommended(300).phases[1])
    assert rec.aids == TrainConfig.recommended(300).aids and rec.seed == 5
    with pytest.raises(ValueError, match="unknown setup"):
        S.train_config(setup="best")
    # a settings class that restates a training field without words gets TrainSettings' documentation
    from solvers.fwi.fwi_neural import StageSettings

    assert S.field_help(StageSettings, "grad_clip") == S.field_help(S.TrainSettings, "grad_clip")
    assert "gradient norm" in S.field_help(S.TrainSettings, "grad_clip")


def test_flag_values_reach_config_trainer_and_network():
    from solvers.pde import wave

    args = _parser(wave).parse_args(["--grad-clip", "0.5", "--first-omega-0", "7", "--hidden-omega-0", "11",
                                     "--hidden", "12", "--layers", "2", "--lbfgs-steps", "3", "--no-progress",
                                     "--final-lr-factor", "0.2", "--t-max", "0.3"])
    cfg = S.from_args(wave.WaveConfig, args, frames=(0.0, 0.3))
    assert (cfg.grad_clip, cfg.hidden, cfg.layers, cfg.t_max, cfg.progress) == (0.5, 12, 2, 0.3, False)
    tc = cfg.train_config(log_every=7)
    adam, lbfgs = tc.phases
    assert (adam.grad_clip, lbfgs.steps, adam.final_lr_factor, tc.progress, tc.log_every) == (0.5, 3, 0.2, False, 7)
    assert (adam.steps, adam.lr, adam.schedule) == (1500, 5e-4, "cosine")
    net = cfg.build_model(3, 1)
    assert (net.first_omega_0, net.hidden_omega_0) == (7.0, 11.0)
    assert net.layers[0].weight.shape == (12, 3) and len(net.layers) == 4  # first + 2 hidden + last


def test_one_flag_name_per_setting():
    from solvers.pde import helmholtz, wave
    from solvers.sdf import sdf

    h = helmholtz.config_from_args(_parser(helmholtz).parse_args(["--first-omega-0", "5", "--grid-n", "64",
                                                                  "--source-weight", "2.5", "--resume"]))
    assert (h.first_omega_0, h.grid_n, h.source_weight, h.resume) == (5.0, 64, 2.5, True)
    assert helmholtz.config_from_args(_parser(helmholtz).parse_args(["--source-weight", "auto"])).source_weight == "auto"
    w = _parser(wave).parse_args(["--no-normalize-amplitude", "--grid-n", "32"])
    assert (w.normalize_amplitude, w.grid_n) == (False, 32)
    s = _parser(sdf).parse_args(["bunny", "--first-omega-0", "3", "--no-progress", "--grad-clip", "2"])
    assert (s.first_omega_0, s.progress, s.grad_clip) == (3.0, False, 2.0)
    old = {helmholtz: ("--omega0", "--grid"), wave: ("--grid", "--no-normalize"), sdf: ("--first-omega",)}
    for mod, names in old.items():  # not option strings (argparse may still expand an unambiguous prefix)
        assert not set(names) & set(_parser(mod)._option_string_actions), mod.__name__
    with pytest.raises(SystemExit):
        _parser(sdf).parse_args(["bunny", "--arch", "nope"])


class _Stop(Exception):
    pass


#: the PDE commands, the arguments each needs, and what they pass the trainer besides the flags
PIPELINES = {"solvers.pde.poisson": ["--size", "16"], "solvers.pde.wave": ["--grid-n", "16"],
             "solvers.pde.helmholtz": ["--grid-n", "16"], "solvers.sdf.sdf": ["sphere", "--points", "64"]}


def _trained_with(monkeypatch, tmp_path, module: str, flags: list[str]):
    """What ``train`` receives when the command ``module`` runs with ``flags`` (stopped at the first call)."""
    import importlib

    mod = importlib.import_module(module)
    seen = {}

    def fake_train(problem, model, config, **kw):
        seen.update(model=model, config=config)
        raise _Stop

    monkeypatch.setattr(mod, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    args = _parser(mod).parse_args(PIPELINES[module] + ["--out", str(tmp_path / "o")] + flags)
    with pytest.raises(_Stop):
        mod.main(args)
    return seen


@pytest.mark.parametrize("module", sorted(PIPELINES))
def test_pde_commands_train_with_their_flags_and_setup(monkeypatch, tmp_path, module):
    """The phases a command trains with are the ones its flags (and its config's defaults) say; with
    --setup recommended, TrainConfig.recommended over the same evaluations (a command that ignored a flag
    or the setup fails here)."""
    from pinnsiren.phases import Adam

    seen = _trained_with(monkeypatch, tmp_path, module, ["--steps", "12", "--lr", "3e-4", "--seed", "2"])
    (adam, *rest), cfg = seen["config"].phases, seen["config"]
    assert (adam.steps, adam.lr, cfg.seed) == (12, 3e-4, 2) and isinstance(adam, Adam)
    seen = _trained_with(monkeypatch, tmp_path, module, ["--steps", "30", "--setup", "recommended"])
    rec = TrainConfig.recommended(30)
    phases = seen["config"].phases
    assert [type(p) for p in phases] == [type(p) for p in rec.phases] and phases[1] == rec.phases[1]
    assert (phases[0].steps, phases[0].lr, phases[0].schedule) == (10, 1e-4, "cosine")
    assert seen["config"].aids == rec.aids


def test_fit_flags_reach_the_runs(monkeypatch, tmp_path):
    from solvers.signals import audio_fit, image_fit

    seen = {}
    monkeypatch.setattr(image_fit, "run", lambda *a, **k: seen.update(image=k["cfg"]))
    args = _parser(image_fit).parse_args(["--first-omega-0", "12", "--log-every", "5", "--hidden", "8"])
    image_fit.main(args)
    assert (seen["image"].first_omega_0, seen["image"].log_every, seen["image"].hidden) == (12.0, 5, 8)
    monkeypatch.setattr(audio_fit, "run", lambda *a, **k: seen.update(audio=k["cfg"]))
    audio_fit.main(_parser(audio_fit).parse_args(["--first-omega-0", "700", "--batch", "64"]))
    assert (seen["audio"].first_omega_0, seen["audio"].batch, seen["audio"].lr) == (700.0, 64, 1e-4)
    import solvers.signals.inpaint as inp

    monkeypatch.setattr(inp, "run_inpaint", lambda *a, **k: seen.update(inpaint=k["settings"]))
    image_fit.main(_parser(image_fit).parse_args(["--inpaint", "0.2", "--hidden-omega-0", "9"]))
    assert seen["inpaint"].hidden_omega_0 == 9.0


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


def test_run_inpaint_takes_the_shared_settings(monkeypatch, tmp_path):
    import solvers.signals.inpaint as inp
    from solvers.signals.image_fit import ImageFitConfig

    class Seen(Exception):
        pass

    def capture(image, mask, cfg, show_progress=True):
        raise Seen(cfg)

    monkeypatch.setattr(inp, "inpaint_image", capture)
    with pytest.raises(Seen) as got:
        inp.run_inpaint(None, ["tv"], 0.3, tmp_path, arch="tanh", size=8, weight=0.5,
                        settings=ImageFitConfig(hidden=4, layers=1, first_omega_0=7.0, steps=3, log_every=2))
    cfg = got.value.args[0]
    assert (cfg.arch, cfg.prior, cfg.weight, cfg.fraction) == ("tanh", "tv", 0.5, 0.3)
    assert (cfg.hidden, cfg.layers, cfg.first_omega_0, cfg.steps, cfg.log_every) == (4, 1, 7.0, 3, 2)


def test_every_config_that_embeds_settings_documents_every_field():
    """Any config in solvers/ built on the shared settings (found, not listed) documents all its fields."""
    import importlib
    import pkgutil

    import solvers
    from solvers.signals.signal_fit import FitSettings

    found = []
    for info in pkgutil.walk_packages(solvers.__path__, prefix="solvers."):
        mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if (isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == mod.__name__
                    and issubclass(obj, (S.ModelSettings, S.TrainSettings, FitSettings))):
                found.append(obj)
                missing = [f.name for f in dataclasses.fields(obj) if not S.field_help(obj, f.name)]
                assert not missing, f"{obj.__name__}: no docstring for {missing}"
    assert {c.__name__ for c in found} >= {name for _, name, _ in SOLVERS} | {"InpaintConfig", "NeuralFWIConfig",
                                                                           "ReparamFWIConfig"}


# --- the FWI pipelines -------------------------------------------------------------------------------------

# (flag destination -> value) of `fwi --quick` and of the full run, as the hand-written flags gave them
FWI_OLD = {
    True: dict(n=81, admm_iters=20, adjoint_iters=30, pinn=dict(pretrain_steps=800, fwi_steps=800, hidden=128, layers=3,
                                                               batch=500),
               reparam=dict(iterations=500, max_evals=620)),
    False: dict(n=101, admm_iters=30, adjoint_iters=50, pinn=dict(pretrain_steps=20000, fwi_steps=10000, hidden=256,
                                                                 layers=4, batch=3000),
                reparam=dict(iterations=1000, max_evals=1220)),
}
FWI_COMMON = dict(pinn=dict(lr=1e-4, lambda_data=10.0, m_param="bounded", slowness_weight_fwi=0.1, source_weight=1.0,
                            slowness_weight=1.0, schedule="constant", fwi_lr=None, u0_grid=257, arch="siren",
                            first_omega_0=30.0, hidden_omega_0=30.0, seed=0, device="cpu"),
                  reparam=dict(hidden=64, layers=2, first_omega_0=5.0, hidden_omega_0=30.0, detail_omega_0=0.0, tv=0.0,
                               lr=1e-3, param="velocity", optimizer="lbfgs", seed=0, device="cpu", dtype="float64"))


def _fwi_settings(argv):
    from solvers.fwi import fwi
    from solvers.fwi.fwi_neural import NeuralFWIConfig
    from solvers.fwi.fwi_reparam import ReparamFWIConfig

    s = fwi._settings(_parser(fwi).parse_args(argv))
    assert isinstance(s, fwi.FWISettings)
    assert isinstance(s.pinn, NeuralFWIConfig) and isinstance(s.reparam, ReparamFWIConfig)
    return dataclasses.asdict(s)


def test_fwi_presets_are_dataclasses_and_the_help_shows_both():
    from solvers.fwi import fwi

    assert (fwi.QUICK.n, fwi.QUICK.hidden, fwi.FULL.n, fwi.FULL.reparam_iterations) == (81, 128, 101, 1000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fwi.QUICK.n = 3
    p = _parser(fwi)
    helps = {a.dest: a.help for a in p._actions}
    assert "[quick 128, full 256]" in helps["hidden"] and "[quick 800, full 20000]" in helps["pretrain_steps"]
    assert "[quick 500, full 1000]" in helps["reparam_iterations"]
    assert p.parse_args([]).hidden is None  # unset: the preset decides


@pytest.mark.parametrize("quick", [True, False])
def test_fwi_presets_and_defaults_unchanged(quick):
    s = _fwi_settings(["--quick"] if quick else [])
    old = FWI_OLD[quick]
    assert (s["n"], s["admm_iters"], s["adjoint_iters"], s["n_data"]) == (old["n"], old["admm_iters"],
                                                                         old["adjoint_iters"], 2 * old["n"] - 1)
    for group in ("pinn", "reparam"):
        for k, v in {**FWI_COMMON[group], **old[group]}.items():
            assert s[group][k] == v, (group, k, s[group][k], v)


def test_fwi_flags_override_presets():
    s = _fwi_settings(["--quick", "--hidden", "16", "--pretrain-steps", "3", "--reparam-iterations", "10",
                       "--reparam-first-omega-0", "2", "--reparam-detail-omega-0", "9", "--reparam-hidden", "8",
                       "--reparam-tv", "0.5", "--source-weight", "auto", "--seed", "4", "--device", "cpu",
                       "--fwi-lr", "3e-4", "--grad-clip", "1.5", "--reparam-max-evals", "7", "--lr", "2e-4"])
    p, r = s["pinn"], s["reparam"]
    assert (p["hidden"], p["layers"], p["pretrain_steps"], p["fwi_steps"], p["source_weight"]) == \
        (16, 3, 3, 800, "auto")
    assert (p["seed"], r["seed"], p["fwi_lr"], p["grad_clip"], p["lr"]) == (4, 4, 3e-4, 1.5, 2e-4)
    assert (r["iterations"], r["first_omega_0"], r["detail_omega_0"], r["hidden"], r["tv"], r["max_evals"]) == \
        (10, 2.0, 9.0, 8, 0.5, 7)
    assert _fwi_settings(["--reparam-iterations", "100"])["reparam"]["max_evals"] == 140  # 1.2 iterations + 20
    with pytest.raises(ValueError, match="source-weight"):
        _fwi_settings(["--source-weight", "lots"])


def test_fwi_flags_are_the_config_fields_with_their_docstrings():
    from solvers.fwi import fwi
    from solvers.fwi.fwi_neural import NeuralFWIConfig
    from solvers.fwi.fwi_reparam import ReparamFWIConfig

    actions: dict[str, argparse.Action] = {}
    for a in _parser(fwi)._actions:
        actions.setdefault(a.dest, a)
    for cls, prefix, own in ((NeuralFWIConfig, "", fwi.PINN_OWN), (ReparamFWIConfig, "reparam_", fwi.REPARAM_OWN)):
        assert issubclass(cls, S.ModelSettings)
        for f in dataclasses.fields(cls):
            doc = S.field_help(cls, f.name)
            assert doc, f"{cls.__name__}.{f.name} has no docstring"
            if f.name in own:
                continue
            a = actions[prefix + f.name]
            assert "--" + (prefix + f.name).replace("_", "-") in a.option_strings
            assert S._plain(doc) in a.help % {"default": a.default}  # Sphinx roles and ``..`` dropped
    # the trainer's settings keep the trainer's documentation; the reparameterised net restates omega_0 = 5
    assert S.field_help(NeuralFWIConfig, "schedule") == S.field_help(S.TrainSettings, "schedule")
    assert ReparamFWIConfig().first_omega_0 == 5.0 and S.ModelSettings().first_omega_0 == 30.0


def test_fwi_configs_build_their_networks_and_stages():
    from pinnsiren import Siren
    from solvers.fwi.fwi_neural import NeuralFWIConfig

    cfg = NeuralFWIConfig(hidden=8, layers=1, pretrain_steps=5, fwi_steps=7, lr=1e-3, fwi_lr=2e-3, seed=3,
                          grad_clip=0.5, schedule="cosine")
    t1, t2 = cfg.stage_config(1, log_every=4), cfg.stage_config(2)
    (a1,), (a2,) = t1.phases, t2.phases
    assert (a1.steps, a1.lr, t1.seed, t1.log_every, a1.schedule, a1.grad_clip) == (5, 1e-3, 3, 4, "cosine", 0.5)
    assert (a2.steps, a2.lr, t2.seed, a2.schedule, a2.grad_clip) == (7, 2e-3, 4, "cosine", 0.5)
    assert NeuralFWIConfig(lr=1e-3).stage_config(2).phases[0].lr == 1e-3  # fwi_lr None: lr
    torch.manual_seed(0)
    a = cfg.build_model(2, 11)
    torch.manual_seed(0)
    b = Siren(2, 11, 8, 1)  # what the pipeline built before: the same weights
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_prefixed_flag_group():
    @dataclasses.dataclass
    class G:
        hidden: int = 3
        """Width."""
        on: bool = True
        """Switch."""

    p = argparse.ArgumentParser()
    S.add_flags(p, G)
    S.add_flags(p, G, prefix="second", defaults={"hidden": 5})
    ns = p.parse_args(["--hidden", "7", "--second-hidden", "9", "--no-second-on"])
    assert S.from_args(G, ns) == G(hidden=7, on=True)
    assert S.from_args(G, ns, prefix="second") == G(hidden=9, on=False)
    assert S.from_args(G, p.parse_args([]), prefix="second") == G(hidden=5, on=True)


def test_fit_config_takes_the_config_fields_only():
    from solvers.signals.image_fit import ImageFitConfig
    from solvers.signals.signal_fit import fit_config

    assert fit_config(ImageFitConfig, None, {"hidden": 8, "steps": 3}) == ImageFitConfig(hidden=8, steps=3)
    assert fit_config(ImageFitConfig, ImageFitConfig(lr=2e-4), {"layers": 1}) == ImageFitConfig(lr=2e-4, layers=1)
    assert fit_config(ImageFitConfig, None, {}) == ImageFitConfig()
    for wrong in ({"no_such_setting": 1}, {"hidden_features": 8}, {"hidden_layers": 1}):
        with pytest.raises(TypeError):
            fit_config(ImageFitConfig, None, wrong)


def test_check_choice_and_check_arch_name_the_choices():
    S.check_choice("medium", "circle", ("uniform", "circle"))
    with pytest.raises(ValueError, match=r"unknown medium 'disc'; must be one of \['uniform', 'circle'\]"):
        S.check_choice("medium", "disc", ("uniform", "circle"))
    S.ModelSettings(arch="tanh").check_arch()
    with pytest.raises(ValueError, match="unknown architecture 'nope'; must be one of .*'siren'"):
        S.ModelSettings(arch="nope").check_arch()
