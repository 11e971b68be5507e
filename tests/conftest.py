"""Shared fixtures: the bundled Whisper-base (loaded once per session) and fresh tiny demo models."""
from __future__ import annotations

import pytest

from prunelab.models import SpeechModel, load_model


@pytest.fixture(scope="session")
def whisper_base() -> SpeechModel:
    """The real Whisper-base (converted to the prunelab cache on first use). Shared: do not modify it
    in place -- ``copy.deepcopy(whisper_base.model)`` first."""
    return load_model("bundled:whisper-base")


@pytest.fixture
def tiny_whisper() -> SpeechModel:
    """A fresh random Whisper (D=64, 2+2 layers) with the real tokenizer; safe to modify."""
    return load_model("tiny:whisper")


@pytest.fixture
def tiny_ctc() -> SpeechModel:
    """A fresh random HuBERT CTC model (hidden 64, 2 layers, 32 characters); safe to modify."""
    return load_model("tiny:ctc")
