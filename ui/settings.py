"""The app's settings: what the environment sets (read once, at import), defaults, and readable labels.

Environment variables are listed in the :mod:`ui` docstring. The labels of presets are the app's own
wording; methods and their labels come from the library's registry (:data:`prunelab.METHODS`).
"""
from __future__ import annotations

import os
from pathlib import Path

from .lib import DEFAULT_MODEL, METHODS, method_names

ROOT = Path(__file__).resolve().parents[1]  # the repository (app.py, assets/)
ASSETS = ROOT / "assets"

DEFAULT_SPEC = os.environ.get("PRUNELAB_MODEL", "").strip() or DEFAULT_MODEL
MAX_AUDIO_S = float(os.environ.get("PRUNELAB_MAX_AUDIO_S", "") or 60)
LAYER_CACHE_MB = int(os.environ.get("PRUNELAB_LAYER_CACHE_MB", "") or 384)
MAX_LOADED_MODELS = 2  # original models shared by all sessions
COMPRESSED_MB = int(os.environ.get("PRUNELAB_COMPRESSED_MB", "") or 512)
"""Memory for the sessions' compressed models, counted as the bytes each adds beyond the original it shares
(least recently used set aside first, and rebuilt from its session's plan when its user needs it again)."""
FILE_TTL_S = 3600  # downloads older than this are removed


def _default_max_model_bytes() -> int:
    env = os.environ.get("PRUNELAB_MAX_MODEL_GB", "").strip()
    if env:
        return int(float(env) * 1e9)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 * 10**9
    return int(min(4e9, ram / 3))


MAX_MODEL_BYTES = _default_max_model_bytes()

DEFAULT_SPARSITY = 0.1  # on Whisper-base, 10 % of the encoder FFN neurons: the gentlest setting of the study (k-means 16.2 % test WER vs 12.2 %)
DEFAULT_PRESET = "encoder-fc1"
DEFAULT_METHOD = "kmeans"
UI_PRESETS = {  # the presets offered as choices, with a readable name
    "uniform": "Uniform (all layers)",
    "ffn": "FFN only",
    "encoder": "Encoder only",
    "attention": "Attention only",
    "encoder-ffn": "Encoder FFN only",
    "fc1": "FFN neurons (fc1, folded)",
    "encoder-fc1": "Encoder FFN neurons (fc1, folded)",
    "decoder-fc1": "Decoder FFN neurons (fc1, folded)",
    "decoder": "Decoder only",
    "decoder-self-qk": "Decoder self-attention query/key dims (foldable units)",
}


def method_label(method: str) -> str:
    """The readable name of a registered method (its registry label), or the name itself."""
    return METHODS[method].label if method in METHODS else method


def method_choices() -> list[tuple[str, str]]:
    """(label, name) of every registered method, the paper's first: the Method dropdown."""
    return [(METHODS[m].label, m) for m in method_names()]


def known_method(method: str | None) -> str:
    """``method`` if the library has it, else the default (k-means): what handlers compress with."""
    return method if method in METHODS else DEFAULT_METHOD
