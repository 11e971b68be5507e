"""The Compress tab's handlers keep what is on screen honest: a method setting changed after Compress is
flagged like a slider change, a failed Compress says the old model is still in use, a plan file that cannot
be restored is refused before anything changes, a CTC model is offered only presets that select some of its
layers, a unit-level method's cluster view says what it shows, and the downloaded model zip is stored, not
deflated. On the tiny random-weight models (seconds); the browser side is in test_browser_tuning.py.
"""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("gradio")
import gradio as gr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prunelab import Plan, find_layers, load_model  # noqa: E402
from ui.session import Session, require_compressed  # noqa: E402
from ui import sliders  # noqa: E402
from ui.tabs import changes, compress  # noqa: E402


def loaded(spec: str, preset: str = "encoder-fc1", sparsity: float = 0.5):
    """(session, preset dropdown) after loading ``spec`` with ``preset`` chosen on screen."""
    out = compress.on_load(spec, sparsity, preset, Session(), 0)
    return out[0], out[-1]


@pytest.fixture()
def compressed_session():
    """tiny:whisper compressed with k-means, seed 0, output channels, default options (as on screen)."""
    sess, _ = loaded("tiny:whisper")
    return compress.on_compress("kmeans", 0, sess, "channels", compress.options_json("kmeans"), "all")[0]


def screen(**changes_on_screen) -> dict:
    values = {"method": "kmeans", "seed": 0, "units": "channels", "options": compress.options_json("kmeans")}
    values.update(changes_on_screen)
    return values


@pytest.mark.parametrize("change, named", [({"method": "magnitude"}, "The method changed"),
                                           ({"seed": 5}, "The seed changed"),
                                           ({"units": "foldable"}, "What is clustered changed"),
                                           ({"options": '{"bogus": 1}'}, "The method options changed")])
def test_a_method_setting_changed_after_compress_is_flagged(compressed_session, change, named):
    values = screen(**change)
    sess, note = compress.on_method_settings(values["method"], values["seed"], values["units"], values["options"],
                                             compressed_session)
    assert note.startswith(f"⚠️ **{named} since you pressed Compress**")
    layers = find_layers(load_model("tiny:whisper").model)
    assert sliders.changed_settings(sess, layers) == [sliders.METHOD_SETTINGS[next(iter(change))]]
    # Listen & compare names it too (its note is built from changed_settings)
    back = screen()
    sess, note = compress.on_method_settings(back["method"], back["seed"], back["units"], back["options"], sess)
    assert note == "" and sliders.changed_settings(sess, layers) == []


def test_settings_as_compressed_and_before_any_compress_raise_no_warning(compressed_session):
    values = screen(seed=0.0)  # gr.Number sends floats
    assert compress.on_method_settings(*values.values(), compressed_session)[1] == ""
    fresh, _ = loaded("tiny:whisper")
    assert compress.on_method_settings(*screen(method="magnitude").values(), fresh)[1] == ""


def test_a_failed_compress_says_which_model_is_still_in_use(compressed_session):
    status, stale = compress.on_compress_failed(compressed_session)
    assert "did not run" in status and "k-means" in status and stale == ""
    fresh, _ = loaded("tiny:whisper")
    status, _ = compress.on_compress_failed(fresh)
    assert status.startswith("Not compressed yet") and "Compressing" not in status


def test_a_plan_file_is_checked_before_anything_changes(tmp_path):
    sess, _ = loaded("tiny:whisper")
    cases = {"not json": "Plan is not valid JSON", '{"hello": 1}': "hello",
             '{"model.encoder.layers.0.fc1": 0}': "fc1"}
    for text, expected in cases.items():
        path = tmp_path / "plan.json"
        path.write_text(text)
        with pytest.raises(gr.Error) as excinfo:
            compress.on_plan_check(str(path), sess)
        assert expected in excinfo.value.message and "not json :" not in excinfo.value.message
    layers = find_layers(load_model("tiny:whisper").model)
    good = tmp_path / "good.json"
    Plan({layers[0].name: layers[0].channels // 2}).to_json(good)
    assert compress.on_plan_check(str(good), sess) is None


def test_a_ctc_model_is_offered_only_presets_that_select_its_layers():
    sess, preset = loaded("tiny:ctc", preset="decoder")
    offered = [value for _, value in preset.choices]
    assert "decoder" not in offered and "decoder-fc1" not in offered and "uniform" in offered
    assert preset.value in offered and sess.clusters  # the decoder preset was replaced: some slider is set
    _, preset = loaded("tiny:whisper", preset="decoder")
    assert preset.value == "decoder" and "decoder-self-qk" in [v for _, v in preset.choices]


def test_the_cluster_view_of_a_unit_level_method_says_what_it_shows(compressed_session):
    layers = find_layers(load_model("tiny:whisper").model)
    q = next(l for l in layers if l.part == "decoder" and l.kind == "q")
    scatter, sizes, note = changes.on_inspect(q.name, "lowrank-qk", 0, compressed_session)
    assert scatter is not None and sizes is not None
    assert "no clusters of this layer's output channels" in note and "k-means" in note


def test_the_model_zip_is_stored_and_loads_back(compressed_session, tmp_path):
    path = compress.on_model_download(compressed_session, progress=lambda *a, **k: None)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert infos and all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        names = {Path(i.filename).name for i in infos}
        assert "plan.json" in names and any(n.endswith(".safetensors") for n in names)
        archive.extractall(tmp_path)
    folder = next(p.parent for p in tmp_path.rglob("plan.json"))
    again = load_model(str(folder))
    assert again.num_parameters < load_model("tiny:whisper").num_parameters


def test_a_downloaded_plan_compresses_the_same_on_the_command_line(tmp_path):
    from prunelab import cli, load_compressed

    sess, _ = loaded("tiny:whisper", preset="decoder-self-qk", sparsity=0.5)
    sess = compress.on_compress("lowrank-qk", 0, sess, "foldable", "", "all")[0]
    path = compress.on_plan_download("lowrank-qk", 0, sess, "foldable")
    record = json.loads(Path(path).read_text())
    assert record["method"] == "lowrank-qk" and record["units"] == "foldable"
    assert cli.main(["compress", "--model", "tiny:whisper", "--plan", path, "--out", str(tmp_path / "m")]) == 0
    made_here = load_compressed(tmp_path / "m").compression
    assert made_here["method"] == "lowrank-qk" and made_here["units"] == "foldable"
    assert made_here["params_removed"] == pytest.approx(require_compressed(sess).compression["params_removed"])
    assert made_here["params_removed"] > 0
