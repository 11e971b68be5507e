"""Gram matrices (prunelab.kmeans.gram) and torch thread control (prunelab.kmeans.threads)."""
from __future__ import annotations

import pytest
import torch
from kmeans_data import weight_like

import prunelab.kmeans.gram as gram
import prunelab.kmeans.threads as threads
from prunelab.kmeans import kmeans


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gram_small_and_large_paths_agree(dtype, monkeypatch):
    x = torch.randn(3, 70, 90, generator=torch.Generator().manual_seed(0), dtype=dtype)
    ref = torch.bmm(x.double(), x.double().transpose(1, 2))
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for limit in (10**6, 0):  # on the current threads, then with the caller's
        monkeypatch.setattr(gram, "SMALL_GRAM_MAX_N", limit)
        for b in (3, 1):
            g = gram.gram(x[:b])
            assert g.dtype == dtype and g.shape == (b, 70, 70) and g.is_contiguous()
            assert torch.allclose(g.double(), ref[:b], rtol=tol, atol=tol * float(ref.abs().max()))
            out = torch.full((b, 70, 70), float("nan"), dtype=dtype)
            assert gram.gram(x[:b], out=out).data_ptr() == out.data_ptr() and torch.equal(out, g)


def test_a_small_gram_gets_the_same_bits_alone_and_beside_another_layer(monkeypatch):
    """Up to SMALL_GRAM_MAX_N points the product runs on the one thread a k-means call leaves, whatever the
    caller's count: a layer compressed alone (caller: 2 threads) and in a worker (1 thread) gets the same G.

    The bits are the guarantee.  Whether a product on the caller's two threads would have given other bits is
    the BLAS's affair (MKL on AVX-512 splits this 512 x 4097 product differently; on other CPUs it does not),
    so the test also checks the thread count the product runs on, which tells on every machine."""
    seen = []
    real = gram._cpu_gram

    def spy(X, out):
        seen.append(torch.get_num_threads())
        return real(X, out)

    monkeypatch.setattr(gram, "_cpu_gram", spy)
    x = torch.randn(1, 512, 4097, generator=torch.Generator().manual_seed(3))
    assert x.shape[1] <= gram.SMALL_GRAM_MAX_N
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        worker = gram.gram(x)
        torch.set_num_threads(2)
        with threads.sequential_threads(torch.device("cpu")):
            alone = gram.gram(x)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(alone, worker)
    assert seen == [1, 1], f"the small Gram products ran on {seen} torch threads (worker, alone): expected one each"


def test_thread_count_restored_after_call():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        kmeans(weight_like(n=100, d=9), 60)
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError):
            kmeans(torch.full((10, 3), float("nan")), 3)
        assert torch.get_num_threads() == 2
        threads.SEQUENTIAL_THREADS, saved = None, threads.SEQUENTIAL_THREADS
        try:
            kmeans(weight_like(n=100, d=9), 60)
        finally:
            threads.SEQUENTIAL_THREADS = saved
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert threads._threads_depth == 0


def test_calls_run_with_one_thread_and_gram_with_the_callers(monkeypatch):
    # the many small ops see SEQUENTIAL_THREADS; the one large product (a Gram matrix above SMALL_GRAM_MAX_N)
    # gets the caller's count back
    seen = {}
    real_bmm = torch.bmm

    def spy(a, b, *args, **kw):
        if a.shape[1] == b.shape[2] == 120 and "gram" not in seen:
            seen["gram"] = torch.get_num_threads()
        return real_bmm(a, b, *args, **kw)

    monkeypatch.setattr(gram, "SMALL_GRAM_MAX_N", 0)
    monkeypatch.setattr(gram.torch, "bmm", spy)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with threads.sequential_threads(torch.device("cpu")):
            inside = torch.get_num_threads()
        kmeans(weight_like(n=120, d=300), 70, method="gram")
    finally:
        torch.set_num_threads(before)
    assert inside == threads.SEQUENTIAL_THREADS == 1
    assert seen["gram"] == 2
