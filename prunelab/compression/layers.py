"""The model's structure: find the compressible linear layers of a speech model, name them stably,
and say how they relate (which block, which kind, which layer reads their output, which write the
residual stream). Every other module asks this one instead of parsing module paths itself.

Works by module path, so it covers Whisper (``model.encoder.layers.3.fc1``) and the CTC encoders
of HuBERT / wav2vec2 / WavLM / data2vec-audio (``hubert.encoder.layers.3.feed_forward.intermediate_dense``).
Output projections, LM heads, CTC heads, feature projections and WavLM's relative-position gates
are not compressible by default.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from torch import nn

_ATTN = re.compile(
    r"(?:^|\.)(?P<part>encoder|decoder)\.layers\.(?P<block>\d+)\."
    r"(?P<attn>self_attn|encoder_attn|attention)\.(?P<proj>q|k|v|out)_proj$"
)
_FFN = re.compile(
    r"(?:^|\.)(?P<part>encoder|decoder)\.layers\.(?P<block>\d+)\."
    r"(?P<proj>fc1|fc2|feed_forward\.intermediate_dense|feed_forward\.output_dense)$"
)
_FFN_KIND = {"fc1": "fc1", "fc2": "fc2", "feed_forward.intermediate_dense": "fc1", "feed_forward.output_dense": "fc2"}

_FC2_OF = {"fc1": "fc2", "feed_forward.intermediate_dense": "feed_forward.output_dense"}

GROUPS = ("self_attn", "cross_attn", "ffn")
KINDS = ("q", "k", "v", "out", "fc1", "fc2")


@dataclass(frozen=True)
class LayerInfo:
    """One compressible ``nn.Linear``.

    Attributes:
        name: module path in the model, the layer's stable id (plans use it).
        part: ``"encoder"`` or ``"decoder"``.
        block: transformer block index within the part.
        group: ``"self_attn"``, ``"cross_attn"`` or ``"ffn"``.
        kind: ``"q"``, ``"k"``, ``"v"``, ``"out"``, ``"fc1"`` or ``"fc2"``.
        out_features: C, the number of output channels (rows of the weight).
        in_features: input width (columns of the weight).
        has_bias: whether the layer has a bias (appended to each row when clustering).
        partner: module path of the layer that reads this layer's outputs channel by channel (fc1 -> fc2,
            v -> out) or pairs with it (q <-> k: the score is sum_d q_d k_d); None for fc2/out.
        heads: number of attention heads of the layer's attention module (attention layers only).
        norm: module path of the LayerNorm whose output this layer reads, where the model is pre-LN
            (Whisper; CTC models with ``do_stable_layer_norm``); None where unknown.
    """

    name: str
    part: str
    block: int
    group: str
    kind: str
    out_features: int
    in_features: int
    has_bias: bool
    partner: str | None = None
    heads: int | None = None
    norm: str | None = None

    @property
    def unit(self) -> str | None:
        """The foldable unit this layer leads, or None: ``"ffn-neuron"`` (fc1 rows, folded into fc2),
        ``"value-dim"`` (v rows per head, folded into out), ``"qk-dim"`` (q rows per head, k rows summed)."""
        return {"fc1": "ffn-neuron", "v": "value-dim", "q": "qk-dim"}.get(self.kind)

    @property
    def head_dim(self) -> int | None:
        """Channels per head of an attention layer (its current width: narrower after a fold)."""
        return self.out_features // self.heads if self.heads else None

    @property
    def writes_residual(self) -> bool:
        """fc2 and out write straight into the residual stream; clustering their outputs cannot be folded away."""
        return self.kind in ("fc2", "out")

    @property
    def channels(self) -> int:
        return self.out_features

    @property
    def params(self) -> int:
        """Parameters of the layer: weight plus bias."""
        return self.out_features * (self.in_features + int(self.has_bias))

    @property
    def label(self) -> str:
        """Short human label, e.g. ``enc.3.fc1`` or ``dec.0.cross.q``."""
        group = {"self_attn": "", "cross_attn": "cross.", "ffn": ""}[self.group]
        return f"{self.part[:3]}.{self.block}.{group}{self.kind}"


def find_layers(model: nn.Module) -> list[LayerInfo]:
    """All compressible linear layers of ``model``, in module order."""
    found: list[LayerInfo] = []
    pre_ln = _is_pre_layer_norm(model)
    for name, module in model.named_modules():
        if not _is_linear_like(module):
            continue
        info = _classify(name, module)
        if info is None:
            continue
        parent = model.get_submodule(name.rpartition(".")[0])
        heads = getattr(parent, "num_heads", None) if info.group != "ffn" else None
        norm = _norm_of(model, info) if pre_ln else None
        found.append(replace(info, heads=heads, norm=norm))
    return found


def _is_pre_layer_norm(model: nn.Module) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) == "whisper" or bool(getattr(config, "do_stable_layer_norm", False))


# LayerNorm read by each sublayer in pre-LN blocks: Whisper names first, then the CTC encoders'.
_NORM_OF = {
    "self_attn": ("self_attn_layer_norm", "layer_norm"),
    "cross_attn_q": ("encoder_attn_layer_norm",),
    "ffn": ("final_layer_norm",),
}


def _norm_of(model: nn.Module, info: LayerInfo) -> str | None:
    """Module path of the LayerNorm whose output ``info`` reads (pre-LN models), or None when not found."""
    block = info.name.split(f".{info.part}.layers.{info.block}.")[0] + f".{info.part}.layers.{info.block}"
    if info.group == "cross_attn" and info.kind in ("k", "v"):  # keys/values of cross-attention: the encoder output
        candidates = [info.name.split(".decoder.")[0] + ".encoder.layer_norm"]
    elif info.kind in ("out", "fc2"):
        return None  # they read the attention output / the FFN hidden layer, not a LayerNorm
    else:
        key = "cross_attn_q" if info.group == "cross_attn" else info.group
        candidates = [f"{block}.{n}" for n in _NORM_OF[key]]
    for path in candidates:
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(module, nn.LayerNorm):
            return path
    return None


def ffn_pairs(layers: list[LayerInfo]) -> list[tuple[LayerInfo, LayerInfo]]:
    """(fc1, fc2) pairs of the same block: fc1 -> activation -> fc2, the pairs folding can shrink."""
    by_name = {l.name: l for l in layers}
    return [(l, by_name[l.partner]) for l in layers if l.kind == "fc1" and l.partner in by_name]


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted path ``name``."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _is_linear_like(module: nn.Module) -> bool:
    # Compressed layers (ClusteredLinear) keep their name and stay discoverable.
    return isinstance(module, nn.Linear) or hasattr(module, "out_features") and hasattr(module, "in_features")


def _classify(name: str, module: nn.Module) -> LayerInfo | None:
    shape = dict(
        out_features=int(module.out_features),
        in_features=int(module.in_features),
        has_bias=getattr(module, "bias", None) is not None,
    )
    if m := _ATTN.search(name):
        group = "cross_attn" if m["attn"] == "encoder_attn" else "self_attn"
        partner_kind = {"q": "k", "k": "q", "v": "out"}.get(m["proj"])
        partner = f"{name.rpartition('.')[0]}.{partner_kind}_proj" if partner_kind else None
        return LayerInfo(name, m["part"], int(m["block"]), group, m["proj"], **shape, partner=partner)
    if m := _FFN.search(name):
        kind = _FFN_KIND[m["proj"]]
        partner = name[: -len(m["proj"])] + _FC2_OF[m["proj"]] if kind == "fc1" else None
        return LayerInfo(name, m["part"], int(m["block"]), "ffn", kind, **shape, partner=partner)
    return None
