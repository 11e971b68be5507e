"""compress(): the result against an independent computation from the original weights, exactness at K = C,
folding, the input left untouched, baselines, determinism, caching, save/load."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from independent import expected_dense, keep_largest, linear_out, original_rows, reference_model
from prunelab.compression import CompressionConfig, compress, method_choices, resolve_method
from prunelab.compression.assemble import unit_context
from prunelab.compression.cache import LayerCache
from prunelab.compression.layers import find_layers
from prunelab.compression.plan import UNITS, Plan
from prunelab.errors import ModelLoadError, PlanError, SaveError
from prunelab.methods import METHODS, get_method, kmeans_channels, magnitude_channels, magnitude_unstructured
from prunelab.models import SpeechModel, load_model
from prunelab.models.saved import load_compressed, save_compressed
from prunelab.modules import ClusteredLinear, build_module, fold_ffn, module_record, to_module
from prunelab.report.size import size_report
from prunelab.speech.audio import load_audio

CLIP = Path(__file__).resolve().parents[1] / "assets" / "clip1.wav"
WHISPER_PROMPT = [50258, 50259, 50359, 50363]  # <|startoftranscript|><|en|><|transcribe|><|notimestamps|>


def whisper_logits(sm, seed=0):
    module = sm.model if isinstance(sm, SpeechModel) else sm
    g = torch.Generator().manual_seed(seed)
    n_mels = module.config.num_mel_bins
    feats = torch.randn(1, n_mels, 2 * module.config.max_source_positions, generator=g)
    tokens = torch.tensor([WHISPER_PROMPT + [400, 500]])
    with torch.no_grad():
        return module(input_features=feats, decoder_input_ids=tokens).logits


def ctc_logits(sm, seed=0):
    module = sm.model if isinstance(sm, SpeechModel) else sm
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return module(torch.randn(1, 8000, generator=g)).logits


LOGITS = {"tiny_whisper": whisper_logits, "tiny_ctc": ctc_logits}


def test_full_k_is_identity(tiny_whisper):
    layers = find_layers(tiny_whisper.model)
    same = compress(tiny_whisper, CompressionConfig(plan=Plan({l.name: l.channels for l in layers})))
    assert torch.equal(whisper_logits(same), whisper_logits(tiny_whisper))
    assert same.compression["sparsity"] == 0.0 and same.compression["modules"] == {}
    assert same.model is not tiny_whisper.model


INDEPENDENT = ["kmeans", "magnitude", "magnitude-unstructured", "kmeans-weighted", "representative", "hybrid"]
"""The per-layer methods whose rule tests/independent.py works out again from the original weights."""


def test_every_per_layer_method_has_an_independent_check():
    """A new per-layer method gets its rule in tests/independent.py (unit-level ones are checked in
    test_foldable_units.py and their own tests)."""
    assert sorted(n for n, m in METHODS.items() if not getattr(m, "folds", False)) == sorted(INDEPENDENT)


@pytest.mark.parametrize("fixture", ["tiny_whisper", "tiny_ctc"])
@pytest.mark.parametrize("method", INDEPENDENT)
def test_compressed_model_matches_an_independent_computation(request, fixture, method):
    """Every compressed layer computes what the method defines, worked out again from the ORIGINAL weights
    and biases (cluster means, kept members, kept channels, largest weights); whole models, folded or not,
    match a plain copy of the original given those dense weights."""
    sm = request.getfixturevalue(fixture)
    logits = LOGITS[fixture]
    layers = find_layers(sm.model)
    plan = Plan.from_sparsity(layers, 0.4, "uniform")  # every kind of layer: attention, fc1, fc2
    unfolded = compress(sm, CompressionConfig(method=method, plan=plan, fold=False, seed=1))
    folded = compress(sm, CompressionConfig(method=method, plan=plan, fold=True, seed=1))
    g = torch.Generator().manual_seed(0)
    for layer in layers:
        original = sm.model.get_submodule(layer.name)
        new = unfolded.model.get_submodule(layer.name)
        k = plan.clusters[layer.name]
        weight, bias = expected_dense(method, sm.model, layer, k, new)
        if bias is not None:
            assert bias.abs().max() > 0  # the tiny models' biases are not zero: a lost bias shows
        x = torch.randn(7, layer.in_features, generator=g)
        with torch.no_grad():
            got = new(x)
        torch.testing.assert_close(got.double(), linear_out(x, weight, bias), rtol=1e-5, atol=1e-5,
                                   msg=lambda m: f"{layer.name}: {m}")
        assert new.weight.dtype == original.weight.dtype
    # the whole folded model (fc1 rows shared, fc2 columns summed) against the plain reference model
    reference = reference_model(sm.model, unfolded.model, method, plan.clusters)
    torch.testing.assert_close(logits(folded), logits(reference), rtol=1e-4, atol=1e-4)
    fc1 = next(l for l in layers if l.kind == "fc1")
    new_fc1 = folded.model.get_submodule(fc1.name)
    if METHODS[method].structured:  # folded FFNs are genuinely smaller dense layers
        assert type(new_fc1) is torch.nn.Linear and new_fc1.out_features == plan.clusters[fc1.name]
        assert size_report(folded).params < size_report(unfolded).params < size_report(sm).params
    else:  # same shapes, fewer non-zero weights
        assert new_fc1.weight.shape == sm.model.get_submodule(fc1.name).weight.shape
        assert size_report(folded).params == size_report(sm).params
        assert size_report(folded).nonzero_params < size_report(sm).nonzero_params


def _snapshot(sm):
    return ({k: v.detach().clone() for k, v in sm.model.state_dict().items()},
            {name: type(m) for name, m in sm.model.named_modules()},
            sm.model.generation_config.to_dict() if sm.family == "whisper" else None,
            [p.requires_grad for p in sm.model.parameters()], sm.model.training)


def _units_for(method: str) -> list[str]:
    """The units a method can work on: unit-level methods only foldable units, unstructured ones only channels."""
    m = METHODS[resolve_method(method)[0]]
    if getattr(m, "folds", False):
        return ["foldable"]
    return list(UNITS) if m.structured else ["channels"]


UNIT_CASES = [(m, units) for m in method_choices() for units in _units_for(m)]


@pytest.mark.parametrize("allocate", ["uniform", "auto"])
@pytest.mark.parametrize("method,units", UNIT_CASES)
def test_compress_leaves_its_input_unchanged(tiny_whisper, method, units, allocate):
    """Whatever compress() does, and also when it refuses (a unit-level method may take only some unit kinds:
    every preset of one kind is tried), the input model is as it was."""
    before = _snapshot(tiny_whisper)
    unit_level = getattr(METHODS[resolve_method(method)[0]], "folds", False)
    presets = ["fc1", "attention-qk", "attention-values"] if unit_level else ["uniform"]
    done = []
    for preset in presets:
        try:
            small = compress(tiny_whisper, CompressionConfig(method=method, sparsity=0.3, preset=preset,
                                                             allocate=allocate, units=units))
        except PlanError:
            small = None
        state, types, gen, grads, training = before
        after, types_after, gen_after, grads_after, training_after = _snapshot(tiny_whisper)
        assert after.keys() == state.keys()
        changed = [k for k in state if not torch.equal(state[k], after[k])]
        assert not changed, f"compress({method}, {units}, {preset}, {allocate}) changed its input: {changed[:5]}"
        assert types_after == types and gen_after == gen and grads_after == grads and training_after == training
        assert tiny_whisper.compression is None
        if small is not None:
            assert small.compression["plan"] and small.model is not tiny_whisper.model
            done.append(preset)
    assert done, f"{method} compressed nothing with any of {presets}"


def _cluster_means(linear: torch.nn.Linear, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense weight and bias whose channel c is the mean of the ORIGINAL rows sharing its cluster; dropped (index k) = 0."""
    rows = original_rows(linear)
    out = torch.zeros_like(rows)
    for j in range(k):
        out[index == j] = rows[index == j].mean(0)
    return out[:, :-1], out[:, -1]


