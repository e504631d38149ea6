"""Images as data: load one in ``[0, 1]``, its pixel grid in ``[-1, 1]^2``, and PSNR.

Shared by the image fit (:mod:`solvers.signals.image_fit`), inpainting
(:mod:`solvers.signals.inpaint`) and the Poisson solve (:mod:`solvers.pde.poisson`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

__all__ = ["load_image", "pixel_grid", "psnr"]


def load_image(path: str | Path | None = None, size: int | None = 256) -> np.ndarray:
    """Load a grayscale image as float64 in ``[0, 1]``, centre-cropped square.

    Parameters
    ----------
    path : path or None
        Image file; ``None`` uses scikit-image's bundled cameraman.
    size : int or None
        Side of the returned square image (resized with anti-aliasing);
        ``None`` keeps the cropped size.

    Returns
    -------
    ndarray, shape (size, size)
    """
    from skimage import color, data, io, transform  # deferred: scikit-image is slow to import

    if path is None:
        img = data.camera()
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"image file not found: {p}")
        img = io.imread(p)
    img = np.asarray(img)
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = color.rgba2rgb(img)
        img = color.rgb2gray(img)
    img = img.astype(np.float64)
    if img.max() > 1.0:
        img = img / 255.0 if img.max() <= 255 else img / img.max()
    h, w = img.shape
    s = min(h, w)
    img = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    if size is not None and size != s:
        if size < 8:
            raise ValueError(f"size must be >= 8 pixels, got {size}")
        img = transform.resize(img, (size, size), anti_aliasing=True)
    return np.clip(img, 0.0, 1.0)


def pixel_grid(side: int) -> torch.Tensor:
    """Pixel-centre coordinates in ``[-1, 1]^2``, shape ``(side*side, 2)``, row-major."""
    lin = torch.linspace(-1.0, 1.0, side)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([gy.reshape(-1), gx.reshape(-1)], dim=1)


def psnr(pred01: np.ndarray, target01: np.ndarray) -> float:
    """PSNR in dB for images in ``[0, 1]`` (prediction clipped, data range 1)."""
    mse = float(np.mean((np.clip(pred01, 0.0, 1.0) - target01) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)
