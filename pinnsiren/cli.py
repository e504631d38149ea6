"""The ``pinnsiren`` command line: a driver over a registry of commands.

The core names no command. Commands are registered as entry points in the
group ``pinnsiren.commands`` (``setup.cfg``)::

    [options.entry_points]
    pinnsiren.commands =
        demo = solvers.pde.demo              # pinnsiren demo
        solve.helmholtz = solvers.pde.helmholtz   # pinnsiren solve helmholtz
        reference = reference.cli        # a group the module fills itself

A *command module* exposes ``add_arguments(parser)`` and ``main(args) -> int``;
a *group module* exposes ``add_subcommands(subparsers)``. Adding a
subcommand is one line there (and the module). Help texts are read from the
first paragraph of each module's docstring without importing it, so
``pinnsiren --help`` stays light; only the module of the command being run
is imported. A registered module that cannot be found is an error, never a
silently missing command.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser", "registered_commands", "Command", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "pinnsiren.commands"

GROUP_HELP = {
    "fit": "Fit a signal with a network.",
    "solve": "Solve a PDE with a neural network and compare with a reference.",
}


@dataclass(frozen=True)
class Command:
    """One registered command: ``group`` (e.g. "solve"), ``name`` ("" for a plain command), ``module``."""

    group: str
    name: str
    module: str


class CommandRegistryError(RuntimeError):
    """The command registry names a module that cannot be found."""


def _from_setup_cfg(path: Path) -> list[tuple[str, str]]:
    cfg = configparser.ConfigParser(inline_comment_prefixes=("#",))
    cfg.read(path, encoding="utf-8")
    text = cfg.get("options.entry_points", ENTRY_POINT_GROUP, fallback="")
    pairs = []
    for line in text.strip().splitlines():
        if line.strip():
            name, _, value = line.partition("=")
            pairs.append((name.strip(), value.strip()))
    return pairs


def registered_commands() -> list[Command]:
    """The commands of entry point group :data:`ENTRY_POINT_GROUP`.

    Read from the ``setup.cfg`` beside this package when there is one (a
    checkout, installed editable or not: the file being run is the truth),
    otherwise from the installed distribution's metadata (a wheel).
    """
    cfg = Path(__file__).resolve().parents[1] / "setup.cfg"
    if cfg.is_file():
        pairs = _from_setup_cfg(cfg)
    else:
        pairs = [(ep.name, ep.value) for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    out = []
    for full, value in pairs:
        group, _, name = full.partition(".")
        out.append(Command(group, name, value.split(":")[0].strip()))
    return sorted(out, key=lambda c: (c.group, c.name))


def _package_root() -> Path:
    """The folder that holds the ``pinnsiren`` package being run (a checkout's root, or site-packages)."""
    return Path(__file__).resolve().parents[1]


def _location(mod_or_spec: Any) -> Path | None:
    locs = list(getattr(mod_or_spec, "submodule_search_locations", None) or getattr(mod_or_spec, "__path__", None)
                or [])
    origin = getattr(mod_or_spec, "origin", None) or getattr(mod_or_spec, "__file__", None)
    if locs:
        return Path(locs[0]).resolve()
    return Path(origin).resolve().parent if origin else None


def ensure_own_package(module: str) -> None:
    """Make the top-level package of command ``module`` (e.g. ``solvers``) the one beside ``pinnsiren``.

    Under ``python -m pinnsiren`` the working directory comes first on
    ``sys.path``, so a user's own folder named ``solvers/`` or ``reference/``
    would be imported instead of ours. When ours exists beside ``pinnsiren``
    and the first one found is elsewhere, ours is loaded from its own folder
    (``sys.path`` is left alone) and a note names both paths on stderr. When a
    foreign package of that name is already imported, this raises
    :class:`CommandRegistryError` naming both paths.
    """
    top = module.split(".")[0]
    root = _package_root()
    ours = root / top
    if not (ours / "__init__.py").is_file():
        return  # nothing of ours to prefer (an installation that puts commands elsewhere)
    if top in sys.modules:
        where = _location(sys.modules[top])
        if where is not None and where != ours.resolve():
            raise CommandRegistryError(
                f"command module {module!r} must come from {ours}, beside pinnsiren ({root / 'pinnsiren'}), but a "
                f"different package {top!r} is already imported from {where}; rename that folder or run from "
                "another directory")
        return
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        found = None
    where = _location(found) if found is not None else None
    if where is not None and where == ours.resolve():
        return
    spec = importlib.machinery.PathFinder.find_spec(top, [str(root)])
    if spec is None or spec.loader is None:
        raise CommandRegistryError(f"cannot load {top!r} from {root} for command module {module!r}")
    if where is not None:
        print(f"pinnsiren: note: {where} shadows pinnsiren's own {top!r} package; using {ours} "
              f"(rename the folder in your working directory to silence this)", file=sys.stderr)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[top] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[top]
        raise


def own_packages(commands: Sequence[Command] = ()) -> list[str]:
    """The top-level packages installed with pinnsiren (from ``setup.cfg`` beside it, else the installed
    metadata's ``top_level.txt``), plus those of ``commands``."""
    cfg = _package_root() / "setup.cfg"
    names: set[str] = set()
    if cfg.is_file():
        parser = configparser.ConfigParser(inline_comment_prefixes=("#",))
        parser.read(cfg, encoding="utf-8")
        names = {w for w in parser.get("options.packages.find", "include", fallback="").split() if "." not in w}
    else:
        try:
            names = set((importlib.metadata.distribution("pinnsiren").read_text("top_level.txt") or "").split())
        except importlib.metadata.PackageNotFoundError:
            pass
    names |= {c.module.split(".")[0] for c in commands}
    names.discard("pinnsiren")
    return sorted(names)


def _spec_origin(module: str) -> str:
    ensure_own_package(module)
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        raise CommandRegistryError(
            f"command module {module!r} is registered in the {ENTRY_POINT_GROUP!r} entry points "
            "but cannot be found; reinstall pinnsiren (pip install -e .) or fix setup.cfg")
    return spec.origin


def module_help(module: str) -> str:
    """First paragraph of ``module``'s docstring, read without importing it (its parent package is imported)."""
    with open(_spec_origin(module), encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    para = " ".join(doc.strip().split("\n\n")[0].split()).replace("``", "")
    if para.startswith("pinnsiren ") and ": " in para:  # "pinnsiren demo: the main job ..."
        para = para.split(": ", 1)[1]
    return para[:1].upper() + para[1:]


def _wanted(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """The group and subcommand named on the command line (options skipped)."""
    words = [a for a in argv if not a.startswith("-")]
    return (words[0] if words else None), (words[1] if len(words) > 1 else None)


def _load(p: argparse.ArgumentParser, mod: Any) -> None:
    """Fill command parser ``p`` from command module ``mod`` (its flags; ``HELP_FLAGS``: those ``--help`` shows)."""
    mod.add_arguments(p)
    if "--threads" not in p._option_string_actions:  # every command controls its CPU threads the same way
        p.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: torch's choice; 1 on a shared or 2-core machine)")
    p.set_defaults(func=mod.main)
    p._pinnsiren_loaded = True
    p._pinnsiren_common = getattr(mod, "HELP_FLAGS", None)


def build_parser(argv: Sequence[str] = (), commands: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    """The full parser, importing only the module of the command named in ``argv``."""
    from . import __version__

    commands = registered_commands() if commands is None else list(commands)
    parser = argparse.ArgumentParser(
        prog="pinnsiren",
        description="Solve PDEs declared in SymPy with SIRENs and compare with grid solvers.",
    )
    parser.add_argument("--version", action="version", version=f"pinnsiren {__version__}")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND")
    if not commands:
        parser.epilog = (f"no commands are registered (entry point group {ENTRY_POINT_GROUP!r}): "
                         "install pinnsiren with `pip install -e .`")
    want_group, want_name = _wanted(argv)
    by_group: dict[str, list[Command]] = {}
    for c in commands:
        by_group.setdefault(c.group, []).append(c)
    for group, members in by_group.items():
        plain = [c for c in members if not c.name]
        if plain:
            c = plain[0]
            help_ = module_help(c.module)
            p = groups.add_parser(group, help=help_, description=help_)
            if group == want_group:
                for top in own_packages(commands):
                    ensure_own_package(top)
                mod = importlib.import_module(c.module)
                if hasattr(mod, "add_subcommands"):
                    mod.add_subcommands(p.add_subparsers(dest="subcommand", metavar="WHAT", required=True))
                    for leaf in _leaf_parsers(p):
                        leaf._pinnsiren_loaded = True
                else:
                    _load(p, mod)
            continue
        gp = groups.add_parser(group, help=GROUP_HELP.get(group, group), description=GROUP_HELP.get(group))
        sub = gp.add_subparsers(dest="subcommand", metavar="WHAT", required=True)
        for c in members:
            help_ = module_help(c.module)
            p = sub.add_parser(c.name, help=help_, description=help_)
            if group == want_group and c.name == want_name:
                for top in own_packages(commands):
                    ensure_own_package(top)
                _load(p, importlib.import_module(c.module))
    _finish_commands(parser, argv)
    return parser


PER_RANK_NOTE = ("Under torchrun (torchrun --nproc-per-node N -m pinnsiren ...) every per-step point count "
                 "(the options marked 'per process', e.g. --points) is per process: each of the N ranks draws that "
                 "many points from its own stream, so a step uses N times as many points; full-batch work is "
                 "repeated on every rank. Only rank 0 writes files. See docs/distributed.md.")

#: most lines a command's ``--help`` may take; the flags beyond the common ones wait for ``--help-all``
HELP_LINES = 50
#: the flags ``--help`` shows when the full list does not fit (a command module may name its own in ``HELP_FLAGS``)
COMMON_FLAGS = ("--arch", "--steps", "--lr", "--points", "--seed", "--device", "--out", "--resume", "--quick")
_MARKUP = [(re.compile(r":[a-z]+:`~?(?:[\w.]+\.)?([^`<]+?)`"), r"\1"), (re.compile(r"``([^`]*)``"), r"\1")]


def _plain(text: str | None) -> str | None:
    """``text`` without Sphinx markup (``:class:`~a.B``` -> ``B``, double backquotes dropped)."""
    if not text or text is argparse.SUPPRESS:
        return text
    for pat, rep in _MARKUP:
        text = pat.sub(rep, text)
    return text


class _HelpAll(argparse.Action):
    """``--help-all``: every flag of the command, then exit."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show every flag of this command and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None):
        show_all(parser)
        parser.print_help()
        parser.exit()


def show_all(parser: argparse.ArgumentParser) -> None:
    """Put back the flags :func:`_collapse` hid from ``parser``'s ``--help``."""
    for action, text in getattr(parser, "_pinnsiren_hidden", {}).items():
        action.help = text
    parser.epilog = getattr(parser, "_pinnsiren_full_epilog", parser.epilog)
    parser._pinnsiren_hidden = {}


def _collapse(p: argparse.ArgumentParser, common: Sequence[str] | None) -> None:
    """Add ``--help-all`` to command parser ``p``; when its help is longer than :data:`HELP_LINES`, hide from
    ``--help`` every flag but the positionals and ``common`` (default :data:`COMMON_FLAGS`)."""
    p.description = _plain(p.description)
    for action in p._actions:
        action.help = _plain(action.help)
    p.add_argument("--help-all", action=_HelpAll)
    p._pinnsiren_full_epilog = p.epilog
    if len(p.format_help().splitlines()) <= HELP_LINES:
        return
    keep = set(COMMON_FLAGS if common is None else common) | {"-h", "--help", "--help-all"}
    hidden = {a: a.help for a in p._actions
              if a.option_strings and a.help is not argparse.SUPPRESS and not keep & set(a.option_strings)}
    for action in hidden:
        action.help = argparse.SUPPRESS
    p._pinnsiren_hidden = hidden
    prog = p.prog
    p.epilog = (f"{len(hidden)} more flags: {prog} --help-all lists them." if not p.epilog
                else f"{p.epilog}\n\n{len(hidden)} more flags: {prog} --help-all lists them.")


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of ``parser``'s commands that take flags (no subcommands of their own)."""
    out, stack = [], [parser]
    while stack:
        p = stack.pop()
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            stack.extend(action.choices.values())
        if not subs and p is not parser:
            out.append(p)
    return out


def _document_per_rank_points(parser: argparse.ArgumentParser) -> None:
    """Say once, in ``pinnsiren --help``, that per-step point counts are per rank under torchrun; mark those
    flags in every command's help."""
    if not parser.epilog:
        parser.epilog = PER_RANK_NOTE
    for p in _leaf_parsers(parser):
        for action in p._actions:
            if action.help and "per step" in action.help:
                action.help += " (per process under torchrun)"


def _finish_commands(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Per-process notes, then ``--help-all`` on every command and a ``--help`` that fits on one screen."""
    _document_per_rank_points(parser)
    for p in _leaf_parsers(parser):
        if getattr(p, "_pinnsiren_loaded", False):
            _collapse(p, getattr(p, "_pinnsiren_common", None))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
    except CommandRegistryError as exc:
        print(f"pinnsiren: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from . import distributed
    from .validate import UsageError, preflight

    try:
        preflight(args)  # bad input: a one-line error before any work (exit status 2)
    except UsageError as exc:
        print(f"pinnsiren: error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "threads", None):  # before any work: oversubscribed threads cost 25x on small machines
        import torch  # noqa: PLC0415 (only when asked: --help and the reference commands stay light)

        torch.set_num_threads(args.threads)
    ok = False
    try:
        distributed.setup_cli(getattr(args, "device", None) or "cpu")  # under torchrun: join the job
        code = int(args.func(args) or 0)
        ok = True
        return code
    except UsageError as exc:
        print(f"pinnsiren: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pinnsiren: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # failed work: one line, no traceback (PINNSIREN_TRACEBACK=1 shows it)
        if os.environ.get("PINNSIREN_TRACEBACK"):
            raise
        print(f"pinnsiren: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown(clean=ok)


def _one_line(exc: BaseException) -> str:
    """``exc`` as one line; the type is named where the message alone would not say what failed."""
    text = " ".join(str(exc).split())
    if isinstance(exc, (ValueError, FileNotFoundError, FloatingPointError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
