"""The ``pinnsiren`` command line.

Subcommands are registered from small modules, each exposing
``add_arguments(parser)`` and ``main(args) -> int``. Those modules live in
``solvers/`` and ``reference/`` and are imported only while the parser is
built (the only place ``pinnsiren`` reaches up into them).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Sequence

__all__ = ["main", "build_parser"]

#: group -> {subcommand: (module, help)}; a group with one entry under "" is a
#: plain command.
COMMANDS: dict[str, dict[str, tuple[str, str]]] = {
    "demo": {"": ("solvers.demo", "run the main job: a neural Helmholtz solve compared with FD")},
    "fit": {"image": ("solvers.image_fit", "fit an image with a coordinate network (paper Fig. 1)")},
    "solve": {
        "poisson": ("solvers.poisson", "Poisson image reconstruction from gradient/Laplacian"),
        "helmholtz": ("solvers.helmholtz", "Helmholtz with PML, neural vs finite differences"),
        "wave": ("solvers.wave", "wave equation initial value problem, neural vs FD"),
        "sdf": ("solvers.sdf", "signed distance function from an oriented point cloud"),
    },
    "fwi": {"": ("solvers.fwi", "full-waveform inversion: ADMM, adjoint-state and neural")},
}

GROUP_HELP = {
    "fit": "fit a signal with a network",
    "solve": "solve a PDE with a neural network and compare with a reference",
    "reference": "finite-difference reference solvers (HDF5 + PNG)",
}


def _module(name: str):
    """Import ``name`` if it exists; None when the module is not there at all."""
    if importlib.util.find_spec(name.split(".")[0]) is None or importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="pinnsiren",
        description="Solve PDEs declared in SymPy with SIRENs and compare with grid solvers.",
    )
    parser.add_argument("--version", action="version", version=f"pinnsiren {__version__}")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group, entries in COMMANDS.items():
        if "" in entries:
            mod = _module(entries[""][0])
            if mod is None:
                continue
            p = groups.add_parser(group, help=entries[""][1], description=entries[""][1])
            mod.add_arguments(p)
            p.set_defaults(func=mod.main)
            continue
        mods = {k: (_module(m), h) for k, (m, h) in entries.items()}
        mods = {k: v for k, v in mods.items() if v[0] is not None}
        if not mods:
            continue
        gp = groups.add_parser(group, help=GROUP_HELP[group], description=GROUP_HELP[group])
        sub = gp.add_subparsers(dest="subcommand", metavar="WHAT", required=True)
        for k, (mod, h) in mods.items():
            p = sub.add_parser(k, help=h, description=h)
            mod.add_arguments(p)
            p.set_defaults(func=mod.main)
    _document_per_rank_points(parser)
    ref = _module("reference.cli")
    if ref is not None:
        gp = groups.add_parser("reference", help=GROUP_HELP["reference"],
                               description=GROUP_HELP["reference"])
        ref.add_subcommands(gp.add_subparsers(dest="subcommand", metavar="WHAT", required=True))
    return parser


PER_RANK_NOTE = ("Under torchrun (torchrun --nproc-per-node N -m pinnsiren ...) every per-step point count "
                 "(the options marked 'per process', e.g. --points) is per process: each of the N ranks draws that "
                 "many points from its own stream, so a step uses N times as many points; full-batch work is "
                 "repeated on every rank. Only rank 0 writes files. See docs/distributed.md.")


def _document_per_rank_points(parser: argparse.ArgumentParser) -> None:
    """Say in every subcommand's ``--help`` that per-step point counts are per rank under torchrun."""
    stack = [parser]
    while stack:
        p = stack.pop()
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            stack.extend(action.choices.values())
        if subs or p is parser:
            continue
        p.epilog = PER_RANK_NOTE
        for action in p._actions:
            if action.help and "per step" in action.help:
                action.help += " (per process under torchrun)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from . import distributed

    try:
        distributed.setup_cli(getattr(args, "device", None) or "cpu")  # under torchrun: join the job
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FloatingPointError) as exc:
        print(f"pinnsiren: error: {exc}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
