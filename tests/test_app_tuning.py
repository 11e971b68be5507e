"""The app as a tuning bench, through its API (gradio_client) and its handlers: one round trip sets every
slider, a restored plan brings its method, a compressed model made with another plan is flagged, the
original transcribes alone, times are medians of interleaved runs, and no server path reaches a message.

The browser side (requests counted, sliders shown, headers, stale lines) is in test_browser_tuning.py.
"""
from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from apptools import serve  # noqa: E402
from prunelab import Plan, find_layers  # noqa: E402

CLIP = ROOT / "assets" / "clip1.wav"


@pytest.fixture(scope="module")
def server():
    with serve("tiny:whisper") as url:
        yield url


@pytest.fixture
def client(server):
    c = Client(server, verbose=False)
    c.predict("tiny:whisper", 0.3, "uniform", api_name="/load_model")
    return c


def slider_values(editor_html: str) -> dict[str, int]:
    """Layer name -> K of every slider in the editor's HTML (the range input's value)."""
    rows = re.findall(r'data-name="([^"]+)".*?type="range"[^>]*value="(\d+)"', editor_html)
    return {name: int(k) for name, k in rows}


def tiny_layers():
    from ui.state import get_model

    return find_layers(get_model("tiny:whisper").model)


def test_set_all_sliders_returns_every_slider_in_one_answer(client):
    summary, editor, stale = client.predict(0.5, "ffn", api_name="/set_all_sliders")
    layers = tiny_layers()
    plan = Plan.from_sparsity(layers, 0.5, "ffn")
    assert slider_values(editor) == {l.name: plan.clusters.get(l.name, l.channels) for l in layers}
    assert len(slider_values(editor)) == 32 and "8 of 32 layers compressed" in summary
    assert "encoder block 0 · 6 layers · " in editor and stale == ""
    ffn_block = [l for l in layers if l.part == "encoder" and l.block == 0]
    assert f"encoder block 0 · 6 layers · {100 * plan.sparsity(ffn_block):.0f}% sparse" in editor


def test_a_restored_plan_sets_the_method_too(client, tmp_path):
    layers = tiny_layers()
    fc1 = next(l for l in layers if l.kind == "fc1")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"clusters": {fc1.name: 40}, "method": "magnitude", "seed": 0}))
    summary, editor, stale, method = client.predict(handle_file(str(path)), api_name="/upload_plan")
    assert method["value"] == "magnitude"  # an update of the Method dropdown
    assert slider_values(editor)[fc1.name] == 40 and "1 of 32 layers compressed" in summary
    # a plan without a method (or with one the app does not know) leaves the dropdown alone
    path.write_text(json.dumps({"clusters": {fc1.name: 41}, "method": "no-such-method"}))
    *_, method = client.predict(handle_file(str(path)), api_name="/upload_plan")
    assert "value" not in method


def test_a_compressed_model_made_with_another_plan_is_flagged(client):
    *_, stale = client.predict("kmeans", 0, api_name="/compress")
    assert stale == ""
    *_, stale = client.predict(0.6, "uniform", api_name="/set_all_sliders")
    assert "sliders changed since you pressed Compress" in stale
    *_, stale = client.predict(0.3, "uniform", api_name="/set_all_sliders")  # back to the compressed plan
    assert stale == ""
    client.predict(0.6, "uniform", api_name="/set_all_sliders")
    summary = client.predict(handle_file(str(CLIP)), "she put the fresh flowers", api_name="/transcribe")[4]
    assert "made before the sliders last changed" in summary
    *_, stale = client.predict("kmeans", 0, api_name="/compress")
    assert stale == ""


def test_failed_load_keeps_the_model_in_use(client):
    with pytest.raises(Exception, match="Unknown model"):
        client.predict("tiny:nothing", 0.3, "uniform", api_name="/load_model")
    summary = client.predict(0.3, "uniform", api_name="/set_all_sliders")[0]
    assert "32 of 32 layers compressed" in summary  # still the tiny Whisper


def test_error_messages_hold_no_server_path(client, tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 10)
    with pytest.raises(Exception) as excinfo:
        client.predict(handle_file(str(corrupt)), "", api_name="/transcribe")
    assert "corrupt.wav" in str(excinfo.value) and "/tmp" not in str(excinfo.value)

    import tempfile

    from ui.events import hide_server_paths

    tmp = tempfile.gettempdir()
    assert hide_server_paths(f"Audio file not found: {tmp}/gradio/3f9a/b7/my clip.wav.") == \
        "Audio file not found: my clip.wav."
    assert hide_server_paths("Model folder '/home/me/model' does not exist") == "Model folder '/home/me/model' does not exist"


