"""Drive the running app through its API with gradio_client, as a browser session would.

One server for the module; every test opens its own Client, which is its own session (its own gr.State),
so no test depends on another having run first. The main flow uses the real bundled Whisper-base (marked
slow); the error paths use the tiny random Whisper so they stay quick. Figures come back as PNGs: their
pixels are checked here, their content (axes, labels, bars, points) on the handlers' figures directly.
The last tests check the ``ui`` package's own pieces without a server: the handlers' figures, event
settings, the shared model store and the session value (that the library never imports Gradio:
test_architecture.py).
"""
from __future__ import annotations

import base64
import io
import json
import re
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py lives at the repository root

import app  # noqa: E402
from apptools import serve, write_wav  # noqa: E402
from prunelab import wer  # noqa: E402

CLIP = ROOT / "assets" / "clip1.wav"


@pytest.fixture(scope="module")
def server():
    with serve("tiny:whisper") as url:
        yield url


def _client(url: str) -> Client:
    return Client(url, verbose=False)


def _error_text(excinfo) -> str:
    return str(excinfo.value)


@pytest.fixture
def tiny_session(server):
    """A new session (its own Client) with the tiny Whisper loaded at 30 % everywhere, not compressed yet."""
    client = _client(server)
    out = client.predict("tiny:whisper", 0.3, "uniform", api_name="/load_model")
    assert "tiny:whisper" in out[0] and "32 compressible linear layers" in out[0]
    assert "32 of 32 layers compressed" in out[1]
    return client


def _png(plot) -> np.ndarray:
    """The pixels of a gr.Plot payload, checked to be a drawn figure: a PNG with dark marks (text, axes,
    points) and several colours, not a blank page."""
    from matplotlib.image import imread

    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/png;base64,")
    pixels = imread(io.BytesIO(base64.b64decode(plot["plot"].split(",", 1)[1])), format="png")
    assert pixels.shape[0] >= 200 and pixels.shape[1] >= 300, pixels.shape
    rgb = pixels[..., :3].reshape(-1, 3)
    assert 0.002 < (rgb < 0.5).any(axis=1).mean() < 0.5
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) >= 8
    return pixels


def test_api_endpoints(server):
    api = _client(server).view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/load_model", "/set_all_sliders", "/compress", "/transcribe", "/pick_example",
                 "/upload_plan", "/download_plan", "/download_model", "/inspect_layer", "/how_it_works",
                 "/auto_allocate", "/sensitivity"):
        assert name in api


def test_original_transcribes_alone_before_compress(tiny_session):
    text_a, time_a, text_b, time_b, summary, diff_a, diff_b = tiny_session.predict(
        handle_file(str(CLIP)), "she put the fresh flowers", api_name="/transcribe")
    assert text_a.strip() and " s for " in time_a  # the original's transcript and time
    assert text_b == "" and time_b.startswith("No compressed model") and "compress" in time_b.lower()
    assert "original **" in summary and "compressed **" not in summary and diff_b is None


def test_transcribe_without_model_is_an_error(server):
    with pytest.raises(Exception) as excinfo:
        _client(server).predict(handle_file(str(CLIP)), "", api_name="/transcribe")
    assert "no model loaded" in _error_text(excinfo).lower()


def test_bad_plans_are_errors_and_leave_the_app_working(tiny_session, tmp_path):
    cases = {
        "broken.json": ("{not json", "not valid json"),
        "unknown.json": (json.dumps({"clusters": {"model.encoder.layers.9.fc1": 3}}), "does not have"),
        "too_many.json": (json.dumps({"clusters": {"model.encoder.layers.0.fc1": 9999}}), "between 1 and 256"),
        "not_int.json": (json.dumps({"model.encoder.layers.0.fc1": "many"}), "whole number"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(Exception) as excinfo:
            tiny_session.predict(handle_file(str(path)), api_name="/upload_plan")
        assert message in _error_text(excinfo).lower(), name
    # still working: a good plan restores, and is reported
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"clusters": {"model.encoder.layers.0.fc1": 64}}))
    out = tiny_session.predict(handle_file(str(good)), api_name="/upload_plan")
    assert "1 of 32 layers compressed" in out[0]


