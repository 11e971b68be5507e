"""The How it works tab: the method in plain words, drawn from a real layer's channels.

For the chosen layer and K: its channels, their k-means clusters and the magnitude baseline with the
same K, and what clustering does to the unit the layer leads (``LayerInfo.unit``): an FFN pair folds (fc1's
rows merge, fc2 adds up their columns), attention value and query/key dims fold head by head (clustered
within each head), and a layer that leads no foldable unit (k, out, fc2) is clustered in place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr

from ..events import HEAVY, INSTANT, PRIVATE, guard
from ..figures import Plot
from ..lib import CompressionConfig, LayerInfo, layer_result, plots
from ..session import Session, pick_layer, require_compressed, require_model
from ..state import LAYER_CACHE

if TYPE_CHECKING:
    from .compress import CompressTab

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

### Folding inside attention (choose *Foldable units* on the Compress tab)

Attention has units that fold too, head by head, without touching the residual stream:

* **Value dimensions.** Each head mixes its value vectors with attention weights, then *out_proj* reads
  them. Value dimensions of one head whose v_proj rows share a centroid give identical value columns, so
  out_proj **adds up their columns**: v_proj and out_proj both shrink.
* **Query/key dimensions.** A head scores a query against a key by *Σ_d q_d k_d*. If query dimensions d
  and d' share a centroid (q_d = q_d'), then *q_d k_d + q_d' k_d' = q_d (k_d + k_d')*: q_proj keeps one row
  and k_proj the **sum of the two rows**. The softmax scale stays the original 1/√(head size).
  (`lowrank-qk` goes further: it keeps each head's best low-rank score form.)
* **A smaller vocabulary (Whisper).** Whisper writes with 51,865 tokens from about 100 languages; its token
  embedding, shared with the output layer, is 37 % of Whisper-base. Keeping only the tokens of the scripts
  you will transcribe (*Decoder vocabulary*: Latin script, or ASCII for English) removes those rows, decided
  from the tokenizer alone. Token ids stay the same; the removed ones simply can never be written, so a
  transcript changes only where the original would have used a removed token.
* **Compensation without data.** `predictive` asks which FFN neurons the others predict best under a
  Gaussian model of the LayerNorm output (built from the weights alone), removes those, and adds each one's
  predictable part to its best predictor's fc2 column and fc2's bias.

**The baseline beside it:** *structured magnitude pruning* keeps the K channels with the largest norm and
drops the others (they output 0). *Unstructured magnitude pruning* zeroes the smallest individual
weights. The pictures below use the real channels of the layer you choose.
"""


@dataclass
class HowTab:
    tab: gr.Tab
    how_layer: gr.Dropdown
    how_k: gr.Slider
    how_btn: gr.Button
    how_plot: gr.Plot
    fold_md: gr.Markdown
    fold_plot: gr.Plot
    repair_md: gr.Markdown
    repair_plot: gr.Plot


@guard
def on_how(layer_name: str, k: float, seed: float, sess: Session):
    """The teaching figure: a real layer's channels, k-means with K clusters, and magnitude with the same K."""
    model, layers = require_model(sess)
    layer = pick_layer(layers, layer_name)
    linear = model.model.get_submodule(layer.name)
    k = int(max(1, min(int(k), layer.channels)))
    fig = plots.how_it_works_figure(linear.weight, linear.bias, k, seed=int(seed or 0), layer_label=layer.label)
    return fig, fold_picture(model, layer, k, int(seed or 0))


def fold_picture(model, layer: LayerInfo, k: int, seed: int):
    """The folding diagram of the layer's unit: attention dims are clustered within each head (K rows in each
    head, at most its size: :func:`rows_per_head`), other layers over the whole layer, as Compress does."""
    per_head = layer.unit in ("value-dim", "qk-dim") and bool(layer.heads)
    if per_head:
        k = layer.heads * rows_per_head(layer, k)
    config = CompressionConfig(method="kmeans", seed=seed, units="foldable" if per_head else "channels")
    groups = layer_result(model, layer, k, config, cache=LAYER_CACHE)
    return plots.fold_figure(groups.index, groups.k, unit=layer.unit, head_dim=layer.head_dim if per_head else None,
                             leader=layer.label, partner=_partner_label(layer))


