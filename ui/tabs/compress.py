"""The Compress tab (steps 1-3 and 5): pick a model, set each layer's K, compress, download.

Loading sets every slider from the global sparsity and preset; "Set all sliders" (also: releasing the
global sparsity slider, choosing a preset) and "Auto-allocate" set them again (the latter from data-free
sensitivity curves); a plan JSON restores them, with its method. Each of these is one round trip that
returns every slider at once (:mod:`ui.sliders`). Compress runs
the library's ``compress()`` on the session's plan and stores the result in :data:`ui.state.COMPRESSED`
under the session's key (:func:`ui.session.keep_compressed`), then fills the charts of the See what changed tab.
"""
from __future__ import annotations

import json
import shutil
import time
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import sliders
from ..events import HEAVY, INSTANT, PRIVATE, guard
from ..lib import (METHODS, PRESETS, CompressionConfig, LayerInfo, Plan, SpeechModel, allocate, presets_selecting,
                   available_models, compress, find_layers, plots, save_compressed, size_report, size_rows,
                   vocabulary_savings)
from ..session import (Session, default_layer, keep_compressed, layer_choices, plan_summary, require_compressed,
                       require_model, session_file, step_of)
from ..options import has_options, options_json, parse_options
from ..settings import (DEFAULT_METHOD, DEFAULT_PRESET, DEFAULT_SPARSITY, DEFAULT_SPEC, UI_PRESETS, known_method,
                        method_choices, method_label)
from ..state import LAYER_CACHE, get_model

if TYPE_CHECKING:
    from .changes import ChangesTab
    from .how import HowTab
    from .listen import ListenTab

UNIT_CHOICES = {
    "Output channels of each layer (the paper)": "channels",
    "Foldable units: FFN neurons, attention value and query/key dims per head": "foldable",
}

VOCABULARY_LABELS = {"all": "All tokens (every language)",
                     "latin": "Latin-script tokens only (English, French, Spanish, German, …)",
                     "ascii": "ASCII tokens only (English)"}
"""Decoder vocabulary choices (Whisper only): the library's ``vocabulary`` option, decided from the tokenizer.
Loading a model (also the page's first load) adds what each removes from it (:func:`vocabulary_radio`)."""

VOCABULARY_INFO = ("Keep only the tokens of the scripts you will transcribe: the token embedding and the output "
                   "layer shrink; decided from the tokenizer, no audio. Transcripts in those scripts stay the same.")


def vocabulary_radio(model: SpeechModel) -> gr.Radio:
    """The vocabulary choices for a freshly loaded ``model``, each with the share of ITS parameters it removes
    (what Compress will report); for a CTC model, which writes characters, the choice is fixed at every token.
    Back to "all" either way."""
    savings = vocabulary_savings(model)
    every = [(VOCABULARY_LABELS["all"], "all")]
    if not savings:  # (the choices stay, so that a caller of the API who sends one gets the library's reason)
        return gr.Radio(choices=every + [(f"{VOCABULARY_LABELS[s]}: Whisper only", s) for s in ("latin", "ascii")],
                        value="all", interactive=False,
                        info="Only Whisper's decoder has a token vocabulary to trim; this model writes characters.")
    return gr.Radio(choices=every + [(f"{VOCABULARY_LABELS[s]}: −{100 * f:.2f} % of this model", s)
                                     for s, f in savings.items()], value="all", interactive=True, info=VOCABULARY_INFO)

RECOMMENDATION = (
    "**Recommended** (chosen on tune clips, reported on 48 fresh test clips; Whisper-base, uncompressed 12.6 % "
    "WER): *Encoder FFN neurons (fc1, folded)* + *Foldable units* + **Predictive fold** with **Auto-allocate** — "
    "test WER 16.2 % at 10 % (the paper's k-means 21.5 %, structured magnitude 23.6 %), 26.0 % at 20 % (57.4 %, "
    "110.0 %), 49.1 % at 30 % (154.3 %, 215.3 %). Same test WER as the original: *Decoder self-attention query/key "
    "dims* at 50 % + **Auto-allocate** + *Low-rank query/key* (2.2 % of all parameters; 48 more fresh clips: 19.1 % "
    "vs 19.5 %) and, for English only, the ASCII vocabulary (8.1 % more). See benchmarks/WER_STUDY.md."
)


CLEAR_STATUS_JS = "() => ['Compressing …', '']"
"""Runs in the browser when Compress is pressed: the last status goes, so the progress text is not drawn over it."""


