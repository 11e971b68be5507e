"""Attention whose per-head query/key width and value width differ from the original head size, and the
folds that make them smaller.

Why. An attention block computes, per head h, ``softmax(q_h k_h^T * s) v_h`` and then ``out_proj`` of the
concatenated heads. Two kinds of units inside a head fold away exactly when their rows coincide:

* **value dimensions**: v_proj rows d and d' of one head that are equal give equal value columns, so
  out_proj can sum its columns d and d' and the head keeps one value dimension (v_proj loses a row,
  out_proj a column): ``v_dim < head_dim``.
* **query/key dimensions**: the score is ``sum_d q_d k_d``; when q rows d and d' are equal (q_d = q_d'),
  ``q_d k_d + q_d' k_d' = q_d (k_d + k_d')``, so q_proj keeps one row and k_proj the SUM of the two rows
  (bias too): ``qk_dim < head_dim``. The softmax scale stays the original ``head_dim ** -0.5``.

Neither touches the residual stream (out_proj still writes D channels). Clustering v or q rows *per head*
(:func:`prunelab.compression.compress` with ``units="foldable"``) makes rows equal; :func:`fold_values`
and :func:`fold_query_key` then shrink the projections and :func:`set_widths` switches the attention
module to the narrower widths. A module switched this way runs the same computation at
``qk_dim = v_dim = head_dim`` (checked by the tests), and a saved model records its widths so
``load_model`` rebuilds it.

Supported: Whisper's attention (self, cross, with the decoder's key/value cache) and the attention of
HuBERT, wav2vec2 and data2vec-audio. WavLM's attention (gated relative position bias) is not.
This module imports transformers, so it is imported only where attention is folded or loaded.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers.cache_utils import EncoderDecoderCache
from transformers.models.data2vec.modeling_data2vec_audio import Data2VecAudioAttention
from transformers.models.hubert.modeling_hubert import HubertAttention
from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2Attention
from transformers.models.whisper.modeling_whisper import ALL_ATTENTION_FUNCTIONS, WhisperAttention, eager_attention_forward

from .errors import PlanError
from .modules import ClusteredLinear


def _attend(module: nn.Module, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
            scaling: float, output_attentions: bool, **kwargs) -> tuple[Tensor, Tensor | None]:
    """The model's attention kernel (eager or SDPA) on [B, H, T, qk_dim] queries/keys and [B, H, S, v_dim] values."""
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(module.config._attn_implementation, eager_attention_forward)
    return interface(module, query, key, value, attention_mask, dropout=0.0 if not module.training else module.dropout,
                     scaling=scaling, output_attentions=output_attentions, **kwargs)


class VariableWidthWhisperAttention(WhisperAttention):
    """``WhisperAttention`` with per-head widths ``qk_dim`` (queries, keys) and ``v_dim`` (values).

    Same forward as transformers 5's (cache handling included); only the head views use the two widths.
    ``self.scaling`` keeps the original ``head_dim ** -0.5``.
    """

    qk_dim: int
    v_dim: int

    def forward(self, hidden_states: Tensor, key_value_states: Tensor | None = None, cache=None,
                attention_mask: Tensor | None = None, output_attentions: bool = False, **kwargs):
        if "past_key_values" in kwargs:  # the name transformers used before 5.40
            cache = kwargs.pop("past_key_values")
        is_cross_attention = key_value_states is not None
        input_shape = hidden_states.shape[:-1]
        query = (self.q_proj(hidden_states) * self.scaling).view(*input_shape, -1, self.qk_dim)
        query = query.transpose(1, 2).contiguous()
        is_updated = False
        if cache is not None and isinstance(cache, EncoderDecoderCache):
            is_updated = cache.is_updated.get(self.layer_idx)
            if is_cross_attention:
                cache.is_updated[self.layer_idx] = True
                cache = cache.cross_attention_cache
            else:
                cache = cache.self_attention_cache
        current = key_value_states if key_value_states is not None else hidden_states
        if is_cross_attention and cache and is_updated:
            key, value = cache.layers[self.layer_idx].keys, cache.layers[self.layer_idx].values
        else:
            key = self.k_proj(current).view(input_shape[0], -1, self.num_heads, self.qk_dim).transpose(1, 2).contiguous()
            value = self.v_proj(current).view(input_shape[0], -1, self.num_heads, self.v_dim).transpose(1, 2).contiguous()
            if cache is not None:
                key, value = cache.update(key, value, self.layer_idx, kwargs=kwargs)
        out, weights = _attend(self, query, key, value, attention_mask, 1.0, output_attentions, **kwargs)
        return self.out_proj(out.reshape(*input_shape, -1).contiguous()), weights


def _ctc_forward(self, hidden_states: Tensor, key_value_states: Tensor | None = None,
                 attention_mask: Tensor | None = None, output_attentions: bool | None = False, **kwargs):
    """HuBERT / wav2vec2 / data2vec-audio attention forward with per-head widths ``qk_dim`` and ``v_dim``."""
    input_shape = hidden_states.shape[:-1]
    query = self.q_proj(hidden_states).view(*input_shape, -1, self.qk_dim).transpose(1, 2)
    current = key_value_states if key_value_states is not None else hidden_states
    key = self.k_proj(current).view(*current.shape[:-1], -1, self.qk_dim).transpose(1, 2)
    value = self.v_proj(current).view(*current.shape[:-1], -1, self.v_dim).transpose(1, 2)
    out, weights = _attend(self, query, key, value, attention_mask, self.scaling, bool(output_attentions), **kwargs)
    return self.out_proj(out.reshape(*input_shape, -1).contiguous()), weights