def rows_per_head(layer: LayerInfo, k: int) -> int:
    """The rows each head keeps in the folding diagram of a per-head unit: the picture's K, at most the head's size."""
    return max(1, min(int(k), layer.head_dim))


def _partner_label(layer: LayerInfo) -> str | None:
    """The short label of the layer that folds with ``layer`` (enc.0.fc1 -> enc.0.fc2, dec.1.cross.v ->
    dec.1.cross.out, enc.2.q -> enc.2.k), or None for a layer that leads no foldable unit."""
    partner = {"fc1": "fc2", "v": "out", "q": "k"}.get(layer.kind)
    return layer.label[: -len(layer.kind)] + partner if partner else None


FOLD_CAPTIONS = {
    "ffn-neuron": "**Folding an FFN pair ({leader} → {partner}):** channels of {leader} with the same colour share "
                  "one row, so they give the same activation; {partner} adds up their columns, so both layers shrink "
                  "from C to K.",
    "value-dim": "**Folding attention value dims ({leader} → {partner}), head by head** (here K = {kh} of each "
                 "head's {hd} dims): value dims of one head with the same colour share one {leader} row (clusters "
                 "never cross a head); {partner} adds up their columns, so both layers shrink.",
    "qk-dim": "**Folding attention query/key dims ({leader} and {partner}), head by head** (here K = {kh} of each "
              "head's {hd} dims): query dims of one head with the same colour share one {leader} row; since "
              "q·k = Σ q_d k_d, {partner} keeps the **sum** of their key rows, so both shrink. The softmax scale "
              "stays the original 1/√(head size).",
    None: "**Clustering in place ({leader}):** this layer leads no foldable unit ({why}), so its output channels are "
          "clustered in place, over the whole layer as in the paper: channels with the same colour compute the same "
          "output, but nothing folds away and it still has C outputs.",
}
"""The line above the folding diagram, for the unit the chosen layer leads (``LayerInfo.unit``)."""


def fold_caption(layer: LayerInfo, k: int) -> str:
    """The line above the folding diagram of ``layer`` drawn with the picture's ``k``."""
    per_head = layer.unit in ("value-dim", "qk-dim") and bool(layer.heads)
    why = ("it writes the residual stream" if layer.writes_residual
           else f"it is the partner of {layer.label[:-1]}q: query/key dims fold when that layer is compressed"
           if layer.kind == "k" else "")
    return FOLD_CAPTIONS[layer.unit].format(leader=layer.label, partner=_partner_label(layer), hd=layer.head_dim,
                                            kh=rows_per_head(layer, k) if per_head else None, why=why)


def on_fold_caption(layer_name: str, k: float, sess: Session):
    """The folding diagram's caption for the chosen layer (after the pictures are drawn)."""
    _, layers = require_model(sess)
    return fold_caption(pick_layer(layers, layer_name), int(k or 1))


REPAIR_READS = {"fc2": "fc1", "out_proj": "v_proj", "k_proj": "q_proj"}
"""What a repaired layer's kept units come from: fc2 reads FFN neurons of fc1, out_proj value dims of v_proj;
k_proj's rows are re-solved against the kept query dims of q_proj."""


def _dense_weight(module):
    """A layer's dense weight and bias (a clustered layer expanded to its C rows)."""
    if callable(getattr(module, "dense", None)):
        module = module.dense()
    return module.weight, getattr(module, "bias", None)


def repaired_target(layer: LayerInfo, targets: list[str]) -> tuple[str | None, bool]:
    """The repaired layer to draw for the chosen ``layer``: the one of its own block (FFN) or attention (the fc2 or
    out_proj its unit feeds, else its k_proj), or the first repaired layer; and whether it is the chosen layer's own."""
    prefix = layer.name.rpartition(".")[0] + "."
    own = [t for t in targets if t.startswith(prefix) and (t.endswith(".fc2") or layer.group != "ffn")]
    own.sort(key=lambda t: t.endswith("k_proj"))  # fc2 / out_proj first: their columns are the kept units
    if own:
        return own[0], True
    return (targets[0] if targets else None), False


