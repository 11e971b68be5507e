"""Errors prunelab raises on bad input. Each message is meant to be shown to a user as is."""
from __future__ import annotations


class PrunelabError(ValueError):
    """Base class: something the user gave (a file, a model id, a plan) cannot be used."""


class AudioError(PrunelabError):
    """Audio that is missing, empty, silent, corrupt, not audio, or too long."""


class ModelLoadError(PrunelabError):
    """A model spec that cannot be loaded: unknown, unsupported, too large, or the hub is unreachable."""


class PlanError(PrunelabError):
    """A compression plan that does not fit the model: unknown layer, impossible cluster count, bad sparsity."""


class SaveError(PrunelabError):
    """A model or a file cannot be written where asked (nothing was written)."""