def test_unknown_model_is_an_error_and_session_keeps_working(tiny_session):
    with pytest.raises(Exception) as excinfo:
        tiny_session.predict("nobody/not-a-real-speech-model-xyz", 0.3, "uniform", api_name="/load_model")
    text = _error_text(excinfo).lower()
    assert "hub cannot be reached" in text or "not found" in text
    with pytest.raises(Exception) as excinfo:
        tiny_session.predict("tiny:nothing", 0.3, "uniform", api_name="/load_model")
    assert "unknown model" in _error_text(excinfo).lower()
    out = tiny_session.predict(0.3, "uniform", api_name="/set_all_sliders")
    assert "32 of 32 layers compressed" in out[0]


def test_every_offered_preset_sets_the_sliders_it_names(tiny_session):
    """Each preset of the dropdown is a library preset (none hidden by a typo) and sets only its layers."""
    from prunelab.compression import PRESETS
    from ui.settings import UI_PRESETS

    assert set(UI_PRESETS) <= set(PRESETS)
    out = tiny_session.predict(0.5, "decoder-fc1", api_name="/set_all_sliders")
    assert "2 of 32 layers compressed" in out[0]  # the tiny Whisper's two decoder FFNs
    out = tiny_session.predict(0.5, "encoder-fc1", api_name="/set_all_sliders")
    assert "2 of 32 layers compressed" in out[0]


def test_tiny_compress_audio_errors_and_downloads(tiny_session, tmp_path):
    client = tiny_session
    client.predict("tiny:whisper", 0.5, "ffn", api_name="/load_model")
    status, *charts, table, stale = client.predict("magnitude", 0, api_name="/compress")
    assert stale == ""
    assert "Compressed with" in status and "Structured magnitude" in status
    for chart in charts:
        _png(chart)
    assert table["headers"] == ["", "original", "compressed", "kept"] and table["data"][0][0] == "parameters"

    # audio a user can get wrong
    with pytest.raises(Exception) as excinfo:
        client.predict(None, "", api_name="/transcribe")
    assert "no audio" in _error_text(excinfo).lower()
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 10)
    with pytest.raises(Exception) as excinfo:
        client.predict(handle_file(str(corrupt)), "", api_name="/transcribe")
    assert "corrupt" in _error_text(excinfo).lower() or "could not read" in _error_text(excinfo).lower()
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000))
    with pytest.raises(Exception) as excinfo:
        client.predict(handle_file(str(silent)), "", api_name="/transcribe")
    assert "silent" in _error_text(excinfo).lower()
    long = write_wav(tmp_path / "ten_minutes.wav", 0.1 * np.sin(np.arange(16000 * 600) * 0.05), 16000)
    with pytest.raises(Exception) as excinfo:
        client.predict(handle_file(str(long)), "", api_name="/transcribe")
    assert "too long" in _error_text(excinfo).lower()

    # downloads: the plan round-trips, the model zip holds the saved folder
    plan_path = client.predict("magnitude", 0, api_name="/download_plan")
    plan = json.loads(Path(plan_path).read_text())
    assert plan["method"] == "magnitude" and len(plan["clusters"]) == 8  # 4 FFN layers... of 2+2 blocks
    assert all(k == 128 or k == 32 for k in plan["clusters"].values())
    zip_path = client.predict(api_name="/download_model")
    names = zipfile.ZipFile(zip_path).namelist()
    assert any(n.endswith("model.safetensors") for n in names)
    assert any(n.endswith("plan.json") for n in names)

    # the teaching and inspection figures come back as drawn PNGs (their content: test_handler_figures)
    scatter, sizes, note = client.predict("model.encoder.layers.0.fc1", "kmeans", 0, api_name="/inspect_layer")
    assert "C = 256 channels" in note and "K = 128" in note and "sparsity 50%" in note
    for plot in (scatter, sizes, *client.predict("model.encoder.layers.0.fc1", 8, 0, api_name="/how_it_works")):
        _png(plot)


