"""Parameter and byte counts of a model before and after compression."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .layers import find_layers
from .models import SpeechModel


@dataclass
class SizeReport:
    """Sizes of one model.

    Attributes:
        params: all parameters (shared ones counted once).
        nonzero_params: parameters that are not exactly zero (what unstructured pruning reduces).
        bytes: parameters plus buffers (e.g. cluster indices) as held in memory.
        layer_params: parameters of the compressible layers only.
    """

    params: int
    nonzero_params: int
    bytes: int
    layer_params: int

    def as_dict(self) -> dict:
        return asdict(self)


def size_report(model: SpeechModel) -> SizeReport:
    m = model.model
    params = list(m.parameters())
    layer_params = sum(p.numel() for layer in find_layers(m) for p in m.get_submodule(layer.name).parameters())
    return SizeReport(
        params=sum(p.numel() for p in params),
        nonzero_params=sum(int((p != 0).sum()) for p in params),
        bytes=sum(p.numel() * p.element_size() for p in params) + sum(b.numel() * b.element_size() for b in m.buffers()),
        layer_params=layer_params,
    )


def format_size_table(original: SizeReport, compressed: SizeReport) -> str:
    """A small text table: each size before, after, and the ratio."""
    rows = [("parameters", "params"), ("non-zero parameters", "nonzero_params"),
            ("compressible-layer parameters", "layer_params"), ("bytes in memory", "bytes")]
    lines = [f"{'':32s}{'original':>14s}{'compressed':>14s}{'ratio':>8s}"]
    for label, key in rows:
        a, b = getattr(original, key), getattr(compressed, key)
        lines.append(f"{label:32s}{a:>14,d}{b:>14,d}{(b / a if a else 0):>8.3f}")
    return "\n".join(lines)
