"""Evaluation sets: folders of audio + reference-text pairs, or LibriSpeech splits as distributed."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import PrunelabError

AUDIO_EXTENSIONS = (".wav", ".flac")


@dataclass(frozen=True)
class Utterance:
    """One evaluation clip: a stable id, the audio file, and what was said."""

    id: str
    audio: Path
    text: str


def _read_text(path: Path) -> str:
    try:
        return " ".join(path.read_text(encoding="utf-8").split())
    except UnicodeDecodeError as e:
        raise PrunelabError(f"Reference text {path} is not UTF-8 text: {e}") from None


def _pairs_folder(root: Path) -> list[Utterance]:
    """``name.wav``/``name.flac`` + ``name.txt`` pairs anywhere under ``root``."""
    utts: dict[str, Utterance] = {}
    for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()):
        txt = audio.with_suffix(".txt")
        if not txt.is_file():
            continue
        rel = audio.relative_to(root).with_suffix("")
        uid = rel.as_posix()
        if uid in utts:  # name.wav and name.flac both present: keep the first (sorted: .flac)
            continue
        utts[uid] = Utterance(uid, audio, _read_text(txt))
    return list(utts.values())


def _librispeech(root: Path) -> list[Utterance]:
    """LibriSpeech layout: ``SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt`` with ``ID TEXT`` lines
    next to ``ID.flac`` files (``root`` may be the split folder or a folder above it)."""
    utts: list[Utterance] = []
    for trans in sorted(root.rglob("*.trans.txt")):
        folder = trans.parent
        for line_no, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            uid, _, text = line.partition(" ")
            audio = None
            for ext in AUDIO_EXTENSIONS:
                cand = folder / f"{uid}{ext}"
                if cand.is_file():
                    audio = cand
                    break
            if audio is None:
                continue  # transcript line without audio (partial download): skip it
            utts.append(Utterance(uid, audio, " ".join(text.split())))
    return utts


def load_eval_set(path: str | os.PathLike, limit: int | None = None) -> list[Utterance]:
    """Load an evaluation set, sorted by id (deterministic), optionally only the first ``limit``.

    ``path`` is either a folder of ``name.wav`` (or ``.flac``) + ``name.txt`` pairs (subfolders
    allowed; ids are relative paths without extension), or a LibriSpeech split as distributed
    (``*/*/*.flac`` plus one ``*.trans.txt`` per chapter with ``ID TEXT`` lines).

    Raises:
        PrunelabError: the folder is missing, is not a folder, or holds no audio/text pairs;
            ``limit`` is not positive.
    """
    if path is None or str(path).strip() == "":
        raise PrunelabError("No evaluation set given: pass a folder of audio + .txt pairs.")
    root = Path(path).expanduser()
    if not root.exists():
        raise PrunelabError(f"Evaluation set folder not found: {root}")
    if not root.is_dir():
        raise PrunelabError(f"Evaluation set must be a folder, but {root} is a file.")
    if limit is not None and int(limit) <= 0:
        raise PrunelabError(f"limit must be a positive number of clips (got {limit}).")

    if any(root.rglob("*.trans.txt")):
        utts = _librispeech(root)
        kind = "LibriSpeech transcripts (*.trans.txt) with matching .flac files"
    else:
        utts = _pairs_folder(root)
        kind = "audio files (.wav or .flac) with a matching .txt file of the same name"
    if not utts:
        raise PrunelabError(f"No evaluation clips found in {root}: expected {kind}.")

    utts.sort(key=lambda u: u.id)
    if limit is not None:
        utts = utts[: int(limit)]
    return utts
