"""A resolved plan applied: every layer it names compressed, the units folded, the new model assembled.

For every layer the plan compresses, the config's method (:mod:`prunelab.methods`) turns the ORIGINAL
layer's weight and bias into a per-layer result (:func:`layer_result`), :func:`prunelab.modules.to_module` turns
that into the replacing module, and clustered FFN pairs are then folded (fc1 keeps K rows, fc2 sums the columns
of each cluster). Per-layer results go through an optional :class:`~prunelab.compression.cache.LayerCache`,
so moving one slider in the app re-clusters one layer; layers are computed side by side
(:mod:`prunelab.compression.parallel`), the result does not depend on how many at once.

With ``units="foldable"`` the attention leaders (v, q) are clustered head by head, and folding also shrinks
attention: v_proj/out_proj lose value dimensions, q_proj/k_proj query/key dimensions, and the attention
module switches to the narrower per-head widths (:mod:`prunelab.attention`). A decoder vocabulary
(``config.vocabulary``) trims the token embedding and the output layer last (:mod:`prunelab.vocabulary`).

Into a copy or in place. The new model is a structural copy whose unchanged weights share storage with the input
(:func:`share_copy`), so it costs only the memory of the layers it replaces -- which for a plan touching every layer
is most of the model again: peak about 1.8 x the weights (Whisper-medium-shaped, float32, uniform 20 %: 6.4 GB for
3.06 GB of weights). ``in_place=True`` replaces each original layer, and frees its memory, as soon as no layer still
to be computed reads it (a layer reads its own weights and its partner's: importance, the partner of a foldable
unit), so the peak stays near the weights alone.

This is the last step of :func:`prunelab.compression.compress.compress` (after the config is checked and resolved
into a plan, :mod:`prunelab.compression.resolve`); the output allocation
(:mod:`prunelab.compression.output_allocation`) calls :func:`apply_plan` too, for each unit group it measures alone.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..errors import PlanError
from ..groups import FoldedUnit, LayerResult, UnitContext, concat_groups
from ..methods import get_method
from ..modules import ClusteredLinear, fold_ffn, linear_like, module_record, to_module
from ..progress import Progress
from ..speech_model import SpeechModel
from .cache import LayerCache
from .layers import LayerInfo, ffn_pairs, find_layers, set_module
from .parallel import check_threads, default_threads, map_layers
from .plan import Plan
from .sensitivity import channel_importance

if TYPE_CHECKING:
    from .config import CompressionConfig


def apply_plan(
    model: SpeechModel,
    config: CompressionConfig,
    plan: Plan,
    *,
    layers: list[LayerInfo] | None = None,
    cache: LayerCache | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
    in_place: bool = False,
) -> SpeechModel:
    """``model`` with every layer ``plan`` compresses (K < C) compressed by ``config``'s method and folded.

    ``plan`` is taken as it is (checked against the layers before: :func:`~prunelab.compression.compress.check_fits`
    or by construction); ``layers``: ``model``'s compressible layers (found when not given). ``in_place=False``:
    a new :class:`SpeechModel` over a :func:`share_copy`, ``model`` untouched; ``True``: ``model`` itself becomes
    the compressed model (see the module doc) and is returned. The ``compression`` record holds the method, seed,
    plan, ``sparsity`` (over the compressible layers, as the plan counts them), ``params_removed`` (over ALL the
    model's parameters, really gone after folding) and the shape of every replaced module.
    """
    layers = find_layers(model.model) if layers is None else layers
    todo = plan.active(layers)
    total = _count_params(model.model)
    new = model.model if in_place else share_copy(model.model)
    last_reader = _last_readers(todo) if in_place else {}
    modules: dict[str, nn.Module] = {}
    distortion: dict[str, float] = {}
    widths: dict[str, dict[str, int]] = {}
    threads = (default_threads(_device(model.model), _count_params(model.model)) if threads is None
               else check_threads(threads))

    def started(i: int) -> None:
        if progress:
            layer, k = todo[i]
            progress(i, len(todo), f"{config.method}: {layer.name} K={k}/{layer.channels}")

    results = map_layers(lambda item: layer_result(model, item[0], item[1], config, cache=cache), todo, threads,
                         on_start=started)
    waiting: list[str] = []  # in place: built modules not installed yet (a layer still to come reads the original)
    with contextlib.closing(results):  # (an error below cancels the layers not started yet)
        for i, ((layer, k), result) in enumerate(zip(todo, results)):
            distortion[layer.name] = result.distortion
            if isinstance(result, FoldedUnit):
                modules[layer.name] = linear_like(result.weight, result.bias, like=new.get_submodule(layer.name))
                modules[layer.partner] = linear_like(result.partner_weight, result.partner_bias,
                                                 like=new.get_submodule(layer.partner))
                if layer.heads:
                    dim = "v_dim" if layer.kind == "v" else "qk_dim"
                    widths.setdefault(layer.name.rpartition(".")[0], {})[dim] = result.k // layer.heads
                built = [layer.name, layer.partner]
            else:
                modules[layer.name] = to_module(result, like=new.get_submodule(layer.name))
                built = [layer.name]
            del result  # (the module holds what is needed)
            if in_place:  # drop every original that no layer after this one reads
                waiting += built
                for name in [n for n in waiting if last_reader.get(n, -1) <= i]:
                    set_module(new, name, modules[name])
                    waiting.remove(name)
    if config.fold:
        for fc1, fc2 in ffn_pairs(layers):
            if isinstance(modules.get(fc1.name), ClusteredLinear):
                modules[fc1.name], modules[fc2.name] = fold_ffn(modules[fc1.name],
                                                                modules.get(fc2.name) or new.get_submodule(fc2.name))
                if in_place:  # free the unfolded pair now, not after every pair is folded
                    set_module(new, fc1.name, modules[fc1.name])
                    set_module(new, fc2.name, modules[fc2.name])
        if config.units == "foldable":
            widths.update(_fold_attention(new, layers, modules))
    for name, module in modules.items():
        if isinstance(module, ClusteredLinear) and _reads_weights_directly(new, name):
            modules[name] = module = module.dense()
        set_module(new, name, module)
    if widths:
        from ..attention import set_widths

        for name, dims in widths.items():
            set_widths(new.get_submodule(name), **dims)
    vocabulary = _trim_vocabulary(model, new, config.vocabulary) if config.vocabulary else None
    if progress:
        progress(len(todo), len(todo), "done")
    record = {
        "method": config.method,
        "allocate": config.allocate if config.plan is None else "plan",
        "seed": config.seed,
        "max_iter": config.max_iter,
        "folded": config.fold,
        "base_model": model.spec,
        "sparsity": plan.sparsity(layers),
        "params_removed": 1.0 - _count_params(new) / total,
        "plan": dict(plan.clusters),
        "distortion": distortion,
        "modules": {name: module_record(m) for name, m in modules.items()},
        "attention": widths,
        "options": asdict(config.options),
        "units": config.units,
        "vocabulary": vocabulary,
    }
    if in_place:
        model.compression = record
        model.model.eval()
        return model
    return SpeechModel(new.eval(), model.processor, model.family, model.spec, compression=record)


def _last_readers(todo: list[tuple[LayerInfo, int]]) -> dict[str, int]:
    """For each layer name, the index of the last item of ``todo`` whose computation reads that layer's ORIGINAL
    weights: its own, and its partner's (importance of the channels, the partner of a foldable unit)."""
    last: dict[str, int] = {}
    for i, (layer, _) in enumerate(todo):
        for name in (layer.name, layer.partner):
            if name:
                last[name] = i
    return last


def _trim_vocabulary(model: SpeechModel, new: nn.Module, script: str) -> dict:
    """Replace ``new``'s decoder embedding and output projection by the ``script`` tokens of the ORIGINAL's
    (:mod:`prunelab.vocabulary`); returns the record ``load_model`` rebuilds them from."""
    from ..vocabulary import set_vocabulary, trimmed_pair

    weight, keep = _kept(model, script)
    set_vocabulary(new, *trimmed_pair(weight, keep))
    return {"script": script, "vocab_size": weight.shape[0], "kept": int(keep.numel()), "dim": weight.shape[1]}


def _kept(model: SpeechModel, script: str) -> tuple[Tensor, Tensor]:
    """A Whisper model's decoder token embedding ``[V, D]`` (tied to its output layer) and the sorted ids ``[K]``
    of the tokens ``script`` keeps (:func:`prunelab.compression.vocabulary.kept_tokens`)."""
    from .vocabulary import kept_tokens

    weight = model.model.model.decoder.embed_tokens.weight.detach()
    return weight, kept_tokens(model.processor.tokenizer, script, weight.shape[0])


def vocabulary_savings(model: SpeechModel) -> dict[str, float]:
    """For each script of :data:`~prunelab.compression.vocabulary.SCRIPTS`, the fraction of ALL of ``model``'s
    parameters that ``CompressionConfig(vocabulary=script)`` removes (the removed token rows of the tied
    embedding / output layer), as ``compress()`` reports it in ``params_removed``; ``{}`` for CTC models."""
    if model.family != "whisper":
        return {}
    from .vocabulary import SCRIPTS

    total = _count_params(model.model)
    savings = {}
    for script in SCRIPTS:
        weight, keep = _kept(model, script)
        savings[script] = (weight.shape[0] - keep.numel()) * weight.shape[1] / total
    return savings


def share_copy(module: nn.Module) -> nn.Module:
    """A structural copy of ``module`` whose parameters and buffers SHARE storage with the original.

    Every submodule is a new object (replacing one in the copy never touches the original) and every
    parameter a new ``nn.Parameter`` over the same tensor, so ``.to(...)`` on the copy leaves the original
    where it is; only in-place writes to a shared tensor would show in both. A compressed model therefore
    costs only the layers it replaces (issue: several users' compressed copies of one original).
    """
    memo: dict[int, object] = {}
    for p in module.parameters():
        memo[id(p)] = nn.Parameter(p.data, requires_grad=p.requires_grad)
    for b in module.buffers():
        memo[id(b)] = b
    return copy.deepcopy(module, memo)


WEIGHT_READERS = ("WavLMAttention",)
"""Modules that read their projections' ``.weight`` / ``.bias`` directly (WavLM's attention hands them to torch's
``multi_head_attention_forward``) instead of calling them: a clustered projection under one is stored as the
equivalent dense layer (same outputs, no parameters saved)."""


def _reads_weights_directly(model: nn.Module, name: str) -> bool:
    return type(model.get_submodule(name.rpartition(".")[0])).__name__ in WEIGHT_READERS


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters(), torch.empty(0)).device


