"""Single-image inpainting with a coordinate network and a prior on the representation (paper supplement §6.3).

A network is fitted to a random fraction of the pixels (the mask); a prior
on the represented function, evaluated by the derivative engine at random
points of ``[-1, 1]^2`` each step, fills the rest:

- ``none``: data term only;
- ``tv``: total variation, the mean of ``|grad f|``;
- ``fh``: Frobenius norm of the Hessian, the mean of ``||hess f||_F``.

The loss is ``MSE(observed pixels) + weight * prior``. PSNR is measured on
all pixels (observed or not) after mapping back to ``[0, 1]`` and clipping.
Used by ``pinnsiren fit image --inpaint FRACTION --prior {none,tv,fh}``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from pinnsiren.networks import check_architectures, nyquist_frequencies
from pinnsiren.train import train
from pinnsiren.settings import ModelSettings, check_choice

from .images import load_image, pixel_grid, psnr
from .signal_fit import FitSettings, fit_config, fit_trainer, train_history


__all__ = ["PRIORS", "DEFAULT_WEIGHTS", "InpaintConfig", "InpaintLoss", "random_mask", "prior_value",
           "inpaint_image", "run_inpaint"]

#: prior names
PRIORS = ("none", "tv", "fh")

#: default prior weights (output and coordinates both in [-1, 1]); chosen on
#: scikit-image's ``coins`` photograph, not on the benchmark images (see
#: docs/signals.md)
DEFAULT_WEIGHTS = {"none": 0.0, "tv": 1e-4, "fh": 1e-6}

_EPS = 1e-8  # keeps the square roots differentiable at zero


def random_mask(side: int, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean ``(side, side)`` mask with ``round(fraction * side**2)`` pixels set, drawn uniformly."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = side * side
    k = max(1, int(round(fraction * n)))
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=k, replace=False)] = True
    return mask.reshape(side, side)


def prior_value(model: nn.Module, x: torch.Tensor, prior: str) -> torch.Tensor:
    """Mean of the prior's density over the points ``x`` (N, 2), differentiable in the weights."""
    from pinnsiren import derivatives

    if prior == "none":
        return x.new_zeros(())
    if prior == "tv":
        keys = [(0, (1, 0)), (0, (0, 1))]
        j = derivatives(model, x, keys)
        return torch.sqrt(j[keys[0]] ** 2 + j[keys[1]] ** 2 + _EPS).mean()
    if prior == "fh":
        keys = [(0, (2, 0)), (0, (1, 1)), (0, (0, 2))]
        j = derivatives(model, x, keys)
        return torch.sqrt(j[keys[0]] ** 2 + 2.0 * j[keys[1]] ** 2 + j[keys[2]] ** 2 + _EPS).mean()
    raise ValueError(f"unknown prior {prior!r}; must be one of {list(PRIORS)}")


@dataclass
class InpaintConfig(ModelSettings, FitSettings):
    """Settings of one inpainting fit."""

    prior: str = "none"
    """Prior on the unobserved pixels: none, tv (total variation) or fh (Frobenius norm of the Hessian)."""
    weight: float | None = None
    """Weight of the prior (default: DEFAULT_WEIGHTS[prior])."""
    fraction: float = 0.1
    """Share of the pixels observed."""
    prior_points: int | None = None
    """Points per step where the prior is evaluated (default: as many as observed pixels)."""
    steps: int = 500
    log_every: int = 25


