"""``repair(compressed, original, calibration, RepairConfig)``: calibrated repair in seconds, no gradient steps.

What it solves. Compression changed some layers; each changed unit feeds a layer that can absorb the change: an
FFN's fc2 (its kept columns and bias), an attention's out_proj (its columns, after value dims or any projection
changed), an attention's k_proj (new keys for the kept queries). Repair re-solves those layers by ridge least
squares so that each sublayer gives what the ORIGINAL sublayer gives on the same input (:mod:`.solve` has the
maths, :mod:`.statistics` the sites), from unlabeled calibration audio. It works the same for every method and
unit kind -- the paper's k-means, structured and unstructured magnitude, predictive, lowrank-qk, channel clustering
-- since it only reads which modules the compression replaced.

How it runs (as SparseGPT / GPTQ do it): the hidden states entering the first block are captured once; then, block
after block in forward order, each repair stage of the block (self-attention query/key, self-attention output,
cross-attention likewise, FFN) runs the block on the cached hidden states of the model repaired so far with hooks
that accumulate its statistics, solves, and installs the new layer; one more pass gives the next block's input.
So errors do not pile up, and each block costs (stages + 1) passes of one block, not of the whole model. Whisper's
decoder is repaired after the encoder, on the original model's own transcripts of the calibration windows (teacher
forcing), with the repaired encoder's output. Statistics skip padding: the frames after the audio of a window, the
tokens after the transcript.

``repair`` never modifies its inputs: the result is a :func:`~prunelab.compression.compress.share_copy` of the
compressed model in which the re-solved layers are new modules. The step is recorded in
``compression["recovery"]``, so a saved folder says how it was made and reloads to the same outputs.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..compression.assemble import share_copy
from ..compression.layers import LayerInfo, find_layers, set_module
from ..errors import PrunelabError
from ..methods import get_method
from ..modules import ClusteredLinear, linear_like
from ..progress import Progress
from ..speech.audio import SAMPLE_RATE
from ..speech_model import SpeechModel
from .calibration import CalibrationSet, Window, load_calibration, pack_windows
from .solve import cluster_mean_columns, resolve_keys, ridge, ridge_masked, select_units
from .statistics import STAGES, Collector, Site

ENCODER_FRAME_SAMPLES = 320
"""Whisper's encoder frame: 20 ms of 16 kHz audio (10 ms mel hop, then a stride-2 convolution)."""


REPAIR_ALPHA = 1e-2
"""Default ridge strength, chosen on tune clips only (Whisper-base, predictive encoder FFN 30 %, calibration on 14
of the 28 tune clips, WER on the other 14: alpha 1e-4 / 1e-3 / 1e-2 gave 32.9 / 25.0 / 19.1 %, unrepaired 80.9 %,
uncompressed 8.6 %). One clip a window (``pack=False``) beat packed windows there (25.0 vs 37.5 % at 1e-3): the
model is used on single padded clips, and its statistics should come from the same."""


RECOMMENDED_REPAIRED = {"method": "predictive", "allocate": "auto", "preset": "fc1", "units": "foldable", "scale": 1.2,
                        "select": True}
"""What ``recommended`` stands for when a calibration set is given (``prunelab eval --calibration``): the predictive
fold of the FFN neurons of encoder and decoder (foldable units, sparsity spread by ``auto``), then repair; its
sparsity axis is scaled by 1.2 (``--sparsities 0.1,...,0.5`` fold 12-60 % of the FFN neurons, 4.2-20.8 % of all
parameters). Chosen by round R3 of benchmarks/WER_STUDY.md's recovery section (benchmarks/recovery_choice_r3.json) on
tune clips only, after round R2 had shown R1's choice (k-means of every foldable unit, chosen on size) broken after
repair on fresh clips (340 % WER at 30 % removed); R3's own report is on test6, made after that choice. At the top of
the axis both R3 families were far from the uncompressed model on tune (174 % vs 415 % WER): it is the less broken
choice, not a good one (WER_STUDY.md). Round R5 (benchmarks/recovery_choice_r5.json, on tune only) then made its
repair re-choose the FFN neurons kept (``"select"``: :attr:`RepairConfig.select`): tune WER at 12.5 / 20.8 % removed
36.1 / 174.4 % with plain repair, 16.7 / 22.0 % with selection (uncompressed 15.4 %); its report is on test7."""


