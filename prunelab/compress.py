"""``compress(model, config)``: the main operation. Returns a new, smaller model; the original is untouched."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .cache import LayerCache
from .errors import PlanError
from .layers import LayerInfo, ffn_pairs, find_layers, set_module
from .methods import (ALLOCATIONS, METHOD_HELP, NEEDS_IMPORTANCE, RECOMMENDED, STRUCTURED, UNSTRUCTURED, ChannelGroups,
                      magnitude_unstructured, resolve_method)
from .models import SpeechModel
from .modules import ClusteredLinear, fold_ffn
from .plan import Plan

Progress = Callable[[int, int, str], None]  # (layers done, layers total, message)

METHODS = tuple(STRUCTURED) + UNSTRUCTURED


@dataclass
class CompressionConfig:
    """What to compress and how.

    Give either ``plan`` (per-layer K) or ``sparsity`` (+ ``preset``, which layers it applies to).
    ``fold=True`` folds clustered FFN pairs into genuinely smaller dense layers.
    ``allocate``: ``"uniform"`` (the same sparsity on every selected layer) or ``"auto"`` (K per layer from
    data-free sensitivity curves, :func:`prunelab.allocate.allocate`); ignored when a plan is given.
    ``method="recommended"`` resolves to :data:`prunelab.methods.RECOMMENDED` (method and, unless
    ``allocate`` is set, allocation).
    """

    method: str = "kmeans"
    sparsity: float | None = None
    preset: str | None = None  # None: "uniform", or where the recommended setting was measured for "recommended"
    plan: Plan | None = None
    seed: int = 0
    max_iter: int = 100
    fold: bool = True
    options: dict = field(default_factory=dict)
    allocate: str | None = None

    def __post_init__(self) -> None:
        if self.preset is None:
            self.preset = RECOMMENDED["preset"] if self.method == "recommended" else "uniform"
        self.method, self.allocate = resolve_method(self.method, self.allocate)

    def resolve_plan(self, layers: list[LayerInfo], model: nn.Module | None = None, cache_key: str | None = None,
                     progress: Progress | None = None) -> Plan:
        if self.method not in METHODS:
            raise PlanError(f"Unknown method {self.method!r}; choose one of: {', '.join(METHODS)}, recommended.")
        if self.allocate not in ALLOCATIONS:
            raise PlanError(f"Unknown allocation {self.allocate!r}; choose one of: {', '.join(ALLOCATIONS)}.")
        if self.plan is not None:
            self.plan.validate(layers)
            return self.plan
        if self.sparsity is None:
            raise PlanError("Give a sparsity or a plan.")
        if self.allocate == "auto":
            if model is None:
                raise PlanError("Automatic allocation needs the model.")
            from .allocate import allocate

            return allocate(model, self.sparsity, preset=self.preset, layers=layers, seed=self.seed,
                            cache_key=cache_key, progress=progress)
        return Plan.from_sparsity(layers, self.sparsity, self.preset)


def compress(
    model: SpeechModel,
    config: CompressionConfig,
    *,
    cache: LayerCache | None = None,
    progress: Progress | None = None,
) -> SpeechModel:
    """Compress every layer the plan names with ``config.method``; return a new :class:`SpeechModel`.

    The result's ``compression`` dict records the method, seed, plan and the shape of every replaced
    module, so :func:`prunelab.serialization.save_compressed` can write it and load it back.
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
        linear = new.get_submodule(layer.name)
        result = layer_result(model, layer, k, config, cache=cache)
        if isinstance(result, ChannelGroups):
            modules[layer.name] = ClusteredLinear.from_groups(result, dtype=linear.weight.dtype)
            distortion[layer.name] = result.distortion
        else:
            dense = nn.Linear(layer.in_features, layer.out_features, bias=layer.has_bias,
                              device=linear.weight.device, dtype=linear.weight.dtype)
            with torch.no_grad():
                dense.weight.copy_(result)
                if layer.has_bias:
                    dense.bias.copy_(linear.bias)
            modules[layer.name] = dense
            distortion[layer.name] = float(((linear.weight.detach().float() - result.float()) ** 2).sum())
    if config.fold:
        for fc1, fc2 in ffn_pairs(layers):
            if isinstance(modules.get(fc1.name), ClusteredLinear):
                modules[fc1.name], modules[fc2.name] = fold_ffn(modules[fc1.name], modules.get(fc2.name) or new.get_submodule(fc2.name))
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
        "options": dict(config.options),
    }
    return SpeechModel(new.eval(), model.processor, model.family, model.spec, compression=record)


def layer_result(
    model: SpeechModel, layer: LayerInfo, k: int, config: CompressionConfig, *, cache: LayerCache | None = None
) -> ChannelGroups | torch.Tensor:
    """One layer of the ORIGINAL ``model`` compressed to K channels with ``config``'s method, through ``cache``.

    The cache key is (model spec, layer, K, method, seed, max_iter, options), so callers that share a
    cache (the app's per-layer views and :func:`compress`) reuse each other's results.
    """
    linear = model.model.get_submodule(layer.name)
    key = (model.spec, layer.name, k, config.method, config.seed, config.max_iter, tuple(sorted(config.options.items())))
    extra: dict = {}
    if config.method in NEEDS_IMPORTANCE:
        # importance from the original model's neighbouring layer (a deterministic function of spec + layer)
        from .sensitivity import channel_importance

        extra["importance"] = channel_importance(model.model, layer)
        key = key + ("importance-v1",)
    compute = lambda: compress_layer(linear, k, config, **extra)  # noqa: E731
    return cache.get_or_compute(key, compute) if cache is not None else compute()


def compress_layer(linear: nn.Module, k: int, config: CompressionConfig, **extra) -> ChannelGroups | torch.Tensor:
    """Compress one ``nn.Linear`` to K channels: :class:`ChannelGroups` for structured methods, a masked weight otherwise."""
    with torch.no_grad():
        if config.method in UNSTRUCTURED:
            return magnitude_unstructured(linear.weight, k / linear.out_features)
        fn = STRUCTURED[config.method]
        return fn(linear.weight, linear.bias, k, seed=config.seed, max_iter=config.max_iter, **config.options, **extra)


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
    return nn.Linear(record["in_features"], record["out_features"], bias=record["bias"])


__all__ = ["CompressionConfig", "compress", "compress_layer", "layer_result", "METHODS", "METHOD_HELP"]
