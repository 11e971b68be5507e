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


def _importance(importance: Tensor | None, c: int, device) -> Tensor:
    if importance is None:
        return torch.ones(c, device=device)
    imp = torch.as_tensor(importance).detach().float().to(device)
    if imp.shape != (c,):
        raise ValueError(f"importance must have shape [{c}], got {list(imp.shape)}")
    if not bool(torch.isfinite(imp).all()) or bool((imp < 0).any()):
        raise ValueError("importance must be finite and non-negative")
    return imp


def _groups_from_labels(rows: Tensor, labels: Tensor, chosen: Tensor, has_bias: bool, dropped: Tensor | None = None
                        ) -> ChannelGroups:
    """ChannelGroups whose row g is ``rows[chosen[g]]``; channel c uses row ``labels[c]`` (K where dropped)."""
    k = int(chosen.numel())
    index = labels.long().clone()
    if dropped is not None:
        index[dropped] = k
    pad = torch.cat([rows[chosen], rows.new_zeros(1, rows.shape[1])])
    distortion = float(((rows - pad[index]) ** 2).sum())
    w, b = _split(rows[chosen], has_bias)
    return ChannelGroups(w.contiguous(), None if b is None else b.contiguous(), index, distortion)


def kmeans_weighted_channels(
    weight: Tensor, bias: Tensor | None, k: int, *, importance: Tensor | None = None, seed: int = 0,
    max_iter: int = 100, **_: object,
) -> ChannelGroups:
    """Importance-weighted k-means: sample weight ``importance**2`` per channel, so centroids are weighted
    means and the objective is the next-layer-weighted distortion (see :mod:`prunelab.sensitivity`)."""
    rows = channel_rows(weight, bias)
    imp = _importance(importance, rows.shape[0], rows.device)
    return kmeans_channels(weight, bias, k, seed=seed, max_iter=max_iter, sample_weight=imp ** 2 + 1e-12)


def _scores(rows: Tensor, importance: Tensor | None) -> Tensor:
    """How much a channel contributes downstream: its row norm times its next-layer importance."""
    return rows.norm(dim=1) * _importance(importance, rows.shape[0], rows.device)


def representative_channels(
    weight: Tensor, bias: Tensor | None, k: int, *, importance: Tensor | None = None, seed: int = 0,
    max_iter: int = 100, **_: object,
) -> ChannelGroups:
    """Cluster channels with plain k-means, then replace each cluster by its MOST IMPORTANT member channel
    (largest ``row norm x next-layer importance``) instead of the centroid.

    The representative is exact for itself; the other members share its row. Folded FFNs sum the
    cluster's fc2 columns onto the representative (``fold_ffn`` unchanged). Without ``importance`` the
    member with the largest row norm is kept.
    """
    rows = channel_rows(weight, bias)
    c = rows.shape[0]
    if not 1 <= k <= c:
        raise ValueError(f"k must be between 1 and {c}, got {k}")
    labels = kmeans(rows, k, seed=seed, max_iter=max_iter).labels.long()
    score = _scores(rows, importance)
    chosen = _argmax_per_group(score, labels, k)
    return _groups_from_labels(rows, labels, chosen, bias is not None)


def _argmax_per_group(score: Tensor, labels: Tensor, k: int) -> Tensor:
    """Index of the highest-score member of each group 0..k-1 (every group must be non-empty)."""
    n = score.numel()
    gmax = torch.full((k,), float("-inf"), device=score.device).scatter_reduce(0, labels, score.float(), reduce="amax")
    best = score.float() == gmax[labels]
    cand = torch.where(best, torch.arange(n, device=score.device), torch.full_like(labels, n))
    chosen = torch.full((k,), n, dtype=torch.long, device=score.device).scatter_reduce(0, labels, cand, reduce="amin")
    chosen[chosen == n] = -1  # ties broken by the lowest channel index
    if bool((chosen < 0).any()):
        raise RuntimeError("empty cluster")
    return chosen


