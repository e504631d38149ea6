"""Zero level sets of a network: chunked grid evaluation, marching cubes/squares, renderings.

:func:`evaluate_grid` fills a ``res^d`` grid over ``[-1, 1]^d`` evaluating the
network in chunks. With ``sparse=True`` (the default for 3-D) it first
evaluates a coarse grid (every ``block``-th node) and then evaluates the fine
grid only inside blocks whose coarse corner values come within
``safety * block diagonal`` of zero (an SDF with ``|grad f| ~ 1`` cannot
cross zero elsewhere); other nodes take the coarse value (correct sign).
This makes 512^3 cost about ``area / h^2`` network evaluations instead of
``res^3``, and keeps the memory to one float32 grid (512 MiB at 512^3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from pinnsiren.evaluation import evaluate

__all__ = ["evaluate_points", "evaluate_grid", "extract_mesh", "extract_contours", "render_png"]


def evaluate_points(model: nn.Module, x: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """``model`` at ``x (N, d)`` in chunks; returns channel 0 as float64 ``(N,)``."""
    return evaluate(model, x, chunk, lambda m, xb: m(xb)[:, 0]).astype(np.float64)


def _grid_points(idx: np.ndarray, res: int) -> np.ndarray:
    return -1.0 + 2.0 * idx / (res - 1)


def _upsample_linear(coarse: np.ndarray, nodes: np.ndarray, res: int, rows: int = 16) -> np.ndarray:
    """Multilinear interpolation of values at ``nodes`` (per axis) onto ``0..res-1`` on every axis.

    Axis by axis; the last axis is done ``rows`` slices of the first at a
    time, so the peak memory stays near one output grid.
    """
    i = np.arange(res)
    lo = np.clip(np.searchsorted(nodes, i, side="right") - 1, 0, len(nodes) - 2)
    w = ((i - nodes[lo]) / (nodes[lo + 1] - nodes[lo])).astype(np.float32)

    def along(a: np.ndarray, axis: int) -> np.ndarray:
        shape = [1] * a.ndim
        shape[axis] = res
        ww = w.reshape(shape)
        return np.take(a, lo, axis=axis) * (1 - ww) + np.take(a, lo + 1, axis=axis) * ww

    v = coarse
    for axis in range(coarse.ndim - 1):
        v = along(v, axis)
    out = np.empty((res,) * coarse.ndim, dtype=np.float32)
    for r in range(0, res, rows):
        out[r : r + rows] = along(v[r : r + rows], coarse.ndim - 1)
    return out


def evaluate_grid(
    model: nn.Module, res: int, dim: int = 3, chunk: int = 65536, sparse: bool | None = None,
    block: int = 4, safety: float = 1.5,
) -> tuple[np.ndarray, dict]:
    """Network values on the ``res^dim`` node grid of ``[-1, 1]^dim`` (float32, ``indexing="ij"``).

    Returns ``(values, info)``; ``info["evaluated"]`` counts network evaluations.
    """
    if res < 2:
        raise ValueError(f"res must be >= 2, got {res}")
    sparse = dim == 3 and res > 64 if sparse is None else sparse
    if not sparse:
        lin = np.linspace(-1, 1, res)
        pts = np.stack(np.meshgrid(*([lin] * dim), indexing="ij"), -1).reshape(-1, dim)
        return evaluate_points(model, pts, chunk).astype(np.float32).reshape((res,) * dim), dict(evaluated=len(pts))
    nb = -(-(res - 1) // block)  # blocks per axis
    cidx = np.minimum(np.arange(nb + 1) * block, res - 1)
    cpts = np.stack(np.meshgrid(*([_grid_points(cidx, res)] * dim), indexing="ij"), -1).reshape(-1, dim)
    coarse = evaluate_points(model, cpts, chunk).reshape((nb + 1,) * dim)
    # fill: multilinear interpolation of the coarse grid (keeps the sign in blocks without a zero crossing)
    vals = _upsample_linear(coarse.astype(np.float32), cidx, res)
    # active blocks: some corner close to zero (or a sign change)
    h = 2.0 / (res - 1)
    thresh = safety * block * h * np.sqrt(dim)
    corners = [coarse[tuple(slice(o, o + nb) for o in off)] for off in np.ndindex(*([2] * dim))]
    cmin = np.min([np.abs(c) for c in corners], axis=0)
    sign_change = np.min(corners, axis=0) * np.max(corners, axis=0) <= 0
    active = np.argwhere((cmin < thresh) | sign_change)
    evaluated = len(cpts)
    offs = np.stack(np.meshgrid(*([np.arange(block + 1)] * dim), indexing="ij"), -1).reshape(-1, dim)
    batch = max(1, chunk // len(offs))
    for i in range(0, len(active), batch):
        idx = (active[i : i + batch, None, :] * block + offs[None]).reshape(-1, dim)
        idx = np.unique(np.minimum(idx, res - 1), axis=0)
        v = evaluate_points(model, _grid_points(idx, res), chunk)
        vals[tuple(idx.T)] = v
        evaluated += len(idx)
    return vals, dict(evaluated=evaluated, active_blocks=len(active), blocks=nb**dim)


def extract_mesh(values: np.ndarray, level: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marching cubes on a grid over ``[-1, 1]^3``: ``vertices (V, 3)``, ``faces (F, 3)``, ``normals (V, 3)``.

    Faces are oriented so that normals point toward increasing values
    (outward for an SDF, negative inside).
    """
    from skimage.measure import marching_cubes

    if not (values.min() < level < values.max()):
        raise ValueError(
            f"the field does not cross level {level} on the grid (range {values.min():.3g}..{values.max():.3g}); "
            "the network has not learned a surface (train longer?)"
        )
    res = values.shape[0]
    h = 2.0 / (res - 1)
    v, f, n, _ = marching_cubes(values, level=level, spacing=(h, h, h), gradient_direction="ascent")
    v = v - 1.0
    # skimage winds faces for gradient_direction="descent"; flip so the face normal follows the ascent
    return v, f[:, ::-1].astype(np.int64), n