class VariableWidthHubertAttention(HubertAttention):
    """``HubertAttention`` with per-head widths ``qk_dim`` and ``v_dim`` (see the module doc)."""

    forward = _ctc_forward


class VariableWidthWav2Vec2Attention(Wav2Vec2Attention):
    """``Wav2Vec2Attention`` with per-head widths ``qk_dim`` and ``v_dim`` (see the module doc)."""

    forward = _ctc_forward


class VariableWidthData2VecAudioAttention(Data2VecAudioAttention):
    """``Data2VecAudioAttention`` with per-head widths ``qk_dim`` and ``v_dim`` (see the module doc)."""

    forward = _ctc_forward


VARIABLE_WIDTH = {
    WhisperAttention: VariableWidthWhisperAttention,
    HubertAttention: VariableWidthHubertAttention,
    Wav2Vec2Attention: VariableWidthWav2Vec2Attention,
    Data2VecAudioAttention: VariableWidthData2VecAudioAttention,
}
"""Original attention class -> its variable-width version."""


def widths(attn: nn.Module) -> tuple[int, int]:
    """(qk_dim, v_dim) of an attention module: its head size unless it was narrowed."""
    return getattr(attn, "qk_dim", attn.head_dim), getattr(attn, "v_dim", attn.head_dim)


def set_widths(attn: nn.Module, *, qk_dim: int | None = None, v_dim: int | None = None) -> nn.Module:
    """Switch ``attn`` (in place) to its variable-width class with the given per-head widths; returns it.

    Only the class and the two widths change: the caller puts projections of matching shapes in place
    (``q_proj``/``k_proj``: ``heads * qk_dim`` outputs, ``v_proj``: ``heads * v_dim`` outputs, ``out_proj``:
    ``heads * v_dim`` inputs).
    """
    cls = type(attn)
    if cls not in VARIABLE_WIDTH.values():
        base = next((b for b in VARIABLE_WIDTH if cls is b), None)
        if base is None:
            raise PlanError(f"Attention units of {cls.__name__} cannot be folded (supported: Whisper, HuBERT, "
                            "wav2vec2, data2vec-audio); compress its layers' channels instead (units='channels').")
        qk, v = attn.head_dim, attn.head_dim
        attn.__class__ = VARIABLE_WIDTH[base]
        attn.qk_dim, attn.v_dim = qk, v
    if qk_dim is not None:
        attn.qk_dim = int(qk_dim)
    if v_dim is not None:
        attn.v_dim = int(v_dim)
    return attn


def _linear(weight: Tensor, bias: Tensor | None) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def _check_per_head(leader: ClusteredLinear, heads: int) -> int:
    """K per head of a leader clustered head by head (cluster ids of head h in [h*k, (h+1)*k)); PlanError otherwise."""
    c, k = leader.out_features, leader.k
    if c % heads or k % heads:
        raise PlanError(f"{k} clusters over {c} channels cannot be split evenly over {heads} heads.")
    hd, kh = c // heads, k // heads
    head_of_channel = torch.arange(c, device=leader.index.device) // hd
    kept = leader.index < k
    if bool((leader.index[kept] // kh != head_of_channel[kept]).any()):
        raise PlanError("Attention units fold only when every head is clustered on its own (units='foldable').")
    return kh


def fold_values(v: ClusteredLinear, out: nn.Linear, heads: int) -> tuple[nn.Linear, nn.Linear, int]:
    """Fold value dimensions clustered per head: v_proj keeps K rows, out_proj sums the columns of each cluster.

    Args:
        v: v_proj clustered head by head, ``weight`` [K, D], ``index`` [H*hd] (K = H * v_dim).
        out: out_proj, ``weight`` [D_out, H*hd].
    Returns:
        (v_proj [H*v_dim, D], out_proj [D_out, H*v_dim], v_dim). Dropped dimensions (index K) are removed,
        which is exact: a zero value column contributes nothing.
    """
    kh = _check_per_head(v, heads)
    w2 = out.weight.detach()
    summed = torch.zeros(w2.shape[0], v.k + 1, dtype=w2.dtype, device=w2.device).index_add_(1, v.index, w2)[:, : v.k]
    new_out = _linear(summed.contiguous(), None if out.bias is None else out.bias.detach())
    return _linear(v.weight.detach(), None if v.bias is None else v.bias.detach()), new_out, kh


def fold_query_key(q: ClusteredLinear, k: nn.Linear, heads: int) -> tuple[nn.Linear, nn.Linear, int]:
    """Fold query/key dimensions clustered per head on the query rows: q_proj keeps K rows, k_proj the SUM of
    the rows (and biases) of each cluster.

    Args:
        q: q_proj clustered head by head, ``weight`` [K, D], ``index`` [H*hd] (K = H * qk_dim).
        k: k_proj, ``weight`` [H*hd, D].
    Returns:
        (q_proj [H*qk_dim, D], k_proj [H*qk_dim, D], qk_dim). Scores are unchanged for the clustered q:
        ``sum_d q_d k_d = sum_g q_g (sum_{d in g} k_d)``; dropped query dimensions (index K) contribute 0.
    """
    kh = _check_per_head(q, heads)
    wk = k.weight.detach()
    new_wk = torch.zeros(q.k + 1, wk.shape[1], dtype=wk.dtype, device=wk.device).index_add_(0, q.index, wk)[: q.k]
    new_bk = None
    if k.bias is not None:
        bk = k.bias.detach()
        new_bk = torch.zeros(q.k + 1, dtype=bk.dtype, device=bk.device).index_add_(0, q.index, bk)[: q.k]
    new_q = _linear(q.weight.detach(), None if q.bias is None else q.bias.detach())
    return new_q, _linear(new_wk.contiguous(), new_bk), kh
