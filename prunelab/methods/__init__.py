"""Per-layer compression methods: pure functions on a layer's weight and bias, and their registry.

Importing this package registers every built-in method in :data:`METHODS` (see :mod:`.registry` for
how to add one). Nothing here knows about models, plans or modules.
"""
from __future__ import annotations

from . import clustering, compensation, lowrank, magnitude, predictive  # noqa: F401  (registration)
from .clustering import (HybridOptions, hybrid_channels, kmeans_channels, kmeans_weighted_channels,
                         representative_channels)
from .compensation import FoldOptions, kmeans_fold
from .magnitude import magnitude_channels, magnitude_unstructured
from .predictive import PredictiveOptions, predictive_fold
from .registry import METHODS, Method, NoOptions, check_k, get_method, register_method

_ORIGIN_ORDER = {"paper": 0, "baseline": 1, "data-free": 2}


def method_names() -> list[str]:
    """Registered method names: the paper's first, then the baselines, then prunelab's data-free variants."""
    return sorted(METHODS, key=lambda n: _ORIGIN_ORDER.get(METHODS[n].origin, 3))


__all__ = ["METHODS", "FoldOptions", "HybridOptions", "Method", "NoOptions", "PredictiveOptions", "check_k",
           "get_method", "hybrid_channels", "kmeans_channels", "kmeans_fold", "kmeans_weighted_channels",
           "magnitude_channels", "magnitude_unstructured", "method_names", "predictive_fold", "register_method",
           "representative_channels"]
