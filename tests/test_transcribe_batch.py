"""Batched transcription: the same hypotheses as clip-by-clip transcription, in fewer generate calls."""
import importlib
from pathlib import Path

import numpy as np
import pytest

from prunelab.speech.audio import load_audio
from prunelab.speech.transcribe import CHUNK_LENGTH_S, transcribe, transcribe_batch

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def test_batches_cover_every_clip_in_order(tiny_whisper, monkeypatch):
    tr = importlib.import_module("prunelab.speech.transcribe")  # the package re-exports a function of that name

    calls = []
    real = tr._whisper_batch

    def spy(model, clips, language):
        calls.append(len(clips))
        return real(model, clips, language)

    monkeypatch.setattr(tr, "_whisper_batch", spy)
    rng = np.random.default_rng(0)
    clips = [0.1 * rng.standard_normal(16000).astype(np.float32) for _ in range(5)]
    progress = []
    texts = transcribe_batch(tiny_whisper, clips, sampling_rate=16000, batch_size=2,
                             progress=lambda i, n, _m: progress.append((i, n)))
    assert calls == [2, 2, 1] and len(texts) == 5 and all(isinstance(t, str) for t in texts)
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert texts == [transcribe(tiny_whisper, c, 16000) for c in clips]  # same greedy decoding, same budget


def test_long_clips_and_ctc_go_clip_by_clip(tiny_whisper, tiny_ctc, monkeypatch):
    tr = importlib.import_module("prunelab.speech.transcribe")  # the package re-exports a function of that name

    batched = []
    monkeypatch.setattr(tr, "_whisper_batch", lambda m, clips, lang: batched.append(len(clips)) or ["x"] * len(clips))
    monkeypatch.setattr(tr, "_run", lambda m, c, lang, beams: f"single {len(c)}")
    long = np.zeros(int((CHUNK_LENGTH_S + 1) * 16000), np.float32) + 0.01
    short = np.zeros(16000, np.float32) + 0.01
    assert transcribe_batch(tiny_whisper, [long, short], sampling_rate=16000) == [f"single {len(long)}", "x"]
    assert batched == [1]
    assert transcribe_batch(tiny_ctc, [short], sampling_rate=16000) == [f"single {len(short)}"]


@pytest.mark.slow
def test_whisper_base_batch_equals_one_by_one(whisper_base):
    clips = [load_audio(p) for p in sorted(ASSETS.glob("*.wav"))]
    assert len(clips) >= 3
    one_by_one = [transcribe(whisper_base, c, 16000) for c in clips]
    assert transcribe_batch(whisper_base, clips, sampling_rate=16000, batch_size=2) == one_by_one
    assert all(len(t.split()) >= 5 for t in one_by_one)
