"""Compressed layers that really are smaller: shared-row linear layers and folded FFN pairs.

Also the small registry of module types a saved model can contain (:func:`module_record` /
:func:`build_module`), so that loading a saved folder rebuilds every replaced module before the
weights are read, and :func:`to_module`, which turns any per-layer result into its module.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ModelLoadError
from .groups import ChannelGroups, LayerResult, MaskedWeight


def empty_linear(in_features: int, out_features: int, bias: bool, device: torch.device | str | None,
                 dtype: torch.dtype | None) -> nn.Linear:
    """An ``nn.Linear`` with uninitialised weights, for layers whose weights are copied in at once (skips
    the random initialisation: measured 13 ms for a 4096 x 1024 layer, 1.2 s of a medium-sized compress)."""
    return nn.utils.skip_init(nn.Linear, in_features, out_features, bias=bias, device=device, dtype=dtype)


def linear_like(weight: Tensor, bias: Tensor | None, like: nn.Module) -> nn.Linear:
    """A new dense layer with ``weight`` [out, in] and ``bias`` [out] (or None), in ``like``'s dtype and device."""
    layer = empty_linear(weight.shape[1], weight.shape[0], bias is not None, like.weight.device, like.weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


class ClusteredLinear(nn.Module):
    """A linear layer whose C output channels share K rows.

    Stores ``weight`` [K, in], ``bias`` [K] and ``index`` [C] (int64; the value K marks a dropped channel,
    which outputs 0). ``forward`` computes the K distinct outputs, then gathers the C channels, so it
    costs K/C of the dense matmul.
    """

    def __init__(self, in_features: int, k: int, out_features: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        self.in_features, self.out_features, self.k = in_features, out_features, k
        self.weight = nn.Parameter(torch.empty(k, in_features, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(k, device=device, dtype=dtype)) if bias else None
        self.register_buffer("index", torch.zeros(out_features, dtype=torch.long, device=device))

    @classmethod
    def from_groups(cls, groups: ChannelGroups, dtype: torch.dtype | None = None) -> "ClusteredLinear":
        dtype = dtype or groups.weight.dtype
        layer = cls(groups.weight.shape[1], groups.k, groups.index.numel(), groups.bias is not None,
                    device=groups.weight.device, dtype=dtype)
        with torch.no_grad():
            layer.weight.copy_(groups.weight)
            if groups.bias is not None:
                layer.bias.copy_(groups.bias)
            layer.index.copy_(groups.index)
        return layer

    @property
    def has_dropped(self) -> bool:
        return bool((self.index == self.k).any())

    def forward(self, x: Tensor) -> Tensor:  # x: [..., in] -> [..., C]
        z = F.linear(x, self.weight, self.bias)  # [..., K]
        if self.has_dropped:
            z = F.pad(z, (0, 1))
        return z.index_select(-1, self.index)

    def dense(self) -> nn.Linear:
        """The equivalent full-size ``nn.Linear`` (for checks and export)."""
        groups = ChannelGroups(self.weight.detach(), None if self.bias is None else self.bias.detach(), self.index, 0.0)
        weight, bias = groups.dense()
        layer = empty_linear(self.in_features, self.out_features, bias is not None, weight.device, weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(bias)
        return layer

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, k={self.k}, out_features={self.out_features}, bias={self.bias is not None}"


def fold_ffn(fc1: ClusteredLinear, fc2: nn.Module) -> tuple[nn.Linear, nn.Module]:
    """Fold a clustered fc1 into its fc2: fc1 -> activation -> fc2 becomes two genuinely smaller layers.

    Channels of fc1 that share a row give identical activations, so fc2 can sum their input columns:
    the folded fc1 is ``nn.Linear(in, K)`` and fc2 gets K input columns ([out, K]). Dropped channels
    (index K) are removed, which is exact for activations with act(0) = 0 (GELU, ReLU, SiLU).
    ``fc2`` may be an ``nn.Linear`` or a :class:`ClusteredLinear`; it keeps its type.
    """
    k = fc1.k
    new_fc1 = empty_linear(fc1.in_features, k, fc1.bias is not None, fc1.weight.device, fc1.weight.dtype)
    with torch.no_grad():
        new_fc1.weight.copy_(fc1.weight)
        if fc1.bias is not None:
            new_fc1.bias.copy_(fc1.bias)
    # summing matrix S [K+1, C]: S[g, c] = 1 when channel c uses row g; row K collects dropped channels.
    w2 = fc2.weight.detach()  # [out or K2, C]
    folded = torch.zeros(w2.shape[0], k + 1, dtype=w2.dtype, device=w2.device)
    folded.index_add_(1, fc1.index, w2)
    folded = folded[:, :k].contiguous()
    if isinstance(fc2, ClusteredLinear):
        new_fc2: nn.Module = ClusteredLinear(k, fc2.k, fc2.out_features, fc2.bias is not None,
                                             device=w2.device, dtype=w2.dtype)
        with torch.no_grad():
            new_fc2.index.copy_(fc2.index)
    else:
        new_fc2 = empty_linear(k, fc2.out_features, fc2.bias is not None, w2.device, w2.dtype)
    with torch.no_grad():
        new_fc2.weight.copy_(folded)
        if fc2.bias is not None:
            new_fc2.bias.copy_(fc2.bias)
    return new_fc1, new_fc2


def to_module(result: LayerResult, like: nn.Module) -> nn.Module:
    """The module that replaces ``like`` (the original layer) for a per-layer result, in ``like``'s dtype.

    :class:`ChannelGroups` -> :class:`ClusteredLinear` (K rows + index); :class:`MaskedWeight` -> a dense
    ``nn.Linear`` with the masked weight and the result's bias.
    """
    dtype, device = like.weight.dtype, like.weight.device
    if isinstance(result, ChannelGroups):
        return ClusteredLinear.from_groups(result, dtype=dtype)
    if isinstance(result, MaskedWeight):
        out, inp = result.weight.shape
        dense = empty_linear(inp, out, result.bias is not None, device, dtype)
        with torch.no_grad():
            dense.weight.copy_(result.weight)
            if result.bias is not None:
                dense.bias.copy_(result.bias)
        return dense
    raise TypeError(f"no module for a {type(result).__name__}")


def module_record(module: nn.Module) -> dict:
    """Type and shape of a replaced module, enough to rebuild it empty before loading weights."""
    if isinstance(module, ClusteredLinear):
        return {"type": "ClusteredLinear", "in_features": module.in_features, "k": module.k,
                "out_features": module.out_features, "bias": module.bias is not None}
    return {"type": "Linear", "in_features": module.in_features, "out_features": module.out_features,
            "bias": module.bias is not None}


def build_module(record: dict) -> nn.Module:
    """An empty module of the recorded type and shape (weights are loaded afterwards)."""
    if record["type"] == "ClusteredLinear":
        return ClusteredLinear(record["in_features"], record["k"], record["out_features"], record["bias"])
    if record["type"] == "Linear":
        return nn.Linear(record["in_features"], record["out_features"], bias=record["bias"])
    raise ModelLoadError(f"The saved model names a module type {record['type']!r} that this version of prunelab "
                         "does not know; upgrade prunelab or re-save the model.")
