"""The See what changed tab: what compression did, where a model can be compressed, one layer's clusters.

Its distortion and size charts are filled by Compress; the sparsity chart shows the sliders' plan, drawn
each time the tab opens (and by Compress). Here:
the data-free sensitivity curves of the preset's layers, and for one layer at its slider's K the
channels in PCA space coloured by cluster, with the cluster sizes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr

from .. import measured
from ..events import HEAVY, PRIVATE, guard
from ..figures import Plot
from ..lib import METHODS, CompressionConfig, Plan, PrunelabError, layer_result, plots, sensitivity_curves
from ..session import Session, pick_layer, require_model
from ..settings import known_method, method_label
from ..state import LAYER_CACHE

if TYPE_CHECKING:
    from .compress import CompressTab


@dataclass
class ChangesTab:
    tab: gr.Tab
    sparsity_plot: gr.Plot
    size_plot: gr.Plot
    size_df: gr.Dataframe
    distortion_plot: gr.Plot
    sens_btn: gr.Button
    sens_plot: gr.Plot
    measure_by: gr.Radio
    measure_btn: gr.Button
    measure_plot: gr.Plot
    inspect_layer: gr.Dropdown
    inspect_btn: gr.Button
    inspect_md: gr.Markdown
    scatter_plot: gr.Plot
    sizes_plot: gr.Plot


def on_plan_chart(sess: Session):
    """The sparsity chart of the sliders' plan, drawn when this tab opens (not on every slider change)."""
    if sess is None or not sess.spec:
        return gr.skip()
    try:
        _, layers = require_model(sess)
    except (gr.Error, PrunelabError):
        return gr.skip()
    return plots.sparsity_chart(layers, sess.clusters)


@guard
def on_sensitivity(preset: str, sess: Session, progress=gr.Progress()):
    """Data-free sensitivity: each layer's clustering distortion against its sparsity."""
    model, layers = require_model(sess)
    chosen = Plan.from_sparsity(layers, 0.5, preset).clusters
    curves = sensitivity_curves(model.model, [l for l in layers if l.name in chosen], cache_key=model.spec,
                                progress=lambda i, n, msg: progress((i, n), desc=msg, unit="layers"))
    return plots.sensitivity_chart(curves)


@guard
def on_inspect(layer_name: str, method: str, seed: float, sess: Session):
    """Clusters of one layer at its current slider K: PCA scatter and cluster-size histogram."""
    model, layers = require_model(sess)
    layer = pick_layer(layers, layer_name)
    k = sess.k(layer)
    method = known_method(method)
    shown_instead = ""
    if method == "magnitude-unstructured":
        shown_instead = "Unstructured pruning has no channel clusters; showing structured magnitude for this layer."
        method = "magnitude"
    elif METHODS[method].folds:  # a unit-level method: no clusters of this layer's output channels alone
        shown_instead = (f"{method_label(method)} folds whole units (FFN neurons, attention dims per head), so it has "
                         "no clusters of this layer's output channels; showing the paper's k-means at the same K.")
        method = "kmeans"
    if shown_instead:
        gr.Info(shown_instead)
    linear = model.model.get_submodule(layer.name)
    config = CompressionConfig(method=method, seed=int(seed or 0))
    groups = layer_result(model, layer, k, config, cache=LAYER_CACHE)
    title = f"{layer.label}: {layer.channels} channels → K = {k} ({method_label(method)})"
    note = (f"**{layer.label}** (`{layer.name}`): C = {layer.channels} channels of {layer.in_features} inputs"
            f"{' + bias' if layer.has_bias else ''}; K = {k} → sparsity {100 * (1 - k / layer.channels):.0f}%; "
            f"distortion {groups.distortion:.4g}." + (f" *{shown_instead}*" if shown_instead else ""))
    return (plots.cluster_scatter(linear.weight, linear.bias, groups, title=title),
            plots.cluster_sizes(groups), note)


def build() -> ChangesTab:
    with gr.Tab("See what changed", id="inspect") as tab:
        sparsity_plot = Plot(label="Sparsity per layer (1 − K/C)", format="png", show_label=False)
        with gr.Row():
            size_plot = Plot(label="Size before / after", format="png", show_label=False)
            size_df = gr.Dataframe(headers=["", "original", "compressed", "kept"], label="Sizes",
                                   interactive=False, wrap=True)
        distortion_plot = Plot(label="Clustering distortion per layer", format="png", show_label=False)
        gr.Markdown("### Where can this model be compressed? (data-free sensitivity)\n"
                    "Each line is a layer's importance-weighted clustering distortion as its sparsity "
                    "grows, for the layers of the chosen preset. Flat, low lines compress cheaply; "
                    "**Auto-allocate** on the Compress tab spends the sparsity where lines are lowest.")
        sens_btn = gr.Button("Measure sensitivity", size="sm")
        sens_plot = Plot(label="Sensitivity", format="png", show_label=False)
        gr.Markdown("#### Measured beside data-free\nCompress each group of the preset's layers **alone** at the "
                    "global sparsity (with the chosen method), transcribe the 12 evaluation clips, and compare its "
                    "WER increase with the group's data-free distortion: where both rank the groups alike, the "
                    "data-free proxy is right. Takes a few minutes on Whisper-base.")
        with gr.Row(equal_height=True):
            measure_by = gr.Radio([(v, k) for k, v in measured.GROUPINGS.items()], value="block",
                                  label="Group the layers by", scale=2)
            measure_btn = gr.Button("Measure WER per group", size="sm", scale=1)
        measure_plot = Plot(label="Measured vs data-free sensitivity", format="png", show_label=False)
        gr.Markdown("### Channel clusters of one layer (at its slider's K)")
        with gr.Row():
            inspect_layer = gr.Dropdown([], label="Layer", scale=3)
            inspect_btn = gr.Button("Show clusters", scale=1)
        inspect_md = gr.Markdown("")
        with gr.Row():
            scatter_plot = Plot(label="Channels in PCA space, coloured by cluster", format="png", show_label=False)
            sizes_plot = Plot(label="Cluster sizes", format="png", show_label=False)
    return ChangesTab(tab, sparsity_plot, size_plot, size_df, distortion_plot, sens_btn, sens_plot, measure_by,
                      measure_btn, measure_plot, inspect_layer,
                      inspect_btn, inspect_md, scatter_plot, sizes_plot)


def wire(t: ChangesTab, sess: gr.State, compress: CompressTab) -> None:
    """Events of this tab; they read the preset, method and seed chosen on the Compress tab."""
    t.tab.select(on_plan_chart, sess, t.sparsity_plot, **PRIVATE)
    t.measure_btn.click(measured.on_measure, [compress.preset, compress.sparsity, compress.method, t.measure_by, sess],
                        t.measure_plot, api_name="measured_sensitivity", **HEAVY)
    t.sens_btn.click(on_sensitivity, [compress.preset, sess], t.sens_plot, api_name="sensitivity", **HEAVY)
    inspect_inputs = [t.inspect_layer, compress.method, compress.seed, sess]
    inspect_outputs = [t.scatter_plot, t.sizes_plot, t.inspect_md]
    t.inspect_btn.click(on_inspect, inspect_inputs, inspect_outputs, api_name="inspect_layer", **HEAVY)
    for trigger in (t.inspect_layer.input, t.tab.select):
        trigger(on_inspect, inspect_inputs, inspect_outputs, trigger_mode="always_last", **PRIVATE, **HEAVY)
