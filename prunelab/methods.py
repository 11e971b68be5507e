"""Per-layer compression methods: pure functions on a layer's weight and bias tensors.

Each structured method groups the C output channels (rows of ``weight``, bias appended) and returns
:class:`ChannelGroups`: K replacement rows plus a channel -> group index. The index value K means
"dropped" (the channel outputs 0). The unstructured baseline returns a masked weight instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .kmeans import kmeans


@dataclass
class ChannelGroups:
    """A layer's channels grouped into K shared rows.

    Attributes:
        weight: [K, in] replacement rows (centroids, or the kept channels).
        bias: [K] or None.
        index: [C] int64, the row each channel uses; the value K means the channel is dropped (outputs 0).
        distortion: squared Frobenius distance between the original [C, in+1] rows and their replacements.
    """

    weight: Tensor
    bias: Tensor | None
    index: Tensor
    distortion: float

    @property
    def k(self) -> int:
        return int(self.weight.shape[0])

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.weight, self.bias, self.index) if t is not None)

    def dense(self) -> tuple[Tensor, Tensor | None]:
        """The equivalent full-size layer: weight [C, in] and bias [C] with every channel replaced."""
        pad = lambda t: torch.cat([t, t.new_zeros((1,) + t.shape[1:])])  # noqa: E731  row K = dropped
        weight = pad(self.weight)[self.index]
        bias = pad(self.bias)[self.index] if self.bias is not None else None
        return weight, bias


def channel_rows(weight: Tensor, bias: Tensor | None) -> Tensor:
    """[C, in(+1)] float32 matrix of output channels, bias appended as the last column."""
    rows = weight.detach().float()
    if bias is not None:
        rows = torch.cat([rows, bias.detach().float()[:, None]], dim=1)
    return rows


def _split(rows: Tensor, has_bias: bool) -> tuple[Tensor, Tensor | None]:
    return (rows[:, :-1], rows[:, -1]) if has_bias else (rows, None)


def kmeans_channels(
    weight: Tensor, bias: Tensor | None, k: int, *, seed: int = 0, max_iter: int = 100,
    sample_weight: Tensor | None = None,
) -> ChannelGroups:
    """The paper's method: k-means over output channels; each channel becomes its cluster's centroid."""
    rows = channel_rows(weight, bias)
    result = kmeans(rows, k, seed=seed, max_iter=max_iter, sample_weight=sample_weight)
    w, b = _split(result.centroids, bias is not None)
    distortion = float(((rows - result.centroids[result.labels]) ** 2).sum())
    return ChannelGroups(w.contiguous(), None if b is None else b.contiguous(), result.labels.long(), distortion)


def magnitude_channels(weight: Tensor, bias: Tensor | None, k: int, *, seed: int = 0, **_: object) -> ChannelGroups:
    """Structured magnitude baseline: keep the K channels with the largest L2 norm (weight row and bias), drop the rest."""
    rows = channel_rows(weight, bias)
    c = rows.shape[0]
    if not 1 <= k <= c:
        raise ValueError(f"k must be between 1 and {c}, got {k}")
    norms = rows.norm(dim=1)
    keep = torch.sort(torch.topk(norms, k).indices).values  # keep channel order
    index = torch.full((c,), k, dtype=torch.long, device=rows.device)
    index[keep] = torch.arange(k, device=rows.device)
    dropped = torch.ones(c, dtype=torch.bool, device=rows.device)
    dropped[keep] = False
    w, b = _split(rows[keep], bias is not None)
    return ChannelGroups(w.contiguous(), None if b is None else b.contiguous(), index, float((rows[dropped] ** 2).sum()))


def magnitude_unstructured(weight: Tensor, keep_fraction: float) -> Tensor:
    """Unstructured magnitude baseline: zero the smallest-magnitude weights, keeping ``keep_fraction`` of them.

    Returns a new [C, in] weight; the bias is kept as is.
    """
    flat = weight.detach().abs().flatten()
    n_keep = int(round(flat.numel() * keep_fraction))
    if n_keep >= flat.numel():
        return weight.detach().clone()
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if n_keep > 0:
        mask[torch.topk(flat, n_keep).indices] = True
    return (weight.detach() * mask.view_as(weight)).to(weight.dtype)


StructuredMethod = Callable[..., ChannelGroups]

STRUCTURED: dict[str, StructuredMethod] = {
    "kmeans": kmeans_channels,
    "magnitude": magnitude_channels,
}
UNSTRUCTURED = ("magnitude-unstructured",)
METHOD_HELP = {
    "kmeans": "k-means over output channels, each replaced by its centroid (the paper)",
    "magnitude": "structured magnitude pruning: keep the K channels of largest L2 norm (baseline)",
    "magnitude-unstructured": "unstructured magnitude pruning: zero the smallest weights, same fraction (baseline)",
}
