"""What one user holds (kept in ``gr.State``), the checks handlers make before using it, and its end.

A :class:`Session` is a value: handlers never change one, they return a new one
(``session.with_clusters(...)``, :func:`dataclasses.replace`). Models are not in it, only the keys of the
shared stores in :mod:`ui.state` and the :class:`~prunelab.CompressionConfig` its compressed model was
made with, so a session stays small, ``gr.State`` can copy it, and a compressed model the store set aside
to free memory is rebuilt from it (:func:`require_compressed`): nobody's work is dropped.

When a session ends (its browser tab closes: Gradio's ``unload`` event, :func:`end_session`; or its
``gr.State`` expires: :func:`forget_session`), its compressed models and download files are released.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Mapping

import gradio as gr
from gradio.context import LocalContext

from .lib import (CompressionConfig, LayerInfo, Plan, RepairConfig, SpeechModel, compress, find_layers,
                  load_calibration, repair)
from .state import COMPRESSED, LAYER_CACHE, MODELS, added_bytes, get_model, new_file, release_files


@dataclass(frozen=True)
class Session:
    """One user's state: the model, the plan being edited, and the compressed model (once there is one)."""

    spec: str | None = None
    """The loaded model's spec (key of :data:`ui.state.MODELS`); None until a model loads."""
    clusters: dict[str, int] = field(default_factory=dict)
    """The plan being edited: layer name -> K (the sliders); a layer not listed keeps all its channels."""
    compressed: str | None = None
    """Key of this user's compressed model in :data:`ui.state.COMPRESSED` (reused by each Compress)."""
    compressed_plan: dict[str, int] | None = None
    """The plan the compressed model was made with."""
    method: str | None = None
    """The method the compressed model was made with."""
    seed: int = 0
    """The seed the compressed model was made with."""
    compress_seconds: float | None = None
    """How long that compression took."""
    config: CompressionConfig | None = None
    """The whole config the compressed model was made with (plan, method, seed, units, options): what
    rebuilds it if the store set it aside."""
    vocabulary: str = "all"
    """The decoder vocabulary chosen on screen ("all", "latin", "ascii"), compared with the config's."""
    on_screen: Mapping[str, object] | None = None
    """The method settings on screen (``method``, ``seed``, ``units``, ``options`` as shown), compared with the
    config's; None until one of them changes after a model loads (then nothing on screen differs)."""
    recovered: str | None = None
    """Key in :data:`ui.state.COMPRESSED` of the compressed model after recovery (Repair, Fine-tune on the Recover
    tab); None while the compressed model is used as compressed. Every Compress and every model load clears it."""
    recovery_step: str = "compressed"
    """Which step the model in use is at: ``"compressed"``, ``"repaired"`` or ``"fine-tuned"`` (:data:`STEPS`)."""
    recovery_recipe: tuple[Mapping[str, object], ...] = ()
    """How the recovered model was made from the compressed one, one entry per step (``{"step": "repair",
    "files": [...] or None for the bundled set, "limit": n, "select": bool}``): what rebuilds a repaired model set aside for memory."""

    def k(self, layer: LayerInfo) -> int:
        """The layer's K in the plan being edited (C when it is not compressed)."""
        return int(self.clusters.get(layer.name, layer.channels))

    def with_clusters(self, clusters: Mapping[str, int]) -> Session:
        return replace(self, clusters=dict(clusters))


def require_model(sess: Session | None) -> tuple[SpeechModel, list[LayerInfo]]:
    """The session's original model and its compressible layers, or a message to load one."""
    if sess is None or not sess.spec:
        raise gr.Error("No model loaded yet: pick one and press Load model.")
    model = get_model(sess.spec)
    return model, find_layers(model.model)


def current_owner() -> str | None:
    """The Gradio session hash of the event being handled (None outside an event, e.g. in tests).

    Read from the event's context, as ``gr.Info`` and ``gr.Progress`` do, so handlers need no extra argument."""
    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None) if request is not None else None


