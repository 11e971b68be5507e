"""The plan editor of the Compress tab: one slider per layer (its K), grouped by encoder/decoder and block.

The sliders are rebuilt with ``gr.render`` whenever the session's ``rev`` counter is bumped (a model
loads, a preset or auto-allocation sets every K, a plan JSON is restored). Moving one slider stores its
K in the session and refreshes the plan summary; releasing it updates its "K of C → % sparse" text.
"""
from __future__ import annotations

from typing import Callable

import gradio as gr

from ..events import INSTANT
from ..lib import LayerInfo, Plan, PrunelabError, find_layers
from ..session import Session, plan_summary
from ..state import MODELS, get_model


def slider_info(k: float, channels: int) -> str:
    return f"K = {int(k)} of C = {channels} → {100 * (1 - int(k) / channels):.0f}% sparse"


def on_slider(name: str) -> Callable:
    """Handler for one layer's slider: store its K in the session plan."""

    def handler(k: float, sess: Session):
        if sess is None or not sess.spec:
            return sess, gr.skip()
        sess = sess.with_clusters({**sess.clusters, name: int(k)})
        try:
            layers = find_layers(get_model(sess.spec).model)
        except PrunelabError:
            return sess, gr.skip()
        return sess, plan_summary(layers, sess.clusters)

    return handler


def render(sess: gr.State, rev: gr.State, plan_md: gr.Markdown) -> None:
    """Place the slider grid here; it follows ``sess`` each time ``rev`` changes."""

    @gr.render(inputs=[sess], triggers=[rev.change])
    def layer_sliders(s: Session):
        if s is None or not s.spec or s.spec not in MODELS:
            gr.Markdown("*Load a model to get one slider per layer.*")
            return
        layers = find_layers(get_model(s.spec).model)
        for part in ("encoder", "decoder"):
            part_layers = [l for l in layers if l.part == part]
            if part_layers:
                _part(s, part, part_layers, sess, plan_md)


def _part(s: Session, part: str, layers: list[LayerInfo], sess: gr.State, plan_md: gr.Markdown) -> None:
    blocks = sorted({l.block for l in layers})
    with gr.Accordion(f"{part.capitalize()} · {len(blocks)} blocks, {len(layers)} layers", open=True,
                      key=f"acc-{s.spec}-{part}"):
        for b in blocks:
            block_layers = [l for l in layers if l.block == b]
            sparse = 100 * Plan(s.clusters).sparsity(block_layers)
            with gr.Accordion(f"{part} block {b} · {len(block_layers)} layers · {sparse:.0f}% sparse",
                              open=b == blocks[0], elem_classes="pl-block-acc", key=f"acc-{s.spec}-{part}-{b}"):
                for i in range(0, len(block_layers), 2):
                    with gr.Row():
                        for layer in block_layers[i:i + 2]:
                            _slider(s, layer, sess, plan_md)


def _slider(s: Session, layer: LayerInfo, sess: gr.State, plan_md: gr.Markdown) -> None:
    k = s.k(layer)
    sl = gr.Slider(1, layer.channels, value=k, step=1, label=f"{layer.label}", min_width=200,
                   info=slider_info(k, layer.channels), key=f"k-{s.spec}-{layer.name}", preserved_by_key=None,
                   elem_classes="pl-layer-slider", interactive=True)
    sl.change(on_slider(layer.name), [sl, sess], [sess, plan_md], trigger_mode="always_last", **INSTANT)
    sl.release(lambda v, c=layer.channels: gr.Slider(info=slider_info(v, c)), sl, sl, **INSTANT)
