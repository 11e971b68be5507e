"""Lloyd iterations (prunelab.kmeans.lloyd): empty clusters, sample weights, stopping rules."""
from __future__ import annotations

import pytest
import torch
from kmeans_data import blobs, direct_inertia

from prunelab.kmeans import kmeans
from prunelab.kmeans.lloyd import relocate_empty

# ------------------------------------------------------------------ empty clusters


@pytest.mark.parametrize("method", ["gram", "direct"])
def test_duplicate_points_leave_no_empty_cluster(method):
    # 5 distinct points, each 10 times: k-means++ runs out of distinct seeds, Lloyd must re-seed the
    # empty clusters with points taken from clusters that have spare members.
    g = torch.Generator().manual_seed(0)
    base = torch.randn(5, 3, generator=g)
    x = base.repeat_interleave(10, 0)
    for k in (5, 8, 30, 49):
        r = kmeans(x, k, method=method)
        assert torch.bincount(r.labels, minlength=k).min() >= 1, k
        assert torch.isfinite(r.centroids).all()
        assert r.inertia == pytest.approx(0.0, abs=1e-8)


def test_relocation_moves_farthest_point():
    lab = torch.tensor([0, 0, 0, 0, 1])
    dist = torch.tensor([10.0, 9.0, 1.0, 2.0, 0.0])
    new = relocate_empty(lab, dist, torch.tensor([False, False, True]))
    # point 0 is the representative of cluster 0 (lowest index): the farthest eligible one is point 1
    assert new.tolist() == [0, 2, 0, 0, 1]
    assert lab.tolist() == [0, 0, 0, 0, 1]  # not modified


# ------------------------------------------------------------------ sample weights


@pytest.mark.parametrize("method", ["gram", "direct"])
def test_weighted_centroids_are_weighted_means(method):
    x = blobs(n=300, d=6, centers=8, dtype=torch.float64)
    w = torch.rand(300, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3 + 0.05
    r = kmeans(x, 8, sample_weight=w, method=method)
    for c in range(8):
        m = r.labels == c
        torch.testing.assert_close(r.centroids[c], (w[m, None] * x[m]).sum(0) / w[m].sum())
    assert r.inertia == pytest.approx(direct_inertia(x, r, w), rel=1e-9)


def test_heavy_weight_pulls_centroid():
    x = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]], dtype=torch.float64)
    plain = kmeans(x, 2)
    w = torch.tensor([1.0, 1, 1, 1, 1, 100])
    heavy = kmeans(x, 2, sample_weight=w)
    hi_plain = plain.centroids[plain.labels[5], 0].item()
    hi_heavy = heavy.centroids[heavy.labels[5], 0].item()
    assert hi_plain == pytest.approx(11.0)
    assert hi_heavy == pytest.approx((10 + 11 + 1200) / 102)
    assert hi_heavy > 11.9


def test_zero_weights_allowed():
    x = blobs(n=60, d=3, centers=4, dtype=torch.float64)
    w = torch.ones(60, dtype=torch.float64)
    w[:30] = 0
    r = kmeans(x, 10, sample_weight=w)
    assert torch.isfinite(r.centroids).all()
    assert torch.bincount(r.labels, minlength=10).min() >= 1
    assert r.inertia == pytest.approx(direct_inertia(x, r, w), rel=1e-9)


# ------------------------------------------------------------------ stopping rules


def test_tol_and_max_iter():
    x = blobs(n=500, d=8, centers=30)
    r1 = kmeans(x, 30, max_iter=1)
    assert r1.n_iter == 1
    tight = kmeans(x, 30, tol=0.0)
    loose = kmeans(x, 30, tol=10.0)
    assert loose.n_iter <= tight.n_iter
    assert tight.inertia <= loose.inertia * (1 + 1e-6)
    # every result, even after max_iter=1, has centroids = member means
    for r in (r1, loose):
        c = r.labels[0]
        torch.testing.assert_close(r.centroids[c], x[r.labels == c].mean(0), atol=1e-5, rtol=1e-5)


def test_problem_scratch_is_one_buffer_grown_on_demand():
    from prunelab.kmeans.problem import Problem

    p = Problem.build(torch.randn(1, 10, 3), 4, None, use_gram=True)
    a = p.scratch(50)
    assert a.shape == (50,) and a.dtype == torch.float32
    b = p.scratch(20)
    assert b.data_ptr() == a.data_ptr()  # reused, not reallocated
    c = p.scratch(200)
    assert c.numel() == 200 and p.scratch(100).data_ptr() == c.data_ptr()


@pytest.mark.parametrize("weighted", [False, True])
def test_incremental_updates_equal_full_recomputation(weighted, monkeypatch):
    # lloyd_incremental_item recomputes only the changed clusters' scores; forcing a full recomputation
    # every iteration (no cluster counts as few) must give the same labels, centroids and iterations
    import prunelab.kmeans.lloyd as lloyd
    from prunelab.kmeans.problem import Problem
    from prunelab.kmeans.seeding import kmeanspp_seeds

    x = blobs(n=300, d=8, centers=12, dtype=torch.float64)
    w = torch.rand(300, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.3 if weighted else None
    xc = x - x.mean(0)
    p = Problem.build(xc.unsqueeze(0), 40, None if w is None else w.unsqueeze(0), use_gram=True)
    seeds = kmeanspp_seeds(p, 3)[0]
    inc = lloyd.lloyd_incremental_item(p, 0, 100, 0.0, seeds=seeds)
    assert inc[2] >= 3  # several iterations: the incremental branch ran
    monkeypatch.setattr(lloyd.torch, "unique", lambda t, **kw: torch.arange(40))  # every cluster "changed"
    full = lloyd.lloyd_incremental_item(p, 0, 100, 0.0, seeds=seeds)
    assert torch.equal(inc[1], full[1]) and inc[2] == full[2]
    torch.testing.assert_close(inc[0], full[0])
