"""Load audio from files, arrays or Gradio tuples into 16 kHz mono float32.

Everything that reaches a model goes through :func:`load_audio`, so every user mistake (a missing
or corrupt file, silence, a clip that is too long, ...) becomes an :class:`~prunelab.errors.AudioError`
with a message that can be shown as is, never a raw traceback.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import AudioError

SAMPLE_RATE = 16000
"""The rate every speech model in prunelab expects (Whisper and the wav2vec2 family)."""

SILENCE_THRESHOLD = 1e-4
"""Peak absolute amplitude (full scale 1.0) below which a clip counts as silent."""

AudioInput = Union[str, os.PathLike, np.ndarray, tuple]


FLOAT_PEAK_LIMIT = 8.0
"""Float samples beyond this are refused: float audio lies within [-1, 1] (a little over after a loud mix), while
int16 values stored as floats reach thousands, and Whisper turns such input into "you you you …"."""


def _fmt_seconds(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.1f} min ({seconds:.0f} s)"
    return f"{seconds:.1f} s"


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    """Read an audio file; returns (samples, rate) with samples as float [T] or [T, C]."""
    if not path.exists():
        raise AudioError(f"Audio file not found: {path}")
    if path.is_dir():
        raise AudioError(f"Expected an audio file but got a folder: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"Audio file is empty (0 bytes): {path}")

    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
        return np.asarray(data), int(sr)
    except Exception as sf_error:  # noqa: BLE001 - any failure: try the slower, more general reader
        first_error = sf_error

    try:
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, sr = librosa.load(str(path), sr=None, mono=False)
        return np.asarray(data, dtype=np.float32), int(sr)
    except Exception:  # noqa: BLE001
        pass
    raise AudioError(
        f"Could not read {path.name!r} as audio: the file is corrupt or not an audio format "
        f"that can be decoded (supported: WAV, FLAC, OGG, MP3 and others). ({first_error})"
    )


def _to_float(data: np.ndarray) -> np.ndarray:
    """Integer PCM to float in [-1, 1]; floats unchanged (as float32)."""
    if data.dtype == np.bool_ or data.dtype.kind in "OUSV":
        raise AudioError(f"Audio array has an unsupported dtype {data.dtype}; expected numbers.")
    if data.dtype.kind == "i":
        scale = float(2 ** (8 * data.dtype.itemsize - 1))
        return (data.astype(np.float64) / scale).astype(np.float32)
    if data.dtype.kind == "u":
        half = float(2 ** (8 * data.dtype.itemsize - 1))
        return ((data.astype(np.float64) - half) / half).astype(np.float32)
    if data.dtype.kind == "c":
        raise AudioError("Audio array is complex-valued; expected real samples.")
    return data.astype(np.float32, copy=False)


def _to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels; accepts [T], [T, C] or [C, T] (the channel axis is the short one)."""
    if data.ndim == 1:
        return data
    if data.ndim != 2:
        raise AudioError(
            f"Audio array has {data.ndim} dimensions (shape {tuple(data.shape)}); "
            "expected [samples] or [samples, channels]."
        )
    rows, cols = data.shape
    if rows == 0 or cols == 0:
        return data.reshape(-1)
    # The channel axis is the smaller one (a clip has far more samples than channels).
    channel_axis = 1 if cols <= rows else 0
    return data.mean(axis=channel_axis)


def load_audio(
    source: AudioInput,
    sampling_rate: int | None = None,
    *,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Load audio as float32 mono samples at 16 kHz.

    Args:
        source: a path to an audio file (WAV/FLAC/OGG via soundfile, anything else librosa can
            decode), a numpy array of samples (needs ``sampling_rate``), or a Gradio-style
            ``(rate, samples)`` tuple. Integer samples are scaled to [-1, 1]; stereo or
            multichannel audio, in either ``[T, C]`` or ``[C, T]`` layout, is averaged to mono.
        sampling_rate: the rate of an array ``source``. For files it is ignored (the file's own
            rate is used); for a tuple it must agree with the tuple's rate if given.
        max_seconds: reject clips longer than this (measured before resampling).

    Returns:
        ``np.ndarray`` of shape ``[T]``, dtype float32, at :data:`SAMPLE_RATE`.

    Raises:
        AudioError: missing, empty, corrupt or non-audio file; zero-length, silent or non-finite
            audio; an array without a sampling rate; a clip longer than ``max_seconds``.
    """
    if source is None:
        raise AudioError("No audio given: upload or record a clip first.")

    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError("Audio tuple must be (sampling_rate, samples).")
        a, b = source
        # Gradio gives (rate, samples); accept (samples, rate) too.
        if isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            a, b = b, a
        if not np.isscalar(a) or isinstance(a, (str, bytes)):
            raise AudioError("Audio tuple must be (sampling_rate, samples) with an integer rate.")
        tuple_rate = int(a)
        if sampling_rate is not None and int(sampling_rate) != tuple_rate:
            raise AudioError(
                f"Conflicting sampling rates: the audio tuple says {tuple_rate} Hz "
                f"but sampling_rate={sampling_rate} was passed."
            )
        data, sr, origin = np.asarray(b), tuple_rate, "audio"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if str(source).strip() == "":
            raise AudioError("No audio given: the file path is empty.")
        data, sr = _read_file(path)
        origin = f"audio file {path.name!r}"
    elif isinstance(source, (np.ndarray, list)):
        if sampling_rate is None:
            raise AudioError(
                "An audio array needs its sampling rate: pass sampling_rate=..., "
                "or give a (rate, samples) tuple."
            )
        data, sr, origin = np.asarray(source), int(sampling_rate), "audio"
    else:
        # torch tensors and similar array-likes
        if hasattr(source, "detach") and hasattr(source, "cpu"):
            source = source.detach().cpu().numpy()
            return load_audio(source, sampling_rate, max_seconds=max_seconds)
        raise AudioError(
            f"Unsupported audio input of type {type(source).__name__}: "
            "expected a file path, a numpy array, or a (rate, samples) tuple."
        )

    if sr <= 0:
        raise AudioError(f"Invalid sampling rate {sr} Hz; it must be positive.")

    data = _to_mono(_to_float(np.asarray(data)))

    if data.size == 0:
        raise AudioError(f"The {origin} has no samples (zero length).")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"The {origin} contains NaN or infinite sample values.")
    duration = data.shape[0] / sr
    if max_seconds is not None and duration > max_seconds:
        raise AudioError(
            f"The {origin} is too long: {_fmt_seconds(duration)}, but the limit is "
            f"{_fmt_seconds(max_seconds)}. Trim it and try again."
        )
    peak = float(np.max(np.abs(data)))
    if peak > FLOAT_PEAK_LIMIT:
        raise AudioError(
            f"The {origin}'s float samples reach {peak:.0f}, but float audio lies within [-1, 1]: these look like "
            "integer PCM values stored as floats. Divide them by 32768 (16-bit audio) or pass the integer array.")
    if peak < SILENCE_THRESHOLD:
        raise AudioError(f"The {origin} is silent (all samples are ~0): nothing to transcribe.")

    if sr != SAMPLE_RATE:
        import librosa

        data = librosa.resample(data, orig_sr=sr, target_sr=SAMPLE_RATE)
    return np.ascontiguousarray(data, dtype=np.float32)


def duration_seconds(audio: np.ndarray, sampling_rate: int = SAMPLE_RATE) -> float:
    """Length of a loaded clip in seconds."""
    return float(len(audio)) / float(sampling_rate)