@pytest.mark.slow
def test_whisper_base_compress_and_compare(server):
    """The real thing: Whisper-base, 30 % k-means on the encoder FFN neurons, one example clip through both models.

    (30 % on every layer breaks Whisper-base: its transcript is empty; see benchmarks/WER_STUDY.md.)
    """
    client = _client(server)
    info = client.predict("bundled:whisper-base", 0.3, "encoder-fc1", api_name="/load_model")[0]
    assert "bundled:whisper-base" in info and "96 compressible linear layers" in info
    status = client.predict("kmeans", 0, api_name="/compress")[0]
    assert "k-means" in status
    # 6 encoder fc1 layers [2048, 512+1] at 30 %: 1.89 M of Whisper-base's 44.1 M compressible parameters in
    # the sliders' count; folded, 614 fc1 rows (513) and fc2 columns (512) each: 3.78 M of all 72.59 M parameters
    assert re.search(r"the sliders remove 4\.[23]% of the compressible layers' parameters before folding", status), status
    assert "**5.20% of all the model's parameters really removed**" in status, status

    audio, reference = client.predict("clip1", api_name="/pick_example")
    assert reference == (ROOT / "assets" / "clip1.txt").read_text().strip()
    text_a, time_a, text_b, time_b, summary, diff_a, diff_b = client.predict(
        handle_file(audio), reference, api_name="/transcribe")
    print(f"\n{info}\n{status}\noriginal  ({time_a}): {text_a}\ncompressed ({time_b}): {text_b}\n{summary}")
    assert wer(reference, text_a) <= 0.1, text_a
    assert wer(reference, text_b) <= 0.3, text_b
    assert " s of audio" in time_a and " s for " in time_b
    assert "WER" in summary and summary.count("%") >= 2
    # highlighted diffs: the original's diff is (almost) all plain equal words
    tokens_a = diff_a if isinstance(diff_a, list) else diff_a.get("value", [])
    assert tokens_a and " ".join(t["token"] for t in tokens_a if t["class_or_confidence"] is None).strip()


def test_auto_allocate_sets_mixed_sliders_and_sensitivity_plot(server):
    client = _client(server)
    client.predict("tiny:whisper", 0.3, "ffn", api_name="/load_model")
    out = client.predict(0.3, "ffn", api_name="/auto_allocate")
    summary = out[0]
    # FFN layers only (8 of 32): 30 % of the FFN parameters removed
    m = re.search(r"(\d+) of 32 layers compressed", summary)
    assert m and 1 <= int(m.group(1)) <= 8, summary
    pct = float(re.search(r"\*\*([\d.]+)%\*\*", summary).group(1))
    ffn = 4 * (256 * 65 + 64 * 257)  # 4 blocks of fc1 [256, 64+1] and fc2 [64, 256+1]
    ffn_share = ffn / (ffn + 24 * 64 * 65 - 6 * 64)  # 24 attention projections, 6 k_proj without bias
    assert pct == pytest.approx(30 * ffn_share, abs=2.0), summary
    status = client.predict("kmeans", 0, api_name="/compress")[0]
    assert "Compressed with" in status
    _png(client.predict("ffn", api_name="/sensitivity"))


@pytest.mark.slow
def test_auto_allocated_query_key_fold_is_the_librarys(server):
    """The study's query/key row as a person makes it in the app (preset, Auto-allocate, lowrank-qk, foldable
    units) is ``compress(..., allocate="auto")``'s: the same per-layer plan on the real Whisper-base, whose
    layers differ (a random tiny model's layers are alike, so auto and uniform would agree there)."""
    from prunelab import CompressionConfig, compress, load_model

    client = _client(server)
    client.predict("bundled:whisper-base", 0.5, "decoder-self-qk", api_name="/load_model")
    summary = client.predict(0.5, "decoder-self-qk", api_name="/auto_allocate")[0]
    assert "6 of 96 layers compressed" in summary  # the six decoder self-attentions
    status = client.predict("lowrank-qk", 0, "foldable", api_name="/compress")[0]
    removed = float(re.search(r"\*\*([\d.]+)% of all the model's parameters really removed", status).group(1))
    sliders = json.loads(Path(client.predict("lowrank-qk", 0, api_name="/download_plan")).read_text())["clusters"]
    lib = compress(load_model(), CompressionConfig(method="lowrank-qk", sparsity=0.5, preset="decoder-self-qk",
                                                   units="foldable", allocate="auto"))
    # the plan file keeps the sliders; both the app and the library round each to whole heads (8 of them)
    assert {n: 8 * round(k / 8) for n, k in sliders.items()} == lib.compression["plan"]
    assert len(set(lib.compression["plan"].values())) > 1  # mixed: auto is not uniform here
    assert "rounded to the same K in every head" in status
    assert removed == pytest.approx(100 * lib.compression["params_removed"], abs=0.006)


