"""The clustering methods beyond the paper's k-means: importance-weighted k-means, representative members,
hybrid drop+cluster; each on raw tensors and through compress() (against an independent computation:
test_compress.py)."""
import pytest
import torch

from prunelab.compression.cache import LayerCache
from prunelab.compression import CompressionConfig, compress
from prunelab.compression.layers import find_layers
from prunelab.groups import ChannelGroups
from prunelab.methods import get_method, hybrid_channels, kmeans_weighted_channels, representative_channels
from prunelab.compression.sensitivity import channel_importance

NEW = ["kmeans-weighted", "representative", "hybrid"]


def _check_valid(g: ChannelGroups, w, b, k):
    c = w.shape[0]
    assert g.k == k and g.weight.shape == (k, w.shape[1]) and g.bias.shape == (k,)
    assert g.index.dtype == torch.long and g.index.shape == (c,)
    assert int(g.index.min()) >= 0 and int(g.index.max()) <= k
    assert set(g.index[g.index < k].tolist()) == set(range(k))  # every row is used
    dw, db = g.dense()
    rows = torch.cat([w, b[:, None]], 1)
    assert g.distortion == pytest.approx(float(((rows - torch.cat([dw, db[:, None]], 1)) ** 2).sum()), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("method", NEW)
@pytest.mark.parametrize("k", [1, 7, 20, 40])
def test_new_methods_give_valid_groups(method, k):
    torch.manual_seed(0)
    w, b, imp = torch.randn(40, 9), torch.randn(40), torch.rand(40) + 0.05
    g = get_method(method).apply(w, b, k, importance=imp, seed=0)
    _check_valid(g, w, b, k)
    if k == 40:
        assert g.distortion == pytest.approx(0.0, abs=1e-5)


def test_representative_keeps_most_important_member():
    torch.manual_seed(1)
    w, b, imp = torch.randn(30, 6), torch.randn(30), torch.rand(30) + 0.1
    g = representative_channels(w, b, 8, importance=imp, seed=0)
    rows = torch.cat([w, b[:, None]], 1)
    score = rows.norm(dim=1) * imp
    for j in range(8):
        members = (g.index == j).nonzero().squeeze(1)
        best = members[score[members].argmax()]
        assert torch.equal(g.weight[j], w[best]) and torch.equal(g.bias[j], b[best])


def test_weighted_kmeans_centroids_are_weighted_means():
    torch.manual_seed(2)
    w, b, imp = torch.randn(30, 5), torch.randn(30), torch.rand(30) + 0.1
    g = kmeans_weighted_channels(w, b, 6, importance=imp, seed=0)
    rows, wt = torch.cat([w, b[:, None]], 1), imp ** 2
    for j in range(6):
        m = g.index == j
        mean = (rows[m] * wt[m, None]).sum(0) / wt[m].sum()
        torch.testing.assert_close(torch.cat([g.weight[j], g.bias[j:j + 1]]), mean, rtol=1e-4, atol=1e-5)


def test_hybrid_drops_weak_channels_and_clusters_the_rest():
    torch.manual_seed(3)
    w, b = torch.randn(40, 8), torch.randn(40)
    weak = torch.tensor([2, 11, 25])
    w[weak] *= 1e-3
    b[weak] *= 1e-3
    g = hybrid_channels(w, b, 20, importance=torch.ones(40), seed=0, dead_ratio=0.1)
    _check_valid(g, w, b, 20)
    assert set((g.index == 20).nonzero().squeeze(1).tolist()) == set(weak.tolist())
    # without weak channels it is the representative method
    w2, b2 = torch.randn(40, 8), torch.randn(40)
    h, r = hybrid_channels(w2, b2, 20, dead_ratio=0.0), representative_channels(w2, b2, 20)
    assert torch.equal(h.index, r.index) and torch.equal(h.weight, r.weight)


def test_compress_passes_original_importance_and_caches(tiny_whisper):
    cache = LayerCache()
    cfg = CompressionConfig(method="representative", sparsity=0.5, preset="encoder-ffn", fold=False)
    small = compress(tiny_whisper, cfg, cache=cache)
    fc1 = next(l for l in find_layers(tiny_whisper.model) if l.kind == "fc1")
    lin = tiny_whisper.model.get_submodule(fc1.name)
    expect = representative_channels(lin.weight, lin.bias, fc1.channels // 2,
                                     importance=channel_importance(tiny_whisper.model, fc1), seed=0)
    got = small.model.get_submodule(fc1.name)
    assert torch.equal(got.index, expect.index) and torch.equal(got.weight, expect.weight)
    misses = cache.misses
    compress(tiny_whisper, cfg, cache=cache)
    assert cache.misses == misses  # all layers served from the cache
    compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.5, preset="encoder-ffn"), cache=cache)
    assert cache.misses > misses  # a different method is a different key


def test_auto_allocation_through_compress(tiny_whisper):
    small = compress(tiny_whisper, CompressionConfig(method="recommended", allocate="auto", sparsity=0.3, preset="ffn"))
    layers = [l for l in find_layers(tiny_whisper.model) if l.group == "ffn"]
    plan = small.compression["plan"]
    assert set(plan) == {l.name for l in layers}
    total = sum(l.params for l in layers)
    removed = sum(l.params * (1 - plan[l.name] / l.channels) for l in layers)
    assert abs(removed / total - 0.3) * total <= sum(l.in_features + 1 for l in layers)
    assert small.compression["allocate"] == "auto"
    assert len(set(1 - plan[l.name] / l.channels for l in layers)) > 1  # genuinely mixed
