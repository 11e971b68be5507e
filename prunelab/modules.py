"""Compressed layers that really are smaller: shared-row linear layers and folded FFN pairs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .methods import ChannelGroups


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
        layer = nn.Linear(self.in_features, self.out_features, bias=bias is not None,
                          device=weight.device, dtype=weight.dtype)
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
    new_fc1 = nn.Linear(fc1.in_features, k, bias=fc1.bias is not None, device=fc1.weight.device, dtype=fc1.weight.dtype)
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
        new_fc2 = nn.Linear(k, fc2.out_features, bias=fc2.bias is not None, device=w2.device, dtype=w2.dtype)
    with torch.no_grad():
        new_fc2.weight.copy_(folded)
        if fc2.bias is not None:
            new_fc2.bias.copy_(fc2.bias)
    return new_fc1, new_fc2
