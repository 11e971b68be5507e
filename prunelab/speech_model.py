"""The value type every part of prunelab works on: a speech recogniser plus what is needed to run it.

It lives in a leaf module (no loaders, no compression code) so that loading, compressing, saving and
transcribing can all depend on it without depending on each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class SpeechModel:
    """A speech recogniser and what is needed to run it.

    Attributes:
        model: ``WhisperForConditionalGeneration`` or a ``*ForCTC`` model (HuBERT, wav2vec2, WavLM, ...).
        processor: the matching transformers processor (feature extractor + tokenizer).
        family: ``"whisper"`` (encoder-decoder, generates text) or ``"ctc"`` (encoder + CTC head).
        spec: the model spec it was loaded from, e.g. ``"bundled:whisper-base"``.
        compression: ``None`` for an original model; for a compressed one, a dict describing it
            (method, plan, per-layer structure) -- see :func:`prunelab.compression.compress`.
    """

    model: nn.Module
    processor: Any
    family: str
    spec: str
    compression: dict | None = field(default=None)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
