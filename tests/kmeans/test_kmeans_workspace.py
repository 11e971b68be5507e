"""Work buffers kept between k-means calls (prunelab.kmeans.workspace): reused only where allowed, per thread,
grown when needed, dropped afterwards, and never aliased by what a call returns."""
from __future__ import annotations

import threading

import torch
from kmeans_data import weight_like

import prunelab.kmeans.gram as gram
import prunelab.kmeans.ward as ward
from prunelab.kmeans import kmeans
from prunelab.kmeans.workspace import buffer, keep_buffers, reuse_buffers

CPU = torch.device("cpu")


def test_outside_a_reuse_block_every_buffer_is_new():
    a = buffer("x", 100, torch.float32, CPU)
    b = buffer("x", 100, torch.float32, CPU)
    assert a.data_ptr() != b.data_ptr()
    assert a.numel() == b.numel() == 100


def test_inside_a_block_the_same_buffer_is_lent_grown_when_needed_and_dropped_after():
    with reuse_buffers():
        a = buffer("x", 100, torch.float32, CPU)
        b = buffer("x", 60, torch.float32, CPU)
        assert b.data_ptr() == a.data_ptr() and b.numel() == 60
        other = buffer("y", 100, torch.float32, CPU)
        assert other.data_ptr() != a.data_ptr()
        c = buffer("x", 500, torch.float32, CPU)  # larger: a new one, kept from now on
        assert c.numel() == 500 and buffer("x", 400, torch.float32, CPU).data_ptr() == c.data_ptr()
        d = buffer("x", 10, torch.float64, CPU)  # another dtype: a new one
        assert d.dtype == torch.float64
        with reuse_buffers():  # nested: the same buffers
            assert buffer("x", 10, torch.float64, CPU).data_ptr() == d.data_ptr()
        assert buffer("x", 10, torch.float64, CPU).data_ptr() == d.data_ptr()  # the inner exit kept them
    with reuse_buffers():  # a new block starts with no buffers (d is still alive, so no address is reused)
        assert buffer("x", 10, torch.float64, CPU).data_ptr() != d.data_ptr()


def test_buffers_belong_to_one_thread():
    seen = {}
    both = threading.Barrier(2, timeout=10)

    def worker(name):
        keep_buffers()
        seen[name] = (buffer("g", 1000, torch.float32, CPU), buffer("g", 1000, torch.float32, CPU))
        both.wait()  # both threads hold their buffers now

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a1, a2), (b1, b2) = seen["a"], seen["b"]  # (kept alive here, so no address can be reused)
    assert a1.data_ptr() == a2.data_ptr() and b1.data_ptr() == b2.data_ptr()  # each thread reuses its own
    assert a1.data_ptr() != b1.data_ptr()
    mine = buffer("g", 1000, torch.float32, CPU)  # this thread keeps none: a new one
    assert mine.data_ptr() not in (a1.data_ptr(), b1.data_ptr())


def test_kmeans_results_are_the_same_and_not_overwritten_by_the_next_call(monkeypatch):
    monkeypatch.setattr(gram, "SMALL_GRAM_MAX_N", 64)  # so these N take the Gram product into the reused buffer
    monkeypatch.setattr(ward, "WARD_SCIPY_MAX_N", 64)  # and Ward's torch rounds, whose cost matrix is reused
    x1 = weight_like(200, 40, seed=1)
    x2 = weight_like(200, 40, seed=2)
    plain = [kmeans(x, 150, seed=0) for x in (x1, x2)]  # Ward initialisation (K >= N / 2), kernel space
    with reuse_buffers():
        first = kmeans(x1, 150, seed=0)
        kept = (first.centroids.clone(), first.labels.clone(), first.inertia)
        second = kmeans(x2, 150, seed=0)  # reuses the Gram and cost buffers of the first call
        third = kmeans(x1, 120, seed=0)
    assert torch.equal(first.centroids, kept[0]) and torch.equal(first.labels, kept[1])
    for got, want in ((first, plain[0]), (second, plain[1])):
        assert torch.equal(got.labels, want.labels)
        assert torch.allclose(got.centroids, want.centroids)
        assert float(got.inertia) == float(want.inertia)
    assert torch.equal(third.labels, kmeans(x1, 120, seed=0).labels)
