"""Getting models in and out: load a model from a spec, save a compressed one and load it back.

* :mod:`.specs`: the specs that load offline (``available_models``) and the error naming them;
* :mod:`.load`: ``load_model(spec)`` for ``bundled:whisper-base`` (the offline default), Hugging Face ids
  (fast, clear failure when the hub cannot be reached), local folders and the tiny demo models;
* :mod:`.bundled`, :mod:`.ctranslate2`: the bundled Whisper-base, read from its CTranslate2 file and
  converted to transformers once;
* :mod:`.tiny`: random-weight demo models;
* :mod:`.saved`: ``save_compressed`` / ``load_compressed`` (safetensors + config + plan JSON).
"""
from __future__ import annotations

from ..speech_model import SpeechModel
from .load import load_model
from .specs import BUNDLED_MODELS, DEFAULT_MODEL, TINY_MODELS, available_models
from .saved import is_saved_model, load_compressed, save_compressed

__all__ = ["BUNDLED_MODELS", "DEFAULT_MODEL", "TINY_MODELS", "SpeechModel", "available_models", "is_saved_model",
           "load_compressed", "load_model", "save_compressed"]
