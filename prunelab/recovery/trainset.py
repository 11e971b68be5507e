"""Training data for fine-tuning: audio (+ labels) in, checked, and turned into the samples the Trainer sees.

* :func:`load_training_data`: a folder of ``name.wav`` / ``name.flac`` + ``name.txt`` pairs, a LibriSpeech split
  (:func:`prunelab.speech.data.load_eval_set`), a folder of audio only, or a list of clips -> :class:`TrainingData`,
  with every mismatch between labels and audio refused (:class:`FinetuneError`) before any work;
* :func:`whisper_samples`: Whisper's windows -- clips packed into 30 s (:func:`pack`; Whisper always reads 30 s, so a
  4 s clip alone is 87 % padding), their token sequences concatenated behind the decoder prompt ``transcribe``
  uses (:func:`prunelab.recovery.distill.decoder_prompt`);
* :func:`windows`: unlabelled clips packed the same way before the teacher labels them (one transcript per window);
* :func:`ctc_samples`: one sample per clip with its character labels (:func:`ctc_targets`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import AudioError, PrunelabError
from ..speech.audio import SAMPLE_RATE, load_audio
from ..speech.data import AUDIO_EXTENSIONS, Utterance, load_eval_set
from ..speech_model import SpeechModel
from .distill import SoftTargets, allowed_tokens, decoder_prompt, end_token

WINDOW_S = 30.0
"""Whisper's input window: the longest labelled clip it can train on, and the size clips are packed to."""
GAP_S = 0.3
"""Silence between two clips packed into one window."""


class FinetuneError(PrunelabError):
    """Fine-tuning cannot start: bad settings, a model that is not compressed, unusable data or labels."""


@dataclass
class TrainingData:
    """Clips to train on: ``clips[i]`` ``[T_i]`` float32 at 16 kHz, named ``ids[i]``, said ``texts[i]`` (None:
    no labels, the teacher gives them). ``notes``: what was skipped or split, for the person running it.
    ``sizes``: for packed windows (:func:`windows`), how many clips each one holds (None: one each)."""

    clips: list[np.ndarray]
    ids: list[str]
    texts: list[str] | None
    source: str
    notes: list[str] = field(default_factory=list)
    sizes: list[int] | None = None

    def clip_count(self, items) -> int:
        """How many of the original clips the items (indices) hold."""
        return sum(1 if self.sizes is None else self.sizes[i] for i in set(items))

    @property
    def seconds(self) -> float:
        return float(sum(len(c) for c in self.clips)) / SAMPLE_RATE

    def fingerprint(self) -> str:
        """A short hash of the ids, texts and samples: the same data gives the same one."""
        digest = hashlib.sha256()
        for i, clip in enumerate(self.clips):
            digest.update(f"{self.ids[i]}\t{self.texts[i] if self.texts else ''}\n".encode("utf-8"))
            digest.update(np.ascontiguousarray(clip, np.float32).tobytes())
        return digest.hexdigest()[:16]


