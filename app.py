"""prunelab app: compress a speech model by clustering its channels, see what changed, and listen.

Run ``python app.py`` (offline, on the bundled Whisper-base). Environment:

* ``PRUNELAB_MODEL``: the model loaded at start (default ``bundled:whisper-base``; tests use ``tiny:whisper``).
* ``PRUNELAB_MAX_AUDIO_S``: longest clip accepted, in seconds (default 60).
* ``PRUNELAB_MAX_MODEL_GB``: refuse models whose weights are larger (default: a third of the RAM, at most 4).
* ``PRUNELAB_LAYER_CACHE_MB``: memory for cached per-layer clustering results (default 384).
* ``PORT`` / ``GRADIO_SERVER_PORT``, ``GRADIO_SERVER_NAME``: where to serve.

The UI only calls the library (:mod:`prunelab`): loading, planning, compressing, transcribing and
scoring all live there; this file wires them to Gradio components and turns library errors into
``gr.Error`` messages. Per-user state is a small dict in ``gr.State``; models are shared in small
bounded module-level caches.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from prunelab import plots
from prunelab.cache import LayerCache
from prunelab.compress import METHOD_HELP, METHODS, CompressionConfig, compress, layer_result
from prunelab.errors import PrunelabError
from prunelab.layers import LayerInfo, find_layers
from prunelab.models import DEFAULT_MODEL, SpeechModel, available_models, load_model
from prunelab.allocate import allocate
from prunelab.plan import PRESET_HELP, PRESETS, Plan
from prunelab.sensitivity import plot_sensitivity, sensitivity_curves
from prunelab.size import size_report

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"

DEFAULT_SPEC = os.environ.get("PRUNELAB_MODEL", "").strip() or DEFAULT_MODEL
MAX_AUDIO_S = float(os.environ.get("PRUNELAB_MAX_AUDIO_S", "") or 60)
LAYER_CACHE_MB = int(os.environ.get("PRUNELAB_LAYER_CACHE_MB", "") or 384)
MAX_LOADED_MODELS = 2  # original models shared by all sessions
MAX_COMPRESSED_MODELS = 3  # compressed models, one per session, least recently used dropped first
DEFAULT_SPARSITY = 0.2  # on Whisper-base, 20 % of the encoder FFN neurons (fc1, folded) keeps transcripts intact
DEFAULT_PRESET = "encoder-fc1"
UI_PRESETS = {  # the presets offered as buttons, with a readable name
    "uniform": "Uniform (all layers)",
    "ffn": "FFN only",
    "encoder": "Encoder only",
    "attention": "Attention only",
    "encoder-ffn": "Encoder FFN only",
    "fc1": "FFN hidden neurons only (fc1, folded)",
    "encoder-fc1": "Encoder FFN hidden neurons only (fc1, folded)",
    "decoder": "Decoder only",
}
METHOD_NAMES = {
    "kmeans": "k-means clustering (paper)",
    "magnitude": "Structured magnitude (baseline)",
    "magnitude-unstructured": "Unstructured magnitude (baseline)",
    "kmeans-weighted": "Importance-weighted k-means",
    "representative": "Representative channel per cluster (recommended at 10 %)",
    "hybrid": "Hybrid: drop dead channels, cluster the rest",
}
RECOMMENDATION = (
    "**Recommended** (WER study, Whisper-base, 28 clips): at 10 %, *Encoder FFN hidden neurons* + "
    "**Auto-allocate** + *Representative channel* (WER 5.9 % vs 4.2 % uncompressed; structured magnitude 12.4 %). "
    "At 20 %, the paper's *k-means* with *Set all sliders* is better (11.9 %). Clustering fc2 or attention "
    "outputs breaks Whisper-base quickly. See benchmarks/WER_STUDY.md."
)
HEAVY = "heavy"  # concurrency id of CPU-heavy events: one at a time on a small machine


def _default_max_model_bytes() -> int:
    env = os.environ.get("PRUNELAB_MAX_MODEL_GB", "").strip()
    if env:
        return int(float(env) * 1e9)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 * 10**9
    return int(min(4e9, ram / 3))


MAX_MODEL_BYTES = _default_max_model_bytes()


# --- shared, bounded caches ------------------------------------------------------------------------------


class _LRU:
    """A tiny thread-safe LRU dict with a fixed number of entries."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items


MODELS = _LRU(MAX_LOADED_MODELS)
COMPRESSED = _LRU(MAX_COMPRESSED_MODELS)
LAYER_CACHE = LayerCache(max_bytes=LAYER_CACHE_MB * 2**20)
_LOAD_LOCKS: dict[str, threading.Lock] = {}
_LOAD_LOCKS_GUARD = threading.Lock()
FILES = Path(tempfile.mkdtemp(prefix="prunelab-app-"))  # downloads; old ones are pruned
FILE_TTL_S = 3600


