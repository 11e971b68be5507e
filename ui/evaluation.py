"""The bundled evaluation clips and a model's transcripts of them: what Tuning history (Evaluate this plan,
reference points) and the measured sensitivity of See what changed both score with.

``assets/eval``: 12 clips, 6 synthetic voices, disjoint from every clip set the project chose settings on
(``benchmarks/make_app_clips.py``). Whisper transcribes them in one batch. The original model's WER on them is
computed once per model and shared by every user (:func:`original_wer`).
"""
from __future__ import annotations

import threading

from .lib import load_eval_set, transcribe_batch, wer
from .settings import ASSETS

EVAL_DIR = ASSETS / "eval"
_ORIGINAL: dict[str, tuple[float, list[str]]] = {}  # model spec -> (original WER, transcripts): computed once
_ORIGINAL_LOCK = threading.Lock()


def eval_clips() -> tuple[list[str], list[str]]:
    """The bundled evaluation clips: (wav paths, reference texts), sorted by name."""
    clips = load_eval_set(EVAL_DIR)
    return [str(u.audio) for u in clips], [u.text for u in clips]


def transcribe_clips(model, audios: list[str], report) -> list[str]:
    """The clips' transcripts, in one batch (Whisper; CTC models go clip by clip)."""
    return transcribe_batch(model, audios, batch_size=12, progress=report)


def original_wer(model, audios: list[str], refs: list[str], report) -> float:
    """The original model's WER on the clips, transcribed once per model (every user shares it)."""
    with _ORIGINAL_LOCK:
        cached = _ORIGINAL.get(model.spec)
    if cached is None:
        hyps = transcribe_clips(model, audios, report)
        cached = (wer(refs, hyps), hyps)
        with _ORIGINAL_LOCK:
            _ORIGINAL[model.spec] = cached
    return cached[0]
