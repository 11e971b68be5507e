"""Ward initialisation (prunelab.kmeans.ward): the greedy agglomeration, both implementations, batches, quality."""
from __future__ import annotations

import pytest
import torch
from kmeans_data import direct_inertia, ours_inertia, weight_like

import prunelab.kmeans.ward as ward
from prunelab.kmeans import KMeansResult, kmeans, kmeans_batched
from prunelab.kmeans.problem import Problem


def _greedy_ward(x: torch.Tensor, ks: tuple[int, ...], w=None) -> dict[int, torch.Tensor]:
    """Reference: plain greedy Ward agglomeration in float64 (merge the cheapest pair until k clusters are left),
    the labels at each k of ``ks`` (one agglomeration passes through them all)."""
    x = x.double()
    cl = [[i] for i in range(x.shape[0])]
    w = torch.ones(x.shape[0], dtype=torch.float64) if w is None else w.double()

    def mass_centroid(members: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        m = w[members].sum()
        return m, (w[members, None] * x[members]).sum(0) / m

    stats = [mass_centroid(c) for c in cl]  # each cluster's mass and centroid, from its members
    out = {}
    while True:
        if len(cl) in ks:
            lab = torch.empty(x.shape[0], dtype=torch.long)
            for c, members in enumerate(cl):
                lab[members] = c
            out[len(cl)] = lab
        if len(cl) <= min(ks):
            return out
        best = None
        for i in range(len(cl)):
            mi, ci = stats[i]
            for j in range(i + 1, len(cl)):
                mj, cj = stats[j]
                c = float(mi * mj / (mi + mj) * (ci - cj).pow(2).sum())
                if best is None or c < best[0]:
                    best = (c, i, j)
        _, i, j = best
        cl[i] += cl.pop(j)
        stats.pop(j)
        stats[i] = mass_centroid(cl[i])


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("weighted,path", [(False, "scipy"), (False, "torch"), (True, "torch")])
def test_ward_init_equals_greedy_agglomeration(weighted, path, monkeypatch):
    # unweighted CPU items up to WARD_SCIPY_MAX_N use scipy's NN chain, the rest torch's rounds
    monkeypatch.setattr(ward, "WARD_SCIPY_MAX_N", 10**6 if path == "scipy" else 0)
    x = weight_like(n=40, d=6, dtype=torch.float64)
    w = torch.rand(40, generator=torch.Generator().manual_seed(2), dtype=torch.float64) + 0.2 if weighted else None
    ks = (30, 20, 12)
    reference = _greedy_ward(x, ks, w)
    for k in ks:
        xc = x - (x.mean(0) if w is None else (w[:, None] * x).sum(0) / w.sum())
        p = Problem.build(xc.unsqueeze(0), k, None if w is None else w.unsqueeze(0), use_gram=True)
        assert _same_partition(ward.ward_item_labels(p, 0), reference[k]), k
        r = kmeans(x, k, sample_weight=w, init="ward", max_iter=1)
        assert torch.bincount(r.labels, minlength=k).min() >= 1


@pytest.mark.parametrize("n,d", [(200, 300), (300, 8)])
def test_ward_rounds_equal_scipy_nn_chain(n, d, monkeypatch):
    # few points in many dimensions (hub-like nearest neighbours: few mutual pairs a round) and many
    # points in few dimensions (hundreds of pairs merged in one round); both Ward paths agree
    x = weight_like(n=n, d=d, dtype=torch.float64)
    xc = (x - x.mean(0)).unsqueeze(0)
    for k in (n - 10, (3 * n) // 4, n // 2):
        p = Problem.build(xc, k, None, use_gram=True)
        monkeypatch.setattr(ward, "WARD_SCIPY_MAX_N", 10**6)
        ref = ward.ward_item_labels(p, 0)
        monkeypatch.setattr(ward, "WARD_SCIPY_MAX_N", 0)
        assert _same_partition(ward.ward_item_labels(p, 0), ref), k


@pytest.mark.parametrize("weighted", [False, True])
def test_ward_rounds_batched_equal_one_item_at_a_time(weighted, monkeypatch):
    # items of one batch run their merge rounds in lock step but finish at different rounds
    monkeypatch.setattr(ward, "WARD_SCIPY_MAX_N", 0)
    g = torch.Generator().manual_seed(4)
    xs = torch.stack([weight_like(n=90, d=40, rank=r, seed=i) for i, r in enumerate((2, 8, 30))]).double()
    xs = xs * torch.tensor([1.0, 3.0, 0.2], dtype=torch.float64).view(3, 1, 1)  # unlike scales too
    w = torch.rand(3, 90, generator=g, dtype=torch.float64) + 0.2 if weighted else None
    xc = xs - xs.mean(1, keepdim=True)
    for k in (80, 60, 45):
        p = Problem.build(xc, k, w, use_gram=True)
        batched = ward.ward_rounds(p.G, p.wl, k)  # (what accelerators run; CPU goes item by item)
        for b in range(3):
            assert torch.equal(batched[b], ward.ward_item_labels(p, b)), (k, b)
            single = Problem.build(xc[b : b + 1], k, None if w is None else w[b : b + 1], use_gram=True)
            assert torch.equal(batched[b], ward.ward_item_labels(single, 0)), (k, b)
        if not weighted:
            ref = kmeans_batched(xs, k, init="ward", max_iter=1)
            for b in range(3):
                assert _same_partition(ref.labels[b], kmeans(xs[b], k, init="ward", max_iter=1).labels)


def test_ward_without_gram_matrices_builds_them_per_item():
    # method="direct" keeps no Gram matrices: Ward makes each item's on demand, with the same result
    x = weight_like(n=150, d=20, dtype=torch.float64)
    xc = (x - x.mean(0)).unsqueeze(0)
    with_g, without = Problem.build(xc, 90, None, use_gram=True), Problem.build(xc, 90, None, use_gram=False)
    assert without.G is None
    assert torch.equal(ward.ward_labels(with_g), ward.ward_labels(without))


def test_ward_init_deterministic_and_seed_free():
    x = weight_like(n=400, d=33)
    a = kmeans(x, 300, seed=0)
    for s in (0, 1, 7):
        b = kmeans(x, 300, seed=s, init="ward")
        assert torch.equal(a.labels, b.labels) and torch.equal(a.centroids, b.centroids) and a.inertia == b.inertia
    for method in ("gram", "direct"):
        r = kmeans(x, 300, init="ward", method=method)
        assert r.inertia == pytest.approx(a.inertia, rel=1e-4)


@pytest.mark.parametrize("frac", [0.9, 0.7, 0.5])
def test_ward_init_beats_kmeanspp_average_at_high_k(frac):
    # Lloyd from Ward never raises Ward's inertia; in the compression regime (K >= N/2) it is below the
    # average single k-means++ run (measured 2-15% below on Whisper-base layers)
    x = weight_like(n=256, d=65)
    k = int(frac * x.shape[0])
    result = kmeans(x, k, init="ward")
    assert result.inertia <= ours_inertia(x, k, seeds=range(5), init="k-means++")
    xc = (x - x.mean(0)).unsqueeze(0)
    lab = ward.ward_item_labels(Problem.build(xc, k, None, use_gram=True), 0)
    assert result.inertia <= direct_inertia(x, KMeansResult(
        torch.zeros(k, 65).index_add_(0, lab, x) / torch.bincount(lab, minlength=k)[:, None].float(), lab, 0.0, 0
    )) * (1 + 1e-5)


@pytest.mark.parametrize("m", [0, 3, 10, 23])
def test_row_min_in_chunks_equals_a_copy(m, monkeypatch):
    # the redo rows' minima go through a small reused buffer; same values and first-minimum ties
    monkeypatch.setattr(ward, "ROW_MIN_CHUNK", 4)
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(0, 5, (30, 17), generator=g).float()  # many ties
    idx = torch.randperm(30, generator=g)[:m]
    val, arg = ward._row_min(rows, idx, torch.zeros(1, 17))  # (no dead columns)
    ref_val, ref_arg = rows.index_select(0, idx).min(1)
    assert torch.equal(val, ref_val) and torch.equal(arg, ref_arg)


def test_ward_writes_its_cost_matrix_into_the_problems_scratch_buffer(monkeypatch):
    # the [N, N] cost matrix is lent by the problem (then Lloyd's scores reuse it); same partition as a
    # fresh buffer
    monkeypatch.setattr(ward, "WARD_SCIPY_MAX_N", 0)
    x = weight_like(n=120, d=30, dtype=torch.float64)
    p = Problem.build((x - x.mean(0)).unsqueeze(0), 80, None, use_gram=True)
    lab = ward.ward_item_labels(p, 0)
    assert p._scratch is not None and p._scratch.numel() == 120 * 120
    assert torch.equal(lab, ward.ward_rounds(p.G, None, 80)[0])
