"""Velocity models for FWI test cases (a small gallery shared by tests, CLI and docs).

Each model is a velocity ``c(x, y)`` (length / time) equal to the background 1
in the PML (``|x|_inf > 0.5``); the squared slowness is ``m = 1 / c^2``.

=================  ==========================================================
``circle``         velocity 2 inside ``r < 0.1`` (the official SIREN code)
``circle_large``   velocity 1.25 inside ``r < 0.2`` (larger, weaker)
``layered``        three horizontal layers 1 / 1.2 / 1.4 inside ``|x|_inf < 0.5``
``two_inclusions`` velocity 1.5 at (-0.15, 0.05), r 0.08, and 0.8 at (0.15, 0.1), r 0.08
=================  ==========================================================
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["MODELS", "velocity_model", "slowness_model", "model_names"]

Velocity = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _disk(x0: float, y0: float, r: float, c_in: float) -> Velocity:
    def c(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.where((x - x0) ** 2 + (y - y0) ** 2 < r**2, c_in, 1.0)

    return c


def _layered(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    inner = np.maximum(np.abs(x), np.abs(y)) < 0.5
    c = np.where(y < -0.1, 1.0, np.where(y < 0.15, 1.2, 1.4))
    return np.where(inner, c, 1.0)


def _two(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    a = _disk(-0.15, 0.05, 0.08, 1.5)(x, y)
    b = _disk(0.15, 0.1, 0.08, 0.8)(x, y)
    return a * b  # disjoint disks over background 1


MODELS: dict[str, Velocity] = {
    "circle": _disk(0.0, 0.0, 0.1, 2.0),
    "circle_large": _disk(0.0, 0.0, 0.2, 1.25),
    "layered": _layered,
    "two_inclusions": _two,
}


def model_names() -> list[str]:
    return list(MODELS)


def velocity_model(name: str) -> Velocity:
    """Velocity ``c(x, y)`` of a named model; see the module table."""
    if name not in MODELS:
        raise ValueError(f'Unknown FWI model "{name}". Must be one of {sorted(MODELS)}.')
    return MODELS[name]


def slowness_model(name: str) -> Velocity:
    """Squared slowness ``m(x, y) = 1 / c(x, y)^2`` of a named model."""
    c = velocity_model(name)
    return lambda x, y: 1.0 / np.asarray(c(x, y), dtype=float) ** 2
