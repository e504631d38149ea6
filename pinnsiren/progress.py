"""Progress for long work: a tqdm bar on a terminal, plain lines in a log.

On a terminal the bar redraws in place. When stderr is not a terminal (a log
file, a pipe, CI) a carriage-return bar would leave thousands of frames on
one line, so :func:`progress` writes one ordinary line every ``log_percent``
per cent instead, with the same postfix (loss terms, PSNR, ...) the bar
shows. ``PINNSIREN_NO_PROGRESS`` (any non-empty value) silences both.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator, TextIO, TypeVar

from .distributed import is_writer

T = TypeVar("T")

__all__ = ["progress", "LineProgress"]


class LineProgress:
    """Iterate ``iterable`` and print ``desc: k/n (p%) elapsed postfix`` every ``every_percent``.

    Supports the part of tqdm's interface the pipelines use:
    ``set_postfix``, ``write`` and ``close``.
    """

    def __init__(self, iterable: Iterable[T], desc: str = "", total: int | None = None,
                 file: TextIO | None = None, every_percent: float = 10.0, initial: int = 0) -> None:
        self.iterable = iterable
        self.desc = desc
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.file = file if file is not None else sys.stderr
        self.every = max(float(every_percent), 1e-9)
        self.postfix = ""
        self.n = int(initial)  # a resumed run counts on from its checkpoint's step
        self._next_mark = self.every
        if self.total:
            while self._next_mark <= 100.0 * self.n / self.total + 1e-9:
                self._next_mark += self.every
        self._t0 = time.perf_counter()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def write(self, s: str) -> None:
        print(s, file=self.file, flush=True)

    def _line(self) -> None:
        el = time.perf_counter() - self._t0
        pct = f" ({100.0 * self.n / self.total:.0f}%)" if self.total else ""
        of = f"/{self.total}" if self.total is not None else ""
        tail = f" {self.postfix}" if self.postfix else ""
        self.write(f"{self.desc}: {self.n}{of}{pct} {el:.0f}s{tail}")

    def __iter__(self) -> Iterator[T]:
        for item in self.iterable:
            yield item
            self.n += 1
            if self.total:
                if 100.0 * self.n / self.total + 1e-9 >= self._next_mark:
                    self._line()
                    while self._next_mark <= 100.0 * self.n / self.total + 1e-9:
                        self._next_mark += self.every

    def close(self) -> None:
        pass


class _Silent(LineProgress):
    def write(self, s: str) -> None:  # noqa: D102 - silenced on purpose
        pass


def progress(iterable: Iterable[T], desc: str = "", disable: bool = False, *,
             file: TextIO | None = None, log_percent: float = 10.0, **kwargs: Any):
    """Wrap ``iterable`` for progress reporting on ``file`` (default stderr).

    A tqdm bar when ``file`` is a terminal, otherwise a :class:`LineProgress`
    printing a line every ``log_percent`` per cent. Nothing is shown when
    ``disable`` is true, when ``PINNSIREN_NO_PROGRESS`` is set, or on ranks
    other than 0 of a distributed run; the returned
    object still accepts ``set_postfix`` so callers need no branches.
    """
    stream = file if file is not None else sys.stderr
    total = kwargs.pop("total", None)
    if disable or os.environ.get("PINNSIREN_NO_PROGRESS") or not is_writer():
        return _Silent(iterable, desc=desc, total=total, file=stream, initial=kwargs.get("initial", 0))
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, file=stream, dynamic_ncols=True,
                    mininterval=0.5, **kwargs)
    return LineProgress(iterable, desc=desc, total=total, file=stream, every_percent=log_percent,
                        initial=kwargs.get("initial", 0))