# --- handlers, without a server -------------------------------------------------------------------------------


def test_slider_edits_are_checked_and_stale_ones_ignored():
    from ui.session import Session
    from ui.state import get_model
    from ui.sliders import edited_clusters, on_edit

    get_model("tiny:whisper")
    layers = tiny_layers()
    fc1 = next(l for l in layers if l.kind == "fc1")
    sent = {fc1.name: 10_000, "not.a.layer": 3, layers[0].name: 0, layers[1].name: "x", layers[2].name: 7.6}
    assert edited_clusters(layers, sent) == {fc1.name: fc1.channels, layers[0].name: 1, layers[2].name: 8}
    assert edited_clusters(layers, "nonsense") == {}

    sess = Session(spec="tiny:whisper", clusters={})
    event = type("Event", (), {"_data": {"clusters": {fc1.name: 12}, "rev": 4}})()
    new_sess, summary, stale = on_edit(sess, 4, event)
    assert new_sess.clusters == {fc1.name: 12} and "1 of 32 layers compressed" in summary
    skipped = on_edit(sess, 5, event)  # drawn from sliders the server has replaced since: ignored
    assert all(not isinstance(x, Session) for x in skipped)


def test_times_are_medians_of_interleaved_runs(monkeypatch):
    import numpy as np

    from ui.tabs import listen

    calls, durations = [], iter([0.05, 0.01, 0.01, 0.03, 0.03, 0.02])
    clock = [0.0]

    def fake_transcribe(model, samples, rate):
        calls.append(model)
        clock[0] += next(durations)
        return f"text of {model}"

    monkeypatch.setattr(listen, "transcribe", fake_transcribe)
    monkeypatch.setattr(listen.time, "perf_counter", lambda: clock[0])
    texts, seconds, runs = listen.time_models(["A", "B"], np.zeros(16000))
    assert calls == ["A", "B"] * 3 and runs == 3  # interleaved
    assert texts == ["text of A", "text of B"]
    assert seconds == pytest.approx([0.03, 0.02])  # medians of (0.05, 0.01, 0.03) and (0.01, 0.03, 0.02)


# --- readable figures ------------------------------------------------------------------------------------------


def test_distortion_chart_has_a_linear_labelled_axis():
    from prunelab.report import plots

    fig = plots.distortion_chart({"distortion": {"a": 70.0, "b": 100.0}, "method": "kmeans"})
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and "linear" in ax.get_ylabel()
    assert [p.get_height() for p in ax.patches] == [70.0, 100.0]


def test_scatter_colours_only_the_largest_clusters():
    import numpy as np
    import torch

    from prunelab.groups import ChannelGroups
    from prunelab.report import plots

    rng = np.random.default_rng(0)
    c, k = 2048, 1229  # many clusters, as on Whisper-base's fc1 at 40 %
    index = np.concatenate([np.arange(k), rng.integers(0, 40, c - k)])  # clusters 0..39 get the extra channels
    weight = torch.randn(c, 16)
    groups = ChannelGroups(weight=torch.randn(k, 16), bias=None, index=torch.as_tensor(index), distortion=1.0)
    title = "enc.0.fc1: 2048 channels → K = 1229 (a method with a rather long readable name, hybrid)"
    ax = plots.cluster_scatter(weight, None, groups, title=title).axes[0]
    colours = {tuple(np.round(c, 3)) for c in ax.collections[0].get_facecolors()}
    assert len(colours) == plots.COLORED_CLUSTERS + 1  # ten clusters in colour, every other one grey
    top = plots.largest_clusters(index, k)
    sizes = np.bincount(index, minlength=k)
    assert len(top) == 10 and min(sizes[top]) >= max(np.delete(sizes, top))
    assert all(len(line) <= 48 for line in ax.get_title().split("\n")) and "hybrid" in ax.get_title()
    assert "largest clusters in colour" in ax.get_legend().get_texts()[0].get_text()


def test_plots_carry_an_alt_text(client):
    """Gradio's alt text for a matplotlib figure is "{chart} plot visualising provided data"; ours fills chart."""
    status, sparsity, distortion, size, table, stale = client.predict("kmeans", 0, api_name="/compress")
    for plot in (sparsity, distortion, size):
        assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/png;base64,")
    assert "Encoder: 12 layers" in sparsity["chart"] and "distortion" in distortion["chart"].lower()
    assert "(x: " in distortion["chart"] or "(y: " in distortion["chart"]


# --- Evaluate this plan, tuning history -----------------------------------------------------------------------


