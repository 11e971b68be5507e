"""The magnitude-pruning baselines the paper compares against, at the same sparsity.

* structured: keep the K output channels of largest L2 norm (weight row with the bias appended), drop
  the others (they output 0; folding removes them exactly);
* unstructured: zero the smallest-magnitude weights, the same fraction ``1 - K/C`` of each layer; the
  bias is kept. Nothing is removed structurally, so it saves size and time only with sparse kernels.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..groups import ChannelGroups, MaskedWeight, channel_rows, split_rows
from .registry import check_k, register_method


@register_method("magnitude", label="Structured magnitude (baseline)", origin="baseline",
                 help="structured magnitude pruning: keep the K channels of largest L2 norm (baseline)")
def magnitude_channels(weight: Tensor, bias: Tensor | None, k: int, **_: object) -> ChannelGroups:
    """Keep the K channels with the largest L2 norm (weight row and bias), in their original order; drop the rest."""
    rows = channel_rows(weight, bias)
    c = rows.shape[0]
    check_k(k, c)
    keep = torch.sort(torch.topk(rows.norm(dim=1), k).indices).values
    index = torch.full((c,), k, dtype=torch.long, device=rows.device)
    index[keep] = torch.arange(k, device=rows.device)
    dropped = index == k
    w, b = split_rows(rows[keep], bias is not None)
    return ChannelGroups(w, b, index, float((rows[dropped] ** 2).sum()))


def magnitude_unstructured(weight: Tensor, keep_fraction: float) -> Tensor:
    """Zero the smallest-magnitude weights of ``weight`` [C, in], keeping ``keep_fraction`` of them; a new tensor."""
    flat = weight.detach().abs().flatten()
    n_keep = int(round(flat.numel() * keep_fraction))
    if n_keep >= flat.numel():
        return weight.detach().clone()
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if n_keep > 0:
        mask[torch.topk(flat, n_keep).indices] = True
    return (weight.detach() * mask.view_as(weight)).to(weight.dtype)


@register_method("magnitude-unstructured", label="Unstructured magnitude (baseline)", structured=False,
                 origin="baseline",
                 help="unstructured magnitude pruning: zero the smallest weights, same fraction (baseline)")
def magnitude_unstructured_layer(weight: Tensor, bias: Tensor | None, k: int, **_: object) -> MaskedWeight:
    """Unstructured baseline at the sparsity ``1 - k/C``: the masked weight, the original bias."""
    masked = magnitude_unstructured(weight, k / weight.shape[0])
    distortion = float(((weight.detach().float() - masked.float()) ** 2).sum())
    return MaskedWeight(masked, None if bias is None else bias.detach().clone(), distortion)
