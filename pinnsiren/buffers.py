"""Reusable big CPU work buffers of the fused SIREN kernels (:mod:`pinnsiren.siren_kernels`)."""

from __future__ import annotations

import math

import torch

__all__ = ["BufferPool", "POOL", "release_buffers"]


class BufferPool:
    """Big CPU work buffers of the fused SIREN path, reused from step to step.

    A fresh (T, N, H) buffer is tens of MB: glibc maps blocks of 32 MiB and
    more anew on every allocation and the kernel zero-fills each page on
    first touch, ~0.5 ms per MB here -- 10-20 % of a training step -- while
    smaller blocks (the (N, H) tensors of nested autograd) come back from the
    heap; so only buffers of at least 32 MiB are pooled (pooling the smaller
    ones too added ~30 MB of peak memory and no measurable speed). A buffer is
    handed out as a *view* and taken again only when nothing but the pool
    references its storage (every view, saved tensor or user reference of
    it holds one), i.e. after the graph that used it is gone; so results
    are never overwritten, whatever the caller keeps. CPU only (the CUDA
    caching allocator already reuses memory). :func:`release_buffers`
    frees the pool.
    """

    MIN_BYTES = 32 << 20  # glibc serves smaller blocks from its heap after the first free
    PER_KEY = 64  # at most this many buffers of one size; beyond, plain allocations
    KEYS = 4  # buffer sizes kept (least recently used dropped)

    def __init__(self) -> None:
        self.pool: dict[tuple, list[torch.Tensor]] = {}
        count = getattr(torch._C, "_storage_Use_Count", None)
        self.count = count  # None: this torch cannot tell, so nothing is pooled

    def take(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        n = math.prod(shape)
        if (self.count is None or like.device.type != "cpu" or n * like.element_size() < self.MIN_BYTES
                or torch.is_inference_mode_enabled()):  # inference tensors could not be reused in training
            return like.new_empty(shape)
        key = (n, like.dtype)
        bufs = self.pool.pop(key, [])
        self.pool[key] = bufs  # most recently used last
        while len(self.pool) > self.KEYS:
            del self.pool[next(iter(self.pool))]
        for b in bufs:
            # 2 = the pool's tensor + the storage object made for this query
            if self.count(b.untyped_storage()._cdata) == 2:
                return b.view(shape)
        b = like.new_empty(n)
        if len(bufs) < self.PER_KEY:
            bufs.append(b)
        return b.view(shape)


POOL = BufferPool()


def release_buffers() -> None:
    """Free the fused SIREN path's reusable work buffers (they are kept between training steps)."""
    POOL.pool.clear()