def test_the_evaluation_clips_are_many_voices_and_new_sentences():
    from ui.evaluation import EVAL_DIR, eval_clips

    audios, refs = eval_clips()
    voices = {Path(a).stem.rsplit("_", 1)[0] for a in audios}
    assert len(audios) >= 12 and len(voices) >= 6
    elsewhere = set()
    for folder in ("benchmarks/clips/tune", "benchmarks/clips/test", "benchmarks/data", "assets"):
        elsewhere |= {p.read_text().strip().lower() for p in (ROOT / folder).glob("*.txt")}
    assert not {r.strip().lower() for r in refs} & elsewhere  # never used to choose a setting
    assert EVAL_DIR.parent == ROOT / "assets"


def test_evaluate_restore_and_download_the_history(client, tmp_path):
    with pytest.raises(Exception, match="(?i)compress"):
        client.predict(api_name="/evaluate_plan")
    client.predict(0.5, "ffn", api_name="/set_all_sliders")
    client.predict("magnitude", 0, api_name="/compress")
    history_summary, chart, points = client.predict(api_name="/evaluate_plan")
    assert "Plan #1" in history_summary and "12 clips" in history_summary and "WER original" in history_summary
    assert chart["type"] == "matplotlib" and "Tuning history" in chart["chart"]
    client.predict(0.2, "ffn", api_name="/set_all_sliders")
    client.predict("kmeans", 0, api_name="/compress")
    summary, chart, points = client.predict(api_name="/evaluate_plan")
    assert "Plan #2" in summary and points["value"] == 2 and len(points["choices"]) == 2
    client.predict("kmeans", 0, "channels", "", "latin", api_name="/compress")  # plan #2 + Latin vocabulary
    summary, chart, points = client.predict(api_name="/evaluate_plan")
    assert "Plan #3" in summary and "+ latin vocabulary" in points["choices"][-1][0]

    json_path, csv_path = client.predict(api_name="/download_history")
    history = json.loads(Path(json_path).read_text())
    assert [p["n"] for p in history] == [1, 2, 3] and [p["method"] for p in history] == ["magnitude", "kmeans", "kmeans"]
    assert [p["vocabulary"] for p in history] == [None, None, "latin"]
    assert history[2]["params_removed"] > history[1]["params_removed"] and history[2]["plan"] == history[1]["plan"]
    layers = tiny_layers()
    assert history[0]["plan"] == {l.name: k for l, k in Plan.from_sparsity(layers, 0.5, "ffn").active(layers)}
    assert 0 < history[1]["params_removed"] < history[0]["params_removed"]
    rows = Path(csv_path).read_text().splitlines()
    assert rows[0].startswith("n,model,method") and len(rows) == 4
    table = list(csv.DictReader(rows))
    assert [r["vocabulary"] for r in table] == ["", "", "latin"] and table[2]["method"] == "kmeans"

    *_, vocabulary = client.predict(3, api_name="/restore_plan")
    assert vocabulary["value"] == "latin"
    summary, editor, stale, method, vocabulary = client.predict(1, api_name="/restore_plan")  # plan #1 on the sliders
    assert method["value"] == "magnitude" and vocabulary["value"] == "all"
    assert {n: k for n, k in slider_values(editor).items() if k < next(l.channels for l in layers if l.name == n)} \
        == history[0]["plan"]
    assert "sliders changed since you pressed Compress" in stale  # the compressed model is plan #2's