def on_repair_view(layer_name: str, sess: Session):
    """One unit before and after repair (only when the model in use was repaired): the repaired layer that the
    chosen layer's unit feeds, its column norms and weight change, with a caption; hidden otherwise."""
    hidden = gr.Markdown(value="", visible=False), gr.Plot(value=None, visible=False)
    if sess is None or not sess.recovered or not sess.spec:
        return hidden
    _, layers = require_model(sess)
    recovered = require_compressed(sess)
    records = [r for r in (recovered.compression or {}).get("recovery", []) if r.get("step") == "repair"]
    if not records:
        return hidden
    layer = pick_layer(layers, layer_name)
    target, own = repaired_target(layer, list(records[-1].get("layers", [])))
    if target is None:
        return gr.Markdown(value="**Repair:** no layer needed re-solving for this plan.", visible=True), hidden[1]
    compressed = require_compressed(sess, recovered=False)
    w0, b0 = _dense_weight(compressed.model.get_submodule(target))
    w1, b1 = _dense_weight(recovered.model.get_submodule(target))
    kind = target.rsplit(".", 1)[-1]
    short = next((l.label for l in layers if l.name == target), target.replace("model.", ""))
    if kind == "k_proj":  # its rows are the kept query/key dims: draw them as columns
        w0, w1, b0, b1 = w0.T, w1.T, None, None
    fig = plots.repair_unit_figure(w0, w1, b0, b1, layer=short, reads=REPAIR_READS.get(kind, "the layer before"))
    step = sess.recovery_step
    caption = (f"**Before and after repair ({short}):** repair re-solved this layer on "
               f"{records[-1]['clips']} calibration clips so that, reading the compressed {REPAIR_READS.get(kind, '')} "
               f"output, it gives what the original sublayer gives. Grey bars: the compressed model's weights; blue: "
               f"after repair" + (" (the model in use is now fine-tuned too)" if step == "fine-tuned" else "") + "."
               + ("" if own else f" The chosen layer {layer.label} was not compressed, so the first repaired layer is "
                                 "shown.")
               + (" Repair also re-chose which neurons this FFN keeps: a column before and after is then not the "
                  "same neuron." if records[-1].get("select") and kind in ("fc2", "output_dense") else ""))
    return gr.Markdown(value=caption, visible=True), gr.Plot(value=fig, visible=True)


def build() -> HowTab:
    with gr.Tab("How it works", id="how") as tab:
        gr.Markdown(HOW_TEXT)
        with gr.Row():
            how_layer = gr.Dropdown([], label="Layer", scale=3)
            how_k = gr.Slider(1, 64, value=8, step=1, label="K (clusters) for the picture", scale=2)
            how_btn = gr.Button("Draw", scale=1)
        how_plot = Plot(label="Channels, k-means clusters and the magnitude baseline", format="png",
                           show_label=False)
        fold_md = gr.Markdown("**Folding:** what clustering the chosen layer does to it and to the layer it "
                              "feeds; the picture follows the layer.", elem_id="pl-fold-caption")
        fold_plot = Plot(label="Folding", format="png", show_label=False)
        repair_md = gr.Markdown("", visible=False, elem_id="pl-repair-caption")
        repair_plot = Plot(label="Before and after repair", format="png", show_label=False, visible=False)
    return HowTab(tab, how_layer, how_k, how_btn, how_plot, fold_md, fold_plot, repair_md, repair_plot)


def wire(t: HowTab, sess: gr.State, compress: CompressTab) -> None:
    """Events of this tab; the pictures use the seed chosen on the Compress tab."""
    inputs = [t.how_layer, t.how_k, compress.seed, sess]
    outputs = [t.how_plot, t.fold_plot]
    drawn = [t.how_btn.click(on_how, inputs, outputs, api_name="how_it_works", **HEAVY)]
    for trigger in (t.how_layer.input, t.how_k.release, t.tab.select):
        drawn.append(trigger(on_how, inputs, outputs, trigger_mode="always_last", **PRIVATE, **HEAVY))
    for event in drawn:  # the caption follows the layer drawn (/how_it_works still answers the two pictures)
        event.success(on_fold_caption, [t.how_layer, t.how_k, sess], t.fold_md, **INSTANT)
        # and, once the model in use was repaired, the unit before and after repair
        event.success(guard(on_repair_view), [t.how_layer, sess], [t.repair_md, t.repair_plot],
                      api_name="repair_view" if event is drawn[0] else None,
                      **({} if event is drawn[0] else PRIVATE), **HEAVY)
