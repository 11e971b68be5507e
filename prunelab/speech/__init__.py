"""Speech in, text out, and how well: audio loading with readable errors (:mod:`.audio`), transcription
(:mod:`.transcribe`), WER with Whisper's normaliser (:mod:`.metrics`), evaluation sets (:mod:`.data`)
and the WER table of ``prunelab eval`` (:mod:`.evaluate`).
"""
from __future__ import annotations

from .audio import SAMPLE_RATE, load_audio
from .data import Utterance, load_eval_set
from .metrics import wer, word_diff
from .transcribe import transcribe, transcribe_batch, transcribe_many

__all__ = ["SAMPLE_RATE", "Utterance", "load_audio", "load_eval_set", "transcribe", "transcribe_batch",
           "transcribe_many", "wer", "word_diff"]
