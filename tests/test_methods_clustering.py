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
    small = compress(tiny_whisper, CompressionConfig(method="representative", allocate="auto", sparsity=0.3, preset="ffn"))
    layers = [l for l in find_layers(tiny_whisper.model) if l.group == "ffn"]
    plan = small.compression["plan"]
    assert set(plan) == {l.name for l in layers}
    total = sum(l.params for l in layers)
    removed = sum(l.params * (1 - plan[l.name] / l.channels) for l in layers)
    assert abs(removed / total - 0.3) * total <= sum(l.in_features + 1 for l in layers)
    assert small.compression["allocate"] == "auto"
    assert len(set(1 - plan[l.name] / l.channels for l in layers)) > 1  # genuinely mixed


def _partition(labels: torch.Tensor) -> set[frozenset[int]]:
    """The groups of channels, whatever their numbering."""
    return {frozenset((labels == g).nonzero().squeeze(1).tolist()) for g in labels.unique().tolist()}


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("max_iter", [1, 100])
def test_methods_cluster_with_the_seed_and_iterations_they_are_given(seed, max_iter):
    """Each clustering method's groups are the engine's k-means groups for the same seed and iteration cap
    (K < C/2: k-means++ seeding, which depends on the seed)."""
    from prunelab.kmeans import kmeans

    torch.manual_seed(7)
    w, b, imp = torch.randn(40, 6), torch.randn(40), torch.rand(40) + 0.1
    rows = torch.cat([w, b[:, None]], 1)
    plain = _partition(kmeans(rows, 5, seed=seed, max_iter=max_iter).labels)
    weighted = _partition(kmeans(rows, 5, seed=seed, max_iter=max_iter, sample_weight=imp ** 2 + 1e-12).labels)
    kw = dict(seed=seed, max_iter=max_iter)
    assert _partition(get_method("kmeans").apply(w, b, 5, **kw).index) == plain
    assert _partition(representative_channels(w, b, 5, importance=imp, **kw).index) == plain
    assert _partition(kmeans_weighted_channels(w, b, 5, importance=imp, **kw).index) == weighted
    assert _partition(hybrid_channels(w, b, 5, importance=imp, dead_ratio=0.0, **kw).index) == plain
    # hybrid with dead channels: the survivors are clustered with the same seed
    imp_dead = imp.clone()
    imp_dead[:3] = 1e-4
    g = hybrid_channels(w, b, 5, importance=imp_dead, **kw)
    keep = (g.index < 5).nonzero().squeeze(1)
    assert {0, 1, 2}.isdisjoint(keep.tolist()) and len(keep) >= 40 - int(35 * 0.5)
    survivors = _partition(kmeans(rows[keep], 5, **kw).labels)
    assert _partition(g.index[keep]) == survivors


def test_the_seed_matters_here():
    """(So the test above can tell a seed that is passed on from one that is dropped.)"""
    from prunelab.kmeans import kmeans

    torch.manual_seed(7)
    rows = torch.cat([torch.randn(40, 6), torch.randn(40)[:, None]], 1)
    assert _partition(kmeans(rows, 5, seed=0, max_iter=1).labels) != _partition(kmeans(rows, 5, seed=3, max_iter=1).labels)
    assert _partition(kmeans(rows, 5, seed=0, max_iter=1).labels) != _partition(kmeans(rows, 5, seed=0).labels)


@pytest.mark.parametrize("name", ["kmeans", "magnitude", "magnitude-unstructured", "kmeans-weighted", "representative",
                                  "hybrid"])
def test_calling_a_method_directly_uses_the_registry_defaults(name):
    """A method's own defaults (seed, max_iter, options) are the ones compress() uses when given none."""
    torch.manual_seed(8)
    w, b, imp = torch.randn(40, 6), torch.randn(40), torch.rand(40) + 0.1
    imp[:4] = 1e-3  # some near-dead channels, so hybrid's options matter
    method = get_method(name)
    extra = {"importance": imp} if method.needs_importance else {}
    direct, registered = method.fn(w, b, 5, **extra), method.apply(w, b, 5, importance=imp)
    assert all(torch.equal(a, r) for a, r in zip(direct.dense(), registered.dense()))


