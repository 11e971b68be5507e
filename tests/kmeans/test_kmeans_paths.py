"""The code paths agree: kernel space vs direct product, accelerator kernels vs CPU kernels, batched vs
one item at a time, and the choice ``init="auto"`` makes."""
from __future__ import annotations

import pytest
import torch
from kmeans_data import weight_like

import prunelab.kmeans.api as api
from prunelab.kmeans import kmeans, kmeans_batched


@pytest.mark.parametrize("k", [3, 40, 150, 199])
def test_gram_path_equals_direct_path(k):
    x = weight_like(n=200, d=20, dtype=torch.float64)
    w = torch.rand(200, generator=torch.Generator().manual_seed(5), dtype=torch.float64) + 0.5
    for sw in (None, w):
        a = kmeans(x, k, sample_weight=sw, method="gram", seed=7)
        b = kmeans(x, k, sample_weight=sw, method="direct", seed=7)
        assert torch.equal(a.labels, b.labels)
        assert a.n_iter == b.n_iter
        assert a.inertia == pytest.approx(b.inertia, rel=1e-9, abs=1e-12)
        torch.testing.assert_close(a.centroids, b.centroids)


def test_gram_path_close_to_direct_in_float32():
    x = weight_like(n=512, d=129)
    a, b = kmeans(x, 256, method="gram"), kmeans(x, 256, method="direct")
    assert abs(a.inertia - b.inertia) <= 0.01 * b.inertia


@pytest.mark.parametrize("method", ["gram", "direct"])
def test_accelerator_code_path_on_cpu(monkeypatch, method):
    """The deterministic dense kernels used on CUDA (one-hot products, integer CDF) give the same
    clustering as the CPU kernels."""
    x = weight_like(n=200, d=20, dtype=torch.float64)
    w = torch.rand(200, generator=torch.Generator().manual_seed(5), dtype=torch.float64) + 0.5
    ref = [kmeans(x, k, sample_weight=sw, method=method, seed=1) for k in (7, 120) for sw in (None, w)]
    monkeypatch.setattr(api, "dense_deterministic", lambda device: True)
    got = [kmeans(x, k, sample_weight=sw, method=method, seed=1) for k in (7, 120) for sw in (None, w)]
    for a, b in zip(ref, got):
        assert torch.equal(a.labels, b.labels)
        assert a.inertia == pytest.approx(b.inertia, rel=1e-9)
    # and it still handles duplicates / empty clusters
    dup = torch.randn(4, 3, dtype=torch.float64).repeat_interleave(5, 0)
    r = kmeans(dup, 9, method=method)
    assert torch.bincount(r.labels, minlength=9).min() >= 1


def test_batched_equals_per_item():
    g = torch.Generator().manual_seed(9)
    xs = torch.stack([weight_like(n=256, d=33, seed=s, dtype=torch.float64) for s in range(3)])
    w = torch.rand(3, 256, generator=g, dtype=torch.float64) + 0.5
    for method in ("gram", "direct"):
        for sw in (None, w):
            rb = kmeans_batched(xs, 100, sample_weight=sw, seed=4, method=method)
            assert rb.centroids.shape == (3, 100, 33) and rb.labels.shape == (3, 256)
            assert rb.inertia.shape == (3,)
            iters = []
            for b in range(3):
                r = kmeans(xs[b], 100, sample_weight=None if sw is None else sw[b], seed=4, method=method)
                assert torch.equal(rb.labels[b], r.labels)
                torch.testing.assert_close(rb.centroids[b], r.centroids)
                assert float(rb.inertia[b]) == pytest.approx(r.inertia, rel=1e-9)
                iters.append(r.n_iter)
            assert rb.n_iter == max(iters)


def test_batched_shared_weights_and_special_k():
    xs = torch.randn(2, 30, 4, dtype=torch.float64)
    w = torch.rand(30, dtype=torch.float64) + 0.1
    r = kmeans_batched(xs, 1, sample_weight=w)
    torch.testing.assert_close(r.centroids[:, 0], (w[None, :, None] * xs).sum(1) / w.sum())
    r = kmeans_batched(xs, 30)
    assert torch.equal(torch.gather(r.centroids, 1, r.labels[..., None].expand(2, 30, 4)), xs)
    with pytest.raises(ValueError):
        kmeans_batched(torch.randn(5, 3), 2)


def test_init_option_and_auto_choice(monkeypatch):
    x = weight_like(n=120, d=9)
    with pytest.raises(ValueError):
        kmeans(x, 10, init="random")
    # auto: k-means++ below N/2 (seed matters), Ward from N/2 up
    assert torch.equal(kmeans(x, 40, seed=3).labels, kmeans(x, 40, seed=3, init="k-means++").labels)
    assert torch.equal(kmeans(x, 60, seed=3).labels, kmeans(x, 60, init="ward").labels)
    # batched and the accelerator kernels agree with the CPU per-item path
    xs = torch.stack([x, x.flip(0)]).double()
    rb = kmeans_batched(xs, 80, init="ward")
    for b in range(2):
        assert torch.equal(rb.labels[b], kmeans(xs[b], 80, init="ward").labels)
    monkeypatch.setattr(api, "dense_deterministic", lambda device: True)
    for method in ("gram", "direct"):
        assert torch.equal(kmeans(xs[0], 80, init="ward", method=method).labels, rb.labels[0])
