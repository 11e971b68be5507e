"""Compression of a whole model: its structure (layers), plans, allocation, sensitivity, the per-layer
cache, and :func:`compress` itself (and :func:`compress_`, in place). Pure per-layer algorithms live in :mod:`prunelab.methods`; the
modules they become in :mod:`prunelab.modules`.
"""
from __future__ import annotations

from .cache import LayerCache
from .compress import compress, compress_, layer_result, vocabulary_savings
from .config import ALLOCATIONS, RECOMMENDED, CompressionConfig, method_choices, resolve_method
from .layers import LayerInfo, ffn_pairs, find_layers, set_module
from .plan import PRESET_HELP, PRESETS, Plan, presets_selecting

__all__ = ["ALLOCATIONS", "PRESETS", "PRESET_HELP", "RECOMMENDED", "CompressionConfig", "LayerCache", "LayerInfo",
           "Plan", "compress", "compress_", "ffn_pairs", "find_layers", "layer_result", "method_choices", "resolve_method",
           "set_module", "vocabulary_savings", "presets_selecting"]