def get_model(spec: str) -> SpeechModel:
    """The shared original model for ``spec``, loading it once (several users may ask at the same time)."""
    spec = (spec or "").strip() or DEFAULT_SPEC
    model = MODELS.get(spec)
    if model is not None:
        return model
    with _LOAD_LOCKS_GUARD:
        lock = _LOAD_LOCKS.setdefault(spec, threading.Lock())
    with lock:
        model = MODELS.get(spec)
        if model is None:
            model = load_model(spec, max_bytes=MAX_MODEL_BYTES)
            MODELS.put(spec, model)
    return model


def _layers(spec: str) -> list[LayerInfo]:
    return find_layers(get_model(spec).model)


def _user_error(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), title="Cannot do that")


def _guard(fn: Callable) -> Callable:
    """Turn library errors (bad model id, audio, plan) into gr.Error messages; keep gr.Error as is."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except PrunelabError as exc:
            raise _user_error(exc) from exc
        except MemoryError as exc:
            raise gr.Error("The server ran out of memory: try a smaller model or fewer users at once.") from exc

    return wrapper


def _new_file(name: str) -> Path:
    """A fresh path under the app's download folder (files older than an hour are removed)."""
    now = time.time()
    for old in FILES.iterdir():
        try:
            if now - old.stat().st_mtime > FILE_TTL_S:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        except OSError:
            pass
    folder = FILES / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    return folder / name


# --- session state ---------------------------------------------------------------------------------------


def _new_session() -> dict:
    """Per-user state: the model spec, its plan {layer: K}, and the key of the user's compressed model."""
    return {"spec": None, "clusters": {}, "compressed": None, "compressed_plan": None}


def _require_model(sess: dict) -> tuple[SpeechModel, list[LayerInfo]]:
    if not sess or not sess.get("spec"):
        raise gr.Error("No model loaded yet: pick one and press Load model.")
    model = get_model(sess["spec"])
    return model, find_layers(model.model)


def _require_compressed(sess: dict) -> SpeechModel:
    key = (sess or {}).get("compressed")
    if not key:
        raise gr.Error("There is no compressed model yet: set the sliders and press Compress first.",
                       title="Compress first")
    model = COMPRESSED.get(key)
    if model is None:
        raise gr.Error("Your compressed model was dropped to free memory (other users compressed since): "
                       "press Compress again.", title="Compress again")
    return model


def _plan_summary(layers: list[LayerInfo], clusters: dict) -> str:
    plan = Plan(dict(clusters))
    total = sum(l.params for l in layers)
    sparsity = plan.sparsity(layers)
    return (f"**Plan:** {len(plan.active(layers))} of {len(layers)} layers compressed · "
            f"**{100 * sparsity:.1f}%** of the compressible parameters removed "
            f"({sparsity * total / 1e6:.2f} M of {total / 1e6:.2f} M)")


def _model_summary(model: SpeechModel, layers: list[LayerInfo]) -> str:
    enc = sum(l.part == "encoder" for l in layers)
    dec = len(layers) - enc
    kind = "Whisper (encoder–decoder)" if model.family == "whisper" else "CTC encoder"
    return (f"**{model.spec}** · {kind} · {model.num_parameters / 1e6:.1f} M parameters · "
            f"{len(layers)} compressible linear layers ({enc} encoder" + (f", {dec} decoder)" if dec else ")"))


def _layer_choices(layers: list[LayerInfo]) -> list[tuple[str, str]]:
    return [(f"{l.label}  ({l.out_features}×{l.in_features})", l.name) for l in layers]


def _default_layer(layers: list[LayerInfo]) -> str | None:
    for l in layers:
        if l.kind == "fc1":
            return l.name
    return layers[0].name if layers else None


# --- event handlers --------------------------------------------------------------------------------------


@_guard
def on_load(spec: str, sparsity: float, preset: str, sess: dict, rev: int, progress=gr.Progress()):
    """Load (or reuse) a model; set every slider from the global sparsity and preset."""
    spec = (spec or "").strip() or DEFAULT_SPEC
    progress(0.05, desc=f"Loading {spec} …")
    t0 = time.perf_counter()
    model = get_model(spec)
    seconds = time.perf_counter() - t0
    layers = find_layers(model.model)
    if not layers:
        raise gr.Error(f"{spec} has no layers prunelab can compress.")
    progress(0.9, desc="Building the sliders …")
    sess = {**_new_session(), "spec": spec,
            "clusters": Plan.from_sparsity(layers, float(sparsity), preset or DEFAULT_PRESET).clusters}
    choice = _default_layer(layers)
    info = _model_summary(model, layers) + (f" · loaded in {seconds:.1f} s" if seconds > 0.05 else " · already in memory")
    return (
        sess, (rev or 0) + 1, info, _plan_summary(layers, sess["clusters"]),
        plots.sparsity_chart(layers, sess["clusters"]),
        gr.Dropdown(choices=_layer_choices(layers), value=choice),
        gr.Dropdown(choices=_layer_choices(layers), value=choice),
        "Not compressed yet: press **Compress**.",
    )


