"""The model specs that load without the hub, and the error for a spec that names none of them.

A leaf of :mod:`prunelab.models`: :mod:`.load` (which dispatches a spec to its loader) and the loaders it
dispatches to (:mod:`.tiny`, :mod:`.shapes`) both read these names, so none of them imports another to get them.
"""
from __future__ import annotations

from ..errors import ModelLoadError

DEFAULT_MODEL = "bundled:whisper-base"
BUNDLED_MODELS = ("bundled:whisper-base",)
TINY_MODELS = ("tiny:whisper", "tiny:ctc")


def available_models() -> list[str]:
    """Specs that load without the hub: the bundled model first, then the tiny demo models."""
    return [*BUNDLED_MODELS, *TINY_MODELS]


def unknown_model(spec: str) -> ModelLoadError:
    """The error for a ``bundled:`` or ``tiny:`` spec that names no such model: it lists the offline ones."""
    return ModelLoadError(f"Unknown model {spec!r}. Available offline: {', '.join(available_models())}.")
