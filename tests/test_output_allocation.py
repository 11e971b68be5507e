"""allocate="output": K per unit group from the change of the model's output on stand-in inputs (no data)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from prunelab import CompressionConfig, compress
from prunelab.compression import ALLOCATIONS, LayerCache, Plan, find_layers
from prunelab.compression.output_allocation import OutputProbe, allocate_by_output, output_curves, stand_in_audio
from prunelab.compression.resolve import resolve_plan
from prunelab.errors import PlanError


def test_stand_in_audio_is_seeded_finite_and_not_silence():
    a, b = stand_in_audio(2.0, seed=3), stand_in_audio(2.0, seed=3)
    assert [x.shape for x in a] == [(32000,), (32000,)]
    for x, y in zip(a, b):
        assert x.dtype == np.float32 and np.array_equal(x, y) and np.isfinite(x).all()
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=1e-3)
    assert not np.array_equal(a[0], stand_in_audio(2.0, seed=4)[0])
    # the buzz has a pitch: its spectrum peaks between 100 and 200 Hz, the pink noise's does not stand out there
    spec = np.abs(np.fft.rfft(a[1]))
    freqs = np.fft.rfftfreq(len(a[1]), 1 / 16000)
    assert 90 <= freqs[spec.argmax()] <= 210


@pytest.mark.parametrize("name", ["tiny_whisper", "tiny_ctc"])
def test_probe_kl_is_zero_for_the_original_and_matches_an_independent_kl(name, request):
    model = request.getfixturevalue(name)
    probe = OutputProbe(model, n_tokens=6, seconds=2.0)
    assert probe.kl(model.model) == pytest.approx(0.0, abs=1e-6)
    if model.family == "whisper":  # prompt + 6 generated tokens, end-of-text suppressed
        eos = model.model.generation_config.eos_token_id
        assert probe.tokens.shape[0] == 2 and (probe.tokens[:, -6:] != eos).all()
    other = compress(model, CompressionConfig(method="magnitude", sparsity=0.5, preset="ffn"))
    got = probe.kl(other.model)
    with torch.inference_mode():
        if model.family == "whisper":
            dec = probe.tokens[:, :-1]
            p = model.model(input_features=probe.inputs, decoder_input_ids=dec).logits
            q = other.model(input_features=probe.inputs, decoder_input_ids=dec).logits
        else:
            p, q = model.model(probe.inputs).logits, other.model(probe.inputs).logits
    logp, logq = F.log_softmax(p.double(), -1), F.log_softmax(q.double(), -1)
    want = F.kl_div(logq.flatten(0, -2), logp.flatten(0, -2), log_target=True, reduction="batchmean")
    assert got > 1e-8  # the compressed model differs (random tiny CTC logits are nearly flat: small KL)
    assert got == pytest.approx(float(want), rel=1e-3)


def test_decoder_groups_reuse_the_encoder_output_exactly(tiny_whisper):
    probe = OutputProbe(tiny_whisper, n_tokens=4, seconds=2.0)
    layer = "model.decoder.layers.1.fc1"
    other = compress(tiny_whisper, CompressionConfig(method="kmeans", plan=Plan({layer: 16})))
    assert probe.kl(other.model, decoder_only=True) == pytest.approx(probe.kl(other.model), rel=1e-4)


def test_curves_are_non_increasing_in_k_and_zero_at_full_width(tiny_whisper):
    layers = find_layers(tiny_whisper.model)
    leaders = [l for l in layers if l.kind == "fc1"]
    config = CompressionConfig(method="kmeans", sparsity=0.2, preset="fc1", allocate="output")
    curves = output_curves(tiny_whisper, config, leaders, grid=(0.1, 0.3, 0.5))
    assert [c.name for c in curves] == [l.name for l in leaders]
    for c, l in zip(curves, leaders):
        assert c.ks[-1] == l.channels and c.distortion[-1] == 0.0
        assert c.ks == sorted(c.ks) and len(c.ks) == 4
        assert all(a >= b for a, b in zip(c.distortion, c.distortion[1:]))
        assert c.distortion[0] > 0


def test_allocation_takes_the_most_from_a_group_the_output_does_not_need(tiny_whisper):
    """Zeroing fc2 of one FFN makes its fc1 neurons irrelevant to the output: that group must lose the most."""
    with torch.no_grad():
        tiny_whisper.model.get_submodule("model.encoder.layers.1.fc2").weight.zero_()
    layers = find_layers(tiny_whisper.model)
    config = CompressionConfig(method="kmeans", sparsity=0.2, preset="fc1", allocate="output", units="foldable")
    plan = allocate_by_output(tiny_whisper, config, layers, grid=(0.1, 0.2, 0.3, 0.5))
    fc1 = [l for l in layers if l.kind == "fc1"]
    assert set(plan.clusters) == {l.name for l in fc1}
    free = "model.encoder.layers.1.fc1"
    assert plan.layer_sparsity(next(l for l in fc1 if l.name == free)) == pytest.approx(0.5, abs=0.01)
    assert all(plan.clusters[l.name] >= l.channels // 2 for l in fc1)  # no group below the grid's 50 %
    assert plan.sparsity(layers, over="planned") == pytest.approx(0.2, abs=2 / 256)


def test_compress_with_output_allocation_records_it_and_leaves_the_input_alone(tiny_whisper):
    before = {k: v.clone() for k, v in tiny_whisper.model.state_dict().items()}
    cache = LayerCache()
    config = CompressionConfig(method="kmeans", sparsity=0.2, preset="attention-qk", allocate="output",
                               units="foldable")
    out = compress(tiny_whisper, config, cache=cache)
    assert out.compression["allocate"] == "output"
    layers = find_layers(tiny_whisper.model)
    by_name = {l.name: l for l in layers}
    assert out.compression["plan"] and all(k % by_name[n].heads == 0 for n, k in out.compression["plan"].items())
    hits = cache.hits
    compress(tiny_whisper, config, cache=cache)  # measured groups come from the cache the second time
    assert cache.hits > hits
    for k, v in tiny_whisper.model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_output_allocation_refuses_what_it_cannot_measure(tiny_whisper):
    assert "output" in ALLOCATIONS
    with pytest.raises(PlanError, match="up to 50%"):
        compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.6, preset="fc1", allocate="output"))
    with pytest.raises(PlanError, match="needs the speech model"):
        resolve_plan(None, CompressionConfig(method="kmeans", sparsity=0.2, allocate="output"),
                     find_layers(tiny_whisper.model))