class InpaintLoss:
    """The inpainting loss as a problem of :func:`pinnsiren.train.train`: ``data``, the MSE on the observed
    pixels ``x_obs`` (N, 2), ``y_obs`` (N, 1), and ``prior``, ``weight`` times the prior at ``n_prior`` points
    drawn uniformly in ``[-1, 1]^2`` from the trainer's generator each step (no prior term when the prior is
    ``none`` or the weight 0)."""

    def __init__(self, x_obs: torch.Tensor, y_obs: torch.Tensor, prior: str, weight: float, n_prior: int) -> None:
        self.x_obs, self.y_obs, self.prior, self.weight, self.n_prior = x_obs, y_obs, prior, weight, n_prior

    def losses(self, model: nn.Module, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        terms = {"data": torch.mean((model(self.x_obs) - self.y_obs) ** 2)}
        if self.prior != "none" and self.weight > 0:
            xp = (torch.rand(self.n_prior, 2, generator=generator) * 2.0 - 1.0).to(self.x_obs.device)
            terms["prior"] = self.weight * prior_value(model, xp, self.prior)
        return terms


def _train(model: torch.nn.Module, x_obs: torch.Tensor, y_obs: torch.Tensor, cfg: InpaintConfig, weight: float,
           show_progress: bool) -> tuple[dict[str, list[float]], float]:
    """Adam on :class:`InpaintLoss` by the trainer (sampler seeded ``cfg.seed + 1``); ``(history, CPU s)``.

    History: ``step``, ``loss``, ``data`` and ``prior`` (unweighted; 0 without a prior term)."""
    loss = InpaintLoss(x_obs, y_obs, cfg.prior, weight, cfg.prior_points or x_obs.shape[0])
    c0 = time.process_time()
    out = train(loss, model, fit_trainer(cfg.steps, cfg.lr, cfg.seed + 1, x_obs.device, cfg.log_every,
                                         show_progress))
    hist = train_history(out.history, data="data")
    terms = out.history.get("loss.prior")
    hist["prior"] = [v / weight for v in terms] if terms else [0.0] * len(hist["step"])
    return hist, time.process_time() - c0


def _masked_psnr(pred: np.ndarray, image01: np.ndarray, sel: np.ndarray) -> float:
    """PSNR (dB, data range 1) over the pixels ``sel``."""
    mse = float(np.mean((pred[sel] - image01[sel]) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def inpaint_image(image01: np.ndarray, mask: np.ndarray, cfg: InpaintConfig,
                  show_progress: bool = True) -> dict[str, Any]:
    """Fit the observed pixels ``image01[mask]`` with a prior; PSNR on all pixels.

    Returns
    -------
    dict
        ``model`` (CPU), ``prediction`` ((S, S) in [0, 1]), ``psnr`` (all
        pixels), ``psnr_observed``, ``psnr_unobserved``, ``history``
        (``step``, ``loss``, ``data``, ``prior``), ``cpu_seconds``.
    """
    check_choice("prior", cfg.prior, PRIORS)
    side = image01.shape[0]
    if image01.shape != (side, side) or mask.shape != image01.shape:
        raise ValueError(f"expected a square image and a mask of its shape, got {image01.shape}, {mask.shape}")
    weight = DEFAULT_WEIGHTS[cfg.prior] if cfg.weight is None else float(cfg.weight)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    kwargs: dict[str, Any] = {}
    if cfg.arch == "relu-pe":
        kwargs["num_frequencies"] = nyquist_frequencies(side)
    model = cfg.build_model(2, 1, **kwargs).to(device)
    grid = pixel_grid(side)
    flat = mask.reshape(-1)
    x_obs = grid[torch.as_tensor(flat)].to(device)
    y_obs = torch.as_tensor(image01.reshape(-1)[flat] * 2.0 - 1.0, dtype=torch.float32,
                            device=device).reshape(-1, 1)
    hist, cpu = _train(model, x_obs, y_obs, cfg, weight, show_progress)
    model = model.cpu().eval()
    with torch.no_grad():
        pred = (model(grid).reshape(side, side).numpy().astype(np.float64) + 1.0) / 2.0
    pred = np.clip(pred, 0.0, 1.0)
    return dict(
        model=model, prediction=pred, psnr=psnr(pred, image01),
        psnr_observed=_masked_psnr(pred, image01, mask),
        psnr_unobserved=_masked_psnr(pred, image01, ~mask) if (~mask).any() else float("nan"),
        history={k: np.asarray(v) for k, v in hist.items()}, cpu_seconds=cpu, weight=weight,
    )


def plot_inpaint_figure(image01: np.ndarray, mask: np.ndarray, results: dict[str, dict[str, Any]],
                        path: str | Path) -> Path:
    """Ground truth, the sampling mask, then the fit of each prior (PSNR in the title)."""
    from pinnsiren.plotting import pyplot, save_figure

    plt = pyplot()
    shown = np.where(mask, image01, np.nan)
    cols = [("ground truth", image01), (f"observed ({mask.mean():.0%})", shown)]
    cols += [(f"prior {p}\n{r['psnr']:.2f} dB", r["prediction"]) for p, r in results.items()]
    fig, axes = plt.subplots(1, len(cols), figsize=(2.8 * len(cols), 3.2), squeeze=False)
    for ax, (title, img) in zip(axes[0], cols):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path, dpi=110)


def run_inpaint(
    path: str | None,
    priors: Sequence[str],
    fraction: float,
    out: str | Path,
    arch: str = "siren",
    size: int = 256,
    weight: float | None = None,
    show_progress: bool = True,
    settings: Any = None,
    **changes: Any,
) -> dict[str, Any]:
    """Inpaint one image with each prior; write ``inpaint.h5`` and ``inpaint.png``.

    ``settings`` (optional, e.g. an ``ImageFitConfig``): the network and loop
    settings (:class:`~pinnsiren.settings.ModelSettings` and ``FitSettings``
    fields) taken from it; ``changes`` replace :class:`InpaintConfig` fields
    (``steps=``, ``lr=``, ``hidden=``...); ``arch`` names the network.
    """
    from pinnsiren.io import write_result

    check_architectures(arch)
    for p in priors:
        check_choice("prior", p, PRIORS)
    shared = {f.name for f in fields(ModelSettings) + fields(FitSettings)}
    base = InpaintConfig(**{k: v for k, v in asdict(settings).items() if k in shared}) if settings is not None \
        else None
    base = fit_config(InpaintConfig, base, changes)
    image = load_image(path, size)
    mask = random_mask(image.shape[0], fraction, base.seed)
    results: dict[str, dict[str, Any]] = {}
    for p in priors:
        cfg = replace(base, arch=arch, prior=p, weight=weight if p != "none" else None, fraction=fraction)
        results[p] = inpaint_image(image, mask, cfg, show_progress=show_progress)
        results[p]["config"] = {**asdict(cfg), "weight": results[p]["weight"]}
        print(f"prior {p:>4s}: PSNR {results[p]['psnr']:.2f} dB on all pixels "
              f"({results[p]['psnr_unobserved']:.2f} unobserved) after {cfg.steps} steps "
              f"({results[p]['cpu_seconds']:.1f} CPU s)")
    out = Path(out)
    h5 = write_result(
        out / "inpaint.h5",
        kind="image-inpaint",
        config=dict(image=str(path) if path else "skimage.data.camera", size=size, fraction=fraction,
                    runs={p: r["config"] for p, r in results.items()}),
        metrics={**{f"psnr_{p}": r["psnr"] for p, r in results.items()},
                 **{f"psnr_unobserved_{p}": r["psnr_unobserved"] for p, r in results.items()}},
        history={f"{p}/{k}": v for p, r in results.items() for k, v in r["history"].items()},
        fields={"image": image, "mask": mask.astype(np.uint8),
                **{f"prediction_{p}": r["prediction"] for p, r in results.items()}},
        field_attrs={"image": {"bounds": [[-1, 1], [-1, 1]]}},
        models={p: r["model"] for p, r in results.items()},
    )
    png = plot_inpaint_figure(image, mask, results, out / "inpaint.png")
    print(f"wrote {h5} and {png}")
    return dict(results=results, h5=h5, png=png, mask=mask, image=image)
