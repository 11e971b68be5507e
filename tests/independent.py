"""What a compressed layer must compute, worked out again from the ORIGINAL weights, without prunelab's
ClusteredLinear, to_module, ChannelGroups.dense() or folding.

Tests compare compressed models against these: a compressed layer's outputs, and a whole reference model
(a plain copy of the original whose planned ``nn.Linear`` layers get the expected dense weights).
The only things taken from the compressed model are the choices a method makes that are not a closed
formula (which channels k-means put together, which channels hybrid dropped); the tests check that those
choices obey the method's rule.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from prunelab.compression.layers import LayerInfo, find_layers
from prunelab.compression.sensitivity import channel_importance
from prunelab.methods import HybridOptions


def original_rows(linear: nn.Module) -> Tensor:
    """[C, in(+1)] float64: the layer's weight rows with the bias appended (when it has one)."""
    w = linear.weight.detach().double()
    return torch.cat([w, linear.bias.detach().double()[:, None]], 1) if linear.bias is not None else w


def keep_largest(weight: Tensor, n_keep: int) -> Tensor:
    """``weight`` with all but its ``n_keep`` largest-magnitude entries set to zero (float64)."""
    w = weight.detach().double()
    if n_keep <= 0:
        return torch.zeros_like(w)
    threshold = w.abs().flatten().sort(descending=True).values[n_keep - 1]
    return torch.where(w.abs() >= threshold, w, torch.zeros_like(w))


def expected_dense(method: str, original: nn.Module, layer: LayerInfo, k: int, compressed_layer: nn.Module,
                   options: HybridOptions | None = None) -> tuple[Tensor, Tensor | None]:
    """(weight [C, in], bias [C] or None), float64: the dense layer ``method`` must give ``layer`` at K = ``k``.

    ``compressed_layer`` is the module compress(fold=False) put in its place; only its channel -> row
    index is read (which channels share a row), after checking that the index obeys ``method``'s rule.
    """
    linear = original.get_submodule(layer.name)
    has_bias = linear.bias is not None
    rows = original_rows(linear)
    c = rows.shape[0]
    if method == "magnitude-unstructured":
        n_keep = round(linear.weight.numel() * k / c)
        return keep_largest(linear.weight, n_keep), (linear.bias.detach().double() if has_bias else None)

    index = compressed_layer.index.detach()
    assert index.shape == (c,) and int(index.min()) >= 0 and int(index.max()) <= k
    kept = index < k
    assert set(index[kept].tolist()) == set(range(k)), "every one of the K rows is used by some channel"
    importance = channel_importance(original, layer).double()
    score = rows.norm(dim=1) * importance
    replaced = torch.zeros_like(rows)
    for j in range(k):
        members = (index == j).nonzero().squeeze(1)
        if method == "kmeans":
            replaced[members] = rows[members].mean(0)
        elif method == "kmeans-weighted":
            wt = importance[members] ** 2 + 1e-12
            replaced[members] = (rows[members] * wt[:, None]).sum(0) / wt.sum()
        elif method in ("representative", "hybrid"):
            best = members[score[members].argmax()]  # the most important member, kept exactly
            replaced[members] = rows[best]
        elif method == "magnitude":
            assert len(members) == 1, "structured magnitude keeps single channels"
            replaced[members] = rows[members]
        else:
            raise ValueError(f"no independent expectation for method {method!r}")
    dropped = ~kept
    if method == "magnitude":
        assert int(kept.sum()) == k
        norms = rows.norm(dim=1)
        assert norms[kept].min() >= norms[dropped].max() if dropped.any() else True, "the largest channels are kept"
        assert torch.equal(index[kept], torch.arange(k)), "kept channels keep their order"
    elif method == "hybrid":
        opts = options or HybridOptions()
        if dropped.any():
            assert int(dropped.sum()) <= int((c - k) * opts.max_drop_fraction)
            assert score[dropped].max() < opts.dead_ratio * score.median(), "only near-dead channels are dropped"
            assert score[dropped].max() <= score[kept].min(), "the weakest channels are dropped first"
    else:
        assert not dropped.any(), f"{method} drops no channel"
    # dropped channels output 0 (their row is zero): replaced[dropped] stays 0
    weight = replaced[:, : linear.in_features]
    bias = replaced[:, -1] if has_bias else None
    return weight, bias


def linear_out(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight.T + bias`` in float64."""
    y = x.double() @ weight.T
    return y + bias if bias is not None else y


def reference_model(original: nn.Module, unfolded: nn.Module, method: str, plan: dict[str, int]) -> nn.Module:
    """A copy of ``original`` whose planned layers are plain ``nn.Linear`` with the expected dense weights."""
    ref = copy.deepcopy(original)
    for layer in find_layers(original):
        k = plan.get(layer.name, layer.channels)
        if k >= layer.channels:
            continue
        weight, bias = expected_dense(method, original, layer, k, unfolded.get_submodule(layer.name))
        target = ref.get_submodule(layer.name)
        with torch.no_grad():
            target.weight.copy_(weight.to(target.weight.dtype))
            if bias is not None:
                target.bias.copy_(bias.to(target.bias.dtype))
    return ref


def ctc_text(tokenizer, ids: Tensor) -> str:
    """Greedy CTC text of frame labels ``ids`` [T]: repeats merged and blanks dropped (the tokenizer's decode),
    then the special symbols (``</s>``, ``<unk>`` …, which a random model emits) dropped from the text."""
    text = tokenizer.decode(ids)
    for token in tokenizer.all_special_tokens:
        if token != getattr(tokenizer, "word_delimiter_token", None):
            text = text.replace(token, "")
    return " ".join(text.split())
