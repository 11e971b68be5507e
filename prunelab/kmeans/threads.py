"""Torch thread control on CPU: one thread for the many small ops of a k-means call, the caller's for the Gram product.

A k-means call on CPU is thousands of small ops (seeding steps, Lloyd updates, Ward rounds).  With
several OpenMP threads on a busy machine each small op waits for every thread to be scheduled
(measured: Whisper-base at 50% took 4 s with 1 thread vs 51-86 s with 2 threads on a loaded 2-core
machine), so :func:`sequential_threads` caps torch at :data:`SEQUENTIAL_THREADS` for the whole call.
The one large product, the Gram matrix, still runs with the caller's threads inside
:func:`caller_threads` (2 threads: 26 ms instead of 48 ms for a 2048 x 513 layer on an idle machine).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

#: On CPU the whole call (Gram product, seeding and Lloyd loops: many small ops) runs with at most this
#: many torch threads; set ``prunelab.kmeans.threads.SEQUENTIAL_THREADS = None`` to keep torch's setting.
SEQUENTIAL_THREADS: int | None = 1

_THREADS_LOCK = threading.Lock()
_threads_depth = 0  # calls inside sequential_threads right now (all Python threads together)
_threads_saved = 0  # torch's thread count when the first of them entered


@contextlib.contextmanager
def sequential_threads(device: torch.device) -> Iterator[None]:
    """Temporarily cap ``torch.set_num_threads`` at :data:`SEQUENTIAL_THREADS` (CPU only).

    The previous value is restored on exit, also after an exception.  Concurrent calls from several
    Python threads share one reference count, so the value saved by the first entry is restored by the
    last exit (the setting is process-wide, or per OpenMP thread; either way it is restored).
    """
    global _threads_depth, _threads_saved
    cap = SEQUENTIAL_THREADS
    if device.type != "cpu" or cap is None:
        yield
        return
    with _THREADS_LOCK:
        if _threads_depth == 0:
            _threads_saved = torch.get_num_threads()
            if _threads_saved > cap:
                torch.set_num_threads(cap)
        _threads_depth += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_depth -= 1
            if _threads_depth == 0 and torch.get_num_threads() != _threads_saved:
                torch.set_num_threads(_threads_saved)


@contextlib.contextmanager
def caller_threads(device: torch.device) -> Iterator[None]:
    """Inside :func:`sequential_threads`: run one large dense product (the Gram matrix) with the
    caller's thread count again, where several threads pay off."""
    if device.type != "cpu" or _threads_depth == 0 or torch.get_num_threads() >= _threads_saved:
        yield
        return
    capped = torch.get_num_threads()
    torch.set_num_threads(_threads_saved)
    try:
        yield
    finally:
        torch.set_num_threads(capped)
