"""transcribe / transcribe_many with Whisper and CTC models, and the WER / diff helpers."""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from prunelab.compression import CompressionConfig, compress
from prunelab.speech.audio import SAMPLE_RATE, load_audio
from independent import ctc_text
from prunelab.errors import AudioError
from prunelab.speech.metrics import normalize, wer, word_diff, word_diff_detailed
from prunelab.speech.transcribe import (CHUNK_LENGTH_S, get_pipeline, max_tokens_for, transcribe, transcribe_batch,
                                        transcribe_many)

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


def _edit_distance(a: list[str], b: list[str]) -> int:
    """Word-level Levenshtein distance, the textbook dynamic programme (independent of jiwer)."""
    row = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, wb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (wa != wb))
    return row[-1]


def test_corpus_wer_equals_summed_edit_distances_with_empty_lines_anywhere():
    refs = ["the cat sat", "", "a b c d", "hello world", "", "red blue", "x"]  # (no numbers: the normaliser
    hyps = ["the bat sat down", "stray words", "", "hello world", "", "blue red", ""]  # would rewrite them)
    errors = sum(_edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps))
    words = sum(len(r.split()) for r in refs)
    assert (errors, words) == (2 + 2 + 4 + 0 + 0 + 2 + 1, 12)  # by hand, line by line
    assert wer(refs, hyps) == wer(refs, hyps, normalize_text=False) == pytest.approx(errors / words)
    assert wer(refs[::-1], hyps[::-1]) == pytest.approx(errors / words)  # order does not matter
    assert wer([None, "a b"], ["", "a b"]) == 0.0 and wer(["a b", "c"], ["a b", None]) == pytest.approx(1 / 3)
    assert normalize(None) == ""
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        wer(["a", "b"], ["a"])


def test_word_diff_without_normalising_and_detailed_edges():
    assert word_diff("The cat.", "the cat") == [("equal", "the cat")]
    assert word_diff("The cat.", "the cat", normalize_text=False) == [("substitute", "the cat")]
    assert word_diff_detailed("The cat.", "the cat", normalize_text=False) == [("substitute", "The cat.", "the cat")]
    # the hypothesis is normalised exactly when asked, like the reference
    assert word_diff_detailed("the cat", "The CAT!") == [("equal", "the cat", "the cat")]
    assert word_diff_detailed("the cat", "The CAT!", normalize_text=False) == [("substitute", "the cat", "The CAT!")]
    assert word_diff_detailed(None, " a b ", normalize_text=False) == [("insert", "", "a b")]
    assert word_diff_detailed("a b", None, normalize_text=False) == [("delete", "a b", "")]
    assert word_diff_detailed("", "x y") == [("insert", "", "x y")]
    assert word_diff_detailed("x y", "") == [("delete", "x y", "")]
    assert word_diff_detailed("a b", "a x y b") == [("equal", "a", "a"), ("insert", "", "x y"), ("equal", "b", "b")]
    assert word_diff_detailed("a b c d", "a x y d") == [("equal", "a", "a"), ("substitute", "b c", "x y"),
                                                        ("equal", "d", "d")]


# --- tiny random models: structure only ----------------------------------------------------------

def _ctc_greedy(sm, audio: np.ndarray) -> str:
    """The CTC transcript worked out directly: logits of the whole clip, argmax per frame, collapse, decode,
    special symbols dropped (:func:`independent.ctc_text`)."""
    x = sm.processor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values
    with torch.no_grad():
        ids = sm.model(x).logits.argmax(-1)
    return ctc_text(sm.processor.tokenizer, ids[0])


def _whisper_greedy(sm, audio: np.ndarray) -> str:
    """The Whisper transcript worked out directly: English transcription prompt, greedy generate, decode."""
    feats = sm.processor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    with torch.no_grad():
        ids = sm.model.generate(feats, language="en", task="transcribe",
                                max_new_tokens=max_tokens_for(len(audio) / SAMPLE_RATE))
    return sm.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


def test_tiny_ctc_transcript_is_the_greedy_ctc_decoding(tiny_ctc):
    audio = load_audio(CLIPS[0])
    text = transcribe(tiny_ctc, audio, SAMPLE_RATE)
    assert text and text == _ctc_greedy(tiny_ctc, audio)
    assert get_pipeline(tiny_ctc) is get_pipeline(tiny_ctc)  # built once per model
    ints = (audio * 32767).astype(np.int16)  # a Gradio recording: (rate, int16 samples)
    out = transcribe_many(tiny_ctc, [CLIPS[1], (SAMPLE_RATE, ints)])
    assert out == [_ctc_greedy(tiny_ctc, load_audio(CLIPS[1])), _ctc_greedy(tiny_ctc, ints / 32768.0)]


