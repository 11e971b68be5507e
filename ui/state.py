"""What all users share: loaded and compressed models, per-layer results, and the downloads folder.

Everything here is bounded, since a Space has little memory and many visitors:

* :data:`MODELS`: the original models (at most ``MAX_LOADED_MODELS``), loaded once even when several
  users ask for the same one at the same time (:func:`get_model`);
* :data:`COMPRESSED`: each session's compressed model under the key its :class:`~ui.session.Session`
  holds, bounded by the BYTES the models add beyond the original they share (:func:`added_bytes`:
  ``compress()`` shares every unchanged tensor with its input, so a model costs only the layers it
  replaced). The least recently used is set aside first; its session rebuilds it from the plan it holds
  (:func:`ui.session.require_compressed`), so nobody's work is lost. A session that ends drops its own
  models (:meth:`CompressedStore.drop_owner`);
* :data:`LAYER_CACHE`: the library's per-layer clustering results (bounded by bytes), so moving one
  slider re-clusters one layer, and a set-aside model is rebuilt quickly;
* :data:`FILES`: a temporary folder for downloads, files older than ``FILE_TTL_S`` pruned, and a
  session's own files removed when it ends (:func:`release_files`).

Why original models sit in :class:`BoundedStore` and not in the library's :class:`LayerCache`: a
``LayerCache`` only offers ``get_or_compute``, which computes outside its lock (two users asking for the
same model at once would both load it), and weighs a value by its ``nbytes()``, which a ``SpeechModel``
does not have. Original models are few and large, so a count bound fits them; compressed ones share
most of their tensors with an original, so :class:`CompressedStore` weighs each by what it adds.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Generic, Hashable, Iterator, TypeVar

import torch
from torch import nn

from .lib import LayerCache, SpeechModel, load_model
from .settings import COMPRESSED_MB, DEFAULT_SPEC, FILE_TTL_S, LAYER_CACHE_MB, MAX_LOADED_MODELS, MAX_MODEL_BYTES

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


def _tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def _storage(t: torch.Tensor) -> tuple[int, str]:
    return t.untyped_storage().data_ptr(), str(t.device)


def added_bytes(model: SpeechModel, original: SpeechModel | None) -> int:
    """Bytes of ``model``'s parameters and buffers whose storage is NOT shared with ``original``'s.

    What a compressed model costs beyond the original it was made from: ``compress()`` shares every
    unchanged tensor (:func:`prunelab.compression.assemble.share_copy`), so this is about the layers it
    replaced. Each storage counts once, whole (a tensor viewing part of a new storage costs all of it).
    With no ``original`` (it has left :data:`MODELS`, so the compressed model alone keeps its tensors
    alive), everything counts.
    """
    shared = {_storage(t) for t in _tensors(original.model)} if original is not None else set()
    seen: set[tuple[int, str]] = set()
    total = 0
    for t in _tensors(model.model):
        key = _storage(t)
        if key in shared or key in seen:
            continue
        seen.add(key)
        total += t.untyped_storage().nbytes()
    return total


class CompressedStore:
    """The sessions' compressed models by key, thread-safe, bounded by the bytes they add (``max_bytes``).

    Each model is stored with its weight (:func:`added_bytes`) and its owner (the Gradio session that made
    it). When the total passes ``max_bytes`` the least recently used models are set aside (their sessions
    rebuild them on demand), but the one just stored always stays, however large. ``evictions`` counts
    models set aside for memory, ``rebuilds`` those rebuilt afterwards (:func:`ui.session.require_compressed`).
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[SpeechModel, int, str | None]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self.evictions = 0
        self.rebuilds = 0

    def get(self, key: str | None) -> SpeechModel | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key: str, model: SpeechModel, nbytes: int, owner: str | None = None) -> None:
        """Store ``model`` (weighing ``nbytes``) under ``key``, replacing what was there; evict to fit."""
        with self._lock:
            self._pop(key)
            self._items[key] = (model, int(nbytes), owner)
            self._bytes += int(nbytes)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                self._pop(next(iter(self._items)))
                self.evictions += 1

    def _pop(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= item[1]

    def drop(self, key: str | None) -> bool:
        """Forget the model under ``key`` (a session that ended); True if there was one."""
        with self._lock:
            found = key in self._items
            self._pop(key)
            self._building.pop(key, None)
            return found

    def drop_owner(self, owner: str, keep: str | None = None) -> int:
        """Forget every model ``owner`` (a session hash) stored, but the one under ``keep``; returns how many."""
        with self._lock:
            keys = [k for k, (_, _, o) in self._items.items() if o == owner and k != keep]
            for k in keys:
                self._pop(k)
                self._building.pop(k, None)
            return len(keys)

    def count_rebuild(self) -> None:
        with self._lock:
            self.rebuilds += 1

    def building(self, key: str) -> threading.Lock:
        """A lock per key, held while its model is rebuilt, so two events of one session build it once."""
        with self._lock:
            return self._building.setdefault(key, threading.Lock())

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def keys(self, owner: str | None = None) -> list[str]:
        """The keys stored (by ``owner`` only, when given), least recently used first."""
        with self._lock:
            return [k for k, (_, _, o) in self._items.items() if owner is None or o == owner]

    def owners(self) -> set[str | None]:
        with self._lock:
            return {o for _, _, o in self._items.values()}

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


MODELS: BoundedStore[SpeechModel] = BoundedStore(MAX_LOADED_MODELS)
COMPRESSED = CompressedStore(COMPRESSED_MB * 2**20)
LAYER_CACHE = LayerCache(max_bytes=LAYER_CACHE_MB * 2**20)
FILES = Path(tempfile.mkdtemp(prefix="prunelab-app-"))
_FILE_OWNERS: dict[str, list[Path]] = {}  # session hash -> the download folders it made
_FILES_LOCK = threading.Lock()


def get_model(spec: str | None) -> SpeechModel:
    """The shared original model for ``spec``, loading it once (several users may ask at the same time)."""
    spec = (spec or "").strip() or DEFAULT_SPEC
    return MODELS.get_or_load(spec, lambda: load_model(spec, max_bytes=MAX_MODEL_BYTES))


def new_file(name: str, owner: str | None = None) -> Path:
    """A fresh path under the app's download folder (files older than ``FILE_TTL_S`` are removed).

    With an ``owner`` (a session hash), :func:`release_files` removes it when that session ends."""
    now = time.time()
    for old in FILES.iterdir():
        try:
            if now - old.stat().st_mtime > FILE_TTL_S:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        except OSError:
            pass
    folder = FILES / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    if owner:
        with _FILES_LOCK:
            _FILE_OWNERS.setdefault(owner, []).append(folder)
    return folder / name


def release_files(owner: str) -> int:
    """Remove the download folders ``owner`` made (its session ended); returns how many.

    Gradio has already copied each returned file into its own cache (cleared by ``delete_cache``)."""
    with _FILES_LOCK:
        folders = _FILE_OWNERS.pop(owner, [])
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return len(folders)