class RecoveryError(PrunelabError):
    """Recovery cannot run on what was given (not a compressed model, a mismatched original, ...)."""


@dataclass(frozen=True)
class RepairConfig:
    """How :func:`repair` runs.

    Attributes:
        alpha: ridge strength, relative to the mean of each Gram diagonal (:func:`~prunelab.recovery.solve.ridge`).
        max_clips: use the first N calibration clips (None: all).
        batch: windows (Whisper) or clips (CTC) per forward pass.
        pack: Whisper: pack the clips into 30 s windows (:func:`~prunelab.recovery.calibration.pack_windows`);
            False: one clip a window, padded as ``transcribe`` pads it.
        parts: which parts to repair (``"encoder"``, ``"decoder"``).
        select: FFN neurons: also re-choose WHICH neurons each layer keeps, from the calibration statistics
            (greedy OBS, :func:`~prunelab.recovery.solve.select_units`), before fc2 is re-solved; the number each
            layer keeps stays as compressed, and fc1's kept rows become the original's rows. Only where fc1 keeps
            whole rows as a plain layer (pruned or folded neurons); clustered layers are repaired as they are.
            Off by default: then repair never changes what the compression chose.
    """

    alpha: float = REPAIR_ALPHA
    max_clips: int | None = None
    batch: int = 4
    pack: bool = False
    parts: tuple[str, ...] = ("encoder", "decoder")
    select: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha) and self.alpha >= 0):
            raise RecoveryError(f"The ridge strength alpha must be a number >= 0, not {self.alpha!r}.")
        if self.max_clips is not None and (not isinstance(self.max_clips, int) or self.max_clips < 1):
            raise RecoveryError(f"max_clips must be a whole number >= 1, not {self.max_clips!r}.")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise RecoveryError(f"batch must be a whole number >= 1, not {self.batch!r}.")
        unknown = set(self.parts) - {"encoder", "decoder"}
        if unknown or not self.parts:
            raise RecoveryError(f"parts must name 'encoder' and/or 'decoder', not {self.parts!r}.")


def check_pair(compressed: SpeechModel, original: SpeechModel) -> None:
    """Raise :class:`RecoveryError` unless ``compressed`` was compressed from a model shaped like ``original``."""
    if compressed.compression is None:
        raise RecoveryError(f"{compressed.spec} is not compressed: compress it first, then repair it.")
    if original.compression is not None:
        raise RecoveryError("The original given for repair is itself compressed; give the uncompressed model "
                            f"({compressed.compression.get('base_model', 'the one it was compressed from')}).")
    if compressed.family != original.family:
        raise RecoveryError(f"The compressed model is a {compressed.family} model and the original a "
                            f"{original.family} one: give the model it was compressed from.")
    names = {name for name, _ in original.model.named_modules()}
    missing = [n for n in compressed.compression.get("modules", {}) if n not in names]
    if missing:
        raise RecoveryError(f"The original has no layer {missing[0]!r}: it is not the model "
                            f"{compressed.compression.get('base_model', '')!r} that this one was compressed from.")
    for layer in find_layers(original.model):
        if layer.kind in ("fc1", "q", "v") and layer.name in compressed.compression.get("modules", {}):
            theirs = compressed.compression["modules"][layer.name]["in_features"]
            if theirs != layer.in_features:
                raise RecoveryError(f"Layer {layer.name} reads {theirs} inputs in the compressed model and "
                                    f"{layer.in_features} in the original: give the model it was compressed from.")


def _selectable(model: nn.Module, fc1: LayerInfo) -> bool:
    """Whether the FFN of ``fc1`` keeps fewer whole neurons as plain layers (so another subset can replace them)."""
    new_fc1, new_fc2 = model.get_submodule(fc1.name), model.get_submodule(fc1.partner)
    return (type(new_fc1) is nn.Linear and type(new_fc2) is nn.Linear
            and new_fc1.out_features == new_fc2.in_features < fc1.out_features)


def _blocks_path(layers: list[LayerInfo]) -> dict[str, str]:
    """``{"encoder": "model.encoder.layers", ...}``: the ModuleList of each part's blocks."""
    paths = {}
    for layer in layers:
        paths.setdefault(layer.part, layer.name.split(f".{layer.part}.layers.{layer.block}.")[0] + f".{layer.part}.layers")
    return paths