def _count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def layer_result(
    model: SpeechModel, layer: LayerInfo, k: int, config: CompressionConfig, *, cache: LayerCache | None = None
) -> LayerResult:
    """One layer of the ORIGINAL ``model`` compressed to K channels with ``config``'s method, through ``cache``.

    The cache key is (model spec, layer, K, method, seed, max_iter, options), so callers that share a
    cache (the app's per-layer views and :func:`compress`) reuse each other's results. Methods that need
    importance get it from the original model's neighbouring layer (a deterministic function of spec + layer).
    """
    method = get_method(config.method)
    linear = model.model.get_submodule(layer.name)
    per_head = config.units == "foldable" and bool(layer.heads)
    key = (model.spec, layer.name, k, method.name, config.seed, config.max_iter,
           tuple(sorted(asdict(config.options).items())), "per-head" if per_head else "layer")
    if method.needs_importance:
        key = key + ("importance-v1",)

    def compute() -> LayerResult:
        importance = channel_importance(model.model, layer) if method.needs_importance else None
        kw = dict(seed=config.seed, max_iter=config.max_iter, options=config.options)
        if method.folds:
            context = unit_context(model.model, layer) if config.units == "foldable" else None
            return method.apply(linear.weight, linear.bias, k, importance=importance, context=context, **kw)
        if not per_head:
            return method.apply(linear.weight, linear.bias, k, importance=importance, **kw)
        if not method.structured:
            raise PlanError(f"Method {method.name!r} does not group channels, so it has no foldable units; "
                            "use units='channels' with it.")
        hd, kh = layer.head_dim, k // layer.heads
        heads = [slice(h * hd, (h + 1) * hd) for h in range(layer.heads)]
        bias = linear.bias
        return concat_groups([method.apply(linear.weight[s], None if bias is None else bias[s], kh,
                                           importance=None if importance is None else importance[s], **kw)
                              for s in heads])

    return cache.get_or_compute(key, compute) if cache is not None else compute()


