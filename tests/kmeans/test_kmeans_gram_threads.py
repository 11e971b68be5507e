"""Gram matrices (prunelab.kmeans.gram) and torch thread control (prunelab.kmeans.threads)."""
from __future__ import annotations

import pytest
import torch
from kmeans_data import weight_like

import prunelab.kmeans.gram as gram
import prunelab.kmeans.threads as threads
from prunelab.kmeans import kmeans


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gram_syrk_and_product_agree(dtype, monkeypatch):
    x = torch.randn(3, 70, 90, generator=torch.Generator().manual_seed(0), dtype=dtype)
    ref = torch.bmm(x.double(), x.double().transpose(1, 2))
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for limit in (10**6, 0):  # syrk + mirror, then the plain product
        monkeypatch.setattr(gram, "SYRK_MAX_N", limit)
        for b in (3, 1):  # (one item is not stacked)
            g = gram.gram(x[:b])
            assert g.dtype == dtype and g.shape == (b, 70, 70) and g.is_contiguous()
            if limit:  # the mirrored triangle is exactly symmetric
                assert torch.equal(g, g.transpose(1, 2))
            assert torch.allclose(g.double(), ref[:b], rtol=tol, atol=tol * float(ref.abs().max()))


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
    # the many small ops see SEQUENTIAL_THREADS; the one large product (a Gram matrix above SYRK_MAX_N)
    # gets the caller's count back
    seen = {}
    real_bmm = torch.bmm

    def spy(a, b, *args, **kw):
        if a.shape[1] == b.shape[2] == 120 and "gram" not in seen:
            seen["gram"] = torch.get_num_threads()
        return real_bmm(a, b, *args, **kw)

    monkeypatch.setattr(gram, "SYRK_MAX_N", 0)
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
