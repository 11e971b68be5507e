"""Layers compressed side by side: a small pool of Python threads, one torch thread each (CPU only).

On CPU most of a k-means call runs on one core: Ward's merge rounds, Lloyd's updates and scipy's
nearest-neighbour chain are thousands of small ops, fastest with one torch thread
(:mod:`prunelab.kmeans.threads` says why); only the Gram product used the second core. So while one layer
merged, the other core sat idle. Compressing two layers at once, each with one torch thread, keeps both
cores busy; torch and scipy release the GIL during their work, so Python threads are enough, and every
layer is computed exactly as before (same partitions).

Measured on the 2-core VM, idle, k-means uniform 20 % of every layer of a Whisper-medium-shaped model
(384 layers, random weights): 47.0 s one layer at a time (Gram on 2 threads), 33.4 s two at a time
(Gram on 1 thread each); summed distortion 49983.76 both ways.

Memory: glibc gives each thread its own malloc arena, and what a worker frees stays mapped in its arena;
with two workers the medium-shaped run above peaked at 4.47 GB (bfloat16 weights) instead of 3.82 GB one
layer at a time. :func:`_one_malloc_arena` makes the threads share one arena (glibc's ``M_ARENA_MAX``,
unless ``MALLOC_ARENA_MAX`` is set already): 3.90 GB, same time (34.3 vs 34.8 s).

Python threads share the GIL: a call that holds it while it computes stalls the other layer's Python (the
many small ops of Ward's rounds and Lloyd). scipy's BLAS ``syrk`` did (the Gram matrices of N <= 1024 points,
336 calls on Whisper-medium's shape); since they are torch products (:mod:`prunelab.kmeans.gram`) and the row
minima numpy's GIL-free ``argmin``, medium's run takes 21.7-26.1 s on idle cores instead of 33-35 s
(BENCHMARKS.md, section 5).

Layers are independent here: a method reads only the ORIGINAL model's weights (never the partly
compressed copy) and seeds its own generators, so the order in which layers finish changes nothing.
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

from ..errors import PlanError
from ..kmeans.workspace import keep_buffers, reuse_buffers

T = TypeVar("T")
R = TypeVar("R")

#: At most this many layers at once by default (measured on 2 cores; more threads than cores only
#: add contention, and each thread holds one layer's working memory: ~0.25 GB at large-v3's fc1).
DEFAULT_MAX_THREADS = 2

#: Below this many parameters layers go one at a time by default: there the time saved is a few seconds
#: and the second layer's working memory a noticeable share of the peak. Measured (uniform 20 %, 2 cores):
#: Whisper-base (73 M) 2.9 -> 2.4 s but 0.85 -> 0.93 GB; Whisper-small's shape (242 M, bfloat16) 14 -> 9 s but
#: 1.52 -> 1.78 GB, both over the 1.3 x fp32 size + 0.5 GB the project aims for (0.88 / 1.76 GB); medium's
#: shape (764 M, bfloat16) 56 -> 33 s at 3.8 -> 4.3 GB (target 4.47 GB).
PARALLEL_MIN_PARAMS = 500_000_000

_M_ARENA_MAX = -8  # glibc's malloc.h


@functools.lru_cache(maxsize=1)
def _one_malloc_arena() -> bool:
    """Ask glibc for one malloc arena shared by every thread made from now on (see the module doc);
    True if it took. Does nothing where ``MALLOC_ARENA_MAX`` is set or malloc is not glibc's."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1))
    except (OSError, AttributeError):  # (no mallopt: not glibc)
        return False


def default_threads(device: torch.device, n_params: int) -> int:
    """How many layers to compress at once on ``device`` for a model of ``n_params`` parameters: 1 on
    accelerators (their work is batched already) and below :data:`PARALLEL_MIN_PARAMS`, else
    ``min(DEFAULT_MAX_THREADS, torch.get_num_threads())`` (so ``OMP_NUM_THREADS=1`` or
    ``torch.set_num_threads(1)`` keeps compression on one core)."""
    if device.type != "cpu" or n_params < PARALLEL_MIN_PARAMS:
        return 1
    return max(1, min(DEFAULT_MAX_THREADS, torch.get_num_threads()))


def check_threads(threads: object) -> int:
    """``threads`` as an int >= 1, or a :class:`PlanError` that says what is allowed."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise PlanError(f"threads must be a whole number of at least 1 (layers compressed at once), got {threads!r}.")
    return threads


def _start_worker() -> None:
    """A worker thread: one torch thread, and k-means work buffers kept from layer to layer until it ends."""
    torch.set_num_threads(1)
    keep_buffers()


def map_layers(fn: Callable[[T], R], items: Sequence[T], threads: int,
               on_start: Callable[[int], None] | None = None) -> Iterator[R]:
    """``fn(item)`` for each item, yielded in order, with up to ``threads`` items running at once.

    ``on_start(i)`` is called in the calling thread before item ``i``'s result is awaited (one thread:
    before it starts), in order, so a progress bar advances as layers finish. A result is released once
    yielded (the caller can turn it into a module and drop it). k-means keeps its work buffers from item to
    item (:mod:`prunelab.kmeans.workspace`). Each worker thread runs with one torch thread and the
    caller's grad mode; torch's thread count is restored afterwards. The first exception
    raised by ``fn`` is re-raised once the items already running have finished; items not started yet
    are cancelled (also when the caller stops early: close the iterator, e.g. ``contextlib.closing``).
    """
    if threads <= 1 or len(items) <= 1:
        with reuse_buffers():
            for i, item in enumerate(items):
                if on_start is not None:
                    on_start(i)
                yield fn(item)
        return
    grad = torch.is_grad_enabled()

    def run(item: T) -> R:
        with torch.set_grad_enabled(grad):
            return fn(item)

    _one_malloc_arena()
    saved = torch.get_num_threads()
    pool = ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="prunelab-layer",
                              initializer=_start_worker)
    try:
        futures: list[Future[R] | None] = [pool.submit(run, item) for item in items]
        for i in range(len(futures)):
            if on_start is not None:
                on_start(i)
            future, futures[i] = futures[i], None
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(saved)  # (a worker's setting is also the default of threads made later)
