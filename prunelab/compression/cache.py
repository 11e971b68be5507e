"""A small bounded cache of per-layer compression results, so moving one slider re-clusters one layer."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import torch


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if hasattr(value, "nbytes") and callable(value.nbytes):
        return int(value.nbytes())
    return 1024


class LayerCache:
    """LRU cache keyed by (model, layer, K, method, seed, ...), bounded by the bytes it holds. Thread-safe."""

    def __init__(self, max_bytes: int = 512 * 2**20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key][0]
            self.misses += 1
        value = compute()
        size = _nbytes(value)
        with self._lock:
            if size <= self.max_bytes:
                if key in self._items:
                    self._bytes -= self._items.pop(key)[1]
                self._items[key] = (value, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, s) = self._items.popitem(last=False)
                    self._bytes -= s
        return value

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