def test_pareto_front_and_history_chart():
    from prunelab.report import plots

    pts = [(1.0, 10.0), (2.0, 12.0), (2.0, 20.0), (3.0, 11.0), (0.5, 10.0)]
    assert plots.pareto_front(pts) == [0, 3]  # (2, 12) and (2, 20) are beaten by (3, 11); (0.5, 10) by (1, 10)
    history = [{"n": i + 1, "method": m, "params_removed": x / 100, "wer": y / 100, "wer_original": 0.09}
               for i, ((x, y), m) in enumerate(zip(pts, ["kmeans", "kmeans", "magnitude", "predictive", "kmeans"]))]
    ax = plots.tuning_history_chart(history).axes[0]
    front = [l for l in ax.lines if l.get_linestyle() == "--"][0]
    assert list(front.get_xdata()) == [1.0, 3.0] and list(front.get_ydata()) == [10.0, 11.0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["kmeans", "magnitude", "predictive"] and "original model" in labels
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3", "4", "5"]


def test_measured_sensitivity_beside_the_data_free_one(monkeypatch):
    """Each group compressed alone: the chart's left bars are WER increases measured on the clips, the right
    bars the data-free distortion of the same groups (here faked transcripts make the measured side known)."""
    from ui.session import Session
    from ui.state import get_model
    from ui import evaluation, measured

    model = get_model("tiny:whisper")
    audios, refs = evaluation.eval_clips()
    calls = []

    def fake_clips(m, clips, report):  # the original is right; a model with block 1 compressed misses one clip
        calls.append(m)
        if m is model:
            return list(refs)
        block1 = any(".layers.1." in n for n in m.compression["plan"])
        return ["nothing"] + list(refs[1:]) if block1 else list(refs)

    monkeypatch.setattr(evaluation, "transcribe_clips", fake_clips)
    monkeypatch.setitem(evaluation._ORIGINAL, "tiny:whisper", (0.0, list(refs)))
    fig = measured.on_measure("encoder-fc1", 0.5, "kmeans", "block", Session(spec="tiny:whisper"),
                              progress=lambda *a, **k: None)
    left, right = fig.axes[:2]
    assert [t.get_text() for t in left.get_yticklabels()] == ["encoder block 0", "encoder block 1"]
    words = sum(len(r.split()) for r in refs)
    expected = 100 * len(refs[0].rstrip(".").split()) / words  # one clip's words all wrong, over all words
    assert [round(p.get_width(), 3) for p in left.patches] == pytest.approx([0.0, expected], abs=0.5)
    assert all(p.get_width() > 0 for p in right.patches) and len(right.patches) == 2
    assert len(calls) == 2  # one compressed model per group; the original's transcripts are cached

    layers = tiny_layers()
    by_kind = measured.group_layers(layers, "kind")
    assert "encoder fc1" in by_kind and "decoder cross.q" in by_kind
    assert sum(len(v) for v in by_kind.values()) == len(layers)


def test_reference_points_join_the_history(client):
    from ui.settings import DEFAULT_SPARSITY, DEFAULT_PRESET

    client.predict(0.3, "ffn", api_name="/set_all_sliders")
    summary, chart, points = client.predict(api_name="/reference_points")  # at the page's global sparsity
    assert summary.startswith(f"Reference points at {100 * DEFAULT_SPARSITY:.0f}% sparsity") and "recommended" in summary
    assert len(points["choices"]) == 3 and all("(reference)" in label for label, _ in points["choices"])
    json_path, _ = client.predict(api_name="/download_history")
    history = json.loads(Path(json_path).read_text())
    assert [p["method"] for p in history] == ["kmeans", "magnitude", "predictive"] and all(p["reference"] for p in history)
    layers = tiny_layers()
    assert history[0]["plan"] == {l.name: k for l, k in
                                  Plan.from_sparsity(layers, DEFAULT_SPARSITY, DEFAULT_PRESET).active(layers)}
    assert history[2]["units"] == "foldable" and all(".encoder." in n and n.endswith("fc1") for n in history[2]["plan"])
    # the recommended point uses the recommended allocation (round 4 of the study: per-layer "auto")
    from prunelab import CompressionConfig
    from prunelab.compression.resolve import resolve_plan
    from ui.state import get_model

    model = get_model("tiny:whisper")
    auto = resolve_plan(model, CompressionConfig(method="recommended", sparsity=DEFAULT_SPARSITY), layers)
    assert history[2]["plan"] == {l.name: k for l, k in auto.active(layers)}


def test_reference_points_are_drawn_hollow_and_left_out_of_the_front():
    from prunelab.report import plots

    history = [{"n": 1, "method": "kmeans", "params_removed": 0.02, "wer": 0.2, "wer_original": 0.1},
               {"n": 2, "method": "kmeans", "params_removed": 0.05, "wer": 0.1, "wer_original": 0.1, "reference": True}]
    ax = plots.tuning_history_chart(history).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "reference: kmeans" in labels and "Pareto front (1 plan)" in labels  # the reference beats #1 but is no plan


def test_long_actions_clear_their_old_result_in_the_browser_first():
    """Compress and Evaluate draw their progress over their result box: a browser-side event empties it first,
    so the progress text never overlaps the previous status (and an error never leaves it beside)."""
    demo = app.build_app(default_spec="tiny:whisper")
    by_id = {b._id: b for b in demo.blocks.values()}
    cleared = {}
    for fn in demo.fns.values():
        if fn.fn is None and fn.js:
            for target_id, _ in fn.targets:
                label = getattr(by_id.get(target_id), "value", None)
                cleared.setdefault(label, set()).update(getattr(by_id[o._id], "elem_id", None) for o in fn.outputs)
    assert {"pl-status", "pl-stale"} <= cleared.get("3 · Compress", set())
    assert "pl-eval-result" in cleared.get("Evaluate this plan", set())
    assert {"pl-text-original", "pl-text-compressed"} <= cleared.get("Transcribe with both models", set())
