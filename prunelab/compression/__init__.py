"""Compression of a whole model: its structure (layers), plans, allocation, sensitivity, the per-layer
cache, and :func:`compress` itself (and :func:`compress_`, in place). Pure per-layer algorithms live in
:mod:`prunelab.methods`; the modules they become in :mod:`prunelab.modules`.

``compress(model, config)`` goes one way through three modules: :mod:`.compress` checks the config against the
model, :mod:`.resolve` turns it into a plan (given, uniform, or an allocation strategy: :mod:`.allocate` from
data-free sensitivity curves, :mod:`.sensitivity`; :mod:`.output_allocation` from the model's output), and
:mod:`.assemble` compresses the plan's layers and builds the new model.
"""
from __future__ import annotations

from .cache import LayerCache
from .assemble import layer_result, vocabulary_savings
from .compress import compress, compress_
from .config import ALLOCATIONS, RECOMMENDED, CompressionConfig, method_choices, resolve_method
from .layers import LayerInfo, ffn_pairs, find_layers, set_module
from .plan import PRESET_HELP, PRESETS, Plan, presets_selecting

__all__ = ["ALLOCATIONS", "PRESETS", "PRESET_HELP", "RECOMMENDED", "CompressionConfig", "LayerCache", "LayerInfo",
           "Plan", "compress", "compress_", "ffn_pairs", "find_layers", "layer_result", "method_choices", "resolve_method",
           "set_module", "vocabulary_savings", "presets_selecting"]
