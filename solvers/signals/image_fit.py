"""Fit an image with a coordinate network (paper §3, Fig. 1).

Coordinates live in ``[-1, 1]^2`` (axis 0 = rows, axis 1 = columns), pixel
values are mapped to ``[-1, 1]``, the loss is the MSE over all pixels and the
optimiser Adam. PSNR is measured after mapping the prediction back to
``[0, 1]`` and clipping (data range 1).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from pinnsiren.evaluation import evaluate
from pinnsiren.settings import ModelSettings, add_flags, from_args
from pinnsiren.networks import ARCHITECTURES, check_architectures, nyquist_frequencies

from .images import load_image, pixel_grid, psnr
from . import inpaint
from .signal_fit import FitSettings, fit_config, fit_each, fit_values, write_fits


__all__ = [
    "ImageFitConfig",
    "fit_image",
    "derivative_views",
    "plot_fit_figure",
    "run",
]


@dataclass
class ImageFitConfig(ModelSettings, FitSettings):
    """Settings of one image fit (defaults: the paper's)."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes stored with the result."""
    steps: int = 500
    log_every: int = 25


def _make_model(cfg: ImageFitConfig, side: int) -> nn.Module:
    kwargs: dict[str, Any] = {}
    if cfg.arch == "relu-pe":
        kwargs["num_frequencies"] = nyquist_frequencies(side)
    return cfg.build_model(2, 1, **kwargs)


def fit_image(image01: np.ndarray, cfg: ImageFitConfig, show_progress: bool = True) -> dict[str, Any]:
    """Fit one network to one image.

    Parameters
    ----------
    image01 : ndarray, shape (S, S)
        Grayscale image in ``[0, 1]``.
    cfg : ImageFitConfig

    Returns
    -------
    dict
        ``model`` (trained, on CPU), ``prediction`` ((S, S) in [0, 1]),
        ``psnr`` (dB), ``history`` (``step``, ``loss``, ``psnr`` arrays),
        ``seconds`` (wall time of the training loop).
    """
    if image01.ndim != 2 or image01.shape[0] != image01.shape[1]:
        raise ValueError(f"expected a square grayscale image, got shape {image01.shape}")
    side = image01.shape[0]
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = _make_model(cfg, side).to(device)
    x = pixel_grid(side).to(device)
    target = torch.as_tensor(image01.reshape(-1, 1) * 2.0 - 1.0, dtype=torch.float32, device=device)
    t0 = time.perf_counter()
    hist = fit_values(model, x, target, steps=cfg.steps, lr=cfg.lr, batch=None, seed=cfg.seed,
                      log_every=cfg.log_every, show_progress=show_progress)
    seconds = time.perf_counter() - t0
    # MSE on [-1, 1] -> PSNR on [0, 1]
    hist["psnr"] = [10.0 * math.log10(4.0 / lv) if lv > 0 else float("inf") for lv in hist["loss"]]
    model = model.cpu().eval()
    with torch.no_grad():
        pred = (model(pixel_grid(side)).reshape(side, side).numpy().astype(np.float64) + 1.0) / 2.0
    return dict(
        model=model,
        prediction=np.clip(pred, 0.0, 1.0),
        psnr=psnr(pred, image01),
        history={k: np.asarray(v) for k, v in hist.items()},
        seconds=seconds,
    )


def derivative_views(model: nn.Module, side: int, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude and Laplacian of a fitted image network.

    Derivatives are taken with respect to the ``[-1, 1]^2`` coordinates of
    the network output (which lives in ``[-1, 1]``), by the derivative
    engine (closed-form Taylor propagation for SIRENs and MLPs).

    Returns
    -------
    grad_mag, laplacian : ndarray, shape (side, side)
    """
    from pinnsiren import derivatives

    keys = [(0, (1, 0)), (0, (0, 1)), (0, (2, 0)), (0, (0, 2))]

    def views(m: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        jet = {k: v.detach() for k, v in derivatives(m, x, keys).items()}
        return torch.sqrt(jet[keys[0]] ** 2 + jet[keys[1]] ** 2), jet[keys[2]] + jet[keys[3]]

    g, lap = evaluate(model, pixel_grid(side), chunk, views, grad=True)
    return g.cpu().reshape(side, side).numpy(), lap.cpu().reshape(side, side).numpy()


def image_derivatives(image01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth views: Sobel gradient magnitude and discrete Laplacian."""
    from scipy import ndimage

    gy = ndimage.sobel(image01, axis=0)
    gx = ndimage.sobel(image01, axis=1)
    return np.hypot(gx, gy), ndimage.laplace(image01)


def plot_fit_figure(
    image01: np.ndarray, results: dict[str, dict[str, Any]], path: str | Path
) -> Path:
    """The paper's Fig. 1 layout: rows fit, |gradient|, Laplacian; columns
    ground truth then each architecture (PSNR in the title)."""
    from pinnsiren.plotting import pyplot, save_figure

    plt = pyplot()

    side = image01.shape[0]
    gt_g, gt_l = image_derivatives(image01)
    cols = [("ground truth", image01, gt_g, gt_l)]
    for arch, res in results.items():
        g, lap = derivative_views(res["model"], side)
        cols.append((f"{arch}\n{res['psnr']:.2f} dB", res["prediction"], g, lap))
    fig, axes = plt.subplots(3, len(cols), figsize=(2.6 * len(cols), 8.0), squeeze=False)
    for j, (title, img, g, lap) in enumerate(cols):
        axes[0, j].imshow(img, cmap="gray", vmin=0, vmax=1)
        axes[1, j].imshow(g, cmap="gray", vmin=0, vmax=np.percentile(g, 99.5) or 1.0)
        v = np.percentile(np.abs(lap), 99) or 1.0
        axes[2, j].imshow(lap, cmap="gray", vmin=-v, vmax=v)
        axes[0, j].set_title(title, fontsize=9)
        for i in range(3):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    for i, name in enumerate(["fit", "|gradient|", "Laplacian"]):
        axes[i, 0].set_ylabel(name)
    return save_figure(fig, path, dpi=110)


def run(
    path: str | None,
    archs: Sequence[str],
    out: str | Path,
    size: int = 256,
    show_progress: bool = True,
    cfg: ImageFitConfig | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Fit the image with each architecture, write ``image_fit.h5`` and ``image_fit.png``.

    The settings are ``cfg`` (default ``ImageFitConfig()``) with any
    :class:`ImageFitConfig` field given in ``settings`` replaced (``steps=``,
    ``lr=``, ``hidden=``...); ``arch`` is set per fit.
    """
    check_architectures(archs)
    image = load_image(path, size)
    base = fit_config(ImageFitConfig, cfg, settings)
    results = fit_each(archs, base, lambda c: fit_image(image, c, show_progress=show_progress),
                       lambda r, n: f"PSNR {r['psnr']:.2f} dB after {n} steps ({r['seconds']:.1f} s)")
    out = Path(out)
    h5 = write_fits(out / "image_fit.h5", "image-fit", results, ("image", image),
                    config=dict(image=str(path) if path else "skimage.data.camera", size=size),
                    metrics={f"psnr_{a}": r["psnr"] for a, r in results.items()},
                    field_attrs={"image": {"bounds": [[-1, 1], [-1, 1]]}})
    png = plot_fit_figure(image, results, out / "image_fit.png")
    print(f"wrote {h5} and {png}")
    return dict(results=results, h5=h5, png=png)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default=None, help="image file (default: cameraman)")
    p.add_argument("--arch", default="siren",
                   help=f"comma-separated architectures from {', '.join(ARCHITECTURES)} (default siren)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--out", default="results/image_fit", help="output folder")
    p.add_argument("--inpaint", type=float, default=None, metavar="FRACTION",
                   help="fit only this random fraction of the pixels (e.g. 0.1); see solvers/signals/inpaint.py")
    p.add_argument("--prior", default="none",
                   help="with --inpaint: comma-separated priors from none, tv, fh (default none)")
    p.add_argument("--prior-weight", type=float, default=None,
                   help="with --inpaint: weight of the prior (default per prior, solvers/signals/inpaint.py)")
    add_flags(p, ImageFitConfig, skip=("arch",))


def main(args: argparse.Namespace) -> int:
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    cfg = from_args(ImageFitConfig, args, arch="siren")  # run() sets arch per fit
    if args.inpaint is not None:
        if len(archs) != 1:
            raise ValueError("--inpaint takes one architecture")
        priors = [p.strip() for p in args.prior.split(",") if p.strip()]
        inpaint.run_inpaint(args.path, priors, args.inpaint, args.out, archs[0], size=args.size,
                            weight=args.prior_weight, settings=cfg)
        return 0
    run(args.path, archs, args.out, size=args.size, cfg=cfg)
    return 0
