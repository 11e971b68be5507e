"""load_audio: formats, resampling, mono mixing, and a helpful AudioError for every user mistake."""
from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from prunelab.speech.audio import SAMPLE_RATE, load_audio
from prunelab.errors import AudioError, PrunelabError

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def _tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_audio_error_is_a_value_error():
    assert issubclass(AudioError, PrunelabError) and issubclass(AudioError, ValueError)


def test_wav_file_16k(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(1.5, 16000), 16000, subtype="PCM_16")
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1 and x.shape == (24000,)
    assert 0.45 < np.abs(x).max() <= 0.51
    assert load_audio(str(path)).shape == (24000,)  # str paths too


def test_stereo_file_at_16k_is_the_mean_of_its_channels(tmp_path):
    left, right = _tone(1.0, 16000, 440, 0.5), _tone(1.0, 16000, 660, 0.3)
    path = tmp_path / "stereo16k.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, rtol=0, atol=1e-7)


def test_file_44k1_stereo_resampled_to_16k_mono(tmp_path):
    sr, seconds = 44100, 2.0
    left, right = _tone(seconds, sr, 440), _tone(seconds, sr, 660, 0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), sr, subtype="FLOAT")
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - int(seconds * SAMPLE_RATE)) <= 1
    # mixed first, then resampled: the same as resampling (left + right) / 2 with librosa
    expected = librosa.resample((left + right) / 2, orig_sr=sr, target_sr=SAMPLE_RATE)
    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-5)
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    peaks = set(np.round(freqs[np.argsort(spectrum)[-2:]]).astype(int).tolist())
    assert peaks == {440, 660}  # both channels are in the mix


@pytest.mark.parametrize("layout", ["TC", "CT"])
def test_array_44k1_stereo_either_layout(layout):
    sr = 44100
    left, right = _tone(2.0, sr, 300, 0.6), _tone(2.0, sr, 500, 0.2)
    stereo = np.stack([left, right], axis=1)  # [T, 2]
    arr = stereo if layout == "TC" else stereo.T
    x = load_audio(arr, sr)
    assert x.shape == (32000,) and x.dtype == np.float32
    np.testing.assert_allclose(x, load_audio((left + right) / 2, sr), rtol=0, atol=1e-6)
    assert not np.allclose(x, load_audio(left, sr), atol=1e-2)  # not just one channel


def test_multichannel_mixed_to_mono():
    channels = [_tone(1.0, 16000, 200 + 100 * i, 0.1 * (i + 1)) for i in range(6)]
    x = load_audio(np.stack(channels, axis=0), 16000)
    assert x.shape == (16000,)
    np.testing.assert_allclose(x, np.mean(channels, axis=0), rtol=0, atol=1e-7)


def test_gradio_int16_tuple_scaled():
    sr = 48000
    ints = (_tone(1.0, sr, amp=0.5) * 32767).astype(np.int16)
    x = load_audio((sr, ints))
    assert x.dtype == np.float32 and x.shape == (16000,)
    assert 0.45 < np.abs(x).max() < 0.55  # scaled to [-1, 1], not +-16000

    np.testing.assert_allclose(x, load_audio(ints.astype(np.float32) / 32768, sr), rtol=0, atol=1e-6)

    other = (_tone(1.0, sr, 880, amp=0.25) * 32767).astype(np.int16)
    stereo = np.stack([ints, other], axis=1)  # Gradio gives [T, 2] for stereo recordings
    mixed = load_audio((sr, stereo))
    assert mixed.shape == (16000,)
    expected = load_audio(((ints.astype(np.float64) + other) / 2 / 32768).astype(np.float32), sr)
    np.testing.assert_allclose(mixed, expected, rtol=0, atol=1e-6)


def test_int32_uint8_and_float64_arrays():
    tone = _tone(0.5, 16000, amp=0.25)
    ints = (tone.astype(np.float64) * 2**31).astype(np.int32)
    np.testing.assert_allclose(load_audio(ints, 16000), tone, rtol=0, atol=1e-7)
    unsigned = np.round(tone.astype(np.float64) * 128 + 128).astype(np.uint8)  # 8-bit WAV: 128 is silence
    np.testing.assert_allclose(load_audio(unsigned, 16000), tone, rtol=0, atol=1 / 128)
    doubles = load_audio(tone.astype(np.float64), 16000)
    assert doubles.dtype == np.float32 and np.array_equal(doubles, tone)


def test_asset_clips_load():
    for wav in sorted(ASSETS.glob("clip*.wav")):
        x = load_audio(wav)
        assert 3.0 <= len(x) / SAMPLE_RATE <= 6.5


# --- errors --------------------------------------------------------------------------------------

def _raises(match: str, *args, **kwargs) -> str:
    with pytest.raises(AudioError, match=match) as info:
        load_audio(*args, **kwargs)
    return str(info.value)


def test_missing_file(tmp_path):
    msg = _raises("not found", tmp_path / "nope.wav")
    assert "nope.wav" in msg


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    _raises("empty", path)


def test_text_file_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio at all\n" * 20)
    msg = _raises("corrupt or not an audio", path)
    assert "notes.wav" in msg


def test_truncated_wav(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(1.0, 16000), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(good.read_bytes()[:30])  # header cut in half
    _raises("corrupt or not an audio", bad)


def test_folder_instead_of_file(tmp_path):
    _raises("folder", tmp_path)


def test_wav_with_zero_samples(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    _raises("no samples", path)


def test_zero_length_array():
    _raises("no samples", np.zeros(0, dtype=np.float32), 16000)
    _raises("no samples", (16000, np.zeros((0, 2), dtype=np.int16)))


def test_silent_file_and_array(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
    _raises("silent", path)
    _raises("silent", np.full(16000, 1e-6, dtype=np.float32), 16000)
    _raises("silent", (16000, np.zeros(16000, dtype=np.int16)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite(bad):
    x = _tone(1.0, 16000)
    x[100] = bad
    _raises("NaN or infinite", x, 16000)


def test_array_without_sampling_rate():
    msg = _raises("sampling rate", _tone(1.0, 16000))
    assert "sampling_rate" in msg


def test_conflicting_rates_in_tuple():
    _raises("Conflicting", (16000, _tone(1.0, 16000)), 8000)


def test_too_long_says_length_and_limit(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, _tone(12.0, 16000), 16000)
    msg = _raises("too long", path, max_seconds=10)
    assert "12.0 s" in msg and "10.0 s" in msg
    msg = _raises("too long", _tone(200.0, 8000), 8000, max_seconds=60)
    assert "200" in msg and "60" in msg
    assert load_audio(path, max_seconds=12.5).shape == (12 * 16000,)


def test_none_and_unsupported_types():
    _raises("No audio", None)
    _raises("Unsupported audio input", 12345)
    _raises("dtype", np.array(["a", "b"]), 16000)


def test_bad_sampling_rate():
    _raises("sampling rate", _tone(1.0, 16000), 0)
