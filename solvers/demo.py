"""``pinnsiren demo``: the main job in a few minutes on a CPU."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="results/demo", help="output folder (default results/demo)")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")


def main(args: argparse.Namespace) -> int:
    from solvers.image_fit import run

    print("pinnsiren demo: fitting the 128x128 cameraman with a SIREN and a ReLU MLP")
    run(None, ["siren", "relu"], args.steps, 1e-4, 128, args.out, device=args.device)
    return 0