def plan_sites(compressed: SpeechModel, original: nn.Module, masked: set[str] = frozenset(),
               select: bool = False) -> list[Site]:
    """The layers repair re-solves for this compression, in forward order (part, block, stage). ``masked``: the
    layers an unstructured method zeroed (a key projection among them is not re-solved: that would fill its
    zeros; its attention's out_proj still is). ``select``: FFNs whose fc1 keeps whole rows as a plain layer get an
    ``ffn-select`` site (:attr:`RepairConfig.select`)."""
    replaced = set(compressed.compression.get("modules", {}))
    layers = find_layers(original)
    by_name = {l.name: l for l in layers}
    sites: dict[str, Site] = {}
    for name in sorted(replaced):
        layer = by_name.get(name)
        if layer is None:
            continue
        prefix = name.rpartition(".")[0]
        if layer.group == "ffn":
            fc1 = layer if layer.kind == "fc1" else next(l for l in layers if l.partner == name)
            kind = "ffn-select" if select and _selectable(compressed.model, fc1) else "ffn"
            sites.setdefault(fc1.partner, Site(kind, layer.part, layer.block, STAGES.index("ffn"), fc1.partner, fc1.name))
            continue
        group = "self_attn" if layer.group == "self_attn" else "cross_attn"
        out = f"{prefix}.out_proj"
        sites.setdefault(out, Site("attention-out", layer.part, layer.block, STAGES.index(f"{group}-out"), out, prefix))
        q, k = f"{prefix}.q_proj", f"{prefix}.k_proj"
        if (layer.kind in ("q", "k") and k not in masked
                and not isinstance(compressed.model.get_submodule(k), ClusteredLinear)):
            sites.setdefault(k, Site("qk", layer.part, layer.block, STAGES.index(f"{group}-qk"), k, q, heads=layer.heads))
    order = {"encoder": 0, "decoder": 1}
    return sorted(sites.values(), key=lambda s: (order[s.part], s.block, s.stage, s.target))


class _Captured(Exception):
    pass


def _capture(first_block: nn.Module, run) -> tuple[tuple, dict]:
    """The (args, kwargs) ``first_block`` is called with when ``run()`` runs the model (stopped there)."""
    seen: dict = {}

    def hook(module, args, kwargs):
        seen["args"], seen["kwargs"] = args, kwargs
        raise _Captured

    handle = first_block.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    except _Captured:
        pass
    finally:
        handle.remove()
    if "args" not in seen:
        raise RecoveryError("Could not reach the model's first block with the calibration audio.")
    return seen["args"], seen["kwargs"]


@dataclass
class _Batch:
    """One forward batch of a part: the hidden states entering the current block, the block's other call
    arguments, and the valid positions [B, T] (None: all)."""

    hidden: Tensor
    args: tuple
    kwargs: dict
    mask: Tensor | None


def _call_block(block: nn.Module, batch: _Batch) -> Tensor:
    out = block(batch.hidden, *batch.args, **batch.kwargs)
    if isinstance(out, tuple):
        if "position_bias" in batch.kwargs and len(out) > 1:  # WavLM hands its relative position bias on
            batch.kwargs["position_bias"] = out[-1]
        out = out[0]
    return out