@dataclass
class CompressTab:
    model_box: gr.Dropdown
    load_btn: gr.Button
    model_md: gr.Markdown
    sparsity: gr.Slider
    preset: gr.Dropdown
    preset_btn: gr.Button
    auto_btn: gr.Button
    method: gr.Dropdown
    seed: gr.Number
    options: gr.Textbox
    units: gr.Radio
    vocabulary: gr.Radio
    compress_btn: gr.Button
    status_md: gr.Markdown
    stale_md: gr.Markdown
    plan_md: gr.Markdown
    editor: gr.HTML
    plan_file_in: gr.File
    plan_dl_btn: gr.Button
    plan_file_out: gr.File
    model_dl_btn: gr.Button
    model_file_out: gr.File


# --- handlers --------------------------------------------------------------------------------------------


def model_summary(model: SpeechModel, layers: list[LayerInfo]) -> str:
    enc = sum(l.part == "encoder" for l in layers)
    dec = len(layers) - enc
    kind = "Whisper (encoder–decoder)" if model.family == "whisper" else "CTC encoder"
    return (f"**{model.spec}** · {kind} · {model.num_parameters / 1e6:.1f} M parameters · "
            f"{len(layers)} compressible linear layers ({enc} encoder" + (f", {dec} decoder)" if dec else ")"))


@guard
def on_load(spec: str, sparsity: float, preset: str, sess: Session, rev: int, progress=gr.Progress()):
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
    presets = model_presets(layers)
    preset = preset if preset in presets else DEFAULT_PRESET if DEFAULT_PRESET in presets else next(iter(presets))
    clusters = Plan.from_sparsity(layers, float(sparsity), preset).clusters
    sess = Session(spec=spec, clusters=clusters)  # a new model: a new plan, and no compressed model yet
    choice = default_layer(layers)
    info = model_summary(model, layers) + (f" · loaded in {seconds:.1f} s" if seconds > 0.05 else " · already in memory")
    rev = (rev or 0) + 1
    return (
        sess, rev, info, plan_summary(layers, sess.clusters),
        gr.Dropdown(choices=layer_choices(layers), value=choice),
        gr.Dropdown(choices=layer_choices(layers), value=choice),
        "Not compressed yet: press **Compress**.",
        sliders.editor_html(layers, sess.clusters, rev), "", vocabulary_radio(model),
        gr.Dropdown(choices=[(UI_PRESETS[p], p) for p in presets], value=preset),
    )


def model_presets(layers: list[LayerInfo]) -> list[str]:
    """The offered presets that select at least one of ``layers`` (a CTC model has no decoder presets)."""
    usable = presets_selecting(layers)
    return [p for p in UI_PRESETS if p in usable]


def on_compress_failed(sess: Session):
    """After a failed Compress (the message box says why), the status no longer says "Compressing …": it says
    which model Listen & compare and the downloads still use; the stale note is computed again."""
    if sess is None or not sess.spec:
        return "Not compressed.", ""
    if not sess.compressed or sess.config is None:
        return "Not compressed yet: the last Compress did not run (see the message).", ""
    _, layers = require_model(sess)
    return (f"The last Compress did not run (see the message); the model compressed before with "
            f"**{method_label(sess.config.method)}** is still the one in use.", sliders.stale_note(sess, layers))


def on_load_failed(sess: Session):
    """After a failed load the model box goes back to the model still in use (the one Compress would use)."""
    return gr.Dropdown(value=sess.spec) if sess is not None and sess.spec else gr.skip()


@guard
def on_preset(sparsity: float, preset: str, sess: Session, rev: int):
    """Set all sliders at once: ``sparsity`` on the layers the preset selects, the others uncompressed."""
    _, layers = require_model(sess)
    return sliders.new_plan(sess, rev, layers, Plan.from_sparsity(layers, float(sparsity), preset).clusters)


@guard
def on_auto(sparsity: float, preset: str, sess: Session, rev: int, progress=gr.Progress()):
    """Auto-allocate: K per layer from data-free sensitivity curves, ``sparsity`` over the preset's layers."""
    model, layers = require_model(sess)
    progress(0, desc="Measuring each layer's sensitivity …")
    plan = allocate(model.model, float(sparsity), preset=preset, layers=layers, cache_key=model.spec,
                    progress=lambda i, n, msg: progress((i, n), desc=msg, unit="layers"))
    return sliders.new_plan(sess, rev, layers, {l.name: plan.clusters.get(l.name, l.channels) for l in layers})