# --- the ui package's pieces, without a server -------------------------------------------------------------


def _noop_progress(*args, **kwargs) -> None:
    return None


def _scatter_sizes(ax) -> list[int]:
    from matplotlib.collections import PathCollection

    return [len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]


def _bar_heights(ax) -> list[float]:
    from matplotlib.patches import Rectangle

    return [p.get_height() for p in ax.patches if isinstance(p, Rectangle)]


def test_handler_figures_show_the_sessions_model_and_plan():
    """What the app's figures hold, straight from its handlers: the session's layer, K, compressed layers."""
    from prunelab.compression.layers import find_layers
    from prunelab.report.size import size_report
    from ui.session import Session
    from ui.state import get_model
    from ui.tabs.changes import on_inspect, on_sensitivity
    from ui.tabs.compress import on_compress
    from ui.tabs.how import on_how

    model = get_model("tiny:whisper")
    layers = find_layers(model.model)
    by_name = {l.name: l for l in layers}
    fc1, fc2 = "model.encoder.layers.0.fc1", "model.decoder.layers.1.fc2"
    sess = Session(spec="tiny:whisper", clusters={fc1: 100, fc2: 32})

    scatter, sizes, note = on_inspect(fc1, "kmeans", 0, sess)
    ax = scatter.axes[0]
    assert _scatter_sizes(ax) == [256, 100]  # every channel of enc.0.fc1, the slider's K centroids
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("principal axis 1", "principal axis 2") and "K = 100" in ax.get_title()
    ax = sizes.axes[0]
    counts = _bar_heights(ax)
    cluster_sizes = [int(t.get_text()) for t in ax.get_xticklabels()]
    assert sum(counts) == 100 and sum(n * c for n, c in zip(cluster_sizes, counts)) == 256
    assert "K = 100" in note and "C = 256" in note

    scatter, sizes, _ = on_inspect(fc2, "magnitude", 0, sess)  # structured magnitude: 32 kept, 32 dropped
    assert _scatter_sizes(scatter.axes[0]) == [32, 32, 32]
    assert _bar_heights(sizes.axes[0]) == [32, 32] and [t.get_text() for t in sizes.axes[0].get_xticklabels()] == ["1", "dropped"]

    how, fold = on_how(fc1, 8, 0, sess)
    panels = [a for a in how.axes if a.get_label() != "<colorbar>"]
    assert [_scatter_sizes(a) for a in panels] == [[256], [256, 8], [8, 248, 8]]
    assert "enc.0.fc1" in panels[0].get_title()
    from prunelab.methods import kmeans_channels

    linear = model.model.get_submodule(fc1)
    rows_used = len(set(kmeans_channels(linear.weight, linear.bias, 8, seed=0).index[:24].tolist()))
    assert len(fold.axes[0].lines) == 24 and _scatter_sizes(fold.axes[0]) == [24, rows_used]  # the first 24 channels
    assert fold.axes[0].get_title() == f"Folding: 24 channels use only {rows_used} distinct rows"

    new_sess, status, sparsity, distortion, size, table, stale = on_compress("kmeans", 0, sess, progress=_noop_progress)
    assert stale == ""
    assert new_sess.compressed and new_sess.method == "kmeans"
    assert {n: k for n, k in new_sess.compressed_plan.items() if k < by_name[n].channels} == {fc1: 100, fc2: 32}
    enc, dec = sparsity.axes[:2]
    assert len(_bar_heights(enc)) == sum(l.part == "encoder" for l in layers) == 12
    heights = _bar_heights(enc) + _bar_heights(dec)
    assert sorted(round(h, 3) for h in heights if h > 0) == [50.0, round(100 * (1 - 100 / 256), 3)]
    assert [t.get_text() for t in distortion.axes[0].get_xticklabels()] == ["enc.0.fc1", "dec.1.fc2"]
    from ui.state import COMPRESSED

    compressed = COMPRESSED.get(new_sess.compressed)
    assert _bar_heights(size.axes[0]) == pytest.approx([size_report(model).nonzero_params / 1e6,
                                                        size_report(compressed).nonzero_params / 1e6])
    assert table[0][:3] == ["parameters", f"{size_report(model).params / 1e6:.2f} M",
                            f"{size_report(compressed).params / 1e6:.2f} M"]
    assert "Compressed with" in status

    curves = on_sensitivity("encoder-fc1", sess, progress=_noop_progress)
    ax = curves.axes[0]
    assert [line.get_label() for line in ax.lines] == ["enc.0.fc1", "enc.1.fc1"]
    assert ax.get_xlabel().startswith("layer sparsity")


