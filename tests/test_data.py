"""load_eval_set: folders of audio/text pairs and LibriSpeech layouts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prunelab.speech.data import Utterance, load_eval_set
from prunelab.errors import PrunelabError

REPO = Path(__file__).resolve().parent.parent


def _write_audio(path: Path, seconds: float = 0.2) -> None:
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)


def test_pairs_folder(tmp_path):
    for name, text in [("b", "second  clip\n"), ("a", "first clip"), ("c", "third clip")]:
        _write_audio(tmp_path / f"{name}.wav")
        (tmp_path / f"{name}.txt").write_text(text)
    _write_audio(tmp_path / "d.flac")
    (tmp_path / "d.txt").write_text("fourth clip as flac")
    _write_audio(tmp_path / "orphan.wav")  # no text: skipped
    (tmp_path / "notes.txt").write_text("no audio: skipped")

    utts = load_eval_set(tmp_path)
    assert [u.id for u in utts] == ["a", "b", "c", "d"]
    assert all(isinstance(u, Utterance) for u in utts)
    assert utts[1].text == "second clip"  # whitespace collapsed
    assert utts[3].audio == tmp_path / "d.flac" and utts[3].audio.is_file()
    assert [u.id for u in load_eval_set(str(tmp_path), limit=2)] == ["a", "b"]
    assert load_eval_set(tmp_path) == utts  # deterministic


def test_librispeech_layout(tmp_path):
    split = tmp_path / "LibriSpeech" / "test-clean"
    entries = {
        ("84", "121123"): ["84-121123-0001 GO DO YOU HEAR", "84-121123-0000 BUT IN LESS THAN FIVE MINUTES"],
        ("1089", "134686"): ["1089-134686-0000 HE HOPED THERE WOULD BE STEW FOR DINNER"],
    }
    for (spk, chap), lines in entries.items():
        folder = split / spk / chap
        folder.mkdir(parents=True)
        (folder / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            _write_audio(folder / f"{line.split()[0]}.flac")

    utts = load_eval_set(split)
    assert [u.id for u in utts] == ["1089-134686-0000", "84-121123-0000", "84-121123-0001"]
    assert utts[0].text == "HE HOPED THERE WOULD BE STEW FOR DINNER"
    assert utts[2].audio == split / "84" / "121123" / "84-121123-0001.flac"
    assert sf.info(str(utts[2].audio)).format == "FLAC"
    assert load_eval_set(tmp_path, limit=1) == utts[:1]  # a folder above the split works too


def test_missing_folder(tmp_path):
    with pytest.raises(PrunelabError, match="not found"):
        load_eval_set(tmp_path / "nowhere")


def test_file_instead_of_folder(tmp_path):
    f = tmp_path / "x.wav"
    _write_audio(f)
    with pytest.raises(PrunelabError, match="must be a folder"):
        load_eval_set(f)


def test_folder_without_pairs(tmp_path):
    _write_audio(tmp_path / "lonely.wav")
    (tmp_path / "other.txt").write_text("hello")
    with pytest.raises(PrunelabError, match="No evaluation clips"):
        load_eval_set(tmp_path)


def test_bad_limit(tmp_path):
    _write_audio(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_text("a")
    with pytest.raises(PrunelabError, match="limit"):
        load_eval_set(tmp_path, limit=0)


def test_committed_benchmark_set():
    utts = load_eval_set(REPO / "benchmarks" / "data")
    assert len(utts) >= 24
    voices = {u.id.rsplit("_", 1)[0] for u in utts}
    assert len(voices) >= 5
    for u in utts:
        info = sf.info(str(u.audio))
        assert info.samplerate == 16000 and info.channels == 1
        assert 3.0 <= info.duration <= 8.0
        assert len(u.text.split()) >= 5
