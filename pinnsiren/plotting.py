"""Small matplotlib helpers shared by the pipelines' figures (headless backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .distributed import is_writer

__all__ = ["pyplot", "save_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Lay out, write (creating parent folders) and close a figure; returns the path.

    In a distributed run only rank 0 writes (the others just close the figure).
    """
    plt = pyplot()
    if not is_writer():  # distributed: rank 0 alone writes
        plt.close(fig)
        return Path(path)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
