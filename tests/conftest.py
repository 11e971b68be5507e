"""Shared fixtures: the bundled Whisper-base (loaded once per session) and fresh tiny demo models."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

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


@pytest.fixture
def tiny_data(tmp_path):
    """A data folder of two short tones with made-up transcripts (for CLI/eval plumbing, never for WER claims)."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, text in enumerate(["hello world", "a small test"]):
        t = np.arange(8000) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(folder / f"clip{i}.wav", audio.astype(np.float32), 16000)
        (folder / f"clip{i}.txt").write_text(text)
    return folder
