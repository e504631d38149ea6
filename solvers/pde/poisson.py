"""Poisson image reconstruction and editing (paper §4.1, supplement §3).

A network ``u(x)`` on ``[-1, 1]^2`` is supervised only by derivatives of an
image ``f`` (pixels mapped to ``[-1, 1]``): by its gradient
(``gradient_supervised``: ``∇u = 10 · Sobel(f)``) or by its Laplacian
(``laplacian_supervised``: ``Δu = 1e4 · Laplace(f)``), the paper's constant
factors. The residuals come from ``equations.poisson``; the pixel data ride
on a :class:`~pinnsiren.regions.PointSet`.

Metrics follow supplement Table 1: PSNR of the reconstructed image, of its
gradient and of its Laplacian against the ground truth *after normalisation*
(the reconstruction is only defined up to a constant, and the paper's
factors only approximate the pixel spacing): each prediction is mapped onto
the ground truth by the least-squares affine fit ``a·p + b``, and the PSNR
uses the ground truth's range as data range.

Alongside, ``reference.reconstruct_from_gradient`` solves the same problem
as a linear least-squares system on the pixel grid.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import sympy
import torch
from torch import nn

from equations import poisson as peq
from pinnsiren.evaluation import evaluate
from pinnsiren.networks import nyquist_frequencies
from pinnsiren.problem import Problem
from pinnsiren.regions import PointSet
from pinnsiren.settings import ModelSettings, TrainSettings, add_flags, from_args
from pinnsiren.symbolic import Field
from pinnsiren.train import train
from solvers.signals.images import load_image, pixel_grid

__all__ = ["PoissonConfig", "targets", "normalized_psnr", "solve", "run", "model_views"]

GRAD_SCALE = 10.0
LAPLACE_SCALE = 1e4


@dataclass
class PoissonConfig(ModelSettings, TrainSettings):
    """One Poisson image fit. The paper: 256 x 3 SIREN, all pixels per step,
    Adam 1e-4, 10 000 steps."""

    supervision: str = "gradient"
    """What supervises the network: gradient (Sobel) or laplacian."""
    points: int = 8192
    """Pixels per step (the paper: all)."""

    def validate(self) -> None:
        if self.supervision not in ("gradient", "laplacian"):
            raise ValueError(f"supervision must be 'gradient' or 'laplacian', got {self.supervision!r}")
        self.check_arch()


def targets(img01: np.ndarray) -> dict[str, np.ndarray]:
    """Ground-truth views of an image in ``[0, 1]``: ``image`` in [-1, 1],
    ``gx, gy`` (Sobel), ``lap`` (5-point Laplace filter), unscaled."""
    from scipy import ndimage

    f = img01 * 2.0 - 1.0
    return dict(image=f, gx=ndimage.sobel(f, axis=0), gy=ndimage.sobel(f, axis=1), lap=ndimage.laplace(f))


def normalized_psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR after the least-squares affine fit of ``pred`` to ``gt`` (data range of ``gt``)."""
    p, g = np.asarray(pred, float).ravel(), np.asarray(gt, float).ravel()
    A = np.stack([p, np.ones_like(p)], 1)
    coef, *_ = np.linalg.lstsq(A, g, rcond=None)
    mse = float(np.mean((A @ coef - g) ** 2))
    rng = float(g.max() - g.min())
    return float("inf") if mse == 0 else 10.0 * np.log10(rng**2 / mse)


def pose(cfg: PoissonConfig, data: dict[str, np.ndarray]) -> Problem:
    x, y = sympy.symbols("x y", real=True)
    u = Field("u", (x, y))
    side = data["image"].shape[0]
    pts = pixel_grid(side).double().numpy()
    if cfg.supervision == "gradient":
        expr = peq.gradient_supervised(u, ["gx", "gy"])
        pdata = {"gx": GRAD_SCALE * data["gx"].ravel(), "gy": GRAD_SCALE * data["gy"].ravel()}
    else:
        expr = peq.laplacian_supervised(u, "lap")
        pdata = {"lap": LAPLACE_SCALE * data["lap"].ravel()}
    from pinnsiren.symbolic import Constraint

    return Problem([u], [x, y], [Constraint(expr, PointSet(pts, pdata), name=cfg.supervision,
                                            n=min(cfg.points, side * side), norm="l2")])


