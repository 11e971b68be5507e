"""compress(): exactness at K = C, folding, baselines, determinism, caching, save/load."""
import copy

import pytest
import torch

from prunelab.compression.cache import LayerCache
from prunelab.compression import CompressionConfig, compress
from prunelab.errors import PlanError
from prunelab.compression.layers import find_layers
from prunelab.models import load_model
from prunelab.methods import kmeans_channels, magnitude_channels, magnitude_unstructured
from prunelab.modules import ClusteredLinear, fold_ffn
from prunelab.compression.plan import Plan
from prunelab.models.saved import load_compressed, save_compressed
from prunelab.report.size import size_report


def whisper_logits(sm, seed=0):
    g = torch.Generator().manual_seed(seed)
    n_mels = sm.model.config.num_mel_bins
    feats = torch.randn(1, n_mels, 2 * sm.model.config.max_source_positions, generator=g)
    tokens = torch.tensor([[50258, 50259, 50359, 50363, 400, 500]])
    with torch.no_grad():
        return sm.model(input_features=feats, decoder_input_ids=tokens).logits


def ctc_logits(sm, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return sm.model(torch.randn(1, 8000, generator=g)).logits


def test_full_k_is_identity_and_original_untouched(tiny_whisper):
    before = copy.deepcopy(tiny_whisper.model.state_dict())
    layers = find_layers(tiny_whisper.model)
    same = compress(tiny_whisper, CompressionConfig(plan=Plan({l.name: l.channels for l in layers})))
    assert torch.equal(whisper_logits(same), whisper_logits(tiny_whisper))
    assert same.compression["sparsity"] == 0.0
    small = compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.5))
    assert small.model is not tiny_whisper.model
    after = tiny_whisper.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert tiny_whisper.compression is None
    assert not torch.allclose(whisper_logits(small), whisper_logits(tiny_whisper))


@pytest.mark.parametrize("fixture,logits", [("tiny_whisper", whisper_logits), ("tiny_ctc", ctc_logits)])
@pytest.mark.parametrize("method", ["kmeans", "magnitude"])
def test_folding_is_exact(request, fixture, logits, method):
    sm = request.getfixturevalue(fixture)
    cfg = dict(method=method, sparsity=0.4, seed=3)
    unfolded = compress(sm, CompressionConfig(fold=False, **cfg))
    folded = compress(sm, CompressionConfig(fold=True, **cfg))
    torch.testing.assert_close(logits(folded), logits(unfolded), rtol=1e-4, atol=1e-4)
    # folded FFNs are genuinely smaller dense layers
    fc1 = next(l for l in find_layers(sm.model) if l.kind == "fc1")
    new_fc1 = folded.model.get_submodule(fc1.name)
    assert type(new_fc1) is torch.nn.Linear and new_fc1.out_features == round(fc1.channels * 0.6)
    assert size_report(folded).params < size_report(unfolded).params < size_report(sm).params


def test_clustered_linear_matches_dense_and_fold_pair():
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(16, 40), torch.nn.Linear(40, 16)
    groups = kmeans_channels(fc1.weight, fc1.bias, 10, seed=0)
    layer = ClusteredLinear.from_groups(groups)
    x = torch.randn(3, 5, 16)
    torch.testing.assert_close(layer(x), layer.dense()(x))
    # every channel equals its centroid
    w, b = groups.dense()
    assert torch.equal(w[groups.index == groups.index[0]][0], groups.weight[groups.index[0]])
    h = torch.nn.functional.gelu(layer(x))
    new1, new2 = fold_ffn(layer, fc2)
    assert new1.out_features == 10 and new2.in_features == 10
    torch.testing.assert_close(new2(torch.nn.functional.gelu(new1(x))), fc2(h), rtol=1e-5, atol=1e-5)
    # both fc1 and fc2 clustered: fc2 keeps its clusters after folding
    fc2c = ClusteredLinear.from_groups(kmeans_channels(fc2.weight, fc2.bias, 6, seed=0))
    f1, f2 = fold_ffn(layer, fc2c)
    assert isinstance(f2, ClusteredLinear) and f2.k == 6 and f2.in_features == 10
    torch.testing.assert_close(f2(torch.nn.functional.gelu(f1(x))), fc2c(h), rtol=1e-5, atol=1e-5)


def test_kmeans_distortion_and_k_bounds():
    torch.manual_seed(1)
    w, b = torch.randn(32, 8), torch.randn(32)
    g4, g16 = kmeans_channels(w, b, 4, seed=0), kmeans_channels(w, b, 16, seed=0)
    assert g16.distortion < g4.distortion
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


@pytest.mark.parametrize("fixture,logits", [("tiny_whisper", whisper_logits), ("tiny_ctc", ctc_logits)])
@pytest.mark.parametrize("method", ["kmeans", "magnitude-unstructured"])
def test_save_load_roundtrip(request, tmp_path, fixture, logits, method):
    sm = request.getfixturevalue(fixture)
    small = compress(sm, CompressionConfig(method=method, sparsity=0.5, preset="uniform"))
    folder = save_compressed(small, tmp_path / "out")
    assert (folder / "model.safetensors").is_file() and (folder / "plan.json").is_file()
    back = load_compressed(folder)
    assert back.compression["plan"] == small.compression["plan"] and back.family == sm.family
    assert torch.equal(logits(back), logits(small))
    assert size_report(back).params == size_report(small).params
    via_spec = load_model(str(folder))  # a saved folder is a model spec like any other
    assert via_spec.compression == small.compression and torch.equal(logits(via_spec), logits(small))
