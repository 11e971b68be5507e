"""The bundled calibration set and the real-speech clip sets are what their manifests and READMEs say."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
CALIB = resources.files("prunelab") / "data" / "calibration"


def _clips() -> list[dict]:
    return json.loads((CALIB / "manifest.json").read_text(encoding="utf-8"))["clips"]


def test_bundled_set_is_installed_and_matches_its_manifest():
    clips = _clips()
    wavs = sorted(p.name for p in CALIB.iterdir() if p.name.endswith(".wav"))
    assert [c["file"] for c in clips] == wavs  # the manifest is in file-name order, the order the loader uses
    assert len(clips) >= 64
    assert {c["kind"] for c in clips} == {"real", "synthetic"}
    assert sum(c["kind"] == "real" for c in clips[:8]) >= 1  # mixed from the start
    total = 0
    for c in clips:
        info = sf.info(str(CALIB / c["file"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), c["file"]
        assert abs(info.frames / 16000 - c["seconds"]) < 1e-3 and c["licence"] and c["source"]
        total += (CALIB / c["file"]).stat().st_size
    assert total <= 10 * 1024 * 1024
    assert not [p.name for p in CALIB.iterdir() if p.name.endswith(".txt")]  # unlabeled: no texts shipped


def test_bundled_set_shares_no_sentence_with_any_test_set():
    texts = json.loads((REPO / "benchmarks" / "clips" / "calib-texts.json").read_text(encoding="utf-8"))
    assert sorted(texts) == sorted(c["file"] for c in _clips())
    norm = lambda s: " ".join("".join(ch for ch in s.lower() if ch.isalnum() or ch.isspace()).split())
    mine = {norm(t) for t in texts.values()}
    folders = [*sorted((REPO / "benchmarks" / "clips").glob("test*")), REPO / "benchmarks" / "clips" / "real-test",
               REPO / "benchmarks" / "data", REPO / "assets", REPO / "assets" / "eval"]
    for folder in folders:
        for txt in folder.glob("*.txt"):
            if txt.with_suffix(".wav").is_file():
                assert norm(txt.read_text(encoding="utf-8")) not in mine, txt


def test_real_speech_parts_share_no_speaker_group():
    parts = {p: json.loads((REPO / "benchmarks" / "clips" / p / "clips.json").read_text(encoding="utf-8"))
             for p in ("real-calib", "real-test")}
    groups = {p: {c["group"] for c in v} for p, v in parts.items()}
    speakers = {p: {c["speaker"] for c in v} for p, v in parts.items()}
    assert not groups["real-calib"] & groups["real-test"] and not speakers["real-calib"] & speakers["real-test"]
    assert len(parts["real-test"]) >= 20
    for p, v in parts.items():
        for c in v:
            assert (REPO / "benchmarks" / "clips" / p / f"{c['name']}.txt").is_file()
            assert sf.info(str(REPO / "benchmarks" / "clips" / p / f"{c['name']}.wav")).duration <= 25.0
    bundled_real = {c["origin"].rsplit("/", 1)[1][:-4] for c in _clips() if c["kind"] == "real"}
    assert bundled_real <= {c["name"] for c in parts["real-calib"]}  # nothing of real-test is bundled
