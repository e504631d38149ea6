"""Activation statistics of a SIREN at initialisation (supplement §1, Fig. 2)."""

from __future__ import annotations

import math

import torch

from .networks import Siren

__all__ = ["init_statistics", "SINE_OF_STANDARD_NORMAL_STD"]

#: std of sin(z) for z ~ N(0, 1): sqrt((1 - e^-2) / 2) ~= 0.6577
SINE_OF_STANDARD_NORMAL_STD = math.sqrt((1.0 - math.exp(-2.0)) / 2.0)


@torch.no_grad()
def init_statistics(model: Siren, x: torch.Tensor) -> list[dict[str, float]]:
    """Mean and standard deviation of each sine layer's activations.

    Parameters
    ----------
    model : Siren
        The network to inspect.
    x : Tensor, shape (N, in_features)
        Inputs, e.g. uniform in ``[-1, 1]``.

    Returns
    -------
    list of dict
        One entry per sine layer with keys ``pre_mean``, ``pre_std`` (of the
        sine's argument ``omega_0 (W h + b)``), ``post_mean``, ``post_std``.
    """
    if not isinstance(model, Siren):
        raise TypeError(f"init_statistics expects a Siren, got {type(model).__name__}")
    stats = []
    for pre, post in model.forward_with_activations(x):
        stats.append(
            dict(
                pre_mean=float(pre.mean()),
                pre_std=float(pre.std()),
                post_mean=float(post.mean()),
                post_std=float(post.std()),
            )
        )
    return stats