def _uploaded_plan(file, sess: Session) -> tuple[Plan, str, list[LayerInfo]]:
    """The plan in an uploaded JSON file (its text too), checked against the session's model."""
    if file is None:
        raise gr.Error("No plan file given.")
    _, layers = require_model(sess)
    path = Path(file if isinstance(file, str) else getattr(file, "name", file))
    plan = Plan.from_json(path)
    plan.validate(layers)
    return plan, path.read_text(encoding="utf-8", errors="replace"), layers


@guard
def on_plan_check(file, sess: Session) -> None:
    """Refuse a plan file that cannot be restored, in an event with no outputs: only the message shows, and
    the sliders and the method stay usable (an error in the restoring event would mark each of them)."""
    _uploaded_plan(file, sess)


@guard
def on_plan_upload(file, sess: Session, rev: int):
    """Restore every slider from a plan JSON (as downloaded here or written by the CLI)."""
    plan, text, layers = _uploaded_plan(file, sess)
    out = sliders.new_plan(sess, rev, layers, {l.name: plan.clusters.get(l.name, l.channels) for l in layers})
    saved = plan_method(text)
    gr.Info(f"Plan restored: {len(plan.active(layers))} layers compressed"
            + (f", method {method_label(saved)}." if saved else "."))
    return (*out, gr.Dropdown(value=saved) if saved else gr.skip())


def plan_method(text: str) -> str | None:
    """The method a plan JSON was saved with (``"method"``, as Download plan JSON writes it), if the app has it."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    method = data.get("method") if isinstance(data, dict) else None
    return method if isinstance(method, str) and method in METHODS else None


def on_method(method: str):
    """A new method: its help, its options' defaults (the box only where it has options), and foldable units
    chosen for a unit-level method (it cannot compress output channels); other methods keep the user's units."""
    m = METHODS.get(method)
    return (gr.Dropdown(info=m.help if m else ""), gr.Textbox(value=options_json(method), visible=has_options(method)),
            gr.Radio(value="foldable") if m is not None and m.folds else gr.skip())


@guard
def on_compress(method: str, seed: float, sess: Session, units: str = "channels", options: str = "",
                vocabulary: str = "all", progress=gr.Progress()):
    """Compress the session's model with its plan; returns status, charts and the size table."""
    model, layers = require_model(sess)
    plan = Plan({l.name: sess.k(l) for l in layers})
    plan.validate(layers)
    vocabulary = vocabulary if vocabulary in VOCABULARY_LABELS and vocabulary != "all" else None
    if vocabulary and model.family != "whisper":
        raise gr.Error("The decoder vocabulary can only be trimmed in Whisper models; this CTC model writes "
                       "characters. Choose 'All tokens'.")
    if not plan.active(layers) and not vocabulary:
        raise gr.Error("Every slider is at K = C (nothing to compress): lower some sliders or apply a preset.")
    method = known_method(method)
    units = units if units in UNIT_CHOICES.values() else "channels"
    notes: list[str] = []
    if units == "foldable":
        plan, notes = sliders.foldable_plan(layers, plan.clusters)
        if not plan.clusters and not vocabulary:
            raise gr.Error("No slider of a foldable unit (FFN fc1, attention v or q) is below K = C: lower one, or "
                           "choose 'Output channels of each layer'.")
    config = CompressionConfig(method=method, plan=plan, seed=int(seed or 0), units=units,
                               options=parse_options(method, options), vocabulary=vocabulary)
    progress(0, desc="Starting …")

    def report(i: int, n: int, message: str) -> None:
        progress((i, n), desc=message, unit="layers")

    t0 = time.perf_counter()
    compressed = compress(model, config, cache=LAYER_CACHE, progress=report)
    seconds = time.perf_counter() - t0
    sess = keep_compressed(sess, compressed, config, seconds)  # rebuilt from config if set aside for memory
    sess = replace(sess, vocabulary=vocabulary or "all")
    before, after = size_report(model), size_report(compressed)
    c = compressed.compression
    defaults = asdict(type(config.options)())
    changed = {k: v for k, v in asdict(config.options).items() if v != defaults[k]}
    status = (f"✅ Compressed with **{method_label(method)}**"
              + (f" (options {', '.join(f'{k}={v}' for k, v in changed.items())})" if changed else "")
              + f" ({'foldable units' if units == 'foldable' else 'output channels'})"
              f" in {seconds:.1f} s: **{100 * c['params_removed']:.2f}% of all the model's parameters really removed** "
              f"({before.params / 1e6:.2f} M → {after.params / 1e6:.2f} M; the sliders remove "
              f"{100 * c['sparsity']:.1f}% of the compressible layers' parameters before folding; "
              f"{after.nonzero_params / 1e6:.2f} M non-zero parameters left, "
              f"{after.bytes / 1e6:.0f} MB in memory, was {before.bytes / 1e6:.0f} MB). "
              + (f"Decoder vocabulary: {c['vocabulary']['kept']:,} of {c['vocabulary']['vocab_size']:,} tokens kept "
                 f"({c['vocabulary']['script']}). " if c.get("vocabulary") else "")
              + "".join(f"Note: {n}. " for n in notes) + "Now go to **Listen & compare**.")
    return (sess, status, plots.sparsity_chart(layers, plan), plots.distortion_chart(c, layers),
            plots.size_chart(before, after), size_table(before, after, c, layers), "")


