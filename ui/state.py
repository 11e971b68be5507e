"""What all users share: loaded and compressed models, per-layer results, and the downloads folder.

Everything here is bounded, since a Space has little memory and many visitors:

* :data:`MODELS`: the original models (at most ``MAX_LOADED_MODELS``), loaded once even when several
  users ask for the same one at the same time (:func:`get_model`);
* :data:`COMPRESSED`: each session's compressed model under the key its :class:`~ui.session.Session`
  holds (at most ``MAX_COMPRESSED_MODELS``; the least recently used goes first, and its user is told to
  compress again);
* :data:`LAYER_CACHE`: the library's per-layer clustering results (bounded by bytes), so moving one
  slider re-clusters one layer;
* :data:`FILES`: a temporary folder for downloads, files older than ``FILE_TTL_S`` pruned.

Why models sit in :class:`BoundedStore` and not in the library's :class:`LayerCache`: a ``LayerCache``
only offers ``get_or_compute``, which computes outside its lock (two users asking for the same model at
once would both load it), cannot look a key up without computing (needed to tell a user their
compressed model was dropped) nor replace a value (compressing again under the session's key), and
weighs a value by its ``nbytes()``, which a ``SpeechModel`` does not have. Models are few and large, so
a count bound fits them; ``LayerCache`` stays the right tool for the many small per-layer results.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Generic, Hashable, TypeVar

from .lib import LayerCache, SpeechModel, load_model
from .settings import (DEFAULT_SPEC, FILE_TTL_S, LAYER_CACHE_MB, MAX_COMPRESSED_MODELS, MAX_LOADED_MODELS,
                       MAX_MODEL_BYTES)

V = TypeVar("V")


class BoundedStore(Generic[V]):
    """A thread-safe least-recently-used store of at most ``size`` values by key."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}  # one lock per key being (or once) loaded

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        """The value for ``key``, calling ``load()`` once if it is missing; concurrent callers wait for it."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            value = self.get(key)
            if value is None:
                value = load()
                self.put(key, value)
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


MODELS: BoundedStore[SpeechModel] = BoundedStore(MAX_LOADED_MODELS)
COMPRESSED: BoundedStore[SpeechModel] = BoundedStore(MAX_COMPRESSED_MODELS)
LAYER_CACHE = LayerCache(max_bytes=LAYER_CACHE_MB * 2**20)
FILES = Path(tempfile.mkdtemp(prefix="prunelab-app-"))


def get_model(spec: str | None) -> SpeechModel:
    """The shared original model for ``spec``, loading it once (several users may ask at the same time)."""
    spec = (spec or "").strip() or DEFAULT_SPEC
    return MODELS.get_or_load(spec, lambda: load_model(spec, max_bytes=MAX_MODEL_BYTES))


def new_file(name: str) -> Path:
    """A fresh path under the app's download folder (files older than ``FILE_TTL_S`` are removed)."""
    now = time.time()
    for old in FILES.iterdir():
        try:
            if now - old.stat().st_mtime > FILE_TTL_S:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        except OSError:
            pass
    folder = FILES / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    return folder / name
