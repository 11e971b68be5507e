"""Measured sensitivity: the WER when only one group of layers is compressed, beside the data-free proxy.

For the layers the preset selects, grouped by block (``encoder block 3``) or by unit kind
(``encoder fc1``), each group is compressed ALONE at the global sparsity with the chosen method, the
compressed model transcribes the bundled evaluation clips (:mod:`ui.evaluation`), and its WER increase
over the original is drawn next to the group's data-free relative distortion (the sensitivity curves at
the same sparsity): where the two rank groups alike the data-free proxy is right, elsewhere it is wrong.
The See what changed tab (:mod:`ui.tabs.changes`) offers it.
"""
from __future__ import annotations

import numpy as np
import gradio as gr

from . import evaluation
from .events import guard
from .lib import CompressionConfig, LayerInfo, Plan, compress, plots, sensitivity_curves, wer
from .session import Session, require_model
from .settings import known_method, method_label
from .state import LAYER_CACHE

GROUPINGS = {"block": "Block", "kind": "Unit kind"}


def group_layers(layers: list[LayerInfo], by: str) -> dict[str, list[LayerInfo]]:
    """The layers by block (``encoder block 0``) or by unit kind (``encoder fc1``, ``decoder cross.q``), in model order."""
    out: dict[str, list[LayerInfo]] = {}
    for l in layers:
        kind = ("cross." if l.group == "cross_attn" else "") + l.kind
        out.setdefault(f"{l.part} block {l.block}" if by == "block" else f"{l.part} {kind}", []).append(l)
    return out


def datafree_score(curves, sparsity: float) -> float:
    """Relative distortion of a group at ``sparsity``: the curves' distortion at K = (1 - s) C over their energy."""
    d = sum(float(np.interp(max(1, round((1 - sparsity) * c.channels)), c.ks, c.distortion)) for c in curves)
    e = sum(c.energy for c in curves)
    return d / e if e else 0.0


@guard
def on_measure(preset: str, sparsity: float, method: str, by: str, sess: Session, progress=gr.Progress()):
    """Compress each group alone, transcribe the evaluation clips, draw measured WER beside data-free distortion."""
    model, layers = require_model(sess)
    sparsity = float(sparsity)
    if not 0 < sparsity < 1:
        raise gr.Error("Set a global sparsity above 0 on the Compress tab first.")
    chosen = Plan.from_sparsity(layers, sparsity, preset).clusters
    groups = group_layers([l for l in layers if l.name in chosen], by if by in GROUPINGS else "block")
    if not groups:
        raise gr.Error("The preset selects no layer of this model.")
    method = known_method(method)
    units = "foldable" if method == "predictive" else "channels"
    audios, refs = evaluation.eval_clips()
    base = evaluation.original_wer(model, audios, refs, lambda i, n, m: progress(0.02, desc=f"Original model: {m}"))
    names, increase, datafree = [], [], []
    for g, (name, members) in enumerate(groups.items()):
        progress((g, len(groups)), desc=f"{name}: compressing alone, then transcribing {len(audios)} clips …",
                 unit="groups")
        plan = Plan.from_sparsity(members, sparsity, "uniform", units=units)
        if not plan.clusters:  # e.g. no unit leader in this group with foldable units
            continue
        compressed = compress(model, CompressionConfig(method=method, plan=plan, units=units), cache=LAYER_CACHE)
        hyps = evaluation.transcribe_clips(compressed, audios, None)
        del compressed
        curves = sensitivity_curves(model.model, members, cache_key=model.spec)
        names.append(name)
        increase.append(wer(refs, hyps) - base)
        datafree.append(datafree_score(curves, sparsity))
    if not names:
        raise gr.Error(f"{method_label(method)} compresses no layer of these groups: choose another preset or method.")
    return plots.measured_vs_datafree_chart(
        names, increase, datafree, sparsity,
        title=None if len(names) > 2 else f"Each group compressed alone at {100 * sparsity:.0f}% sparsity")