HEAVY_ENDPOINTS = {"load_model", "auto_allocate", "sensitivity", "compress", "download_model", "inspect_layer",
                   "transcribe", "how_it_works", "evaluate_plan", "measured_sensitivity",
                   "reference_points", "repair", "finetune", "repair_view"}
# cancel_finetune must not wait behind the fine-tune it cancels in the heavy queue
LIGHT_ENDPOINTS = {"set_all_sliders", "upload_plan", "download_plan", "pick_example", "restore_plan",
                   "download_history", "cancel_finetune"}


def test_example_clips_play_when_the_app_is_started_from_another_directory(tmp_path, monkeypatch):
    """`python /path/to/app.py` from elsewhere: Gradio serves only files under the working directory, the
    temp directory or ``allowed_paths``, so the bundled example clips must be allowed explicitly (before
    this, picking an example failed with InvalidPathError and the clip never reached the player)."""
    monkeypatch.chdir(tmp_path)
    with serve("tiny:whisper") as url:
        audio, reference = _client(url).predict("clip1", api_name="/pick_example")
    assert reference == (ROOT / "assets" / "clip1.txt").read_text().strip()
    assert Path(audio).read_bytes() == (ROOT / "assets" / "clip1.wav").read_bytes()


def test_app_py_is_the_entry_point_of_the_ui_package():
    import ui

    assert app.build_app is ui.build_app and app.main is ui.main and app.launch_kwargs is ui.launch_kwargs
    assert len((ROOT / "app.py").read_text().splitlines()) < 20