def load_training_data(data, *, family: str, max_clips: int | None = None) -> TrainingData:
    """Read and check training data (see the module doc), raising :class:`FinetuneError` before any work.

    Refused: a missing folder, a folder without audio, a ``.txt`` without its audio, an empty ``.txt``, a folder
    where some clips have a ``.txt`` and others not, unreadable audio. Whisper clips over 30 s: labelled ones are
    skipped with a note (one transcript cannot be split into 30 s windows), unlabelled ones are cut into 30 s
    pieces (each gets its own teacher transcript).
    """
    if isinstance(data, (str, os.PathLike)):
        labelled, unlabelled, source = _scan_folder(Path(data).expanduser(), max_clips)
    elif isinstance(data, np.ndarray) or _is_rate_tuple(data):
        labelled, unlabelled, source = None, [("clip 1", data)], "1 clip"
    elif isinstance(data, (list, tuple)):
        items = list(data)
        if not items:
            raise FinetuneError("No training clips given.")
        if all(isinstance(x, Utterance) for x in items):
            labelled, unlabelled = sorted(items, key=lambda u: u.id), None
        elif any(isinstance(x, Utterance) for x in items):
            raise FinetuneError("Give either labelled clips (Utterance) or unlabelled audio, not a mix of both.")
        else:
            labelled, unlabelled = None, [(_name(x, i), x) for i, x in enumerate(items)]
        source = f"{len(items)} clips"
        if max_clips is not None:
            labelled = labelled[:max_clips] if labelled is not None else None
            unlabelled = unlabelled[:max_clips] if unlabelled is not None else None
    else:
        raise FinetuneError(f"Training data must be a folder or a list of clips, not {type(data).__name__}.")

    notes: list[str] = []
    if labelled is not None:
        empty = [u.id for u in labelled if not u.text.strip()]
        if empty:
            raise FinetuneError(f"{len(empty)} label(s) are empty: {_few(empty)}. Write what is said in each .txt "
                                "(or remove every .txt to let the teacher label the clips).")
        clips, ids, texts, long = [], [], [], []
        for u in labelled:
            samples = _audio(u.audio, u.id)
            if family == "whisper" and len(samples) > WINDOW_S * SAMPLE_RATE:
                long.append(u.id)
                continue
            clips.append(samples), ids.append(u.id), texts.append(u.text)
        if long:
            notes.append(f"note: skipped {len(long)} labelled clip(s) over {WINDOW_S:.0f} s ({_few(long)}): Whisper "
                         "trains on 30 s windows and one transcript cannot be split between them")
        if not clips:
            raise FinetuneError(f"Every labelled clip is longer than {WINDOW_S:.0f} s ({_few(long)}); Whisper trains on "
                                "30 s windows: cut the clips (and their transcripts) to at most 30 s.")
        return TrainingData(clips, ids, texts, source, notes)

    clips, ids, split = [], [], 0
    for name, item in unlabelled:
        samples = _audio(item, name)
        step = int(WINDOW_S * SAMPLE_RATE)
        if family == "whisper" and len(samples) > step:
            pieces = [samples[i:i + step] for i in range(0, len(samples), step) if len(samples) - i >= SAMPLE_RATE // 10]
            split += 1
        else:
            pieces = [samples]
        clips += pieces
        ids += [name if j == 0 else f"{name}#{j + 1}" for j in range(len(pieces))]
    if split:
        notes.append(f"note: cut {split} unlabelled clip(s) over {WINDOW_S:.0f} s into 30 s pieces")
    return TrainingData(clips, ids, None, source, notes)


def _scan_folder(root: Path, max_clips: int | None) -> tuple[list[Utterance] | None, list | None, str]:
    if not root.exists():
        raise FinetuneError(f"Training data folder not found: {root}")
    if not root.is_dir():
        raise FinetuneError(f"Training data must be a folder of audio (+ .txt labels), but {root} is a file.")
    if any(root.rglob("*.trans.txt")):  # LibriSpeech as distributed
        return load_eval_set(root, limit=max_clips), None, str(root)
    visible = [p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    audio = {p.with_suffix(""): p for p in sorted(visible, reverse=True) if p.suffix.lower() in AUDIO_EXTENSIONS}
    texts = {p.with_suffix("") for p in visible if p.suffix.lower() == ".txt"}
    if not audio:
        raise FinetuneError(f"{root} holds no audio: expected name.wav (or .flac) files, each with a name.txt of "
                            "what is said (or none at all, for the teacher to label).")
    orphans = sorted(str(t.relative_to(root)) + ".txt" for t in texts - set(audio))
    if orphans:
        raise FinetuneError(f"{len(orphans)} label(s) have no audio beside them: {_few(orphans)} (expected the same "
                            "name with .wav or .flac). Add the audio or remove the .txt.")
    unlabelled = sorted(str(a.relative_to(root)) for a in set(audio) - texts)
    if texts and unlabelled:
        raise FinetuneError(f"{len(unlabelled)} of {len(audio)} clips have no .txt label: {_few(unlabelled)}. Give every "
                            "clip its .txt, or none (then the teacher labels them all).")
    if texts:
        return load_eval_set(root, limit=max_clips), None, str(root)
    files = sorted(audio.items(), key=lambda kv: kv[0].relative_to(root).as_posix())[:max_clips]
    return None, [(k.relative_to(root).as_posix(), v) for k, v in files], str(root)


def _is_rate_tuple(data: Any) -> bool:
    """A Gradio-style ``(rate, samples)`` tuple: one clip, not a list of two."""
    return (isinstance(data, tuple) and len(data) == 2 and any(isinstance(x, np.ndarray) for x in data)
            and any(np.isscalar(x) and not isinstance(x, (str, bytes)) for x in data))


def _audio(item: Any, name: str) -> np.ndarray:
    try:
        return load_audio(item, SAMPLE_RATE if isinstance(item, np.ndarray) else None)
    except AudioError as e:
        raise FinetuneError(f"Training clip {name}: {e}") from None


def _name(item: Any, i: int) -> str:
    return Path(item).stem if isinstance(item, (str, os.PathLike)) else f"clip {i + 1}"


def _few(names: Sequence[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def pack(lengths: Sequence[int], tokens: Sequence[int], order: Sequence[int], *, max_samples: int,
         max_tokens: int, gap: int) -> list[list[int]]:
    """Group clips into windows, in ``order``: a clip joins the current window while the window's samples (clips
    plus ``gap`` between them) stay within ``max_samples`` and its tokens within ``max_tokens``; else it starts the
    next window. Returns the clip indices of each window."""
    windows: list[list[int]] = []
    used = n_tok = 0
    for i in order:
        need = lengths[i] + (gap if windows and windows[-1] else 0)
        if not windows or used + need > max_samples or n_tok + tokens[i] > max_tokens:
            windows.append([])
            used, n_tok, need = 0, 0, lengths[i]
        windows[-1].append(int(i))
        used += need
        n_tok += tokens[i]
    return windows


@dataclass
class Sample:
    """What one training sample is: ``audio`` ``[T]`` (a window or a clip); Whisper: ``decoder_input_ids`` and
    ``labels`` (same length; ``-100`` where nothing is predicted); CTC: ``labels`` (character ids) or None; the
    teacher's ``targets`` or None."""

    audio: np.ndarray
    clips: list[int]
    decoder_input_ids: list[int] | None = None
    labels: list[int] | None = None
    targets: SoftTargets | None = None


def _whisper_tokens(model: SpeechModel, text: str) -> list[int]:
    tokenizer = model.processor.tokenizer
    return list(tokenizer.encode(" " + " ".join(text.split()), add_special_tokens=False)) if text.strip() else []


def windows(data: TrainingData, *, seed: int = 0, packed: bool = True) -> TrainingData:
    """Unlabelled clips as the 30 s windows Whisper will train on (``packed``: several clips, in a ``seed``-ed random
    order, with :data:`GAP_S` of silence between them; else one clip each), so the teacher transcribes each window
    once -- one encoder pass per window instead of one per clip -- and its transcript is the window's label."""
    if not packed:
        return data
    order = np.random.default_rng(seed).permutation(len(data.clips)).tolist()
    groups = pack([len(c) for c in data.clips], [0] * len(data.clips), order, max_samples=int(WINDOW_S * SAMPLE_RATE),
                  max_tokens=1, gap=int(GAP_S * SAMPLE_RATE))
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)
    audio = [np.concatenate([part for i in g for part in ([gap, data.clips[i]] if i != g[0] else [data.clips[i]])])
             for g in groups]
    return TrainingData([a.astype(np.float32) for a in audio], ["+".join(data.ids[i] for i in g) for g in groups], None,
                        data.source, list(data.notes), [len(g) for g in groups])


def whisper_samples(model: SpeechModel, data: TrainingData, texts: list[str], *, seed: int = 0, packed: bool = True,
                    language: str = "en") -> tuple[list[Sample], list[str]]:
    """The windows Whisper trains on (``packed``: several clips in a ``seed``-ed random order per 30 s window; else
    one clip each) with decoder inputs and labels, and notes on what was skipped."""
    prompt, eos = decoder_prompt(model, language), end_token(model)
    tokens = [_whisper_tokens(model, t) for t in texts]
    allowed = allowed_tokens(model)
    notes: list[str] = []
    max_tokens = int(model.model.config.max_target_positions) - len(prompt) - 1
    keep = [i for i in range(len(texts)) if len(tokens[i]) <= max_tokens
            and (allowed is None or all(bool(allowed[t]) for t in tokens[i]))]
    if len(keep) < len(texts):
        dropped = [data.ids[i] for i in range(len(texts)) if i not in set(keep)]
        notes.append(f"note: skipped {len(dropped)} clip(s) whose transcript this model cannot write (tokens outside "
                     f"its vocabulary, or more than {max_tokens} tokens): {_few(dropped)}")
    if not keep:
        raise FinetuneError("No clip has a transcript this model can write (see the note above).")
    order = [i for i in np.random.default_rng(seed).permutation(len(texts)).tolist() if i in set(keep)]
    if packed:
        groups = pack([len(c) for c in data.clips], [len(t) for t in tokens], order,
                      max_samples=int(WINDOW_S * SAMPLE_RATE), max_tokens=max_tokens, gap=int(GAP_S * SAMPLE_RATE))
    else:
        groups = [[i] for i in sorted(keep)]
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)
    samples = []
    for group in groups:
        parts: list[np.ndarray] = []
        text: list[int] = []
        for i in group:
            parts += ([gap] if parts else []) + [data.clips[i]]
            text += tokens[i]
        samples.append(Sample(np.concatenate(parts).astype(np.float32), group, prompt + text,
                              [-100] * (len(prompt) - 1) + text + [eos]))
    return samples, notes


def ctc_targets(model: SpeechModel, text: str) -> list[int]:
    """Character ids of ``text`` for a CTC model: upper-cased when its vocabulary has no lower-case letters, spaces
    as the word delimiter, characters it cannot write left out."""
    tokenizer = model.processor.tokenizer
    vocab = tokenizer.get_vocab()
    if not any(ch.islower() for ch in vocab if len(ch) == 1):
        text = text.upper()
    delimiter = getattr(tokenizer, "word_delimiter_token", "|") or "|"
    chars = [delimiter if ch == " " else ch for ch in " ".join(text.split())]
    return [vocab[ch] for ch in chars if ch in vocab]


def ctc_samples(model: SpeechModel, data: TrainingData, texts: list[str] | None) -> tuple[list[Sample], list[str]]:
    """One sample per clip; with ``texts``, the character labels (clips whose transcript is longer than the
    model's frames, or has no character it can write, are skipped with a note)."""
    if texts is None:
        return [Sample(c, [i]) for i, c in enumerate(data.clips)], []
    samples, bad = [], []
    lengths = ctc_frames(model.model, torch.tensor([len(c) for c in data.clips]))
    for i, (clip, text) in enumerate(zip(data.clips, texts)):
        labels = ctc_targets(model, text)
        if not labels or len(labels) > int(lengths[i]):
            bad.append(data.ids[i])
            continue
        samples.append(Sample(clip, [i], labels=labels))
    notes = [f"note: skipped {len(bad)} clip(s) whose transcript has no character this model writes, or more "
             f"characters than the clip has frames: {_few(bad)}"] if bad else []
    if not samples:
        raise FinetuneError("No clip has a transcript this CTC model can learn (see the note above).")
    return samples, notes


def ctc_frames(module: nn.Module, lengths: Tensor) -> Tensor:
    """``[B]`` encoder frames of clips of ``lengths`` samples (``[B]``) for a CTC model."""
    return module._get_feat_extract_output_lengths(lengths).long()


__all__ = ["FinetuneError", "GAP_S", "Sample", "TrainingData", "WINDOW_S", "ctc_frames", "ctc_samples", "ctc_targets",
           "load_training_data", "pack", "whisper_samples", "windows"]