@_guard
def on_preset(sparsity: float, preset: str, sess: dict, rev: int):
    """Set all sliders at once: ``sparsity`` on the layers the preset selects, the others uncompressed."""
    _, layers = _require_model(sess)
    clusters = Plan.from_sparsity(layers, float(sparsity), preset).clusters
    sess = {**sess, "clusters": clusters}
    return sess, (rev or 0) + 1, _plan_summary(layers, clusters), plots.sparsity_chart(layers, clusters)


@_guard
def on_auto(sparsity: float, preset: str, sess: dict, rev: int, progress=gr.Progress()):
    """Auto-allocate: K per layer from data-free sensitivity curves, ``sparsity`` over the preset's layers."""
    model, layers = _require_model(sess)
    progress(0, desc="Measuring each layer's sensitivity …")
    plan = allocate(model.model, float(sparsity), preset=preset, layers=layers, cache_key=model.spec,
                    progress=lambda i, n, msg: progress((i, n), desc=msg, unit="layers"))
    clusters = {l.name: plan.clusters.get(l.name, l.channels) for l in layers}
    sess = {**sess, "clusters": clusters}
    return sess, (rev or 0) + 1, _plan_summary(layers, clusters), plots.sparsity_chart(layers, clusters)


@_guard
def on_sensitivity(preset: str, sess: dict, progress=gr.Progress()):
    """Data-free sensitivity: each layer's clustering distortion against its sparsity."""
    model, layers = _require_model(sess)
    chosen = Plan.from_sparsity(layers, 0.5, preset).clusters
    curves = sensitivity_curves(model.model, [l for l in layers if l.name in chosen], cache_key=model.spec,
                                progress=lambda i, n, msg: progress((i, n), desc=msg, unit="layers"))
    return plot_sensitivity(curves)


@_guard
def on_plan_upload(file, sess: dict, rev: int):
    """Restore every slider from a plan JSON (as downloaded here or written by the CLI)."""
    if file is None:
        raise gr.Error("No plan file given.")
    _, layers = _require_model(sess)
    path = file if isinstance(file, str) else getattr(file, "name", file)
    plan = Plan.from_json(Path(path).read_text(encoding="utf-8", errors="replace"))
    plan.validate(layers)
    clusters = {l.name: plan.clusters.get(l.name, l.channels) for l in layers}
    sess = {**sess, "clusters": clusters}
    gr.Info(f"Plan restored: {len(plan.active(layers))} layers compressed.")
    return sess, (rev or 0) + 1, _plan_summary(layers, clusters), plots.sparsity_chart(layers, clusters)


def on_slider(name: str) -> Callable:
    """Handler for one layer's slider: store its K in the session plan."""

    def handler(k: float, sess: dict):
        if not sess or not sess.get("spec"):
            return sess, gr.skip()
        sess = {**sess, "clusters": {**sess["clusters"], name: int(k)}}
        try:
            layers = _layers(sess["spec"])
        except PrunelabError:
            return sess, gr.skip()
        return sess, _plan_summary(layers, sess["clusters"])

    return handler


def _slider_info(k: float, channels: int) -> str:
    return f"K = {int(k)} of C = {channels} → {100 * (1 - int(k) / channels):.0f}% sparse"


@_guard
def on_compress(method: str, seed: float, sess: dict, progress=gr.Progress()):
    """Compress the session's model with its plan; returns status, charts and the size table."""
    model, layers = _require_model(sess)
    plan = Plan({l.name: int(sess["clusters"].get(l.name, l.channels)) for l in layers})
    plan.validate(layers)
    if not plan.active(layers):
        raise gr.Error("Every slider is at K = C (nothing to compress): lower some sliders or apply a preset.")
    method = method if method in METHOD_NAMES else "kmeans"
    config = CompressionConfig(method=method, plan=plan, seed=int(seed or 0))
    progress(0, desc="Starting …")

    def report(i: int, n: int, message: str) -> None:
        progress((i, n), desc=message, unit="layers")

    t0 = time.perf_counter()
    compressed = compress(model, config, cache=LAYER_CACHE, progress=report)
    seconds = time.perf_counter() - t0
    key = sess.get("compressed") or uuid.uuid4().hex
    COMPRESSED.put(key, compressed)
    sess = {**sess, "compressed": key, "compressed_plan": dict(plan.clusters), "method": method,
            "seed": int(seed or 0), "compress_seconds": seconds}
    before, after = size_report(model), size_report(compressed)
    c = compressed.compression
    status = (f"✅ Compressed with **{METHOD_NAMES.get(method, method)}** in {seconds:.1f} s: "
              f"{100 * c['sparsity']:.1f}% of the compressible parameters removed, "
              f"{after.nonzero_params / 1e6:.2f} M non-zero parameters left of {before.nonzero_params / 1e6:.2f} M "
              f"({after.bytes / 1e6:.0f} MB in memory, was {before.bytes / 1e6:.0f} MB). "
              "Now go to **Listen & compare**.")
    return (sess, status, plots.sparsity_chart(layers, plan), plots.distortion_chart(c, layers),
            plots.size_chart(before, after), _size_table(before, after, c, layers))


