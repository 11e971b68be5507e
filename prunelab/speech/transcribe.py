"""Transcribe audio with a :class:`~prunelab.models.SpeechModel` (Whisper or CTC).

Uses transformers' ``automatic-speech-recognition`` pipeline, built once per ``SpeechModel`` and
cached while that object lives. Compressed copies (whose modules were replaced) get their own
pipeline, since they are different ``SpeechModel`` objects.
"""
from __future__ import annotations

import contextlib
import threading
import warnings
import weakref
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from .audio import SAMPLE_RATE, load_audio
from ..progress import Progress
from ..speech_model import SpeechModel

CHUNK_LENGTH_S = 30.0
"""Audio longer than this is transcribed piecewise: Whisper with its sequential long-form decoding
(30 s windows), CTC models in overlapping 30 s chunks."""

# id(SpeechModel) -> (weakref to the SpeechModel, the nn.Module the pipeline was built on, pipeline)
_PIPELINES: dict[int, tuple[weakref.ref, Any, Any]] = {}
_LOCK = threading.Lock()


def _components(speech_model: SpeechModel) -> tuple[Any, Any]:
    proc = speech_model.processor
    tokenizer = getattr(proc, "tokenizer", None)
    feature_extractor = getattr(proc, "feature_extractor", None)
    if tokenizer is None or feature_extractor is None:
        raise TypeError(
            "SpeechModel.processor must have .tokenizer and .feature_extractor "
            f"(got {type(proc).__name__})"
        )
    return tokenizer, feature_extractor


def get_pipeline(speech_model: SpeechModel):
    """The ASR pipeline for ``speech_model``, built on first use and cached while the object lives."""
    key = id(speech_model)
    with _LOCK:
        entry = _PIPELINES.get(key)
        if entry is not None:
            ref, module, pipe = entry
            if ref() is speech_model and module is speech_model.model:
                return pipe
            del _PIPELINES[key]

        from transformers import pipeline

        tokenizer, feature_extractor = _components(speech_model)
        with quiet_transformers():  # no "experimental chunking" / generation-config chatter
            pipe = pipeline(
                "automatic-speech-recognition",
                model=speech_model.model,
                tokenizer=tokenizer,
                feature_extractor=feature_extractor,
            )

        _PIPELINES[key] = (weakref.ref(speech_model), speech_model.model, pipe)
        # Drop the pipeline (and its reference to the nn.Module) when the SpeechModel goes away.
        weakref.finalize(speech_model, _forget, key, weakref.ref(pipe))
        return pipe


def _forget(key: int, pipe_ref: weakref.ref) -> None:
    with _LOCK:
        entry = _PIPELINES.get(key)
        if entry is not None and entry[2] is pipe_ref():
            del _PIPELINES[key]


def clear_cache() -> None:
    """Forget all cached pipelines."""
    with _LOCK:
        _PIPELINES.clear()


def max_tokens_for(seconds: float) -> int:
    """A generous token budget for ``seconds`` of speech (fast speech is ~5 tokens/s; Whisper's cap is 448).

    Stops a heavily compressed model that repeats one token from babbling to 448 tokens, which takes
    minutes on a CPU; never limits a sane transcript.
    """
    return int(min(440, 24 + 12 * seconds))


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' logging at error level and Python warnings ignored inside; both restored after."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)


def whisper_generate_kwargs(speech_model: SpeechModel, language: str | None, num_beams: int) -> dict:
    """``generate`` keywords of a Whisper model: beams, and language + task where the checkpoint is multilingual."""
    gen_cfg = getattr(speech_model.model, "generation_config", None)
    kwargs: dict[str, Any] = {"num_beams": num_beams}
    # English-only checkpoints (*.en) and bare configs (random demo models) take no language/task.
    multilingual = bool(getattr(gen_cfg, "is_multilingual", False)) and bool(getattr(gen_cfg, "lang_to_id", None))
    if multilingual and language:
        kwargs["language"] = language
        kwargs["task"] = "transcribe"
    return kwargs


def _run(speech_model: SpeechModel, samples: np.ndarray, language: str | None, num_beams: int) -> str:
    pipe = get_pipeline(speech_model)
    call_kwargs: dict[str, Any] = {}
    long = len(samples) > CHUNK_LENGTH_S * SAMPLE_RATE
    if speech_model.family == "whisper":
        call_kwargs["generate_kwargs"] = whisper_generate_kwargs(speech_model, language, num_beams)
        if not long:
            call_kwargs["generate_kwargs"]["max_new_tokens"] = max_tokens_for(len(samples) / SAMPLE_RATE)
        else:
            # Whisper's own sequential long-form decoding (OpenAI's algorithm: 30 s windows, each
            # started where the previous one's last timestamp ended). The pipeline's
            # chunk_length_s stitching drops whole sentences when chunks overlap similar text
            # (seen with transformers 5.x: 5 of 9 sentences kept on a 48 s clip).
            call_kwargs["return_timestamps"] = True
    elif long:
        # CTC: overlapping 30 s chunks, logits stitched at the strides (exact for CTC).
        call_kwargs["chunk_length_s"] = CHUNK_LENGTH_S
    inputs = {"raw": samples, "sampling_rate": SAMPLE_RATE}
    with torch.inference_mode(), quiet_transformers():  # no "max_new_tokens and max_length" chatter per clip
        out = pipe(inputs, **call_kwargs)
    text = out["text"] if isinstance(out, dict) else str(out)
    if speech_model.family != "whisper":  # the CTC pipeline leaves special tokens such as </s> in the text
        text = _without_special_tokens(_components(speech_model)[0], text or "")
    return (text or "").strip()


