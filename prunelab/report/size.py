"""Parameter and byte counts of a model before and after compression."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..compression.layers import find_layers
from ..speech_model import SpeechModel


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


SIZE_ROWS = (("parameters", "params"), ("non-zero parameters", "nonzero_params"),
             ("compressible-layer parameters", "layer_params"), ("bytes in memory", "bytes"))
"""(label, SizeReport field) of every size the CLI and the app show, in order."""


def size_rows(original: SizeReport, compressed: SizeReport) -> list[tuple[str, int, int, float]]:
    """(label, original, compressed, compressed / original) for each of :data:`SIZE_ROWS`."""
    out = []
    for label, key in SIZE_ROWS:
        a, b = getattr(original, key), getattr(compressed, key)
        out.append((label, a, b, b / a if a else 0.0))
    return out


def format_size_table(original: SizeReport, compressed: SizeReport) -> str:
    """A small text table: each size before, after, and the ratio."""
    lines = [f"{'':32s}{'original':>14s}{'compressed':>14s}{'ratio':>8s}"]
    for label, a, b, ratio in size_rows(original, compressed):
        lines.append(f"{label:32s}{a:>14,d}{b:>14,d}{ratio:>8.3f}")
    return "\n".join(lines)