def session_file(name: str):
    """A fresh download path owned by the current session (removed when it ends, else after the TTL)."""
    return new_file(name, owner=current_owner())


def keep_compressed(sess: Session, compressed: SpeechModel, config: CompressionConfig, seconds: float) -> Session:
    """Store the session's new compressed model under its key (weighed by the bytes it adds to the
    original) and return the session, now remembering the config that rebuilds it."""
    key = sess.compressed or uuid.uuid4().hex
    original = MODELS.get(sess.spec)  # not loaded again: if it has left the store, the model holds it alone
    owner = current_owner()
    COMPRESSED.put(key, compressed, added_bytes(compressed, original), owner=owner)
    if owner:  # one compressed model per session: one made before loading another model is not needed again
        COMPRESSED.drop_owner(owner, keep=key)
    plan = config.plan.clusters if config.plan is not None else compressed.compression["plan"]
    return replace(sess, compressed=key, compressed_plan=dict(plan), method=config.method, seed=int(config.seed),
                   compress_seconds=seconds, config=config, recovered=None, recovery_step="compressed",
                   recovery_recipe=())


def require_compressed(sess: Session | None, progress: gr.Progress | None = None, *,
                       recovered: bool = True) -> SpeechModel:
    """The session's model in use: after Repair or Fine-tune the recovered one (what Listen & compare, the
    downloads and Evaluate use; ``recovered=False``: the compressed model as compressed, what recovery starts
    from); rebuilt from the session's config if the store set it aside.

    The rebuild runs the same ``compress()`` with the same config (the per-layer cache usually still
    holds the layers), showing its progress; only a session that never compressed gets an error. A repaired
    model set aside is repaired again from its recipe (:func:`require_recovered`)."""
    if recovered and sess is not None and sess.recovered:
        return require_recovered(sess, progress)
    key = sess.compressed if sess is not None else None
    if not key:
        raise gr.Error("There is no compressed model yet: set the sliders and press Compress first.",
                       title="Compress first")
    model = COMPRESSED.get(key)
    if model is not None:
        return model
    if sess.config is None or not sess.spec:  # not made by this app's Compress: nothing to rebuild from
        raise gr.Error("Your compressed model was dropped to free memory (other users compressed since): "
                       "press Compress again.", title="Compress again")
    with COMPRESSED.building(key):
        model = COMPRESSED.get(key)  # another event of this session may have rebuilt it meanwhile
        if model is None:
            model = _rebuild(sess, key, progress or gr.Progress())
    return model


STEPS = ("compressed", "repaired", "fine-tuned")
"""The steps a compressed model goes through on the Recover tab, in order."""
STEP_OF_RECORD = {"repair": "repaired", "finetune": "fine-tuned"}


def step_of(compression: Mapping | None) -> str:
    """The step a model is at, read from its own record (``compression["recovery"]``'s last step)."""
    steps = (compression or {}).get("recovery") or []
    return STEP_OF_RECORD.get(str(steps[-1].get("step")), "compressed") if steps else "compressed"


def keep_recovered(sess: Session, model: SpeechModel, recipe: Mapping[str, object], *, restart: bool) -> Session:
    """Store the session's recovered model (from :func:`prunelab.recovery.repair` or ``finetune``) beside its
    compressed one; Listen & compare, the downloads and Evaluate use it from now on. ``restart``: the step started
    from the compressed model (Repair), so the recipe is this step alone; else it continues the steps before."""
    key = sess.recovered or uuid.uuid4().hex
    COMPRESSED.put(key, model, added_bytes(model, MODELS.get(sess.spec)), owner=current_owner())
    before = () if restart else sess.recovery_recipe
    return replace(sess, recovered=key, recovery_step=step_of(model.compression),
                   recovery_recipe=(*before, dict(recipe)))