def _without_special_tokens(tokenizer: Any, text: str) -> str:
    """``text`` without the tokenizer's special tokens (``<pad>``, ``</s>``, ``<unk>`` …), spaces tidied."""
    for token in sorted(getattr(tokenizer, "all_special_tokens", []), key=len, reverse=True):
        if token and token != getattr(tokenizer, "word_delimiter_token", None):
            text = text.replace(token, "")
    return " ".join(text.split())


def transcribe(
    model: SpeechModel,
    audio,
    sampling_rate: int | None = None,
    *,
    language: str = "en",
    num_beams: int = 1,
    max_seconds: float | None = None,
) -> str:
    """Transcribe one clip.

    Args:
        model: a Whisper or CTC :class:`SpeechModel` (original or compressed).
        audio: anything :func:`prunelab.audio.load_audio` takes: a path, an array (with
            ``sampling_rate``) or a Gradio ``(rate, samples)`` tuple.
        sampling_rate: rate of an array ``audio``.
        language: Whisper transcription language (ignored for CTC and English-only Whisper).
        num_beams: Whisper beam width; 1 (greedy) is fastest on CPU.
        max_seconds: optional length limit passed to ``load_audio``.

    Returns:
        The transcript, stripped of surrounding whitespace.

    Raises:
        AudioError: for unusable audio (see :func:`load_audio`).
    """
    samples = load_audio(audio, sampling_rate, max_seconds=max_seconds)
    return _run(model, samples, language, num_beams)


def transcribe_batch(
    model: SpeechModel,
    audios: Iterable,
    *,
    sampling_rate: int | None = None,
    language: str = "en",
    batch_size: int = 16,
    progress: Progress | None = None,
) -> list[str]:
    """Transcribe several clips, Whisper clips of up to 30 s in batches of ``batch_size`` (greedy).

    Same decoding as :func:`transcribe` (greedy, same language, same token budget per clip length; the
    tests check the hypotheses are identical on the uncompressed model) but one ``generate`` call per
    batch: about 3x faster on a CPU for short clips. Longer clips and CTC models go clip by clip (CTC has
    no decoding loop to batch, and padding changes group-normalised CTC feature encoders).
    """
    clips = [load_audio(a, sampling_rate) for a in audios]
    out: list[str | None] = [None] * len(clips)
    short = [i for i, c in enumerate(clips) if len(c) <= CHUNK_LENGTH_S * SAMPLE_RATE]
    batched = short if model.family == "whisper" else []
    done = 0
    for start in range(0, len(batched), batch_size):
        idx = batched[start:start + batch_size]
        texts = _whisper_batch(model, [clips[i] for i in idx], language)
        for i, t in zip(idx, texts):
            out[i] = t
        done += len(idx)
        if progress:
            progress(done, len(clips), f"transcribed {done}/{len(clips)}")
    for i, c in enumerate(clips):
        if out[i] is None:
            out[i] = _run(model, c, language, 1)
            done += 1
            if progress:
                progress(done, len(clips), f"transcribed {done}/{len(clips)}")
    return [t or "" for t in out]


def _whisper_batch(model: SpeechModel, clips: list[np.ndarray], language: str | None) -> list[str]:
    """One greedy ``generate`` over short clips ([B] arrays of <= 30 s at 16 kHz) -> B transcripts."""
    tokenizer, feature_extractor = _components(model)
    feats = feature_extractor(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    kwargs = whisper_generate_kwargs(model, language, 1)
    kwargs["max_new_tokens"] = max_tokens_for(max(len(c) for c in clips) / SAMPLE_RATE)
    with torch.inference_mode(), quiet_transformers():  # no generation-config chatter per batch
        ids = model.model.generate(feats.to(model.device, next(model.model.parameters()).dtype), **kwargs)
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def transcribe_many(
    model: SpeechModel,
    audios: Iterable,
    *,
    sampling_rate: int | None = None,
    language: str = "en",
    num_beams: int = 1,
) -> list[str]:
    """Transcribe several clips (paths, arrays or tuples) one by one; returns one string each."""
    return [
        transcribe(model, a, sampling_rate, language=language, num_beams=num_beams) for a in audios
    ]