def _size_table(before, after, compression: dict, layers: list[LayerInfo]) -> list[list[Any]]:
    modules = compression.get("modules", {})
    folded = sum(1 for l in layers if l.kind == "fc1" and l.name in modules
                 and modules[l.name]["type"] == "Linear" and modules[l.name]["out_features"] < l.out_features)
    rows = [
        ["parameters", before.params, after.params, "M"],
        ["non-zero parameters", before.nonzero_params, after.nonzero_params, "M"],
        ["in compressible layers", before.layer_params, after.layer_params, "M"],
        ["bytes in memory", before.bytes, after.bytes, "MB"],
    ]
    out = [[name, f"{a / 1e6:.2f} {u}", f"{b / 1e6:.2f} {u}", f"{100 * b / a:.1f}%" if a else "–"]
           for name, a, b, u in rows]
    out.append(["FFN pairs folded (smaller fc1, fc2)", "", str(folded), ""])
    return out


@_guard
def on_inspect(layer_name: str, method: str, seed: float, sess: dict):
    """Clusters of one layer at its current slider K: PCA scatter and cluster-size histogram."""
    model, layers = _require_model(sess)
    by_name = {l.name: l for l in layers}
    layer = by_name.get(layer_name) or by_name[_default_layer(layers)]
    k = int(sess["clusters"].get(layer.name, layer.channels))
    method = method if method in METHOD_NAMES else "kmeans"
    if method == "magnitude-unstructured":
        gr.Info("Unstructured pruning has no channel clusters; showing structured magnitude for this layer.")
        method = "magnitude"
    linear = model.model.get_submodule(layer.name)
    config = CompressionConfig(method=method, seed=int(seed or 0))
    groups = layer_result(model, layer, k, config, cache=LAYER_CACHE)
    title = f"{layer.label}: {layer.channels} channels → K = {k} ({METHOD_NAMES[method]})"
    note = (f"**{layer.label}** (`{layer.name}`): C = {layer.channels} channels of {layer.in_features} inputs"
            f"{' + bias' if layer.has_bias else ''}; K = {k} → sparsity {100 * (1 - k / layer.channels):.0f}%; "
            f"distortion {groups.distortion:.4g}.")
    return (plots.cluster_scatter(linear.weight, linear.bias, groups, title=title),
            plots.cluster_sizes(groups), note)


@_guard
def on_how(layer_name: str, k: float, seed: float, sess: dict):
    """The teaching figure: a real layer's channels, k-means with K clusters, and magnitude with the same K."""
    model, layers = _require_model(sess)
    by_name = {l.name: l for l in layers}
    layer = by_name.get(layer_name) or by_name[_default_layer(layers)]
    linear = model.model.get_submodule(layer.name)
    k = int(max(1, min(int(k), layer.channels)))
    fig = plots.how_it_works_figure(linear.weight, linear.bias, k, seed=int(seed or 0), layer_label=layer.label)
    groups = layer_result(model, layer, k, CompressionConfig(method="kmeans", seed=int(seed or 0)), cache=LAYER_CACHE)
    return fig, plots.fold_figure(groups.index, groups.k)


def list_examples() -> dict[str, tuple[Path, str]]:
    """Example clips in assets/: name -> (wav path, reference text or '')."""
    out = {}
    for wav in sorted(ASSETS.glob("*.wav")):
        txt = wav.with_suffix(".txt")
        out[wav.stem] = (wav, txt.read_text(encoding="utf-8").strip() if txt.is_file() else "")
    return out


def on_example(name: str):
    examples = list_examples()
    if not name or name not in examples:
        raise gr.Error(f"Unknown example {name!r}; choose one of: {', '.join(examples) or 'none available'}.")
    wav, ref = examples[name]
    return str(wav), ref


def _diff(reference: str, hypothesis: str) -> list[tuple[str, str | None]]:
    from prunelab.metrics import word_diff_detailed

    out: list[tuple[str, str | None]] = []
    for op, ref, hyp in word_diff_detailed(reference, hypothesis):
        if op == "equal":
            out.append((ref + " ", None))
        elif op == "substitute":
            out.append((f"{hyp} ", "wrong"))
            out.append((f"(was: {ref}) ", "should be"))
        elif op == "delete":
            out.append((f"{ref} ", "missing"))
        elif op == "insert":
            out.append((f"{hyp} ", "extra"))
    return out


