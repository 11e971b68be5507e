"""The How it works tab: the method in plain words, drawn from a real layer's channels.

For the chosen layer and K: its channels, their k-means clusters and the magnitude baseline with the
same K, and how folding an FFN pair merges fc1's rows and adds up fc2's columns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr

from ..events import HEAVY, PRIVATE, guard
from ..figures import Plot
from ..lib import CompressionConfig, layer_result, plots
from ..session import Session, pick_layer, require_model
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
    fold_plot: gr.Plot


@guard
def on_how(layer_name: str, k: float, seed: float, sess: Session):
    """The teaching figure: a real layer's channels, k-means with K clusters, and magnitude with the same K."""
    model, layers = require_model(sess)
    layer = pick_layer(layers, layer_name)
    linear = model.model.get_submodule(layer.name)
    k = int(max(1, min(int(k), layer.channels)))
    fig = plots.how_it_works_figure(linear.weight, linear.bias, k, seed=int(seed or 0), layer_label=layer.label)
    groups = layer_result(model, layer, k, CompressionConfig(method="kmeans", seed=int(seed or 0)), cache=LAYER_CACHE)
    return fig, plots.fold_figure(groups.index, groups.k)


def build() -> HowTab:
    with gr.Tab("How it works", id="how") as tab:
        gr.Markdown(HOW_TEXT)
        with gr.Row():
            how_layer = gr.Dropdown([], label="Layer", scale=3)
            how_k = gr.Slider(1, 64, value=8, step=1, label="K (clusters) for the picture", scale=2)
            how_btn = gr.Button("Draw", scale=1)
        how_plot = Plot(label="Channels, k-means clusters and the magnitude baseline", format="png",
                           show_label=False)
        gr.Markdown("**Folding an FFN pair:** channels of fc1 with the same colour share one row; "
                    "fc2 adds up their columns, so both layers shrink from C to K.")
        fold_plot = Plot(label="Folding", format="png", show_label=False)
    return HowTab(tab, how_layer, how_k, how_btn, how_plot, fold_plot)


def wire(t: HowTab, sess: gr.State, compress: CompressTab) -> None:
    """Events of this tab; the pictures use the seed chosen on the Compress tab."""
    inputs = [t.how_layer, t.how_k, compress.seed, sess]
    outputs = [t.how_plot, t.fold_plot]
    t.how_btn.click(on_how, inputs, outputs, api_name="how_it_works", **HEAVY)
    for trigger in (t.how_layer.input, t.how_k.release, t.tab.select):
        trigger(on_how, inputs, outputs, trigger_mode="always_last", **PRIVATE, **HEAVY)
