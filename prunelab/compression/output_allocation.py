"""Allocation that follows the model, not the layer: K per unit group from the change of the model's OUTPUT.

The per-layer allocation (:mod:`prunelab.compression.allocate`, ``allocate="auto"``) compares layers by the
fraction of their own weights' energy that clustering loses. Layers do not matter equally to the model,
and a per-layer statistic cannot say which matter more: on Whisper-base a data-free per-layer stand-in
(Gaussian LayerNorm outputs) ranked the encoder FFNs badly (benchmarks/study/research_notes.md: "global"
allocation 147 % tune WER vs 106 % for uniform at 30 %), because layer energies are not comparable across
depth. This module measures every group on one common scale instead: the model's output.

Measure (data-free). Stand-in inputs contain no speech and no data: a seeded pink-noise signal and a
synthetic "buzz" (harmonics of a gliding 100-200 Hz pitch, amplitude-modulated at a syllable-like 4 Hz),
:func:`stand_in_audio`. The ORIGINAL model produces its own outputs on them: Whisper greedily generates
``n_tokens`` tokens per input (end-of-text suppressed, so every position is scored), CTC models give their
frame distributions. For one unit group (a leader layer of the plan) at one cluster count K, only that
group is compressed (with the config's method, units and options) and the cost is the mean KL divergence
``KL(p_original || p_compressed)`` of the next-token (Whisper, teacher-forced on the original's tokens) or
per-frame (CTC) distributions. Groups of the decoder reuse the original encoder output.

Allocation. Each group gets a curve cost(K) on a few sparsities (default 10/20/30/50 %, so no group loses
more than half of its units), made non-increasing in K; then :func:`allocate_from_curves` (lower convex
hull, greedy by cost per parameter, costs NOT normalised since they share the output's scale) removes the
target fraction of the selected groups' parameters. Costs are assumed to add across groups (first order).

Cost: one forward pass of the model on the stand-in inputs per (group, sparsity): on Whisper-base's 6
encoder fc1 groups, 24 passes (about 1 min on 2 cores); every compressed group goes through ``cache``, so
the final :func:`~prunelab.compression.compress.compress` reuses the results at the grid's K.

This is the ``"output"`` strategy of :mod:`prunelab.compression.resolve`. A group is compressed alone by
:func:`~prunelab.compression.assemble.apply_plan` (the step after planning, with the config's method, units,
options and vocabulary), never by ``compress()``: measuring does not plan again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import PlanError
from ..progress import Progress
from ..speech.transcribe import quiet_transformers, whisper_generate_kwargs
from ..speech_model import SpeechModel
from .allocate import allocate_from_curves
from .assemble import apply_plan
from .cache import LayerCache
from .layers import LayerInfo, find_layers
from .plan import Plan, check_preset, check_sparsity, clusters_for_sparsity, clusters_for_unit, unit_leaders, whole_heads
from .sensitivity import SensitivityCurve

if TYPE_CHECKING:
    from .config import CompressionConfig

SAMPLE_RATE = 16000
OUTPUT_GRID = (0.1, 0.2, 0.3, 0.5)


def stand_in_audio(seconds: float = 8.0, seed: int = 0) -> list[np.ndarray]:
    """Two synthetic signals with no speech in them, float32 at 16 kHz, ``[seconds * 16000]`` each:
    pink noise (1/f power) and a harmonic buzz with a gliding pitch and a 4 Hz amplitude envelope."""
    n = int(seconds * SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec[1:] /= np.sqrt(freqs[1:])
    spec[0] = 0
    pink = np.fft.irfft(spec, n)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 150 + 50 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    buzz = sum(np.sin(h * phase) / h for h in range(1, int(7800 / 200) + 1))
    buzz = buzz * 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    return [(0.1 * x / np.sqrt(np.mean(x ** 2))).astype(np.float32) for x in (pink, buzz)]


class OutputProbe:
    """The original model's outputs on the stand-in inputs, and the KL of another model's outputs to them."""

    def __init__(self, model: SpeechModel, *, n_tokens: int = 24, seconds: float = 8.0, seed: int = 0,
                 audio: Sequence[np.ndarray] | None = None):
        """``audio``: 16 kHz clips to probe with instead of the stand-ins (benchmarks use real clips; then the
        original may end its text early, and later positions are scored as they are)."""
        self.model = model
        self.forced = audio is None
        audio = stand_in_audio(seconds, seed) if audio is None else list(audio)
        fe = model.processor.feature_extractor
        dtype = next(model.model.parameters()).dtype
        with torch.inference_mode():
            if model.family == "whisper":
                self.inputs = fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features.to(
                    model.device, dtype)
                self.tokens = self._whisper_tokens(n_tokens)
                self.encoder_out = model.model.get_encoder()(self.inputs).last_hidden_state
            else:
                self.inputs = fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values.to(
                    model.device, dtype)
            self.reference = self._log_probs(model.model, encoder_out=None)

    def _whisper_tokens(self, n_tokens: int) -> torch.Tensor:
        """[B, L] prompt + up to ``n_tokens`` greedy tokens of the original (exactly ``n_tokens``, end-of-text
        suppressed, on the stand-ins)."""
        kwargs = whisper_generate_kwargs(self.model, "en", 1)
        if self.forced:
            eos = self.model.model.generation_config.eos_token_id
            kwargs.update(min_new_tokens=n_tokens, suppress_tokens=[eos] if eos is not None else None)
        with quiet_transformers():  # no chatter about the generation config's own lengths
            return self.model.model.generate(self.inputs, max_new_tokens=n_tokens, do_sample=False, **kwargs)

    def _log_probs(self, module: torch.nn.Module, encoder_out: torch.Tensor | None) -> torch.Tensor:
        if self.model.family == "whisper":
            if encoder_out is not None:
                logits = module(encoder_outputs=(encoder_out,), decoder_input_ids=self.tokens[:, :-1]).logits
            else:
                logits = module(input_features=self.inputs, decoder_input_ids=self.tokens[:, :-1]).logits
        else:
            logits = module(self.inputs).logits
        return F.log_softmax(logits.float(), dim=-1)

    @torch.inference_mode()
    def kl(self, other: torch.nn.Module, *, decoder_only: bool = False) -> float:
        """Mean over positions (and inputs) of ``KL(p_original || p_other)`` in nats."""
        enc = self.encoder_out if decoder_only and self.model.family == "whisper" else None
        logq = self._log_probs(other, enc)
        logp = self.reference
        return float((logp.exp() * (logp - logq)).sum(-1).mean())


def output_curves(
    model: SpeechModel,
    config: CompressionConfig,
    leaders: Sequence[LayerInfo],
    *,
    grid: Sequence[float] = OUTPUT_GRID,
    cache: LayerCache | None = None,
    progress: Progress | None = None,
    probe: OutputProbe | None = None,
) -> list[SensitivityCurve]:
    """One curve per leader layer: output KL when only that layer (its unit) is compressed, at each grid sparsity
    (with ``config``'s method, units, options and vocabulary; its plan, sparsity and allocation are not read)."""
    probe = probe or OutputProbe(model, seed=config.seed)
    layers = find_layers(model.model)
    foldable = config.units == "foldable"
    jobs = []
    for layer in leaders:
        ks = sorted({clusters_for_unit(layer, s) if foldable else clusters_for_sparsity(layer.channels, s)
                     for s in grid} - {layer.channels})
        jobs.append((layer, ks))
    total, done = sum(len(ks) for _, ks in jobs), 0
    curves = []
    for layer, ks in jobs:
        costs = []
        for k in ks:
            if progress:
                progress(done, total, f"output sensitivity: {layer.name} K={k}/{layer.channels}")
            compressed = apply_plan(model, config, Plan({layer.name: k}), layers=layers, cache=cache)
            costs.append(probe.kl(compressed.model, decoder_only=layer.part == "decoder"))
            done += 1
        ks_all, cost_all = ks + [layer.channels], costs + [0.0]
        # non-increasing in K: a smaller K never costs less than a larger one (measurement noise aside)
        for i in range(len(cost_all) - 2, -1, -1):
            cost_all[i] = max(cost_all[i], cost_all[i + 1])
        curves.append(SensitivityCurve(name=layer.name, label=layer.name, channels=layer.channels,
                                       params_per_channel=layer.in_features + int(layer.has_bias), ks=ks_all,
                                       distortion=cost_all, energy=1.0, weighted=False, method=config.method,
                                       writes_residual=layer.writes_residual,
                                       extra={"measure": "output KL (nats) on stand-in inputs"}))
    if progress:
        progress(total, total, "output sensitivity: done")
    return curves


def allocate_by_output(
    model: SpeechModel,
    config: CompressionConfig,
    layers: Sequence[LayerInfo],
    *,
    grid: Sequence[float] = OUTPUT_GRID,
    cache: LayerCache | None = None,
    progress: Progress | None = None,
) -> Plan:
    """Plan removing ``config.sparsity`` of the parameters of the groups ``config.preset`` selects, K per group
    from :func:`output_curves` (see the module doc)."""
    if config.sparsity is None:
        raise PlanError("Give a sparsity to allocate.")
    check_sparsity(config.sparsity)
    select = check_preset(config.preset)
    leaders = [l for l in unit_leaders(layers, config.units) if select(l)]
    if not leaders:
        raise PlanError(f"Preset {config.preset!r} selects no {'layers' if config.units == 'channels' else 'units'} "
                        "of this model.")
    if config.sparsity == 0:
        return Plan({l.name: l.channels for l in leaders})
    if config.sparsity > max(grid):
        raise PlanError(f"Output allocation measures sparsities up to {max(grid):.0%} per group, so it cannot "
                        f"reach {config.sparsity:.0%}; choose a lower sparsity or allocate='uniform'.")
    curves = output_curves(model, config, leaders, grid=grid, cache=cache, progress=progress)
    plan = allocate_from_curves(curves, config.sparsity, normalize="none")
    return whole_heads(plan, leaders) if config.units == "foldable" else plan


__all__ = ["OUTPUT_GRID", "OutputProbe", "allocate_by_output", "output_curves", "stand_in_audio"]
