"""Settings defined once: the model and training settings every solver embeds, and CLI flags made from them.

A solver's configuration is a dataclass that inherits :class:`ModelSettings`
(architecture, width, depth, SIREN frequencies) and :class:`TrainSettings`
(steps, learning rate and schedule, L-BFGS polish, gradient clipping, seed,
device, progress) and adds its own fields. A solver changes a shared
setting's *default* by restating the field with a new value (no docstring);
its type, help text and flag stay the ones defined here::

    @dataclass
    class WaveConfig(ModelSettings, TrainSettings):
        hidden: int = 128          # the wave's default width
        c: float = 1.0
        \"\"\"Wave speed.\"\"\"

Every field is documented by the string literal right below it (an
attribute docstring) or, for classes documented numpy-style, by its entry in
the class docstring's ``Parameters`` section. :func:`add_flags` turns the
fields into ``argparse`` flags (``first_omega_0`` -> ``--first-omega-0``,
help = that docstring, default = the class default) and
:func:`from_args` builds the configuration back from the parsed namespace.
:class:`TrainSettings` holds the flat training flags every PDE solver shares;
:func:`train_config` turns flat settings into the trainer's parts
(:mod:`pinnsiren.phases`), so a command line builds the same
:class:`pinnsiren.train.TrainConfig` a script would.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from .phases import LBFGS, Adam, Checkpoint
from .train import TrainConfig

__all__ = ["ModelSettings", "TrainSettings", "TrainerFlags", "FLAT_TRAIN_SETTINGS", "SETUPS", "train_config", "field_help",
           "flag_fields", "add_flags", "from_args", "check_choice"]

C = TypeVar("C")


def check_choice(what: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError("unknown <what> <value>; must be one of [...]")`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; must be one of {list(choices)}")


@dataclass
class ModelSettings:
    """The network of a solver (:func:`pinnsiren.networks.build_model`)."""

    arch: str = "siren"
    """Architecture: siren, or a baseline (relu, relu-pe, tanh, sigmoid, softplus, elu, selu, rbf)."""
    hidden: int = 256
    """Hidden features (width of every hidden layer)."""
    layers: int = 3
    """Hidden layers (hidden-to-hidden)."""
    first_omega_0: float = 30.0
    """SIREN first-layer frequency factor omega_0 (siren only)."""
    hidden_omega_0: float = 30.0
    """SIREN frequency factor of the later layers (siren only)."""

    def check_arch(self) -> None:
        """Raise ``ValueError`` naming the architectures when ``arch`` is not one of them."""
        from .networks import check_architectures

        check_architectures(self.arch)

    def build_model(self, in_features: int, out_features: int, **kwargs: Any) -> Any:
        """The network: :func:`~pinnsiren.networks.build_model` with these settings.

        The SIREN frequencies go to a ``siren`` only; ``kwargs`` (e.g.
        ``num_frequencies`` of ``relu-pe``) are passed on.
        """
        from .networks import build_model

        if self.arch == "siren":
            kwargs = {"first_omega_0": self.first_omega_0, "hidden_omega_0": self.hidden_omega_0, **kwargs}
        return build_model(self.arch, in_features, out_features, self.hidden, self.layers, **kwargs)


#: flat settings a command line may hold, and what :func:`train_config` makes of them
FLAT_TRAIN_SETTINGS = ("steps", "lr", "schedule", "final_lr_factor", "grad_clip", "lbfgs_steps", "seed", "device",
                       "progress", "backward_precision", "log_every", "eval_every", "alarm", "checkpoint_dir",
                       "checkpoint_every", "resume", "setup")

#: what ``setup`` may be: the phases the flags describe, or the measured recommended parts
SETUPS = ("flags", "recommended")


def train_config(**flat: Any) -> TrainConfig:
    """The trainer's configuration from a command line's flat settings (:data:`FLAT_TRAIN_SETTINGS`).

    ``steps``, ``lr``, ``schedule``, ``final_lr_factor`` and ``grad_clip``
    make an :class:`~pinnsiren.phases.Adam` phase; ``lbfgs_steps > 0`` an
    :class:`~pinnsiren.phases.LBFGS` phase after it; ``checkpoint_dir``,
    ``checkpoint_every`` and ``resume`` a :class:`~pinnsiren.phases.Checkpoint`
    (when checkpoints are asked for); the rest are fields of
    :class:`~pinnsiren.train.TrainConfig`. Missing settings keep the parts'
    defaults. ``setup="recommended"`` replaces the phases and aids by
    :meth:`TrainConfig.recommended(steps + lbfgs_steps) <pinnsiren.train.TrainConfig.recommended>`
    (``lr``, ``schedule`` and ``final_lr_factor`` are then its own;
    ``grad_clip`` still applies to the Adam phase).
    """
    unknown = sorted(set(flat) - set(FLAT_TRAIN_SETTINGS))
    if unknown:
        raise ValueError(f"train_config: unknown settings {unknown}; known: {list(FLAT_TRAIN_SETTINGS)}")
    setup = flat.pop("setup", "flags")
    check_choice("setup", setup, SETUPS)
    adam = {k: flat.pop(k) for k in ("steps", "lr", "schedule", "final_lr_factor", "grad_clip") if k in flat}
    phases: list[Any] = [Adam(**adam)]
    lbfgs = flat.pop("lbfgs_steps", 0)
    if lbfgs:
        phases.append(LBFGS(lbfgs))
    if setup == "recommended":
        rec = TrainConfig.recommended(sum(p.steps for p in phases))
        first = dataclasses.replace(rec.phases[0], grad_clip=phases[0].grad_clip)
        flat.setdefault("aids", rec.aids)
        phases = [first, *rec.phases[1:]]
    folder, every, resume = flat.pop("checkpoint_dir", None), flat.pop("checkpoint_every", 0), flat.pop("resume", False)
    checkpoint = None
    if every or resume:
        if not folder:
            raise ValueError("checkpoint_every/resume need checkpoint_dir (e.g. --out DIR)")
        checkpoint = Checkpoint(str(folder), every, resume)
    return TrainConfig(phases=phases, checkpoint=checkpoint, **flat)


class TrainerFlags:
    """Mixin for settings dataclasses holding some of :data:`FLAT_TRAIN_SETTINGS`: ``train_config(**changes)``."""

    def train_config(self, **changes: Any) -> TrainConfig:
        """The :class:`~pinnsiren.train.TrainConfig` of these settings (:func:`train_config`); ``changes``
        override or add flat settings (``log_every=...``)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                  if f.name in FLAT_TRAIN_SETTINGS}
        return train_config(**{**values, **changes})