def test_cpu_heavy_events_run_one_at_a_time_in_one_queue():
    demo = app.build_app(default_spec="tiny:whisper")
    named = {fn.api_name: fn for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert set(named) == HEAVY_ENDPOINTS | LIGHT_ENDPOINTS
    for name in HEAVY_ENDPOINTS:
        assert (named[name].concurrency_id, named[name].concurrency_limit) == ("heavy", 1), name
    for name in LIGHT_ENDPOINTS:
        assert named[name].concurrency_id != "heavy", name
    # the private triggers of heavy handlers (model dropdown, page load, tab select, slider release) too
    heavy_handlers = {named[n].name for n in HEAVY_ENDPOINTS}
    private = [fn for fn in demo.fns.values() if fn.api_visibility == "private" and fn.name in heavy_handlers]
    assert len(private) == 10  # on_load x2, on_inspect x2, on_how x3, on_repair_view x3
    for fn in private:
        assert (fn.concurrency_id, fn.concurrency_limit) == ("heavy", 1), fn.name


def test_bounded_store_keeps_the_most_recent_and_loads_once():
    from ui.state import BoundedStore

    store = BoundedStore(2)
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1  # "a" is now the most recent
    store.put("c", 3)
    assert "b" not in store and store.get("a") == 1 and store.get("c") == 3 and len(store) == 2
    store.put("c", 4)  # compressing again under the same key replaces the model
    assert store.get("c") == 4

    calls = []

    def slow_load():
        calls.append(1)
        time.sleep(0.2)
        return "model"

    results = []
    threads = [threading.Thread(target=lambda: results.append(store.get_or_load("m", slow_load))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["model"] * 4 and len(calls) == 1


def test_session_is_a_value():
    from ui.session import Session, require_compressed, require_model

    layer = type("Layer", (), {"name": "enc.0.fc1", "channels": 256})()
    empty = Session()
    edited = empty.with_clusters({"enc.0.fc1": 64})
    assert empty.clusters == {} and edited.k(layer) == 64 and empty.k(layer) == 256
    with pytest.raises(Exception, match="No model loaded"):
        require_model(empty)
    with pytest.raises(Exception, match="no compressed model yet"):
        require_compressed(edited)
    with pytest.raises(Exception, match="dropped to free memory"):
        require_compressed(Session(spec="tiny:whisper", compressed="no-such-key"))



def test_foldable_units_from_the_sliders(tiny_session):
    """Foldable units: only fc1/v/q sliders count, attention rounded to whole heads, and the status gives
    the fraction of ALL parameters really removed; the predictive method asks for foldable units."""
    client = tiny_session  # 30 % on every layer
    status = client.predict("kmeans", 0, "foldable", api_name="/compress")[0]
    assert "foldable units" in status and "of all the model's parameters really removed" in status
    removed = float(re.search(r"\*\*([\d.]+)% of all the model's parameters really removed", status).group(1))
    assert 0.5 < removed < 10
    assert "lead no foldable unit kept all their channels" in status  # k, out, fc2 sliders were left out
    assert "rounded to the same K in every head" in status  # 30 % of 64 channels over 4 heads is not whole
    with pytest.raises(Exception) as excinfo:
        client.predict("predictive", 0, "channels", api_name="/compress")
    assert "foldable" in _error_text(excinfo)
    status = client.predict("kmeans", 0, "channels", api_name="/compress")[0]
    assert "output channels" in status


def test_method_options_reach_the_compression_and_bad_ones_are_refused(tiny_session):
    """kmeans-fold's compensation switches typed in the Method options box are what compress() uses."""
    client = tiny_session
    client.predict(0.3, "fc1", api_name="/set_all_sliders")  # kmeans-fold folds FFN neurons only
    status = client.predict("kmeans-fold", 0, "foldable", '{"variance": true, "merge": "scale"}',
                            api_name="/compress")[0]
    assert "Compressed with" in status and "options merge=scale, variance=True" in status
    assert "foldable units" in status
    plain = client.predict("kmeans-fold", 0, "foldable", "", api_name="/compress")[0]
    assert "options" not in plain.split("(foldable units)")[0]
    with pytest.raises(Exception) as excinfo:
        client.predict("kmeans-fold", 0, "foldable", '{"nope": 1}', api_name="/compress")
    assert "has no option 'nope'" in _error_text(excinfo) and "variance" in _error_text(excinfo)
    with pytest.raises(Exception) as excinfo:
        client.predict("kmeans-fold", 0, "foldable", "{variance: true}", api_name="/compress")
    assert "not valid JSON" in _error_text(excinfo)


def test_vocabulary_choice_shrinks_the_decoder_and_marks_a_change_stale(tiny_session):
    """The Decoder vocabulary radio reaches compress(): the status names the tokens kept and the parameters removed
    grow by the embedding rows; with every slider at K = C the vocabulary alone may be compressed."""
    client = tiny_session  # 30 % on every layer
    plain = client.predict("kmeans", 0, "channels", "", "all", api_name="/compress")[0]
    latin = client.predict("kmeans", 0, "channels", "", "latin", api_name="/compress")[0]
    removed = lambda s: float(re.search(r"\*\*([\d.]+)% of all the model's parameters", s).group(1))  # noqa: E731
    assert "Decoder vocabulary" not in plain
    assert "Decoder vocabulary: 43,007 of 51,865 tokens kept (latin)" in latin
    assert removed(latin) - removed(plain) == pytest.approx(100 * 8858 * 64 / 3_705_152, abs=0.02)
    client.predict(0.0, "uniform", api_name="/set_all_sliders")
    with pytest.raises(Exception) as excinfo:
        client.predict("kmeans", 0, "channels", "", "all", api_name="/compress")
    assert "nothing to compress" in _error_text(excinfo)
    only = client.predict("kmeans", 0, "channels", "", "ascii", api_name="/compress")[0]
    assert "40,357 of 51,865 tokens kept (ascii)" in only
    assert removed(only) == pytest.approx(100 * (51_865 - 40_357) * 64 / 3_705_152, abs=0.01)


def test_vocabulary_is_refused_for_ctc_models(server):
    client = _client(server)
    client.predict("tiny:ctc", 0.3, "uniform", api_name="/load_model")
    with pytest.raises(Exception) as excinfo:
        client.predict("kmeans", 0, "channels", "", "latin", api_name="/compress")
    assert "only be trimmed in Whisper" in _error_text(excinfo) and "All tokens" in _error_text(excinfo)