def hybrid_channels(
    weight: Tensor, bias: Tensor | None, k: int, *, importance: Tensor | None = None, seed: int = 0,
    max_iter: int = 100, dead_ratio: float = 0.5, max_drop_fraction: float = 0.5, **_: object,
) -> ChannelGroups:
    """Drop weak (near-dead) channels, cluster the rest (representative members, as ``representative``).

    A channel is near-dead when its score (row norm x next-layer importance) is below ``dead_ratio`` times
    the median score; at most ``max_drop_fraction`` of the C - K channels to remove are dropped this way
    (lowest scores first), the rest of the reduction comes from clustering the surviving channels into K.
    Dropped channels use index K (they output 0; folding removes them exactly).
    """
    rows = channel_rows(weight, bias)
    c = rows.shape[0]
    if not 1 <= k <= c:
        raise ValueError(f"k must be between 1 and {c}, got {k}")
    score = _scores(rows, importance)
    n_dead = int((score < dead_ratio * score.median()).sum())
    n_drop = min(n_dead, int((c - k) * max_drop_fraction))
    if n_drop == 0:
        return representative_channels(weight, bias, k, importance=importance, seed=seed, max_iter=max_iter)
    dropped_idx = torch.argsort(score, stable=True)[:n_drop]
    dropped = torch.zeros(c, dtype=torch.bool, device=rows.device)
    dropped[dropped_idx] = True
    keep = (~dropped).nonzero().squeeze(1)
    sub_labels = kmeans(rows[keep], k, seed=seed, max_iter=max_iter).labels.long()
    labels = torch.full((c,), k, dtype=torch.long, device=rows.device)
    labels[keep] = sub_labels
    chosen = keep[_argmax_per_group(score[keep], sub_labels, k)]
    return _groups_from_labels(rows, labels, chosen, bias is not None, dropped)


StructuredMethod = Callable[..., ChannelGroups]

STRUCTURED: dict[str, StructuredMethod] = {
    "kmeans": kmeans_channels,
    "magnitude": magnitude_channels,
    "kmeans-weighted": kmeans_weighted_channels,
    "representative": representative_channels,
    "hybrid": hybrid_channels,
}
UNSTRUCTURED = ("magnitude-unstructured",)
NEEDS_IMPORTANCE = frozenset({"kmeans-weighted", "representative", "hybrid"})
"""Structured methods that take ``importance=`` (next-layer channel importance, see :mod:`prunelab.sensitivity`)."""
METHOD_HELP = {
    "kmeans": "k-means over output channels, each replaced by its centroid (the paper)",
    "magnitude": "structured magnitude pruning: keep the K channels of largest L2 norm (baseline)",
    "magnitude-unstructured": "unstructured magnitude pruning: zero the smallest weights, same fraction (baseline)",
    "kmeans-weighted": "importance-weighted k-means: channels weighted by how much the next layer uses them, "
                       "weighted centroids (data-free)",
    "representative": "k-means clusters, each replaced by its most important member channel instead of the mean "
                      "(data-free)",
    "hybrid": "drop near-dead channels (magnitude x next-layer importance), cluster the rest with "
              "representative members (data-free)",
    "recommended": "the best data-free setting of the WER study (method + allocation): see RECOMMENDED",
}

RECOMMENDED = {"method": "representative", "allocate": "auto", "preset": "encoder-fc1"}
"""The setting that won ``benchmarks/WER_STUDY.md`` (method, layer allocation, and the layers it was measured
on); ``"recommended"`` resolves to it. The preset applies where the caller gives none."""

ALLOCATIONS = ("uniform", "auto")


def resolve_method(name: str, allocate: str | None = None) -> tuple[str, str]:
    """``(method, allocation)`` for a method name; ``"recommended"`` -> :data:`RECOMMENDED` (an explicit
    ``allocate`` overrides the recommended allocation). Other names pass through (default allocation uniform)."""
    if name == "recommended":
        return RECOMMENDED["method"], allocate or RECOMMENDED["allocate"]
    return name, allocate or "uniform"
