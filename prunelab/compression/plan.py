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
}


def check_preset(preset: str) -> Callable[[LayerInfo], bool]:
    """The layer filter of ``preset``; :class:`PlanError` naming the presets when it is unknown."""
    if preset not in PRESETS:
        raise PlanError(f"Unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
    return PRESETS[preset]


def clusters_for_sparsity(channels: int, sparsity: float) -> int:
    """K for a layer of C channels at the given sparsity: round(C * (1 - s)), at least 1."""
    check_sparsity(sparsity)
    return max(1, min(channels, int(round(channels * (1.0 - sparsity)))))


def check_sparsity(sparsity: float) -> None:
    if not isinstance(sparsity, (int, float)) or math.isnan(sparsity) or not 0.0 <= sparsity < 1.0:
        raise PlanError(f"Sparsity must be a number in [0, 1), got {sparsity!r}.")


@dataclass
class Plan:
    """Per-layer cluster counts ``{layer name: K}``; unnamed layers are left uncompressed."""

    clusters: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_sparsity(cls, layers: Iterable[LayerInfo], sparsity: float, preset: str = "uniform") -> "Plan":
        """The same sparsity on every layer the preset selects."""
        check_sparsity(sparsity)
        select = check_preset(preset)
        return cls({l.name: clusters_for_sparsity(l.channels, sparsity) for l in layers if select(l)})

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
