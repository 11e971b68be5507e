"""From a config to a plan, in one pass: how many clusters K each layer keeps.

:func:`prunelab.compression.compress.compress` runs three steps, each once and in this order: the config is
checked (its own fields when it is made, :class:`~prunelab.compression.config.CompressionConfig`; against the
model by :func:`~prunelab.compression.compress.check_fits`), :func:`resolve_plan` turns it into a
:class:`~prunelab.compression.plan.Plan`, and :func:`~prunelab.compression.assemble.apply_plan` compresses the
plan's layers and assembles the new model. Nothing after a step goes back to an earlier one.

A config names its K in exactly one of these ways:

* ``config.plan``: the plan as given (K per layer);
* ``allocate="uniform"``: ``config.sparsity`` on every layer ``config.preset`` selects, K = round(C (1 - s)),
  per head for attention units (:meth:`~prunelab.compression.plan.Plan.from_sparsity`);
* ``allocate="auto"``: ``config.sparsity`` over the preset's layers, K per layer where clustering distorts the
  weights least (data-free sensitivity curves, :func:`prunelab.compression.allocate.allocate`);
* ``allocate="output"``: ``config.sparsity`` over the preset's unit groups, K per group where compressing it
  alone changes the model's output least (:mod:`prunelab.compression.output_allocation`).

Each allocation is a strategy with one entry point, ``strategy(model, config, layers, *, cache, progress) ->
Plan``, registered in :data:`STRATEGIES` under the name ``CompressionConfig(allocate=...)`` takes (its names are
:data:`~prunelab.compression.config.ALLOCATIONS`). With foldable units the per-layer allocations round each
attention K to whole heads (:func:`~prunelab.compression.plan.whole_heads`). A strategy trusts the checked
config and never calls :func:`~prunelab.compression.compress.compress`: the output allocation compresses its
single groups with :func:`~prunelab.compression.assemble.apply_plan`, the step below, so the config crosses
planning once however many groups are measured.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import PlanError
from ..progress import Progress
from ..speech_model import SpeechModel
from .allocate import allocate
from .cache import LayerCache
from .layers import LayerInfo
from .output_allocation import allocate_by_output
from .plan import Plan, unit_leaders, whole_heads

if TYPE_CHECKING:
    from .config import CompressionConfig

Strategy = Callable[..., Plan]
"""``strategy(model, config, layers, *, cache, progress) -> Plan``: the plan of ``config`` (no plan given, a
sparsity) on ``model`` (the ORIGINAL :class:`SpeechModel`, or None where the strategy needs only the layers)."""


def uniform(model: SpeechModel | None, config: CompressionConfig, layers: list[LayerInfo], *,
            cache: LayerCache | None = None, progress: Progress | None = None) -> Plan:
    """The same sparsity on every layer (unit leader, with foldable units) the preset selects."""
    return Plan.from_sparsity(layers, config.sparsity, config.preset, config.units)


def auto(model: SpeechModel | None, config: CompressionConfig, layers: list[LayerInfo], *,
         cache: LayerCache | None = None, progress: Progress | None = None) -> Plan:
    """K per layer from the data-free sensitivity curves of the ORIGINAL weights (memoised per model spec)."""
    if model is None:
        raise PlanError("Automatic allocation needs the model.")
    leaders = unit_leaders(layers, config.units)
    plan = allocate(model.model, config.sparsity, preset=config.preset, layers=leaders, seed=config.seed,
                    cache_key=model.spec, progress=progress)
    return whole_heads(plan, leaders) if config.units == "foldable" else plan


def output(model: SpeechModel | None, config: CompressionConfig, layers: list[LayerInfo], *,
           cache: LayerCache | None = None, progress: Progress | None = None) -> Plan:
    """K per unit group from the model's output when that group alone is compressed (groups through ``cache``)."""
    if model is None:
        raise PlanError("Output allocation needs the speech model (it measures the model's output): give it, "
                        "or use compress(), which measures it.")
    return allocate_by_output(model, config, layers, cache=cache, progress=progress)


STRATEGIES: dict[str, Strategy] = {"uniform": uniform, "auto": auto, "output": output}
"""The allocation strategies by the name ``CompressionConfig(allocate=...)`` takes."""


def resolve_plan(
    model: SpeechModel | None,
    config: CompressionConfig,
    layers: list[LayerInfo],
    *,
    cache: LayerCache | None = None,
    progress: Progress | None = None,
) -> Plan:
    """The plan ``config`` asks for on ``model``, whose compressible layers are ``layers``: ``config.plan`` as
    given, else the plan of its allocation strategy (:data:`STRATEGIES`).

    ``model``: the ORIGINAL model; None resolves what needs only the layers (a given plan, uniform allocation).
    ``config`` is taken as checked (:func:`prunelab.compression.compress.check_fits`, which ``compress()`` runs
    first); only a config that names neither a plan nor a sparsity is refused here.
    ``cache``: per-layer results the output allocation's measurements go through (``compress()`` then reuses
    them); ``progress``: what the measuring allocations report.
    """
    if config.plan is not None:
        return config.plan
    if config.sparsity is None:
        raise PlanError("Give a sparsity or a plan.")
    return STRATEGIES[config.allocate](model, config, layers, cache=cache, progress=progress)


__all__ = ["STRATEGIES", "Strategy", "auto", "output", "resolve_plan", "uniform"]
