"""Compression plans: how many clusters K each layer keeps.

A layer with C output channels clustered into K groups has sparsity ``1 - K/C``. A plan maps layer
names (see :func:`prunelab.layers.find_layers`) to K; layers it does not name stay as they are.
"""
from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..errors import PlanError
from .layers import LayerInfo

PLAN_FORMAT = "prunelab-plan"

# Preset name -> which layers it compresses.
PRESETS: dict[str, Callable[[LayerInfo], bool]] = {
    "uniform": lambda l: True,
    "ffn": lambda l: l.group == "ffn",
    "encoder": lambda l: l.part == "encoder",
    "attention": lambda l: l.group in ("self_attn", "cross_attn"),
    "encoder-ffn": lambda l: l.part == "encoder" and l.group == "ffn",
    "fc1": lambda l: l.kind == "fc1",
    "encoder-fc1": lambda l: l.part == "encoder" and l.kind == "fc1",
    "decoder": lambda l: l.part == "decoder",
    "decoder-fc1": lambda l: l.part == "decoder" and l.kind == "fc1",
    "attention-values": lambda l: l.kind == "v",
    "attention-qk": lambda l: l.kind == "q",
    "decoder-self-qk": lambda l: l.kind == "q" and l.part == "decoder" and l.group == "self_attn",
    "decoder-cross-qk": lambda l: l.kind == "q" and l.group == "cross_attn",
    "decoder-qk": lambda l: l.kind == "q" and l.part == "decoder",
    "encoder-qk": lambda l: l.kind == "q" and l.part == "encoder",
    "foldable": lambda l: l.unit is not None,
    "encoder-foldable": lambda l: l.part == "encoder" and l.unit is not None,
}
PRESET_HELP = {
    "uniform": "all compressible layers",
    "ffn": "feed-forward layers (fc1, fc2) only",
    "encoder": "encoder layers only",
    "attention": "attention projections (q, k, v, out; self and cross) only",
    "encoder-ffn": "encoder feed-forward layers only",
    "fc1": "feed-forward hidden neurons only (fc1 clustered, fc2 folded; the residual stream is untouched)",
    "encoder-fc1": "encoder feed-forward hidden neurons only (fc1 clustered, fc2 folded)",
    "decoder": "decoder layers only",
    "decoder-fc1": "decoder feed-forward hidden neurons only (fc1 clustered, fc2 folded)",
    "attention-values": "attention value projections (with units='foldable': value dims per head, out_proj folded)",
    "attention-qk": "attention query projections (with units='foldable': query/key dims per head, k_proj folded)",
    "decoder-self-qk": "decoder self-attention query projections (with units='foldable': query/key dims per head)",
    "decoder-cross-qk": "decoder cross-attention query projections (with units='foldable': query/key dims per head)",
    "decoder-qk": "decoder self- and cross-attention query projections (with units='foldable': query/key dims per head)",
    "encoder-qk": "encoder self-attention query projections (with units='foldable': query/key dims per head)",
    "foldable": "every foldable unit: FFN neurons (fc1), value dims (v) and query/key dims (q) per head",
    "encoder-foldable": "the encoder's foldable units: FFN neurons, value dims and query/key dims per head",
}

UNITS = ("channels", "foldable")
"""What a plan's K counts. ``channels`` (the paper): the output channels of each named layer, clustered over
the whole layer. ``foldable``: units that fold away without touching the residual stream -- FFN neurons (fc1
rows), value dimensions (v rows) and query/key dimensions (q rows), the attention ones clustered head by head."""


