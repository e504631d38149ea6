"""Progress bars for long work (tqdm), quiet when asked or when not on a terminal."""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

from .distributed import is_writer

T = TypeVar("T")

__all__ = ["progress"]


def progress(iterable: Iterable[T], desc: str = "", disable: bool = False, **kwargs) -> tqdm:
    """Wrap ``iterable`` in a tqdm bar on stderr.

    The bar is disabled when ``disable`` is true, when the environment
    variable ``PINNSIREN_NO_PROGRESS`` is set (tests and CI logs), or on
    ranks other than 0 of a distributed run.
    """
    disable = disable or bool(os.environ.get("PINNSIREN_NO_PROGRESS")) or not is_writer()
    return tqdm(iterable, desc=desc, disable=disable, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5, **kwargs)
