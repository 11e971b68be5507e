"""The Recover tab through the app's API (gradio_client), on the tiny random Whisper: Repair makes the model in use
a repaired one (its record says so), Listen & compare and the download use it, a new Compress clears it, bad
calibration uploads get a readable message, an evaluation clip is refused; fine-tuning draws its loss and ends
with a fine-tuned model; the tuning chart joins one plan's steps; How it works shows a unit before and after repair.

Repair runs on a few short synthetic clips (arrays written as WAV): seconds on the tiny model.
"""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apptools import serve, write_wav  # noqa: E402

CLIP = ROOT / "assets" / "clip1.wav"


@pytest.fixture(scope="module")
def server():
    with serve("tiny:whisper") as url:
        yield url


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Three short voiced-like clips (a pitched buzz with noise), 1 s each."""
    folder = tmp_path_factory.mktemp("cal")
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    out = []
    for i in range(3):
        wave = 0.3 * np.sin(2 * np.pi * (140 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
        out.append(write_wav(folder / f"cal{i}.wav", wave + 0.02 * rng.standard_normal(t.size)))
    return out


@pytest.fixture
def compressed(server):
    client = Client(server, verbose=False)
    client.predict("tiny:whisper", 0.3, "uniform", api_name="/load_model")
    client.predict("kmeans", 0, "channels", "", "all", api_name="/compress")
    return client


def _repair(client, files, clips="all", source="uploads", *select):
    return client.predict(source, [handle_file(str(f)) for f in files], clips, *select, api_name="/repair")


def _transcribe_summary(client) -> str:
    return client.predict(handle_file(str(CLIP)), (CLIP.with_suffix(".txt")).read_text(), api_name="/transcribe")[4]


def test_repair_is_the_model_in_use_until_the_next_compress(compressed, clips):
    result, step, chart, ft = _repair(compressed, clips)
    assert result.startswith("✅ **Repaired** on 3 clips (3.0 s of audio, your uploads)") and "layers re-solved" in result
    assert "fc2 ×" in result and "Skipped" not in result
    assert step.startswith("**Model in use: repaired**") and "compressed → **repaired** → fine-tuned" in step
    assert "(repaired)" in _transcribe_summary(compressed)  # Listen & compare uses the repaired model

    zip_path = compressed.predict(api_name="/download_model")
    assert Path(zip_path).name == "compressed-repaired.zip"
    with zipfile.ZipFile(zip_path) as archive:
        texts = [archive.read(n).decode() for n in archive.namelist() if n.endswith(".json")]
    assert any('"step": "repair"' in t or '"step":"repair"' in t for t in texts), "the saved folder records the repair"

    # the How it works tab shows the repaired unit (the fc2 its fc1 feeds) before and after
    caption, plot = compressed.predict("model.encoder.layers.0.fc1", api_name="/repair_view")
    assert "Before and after repair" in caption["value"] and "enc.0.fc2" in caption["value"]
    assert plot["value"] is not None

    compressed.predict("kmeans", 1, "channels", "", "all", api_name="/compress")  # a new Compress clears it
    assert "(repaired)" not in _transcribe_summary(compressed)
    assert Path(compressed.predict(api_name="/download_model")).name == "compressed.zip"
    caption, plot = compressed.predict("model.encoder.layers.0.fc1", api_name="/repair_view")
    assert caption.get("visible") is False and plot.get("visible") is False


def test_repair_can_rechoose_the_ffn_neurons_and_says_so(compressed, clips):
    """The box unticked (and left out of the call) keeps the compression's neurons; ticked, the folded FFN's
    neurons are re-chosen, the result line and How it works say so, and the recovery step records it."""
    compressed.predict("magnitude", 0, "foldable", "", "all", api_name="/compress")
    plain, *_ = _repair(compressed, clips)
    assert plain.startswith("✅ **Repaired**") and "re-chosen" not in plain
    chosen, step, *_ = _repair(compressed, clips, "all", "uploads", True)
    assert "The FFN neurons kept were re-chosen from this audio" in chosen
    assert step.startswith("**Model in use: repaired**")
    caption, _ = compressed.predict("model.encoder.layers.0.fc1", api_name="/repair_view")
    assert "not the same neuron" in caption["value"]
    with zipfile.ZipFile(compressed.predict(api_name="/download_model")) as archive:
        record = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("compression.json"))))
    assert record["compression"]["recovery"][-1]["select"] is True


def test_bad_calibration_uploads_say_why(compressed, clips, tmp_path):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are my notes, not a recording")
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000))
    with pytest.raises(Exception) as excinfo:
        _repair(compressed, [not_audio, silent])
    text = str(excinfo.value)
    assert "None of the 2 calibration clips is usable" in text and "notes.wav" in text and "silent.wav" in text
    assert "/tmp/" not in text  # no server paths

    result, step, *_ = _repair(compressed, [clips[0], silent])  # one usable clip: repaired, the silent one skipped
    assert result.startswith("✅ **Repaired** on 1 clips") and "Skipped 1 clip: silent.wav:" in result

    with pytest.raises(Exception) as excinfo:  # no uploads at all
        compressed.predict("uploads", [], "8", api_name="/repair")
    assert "No calibration audio uploaded" in str(excinfo.value)


def test_an_evaluation_clip_is_refused(compressed, clips):
    eval_clip = sorted((ROOT / "assets" / "eval").glob("*.wav"))[0]
    with pytest.raises(Exception) as excinfo:
        _repair(compressed, [clips[0], eval_clip])
    assert f"is the evaluation clip {eval_clip.name}" in str(excinfo.value)


def test_repair_before_compress_says_compress_first(server, clips):
    client = Client(server, verbose=False)
    client.predict("tiny:whisper", 0.3, "uniform", api_name="/load_model")
    with pytest.raises(Exception) as excinfo:
        _repair(client, clips)
    assert "press Compress first" in str(excinfo.value)


def test_bundled_set_is_offered_with_its_size():
    from ui.tabs import recover

    (label, value), _ = recover.source_choices()
    assert value == "bundled" and "unlabeled clips" in label and "none of them an evaluation clip" in label
    n = int(label.split(": ")[1].split()[0])
    assert n >= 8
    from prunelab.recovery.calibration import bundled_calibration_dir

    names = {p.name for p in bundled_calibration_dir().rglob("*.wav")}
    assert not names & {p.name for p in (ROOT / "assets" / "eval").glob("*.wav")}


def test_finetune_draws_its_loss_and_ends_fine_tuned(compressed, clips):
    job = compressed.submit("uploads", [handle_file(str(f)) for f in clips[:2]], "all", 1, api_name="/finetune")
    outputs = job.result(timeout=300)
    line, chart, step = outputs
    assert line.startswith("✅ **Fine-tuned** the compressed model: 1 epoch") and "steps on 2 clips" in line
    assert step.startswith("**Model in use: fine-tuned**")
    assert chart is not None and chart["plot"].startswith("data:image/png")
    assert "(fine-tuned)" in _transcribe_summary(compressed)


def test_history_chart_joins_the_steps_of_one_plan():
    from prunelab.report import plots

    base = {"model": "m", "method": "kmeans", "seed": 0, "units": "channels", "plan": {"a": 3}, "vocabulary": None,
            "params_removed": 0.1, "wer_original": 0.1}
    history = [{**base, "n": 1, "wer": 0.6, "step": "compressed"},
               {**base, "n": 2, "wer": 0.3, "step": "repaired"},
               {**base, "n": 3, "wer": 0.5, "step": "compressed", "plan": {"a": 2}, "params_removed": 0.2},
               {**base, "n": 4, "wer": 0.2, "step": "fine-tuned"}]
    assert plots.step_links(history) == [(0, 1), (1, 3)]  # plan {"a": 3}: compressed -> repaired -> fine-tuned
    ax = plots.tuning_history_chart(history).axes[0]
    arrows = [p for p in ax.patches if p.get_label() == "_step"]
    assert len(arrows) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "kmeans" and {"step: compressed", "step: repaired", "step: fine-tuned",
                                      "same plan, next step"} <= set(labels)
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3", "4"]


def test_a_history_point_records_its_step():
    from ui.session import step_of

    assert step_of({"recovery": []}) == "compressed" and step_of(None) == "compressed"
    assert step_of({"recovery": [{"step": "repair"}]}) == "repaired"
    assert step_of({"recovery": [{"step": "repair"}, {"step": "finetune"}]}) == "fine-tuned"
    json.dumps({"step": step_of({})})
