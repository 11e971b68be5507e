"""The public contract of prunelab.kmeans: result shapes and types, special K, argument errors, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from kmeans_data import blobs, direct_inertia, weight_like

from prunelab.errors import PlanError, PrunelabError
from prunelab.kmeans import KMeansResult, kmeans, kmeans_batched


@pytest.mark.parametrize("method", ["gram", "direct"])
def test_result_is_consistent(method):
    x = weight_like(n=300, d=65)
    r = kmeans(x, 120, method=method)
    assert isinstance(r, KMeansResult)
    assert r.centroids.shape == (120, 65) and r.labels.shape == (300,)
    assert r.labels.dtype == torch.int64 and r.centroids.dtype == torch.float32
    assert torch.bincount(r.labels, minlength=120).min() >= 1  # no empty cluster
    assert isinstance(r.inertia, float) and isinstance(r.n_iter, int) and r.n_iter >= 1
    assert r.inertia == pytest.approx(direct_inertia(x, r), rel=1e-4)
    # converged Lloyd: centroids are the means of their members
    means = torch.zeros(120, 65, dtype=torch.float64).index_add_(0, r.labels, x.double())
    means /= torch.bincount(r.labels, minlength=120).double()[:, None]
    torch.testing.assert_close(r.centroids.double(), means, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ special cases


def test_k_equals_n_returns_points():
    x = blobs(n=50, d=7)
    r = kmeans(x, 50)
    assert torch.equal(r.centroids[r.labels], x)
    assert r.inertia == 0.0


def test_k_one_is_weighted_mean():
    x = blobs(n=40, d=5, dtype=torch.float64)
    r = kmeans(x, 1)
    torch.testing.assert_close(r.centroids[0], x.mean(0))
    assert torch.all(r.labels == 0)
    assert r.inertia == pytest.approx(float(((x - x.mean(0)) ** 2).sum()), rel=1e-10)
    w = torch.rand(40, dtype=torch.float64) + 0.1
    rw = kmeans(x, 1, sample_weight=w)
    torch.testing.assert_close(rw.centroids[0], (w[:, None] * x).sum(0) / w.sum())


def test_half_precision_input_works():
    x = blobs(n=100, d=8).half()
    r = kmeans(x, 10)
    assert r.centroids.dtype == torch.float32 and torch.isfinite(r.centroids).all()


# ------------------------------------------------------------------ argument errors


@pytest.mark.parametrize("k", [0, -1, 11, 2.5, "3", None, True])
def test_invalid_k_raises(k):
    with pytest.raises(ValueError):
        kmeans(torch.randn(10, 3), k)


def test_integer_like_k_accepted():
    r = kmeans(torch.randn(10, 3), np.int64(3))
    assert r.centroids.shape == (3, 3)
    r = kmeans(torch.randn(10, 3), torch.tensor(4))
    assert r.centroids.shape == (4, 3)


@pytest.mark.parametrize(
    "bad",
    [
        dict(x=torch.randn(10)),
        dict(x=torch.randn(2, 3, 4)),
        dict(x=torch.tensor([[0.0, float("nan")], [1.0, 2.0]])),
        dict(sample_weight=torch.ones(9)),
        dict(sample_weight=-torch.ones(10)),
        dict(sample_weight=torch.zeros(10)),
        dict(max_iter=0),
        dict(tol=-1.0),
        dict(method="nope"),
    ],
)
def test_invalid_arguments_raise(bad):
    args = dict(x=torch.randn(10, 3), k=2)
    args.update(bad)
    with pytest.raises(ValueError):
        kmeans(args.pop("x"), args.pop("k"), **args)


# (arguments, fragments the message must contain: what was given and what is allowed)
READABLE_ERRORS = [
    (dict(k=11), ["k=11", "between 1 and", "10"]),
    (dict(k=0), ["k=0", "between 1 and"]),
    (dict(k=2.5), ["2.5", "float", "whole number"]),
    (dict(k="3"), ["'3'", "str", "int"]),
    (dict(k=True), ["True", "bool"]),
    (dict(x=torch.randn(10)), ["2-D", "[10]"]),
    (dict(x=[[1.0, 2.0]]), ["2-D", "list"]),
    (dict(x=torch.zeros(0, 3), k=1), ["empty", "0 point(s) of 3 feature(s)"]),
    (dict(x=torch.tensor([[0.0, float("nan")], [1.0, float("inf")]])), ["NaN or infinite", "2"]),
    (dict(sample_weight=torch.ones(9)), ["[10]", "[9]"]),
    (dict(sample_weight=torch.tensor([1.0, -1.0] * 5)), ["5 negative", ">= 0"]),
    (dict(sample_weight=torch.full((10,), float("nan"))), ["10 NaN", "finite"]),
    (dict(sample_weight=torch.zeros(10)), ["positive total", "every weight is 0"]),
    (dict(max_iter=0), ["max_iter", ">= 1", "0"]),
    (dict(tol=-1.0), ["tol", ">= 0", "-1.0"]),
    (dict(n_local_trials=0), ["n_local_trials", ">= 1", "0"]),
    (dict(method="nope"), ["'nope'", "'auto'", "'gram'", "'direct'"]),
    (dict(init="random"), ["'random'", "'auto'", "'ward'", "'k-means++'"]),
]


@pytest.mark.parametrize("bad,fragments", READABLE_ERRORS, ids=[",".join(b) + f"-{i}" for i, (b, _) in
                                                                  enumerate(READABLE_ERRORS)])
def test_bad_arguments_raise_plan_error_saying_what_was_given(bad, fragments):
    args = dict(x=torch.randn(10, 3), k=2)
    args.update(bad)
    with pytest.raises(PlanError) as info:
        kmeans(args.pop("x"), args.pop("k"), **args)
    assert isinstance(info.value, PrunelabError) and isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


@pytest.mark.parametrize(
    "bad,fragments",
    [
        (dict(x=torch.randn(5, 3)), ["3-D", "[5, 3]"]),
        (dict(sample_weight=torch.ones(3)), ["[30]", "[2, 30]", "[3]"]),
        (dict(sample_weight=torch.ones(3, 30)), ["[2, 30]", "[3, 30]"]),
        (dict(sample_weight=torch.cat([torch.ones(1, 30), torch.zeros(1, 30)])), ["item(s) [1]", "positive total"]),
    ],
)
def test_batched_bad_arguments_raise_plan_error(bad, fragments):
    args = dict(x=torch.randn(2, 30, 4), k=3)
    args.update(bad)
    with pytest.raises(PlanError) as info:
        kmeans_batched(args.pop("x"), args.pop("k"), **args)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize("method", ["gram", "direct"])
def test_deterministic_given_seed(method):
    x = weight_like(n=400, d=33)
    a, b = kmeans(x, 150, seed=3, method=method), kmeans(x, 150, seed=3, method=method)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centroids, b.centroids)
    assert a.inertia == b.inertia and a.n_iter == b.n_iter
    others = [kmeans(x, 150, seed=s, method=method).labels for s in (4, 5, 6)]
    assert any(not torch.equal(a.labels, o) for o in others)


def test_does_not_touch_global_rng_or_input():
    x = blobs(n=100, d=4)
    x0 = x.clone()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    kmeans(x, 10)
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(x, x0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_deterministic_and_close_to_cpu():
    x = weight_like(n=1024, d=257)
    xc = x.cuda()
    for method in ("gram", "direct"):
        a, b = kmeans(xc, 512, method=method), kmeans(xc, 512, method=method)
        assert a.labels.device.type == "cuda"
        assert torch.equal(a.labels, b.labels) and torch.equal(a.centroids, b.centroids)
        cpu = kmeans(x, 512, method=method)
        assert a.inertia <= cpu.inertia * 1.02
    xs = torch.stack([x, x.flip(0)]).cuda()
    rb = kmeans_batched(xs, 300)
    assert torch.equal(rb.labels[0], kmeans(xs[0], 300).labels)
