"""What a per-layer method returns: pure value types, no modules and no model plumbing.

A layer ``nn.Linear(in, C)`` is compressed to one of two results:

* :class:`ChannelGroups` (structured methods): K replacement rows plus a channel -> row index; the
  layer's sparsity is ``1 - K/C`` and the result can be folded into the layer that reads it.
* :class:`MaskedWeight` (unstructured baselines): a full-size weight with zeros; nothing is removed
  structurally, so it saves size and time only with sparse kernels.

Both carry the bias they want the layer to have and the squared distortion they caused, so the
caller never needs to know which kind it holds (:func:`prunelab.modules.to_module` builds the module).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


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

    @property
    def channels(self) -> int:
        return int(self.index.numel())

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.weight, self.bias, self.index) if t is not None)

    def dense(self) -> tuple[Tensor, Tensor | None]:
        """The equivalent full-size layer: weight [C, in] and bias [C] with every channel replaced."""
        weight = _pad_row(self.weight)[self.index]
        bias = _pad_row(self.bias)[self.index] if self.bias is not None else None
        return weight, bias


@dataclass
class MaskedWeight:
    """An unstructured result: the layer keeps its shape, some weights are zero.

    Attributes:
        weight: [C, in] with the pruned weights set to 0.
        bias: [C] (unchanged from the original layer) or None.
        distortion: squared Frobenius distance between the original and the masked weight.
    """

    weight: Tensor
    bias: Tensor | None
    distortion: float

    @property
    def channels(self) -> int:
        return int(self.weight.shape[0])

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.weight, self.bias) if t is not None)

    def dense(self) -> tuple[Tensor, Tensor | None]:
        return self.weight, self.bias


@dataclass
class UnitContext:
    """What a unit-level method reads besides the leader's own weight and bias (no data: weights only).

    Attributes:
        unit: ``"ffn-neuron"`` (leader fc1, partner fc2), ``"value-dim"`` (leader v_proj, partner out_proj) or
            ``"qk-dim"`` (leader q_proj, partner k_proj).
        partner_weight: fc2 / out_proj [O, C] (reads the leader's C outputs), or k_proj [C, D] (pairs with q).
        partner_bias: [O] for fc2 / out_proj, [C] for k_proj, or None.
        ln_weight, ln_bias: gain and shift [D] of the LayerNorm the leader reads (pre-LN models), else None.
        heads: attention heads (attention units), else None.
        partner_ln_weight, partner_ln_bias: the same for the partner's input where it differs from the leader's
            (k_proj of cross-attention reads the encoder output), else None.
    """

    unit: str
    partner_weight: Tensor
    partner_bias: Tensor | None
    ln_weight: Tensor | None = None
    ln_bias: Tensor | None = None
    heads: int | None = None
    partner_ln_weight: Tensor | None = None
    partner_ln_bias: Tensor | None = None


@dataclass
class FoldedUnit:
    """A unit compressed and folded by a unit-level method: new leader rows and the new partner.

    Attributes:
        weight: [K, in] leader rows; bias: [K] or None.
        partner_weight: fc2 / out_proj [O, K], or k_proj [K, D]; partner_bias: its bias or None.
        distortion: the method's own measure of what was lost (comparable within one method only).
    """

    weight: Tensor
    bias: Tensor | None
    partner_weight: Tensor
    partner_bias: Tensor | None
    distortion: float

    @property
    def k(self) -> int:
        return int(self.weight.shape[0])

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.weight, self.bias, self.partner_weight,
                                                           self.partner_bias) if t is not None)


LayerResult = ChannelGroups | MaskedWeight | FoldedUnit


def concat_groups(parts: list[ChannelGroups]) -> ChannelGroups:
    """Groups of consecutive channel blocks (e.g. attention heads) as one layer's groups.

    Block b's rows come after those of blocks < b, and its channels' indices are shifted by the rows before
    it; a channel dropped inside its block (index = that block's K) stays dropped (index = the total K).
    """
    k_total = sum(p.k for p in parts)
    offset, weights, biases, indices = 0, [], [], []
    for p in parts:
        weights.append(p.weight)
        biases.append(p.bias)
        indices.append(torch.where(p.index == p.k, torch.full_like(p.index, k_total), p.index + offset))
        offset += p.k
    bias = None if parts[0].bias is None else torch.cat(biases)
    return ChannelGroups(torch.cat(weights), bias, torch.cat(indices), float(sum(p.distortion for p in parts)))


def _pad_row(t: Tensor) -> Tensor:
    """``t`` with one zero row appended (row K = a dropped channel)."""
    return torch.cat([t, t.new_zeros((1,) + t.shape[1:])])


def channel_rows(weight: Tensor, bias: Tensor | None) -> Tensor:
    """[C, in(+1)] float32 matrix of output channels, bias appended as the last column."""
    rows = weight.detach().float()
    if bias is not None:
        rows = torch.cat([rows, bias.detach().float()[:, None]], dim=1)
    return rows


def split_rows(rows: Tensor, has_bias: bool) -> tuple[Tensor, Tensor | None]:
    """Inverse of :func:`channel_rows`: ([C, in] weight, [C] bias or None), both contiguous."""
    if has_bias:
        return rows[:, :-1].contiguous(), rows[:, -1].contiguous()
    return rows.contiguous(), None