@guard
def on_vocabulary(vocabulary: str, sess: Session):
    """A new decoder vocabulary choice: remembered in the session, and the stale note says whether the compressed
    model was made with another one."""
    if sess is None or not sess.spec:
        return gr.skip(), gr.skip()
    sess = replace(sess, vocabulary=vocabulary if vocabulary in VOCABULARY_LABELS else "all")
    _, layers = require_model(sess)
    return sess, sliders.stale_note(sess, layers)


@guard
def on_method_settings(method: str, seed: float, units: str, options: str, sess: Session):
    """A method setting changed on screen (method, seed, units or options): remembered in the session, and the
    stale note says whether the compressed model was made with other settings."""
    if sess is None or not sess.spec:
        return gr.skip(), gr.skip()
    sess = replace(sess, on_screen={"method": method, "seed": seed, "units": units, "options": options})
    _, layers = require_model(sess)
    return sess, sliders.stale_note(sess, layers)


def size_table(before, after, compression: dict, layers: list[LayerInfo]) -> list[list[Any]]:
    """Rows of the Sizes table: parameters, non-zero ones, those in compressible layers, bytes; FFN pairs folded."""
    modules = compression.get("modules", {})
    folded = sum(1 for l in layers if l.kind == "fc1" and l.name in modules
                 and modules[l.name]["type"] == "Linear" and modules[l.name]["out_features"] < l.out_features)
    out = [[name, f"{a / 1e6:.2f} {'MB' if name.startswith('bytes') else 'M'}",
            f"{b / 1e6:.2f} {'MB' if name.startswith('bytes') else 'M'}", f"{100 * ratio:.1f}%" if a else "–"]
           for name, a, b, ratio in size_rows(before, after)]
    out.append(["FFN pairs folded (smaller fc1, fc2)", "", str(folded), ""])
    return out


@guard
def on_plan_download(method: str, seed: float, sess: Session, units: str = "channels"):
    """The plan being edited as JSON (only the compressed layers), with method, seed, units and base model:
    ``prunelab compress --plan`` applies it with that method and those units (foldable units: as Compress
    builds them from the sliders, attention K rounded to whole heads)."""
    model, layers = require_model(sess)
    units = units if units in UNIT_CHOICES.values() else "channels"
    plan = Plan({l.name: k for l in layers if (k := sess.k(l)) < l.channels})
    if units == "foldable":
        plan = sliders.foldable_plan(layers, plan.clusters)[0]
    path = session_file("prunelab-plan.json")
    plan.to_json(path, method=method, seed=int(seed or 0), base_model=model.spec, units=units,
                 sparsity=round(plan.sparsity(layers), 4))
    return str(path)


@guard
def on_model_download(sess: Session, progress=gr.Progress()):
    """The compressed model as a zip of its saved folder (safetensors + config + plan), stored without deflating:
    for Whisper-base (a k-means 20 % plan) deflating took 110 s on 2 cores for 284 -> 163 MB (level 1: 17 s,
    175 MB), storing 0.4 s; the weights are float32 copies of float16 ones, which is what deflate found."""
    compressed = require_compressed(sess)
    progress(0.1, desc="Saving the compressed model …")
    step = step_of(compressed.compression)  # the model in use: compressed, repaired or fine-tuned (Recover tab)
    path = session_file("compressed.zip" if step == "compressed" else f"compressed-{step}.zip")
    folder = path.parent / "prunelab-compressed"
    save_compressed(compressed, folder)
    progress(0.6, desc="Zipping …")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder.parent))
    shutil.rmtree(folder, ignore_errors=True)
    return str(path)