def extract_contours(values: np.ndarray, level: float = 0.0) -> list[np.ndarray]:
    """Marching squares on a grid over ``[-1, 1]^2``: list of polylines ``(K, 2)``."""
    from skimage.measure import find_contours

    h = 2.0 / (values.shape[0] - 1)
    return [c * h - 1.0 for c in find_contours(values, level)]


def render_png(
    path: str | Path, values: np.ndarray, vertices: np.ndarray | None = None, faces: np.ndarray | None = None,
    title: str = "",
) -> None:
    """PNG: for 3-D a shaded mesh view plus three central SDF slices; for 2-D the SDF with its zero contour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = values.shape[0]
    vmax = float(np.abs(values).max())
    if values.ndim == 2:
        fig, ax = plt.subplots(figsize=(5, 4.5))
        im = ax.imshow(values.T, origin="lower", extent=(-1, 1, -1, 1), cmap="coolwarm", vmin=-vmax, vmax=vmax)
        ax.contour(np.linspace(-1, 1, res), np.linspace(-1, 1, res), values.T, levels=15, colors="k", linewidths=0.3)
        ax.contour(np.linspace(-1, 1, res), np.linspace(-1, 1, res), values.T, levels=[0], colors="k", linewidths=1.5)
        fig.colorbar(im, ax=ax)
        ax.set_title(title or "SDF")
    else:
        fig = plt.figure(figsize=(16, 4.2))
        ax = fig.add_subplot(1, 4, 1, projection="3d")
        if vertices is not None and len(faces):
            step = max(1, len(faces) // 60000)
            ax.plot_trisurf(vertices[:, 0], vertices[:, 1], vertices[:, 2], triangles=faces[::step],
                            color="0.8", linewidth=0, antialiased=False, shade=True)
        ax.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1), title=title or "mesh")
        ax.set_box_aspect((1, 1, 1))
        lin = np.linspace(-1, 1, res)
        mid = res // 2
        for k, (sl, lab) in enumerate(
            [(values[mid, :, :], ("y", "z", "x = 0")), (values[:, mid, :], ("x", "z", "y = 0")),
             (values[:, :, mid], ("x", "y", "z = 0"))]
        ):
            a = fig.add_subplot(1, 4, k + 2)
            im = a.imshow(sl.T, origin="lower", extent=(-1, 1, -1, 1), cmap="coolwarm", vmin=-vmax, vmax=vmax)
            a.contour(lin, lin, sl.T, levels=15, colors="k", linewidths=0.3)
            a.contour(lin, lin, sl.T, levels=[0], colors="k", linewidths=1.5)
            a.set(xlabel=lab[0], ylabel=lab[1], title=f"SDF slice {lab[2]}")
            fig.colorbar(im, ax=a, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