def test_tiny_whisper_transcript_is_the_greedy_english_decoding(tiny_whisper):
    audio = load_audio(CLIPS[1])[: 2 * SAMPLE_RATE]
    text = transcribe(tiny_whisper, audio, SAMPLE_RATE)
    assert text and text == _whisper_greedy(tiny_whisper, audio)


def test_transcribing_prints_no_generation_chatter_and_keeps_the_callers_log_level(tiny_whisper):
    """transformers warned on every clip that both max_new_tokens and the config's max_length were set (seen on
    `prunelab transcribe`): the library sets the token budget on purpose, so nothing should reach the terminal."""
    import logging

    from transformers.utils import logging as hf_logging

    class Records(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    seen = Records()
    library = logging.getLogger("transformers")  # the logger every transformers module's logger reports to
    hf_logging.set_verbosity_warning()
    library.addHandler(seen)
    try:
        audio = load_audio(CLIPS[1])[: 2 * SAMPLE_RATE]
        transcribe(tiny_whisper, audio, SAMPLE_RATE)
        transcribe_batch(tiny_whisper, [audio, audio[:SAMPLE_RATE]], sampling_rate=SAMPLE_RATE)
    finally:
        library.removeHandler(seen)
    assert not [m for m in seen.messages if "max_new_tokens" in m or "max_length" in m], seen.messages
    assert hf_logging.get_verbosity() == hf_logging.WARNING


def test_compressed_copy_gets_its_own_pipeline(tiny_ctc):
    first = get_pipeline(tiny_ctc)
    small = compress(tiny_ctc, CompressionConfig(method="magnitude", sparsity=0.6))
    second = get_pipeline(small)
    assert second is not first and second.model is small.model
    audio = load_audio(CLIPS[0])
    assert _ctc_greedy(small, audio) != _ctc_greedy(tiny_ctc, audio)  # the two models do disagree here
    assert transcribe(small, audio, SAMPLE_RATE) == _ctc_greedy(small, audio)
    assert transcribe(tiny_ctc, audio, SAMPLE_RATE) == _ctc_greedy(tiny_ctc, audio)


def test_transcribe_rejects_bad_audio(tiny_ctc, tmp_path):
    with pytest.raises(AudioError, match="not found"):
        transcribe(tiny_ctc, tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="silent"):
        transcribe(tiny_ctc, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="too long"):
        transcribe(tiny_ctc, CLIPS[0], max_seconds=1.0)


def test_long_audio_tiny_whisper_decodes_every_window(tiny_whisper):
    """Over 30 s, Whisper decodes window after window: more audio, more windows, more text."""
    clip = load_audio(CLIPS[0])
    two, three = np.tile(clip, 9), np.tile(clip, 16)  # ~37 s and ~66 s: 2 and 3 windows of 30 s
    assert CHUNK_LENGTH_S * SAMPLE_RATE < len(two) < 2 * CHUNK_LENGTH_S * SAMPLE_RATE < len(three)
    words_two, words_three = (transcribe(tiny_whisper, a, SAMPLE_RATE).split() for a in (two, three))
    assert 0 < len(words_two) < len(words_three), (words_two, words_three)


def test_long_audio_chunked_ctc(tiny_ctc):
    clip = load_audio(CLIPS[0])
    once, twice = np.tile(clip, 9), np.tile(clip, 18)  # ~37 s and ~75 s
    assert len(once) > CHUNK_LENGTH_S * SAMPLE_RATE
    text_once, text_twice = transcribe(tiny_ctc, once, SAMPLE_RATE), transcribe(tiny_ctc, twice, SAMPLE_RATE)
    # chunks stitched at their strides: close to decoding the whole clip at once (the chunk edges differ a little)
    # (autojunk off: in ~800 characters of a random model's few letters, difflib would ignore the common ones)
    assert difflib.SequenceMatcher(None, text_once, _ctc_greedy(tiny_ctc, once), autojunk=False).ratio() > 0.9
    assert 1.8 * len(text_once) <= len(text_twice) <= 2.2 * len(text_once)


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