# --- layout and events -----------------------------------------------------------------------------------


def build(sess: gr.State, rev: gr.State, spec0: str) -> CompressTab:
    model_choices = list(dict.fromkeys([spec0, *available_models()]))
    with gr.Tab("Compress", id="compress"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                with gr.Group():
                    model_box = gr.Dropdown(
                        model_choices, value=spec0, allow_custom_value=True, label="1 · Model",
                        info="Bundled Whisper-base (offline), tiny random demo models, or type a "
                             "Hugging Face id (e.g. openai/whisper-tiny, facebook/hubert-large-ls960-ft).")
                    load_btn = gr.Button("Load model", size="sm")
                model_md = gr.Markdown("Loading the default model …", elem_id="pl-model-info")
                with gr.Group():
                    sparsity = gr.Slider(0.0, 0.9, value=DEFAULT_SPARSITY, step=0.05,
                                         label="2 · Global sparsity (1 − K/C)",
                                         info="Releasing it sets every slider of the layers chosen below "
                                              "(as Set all sliders does); the others keep all their channels.",
                                         elem_id="pl-global-sparsity")
                    with gr.Row(equal_height=True):
                        preset = gr.Dropdown([(v, k) for k, v in UI_PRESETS.items() if k in PRESETS],
                                             value=DEFAULT_PRESET, label="Apply to (preset)", scale=3, min_width=300,
                                             info="Which layers the global sparsity applies to; "
                                                  "choosing one sets the sliders.")
                        with gr.Column(scale=1, min_width=120):
                            preset_btn = gr.Button("Set all sliders", elem_id="pl-preset-btn")
                            auto_btn = gr.Button("Auto-allocate", size="sm", elem_id="pl-auto-btn")
                with gr.Row(equal_height=True):
                    method = gr.Dropdown(method_choices(),
                                         value=DEFAULT_METHOD, label="Method", info=METHODS[DEFAULT_METHOD].help,
                                         scale=3, min_width=200)
                    seed = gr.Number(0, precision=0, label="Seed", info="k-means init", minimum=0,
                                     scale=1, min_width=90)
                options = gr.Textbox(options_json(DEFAULT_METHOD), label="Method options (JSON)",
                                     info="The method's switches, e.g. kmeans-fold's compensation switches "
                                          '{"variance": true, "mean_shift": true}; empty = defaults.',
                                     visible=has_options(DEFAULT_METHOD), max_lines=3, elem_id="pl-options")
                units = gr.Radio(list(UNIT_CHOICES.items()), value="channels", label="What is clustered",
                                 info="Foldable units shrink fc1 with fc2, v with out_proj and q with k_proj per head, "
                                      "never touching the residual stream; only fc1, v and q sliders count there. "
                                      "The predictive method needs them.", elem_id="pl-units")
                vocabulary = gr.Radio([(l, v) for v, l in VOCABULARY_LABELS.items()], value="all", label="Decoder vocabulary (Whisper)",
                                      info=VOCABULARY_INFO, elem_id="pl-vocab")
                gr.Markdown(RECOMMENDATION, elem_id="pl-recommendation")
                compress_btn = gr.Button("3 · Compress", variant="primary", elem_id="pl-compress-btn")
                status_md = gr.Markdown("Not compressed yet.", elem_id="pl-status")
                stale_md = gr.Markdown("", elem_id="pl-stale")
                with gr.Group(elem_id="pl-downloads"):
                    with gr.Row():
                        plan_dl_btn = gr.Button("Download plan JSON", size="sm", min_width=140)
                        model_dl_btn = gr.Button("5 · Download compressed model (.zip)", size="sm", min_width=140)
                    with gr.Row():
                        plan_file_out = gr.File(label="Plan JSON", interactive=False, height=90, min_width=140)
                        model_file_out = gr.File(label="Compressed model (safetensors + config + plan)",
                                                 interactive=False, height=90, min_width=140)
                    plan_file_in = gr.File(label="Restore sliders from a plan JSON", file_types=[".json"],
                                           type="filepath", height=140)
            with gr.Column(scale=3, min_width=320):
                plan_md = gr.Markdown("", elem_id="pl-plan")
                gr.Markdown("**Clusters per layer.** Each slider is a layer's K (clusters kept out of C "
                            "channels); its sparsity is 1 − K/C. Grouped by encoder/decoder and block (click a "
                            "block to open it).")
                editor = sliders.build()
    return CompressTab(model_box, load_btn, model_md, sparsity, preset, preset_btn, auto_btn, method, seed, options, units,
                       vocabulary, compress_btn, status_md, stale_md, plan_md, editor, plan_file_in, plan_dl_btn, plan_file_out, model_dl_btn,
                       model_file_out)


def cleared(outputs: list[gr.components.Component]) -> tuple:
    """Empty values for ``outputs`` (charts, tables, transcripts, files): what a newly loaded model shows."""
    return tuple("" if isinstance(o, (gr.Markdown, gr.Textbox)) else None for o in outputs)


def wire(demo: gr.Blocks, t: CompressTab, sess: gr.State, rev: gr.State, changes: ChangesTab, how: HowTab,
         listen: ListenTab) -> None:
    """Events of this tab; loading fills the layer dropdowns of ``changes`` and ``how`` and clears every result
    of the previous model (charts, clusters, transcripts, downloads); compressing fills ``changes``' charts."""
    load_inputs = [t.model_box, t.sparsity, t.preset, sess, rev]
    load_outputs = [sess, rev, t.model_md, t.plan_md, changes.inspect_layer, how.how_layer,
                    t.status_md, t.editor, t.stale_md, t.vocabulary, t.preset]
    old_results = [changes.size_plot, changes.size_df, changes.distortion_plot, changes.sens_plot,
                   changes.measure_plot, changes.scatter_plot, changes.sizes_plot, changes.inspect_md,
                   listen.text_a, listen.time_a, listen.text_b, listen.time_b, listen.wer_md, listen.diff_a,
                   listen.diff_b, t.plan_file_out, t.model_file_out]
    for trigger, api in ((t.load_btn.click, {"api_name": "load_model"}), (t.model_box.select, PRIVATE)):
        loaded = trigger(on_load, load_inputs, load_outputs, **api, **HEAVY)
        loaded.success(lambda: cleared(old_results), None, old_results, **INSTANT)
        loaded.failure(on_load_failed, sess, t.model_box, **INSTANT)
    demo.load(on_load, load_inputs, load_outputs, **PRIVATE, **HEAVY)

    new_plan_outputs = [sess, rev, t.plan_md, t.editor, t.stale_md]
    set_all_inputs = [t.sparsity, t.preset, sess, rev]
    t.preset_btn.click(on_preset, set_all_inputs, new_plan_outputs, api_name="set_all_sliders")
    for trigger in (t.sparsity.release, t.preset.input):
        trigger(on_preset, set_all_inputs, new_plan_outputs, trigger_mode="always_last", **PRIVATE)
    t.auto_btn.click(on_auto, set_all_inputs, new_plan_outputs, api_name="auto_allocate", **HEAVY)
    t.plan_file_in.upload(on_plan_check, [t.plan_file_in, sess], None, **PRIVATE).success(
        on_plan_upload, [t.plan_file_in, sess, rev], [*new_plan_outputs, t.method], api_name="upload_plan")
    t.method.change(on_method, t.method, [t.method, t.options, t.units], **INSTANT)
    for setting in (t.method, t.seed, t.units, t.options):
        setting.change(on_method_settings, [t.method, t.seed, t.units, t.options, sess], [sess, t.stale_md],
                       trigger_mode="always_last", **INSTANT)
    t.editor.edit(sliders.on_edit, [sess, rev], [sess, t.plan_md, t.stale_md],
                  trigger_mode="always_last", **INSTANT)

    # the progress bar is drawn over the status: the old status goes first, so the two never overlap
    t.compress_btn.click(None, None, [t.status_md, t.stale_md], js=CLEAR_STATUS_JS, **PRIVATE)
    t.vocabulary.change(on_vocabulary, [t.vocabulary, sess], [sess, t.stale_md], **INSTANT)
    t.compress_btn.click(on_compress, [t.method, t.seed, sess, t.units, t.options, t.vocabulary],
                         [sess, t.status_md, changes.sparsity_plot, changes.distortion_plot, changes.size_plot,
                          changes.size_df, t.stale_md],
                         api_name="compress", **HEAVY).failure(on_compress_failed, sess, [t.status_md, t.stale_md],
                                                               **INSTANT)
    t.plan_dl_btn.click(on_plan_download, [t.method, t.seed, sess, t.units], t.plan_file_out, api_name="download_plan")
    t.model_dl_btn.click(on_model_download, [sess], t.model_file_out, api_name="download_model", **HEAVY)
