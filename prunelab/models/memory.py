"""How much memory loading and compressing a model takes, and how much this machine has: the size guard's
arithmetic, so a refusal can say what the model would need.

Measured (benchmarks/bench_compress_model.py --shape, BENCHMARKS.md section 5): the peak while
``compress()`` runs is the process itself (Python, torch, transformers: about 0.45 GB), the original
weights, and the layers the compressed copy replaces (it shares everything else). Compressing every layer
(preset ``uniform``) replaces nearly all of them, so the worst case is twice the weights; the k-means
working memory (in float32 whatever the weights' dtype) adds a few hundred MB. Whisper-medium's shapes,
uniform 20 %: 6.4 GB peak with float32 weights (3.06 GB of them), 3.8 GB with bfloat16. The guard counts that
worst case (the app keeps the original to compare with). ``compress_()`` (in place, what ``prunelab compress``
runs) frees each original layer as it is replaced and needs about the weights alone: 3.75 GB for the same run.
"""
from __future__ import annotations

import os

import torch

PROCESS_BYTES = 800_000_000
"""The process without any model (0.45 GB), plus the clustering's working memory on the largest layers."""


def weight_bytes(n_params: int, dtype: torch.dtype = torch.float32) -> int:
    return int(n_params) * dtype.itemsize


def compress_memory_bytes(n_params: int, dtype: torch.dtype = torch.float32) -> int:
    """Memory to load a model of ``n_params`` parameters in ``dtype`` and compress all of its layers: the
    original, a compressed copy at most as large, and the process."""
    return 2 * weight_bytes(n_params, dtype) + PROCESS_BYTES


def available_memory_bytes() -> int | None:
    """Memory this process can still take: Linux's MemAvailable, capped by a cgroup (container) limit; None
    when unknown."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
            if text.isdigit() and int(text) < 2**60:
                with open(path.replace("memory.max", "memory.current").replace("limit_in_bytes", "usage_in_bytes"),
                          encoding="ascii") as f:
                    room = int(text) - int(f.read().strip())
                avail = room if avail is None else min(avail, room)
                break
        except (OSError, ValueError):
            continue
    if avail is None:
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    return max(0, avail)


def auto_max_bytes(dtype: torch.dtype = torch.float32) -> int | None:
    """The largest weights (bytes, in ``dtype``) that can be loaded and compressed in the memory available now."""
    avail = available_memory_bytes()
    return None if avail is None else max(0, (avail - PROCESS_BYTES) // 2)


def describe_need(n_params: int, dtype: torch.dtype = torch.float32) -> str:
    """'loading and compressing it needs about X GB of memory in float32 (Y GB in bfloat16)' and what is free."""
    need = compress_memory_bytes(n_params, dtype)
    text = f"loading and compressing it needs about {need / 1e9:.1f} GB of memory with {str(dtype).split('.')[-1]} weights"
    if dtype.itemsize > 2:
        text += (f" ({compress_memory_bytes(n_params, torch.bfloat16) / 1e9:.1f} GB with dtype='bfloat16', "
                 "half the weight memory)")
    avail = available_memory_bytes()
    if avail is not None:
        text += f"; {avail / 1e9:.1f} GB is available now"
    return text