def _whisper_inputs(model: SpeechModel, calibration: CalibrationSet, batch: int,
                    pack: bool = True) -> list[tuple[Tensor, Tensor]]:
    """30 s windows (packed, or one clip each) as (log-mel features [B, 80, 3000], valid encoder frames [B, 1500])
    batches."""
    fe = model.processor.feature_extractor
    windows = pack_windows(calibration.clips) if pack else [Window(c, len(c)) for c in calibration.clips]
    frames = int(fe.nb_max_frames // 2)
    dtype = next(model.model.parameters()).dtype
    out = []
    for start in range(0, len(windows), batch):
        part = windows[start:start + batch]
        feats = fe([w.samples for w in part], sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        mask = torch.zeros(len(part), frames, dtype=torch.bool)
        for i, w in enumerate(part):
            mask[i, :min(frames, math.ceil(w.filled / ENCODER_FRAME_SAMPLES))] = True
        out.append((feats.to(model.device, dtype), mask.to(model.device)))
    return out


def _prompt(model: SpeechModel) -> list[int]:
    """The decoder prompt ``transcribe`` uses: start of transcript, English + transcribe where multilingual,
    no timestamps."""
    gc = model.model.generation_config
    prompt = [gc.decoder_start_token_id]
    if getattr(gc, "is_multilingual", False) and getattr(gc, "lang_to_id", None):
        prompt += [gc.lang_to_id["<|en|>"], gc.task_to_id["transcribe"]]
    if getattr(gc, "no_timestamps_token_id", None) is not None:
        prompt.append(gc.no_timestamps_token_id)
    return prompt


def teacher_tokens(original: SpeechModel, features: Tensor) -> tuple[Tensor, Tensor]:
    """The original model's greedy transcript of each window, as decoder input ids [B, L] (prompt included, padded
    with the end token) and the valid positions [B, L] (the prompt and the text, up to its end token)."""
    from ..speech.transcribe import max_tokens_for, quiet_transformers, whisper_generate_kwargs

    kwargs = whisper_generate_kwargs(original, "en", 1)
    limit = getattr(original.model.generation_config, "max_length", None) or 448
    kwargs["max_new_tokens"] = max(1, min(max_tokens_for(30.0), limit - len(_prompt(original))))
    with torch.inference_mode(), quiet_transformers():
        generated = original.model.generate(features, **kwargs)
    eos = original.model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, (list, tuple)) else eos
    prompt = torch.tensor(_prompt(original), dtype=torch.long, device=generated.device)
    ids = torch.cat([prompt.expand(generated.shape[0], -1), generated], 1)
    mask = torch.ones_like(ids, dtype=torch.bool)
    for i in range(ids.shape[0]):
        ends = (generated[i] == eos).nonzero()
        if ends.numel():
            mask[i, len(prompt) + int(ends[0]) + 1:] = False
    return ids, mask


def repair(
    compressed: SpeechModel,
    original: SpeechModel,
    calibration: CalibrationSet | object = None,
    config: RepairConfig = RepairConfig(),
    *,
    progress: Progress | None = None,
) -> SpeechModel:
    """Re-solve what each compressed unit feeds so the model reproduces ``original`` on calibration audio.

    Args:
        compressed: the result of :func:`prunelab.compress` (or a loaded compressed folder).
        original: the uncompressed model it was compressed from.
        calibration: a :class:`~prunelab.recovery.calibration.CalibrationSet` or anything
            :func:`~prunelab.recovery.calibration.load_calibration` reads (None: the bundled set).
        config: :class:`RepairConfig`.
        progress: ``progress(done, total, message)`` per pass.

    Returns:
        A new :class:`SpeechModel` (``compressed`` and ``original`` are unchanged) whose ``compression["recovery"]``
        ends with this step's record.
    """
    check_pair(compressed, original)
    if not isinstance(calibration, CalibrationSet):
        calibration = load_calibration(calibration)
    calibration = calibration.first(config.max_clips)
    started = time.perf_counter()
    new = share_copy(compressed.model).eval()
    orig = original.model.eval()
    method = get_method(compressed.compression.get("method", "kmeans"))
    masked = set() if method.structured else set(compressed.compression.get("modules", {}))
    sites = [s for s in plan_sites(compressed, orig, masked, config.select) if s.part in config.parts]
    blocks = _blocks_path(find_layers(orig))
    total = _count_passes(sites, new, blocks)
    done = [0]

    def tick(message: str) -> None:
        done[0] += 1
        if progress:
            progress(done[0], total, message)

    with torch.no_grad():
        if compressed.family == "whisper":
            inputs = _whisper_inputs(compressed, calibration, config.batch, config.pack)
            encoder_out = _repair_whisper_encoder(new, orig, inputs, sites, blocks, masked, config.alpha, tick)
            if any(s.part == "decoder" for s in sites):
                _repair_whisper_decoder(new, original, inputs, encoder_out, sites, blocks, masked, config.alpha, tick)
        else:
            _repair_ctc(new, orig, compressed, calibration, sites, blocks, masked, config, tick)
    record = {
        "step": "repair",
        "clips": len(calibration),
        "seconds": round(calibration.seconds, 2),
        "calibration": calibration.source,
        "skipped": len(calibration.skipped),
        "alpha": config.alpha,
        "parts": list(config.parts),
        "select": config.select,
        "layers": [s.target for s in sites],
        "time_s": round(time.perf_counter() - started, 2),
    }
    compression = copy.deepcopy(compressed.compression)
    compression["recovery"] = list(compression.get("recovery", [])) + [record]
    return SpeechModel(new, compressed.processor, compressed.family, compressed.spec, compression=compression)


def _count_passes(sites: list[Site], model: nn.Module, blocks: dict[str, str]) -> int:
    total = 0
    for part in ("encoder", "decoder"):
        mine = [s for s in sites if s.part == part]
        if not mine:
            continue
        last = max(s.block for s in mine)
        total += len({(s.block, s.stage) for s in mine}) + last + 1
    return max(total, 1)


def _repair_part(new: nn.Module, orig: nn.Module, batches: list[_Batch], sites: list[Site], part: str,
                 blocks: dict[str, str], masked: set[str], alpha: float, tick, *, to_end: bool = False) -> None:
    """Repair ``part``'s sites block by block; ``batches`` are updated to each next block's input (to the last
    block's output when ``to_end``)."""
    mine = [s for s in sites if s.part == part]
    if not mine and not to_end:
        return
    container = new.get_submodule(blocks[part])
    last = len(container) - 1 if to_end else max(s.block for s in mine)
    for b in range(last + 1):
        block = container[b]
        for stage in sorted({s.stage for s in mine if s.block == b}):
            group = [s for s in mine if s.block == b and s.stage == stage]
            collector = Collector(group, new, orig, blocks)
            with collector:
                for batch in batches:
                    collector.mask = batch.mask
                    _call_block(block, batch)
            for site in group:
                _install(new, orig, site, masked, alpha)
            tick(f"repaired {part} block {b}: {STAGES[stage]}")
        if b < last or to_end:
            for batch in batches:
                batch.hidden = _call_block(block, batch)
        tick(f"{part} block {b} done")


def _repair_whisper_encoder(new, orig, inputs, sites, blocks, masked, alpha, tick) -> list[Tensor]:
    """Repair the encoder's sites; returns the repaired encoder's output per batch when the decoder needs it."""
    encoder = new.get_submodule(blocks["encoder"].rpartition(".")[0]) if "encoder" in blocks else new.model.encoder
    need_output = any(s.part == "decoder" for s in sites)
    batches = []
    for feats, mask in inputs:
        args, kwargs = _capture(encoder.layers[0], lambda: encoder(feats))
        batches.append(_Batch(args[0], args[1:], dict(kwargs), mask))
    _repair_part(new, orig, batches, sites, "encoder", blocks, masked, alpha, tick, to_end=need_output)
    return [encoder.layer_norm(b.hidden) for b in batches] if need_output else []


def _repair_whisper_decoder(new, original: SpeechModel, inputs, encoder_out, sites, blocks, masked, alpha, tick) -> None:
    decoder = new.get_submodule(blocks["decoder"].rpartition(".")[0])
    batches = []
    for (feats, _), enc in zip(inputs, encoder_out):
        ids, mask = teacher_tokens(original, feats)
        args, kwargs = _capture(decoder.layers[0], lambda: decoder(input_ids=ids, encoder_hidden_states=enc,
                                                                   use_cache=False))
        batches.append(_Batch(args[0], args[1:], dict(kwargs), mask))
    _repair_part(new, original.model, batches, sites, "decoder", blocks, masked, alpha, tick)


def _repair_ctc(new, orig, compressed: SpeechModel, calibration: CalibrationSet, sites, blocks, masked,
                config: RepairConfig, tick) -> None:
    fe = compressed.processor.feature_extractor
    dtype = next(new.parameters()).dtype
    batches = []
    container = new.get_submodule(blocks["encoder"])
    for clip in calibration.clips:  # one clip a pass: padding would change group-normalised feature encoders
        values = fe(clip, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values.to(compressed.device, dtype)
        args, kwargs = _capture(container[0], lambda: new(values))
        batches.append(_Batch(args[0], args[1:], dict(kwargs), None))
    _repair_part(new, orig, batches, sites, "encoder", blocks, masked, config.alpha, tick)


def _augmented_rows(module: nn.Module) -> Tensor:
    """A projection's dense rows with the bias as a last column: [C, in+1] float64."""
    if isinstance(module, ClusteredLinear):
        module = module.dense()
    weight = module.weight.detach().to(torch.float64)
    bias = module.bias.detach().to(torch.float64) if module.bias is not None else torch.zeros(weight.shape[0],
                                                                                                dtype=torch.float64)
    return torch.cat([weight, bias[:, None]], 1)


def _install(new: nn.Module, orig: nn.Module, site: Site, masked: set[str], alpha: float) -> None:
    """Solve ``site`` from its statistics and put the re-solved layer into ``new`` (a new module object: the old
    one's storage may be shared with the compressed or the original model)."""
    current = new.get_submodule(site.target)
    if site.frames == 0:
        return
    if site.kind == "ffn-select":
        _install_selected(new, orig, site, alpha)
        return
    if site.kind == "qk":
        old_q, old_k = orig.get_submodule(site.reads), orig.get_submodule(site.target)
        keys = resolve_keys(site.gram, _augmented_rows(new.get_submodule(site.reads)), _augmented_rows(old_q),
                            old_k.weight.detach().to(torch.float64), site.heads, alpha)
        bias = None if current.bias is None else current.bias.detach()
        set_module(new, site.target, linear_like(keys, bias, like=current))
        return
    has_bias = current.bias is not None
    gram, cross = site.gram, site.cross
    if not has_bias:  # drop the constant column: no bias to solve
        gram, cross = gram[:-1, :-1], cross[:-1]
    if isinstance(current, ClusteredLinear):
        solved = ridge(gram, cluster_mean_columns(cross, current.index, current.k), alpha)
        module = ClusteredLinear(current.in_features, current.k, current.out_features, has_bias,
                                 device=current.weight.device, dtype=current.weight.dtype)
        with torch.no_grad():
            module.weight.copy_(solved[:current.in_features].T)
            if has_bias:
                module.bias.copy_(solved[current.in_features])
            module.index.copy_(current.index)
        set_module(new, site.target, module)
        return
    if site.target in masked:
        solved = ridge_masked(gram, cross, current.weight.detach() != 0, alpha, bias=has_bias)
    else:
        solved = ridge(gram, cross, alpha)
    weight = solved[:current.in_features].T
    set_module(new, site.target, linear_like(weight, solved[current.in_features] if has_bias else None, like=current))


def _install_selected(new: nn.Module, orig: nn.Module, site: Site, alpha: float) -> None:
    """Keep the neurons :func:`select_units` picks from the original FFN, and re-solve fc2 on them."""
    old_fc1, old_fc2 = orig.get_submodule(site.reads), orig.get_submodule(site.target)
    cur_fc1, cur_fc2 = new.get_submodule(site.reads), new.get_submodule(site.target)
    consumer = _augmented_rows(old_fc2)  # [out, C+1]
    has_bias = cur_fc2.bias is not None
    keep = select_units(site.gram, consumer, cur_fc1.out_features, alpha, bias=has_bias)
    idx = torch.cat([keep, torch.tensor([site.gram.shape[0] - 1])])
    gram = site.gram.index_select(0, idx).index_select(1, idx)
    cross = site.gram.index_select(0, idx) @ consumer.T  # sum h~_S y^T, y = W~ h~ (the original fc2)
    if not has_bias:
        gram, cross = gram[:-1, :-1], cross[:-1]
    solved = ridge(gram, cross, alpha)
    rows = old_fc1.weight.detach()[keep]
    set_module(new, site.reads, linear_like(rows, None if old_fc1.bias is None else old_fc1.bias.detach()[keep],
                                            like=cur_fc1))
    set_module(new, site.target, linear_like(solved[:len(keep)].T, solved[len(keep)] if has_bias else None,
                                             like=cur_fc2))


def describe(record: dict) -> str:
    """One line for a repair record, e.g. ``repaired on 32 clips (128 s), 24 layers, alpha 0.001, 41 s``."""
    return (f"repaired on {record['clips']} clips ({record['seconds']:.0f} s), {len(record['layers'])} layers, "
            f"alpha {record['alpha']:g}" + (", FFN neurons re-chosen" if record.get("select") else "")
            + f", {record['time_s']:.0f} s")


