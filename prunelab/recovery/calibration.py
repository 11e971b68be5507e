"""Calibration audio in: unlabeled clips for repair, checked before any work.

A calibration source is a folder (its audio files, recursively), a list of files, arrays of 16 kHz samples, or
``None`` for the set bundled with the package (``prunelab/data/calibration``: real recordings and synthetic
voices, none of them in any evaluation or test set; its README names each source and licence).

Clips longer than 30 s are split into 30 s pieces (Whisper reads 30 s windows; a CTC model's memory grows with the
clip). A corrupt, empty or silent clip is skipped with a note (``CalibrationSet.skipped``); when nothing usable is
left the source is refused with :class:`CalibrationError`, as is an empty folder or one without audio.

For Whisper, :func:`pack_windows` concatenates the clips into 30 s windows (with 0.3 s of silence between clips), so
the encoder, which always reads 30 s, sees speech in most of its 1,500 frames instead of padding: a 4 s clip alone
fills 13 % of a window. Measured on Whisper-base here: one encoder pass costs ~2-4 s per window on 2 cores, so 32
clips of ~4 s cost 5 windows instead of 32.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import AudioError, PrunelabError
from ..speech.audio import SAMPLE_RATE, load_audio

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aiff", ".aif")
WINDOW_S = 30.0
"""Whisper's window, and the longest piece a calibration clip is cut into."""
GAP_S = 0.3
"""Silence between two clips packed into one window."""


class CalibrationError(PrunelabError):
    """Calibration audio that cannot be used: no clips, no audio in a folder, every clip broken."""


@dataclass
class CalibrationSet:
    """Usable calibration clips: float32 mono arrays at 16 kHz, each at most 30 s.

    Attributes:
        clips: the pieces, ``[T_i]`` each.
        names: where each piece came from (file name, ``#2`` for the second 30 s piece of a long clip).
        skipped: ``(name, reason)`` of every clip left out.
        source: a short description of the source, for the recovery record.
    """

    clips: list[np.ndarray]
    names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""

    @property
    def seconds(self) -> float:
        return float(sum(len(c) for c in self.clips)) / SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.clips)

    def first(self, n: int | None) -> "CalibrationSet":
        """The first ``n`` clips (all when ``n`` is None)."""
        if n is None or n >= len(self.clips):
            return self
        if n < 1:
            raise CalibrationError(f"Use at least one calibration clip (asked for {n}).")
        return CalibrationSet(self.clips[:n], self.names[:n], self.skipped, f"{self.source} (first {n})")


def bundled_calibration_dir() -> Path:
    """The calibration set shipped in the package (``prunelab/data/calibration``)."""
    return Path(str(resources.files("prunelab") / "data" / "calibration"))


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                  and not p.name.startswith("."))


def _split(samples: np.ndarray) -> list[np.ndarray]:
    step = int(WINDOW_S * SAMPLE_RATE)
    return [samples[i:i + step] for i in range(0, len(samples), step) if len(samples[i:i + step]) >= SAMPLE_RATE // 10]


def load_calibration(source: str | os.PathLike | Sequence | None = None, *, limit: int | None = None) -> CalibrationSet:
    """Read a calibration source (see the module doc) into a :class:`CalibrationSet`.

    Args:
        source: a folder, one audio file, a list of files / 16 kHz arrays / ``(rate, samples)`` tuples, or None
            for the bundled set.
        limit: keep the first ``limit`` clips (after splitting), in file-name order.

    Raises:
        CalibrationError: the folder is missing or holds no audio file, or no clip is usable.
    """
    if source is None:
        folder = bundled_calibration_dir()
        if not folder.is_dir() or not _audio_files(folder):
            raise CalibrationError("The bundled calibration set is missing from this installation "
                                   f"({folder}); give a folder of your own audio with --calibration DIR.")
        source = folder
    items: list[tuple[str, object]]
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise CalibrationError(f"Calibration folder {path} does not exist.")
        if path.is_dir():
            files = _audio_files(path)
            if not files:
                raise CalibrationError(f"Calibration folder {path} holds no audio files "
                                       f"({', '.join(AUDIO_SUFFIXES[:3])}, ...): nothing to calibrate with.")
            items = [(str(f.relative_to(path)), f) for f in files]
        else:
            items = [(path.name, path)]
        description = str(path)
    else:
        items = [(_name(x, i), x) for i, x in enumerate(source)]
        if not items:
            raise CalibrationError("No calibration clips given.")
        description = f"{len(items)} clips"
    clips, names, skipped = [], [], []
    for name, item in items:
        try:
            samples = load_audio(item, SAMPLE_RATE if isinstance(item, np.ndarray) else None)
        except AudioError as e:
            skipped.append((name, str(e)))
            continue
        pieces = _split(samples)
        clips += pieces
        names += [name if i == 0 else f"{name}#{i + 1}" for i in range(len(pieces))]
    if not clips:
        reasons = "; ".join(f"{n}: {r}" for n, r in skipped[:3])
        raise CalibrationError(f"None of the {len(items)} calibration clips is usable ({reasons}).")
    return CalibrationSet(clips, names, skipped, description).first(limit)


def _name(item: object, i: int) -> str:
    return Path(item).name if isinstance(item, (str, os.PathLike)) else f"clip {i + 1}"


@dataclass(frozen=True)
class Window:
    """One packed 30 s window: its samples ``[T]`` (T <= 480,000) and how many of them are audio, not padding."""

    samples: np.ndarray
    filled: int


def pack_windows(clips: Iterable[np.ndarray], seconds: float = WINDOW_S, gap_s: float = GAP_S) -> list[Window]:
    """Concatenate clips, in order, into windows of at most ``seconds`` (``gap_s`` of silence between clips); a
    clip that does not fit the current window starts the next one."""
    size, gap = int(seconds * SAMPLE_RATE), np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    windows: list[Window] = []
    current: list[np.ndarray] = []
    used = 0
    for clip in clips:
        clip = clip[:size]
        need = len(clip) + (len(gap) if current else 0)
        if current and used + need > size:
            windows.append(_window(current))
            current, used, need = [], 0, len(clip)
        if current:
            current.append(gap)
        current.append(clip)
        used += need
    if current:
        windows.append(_window(current))
    return windows


def _window(parts: list[np.ndarray]) -> Window:
    samples = np.concatenate(parts).astype(np.float32)
    return Window(samples, len(samples))
