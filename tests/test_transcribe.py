"""transcribe / transcribe_many with Whisper and CTC models, and the WER / diff helpers."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prunelab.speech.audio import SAMPLE_RATE, load_audio
from prunelab.errors import AudioError
from prunelab.speech.metrics import normalize, wer, word_diff, word_diff_detailed
from prunelab.speech.transcribe import CHUNK_LENGTH_S, get_pipeline, transcribe, transcribe_many

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CLIPS = sorted(ASSETS.glob("clip*.wav"))


def _reference(wav: Path) -> str:
    return wav.with_suffix(".txt").read_text(encoding="utf-8").strip()


# --- metrics -------------------------------------------------------------------------------------

def test_normalize_matches_whisper_normaliser():
    assert normalize("Hello, World!") == "hello world"
    assert normalize("  The COLOUR of   Mr. Smith's car.") == "the color of mister smith is car"
    assert normalize("") == ""


def test_wer_basic_cases():
    assert wer("the cat sat down", "the cat sat down") == 0.0
    assert wer("the cat sat down", "the dog sat down") == pytest.approx(0.25)
    assert wer("Hello, World!", "hello world") == 0.0
    assert wer("a b c d", "a b c") == pytest.approx(0.25)  # deletion
    assert wer("a b c d", "a b c d e") == pytest.approx(0.25)  # insertion
    assert wer("a b", "x y z w") == pytest.approx(2.0)  # WER can exceed 1


def test_wer_is_corpus_level():
    # 1 error in 2 words + 0 errors in 8 words = 1/10, not the mean of per-utterance rates (0.25)
    refs = ["hello there", "the quick brown fox jumps over lazy dogs"]
    hyps = ["hello where", "the quick brown fox jumps over lazy dogs"]
    assert wer(refs, hyps) == pytest.approx(0.1)


def test_wer_empty_references():
    assert wer("", "") == 0.0
    assert wer(["", "..."], ["", ""]) == 0.0  # punctuation only -> nothing after normalising
    assert wer("", "something") == 1.0
    assert wer(["hello world", ""], ["hello world", "extra"]) == pytest.approx(0.5)
    assert wer("hello world", "") == 1.0
    with pytest.raises(ValueError):
        wer(["a", "b"], ["a"])


def test_word_diff_marks_substitution():
    diff = word_diff("The cat sat on the mat.", "the dog sat on the mat")
    assert diff == [("equal", "the"), ("substitute", "dog"), ("equal", "sat on the mat")]
    detailed = word_diff_detailed("The cat sat on the mat.", "the dog sat on the mat")
    assert ("substitute", "cat", "dog") in detailed


def test_word_diff_insert_and_delete():
    assert word_diff("a b c", "a c") == [("equal", "a"), ("delete", "b"), ("equal", "c")]
    assert word_diff("a b", "a b c") == [("equal", "a b"), ("insert", "c")]
    assert word_diff("a b", "") == [("delete", "a b")]
    assert word_diff("", "x") == [("insert", "x")]
    assert word_diff("", "") == []


# --- tiny random models: structure only ----------------------------------------------------------

def test_tiny_ctc_returns_string(tiny_ctc):
    audio = load_audio(CLIPS[0])
    text = transcribe(tiny_ctc, audio, SAMPLE_RATE)
    assert isinstance(text, str) and text == text.strip()
    assert get_pipeline(tiny_ctc) is get_pipeline(tiny_ctc)  # built once per model
    out = transcribe_many(tiny_ctc, [CLIPS[0], (SAMPLE_RATE, (audio * 32767).astype(np.int16))])
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_tiny_whisper_returns_string(tiny_whisper):
    text = transcribe(tiny_whisper, CLIPS[1])
    assert isinstance(text, str) and text == text.strip()


def test_compressed_copy_gets_its_own_pipeline(tiny_ctc):
    first = get_pipeline(tiny_ctc)
    clone = copy.copy(tiny_ctc)
    clone.model = copy.deepcopy(tiny_ctc.model)
    second = get_pipeline(clone)
    assert second is not first and second.model is clone.model
    assert isinstance(transcribe(clone, CLIPS[0]), str)


def test_transcribe_rejects_bad_audio(tiny_ctc, tmp_path):
    with pytest.raises(AudioError, match="not found"):
        transcribe(tiny_ctc, tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="silent"):
        transcribe(tiny_ctc, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="too long"):
        transcribe(tiny_ctc, CLIPS[0], max_seconds=1.0)


def test_long_audio_tiny_whisper(tiny_whisper):
    audio = np.tile(load_audio(CLIPS[0]), 9)  # ~40 s: Whisper long-form path
    assert isinstance(transcribe(tiny_whisper, audio, SAMPLE_RATE), str)


def test_long_audio_chunked_ctc(tiny_ctc):
    audio = np.tile(load_audio(CLIPS[0]), 9)  # ~40 s
    assert len(audio) > CHUNK_LENGTH_S * SAMPLE_RATE
    assert isinstance(transcribe(tiny_ctc, audio, SAMPLE_RATE), str)


# --- the real Whisper-base -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def asset_transcripts(whisper_base) -> list[str]:
    return transcribe_many(whisper_base, CLIPS)


def test_assets_exist():
    assert len(CLIPS) == 3
    for wav in CLIPS:
        info = sf.info(str(wav))
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
        assert 3.0 <= info.duration <= 6.0 and wav.stat().st_size < 200_000
        assert _reference(wav)


@pytest.mark.slow
def test_whisper_base_transcribes_assets(asset_transcripts):
    refs = [_reference(w) for w in CLIPS]
    score = wer(refs, asset_transcripts)
    assert score <= 0.15, f"WER {score:.1%}: {list(zip(refs, asset_transcripts))}"
    assert all(t and t == t.strip() for t in asset_transcripts)


@pytest.mark.slow
def test_whisper_base_long_clip_over_30s(whisper_base):
    clips = [load_audio(w) for w in CLIPS]
    gap = np.zeros(int(0.6 * SAMPLE_RATE), dtype=np.float32)
    order = [0, 1, 2] * 3  # first clip first, last clip last
    parts = [part for i in order for part in (clips[i], gap)]
    audio = np.concatenate(parts)
    seconds = len(audio) / SAMPLE_RATE
    assert 45 <= seconds <= 60
    text = normalize(transcribe(whisper_base, (SAMPLE_RATE, audio)))
    words = set(text.split())
    assert {"flowers", "vase"} & words, text  # from the first clip
    assert {"laptop", "graphics"} & words, text  # from the last clip
    assert len(text.split()) >= 0.85 * sum(len(normalize(_reference(CLIPS[i])).split()) for i in order)


def test_token_budget_grows_with_length_and_is_capped() -> None:
    from prunelab.speech.transcribe import max_tokens_for

    assert max_tokens_for(1.0) < max_tokens_for(10.0) <= 440
    assert max_tokens_for(10.0) >= 5 * 10 + 20  # fast speech: ~5 tokens per second, with room to spare
    assert max_tokens_for(30.0) >= 5 * 30 + 20 and max_tokens_for(120.0) == 440
