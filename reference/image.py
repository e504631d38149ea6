"""Poisson image reconstruction (SIREN paper, Sec. 4.1): an image from its gradient or Laplacian.

Images are 2-D float arrays, axis 0 = x (rows), unit pixel spacing unless ``h``
is given.  Gradients are Sobel derivatives (``[-1, 0, 1] / (2h)`` along the
axis, ``[1, 2, 1] / 4`` across it, mirrored ``'reflect'`` boundaries), i.e. a
smoothed central difference.  Reconstruction is a linear least-squares solve,
exact up to the constant (fixed by the mean).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sp

__all__ = ["sobel_gradient", "sobel_operator", "discrete_laplacian", "reconstruct_from_gradient",
           "reconstruct_from_laplacian", "psnr"]


def _diff_1d(n: int, h: float) -> sp.csr_matrix:
    D = sp.diags([-np.ones(n - 1), np.ones(n - 1)], [-1, 1], format="lil") / (2 * h)
    D[0, 0], D[0, 1] = -1 / (2 * h), 1 / (2 * h)  # reflect: u_{-1} = u_0
    D[n - 1, n - 2], D[n - 1, n - 1] = -1 / (2 * h), 1 / (2 * h)
    return D.tocsr()


def _smooth_1d(n: int) -> sp.csr_matrix:
    S = sp.diags([np.full(n - 1, 0.25), np.full(n, 0.5), np.full(n - 1, 0.25)], [-1, 0, 1], format="lil")
    S[0, 0] = 0.75
    S[n - 1, n - 1] = 0.75
    return S.tocsr()


def sobel_operator(shape: tuple[int, int], h: float = 1.0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Sparse Sobel derivative matrices ``(Gx, Gy)``, each (nx ny, nx ny), acting on ``img.ravel()``."""
    nx, ny = shape
    Gx = sp.kron(_diff_1d(nx, h), _smooth_1d(ny)).tocsr()
    Gy = sp.kron(_smooth_1d(nx), _diff_1d(ny, h)).tocsr()
    return Gx, Gy


def sobel_gradient(img: np.ndarray, h: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Sobel estimate of ``(du/dx, du/dy)``; each output has the shape of ``img`` (units of img / h)."""
    img = np.asarray(img, dtype=float)
    Gx, Gy = sobel_operator(img.shape, h)
    return (Gx @ img.ravel()).reshape(img.shape), (Gy @ img.ravel()).reshape(img.shape)


def discrete_laplacian(img: np.ndarray, h: float = 1.0) -> np.ndarray:
    """5-point Laplacian with mirrored (Neumann) boundaries, same shape as ``img``."""
    p = np.pad(np.asarray(img, dtype=float), 1, mode="reflect")
    u = p[1:-1, 1:-1]
    return (p[2:, 1:-1] + p[:-2, 1:-1] + p[1:-1, 2:] + p[1:-1, :-2] - 4 * u) / h**2


def _neumann_eigs(shape: tuple[int, int], h: float) -> np.ndarray:
    nx, ny = shape
    lx = (2 * np.cos(np.pi * np.arange(nx) / (nx - 1)) - 2) / h**2
    ly = (2 * np.cos(np.pi * np.arange(ny) / (ny - 1)) - 2) / h**2
    return lx[:, None] + ly[None, :]


def reconstruct_from_laplacian(lap: np.ndarray, mean: float = 0.0, h: float = 1.0) -> np.ndarray:
    """Invert :func:`discrete_laplacian` (type-I DCT), returning the image with the given mean."""
    lap = np.asarray(lap, dtype=float)
    lam = _neumann_eigs(lap.shape, h)
    lam[0, 0] = 1.0
    c = sfft.dctn(lap, type=1) / lam
    c[0, 0] = 0.0
    u = sfft.idctn(c, type=1)
    return u - u.mean() + mean


def reconstruct_from_gradient(gx: np.ndarray, gy: np.ndarray, mean: float = 0.0, h: float = 1.0) -> np.ndarray:
    """Least-squares image from Sobel gradients: ``min ||Gx u - gx||^2 + ||Gy u - gy||^2``.

    With reflect boundaries, the 1-D factors of the Sobel operator
    (``D^T D`` and ``S``) are both diagonalised by the orthonormal type-II DCT,
    so the normal equations ``(Gx^T Gx + Gy^T Gy) u = Gx^T gx + Gy^T gy`` are
    solved exactly in ``O(N log N)``: eigenvalues
    ``sin^2(pi p/nx) cos^4(pi q/(2 ny)) / h^2 + cos^4(pi p/(2 nx)) sin^2(pi q/ny) / h^2``,
    zero only for the constant (fixed by ``mean``).

    Parameters
    ----------
    gx, gy : ndarray, shape (nx, ny), as from :func:`sobel_gradient`.
    mean : float, mean of the returned image (the gradient does not determine it).
    h : pixel spacing.

    Returns
    -------
    ndarray, shape (nx, ny).
    """
    gx, gy = np.asarray(gx, dtype=float), np.asarray(gy, dtype=float)
    if gx.shape != gy.shape or gx.ndim != 2:
        raise ValueError(f"reconstruct_from_gradient: gx {gx.shape} and gy {gy.shape} must be equal 2-D shapes.")
    nx, ny = gx.shape
    Gx, Gy = sobel_operator(gx.shape, h)
    b = (Gx.T @ gx.ravel() + Gy.T @ gy.ravel()).reshape(gx.shape)
    p, q = np.arange(nx)[:, None], np.arange(ny)[None, :]
    lam = (np.sin(np.pi * p / nx) ** 2 * np.cos(np.pi * q / (2 * ny)) ** 4
           + np.cos(np.pi * p / (2 * nx)) ** 4 * np.sin(np.pi * q / ny) ** 2) / h**2
    lam[0, 0] = np.inf
    u = sfft.idctn(sfft.dctn(b, type=2, norm="ortho") / lam, type=2, norm="ortho")
    return u - u.mean() + mean


def psnr(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``data_range`` defaults to ``b.max() - b.min()``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = float(b.max() - b.min()) if data_range is None else data_range
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(rng**2 / mse)
