"""Work buffers kept from one k-means call to the next in the same thread, where the caller allows it.

A k-means call at N = 4096 (Whisper-medium's fc1) needs two [N, N] float32 tensors, the Gram matrix and
Ward's cost matrix (which Lloyd's scores reuse): 64 MB each. glibc serves allocations that large with a
fresh ``mmap`` and returns them with ``munmap`` when freed, so every such layer paid for first touching
128 MB again (page faults: 35-40 ms of the ~55 ms it took to fill one, on one thread).

Inside :func:`reuse_buffers` (or in a thread after :func:`keep_buffers`) :func:`buffer` hands out the
same tensors to every call of that thread, grown to the largest size asked; outside, it allocates as
before. Nothing a k-means call returns points into them (centroids, labels and inertia are new tensors),
and a thread runs one call at a time, so reuse is safe. They are dropped when the outermost
:func:`reuse_buffers` exits, or with the thread.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
from torch import Tensor

_local = threading.local()


def _state() -> tuple[int, dict]:
    return getattr(_local, "depth", 0), getattr(_local, "buffers", {})


def keep_buffers() -> None:
    """For a worker thread: reuse buffers from now until the thread ends (a pool's initializer)."""
    depth, buffers = _state()
    _local.depth, _local.buffers = depth + 1, buffers


@contextlib.contextmanager
def reuse_buffers() -> Iterator[None]:
    """Within this block (this thread only), :func:`buffer` reuses its tensors from call to call."""
    keep_buffers()
    try:
        yield
    finally:
        _local.depth -= 1
        if _local.depth == 0:
            _local.buffers = {}


def buffer(name: str, numel: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A flat tensor of ``numel`` elements with undefined content: this thread's buffer ``name`` while
    reuse is on (the caller must be done with what it handed out before under that name), else new."""
    depth, buffers = _state()
    if depth == 0:
        return torch.empty(numel, dtype=dtype, device=device)
    held = buffers.get(name)
    if held is None or held.numel() < numel or held.dtype != dtype or held.device != device:
        buffers.pop(name, None)  # (free the old one before making the larger one)
        held = buffers[name] = torch.empty(numel, dtype=dtype, device=device)
    return held[:numel]