def test_hybrid_options_bounds():
    from prunelab.errors import PlanError
    from prunelab.methods import HybridOptions

    for ok in ({"dead_ratio": 0.0}, {"max_drop_fraction": 0.0}, {"max_drop_fraction": 1.0}, {"dead_ratio": 3.0}):
        assert CompressionConfig(method="hybrid", sparsity=0.1, options=ok).options == HybridOptions(**ok)
    for bad in ({"dead_ratio": -0.1}, {"dead_ratio": float("nan")}, {"max_drop_fraction": -0.1},
                {"max_drop_fraction": 1.1}):
        with pytest.raises(PlanError, match="hybrid needs"):
            HybridOptions(**bad)


def _rows_with_norms(norms: list[float], d: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight [C, d] and bias [C] whose channel i is ``norms[i]`` times a unit vector (exact norms)."""
    rows = torch.zeros(len(norms), d + 1)
    for i, n in enumerate(norms):
        rows[i, i % (d + 1)] = n
    return rows[:, :-1].contiguous(), rows[:, -1].contiguous()


def test_hybrid_dead_channel_rule():
    """Dead: score (row norm x importance) strictly below dead_ratio x median; at most max_drop_fraction of the
    C - K channels to remove, lowest scores first."""
    dropped = lambda g: set((g.index == g.k).nonzero().squeeze(1).tolist())  # noqa: E731
    # scores with median 6: at dead_ratio 0.5 the threshold is 3, so 1 and 2 are dead, the two 3s are not
    w, b = _rows_with_norms([3.0, 1.0, 3.0, 6.0, 6.0, 7.0, 8.0, 9.0, 2.0])
    ones = torch.ones(9)
    assert dropped(hybrid_channels(w, b, 3, importance=ones, dead_ratio=0.5, max_drop_fraction=1.0)) == {1, 8}
    # exactly one dead channel is dropped too
    assert dropped(hybrid_channels(w, b, 3, importance=ones, dead_ratio=0.25, max_drop_fraction=1.0)) == {1}
    # the cap: 6 channels to remove, at most half of them dropped, the lowest scores (ties: the first)
    assert dropped(hybrid_channels(w, b, 3, importance=ones, dead_ratio=2.0, max_drop_fraction=0.5)) == {1, 8, 0}
    # importance decides, not the row norm alone: strong rows that nothing reads are dead
    w2, b2 = _rows_with_norms([5.0] * 9)
    imp = torch.tensor([1.0, 1.0, 0.01, 1.0, 1.0, 0.02, 1.0, 1.0, 1.0])
    assert dropped(hybrid_channels(w2, b2, 3, importance=imp)) == {2, 5}


def test_argmax_per_group_ties_and_the_empty_cluster_invariant():
    from prunelab.methods.clustering import argmax_per_group

    score = torch.tensor([1.0, 5.0, 5.0, 2.0, 0.5])
    labels = torch.tensor([0, 0, 0, 1, 1])
    assert argmax_per_group(score, labels, 2).tolist() == [1, 3]  # a tie goes to the lowest index
    with pytest.raises(RuntimeError) as info:
        argmax_per_group(score, torch.tensor([0, 0, 2, 2, 2]), 3)  # group 1 has no member
    assert str(info.value) == "empty cluster"


def test_channel_importance_is_checked():
    from prunelab.errors import PlanError
    from prunelab.methods.clustering import check_importance

    w, b = torch.randn(6, 3), torch.randn(6)
    zeros_ok = torch.tensor([0.0, 1.0, 0.0, 2.0, 1.0, 1.0])  # non-negative: zero is allowed
    assert torch.equal(check_importance(zeros_ok, 6, "cpu"), zeros_ok)
    assert torch.equal(check_importance(None, 6, "cpu"), torch.ones(6))
    representative_channels(w, b, 3, importance=zeros_ok)
    with pytest.raises(PlanError) as info:
        check_importance(torch.ones(5), 6, "cpu")
    assert str(info.value) == "Channel importance must have shape [6], got [5]."
    for bad in (torch.tensor([1.0, -0.5, 1, 1, 1, 1]), torch.tensor([1.0, float("nan"), 1, 1, 1, 1]),
                torch.tensor([1.0, float("inf"), 1, 1, 1, 1])):
        with pytest.raises(PlanError) as info:
            representative_channels(w, b, 3, importance=bad)
        assert str(info.value) == "Channel importance must be finite and non-negative."
