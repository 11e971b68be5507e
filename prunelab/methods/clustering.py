"""Clustering methods: the paper's k-means over output channels, and data-free variants of it.

Each groups the C output channels of a layer (rows of ``weight`` [C, in], the bias appended as an extra
column) into K clusters and returns :class:`~prunelab.groups.ChannelGroups`:

* ``kmeans`` (the paper): each channel becomes its cluster's centroid;
* ``kmeans-weighted``: k-means with sample weight ``importance**2`` (importance = how much the next
  layer reads the channel, :mod:`prunelab.compression.sensitivity`), so the objective is the
  next-layer-weighted distortion and centroids are weighted means;
* ``representative``: plain k-means clusters, each replaced by its most important member channel
  (largest ``row norm x importance``) instead of the mean: exact for that member;
* ``hybrid``: drop near-dead channels (low ``row norm x importance``), cluster the rest as ``representative``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import PlanError
from ..groups import ChannelGroups, channel_rows, split_rows
from ..kmeans import kmeans
from .registry import register_method


@register_method("kmeans", label="k-means clustering (paper)", origin="paper",
                 help="k-means over output channels, each replaced by its centroid (the paper)")
def kmeans_channels(
    weight: Tensor, bias: Tensor | None, k: int, *, seed: int = 0, max_iter: int = 100,
    sample_weight: Tensor | None = None,
) -> ChannelGroups:
    """The paper's method: k-means over output channels; each channel becomes its cluster's centroid."""
    rows = channel_rows(weight, bias)
    result = kmeans(rows, k, seed=seed, max_iter=max_iter, sample_weight=sample_weight)
    w, b = split_rows(result.centroids, bias is not None)
    if sample_weight is None:  # the inertia is this sum (measured: recomputing it cost 15 ms a layer at medium size)
        distortion = result.inertia
    else:
        distortion = float(((rows - result.centroids[result.labels]) ** 2).sum())
    return ChannelGroups(w, b, result.labels.long(), distortion)


@register_method("kmeans-weighted", label="Importance-weighted k-means", needs_importance=True,
                 help="importance-weighted k-means: channels weighted by how much the next layer uses them, "
                      "weighted centroids (data-free)")
def kmeans_weighted_channels(
    weight: Tensor, bias: Tensor | None, k: int, *, importance: Tensor | None = None, seed: int = 0,
    max_iter: int = 100,
) -> ChannelGroups:
    """k-means with sample weight ``importance**2`` per channel (weighted centroids, weighted objective)."""
    imp = check_importance(importance, weight.shape[0], weight.device)
    return kmeans_channels(weight, bias, k, seed=seed, max_iter=max_iter, sample_weight=imp ** 2 + 1e-12)


@register_method("representative", label="Representative channel per cluster", needs_importance=True,
                 help="k-means clusters, each replaced by its most important member channel instead of the mean "
                      "(data-free)")
def representative_channels(
    weight: Tensor, bias: Tensor | None, k: int, *, importance: Tensor | None = None, seed: int = 0,
    max_iter: int = 100,
) -> ChannelGroups:
    """Cluster channels with plain k-means, then replace each cluster by its MOST IMPORTANT member channel
    (largest ``row norm x next-layer importance``) instead of the centroid.

    The representative is exact for itself; the other members share its row. Folded FFNs sum the
    cluster's fc2 columns onto the representative. Without ``importance`` the member with the largest
    row norm is kept.
    """
    rows = channel_rows(weight, bias)
    labels = kmeans(rows, k, seed=seed, max_iter=max_iter).labels.long()
    chosen = argmax_per_group(channel_scores(rows, importance), labels, k)
    return groups_from_members(rows, labels, chosen, bias is not None)


@dataclass(frozen=True)
class HybridOptions:
    """Options of ``hybrid``.

    Attributes:
        dead_ratio: a channel is near-dead when its score is below this fraction of the median score.
        max_drop_fraction: at most this fraction of the C - K channels to remove are dropped as dead.
    """

    dead_ratio: float = 0.5
    max_drop_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not self.dead_ratio >= 0 or not 0 <= self.max_drop_fraction <= 1:
            raise PlanError(f"hybrid needs dead_ratio >= 0 and 0 <= max_drop_fraction <= 1, got {self}.")


@register_method("hybrid", label="Hybrid: drop dead channels, cluster the rest", needs_importance=True,
                 options=HybridOptions,
                 help="drop near-dead channels (magnitude x next-layer importance), cluster the rest with "
                      "representative members (data-free)")
def hybrid_channels(
    weight: Tensor, bias: Tensor | None, k: int, *, importance: Tensor | None = None, seed: int = 0,
    max_iter: int = 100, dead_ratio: float = 0.5, max_drop_fraction: float = 0.5,
) -> ChannelGroups:
    """Drop weak (near-dead) channels, cluster the rest (representative members, as ``representative``).

    A channel is near-dead when its score (row norm x next-layer importance) is below ``dead_ratio`` times
    the median score; at most ``max_drop_fraction`` of the C - K channels to remove are dropped this way
    (lowest scores first), the rest of the reduction comes from clustering the surviving channels into K.
    Dropped channels use index K (they output 0; folding removes them exactly).
    """
    rows = channel_rows(weight, bias)
    c = rows.shape[0]
    score = channel_scores(rows, importance)
    n_dead = int((score < dead_ratio * score.median()).sum())
    n_drop = min(n_dead, int((c - k) * max_drop_fraction))
    if n_drop == 0:
        return representative_channels(weight, bias, k, importance=importance, seed=seed, max_iter=max_iter)
    dropped = torch.zeros(c, dtype=torch.bool, device=rows.device)
    dropped[torch.argsort(score, stable=True)[:n_drop]] = True
    keep = (~dropped).nonzero().squeeze(1)
    sub_labels = kmeans(rows[keep], k, seed=seed, max_iter=max_iter).labels.long()
    labels = torch.full((c,), k, dtype=torch.long, device=rows.device)
    labels[keep] = sub_labels
    chosen = keep[argmax_per_group(score[keep], sub_labels, k)]
    return groups_from_members(rows, labels, chosen, bias is not None, dropped)


# --- helpers shared by the importance-aware methods ------------------------------------------------

def check_importance(importance: Tensor | None, c: int, device: torch.device | str) -> Tensor:
    """``importance`` as float [C] on ``device`` (ones when None); :class:`PlanError` if it is not usable."""
    if importance is None:
        return torch.ones(c, device=device)
    imp = torch.as_tensor(importance).detach().float().to(device)
    if imp.shape != (c,):
        raise PlanError(f"Channel importance must have shape [{c}], got {list(imp.shape)}.")
    if not bool(torch.isfinite(imp).all()) or bool((imp < 0).any()):
        raise PlanError("Channel importance must be finite and non-negative.")
    return imp


def channel_scores(rows: Tensor, importance: Tensor | None) -> Tensor:
    """[C] how much a channel contributes downstream: its row norm times its next-layer importance."""
    return rows.norm(dim=1) * check_importance(importance, rows.shape[0], rows.device)


def argmax_per_group(score: Tensor, labels: Tensor, k: int) -> Tensor:
    """[K] index of the highest-score member of each group 0..k-1 (ties: the lowest index; no group may be empty)."""
    n = score.numel()
    gmax = torch.full((k,), float("-inf"), device=score.device).scatter_reduce(0, labels, score.float(), reduce="amax")
    best = score.float() == gmax[labels]
    cand = torch.where(best, torch.arange(n, device=score.device), torch.full_like(labels, n))
    chosen = torch.full((k,), n, dtype=torch.long, device=score.device).scatter_reduce(0, labels, cand, reduce="amin")
    if bool((chosen == n).any()):
        raise RuntimeError("empty cluster")  # an engine invariant, not a user error
    return chosen


def groups_from_members(rows: Tensor, labels: Tensor, chosen: Tensor, has_bias: bool,
                        dropped: Tensor | None = None) -> ChannelGroups:
    """ChannelGroups whose row g is ``rows[chosen[g]]``; channel c uses row ``labels[c]`` (K where ``dropped``)."""
    k = int(chosen.numel())
    index = labels.long().clone()
    if dropped is not None:
        index[dropped] = k
    pad = torch.cat([rows[chosen], rows.new_zeros(1, rows.shape[1])])
    distortion = float(((rows - pad[index]) ** 2).sum())
    w, b = split_rows(rows[chosen], has_bias)
    return ChannelGroups(w, b, index, distortion)