def require_recovered(sess: Session, progress: gr.Progress | None = None) -> SpeechModel:
    """The session's recovered model; a repaired one set aside for memory is repaired again from its recipe (same
    clips, same settings: the same result); a fine-tuned one cannot be rebuilt quickly: an error says so."""
    model = COMPRESSED.get(sess.recovered)
    if model is not None:
        return model
    recipe = list(sess.recovery_recipe)
    if not recipe or any(r.get("step") != "repair" for r in recipe):
        raise gr.Error(f"Your {sess.recovery_step} model was dropped to free memory (other users compressed since): "
                       "press Repair or Fine-tune again on the Recover tab.", title="Recover again")
    progress = progress or gr.Progress()
    model = require_compressed(sess, progress, recovered=False)
    original = get_model(sess.spec)
    with COMPRESSED.building(sess.recovered):
        for r in recipe:
            progress(0, desc="Repairing your compressed model again (set aside to free memory) …")
            model = repair(model, original, load_calibration(r.get("files"), limit=r.get("limit")),
                           RepairConfig(select=bool(r.get("select"))))
        COMPRESSED.put(sess.recovered, model, added_bytes(model, original), owner=current_owner())
    return model


def _rebuild(sess: Session, key: str, progress: gr.Progress) -> SpeechModel:
    note = "Rebuilding your compressed model (set aside to free memory while others compressed)"
    progress(0, desc=f"{note} …")
    original = get_model(sess.spec)
    t0 = time.perf_counter()
    model = compress(original, sess.config, cache=LAYER_CACHE,
                     progress=lambda i, n, msg: progress((i, n), desc=f"{note}: {msg}", unit="layers"))
    COMPRESSED.put(key, model, added_bytes(model, original), owner=current_owner())
    COMPRESSED.count_rebuild()
    print(f"prunelab app: rebuilt a set-aside compressed model in {time.perf_counter() - t0:.1f} s", flush=True)
    return model


def end_session(request: gr.Request) -> None:
    """Gradio ``unload`` (the user's tab closed): release the session's compressed models and download files."""
    owner = getattr(request, "session_hash", None)
    if owner:
        COMPRESSED.drop_owner(owner)
        release_files(owner)


def forget_session(sess: Session | None) -> None:
    """``gr.State`` delete callback (the session's state expired or was deleted): drop its compressed model."""
    if isinstance(sess, Session) and sess.compressed:
        COMPRESSED.drop(sess.compressed)
    if isinstance(sess, Session) and sess.recovered:
        COMPRESSED.drop(sess.recovered)


def plan_summary(layers: list[LayerInfo], clusters: Mapping[str, int]) -> str:
    """One line on the plan being edited: layers compressed, share of compressible parameters removed."""
    plan = Plan(dict(clusters))
    total = sum(l.params for l in layers)
    sparsity = plan.sparsity(layers)
    return (f"**Plan:** {len(plan.active(layers))} of {len(layers)} layers compressed · "
            f"**{100 * sparsity:.1f}%** of the compressible parameters removed "
            f"({sparsity * total / 1e6:.2f} M of {total / 1e6:.2f} M)")


def layer_choices(layers: list[LayerInfo]) -> list[tuple[str, str]]:
    """Dropdown choices for a layer: its short label with its shape, valued by its module name."""
    return [(f"{l.label}  ({l.out_features}×{l.in_features})", l.name) for l in layers]


def default_layer(layers: list[LayerInfo]) -> str | None:
    """The layer shown first: the first FFN hidden layer (fc1), else the first layer."""
    for l in layers:
        if l.kind == "fc1":
            return l.name
    return layers[0].name if layers else None


def pick_layer(layers: list[LayerInfo], name: str | None) -> LayerInfo:
    """The layer called ``name``, or the default one when the name is empty or unknown."""
    by_name = {l.name: l for l in layers}
    return by_name.get(name) or by_name[default_layer(layers)]