def unit_context(model: nn.Module, layer: LayerInfo, layers: list[LayerInfo] | None = None) -> UnitContext:
    """What a unit-level method may read about the unit ``layer`` leads, from the ORIGINAL ``model``'s weights."""
    if layer.unit is None:
        raise PlanError(f"Layer {layer.name!r} ({layer.kind}) leads no foldable unit.")
    partner = model.get_submodule(layer.partner)
    partner_info = next((l for l in (layers if layers is not None else find_layers(model)) if l.name == layer.partner),
                        None)
    detach = lambda t: None if t is None else t.detach()  # noqa: E731
    norm = model.get_submodule(layer.norm) if layer.norm else None
    pnorm = None
    if partner_info is not None and partner_info.norm and partner_info.norm != layer.norm:
        pnorm = model.get_submodule(partner_info.norm)
    return UnitContext(layer.unit, partner.weight.detach(), detach(getattr(partner, "bias", None)),
                       detach(getattr(norm, "weight", None)), detach(getattr(norm, "bias", None)), layer.heads,
                       detach(getattr(pnorm, "weight", None)), detach(getattr(pnorm, "bias", None)))


def _fold_attention(new: nn.Module, layers: list[LayerInfo], modules: dict[str, nn.Module]) -> dict[str, dict[str, int]]:
    """Fold per-head clustered v and q layers into out_proj and k_proj (replacing entries of ``modules``);
    returns ``{attention module path: {"v_dim" and/or "qk_dim": per-head width}}``."""
    from ..attention import fold_query_key, fold_values

    widths: dict[str, dict[str, int]] = {}
    for layer in layers:
        leader = modules.get(layer.name)
        if layer.kind not in ("v", "q") or not isinstance(leader, ClusteredLinear):
            continue
        partner = modules.get(layer.partner) or new.get_submodule(layer.partner)
        fold = fold_values if layer.kind == "v" else fold_query_key
        modules[layer.name], modules[layer.partner], dim = fold(leader, partner, layer.heads)
        widths.setdefault(layer.name.rpartition(".")[0], {})["v_dim" if layer.kind == "v" else "qk_dim"] = dim
    return widths