@dataclass
class TrainSettings(TrainerFlags):
    """The training settings every PDE solver shares (an Adam phase, an optional L-BFGS phase, housekeeping)."""

    steps: int = 1000
    """Adam steps."""
    lr: float = 1e-4
    """Initial learning rate."""
    schedule: str = "constant"
    """Learning-rate schedule over the Adam steps: constant, cosine (decays to lr * final_lr_factor) or
    exponential (reaches the same at the end)."""
    final_lr_factor: float = 0.01
    """End-of-schedule learning rate as a fraction of lr."""
    lbfgs_steps: int = 0
    """L-BFGS phase after Adam (strong-Wolfe line search; pinnsiren.phases.LBFGS): its budget in gradient
    evaluations, line-search trials included."""
    grad_clip: float | None = None
    """Clip the global gradient norm to this value."""
    seed: int = 0
    """Seeds the model initialisation and the collocation sampler."""
    device: str = "cpu"
    """cpu or cuda."""
    progress: bool = True
    """Show a progress bar with the current loss terms (on stderr)."""
    backward_precision: str = "full"
    """Precision of the matrix products in the backward of the fused SIREN layers: full, or bfloat16
    (~1.3x faster steps where bfloat16 is native, gradients ~2e-3 relative error; opt-in)."""
    setup: str = "flags"
    """flags: one Adam phase from --steps/--lr/--schedule, then L-BFGS for --lbfgs-steps; recommended: the
    measured parts for a problem nobody tuned (TrainConfig.recommended) over steps + lbfgs-steps gradient
    evaluations (a third Adam with loss balancing, the rest L-BFGS on RAD draws; docs/training.md)."""


# --- field documentation --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _attribute_docstrings(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of the string literals right below annotated fields in ``cls``'s own body."""
    try:
        src = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = next((n for n in ast.parse(src).body if isinstance(n, ast.ClassDef)), None)
    out: dict[str, str] = {}
    if body is None:
        return out
    for a, b in zip(body.body, body.body[1:]):
        if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
            out[a.target.id] = " ".join(b.value.value.split())
    return out


@functools.lru_cache(maxsize=None)
def _numpy_parameters(cls: type) -> dict[str, str]:
    """``{name: text}`` from the ``Parameters`` section of ``cls``'s own numpy-style docstring.

    An entry ``a, b : int`` documents both names; the type after `` : `` is
    dropped when the entry has a description of its own.
    """
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    lines = doc.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Parameters") + 2
    except StopIteration:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    head = ""
    desc: list[str] = []

    def flush() -> None:
        text = " ".join(desc).strip() or head
        for n in names:
            out[n] = " ".join(text.split())

    for ln in lines[start:]:
        if not ln.strip():
            continue
        if not ln.startswith(" "):
            if set(ln.strip()) <= {"-"}:  # the next section's underline: stop
                names = names[:-1] if names else names
                break
            flush()
            entry, _, head = ln.partition(" : ")
            names = [n.strip() for n in entry.split(",")]
            desc = []
        else:
            desc.append(ln.strip())
    flush()
    return out


