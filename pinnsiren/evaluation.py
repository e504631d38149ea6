"""One chunked evaluation of a network at many points (grids, meshes, whole signals).

Every pipeline that evaluates a trained network on more points than fit in
memory at once goes through :func:`evaluate`: the points are cut into
chunks, each chunk is moved to the network's device and dtype, and the
outputs are detached and joined again.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

__all__ = ["evaluate", "model_dtype_device"]


def _join(parts: list[Any], as_numpy: bool) -> Any:
    first = parts[0]
    if isinstance(first, Mapping):
        return {k: _join([p[k] for p in parts], as_numpy) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_join([p[i] for p in parts], as_numpy) for i in range(len(first)))
    return np.concatenate(parts) if as_numpy else torch.cat(parts)


def _finish(out: Any, as_numpy: bool) -> Any:
    if isinstance(out, Mapping):
        return {k: _finish(v, as_numpy) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(_finish(v, as_numpy) for v in out)
    out = out.detach()
    return out.cpu().numpy() if as_numpy else out


def model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    """The dtype and device of ``model``'s first parameter (or floating buffer); else the default dtype, CPU."""
    for p in model.parameters():
        return p.dtype, p.device
    for b in model.buffers():
        if b.is_floating_point():
            return b.dtype, b.device
    return torch.get_default_dtype(), torch.device("cpu")


def evaluate(model: nn.Module, points: np.ndarray | torch.Tensor, chunk: int = 65536,
             fn: Callable[[nn.Module, torch.Tensor], Any] | None = None, *, grad: bool = False) -> Any:
    """``fn(model, x)`` (default ``model(x)``) over ``points`` in chunks of ``chunk`` rows.

    Parameters
    ----------
    model : nn.Module
        The network; each chunk gets the dtype and device of its first
        parameter (or floating buffer; torch's default dtype on the CPU for
        a model with neither).
    points : ndarray or Tensor, shape (N, d)
        Where to evaluate.
    chunk : int
        Rows per evaluation (bounds the memory).
    fn : callable, optional
        ``fn(model, x) -> Tensor`` of shape ``(n, ...)`` for a chunk ``x`` of
        ``n`` rows, or a dict / tuple / list of such tensors (e.g. a jet of
        :func:`pinnsiren.derivatives`, or one channel ``model(x)[:, 0]``).
    grad : bool
        ``False`` (default): run under ``torch.no_grad()``. ``True``: keep
        autograd on inside ``fn`` (derivatives by autograd; ``fn`` marks
        ``x.requires_grad_()`` where it needs it); outputs are detached
        either way.

    Returns
    -------
    The chunks' outputs joined along the first axis, with ``fn``'s structure:
    numpy arrays (on the host, in the dtype the model computed) when
    ``points`` is a numpy array, torch tensors on the model's device when it
    is a tensor. An empty ``points`` gives an empty ``(0,)`` float64 array
    (numpy) or tensor.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    as_numpy = not isinstance(points, torch.Tensor)
    dtype, device = model_dtype_device(model)
    fn = fn if fn is not None else (lambda m, x: m(x))
    parts = []
    with torch.enable_grad() if grad else torch.no_grad():
        for i in range(0, len(points), chunk):
            x = torch.as_tensor(points[i:i + chunk], dtype=dtype, device=device)
            parts.append(_finish(fn(model, x), as_numpy))
    if not parts:
        return np.zeros(0) if as_numpy else torch.zeros(0, dtype=dtype, device=device)
    return _join(parts, as_numpy)
