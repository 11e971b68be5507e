"""``compress(model, config)``: the main operation. Returns a new, smaller model; the original is untouched.

One way through, three steps, each once:

1. **check** -- the config checked its own fields when it was made (:class:`CompressionConfig`);
   :func:`check_fits` checks it against the model, before any work (an already compressed model, a method
   that needs other units, a plan that does not fit the layers, a preset that selects none of them);
2. **plan** -- :func:`~prunelab.compression.resolve.resolve_plan` turns it into a :class:`~prunelab.compression.plan.Plan`:
   the plan given, or the one its allocation strategy (uniform, auto, output) chooses;
3. **apply** -- :func:`~prunelab.compression.assemble.apply_plan` compresses every layer the plan names with the
   config's method (per-layer results through an optional :class:`~prunelab.compression.cache.LayerCache`, so
   moving one slider in the app re-clusters one layer), folds the units and assembles the new model with its
   ``compression`` record.

``compress()`` never modifies its input. The new model is a structural copy whose unchanged weights share
storage with the input (:func:`~prunelab.compression.assemble.share_copy`), so it costs only the memory of the
layers it replaces -- which for a plan touching every layer is most of the model again: peak about 1.8 x the
weights (Whisper-medium-shaped, float32, uniform 20 %: 6.4 GB for 3.06 GB of weights). ``compress_()`` does the
same work IN PLACE: each original layer is replaced, and its memory freed, as soon as no layer still to be
computed reads it, so the peak stays near the weights alone. For callers that do not need the original
afterwards (``prunelab compress`` loads, compresses, saves).
"""
from __future__ import annotations

from ..errors import PlanError
from ..methods import get_method
from ..progress import Progress
from ..speech_model import SpeechModel
from .assemble import apply_plan, share_copy  # noqa: F401  (share_copy: also read from here)
from .cache import LayerCache
from .config import CompressionConfig
from .layers import LayerInfo, find_layers
from .plan import presets_selecting
from .resolve import resolve_plan


def compress_(
    model: SpeechModel,
    config: CompressionConfig,
    *,
    progress: Progress | None = None,
    threads: int | None = None,
) -> None:
    """:func:`compress` in place: ``model`` itself becomes the compressed model (its ``compression`` record set).

    Same layers, same results as ``compress(model, config)``, but each original layer is dropped as soon as no
    layer still to be computed reads it, so the peak memory stays near the model's own instead of adding the
    replaced layers on top (see the module doc). No layer cache: cached per-layer results would keep memory
    alive. If it raises, ``model`` may be partly compressed: load it again.
    """
    _compress(model, config, progress=progress, threads=threads, in_place=True)


def compress(
    model: SpeechModel,
    config: CompressionConfig,
    *,
    cache: LayerCache | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
) -> SpeechModel:
    """Compress every layer the plan names with ``config.method``; return a new :class:`SpeechModel`.

    The result's ``compression`` dict records the method, seed, plan, ``sparsity`` (over the compressible
    layers' output channels, as the plan counts them), ``params_removed`` (the fraction of ALL the model's
    parameters really gone: folds remove partner columns too, unstructured zeros remove nothing) and the
    shape of every replaced module, so :func:`prunelab.models.saved.save_compressed` can write it and load it back.

    ``threads``: how many layers are compressed at once (:mod:`prunelab.compression.parallel`; None: two for
    models of 500 M parameters or more on a CPU with two or more torch threads, else one). The result does not
    depend on it.
    """
    return _compress(model, config, cache=cache, progress=progress, threads=threads, in_place=False)


def check_fits(model: SpeechModel, config: CompressionConfig, layers: list[LayerInfo] | None = None) -> None:
    """Raise :class:`PlanError` when ``config`` cannot compress ``model``, before any work: an already compressed
    model, a vocabulary on a CTC model, a unit-level method without foldable units or unfolded, a plan that
    does not fit the layers, a preset that selects none of them (``prunelab eval`` checks every cell so before
    it transcribes the uncompressed baseline). ``layers``: ``model``'s compressible layers (found when not given).

    The checks that need no model (method, preset, units, sparsity, ...) ran when the config was made."""
    if model.compression is not None:
        raise PlanError("This model is already compressed; compress the original model instead.")
    if config.vocabulary and model.family != "whisper":
        raise PlanError(f"Vocabulary trimming applies to Whisper's decoder; {model.spec} is a CTC model whose "
                        "output layer writes characters. Leave the vocabulary option empty.")
    method = get_method(config.method)
    if method.folds and config.units != "foldable":
        raise PlanError(f"Method {config.method!r} compresses whole foldable units: use units='foldable'.")
    if method.folds and not config.fold:
        raise PlanError(f"Method {config.method!r} folds each unit as it compresses it; it cannot leave them unfolded.")
    layers = find_layers(model.model) if layers is None else layers
    if config.plan is not None:
        config.plan.validate(layers)
        config.plan.validate_units(layers, config.units)
        return
    usable = presets_selecting(layers, config.units)
    if config.preset not in usable and (config.sparsity or 0) > 0:
        what = "layer" if config.units == "channels" else "layer that leads a foldable unit (fc1, v, q)"
        raise PlanError(f"Preset {config.preset!r} selects no {what} of {model.spec}; presets that select some: "
                        f"{', '.join(usable) or 'none'}.")


def _compress(model: SpeechModel, config: CompressionConfig, *, cache: LayerCache | None = None,
              progress: Progress | None = None, threads: int | None, in_place: bool) -> SpeechModel:
    """The body of :func:`compress` (``in_place=False``) and :func:`compress_`: check, plan, apply."""
    layers = find_layers(model.model)
    check_fits(model, config, layers)
    plan = resolve_plan(model, config, layers, cache=cache, progress=progress)
    return apply_plan(model, config, plan, layers=layers, cache=cache, progress=progress, threads=threads,
                      in_place=in_place)