def model_views(model: nn.Module, side: int, chunk: int = 16384) -> dict[str, np.ndarray]:
    """The network's image, Sobel-unit gradient and Laplace-filter-unit Laplacian on the pixel grid."""
    from pinnsiren import derivatives

    keys = [(0, (0, 0)), (0, (1, 0)), (0, (0, 1)), (0, (2, 0)), (0, (0, 2))]

    def views(m: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        jet = derivatives(m, x, keys)
        return dict(image=jet[keys[0]], gx=jet[keys[1]] / GRAD_SCALE, gy=jet[keys[2]] / GRAD_SCALE,
                    lap=(jet[keys[3]] + jet[keys[4]]) / LAPLACE_SCALE)

    out = evaluate(model, pixel_grid(side), chunk, views, grad=True)
    return {k: v.cpu().reshape(side, side).double().numpy() for k, v in out.items()}


def view_psnrs(views: dict[str, np.ndarray], data: dict[str, np.ndarray]) -> dict[str, float]:
    """Supplement Table 1 rows: image, gradient (both components), Laplacian."""
    grad_pred = np.concatenate([views["gx"].ravel(), views["gy"].ravel()])
    grad_gt = np.concatenate([data["gx"].ravel(), data["gy"].ravel()])
    return dict(
        psnr_image=normalized_psnr(views["image"], data["image"]),
        psnr_gradient=normalized_psnr(grad_pred, grad_gt),
        psnr_laplacian=normalized_psnr(views["lap"], data["lap"]),
    )


def solve(cfg: PoissonConfig, data: dict[str, np.ndarray]) -> dict[str, Any]:
    cfg.validate()
    side = data["image"].shape[0]
    torch.manual_seed(cfg.seed)
    kwargs = {"num_frequencies": nyquist_frequencies(side)} if cfg.arch == "relu-pe" else {}
    model = cfg.build_model(2, 1, **kwargs)
    res = train(pose(cfg, data), model, cfg.train_config())
    model = res.model.cpu()
    views = model_views(model, side)
    metrics = view_psnrs(views, data)
    metrics["seconds"] = res.seconds
    return dict(model=model, views=views, metrics=metrics, history=res.history, config=asdict(cfg))


def blend_targets(img1: np.ndarray, img2: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """Poisson image editing: the gradient ``alpha ∇f1 + (1 - alpha) ∇f2``."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    t1, t2 = targets(img1), targets(img2)
    return {k: alpha * t1[k] + (1 - alpha) * t2[k] for k in t1}


def reference_reconstruction(data: dict[str, np.ndarray]) -> dict[str, float]:
    """The FD least-squares reconstruction from the same Sobel gradient (reference/)."""
    from reference import reconstruct_from_gradient, sobel_gradient

    f = data["image"]
    gx, gy = sobel_gradient(f)
    rec = reconstruct_from_gradient(gx, gy, mean=float(f.mean()))
    return dict(psnr_image=normalized_psnr(rec, f), image=rec)


def plot_figure(data, results, path: str | Path) -> Path:
    from pinnsiren.plotting import pyplot, save_figure

    plt = pyplot()

    cols = [("ground truth", data)] + [(f"{a}\n{s}", r["views"]) for (a, s), r in results.items()]
    fig, axes = plt.subplots(3, len(cols), figsize=(2.4 * len(cols), 7.4), squeeze=False)
    for j, (title, v) in enumerate(cols):
        g = np.hypot(v["gx"], v["gy"])
        panels = (v["image"], g, v["lap"])
        for i, img in enumerate(panels):
            lo, hi = np.percentile(img, [0.5, 99.5])
            axes[i, j].imshow(img, cmap="gray", vmin=lo, vmax=hi)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[0, j].set_title(title, fontsize=8)
    for i, name in enumerate(["image", "|gradient|", "Laplacian"]):
        axes[i, 0].set_ylabel(name)
    return save_figure(fig, path, dpi=100)


def format_table(results: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Supplement Table 1 layout."""
    keys = list(results)
    head = "| | " + " | ".join(f"{a} ({s})" for a, s in keys) + " |"
    lines = [head, "|---" * (len(keys) + 1) + "|"]
    for row, label in (("psnr_image", "Reconstructed image"), ("psnr_gradient", "Reconstructed gradient"),
                       ("psnr_laplacian", "Reconstructed Laplacian")):
        lines.append(f"| {label} | " + " | ".join(f"{results[k]['metrics'][row]:.2f}" for k in keys) + " |")
    return "\n".join(lines)


def run(path: str | None, archs: Sequence[str], supervisions: Sequence[str], cfg: PoissonConfig, size: int,
        out: str | Path, blend: str | None = None, alpha: float = 0.5) -> dict[str, Any]:
    from pinnsiren.io import write_result

    img = load_image(path, size)
    data = blend_targets(img, load_image(blend, size), alpha) if blend else targets(img)
    t = time.perf_counter()
    ref = reference_reconstruction(data)
    print(f"FD least-squares reconstruction from the Sobel gradient: PSNR {ref['psnr_image']:.2f} dB "
          f"({time.perf_counter() - t:.2f} s)")
    results = {}
    for s in supervisions:
        for a in archs:
            results[(a, s)] = solve(PoissonConfig(**{**asdict(cfg), "arch": a, "supervision": s}), data)
            m = results[(a, s)]["metrics"]
            print(f"{a:>8s} from {s:9s}: image {m['psnr_image']:.2f} dB, gradient {m['psnr_gradient']:.2f} dB, "
                  f"Laplacian {m['psnr_laplacian']:.2f} dB ({m['seconds']:.0f} s)")
    print(format_table(results))
    out = Path(out)
    fields = {"image": data["image"], "reference_reconstruction": ref["image"]}
    for (a, s), r in results.items():
        for k, v in r["views"].items():
            fields[f"{a}_{s}/{k}"] = v
    h5 = write_result(
        out / "poisson.h5", kind="poisson-image",
        config=dict(cfg=asdict(cfg), archs=list(archs), supervisions=list(supervisions), size=size,
                    image=path or "skimage.data.camera", blend=blend, alpha=alpha,
                    grad_scale=GRAD_SCALE, laplace_scale=LAPLACE_SCALE),
        metrics={**{f"{k}_{a}_{s}": v for (a, s), r in results.items() for k, v in r["metrics"].items()},
                 "psnr_image_reference": ref["psnr_image"]},
        history={f"{a}_{s}/{k}": np.asarray(v) for (a, s), r in results.items() for k, v in r["history"].items()},
        fields=fields, models={f"{a}_{s}": r["model"] for (a, s), r in results.items()},
    )
    png = plot_figure(data, results, out / "poisson.png")
    print(f"wrote {h5} and {png}")
    return dict(results=results, reference=ref, h5=h5, png=png)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default=None, help="image file (default: cameraman)")
    p.add_argument("--arch", default="siren", help="comma-separated architectures (siren, tanh, relu-pe, ...)")
    p.add_argument("--supervision", default="gradient", help="gradient, laplacian, or both comma-separated")
    p.add_argument("--blend", default=None, help="second image: fit alpha*grad f1 + (1-alpha)*grad f2")
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--out", default="results/poisson")
    add_flags(p, PoissonConfig, skip=("arch", "supervision"), extra_help={"steps": "(paper 10000)"})


def main(args: argparse.Namespace) -> int:
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    sups = [s.strip() for s in args.supervision.split(",") if s.strip()]
    cfg = from_args(PoissonConfig, args, arch="siren", supervision="gradient")  # run() sets both per fit
    res = run(args.path, archs, sups, cfg, args.size, args.out, args.blend, args.alpha)
    print(json.dumps({f"{a}_{s}": r["metrics"] for (a, s), r in res["results"].items()}, indent=1))
    return 0