def test_clustered_linear_and_folds_match_the_original_layers():
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(16, 40), torch.nn.Linear(40, 16)  # nn.Linear's init: non-zero biases
    x = torch.randn(3, 5, 16)
    groups = kmeans_channels(fc1.weight, fc1.bias, 10, seed=0)
    layer = ClusteredLinear.from_groups(groups)
    w1, b1 = _cluster_means(fc1, groups.index, 10)
    h = linear_out(x, w1, b1)  # what the clustered fc1 must output, from fc1's own rows
    torch.testing.assert_close(layer(x).double(), h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.dense()(x).double(), h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(F.linear(x, *groups.dense()).double(), h, rtol=1e-5, atol=1e-6)
    assert (layer.in_features, layer.k, layer.out_features) == (16, 10, 40) and not layer.has_dropped

    # fc1 folded into the ORIGINAL fc2: fc2 reads the clustered activations
    expected = fc2(F.gelu(h.float()))
    new1, new2 = fold_ffn(layer, fc2)
    assert (new1.in_features, new1.out_features, new2.in_features, new2.out_features) == (16, 10, 10, 16)
    torch.testing.assert_close(new2(F.gelu(new1(x))), expected, rtol=1e-5, atol=1e-5)

    # fc2 clustered too: it keeps its own clusters (of its own original rows) after folding
    g2 = kmeans_channels(fc2.weight, fc2.bias, 6, seed=0)
    fc2c = ClusteredLinear.from_groups(g2)
    w2, b2 = _cluster_means(fc2, g2.index, 6)
    f1, f2 = fold_ffn(layer, fc2c)
    assert isinstance(f2, ClusteredLinear) and f2.k == 6 and f2.in_features == 10 and torch.equal(f2.index, g2.index)
    torch.testing.assert_close(f2(F.gelu(f1(x))).double(), linear_out(F.gelu(h.float()), w2, b2), rtol=1e-5, atol=1e-5)

    # dropped channels (structured magnitude keeps 10 of 40): they output 0, and folding removes them exactly
    kept = magnitude_channels(fc1.weight, fc1.bias, 10)
    pruned = ClusteredLinear.from_groups(kept)
    assert pruned.has_dropped
    mask = (kept.index < 10).double()
    h = linear_out(x, original_rows(fc1)[:, :-1] * mask[:, None], fc1.bias.detach().double() * mask)
    torch.testing.assert_close(pruned(x).double(), h, rtol=1e-5, atol=1e-6)
    p1, p2 = fold_ffn(pruned, fc2)
    assert p1.out_features == 10 and p2.in_features == 10
    torch.testing.assert_close(p2(F.gelu(p1(x))), fc2(F.gelu(h.float())), rtol=1e-5, atol=1e-5)


def test_folds_of_layers_without_bias():
    torch.manual_seed(9)
    fc1, fc2 = torch.nn.Linear(6, 20, bias=False), torch.nn.Linear(20, 5, bias=False)
    x = torch.randn(4, 6)
    layer = ClusteredLinear.from_groups(kmeans_channels(fc1.weight, None, 7, seed=0))
    h = F.gelu(layer(x))
    new1, new2 = fold_ffn(layer, fc2)
    assert new1.bias is None and new2.bias is None
    torch.testing.assert_close(new2(F.gelu(new1(x))), fc2(h), rtol=1e-5, atol=1e-6)
    fc2c = ClusteredLinear.from_groups(kmeans_channels(fc2.weight, None, 3, seed=0))
    f1, f2 = fold_ffn(layer, fc2c)
    assert f1.bias is None and f2.bias is None
    torch.testing.assert_close(f2(F.gelu(f1(x))), fc2c(h), rtol=1e-5, atol=1e-6)
    assert ClusteredLinear(6, 2, 20).bias is not None  # a bias unless asked otherwise, like nn.Linear


def test_clustered_linear_without_bias_and_in_float64():
    torch.manual_seed(5)
    original = torch.nn.Linear(8, 12, bias=False).double()
    layer = to_module(kmeans_channels(original.weight, None, 4, seed=0), like=original)
    dense = layer.dense()
    assert dense.bias is None and dense.weight.dtype == torch.float64 and layer.weight.dtype == torch.float64
    w = original.weight.detach()
    expected = torch.stack([w[layer.index == layer.index[c]].mean(0) for c in range(12)])
    x = torch.randn(3, 8, dtype=torch.float64)
    torch.testing.assert_close(dense(x), x @ expected.T)
    torch.testing.assert_close(layer(x), x @ expected.T)


def test_magnitude_unstructured_extremes():
    w = torch.tensor([[0.5, -3.0], [2.0, 0.1]])
    assert torch.equal(magnitude_unstructured(w, 0.25), torch.tensor([[0.0, -3.0], [0.0, 0.0]]))  # one weight kept
    assert torch.equal(magnitude_unstructured(w, 0.0), torch.zeros_like(w))
    assert torch.equal(magnitude_unstructured(w, 1.0), w)
    half = magnitude_unstructured(w.double(), 0.5)
    assert half.dtype == torch.float64 and torch.equal(half, torch.tensor([[0.0, -3.0], [2.0, 0.0]], dtype=torch.float64))


def _compress_with_some_preset(sm, method, units, **config):
    """compress() with the first unit kind a method takes: per-layer methods every layer, unit-level ones FFN
    neurons, query/key dims or value dims (a unit-level method may take only one kind)."""
    unit_level = getattr(METHODS[resolve_method(method)[0]], "folds", False)
    for preset in (["fc1", "attention-qk", "attention-values"] if unit_level else ["uniform"]):
        try:
            return compress(sm, CompressionConfig(method=method, preset=preset, units=units, **config))
        except PlanError:
            continue
    raise AssertionError(f"{method} compressed nothing")


@pytest.mark.parametrize("method,units", UNIT_CASES)
def test_compress_keeps_the_models_dtype(tiny_ctc, method, units):
    tiny_ctc.model.double()
    small = _compress_with_some_preset(tiny_ctc, method, units, sparsity=0.3)
    assert small.compression["modules"]
    assert {p.dtype for p in small.model.parameters()} == {torch.float64}
    with torch.no_grad():
        assert small.model(torch.randn(1, 8000, dtype=torch.float64)).logits.dtype == torch.float64


def test_unit_context_is_read_from_the_original_unit(tiny_whisper):
    """What unit-level methods are handed: the partner's weights and bias, the LayerNorms the leader (and, where
    it differs, the partner) reads; from the original model (the tiny models' norms are not identity)."""
    model = tiny_whisper.model
    by_label = {l.label: l for l in find_layers(model)}
    get = model.get_submodule
    fc1 = by_label["enc.1.fc1"]
    ctx = unit_context(model, fc1)
    norm = get("model.encoder.layers.1.final_layer_norm")
    assert ctx.unit == "ffn-neuron" and ctx.heads is None
    assert torch.equal(ctx.partner_weight, get(by_label["enc.1.fc2"].name).weight)
    assert torch.equal(ctx.partner_bias, get(by_label["enc.1.fc2"].name).bias)
    assert torch.equal(ctx.ln_weight, norm.weight) and torch.equal(ctx.ln_bias, norm.bias)
    assert ctx.partner_ln_weight is None and ctx.partner_ln_bias is None  # fc2 reads fc1, not a LayerNorm
    cross_q = by_label["dec.0.cross.q"]
    ctx = unit_context(model, cross_q, find_layers(model))
    q_norm, k_norm = get("model.decoder.layers.0.encoder_attn_layer_norm"), get("model.encoder.layer_norm")
    assert ctx.unit == "qk-dim" and ctx.heads == 4 and ctx.partner_bias is None  # Whisper's k_proj has no bias
    assert torch.equal(ctx.partner_weight, get(by_label["dec.0.cross.k"].name).weight)
    assert torch.equal(ctx.ln_weight, q_norm.weight) and torch.equal(ctx.ln_bias, q_norm.bias)
    assert torch.equal(ctx.partner_ln_weight, k_norm.weight) and torch.equal(ctx.partner_ln_bias, k_norm.bias)
    self_q = unit_context(model, by_label["dec.0.q"])  # self-attention: q and k read the same LayerNorm
    assert self_q.partner_ln_weight is None and self_q.partner_ln_bias is None
    with pytest.raises(PlanError, match="leads no foldable unit"):
        unit_context(model, by_label["enc.1.fc2"])


def test_module_records_rebuild_the_same_modules():
    torch.manual_seed(6)
    original = torch.nn.Linear(8, 12)
    for module in (to_module(kmeans_channels(original.weight, original.bias, 4), like=original),
                   to_module(kmeans_channels(original.weight, None, 4), like=torch.nn.Linear(8, 12, bias=False)),
                   torch.nn.Linear(8, 5), torch.nn.Linear(5, 8, bias=False)):
        rebuilt = build_module(module_record(module))
        assert type(rebuilt) is type(module) and rebuilt.state_dict().keys() == module.state_dict().keys()
        assert all(t.shape == module.state_dict()[k].shape for k, t in rebuilt.state_dict().items())
        assert repr(rebuilt) == repr(module)
    layer = to_module(kmeans_channels(original.weight, original.bias, 4), like=original)
    assert repr(layer) == "ClusteredLinear(in_features=8, k=4, out_features=12, bias=True)"
    with pytest.raises(ModelLoadError) as info:
        build_module({"type": "Conv1d", "in_features": 8, "out_features": 4, "bias": True})
    assert str(info.value) == ("The saved model names a module type 'Conv1d' that this version of prunelab does not "
                               "know; upgrade prunelab or re-save the model.")


def test_to_module_keeps_the_results_bias_and_the_layers_dtype():
    torch.manual_seed(4)
    original = torch.nn.Linear(12, 20).double()
    groups = kmeans_channels(original.weight, original.bias, 5, seed=0)
    module = to_module(groups, like=original)
    assert isinstance(module, ClusteredLinear) and module.weight.dtype == torch.float64
    assert torch.equal(module.bias, groups.bias.double()) and torch.equal(module.index, groups.index)
    masked = get_method("magnitude-unstructured").apply(original.weight, original.bias, 5)
    dense = to_module(masked, like=original)
    assert type(dense) is torch.nn.Linear and dense.weight.dtype == torch.float64
    assert torch.equal(dense.bias, original.bias)  # the original bias, not nn.Linear's random init
    torch.testing.assert_close(dense.weight, keep_largest(original.weight, 12 * 5))
    no_bias = torch.nn.Linear(12, 20, bias=False)
    assert to_module(get_method("magnitude-unstructured").apply(no_bias.weight, None, 5), like=no_bias).bias is None
    assert to_module(kmeans_channels(no_bias.weight, None, 5), like=no_bias).bias is None
    with pytest.raises(TypeError):
        to_module(object(), like=original)


def test_kmeans_distortion_and_k_bounds():
    torch.manual_seed(1)
    w, b = torch.randn(32, 8), torch.randn(32)
    g4, g16 = kmeans_channels(w, b, 4, seed=0), kmeans_channels(w, b, 16, seed=0)
    assert g16.distortion < g4.distortion
    rows = torch.cat([w, b[:, None]], 1).double()
    means = torch.stack([rows[g4.index == j].mean(0) for j in range(4)])
    assert g4.distortion == pytest.approx(float(((rows - means[g4.index]) ** 2).sum()), rel=1e-5)
    torch.testing.assert_close(torch.cat([g4.weight, g4.bias[:, None]], 1).double(), means)
    assert kmeans_channels(w, b, 32, seed=0).distortion == pytest.approx(0.0, abs=1e-6)
    assert sorted(g4.index.unique().tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        magnitude_channels(w, b, 0)


def test_magnitude_structured_keeps_largest_channels():
    torch.manual_seed(2)
    w, b = torch.randn(20, 6), torch.randn(20)
    w[3] *= 100  # clearly the largest
    g = magnitude_channels(w, b, 5)
    dense_w, dense_b = g.dense()
    norms = torch.cat([w, b[:, None]], 1).norm(dim=1)
    kept = (g.index < 5).nonzero().flatten()
    assert len(kept) == 5 and 3 in kept.tolist()
    assert set(kept.tolist()) == set(torch.topk(norms, 5).indices.tolist())
    assert torch.equal(dense_w[kept], w[kept]) and torch.all(dense_w[g.index == 5] == 0) and torch.all(dense_b[g.index == 5] == 0)


def test_magnitude_unstructured_fraction():
    torch.manual_seed(3)
    w = torch.randn(40, 50)
    pruned = magnitude_unstructured(w, 0.7)
    assert int((pruned != 0).sum()) == 1400
    assert pruned.abs().max() == w.abs().max()
    assert pruned[pruned != 0].abs().min() >= w.abs()[pruned == 0].max()


def test_unstructured_model_sparsity(tiny_whisper):
    small = compress(tiny_whisper, CompressionConfig(method="magnitude-unstructured", sparsity=0.3, preset="ffn"))
    fc1 = next(l for l in find_layers(tiny_whisper.model) if l.kind == "fc1")
    weight = small.model.get_submodule(fc1.name).weight
    assert (weight == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert size_report(small).nonzero_params < size_report(tiny_whisper).nonzero_params


def test_deterministic_given_seed(tiny_ctc):
    a = compress(tiny_ctc, CompressionConfig(sparsity=0.5, seed=7))
    b = compress(tiny_ctc, CompressionConfig(sparsity=0.5, seed=7))
    assert torch.equal(ctc_logits(a), ctc_logits(b))


def test_cache_reclusters_only_changed_layer(tiny_whisper):
    cache = LayerCache()
    layers = find_layers(tiny_whisper.model)
    plan = Plan.from_sparsity(layers, 0.3, "ffn")
    compress(tiny_whisper, CompressionConfig(plan=plan), cache=cache)
    assert cache.misses == len(plan.clusters) and cache.hits == 0
    changed = dict(plan.clusters)
    name = next(iter(changed))
    changed[name] -= 1
    compress(tiny_whisper, CompressionConfig(plan=Plan(changed)), cache=cache)
    assert cache.misses == len(plan.clusters) + 1 and cache.hits == len(plan.clusters) - 1
    small = LayerCache(max_bytes=1)  # too small to hold anything: still correct, never grows
    compress(tiny_whisper, CompressionConfig(plan=plan), cache=small)
    assert len(small) == 0 and small.nbytes == 0


def test_bad_configs_raise_plan_error(tiny_whisper):
    with pytest.raises(PlanError, match="Unknown method"):
        compress(tiny_whisper, CompressionConfig(method="svd", sparsity=0.3))
    with pytest.raises(PlanError, match="sparsity or a plan"):
        compress(tiny_whisper, CompressionConfig())
    fc1 = next(l for l in find_layers(tiny_whisper.model) if l.kind == "fc1")
    with pytest.raises(PlanError, match="between 1 and"):
        compress(tiny_whisper, CompressionConfig(plan=Plan({fc1.name: fc1.channels * 2})))
    small = compress(tiny_whisper, CompressionConfig(sparsity=0.3))
    with pytest.raises(PlanError, match="already compressed"):
        compress(small, CompressionConfig(sparsity=0.3))


@pytest.mark.parametrize("fixture", ["tiny_whisper", "tiny_ctc"])
@pytest.mark.parametrize("method,fold", [("kmeans", True), ("hybrid", False), ("magnitude-unstructured", True)])
def test_save_load_roundtrip(request, tmp_path, fixture, method, fold):
    sm = request.getfixturevalue(fixture)
    logits = LOGITS[fixture]
    small = compress(sm, CompressionConfig(method=method, sparsity=0.5, preset="uniform", fold=fold))
    folder = save_compressed(small, tmp_path / "out")
    assert (folder / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left behind
    back = load_compressed(folder)
    assert back.compression == small.compression and back.family == sm.family and back.spec == sm.spec
    plan_file = json.loads((folder / "plan.json").read_text())
    assert plan_file["clusters"] == small.compression["plan"]
    assert (plan_file["method"], plan_file["seed"], plan_file["base_model"]) == (method, 0, sm.spec)
    assert (folder / "generation_config.json").is_file() == (sm.family == "whisper")
    assert ({n: type(m).__name__ for n, m in back.model.named_modules()}
            == {n: type(m).__name__ for n, m in small.model.named_modules()})
    state, saved = small.model.state_dict(), back.model.state_dict()
    assert state.keys() == saved.keys() and all(torch.equal(state[k], saved[k]) for k in state)
    assert torch.equal(logits(back), logits(small))
    assert size_report(back).params == size_report(small).params and not back.model.training
    tokenizer, back_tokenizer = sm.processor.tokenizer, back.processor.tokenizer
    assert back_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert back.processor.feature_extractor.to_dict() == sm.processor.feature_extractor.to_dict()
    if sm.family == "whisper":  # generation settings (languages, tasks, lengths) survive
        assert back.model.generation_config.to_dict() == sm.model.generation_config.to_dict()
    via_spec = load_model(str(folder))  # a saved folder is a model spec like any other
    assert via_spec.compression == small.compression
    assert all(torch.equal(t, state[k]) for k, t in via_spec.model.state_dict().items())


def test_saved_whisper_generates_as_before(tiny_whisper, tmp_path):
    """generate() with a language needs the saved generation config (lang_to_id, task_to_id, max_length)."""
    small = compress(tiny_whisper, CompressionConfig(sparsity=0.3, preset="encoder-fc1"))
    back = load_compressed(save_compressed(small, tmp_path / "out"))
    gen, original = back.model.generation_config, tiny_whisper.model.generation_config
    assert gen.lang_to_id == original.lang_to_id and gen.lang_to_id["<|en|>"] == 50259
    assert gen.task_to_id == original.task_to_id and gen.max_length == original.max_length == 32
    feats = tiny_whisper.processor(load_audio(CLIP), sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = [m.model.generate(feats, language="en", task="transcribe", max_new_tokens=2) for m in (small, back)]
    assert torch.equal(ids[0], ids[1]) and ids[0].shape[-1] >= 2


def test_save_replaces_its_own_folder_and_refuses_a_foreign_one(tiny_ctc, tmp_path):
    small = compress(tiny_ctc, CompressionConfig(sparsity=0.5))
    deep = save_compressed(small, tmp_path / "new" / "sub" / "out")  # missing parent folders are made
    assert load_compressed(deep).compression == small.compression
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.txt").write_text("old")
    with pytest.raises(SaveError, match="not a model saved by prunelab"):  # a folder of someone's files: kept
        save_compressed(small, tmp_path / "out")
    assert (tmp_path / "out" / "stale.txt").read_text() == "old"
    folder = save_compressed(small, deep)  # a folder prunelab saved: replaced
    assert load_compressed(folder).compression == small.compression
    plain = save_compressed(tiny_ctc, tmp_path / "plain")  # an uncompressed model saves too, without a plan
    assert not (plain / "plan.json").exists() and load_compressed(plain).compression is None
    torch.testing.assert_close(ctc_logits(load_compressed(plain)), ctc_logits(tiny_ctc), rtol=0, atol=0)
    with pytest.raises(ModelLoadError, match="not a model saved by prunelab"):
        load_compressed(tmp_path / "nothing-here")


def test_load_refuses_weights_that_do_not_match_and_tolerates_a_missing_generation_config(tiny_whisper, tmp_path):
    from safetensors.torch import load_file, save_file

    small = compress(tiny_whisper, CompressionConfig(sparsity=0.3, preset="encoder-fc1"))
    folder = save_compressed(small, tmp_path / "out")
    (folder / "generation_config.json").unlink()  # an older or hand-made folder: the model config's defaults
    assert load_compressed(folder).compression == small.compression
    tensors = load_file(folder / "model.safetensors")
    dropped = "model.encoder.layers.0.fc1.weight"
    save_file({k: v for k, v in tensors.items() if k != dropped}, folder / "model.safetensors")
    with pytest.raises(ModelLoadError) as info:
        load_compressed(folder)
    assert f"Saved weights in {folder} do not match the model: missing ['{dropped}'], unexpected []." == str(info.value)


def test_a_failed_save_leaves_nothing_behind(tiny_ctc, tmp_path, monkeypatch):
    """The folder is written beside its final place (one rename at the end, never through the system temp
    folder) and a failure removes the partial copy, leaving an earlier save as it was."""
    import tempfile

    from prunelab.models import saved

    small = compress(tiny_ctc, CompressionConfig(sparsity=0.5))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-system-temp"))  # must not be used
    first = save_compressed(small, tmp_path / "out")
    before = sorted(p.name for p in first.iterdir())

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(saved, "st_save_model", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_compressed(compress(tiny_ctc, CompressionConfig(sparsity=0.3)), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in first.iterdir()) == before
    assert load_compressed(first).compression == small.compression