def _transcribe_timed(model: SpeechModel, samples) -> tuple[str, float]:
    from prunelab.transcribe import transcribe

    t0 = time.perf_counter()
    text = transcribe(model, samples, 16000)
    return text, time.perf_counter() - t0


@_guard
def on_transcribe(audio, reference: str, sess: dict, progress=gr.Progress()):
    """Transcribe the clip with the original and the compressed model; WER and diffs with a reference."""
    from prunelab.audio import load_audio
    from prunelab.metrics import wer

    original, _ = _require_model(sess)
    if audio is None:
        raise gr.Error("No audio: upload a file, record one, or pick an example clip first.", title="No audio")
    samples = load_audio(audio, max_seconds=MAX_AUDIO_S)
    compressed = _require_compressed(sess)
    progress(0.05, desc="Original model …")
    text_a, sec_a = _transcribe_timed(original, samples)
    progress(0.5, desc="Compressed model …")
    text_b, sec_b = _transcribe_timed(compressed, samples)
    dur = len(samples) / 16000
    time_a = f"{sec_a:.2f} s for {dur:.1f} s of audio"
    time_b = f"{sec_b:.2f} s for {dur:.1f} s of audio" + (f" ({sec_b / sec_a:.2f}× the original's time)" if sec_a else "")
    reference = (reference or "").strip()
    if reference:
        wer_a, wer_b = wer(reference, text_a), wer(reference, text_b)
        summary = (f"**WER** against the reference: original **{100 * wer_a:.1f}%**, compressed "
                   f"**{100 * wer_b:.1f}%** ({'+' if wer_b >= wer_a else ''}{100 * (wer_b - wer_a):.1f} points).")
        diff_a, diff_b = _diff(reference, text_a), _diff(reference, text_b)
    else:
        summary = "Type a reference text (what is really said) to get word error rates and word-level diffs."
        diff_a = diff_b = None
    return text_a, time_a, text_b, time_b, summary, diff_a, diff_b


@_guard
def on_plan_download(method: str, seed: float, sess: dict):
    model, layers = _require_model(sess)
    plan = Plan({l.name: int(k) for l in layers if (k := sess["clusters"].get(l.name, l.channels)) < l.channels})
    path = _new_file("prunelab-plan.json")
    plan.to_json(path, method=method, seed=int(seed or 0), base_model=model.spec,
                 sparsity=round(plan.sparsity(layers), 4))
    return str(path)


@_guard
def on_model_download(sess: dict, progress=gr.Progress()):
    from prunelab.serialization import save_compressed

    compressed = _require_compressed(sess)
    progress(0.1, desc="Saving the compressed model …")
    path = _new_file("compressed.zip")
    folder = path.parent / "prunelab-compressed"
    save_compressed(compressed, folder)
    progress(0.6, desc="Zipping …")
    archive = shutil.make_archive(str(path.with_suffix("")), "zip", root_dir=folder.parent, base_dir=folder.name)
    shutil.rmtree(folder, ignore_errors=True)
    return archive


# --- layout ----------------------------------------------------------------------------------------------

INTRO = """
# ✂️ prunelab — shrink a speech model without data or training

Every linear layer of a speech model has **C output channels** (rows of its weight). prunelab groups
similar channels with **k-means** into **K clusters** and replaces each channel by its cluster's centroid,
so the layer keeps only K distinct rows: its **sparsity is 1 − K/C**. No audio, no fine-tuning.
*(Interspeech 2026: “Towards Data-free and Training-free Compression for Speech Foundation Models
Using Parameter Clustering”.)*

**1** pick a model → **2** set how many clusters each layer keeps → **3** compress →
**4** listen and compare transcripts → **5** download the smaller model.
"""

HOW_TEXT = """
### The idea in plain words

* A **linear layer** turns an input vector into **C output channels**. Channel *c* is computed from one
  row of the weight matrix (plus one bias value): *output[c] = row[c] · input + bias[c]*.
* Many rows are **similar**. k-means looks at the C rows (bias appended) as C points and finds
  **K clusters**; each cluster's **centroid** is the average of its rows.
* Every channel is replaced by its cluster's centroid. Channels in the same cluster now compute the
  **same** output, so the layer only has to store and compute **K rows instead of C**. The fraction of
  rows saved is the layer's **sparsity: 1 − K/C** (e.g. C = 2048, K = 1434 → 30 %).
* **Folding.** In a feed-forward block (fc1 → activation → fc2), channels of fc1 that share a centroid
  give identical activations. fc2 can therefore **add up their columns** and take K inputs instead of C:
  both layers become genuinely smaller dense layers — a smaller, faster model, not just a zero mask.
* No data and no training are needed: only the weights themselves.

**The baseline beside it:** *structured magnitude pruning* keeps the K channels with the largest norm and
drops the others (they output 0). *Unstructured magnitude pruning* zeroes the smallest individual
weights. The pictures below use the real channels of the layer you choose.
"""

