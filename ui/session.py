"""What one user holds (kept in ``gr.State``), and the checks handlers make before using it.

A :class:`Session` is a value: handlers never change one, they return a new one
(``session.with_clusters(...)``, :func:`dataclasses.replace`). Models are not in it, only the keys of the
shared stores in :mod:`ui.state`, so a session stays small and ``gr.State`` can copy it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import gradio as gr

from .lib import LayerInfo, Plan, SpeechModel, find_layers
from .state import COMPRESSED, get_model


@dataclass(frozen=True)
class Session:
    """One user's state: the model, the plan being edited, and the compressed model (once there is one)."""

    spec: str | None = None
    """The loaded model's spec (key of :data:`ui.state.MODELS`); None until a model loads."""
    clusters: dict[str, int] = field(default_factory=dict)
    """The plan being edited: layer name -> K (the sliders); a layer not listed keeps all its channels."""
    compressed: str | None = None
    """Key of this user's compressed model in :data:`ui.state.COMPRESSED` (reused by each Compress)."""
    compressed_plan: dict[str, int] | None = None
    """The plan the compressed model was made with."""
    method: str | None = None
    """The method the compressed model was made with."""
    seed: int = 0
    """The seed the compressed model was made with."""
    compress_seconds: float | None = None
    """How long that compression took."""

    def k(self, layer: LayerInfo) -> int:
        """The layer's K in the plan being edited (C when it is not compressed)."""
        return int(self.clusters.get(layer.name, layer.channels))

    def with_clusters(self, clusters: Mapping[str, int]) -> Session:
        return replace(self, clusters=dict(clusters))


def require_model(sess: Session | None) -> tuple[SpeechModel, list[LayerInfo]]:
    """The session's original model and its compressible layers, or a message to load one."""
    if sess is None or not sess.spec:
        raise gr.Error("No model loaded yet: pick one and press Load model.")
    model = get_model(sess.spec)
    return model, find_layers(model.model)


def require_compressed(sess: Session | None) -> SpeechModel:
    """The session's compressed model, or a message to compress (again)."""
    key = sess.compressed if sess is not None else None
    if not key:
        raise gr.Error("There is no compressed model yet: set the sliders and press Compress first.",
                       title="Compress first")
    model = COMPRESSED.get(key)
    if model is None:
        raise gr.Error("Your compressed model was dropped to free memory (other users compressed since): "
                       "press Compress again.", title="Compress again")
    return model


def plan_summary(layers: list[LayerInfo], clusters: Mapping[str, int]) -> str:
    """One line on the plan being edited: layers compressed, share of compressible parameters removed."""
    plan = Plan(dict(clusters))
    total = sum(l.params for l in layers)
    sparsity = plan.sparsity(layers)
    return (f"**Plan:** {len(plan.active(layers))} of {len(layers)} layers compressed · "
            f"**{100 * sparsity:.1f}%** of the compressible parameters removed "
            f"({sparsity * total / 1e6:.2f} M of {total / 1e6:.2f} M)")


def layer_choices(layers: list[LayerInfo]) -> list[tuple[str, str]]:
    """Dropdown choices for a layer: its short label with its shape, valued by its module name."""
    return [(f"{l.label}  ({l.out_features}×{l.in_features})", l.name) for l in layers]


def default_layer(layers: list[LayerInfo]) -> str | None:
    """The layer shown first: the first FFN hidden layer (fc1), else the first layer."""
    for l in layers:
        if l.kind == "fc1":
            return l.name
    return layers[0].name if layers else None


def pick_layer(layers: list[LayerInfo], name: str | None) -> LayerInfo:
    """The layer called ``name``, or the default one when the name is empty or unknown."""
    by_name = {l.name: l for l in layers}
    return by_name.get(name) or by_name[default_layer(layers)]