def field_help(cls: type, name: str) -> str:
    """The documentation of field ``name`` of dataclass ``cls``: the nearest class in the MRO that documents it,
    else, for a training setting (:data:`FLAT_TRAIN_SETTINGS`), :class:`TrainSettings`' words."""
    for klass in cls.__mro__:
        if klass is object:
            continue
        for table in (_attribute_docstrings(klass), _numpy_parameters(klass)):
            if table.get(name):
                return table[name]
    if name in FLAT_TRAIN_SETTINGS and cls is not TrainSettings:  # a training setting restated without words
        return field_help(TrainSettings, name)
    return ""


# --- flags ------------------------------------------------------------------------------------------------


def _float_or_str(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _tuple_of(kind: Callable[[str], Any]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        return tuple(kind(v) for v in text.split(",") if v.strip())

    parse.__name__ = f"comma-separated {kind.__name__}"
    return parse


def _parser_for(tp: Any) -> Callable[[str], Any] | type | None:
    """An argparse ``type`` for annotation ``tp``; ``bool`` for a switch; ``None`` when there is no flag."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if all(a in (int, float, str) for a in args):
            return args[0] if len(args) == 1 else (_float_or_str if str in args else float)
        return None
    if origin is tuple and args and all(a in (int, float, str, Ellipsis) for a in args):
        return _tuple_of(args[0])
    if tp in (bool, int, float, str):
        return tp
    return None


def flag_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """``(field, argparse type)`` of every field of dataclass ``cls`` that can be a flag (not dicts, objects...)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = _parser_for(hints[f.name])
        if kind is not None:
            out.append((f, kind))
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def add_flags(parser: argparse.ArgumentParser, cls: type, *, skip: Iterable[str] = (),
              defaults: Mapping[str, Any] | None = None, extra_help: Mapping[str, str] | None = None,
              choices: Mapping[str, Sequence[Any]] | None = None, prefix: str = "") -> None:
    """Add a flag for every field of dataclass ``cls`` that can be one (see :func:`flag_fields`).

    ``--name-with-dashes`` (``dest`` = the field name) with the field's
    documentation as help and its class default as default. Booleans get a
    ``--name/--no-name`` pair. ``skip`` names fields the caller parses itself;
    ``defaults`` replaces a flag's default, ``extra_help`` appends to its help,
    ``choices`` restricts a flag's values (``setup`` is always restricted to
    :data:`SETUPS`). ``prefix`` puts a group's flags in a namespace
    of their own when one command holds two configurations with fields of the
    same name: ``prefix="reparam"`` makes ``hidden`` the flag
    ``--reparam-hidden`` with ``dest`` ``reparam_hidden`` (read back with
    ``from_args(cls, args, prefix="reparam")``); the keys of ``skip``,
    ``defaults``, ``extra_help`` and ``choices`` stay field names.
    """
    defaults, extra_help = dict(defaults or {}), dict(extra_help or {})
    choices = {"setup": SETUPS, **(choices or {})}
    skip = set(skip)
    for f, kind in flag_fields(cls):
        if f.name in skip:
            continue
        default = defaults.get(f.name, _default(f))
        help_ = " ".join(p for p in (field_help(cls, f.name), extra_help.get(f.name, "")) if p)
        help_ = _plain(help_).replace("%", "%%") + " (default: %(default)s)"
        dest = _dest(f.name, prefix)
        flag = "--" + dest.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=default, help=help_)
        else:
            parser.add_argument(flag, dest=dest, type=kind, default=default, help=help_, choices=choices.get(f.name))


def _plain(text: str) -> str:
    """Help text without Sphinx markup: ``:func:`a.b``` -> ``a.b``, double backquotes dropped."""
    import re

    return re.sub(r":[a-z]+:`~?([^`]*)`", r"\1", text).replace("``", "")


def _dest(name: str, prefix: str) -> str:
    """The ``argparse`` destination of field ``name`` in the flag group ``prefix`` (``""``: the name itself)."""
    return f"{prefix.replace('-', '_')}_{name}" if prefix else name


def from_args(cls: type[C], args: argparse.Namespace, *, prefix: str = "", **changes: Any) -> C:
    """An instance of dataclass ``cls`` from the fields present in ``args`` (as :func:`add_flags` named them,
    with the same ``prefix``); ``changes`` override."""
    values = {f.name: getattr(args, _dest(f.name, prefix)) for f in dataclasses.fields(cls)  # type: ignore[arg-type]
              if hasattr(args, _dest(f.name, prefix))}
    return cls(**{**values, **changes})