def check_preset(preset: str) -> Callable[[LayerInfo], bool]:
    """The layer filter of ``preset``; :class:`PlanError` naming the presets when it is unknown."""
    if preset not in PRESETS:
        raise PlanError(f"Unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
    return PRESETS[preset]


def unit_leaders(layers: Iterable[LayerInfo], units: str = "channels") -> list[LayerInfo]:
    """The layers a plan of ``units`` may compress: every layer for ``channels``, for ``foldable`` the layers that
    lead a unit (fc1, v, q)."""
    return [l for l in layers if units == "channels" or l.unit is not None]


def presets_selecting(layers: Iterable[LayerInfo], units: str = "channels") -> list[str]:
    """The presets that select at least one of ``layers`` (with ``units="foldable"``: one that leads a unit);
    a CTC model has none of the decoder presets."""
    layers = unit_leaders(layers, units)
    return [name for name, select in PRESETS.items() if any(select(l) for l in layers)]


def clusters_for_sparsity(channels: int, sparsity: float) -> int:
    """K for a layer of C channels at the given sparsity: round(C * (1 - s)), at least 1."""
    check_sparsity(sparsity)
    return max(1, min(channels, int(round(channels * (1.0 - sparsity)))))


def clusters_for_unit(layer: LayerInfo, sparsity: float) -> int:
    """K of a foldable unit's leader at ``sparsity``: per head for attention (a multiple of the heads), else per layer."""
    if layer.heads:
        return layer.heads * clusters_for_sparsity(layer.head_dim, sparsity)
    return clusters_for_sparsity(layer.channels, sparsity)


def whole_heads(plan: "Plan", leaders: Iterable[LayerInfo]) -> "Plan":
    """``plan`` with every attention K rounded to a multiple of the layer's heads (the same K in every head): what
    an allocation's per-layer K become with foldable units."""
    by_name = {l.name: l for l in leaders}
    return Plan({n: by_name[n].heads * max(1, round(k / by_name[n].heads)) if by_name[n].heads else k
                 for n, k in plan.clusters.items()})


def check_units(units: str) -> None:
    if units not in UNITS:
        raise PlanError(f"Unknown units {units!r}; choose one of: {', '.join(UNITS)}.")


def check_sparsity(sparsity: float) -> None:
    if not isinstance(sparsity, (int, float)) or math.isnan(sparsity) or not 0.0 <= sparsity < 1.0:
        raise PlanError(f"Sparsity must be a number in [0, 1), got {sparsity!r}.")


@dataclass
class Plan:
    """Per-layer cluster counts ``{layer name: K}``; unnamed layers are left uncompressed."""

    clusters: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_sparsity(cls, layers: Iterable[LayerInfo], sparsity: float, preset: str = "uniform",
                      units: str = "channels") -> "Plan":
        """The same sparsity on every layer the preset selects (with ``units="foldable"``: every unit leader
        it selects, attention ones rounded to whole heads)."""
        check_sparsity(sparsity)
        select = check_preset(preset)
        check_units(units)
        if units == "channels":
            return cls({l.name: clusters_for_sparsity(l.channels, sparsity) for l in layers if select(l)})
        return cls({l.name: clusters_for_unit(l, sparsity) for l in layers if select(l) and l.unit is not None})

    @classmethod
    def from_json(cls, source: str | os.PathLike | dict) -> "Plan":
        """Read a plan from a JSON file path, a JSON string or an already parsed dict.

        Accepted: ``{"clusters": {name: K, ...}, ...}`` (what :meth:`to_json` writes) or a bare ``{name: K}``.
        """
        data = source
        if not isinstance(source, dict):
            text = str(source)
            if not text.lstrip().startswith(("{", "[")):
                try:
                    with open(text, encoding="utf-8") as f:
                        text = f.read()
                except OSError as e:
                    raise PlanError(f"Cannot read plan file {source}: {e.strerror or e}.") from None
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise PlanError(f"Plan is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno}).") from None
        if not isinstance(data, dict):
            raise PlanError("A plan must be a JSON object mapping layer names to cluster counts.")
        if "clusters" not in data and {"format", "version", "method", "base_model"} & set(data):
            raise PlanError('This plan file has no "clusters" (layer name -> K); nothing to apply.')
        clusters = data["clusters"] if "clusters" in data else data
        if not isinstance(clusters, dict):
            raise PlanError('"clusters" must map layer names to cluster counts.')
        out: dict[str, int] = {}
        for name, k in clusters.items():
            if isinstance(k, bool) or not isinstance(k, (int, float)) or (isinstance(k, float) and not k.is_integer()):
                raise PlanError(f"Cluster count for {name!r} must be a whole number, got {k!r}.")
            out[str(name)] = int(k)
        return cls(out)

    def to_dict(self, **extra) -> dict:
        return {"format": PLAN_FORMAT, "version": 1, **extra, "clusters": dict(self.clusters)}

    def to_json(self, path: str | os.PathLike | None = None, **extra) -> str:
        """The plan as JSON (written to ``path`` too when given); ``extra`` adds fields such as method."""
        text = json.dumps(self.to_dict(**extra), indent=2)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def validate(self, layers: Iterable[LayerInfo]) -> None:
        """Raise :class:`PlanError` when a name is unknown or a K is outside ``1 <= K <= C``."""
        by_name = {l.name: l for l in layers}
        for name, k in self.clusters.items():
            layer = by_name.get(name)
            if layer is None:
                close = difflib.get_close_matches(name, list(by_name), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise PlanError(f"Plan names layer {name!r}, which this model does not have.{hint}")
            if not 1 <= k <= layer.channels:
                raise PlanError(
                    f"Layer {name!r} has {layer.channels} channels, so its cluster count must be between 1 and "
                    f"{layer.channels}; the plan asks for {k}."
                )

    def validate_units(self, layers: Iterable[LayerInfo], units: str) -> None:
        """With ``units="foldable"``: every layer the plan compresses (K < C) leads a foldable unit and its K
        splits over its heads; layers kept whole (K = C, as in ``prunelab layers --plan-out``'s template) pass."""
        check_units(units)
        if units == "channels":
            return
        by_name = {l.name: l for l in layers}
        for name, k in self.clusters.items():
            layer = by_name[name]
            if k >= layer.channels:  # kept whole (a template's K = C): nothing to fold, whatever the layer
                continue
            if layer.unit is None:
                raise PlanError(f"With foldable units a plan names only the layers that lead a unit (fc1, v, q); "
                                f"{name!r} is a {layer.kind} layer.")
            if layer.heads and k % layer.heads:
                raise PlanError(f"Layer {name!r} has {layer.heads} heads, so with foldable units its cluster count "
                                f"must be a multiple of {layer.heads} (the same number per head); the plan asks for {k}.")

    def active(self, layers: Iterable[LayerInfo]) -> list[tuple[LayerInfo, int]]:
        """(layer, K) for the layers this plan really compresses (K < C), in model order."""
        return [(l, self.clusters[l.name]) for l in layers if self.clusters.get(l.name, l.channels) < l.channels]

    def layer_sparsity(self, layer: LayerInfo) -> float:
        return 1.0 - self.clusters.get(layer.name, layer.channels) / layer.channels

    def sparsity(self, layers: Iterable[LayerInfo], *, over: str = "compressible") -> float:
        """Fraction of parameters removed, weighted by layer size.

        ``over="compressible"``: over all compressible layers; ``over="planned"``: over the layers this plan names.
        """
        layers = [l for l in layers if over == "compressible" or l.name in self.clusters]
        total = sum(l.params for l in layers)
        removed = sum(l.params * self.layer_sparsity(l) for l in layers)
        return removed / total if total else 0.0
