"""``compress(model, config)``: the main operation. Returns a new, smaller model; the original is untouched.

For every layer the plan compresses, the config's method (:mod:`prunelab.methods`) turns the ORIGINAL
layer's weight and bias into a per-layer result, :func:`prunelab.modules.to_module` turns that into
the replacing module, and clustered FFN pairs are then folded (fc1 keeps K rows, fc2 sums the columns
of each cluster). Per-layer results go through an optional :class:`~prunelab.compression.cache.LayerCache`,
so moving one slider in the app re-clusters one layer.

The new model shares nothing mutable with the input: it is a deep copy with the replaced modules
swapped in (``compress()`` never modifies its input).
"""
from __future__ import annotations

import copy
from dataclasses import asdict

from torch import nn

from ..errors import PlanError
from ..groups import LayerResult
from ..methods import get_method
from ..modules import ClusteredLinear, fold_ffn, module_record, to_module
from ..progress import Progress
from ..speech_model import SpeechModel
from .cache import LayerCache
from .config import CompressionConfig
from .layers import LayerInfo, ffn_pairs, find_layers, set_module
from .sensitivity import channel_importance


def compress(
    model: SpeechModel,
    config: CompressionConfig,
    *,
    cache: LayerCache | None = None,
    progress: Progress | None = None,
) -> SpeechModel:
    """Compress every layer the plan names with ``config.method``; return a new :class:`SpeechModel`.

    The result's ``compression`` dict records the method, seed, plan and the shape of every replaced
    module, so :func:`prunelab.models.saved.save_compressed` can write it and load it back.
    """
    if model.compression is not None:
        raise PlanError("This model is already compressed; compress the original model instead.")
    layers = find_layers(model.model)
    plan = config.resolve_plan(layers, model.model, cache_key=model.spec, progress=progress)
    todo = plan.active(layers)
    new = copy.deepcopy(model.model)
    modules: dict[str, nn.Module] = {}
    distortion: dict[str, float] = {}
    for i, (layer, k) in enumerate(todo):
        if progress:
            progress(i, len(todo), f"{config.method}: {layer.name} K={k}/{layer.channels}")
        result = layer_result(model, layer, k, config, cache=cache)
        modules[layer.name] = to_module(result, like=new.get_submodule(layer.name))
        distortion[layer.name] = result.distortion
    if config.fold:
        for fc1, fc2 in ffn_pairs(layers):
            if isinstance(modules.get(fc1.name), ClusteredLinear):
                modules[fc1.name], modules[fc2.name] = fold_ffn(modules[fc1.name],
                                                                modules.get(fc2.name) or new.get_submodule(fc2.name))
    for name, module in modules.items():
        set_module(new, name, module)
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
        "plan": dict(plan.clusters),
        "distortion": distortion,
        "modules": {name: module_record(m) for name, m in modules.items()},
        "options": asdict(config.options),
    }
    return SpeechModel(new.eval(), model.processor, model.family, model.spec, compression=record)


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
    key = (model.spec, layer.name, k, method.name, config.seed, config.max_iter,
           tuple(sorted(asdict(config.options).items())))
    if method.needs_importance:
        key = key + ("importance-v1",)

    def compute() -> LayerResult:
        importance = channel_importance(model.model, layer) if method.needs_importance else None
        return method.apply(linear.weight, linear.bias, k, seed=config.seed, max_iter=config.max_iter,
                            importance=importance, options=config.options)

    return cache.get_or_compute(key, compute) if cache is not None else compute()
