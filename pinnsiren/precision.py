"""The global precision switch of the fused SIREN backward's matrix products."""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import torch

__all__ = ["BACKWARD_PRECISIONS", "set_backward_precision", "backward_precision", "PrecisionScope",
           "native_bfloat16", "layer_lowp"]

#: valid values of :func:`set_backward_precision`
BACKWARD_PRECISIONS = ("full", "bfloat16")
_BACKWARD_LOWP: torch.dtype | None = None  # None: the backward's products in the tensors' own dtype
_lowp_layers_run = 0  # fused layers whose backward products ran in low precision (see backward_precision)


def set_backward_precision(precision: str, device: str = "cpu") -> str:
    """Set the precision of the matrix products in the fused SIREN backward; returns the previous setting.

    ``"full"`` (default): the products run in the model's dtype. ``"bfloat16"``:
    in the backward of each fused hidden SIREN layer of a float32 model, the
    input-gradient product ``dZ W`` and the weight-gradient product ``dZ^T S``
    -- two thirds of a training step's multiply-adds -- take bfloat16 operands
    (float32 accumulation, results rounded to bfloat16 and stored as
    float32). The forward (the jet, the residual and the loss) is unchanged,
    so loss values, alarms and evaluations are exact; parameter gradients
    carry a relative error of about 2e-3 (``tests/compiler/test_jet.py``
    bounds it), far below the sampling noise of a fresh collocation draw
    (docs/benchmarks.md measures training with it). The setting is read
    when a layer's forward runs. Where bfloat16 products are native (CPUs
    with AVX512-BF16 or AMX, recent GPUs) they run ~3x faster than float32;
    elsewhere they may be slower, and setting it warns (``device``: where
    the model runs, for that check). Other paths (nested autograd, the
    generic jet when ``x`` requires grad, MLPs) are not affected; the
    trainer warns when a run asked for it and no fused layer used it.
    """
    global _BACKWARD_LOWP
    if precision not in BACKWARD_PRECISIONS:
        raise ValueError(f"unknown backward precision {precision!r}; must be one of {list(BACKWARD_PRECISIONS)}")
    previous = "full" if _BACKWARD_LOWP is None else "bfloat16"
    if precision == "bfloat16" and _BACKWARD_LOWP is None and not native_bfloat16(device):
        where = "this CPU (no avx512_bf16 or amx_bf16 flag)" if str(device).startswith("cpu") else f"{device}"
        warnings.warn(f"bfloat16 matrix products are not native on {where}: "
                      "backward_precision='bfloat16' may be slower than 'full'", stacklevel=2)
    _BACKWARD_LOWP = torch.bfloat16 if precision == "bfloat16" else None
    return previous


class PrecisionScope:
    """What :func:`backward_precision` yields: ``layers`` is set when the block ends to the
    number of fused layer forwards that ran with reduced-precision backward products in it."""

    layers: int = 0


@contextlib.contextmanager
def backward_precision(precision: str, device: str = "cpu") -> Iterator[PrecisionScope]:
    """Context manager: :func:`set_backward_precision` inside the block, the previous setting after it.

    Yields a :class:`PrecisionScope`; its ``layers`` tells afterwards whether
    the setting reached any layer (0: nothing in the block used it).
    """
    previous = set_backward_precision(precision, device)
    scope, start = PrecisionScope(), _lowp_layers_run
    try:
        yield scope
    finally:
        scope.layers = _lowp_layers_run - start
        set_backward_precision(previous)


def native_bfloat16(device: str = "cpu") -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (CPU: the avx512_bf16 or amx_bf16 flag, Linux)."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def layer_lowp(dtype: torch.dtype) -> torch.dtype | None:
    """The low-precision dtype for the backward products of a fused layer forward running now
    (None: full precision; only float32 models are affected); counts the layer when it is reduced."""
    global _lowp_layers_run
    lowp = _BACKWARD_LOWP if dtype == torch.float32 else None
    if lowp is not None:
        _lowp_layers_run += 1
    return lowp