CSS = """
#pl-intro h1 { margin-bottom: 0.2em; }
#pl-compress-btn { min-height: 48px; }
.pl-block-acc { margin-bottom: 2px; }
footer { display: none !important; }
"""

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="emerald")


def _transcript_column(which: str) -> tuple[gr.Textbox, gr.Textbox, gr.HighlightedText]:
    """One side of the comparison: the transcript, its time, and its highlighted diff against the reference."""
    with gr.Column():
        gr.Markdown(f"#### {which} model")
        text = gr.Textbox(label=f"{which} transcript", lines=3, elem_id=f"pl-text-{which.lower()}")
        seconds = gr.Textbox(label="Time", max_lines=1)
        diff = gr.HighlightedText(label="vs reference", show_legend=True, combine_adjacent=True, color_map=DIFF_COLORS)
    return text, seconds, diff


def build_app(default_spec: str | None = None) -> gr.Blocks:
    """The whole app; call ``.queue().launch(**launch_kwargs())`` (``launch_kwargs`` adds theme and CSS)."""
    spec0 = default_spec or DEFAULT_SPEC
    examples = list_examples()
    model_choices = list(dict.fromkeys([spec0, *available_models()]))

    with gr.Blocks(title="prunelab: data-free compression of speech models", delete_cache=(1800, 3600)) as demo:
        sess = gr.State(_new_session())
        rev = gr.State(0)  # bumped whenever all sliders must be rebuilt (new model, preset, uploaded plan)

        gr.Markdown(INTRO, elem_id="pl-intro")

        with gr.Tabs():
            # ------------------------------------------------------------------ 1-3: compress
            with gr.Tab("Compress", id="compress"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        with gr.Group():
                            model_box = gr.Dropdown(
                                model_choices, value=spec0, allow_custom_value=True, label="1 · Model",
                                info="Bundled Whisper-base (offline), tiny random demo models, or type a "
                                     "Hugging Face id (e.g. openai/whisper-tiny, facebook/hubert-large-ls960-ft).")
                            load_btn = gr.Button("Load model", size="sm")
                        model_md = gr.Markdown("Loading the default model …")
                        with gr.Group():
                            sparsity = gr.Slider(0.0, 0.9, value=DEFAULT_SPARSITY, step=0.05,
                                                 label="2 · Global sparsity (1 − K/C)",
                                                 info="Sets every selected layer's slider at once.",
                                                 elem_id="pl-global-sparsity")
                            with gr.Row(equal_height=True):
                                preset = gr.Dropdown([(v, k) for k, v in UI_PRESETS.items() if k in PRESETS],
                                                     value=DEFAULT_PRESET, label="Apply to (preset)", scale=3,
                                                     info="Which layers the global sparsity applies to; "
                                                          "the others keep all their channels.")
                                with gr.Column(scale=1, min_width=120):
                                    preset_btn = gr.Button("Set all sliders", elem_id="pl-preset-btn")
                                    auto_btn = gr.Button("Auto-allocate", size="sm", elem_id="pl-auto-btn")
                        with gr.Row(equal_height=True):
                            method = gr.Dropdown([(METHOD_NAMES[m], m) for m in METHOD_NAMES if m in METHODS],
                                                 value="kmeans", label="Method", info=METHOD_HELP["kmeans"], scale=3)
                            seed = gr.Number(0, precision=0, label="Seed", info="k-means init", minimum=0,
                                             scale=1, min_width=90)
                        gr.Markdown(RECOMMENDATION, elem_id="pl-recommendation")
                        compress_btn = gr.Button("3 · Compress", variant="primary", elem_id="pl-compress-btn")
                        status_md = gr.Markdown("Not compressed yet.", elem_id="pl-status")
                    with gr.Column(scale=3, min_width=420):
                        plan_md = gr.Markdown("", elem_id="pl-plan")
                        gr.Markdown("**Clusters per layer.** Each slider is a layer's K (clusters kept out of C "
                                    "channels); its sparsity is 1 − K/C. Grouped by encoder/decoder and block.")

                        @gr.render(inputs=[sess], triggers=[rev.change])
                        def layer_sliders(s: dict):
                            if not s or not s.get("spec") or s["spec"] not in MODELS:
                                gr.Markdown("*Load a model to get one slider per layer.*")
                                return
                            layers = find_layers(get_model(s["spec"]).model)
                            for part in ("encoder", "decoder"):
                                part_layers = [l for l in layers if l.part == part]
                                if not part_layers:
                                    continue
                                blocks = sorted({l.block for l in part_layers})
                                with gr.Accordion(f"{part.capitalize()} · {len(blocks)} blocks, "
                                                  f"{len(part_layers)} layers", open=True,
                                                  key=f"acc-{s['spec']}-{part}"):
                                    for b in blocks:
                                        bl = [l for l in part_layers if l.block == b]
                                        plan = Plan(s["clusters"])
                                        bs = 100 * plan.sparsity(bl)
                                        with gr.Accordion(f"{part} block {b} · {len(bl)} layers · {bs:.0f}% sparse",
                                                          open=b == blocks[0], elem_classes="pl-block-acc",
                                                          key=f"acc-{s['spec']}-{part}-{b}"):
                                            for i in range(0, len(bl), 2):
                                                with gr.Row():
                                                    for layer in bl[i:i + 2]:
                                                        k = int(s["clusters"].get(layer.name, layer.channels))
                                                        sl = gr.Slider(
                                                            1, layer.channels, value=k, step=1,
                                                            label=f"{layer.label}", min_width=200,
                                                            info=_slider_info(k, layer.channels),
                                                            key=f"k-{s['spec']}-{layer.name}",
                                                            preserved_by_key=None,
                                                            elem_classes="pl-layer-slider", interactive=True,
                                                        )
                                                        sl.change(on_slider(layer.name), [sl, sess], [sess, plan_md],
                                                                  api_visibility="private", show_progress="hidden",
                                                                  trigger_mode="always_last", queue=False)
                                                        sl.release(
                                                            lambda v, c=layer.channels: gr.Slider(info=_slider_info(v, c)),
                                                            sl, sl, api_visibility="private", show_progress="hidden",
                                                            queue=False)

                with gr.Row():
                    with gr.Column():
                        plan_file_in = gr.File(label="Restore sliders from a plan JSON", file_types=[".json"],
                                               type="filepath", height=110)
                    with gr.Column():
                        plan_dl_btn = gr.Button("Download plan JSON", size="sm")
                        plan_file_out = gr.File(label="Plan JSON", interactive=False, height=110)
                    with gr.Column():
                        model_dl_btn = gr.Button("5 · Download compressed model (.zip)", size="sm")
                        model_file_out = gr.File(label="Compressed model (safetensors + config + plan)",
                                                 interactive=False, height=110)

            # ------------------------------------------------------------------ 4: inspect
            with gr.Tab("See what changed", id="inspect") as inspect_tab:
                sparsity_plot = gr.Plot(label="Sparsity per layer (1 − K/C)", format="png", show_label=False)
                with gr.Row():
                    size_plot = gr.Plot(label="Size before / after", format="png", show_label=False)
                    size_df = gr.Dataframe(headers=["", "original", "compressed", "kept"], label="Sizes",
                                           interactive=False, wrap=True)
                distortion_plot = gr.Plot(label="Clustering distortion per layer", format="png", show_label=False)
                gr.Markdown("### Where can this model be compressed? (data-free sensitivity)\n"
                            "Each line is a layer's importance-weighted clustering distortion as its sparsity "
                            "grows, for the layers of the chosen preset. Flat, low lines compress cheaply; "
                            "**Auto-allocate** on the Compress tab spends the sparsity where lines are lowest.")
                sens_btn = gr.Button("Measure sensitivity", size="sm")
                sens_plot = gr.Plot(label="Sensitivity", format="png", show_label=False)
                gr.Markdown("### Channel clusters of one layer (at its slider's K)")
                with gr.Row():
                    inspect_layer = gr.Dropdown([], label="Layer", scale=3)
                    inspect_btn = gr.Button("Show clusters", scale=1)
                inspect_md = gr.Markdown("")
                with gr.Row():
                    scatter_plot = gr.Plot(label="Channels in PCA space, coloured by cluster", format="png", show_label=False)
                    sizes_plot = gr.Plot(label="Cluster sizes", format="png", show_label=False)

            # ------------------------------------------------------------------ 5: listen
            with gr.Tab("Listen & compare", id="listen"):
                with gr.Row():
                    with gr.Column(scale=2):
                        audio = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                         label=f"Audio (upload or record, at most {MAX_AUDIO_S:.0f} s)")
                        example = gr.Dropdown(list(examples), value=None, label="… or pick an example clip",
                                              info="Fills the audio and its reference text.")
                    with gr.Column(scale=2):
                        reference = gr.Textbox(label="Reference text (what is really said; optional)", lines=3)
                        transcribe_btn = gr.Button("Transcribe with both models", variant="primary")
                        wer_md = gr.Markdown("")
                with gr.Row():
                    text_a, time_a, diff_a = _transcript_column("Original")
                    text_b, time_b, diff_b = _transcript_column("Compressed")

            # ------------------------------------------------------------------ 6: learn
            with gr.Tab("How it works", id="how") as how_tab:
                gr.Markdown(HOW_TEXT)
                with gr.Row():
                    how_layer = gr.Dropdown([], label="Layer", scale=3)
                    how_k = gr.Slider(1, 64, value=8, step=1, label="K (clusters) for the picture", scale=2)
                    how_btn = gr.Button("Draw", scale=1)
                how_plot = gr.Plot(label="Channels, k-means clusters and the magnitude baseline", format="png", show_label=False)
                gr.Markdown("**Folding an FFN pair:** channels of fc1 with the same colour share one row; "
                            "fc2 adds up their columns, so both layers shrink from C to K.")
                fold_plot = gr.Plot(label="Folding", format="png", show_label=False)

        # ------------------------------------------------------------------ wiring
        load_inputs = [model_box, sparsity, preset, sess, rev]
        load_outputs = [sess, rev, model_md, plan_md, sparsity_plot, inspect_layer, how_layer, status_md]
        load_btn.click(on_load, load_inputs, load_outputs, api_name="load_model",
                       concurrency_id=HEAVY, concurrency_limit=1)
        model_box.select(on_load, load_inputs, load_outputs, api_visibility="private",
                        concurrency_id=HEAVY, concurrency_limit=1)
        demo.load(on_load, load_inputs, load_outputs, api_visibility="private",
                  concurrency_id=HEAVY, concurrency_limit=1)
        preset_btn.click(on_preset, [sparsity, preset, sess, rev], [sess, rev, plan_md, sparsity_plot],
                         api_name="set_all_sliders")
        auto_btn.click(on_auto, [sparsity, preset, sess, rev], [sess, rev, plan_md, sparsity_plot],
                       api_name="auto_allocate", concurrency_id=HEAVY, concurrency_limit=1)
        sens_btn.click(on_sensitivity, [preset, sess], sens_plot, api_name="sensitivity",
                       concurrency_id=HEAVY, concurrency_limit=1)
        method.change(lambda m: gr.Dropdown(info=METHOD_HELP.get(m, "")), method, method,
                      api_visibility="private", show_progress="hidden", queue=False)
        plan_file_in.upload(on_plan_upload, [plan_file_in, sess, rev], [sess, rev, plan_md, sparsity_plot],
                            api_name="upload_plan")
        compress_btn.click(on_compress, [method, seed, sess],
                           [sess, status_md, sparsity_plot, distortion_plot, size_plot, size_df],
                           api_name="compress", concurrency_id=HEAVY, concurrency_limit=1)
        plan_dl_btn.click(on_plan_download, [method, seed, sess], plan_file_out, api_name="download_plan")
        model_dl_btn.click(on_model_download, [sess], model_file_out, api_name="download_model",
                           concurrency_id=HEAVY, concurrency_limit=1)
        inspect_btn.click(on_inspect, [inspect_layer, method, seed, sess], [scatter_plot, sizes_plot, inspect_md],
                          api_name="inspect_layer", concurrency_id=HEAVY, concurrency_limit=1)
        for trigger in (inspect_layer.input, inspect_tab.select):
            trigger(on_inspect, [inspect_layer, method, seed, sess], [scatter_plot, sizes_plot, inspect_md],
                    api_visibility="private", concurrency_id=HEAVY, concurrency_limit=1, trigger_mode="always_last")
        example.input(on_example, example, [audio, reference], api_name="pick_example")
        transcribe_btn.click(on_transcribe, [audio, reference, sess],
                             [text_a, time_a, text_b, time_b, wer_md, diff_a, diff_b],
                             api_name="transcribe", concurrency_id=HEAVY, concurrency_limit=1)
        how_btn.click(on_how, [how_layer, how_k, seed, sess], [how_plot, fold_plot], api_name="how_it_works",
                      concurrency_id=HEAVY, concurrency_limit=1)
        for trigger in (how_layer.input, how_k.release, how_tab.select):
            trigger(on_how, [how_layer, how_k, seed, sess], [how_plot, fold_plot], api_visibility="private",
                    concurrency_id=HEAVY, concurrency_limit=1, trigger_mode="always_last")
    return demo


DIFF_COLORS = {"wrong": "#f4a261", "should be": "#d9d9d9", "missing": "#e76f51", "extra": "#8ecae6"}


def launch_kwargs() -> dict:
    """Theme and CSS (Gradio 6 takes them in ``launch()``)."""
    return {"theme": THEME, "css": CSS}


def main() -> None:
    port = os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("PORT")
    demo = build_app()
    demo.queue(max_size=32, default_concurrency_limit=2).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"),
        server_port=int(port) if port else None,
        max_file_size="100mb",
        **launch_kwargs(),
    )


if __name__ == "__main__":
    main()
