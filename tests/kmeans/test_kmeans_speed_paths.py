"""The faster single-thread paths of issue 12 give the same results as the plain ones: numpy row minima
(prunelab.kmeans.rowmin), Ward's rounds without dead-column writes and their choice over scipy's chain at
N > 512, the blocked Gram product on one thread, the inertia in blocks."""
from __future__ import annotations

import pytest
import torch
from kmeans_data import weight_like

import prunelab.kmeans.api as api
import prunelab.kmeans.gram as gram
import prunelab.kmeans.ward as ward
from prunelab.kmeans import kmeans
from prunelab.kmeans.problem import Problem
from prunelab.kmeans.rowmin import row_min

INF = float("inf")


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


# ------------------------------------------------------------------ row minima


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_min_equals_torch_min_with_ties_and_infinities(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (60, 37), generator=g).to(dtype)  # many ties: the first minimum must win
    x[3] = INF  # a row of +inf only: index 0, like torch
    x[5, ::2] = INF
    x[7, 10:] = -INF
    x[9] = -0.0  # (-0 == +0: still the first column)
    for m in (x, x[::2], x[:, 5:], torch.randn(40, 300, generator=g, dtype=dtype)):  # views with a row stride too
        val, arg = row_min(m)
        ref_val, ref_arg = m.min(1)
        assert torch.equal(arg, ref_arg) and torch.equal(val, ref_val)
        assert val.dtype == dtype and arg.dtype == torch.int64


def test_row_min_falls_back_to_torch_where_numpy_cannot_read_the_rows():
    x = torch.randint(0, 3, (20, 30), generator=torch.Generator().manual_seed(1)).float()
    for m in (x.T, x.half(), x.requires_grad_()):  # column-strided, float16, needs grad
        val, arg = row_min(m)
        assert torch.equal(arg, m.min(1).indices) and torch.equal(val, m.min(1).values)


@pytest.mark.parametrize("m", [0, 3, 10, 23])
def test_ward_row_min_skips_dead_columns(m, monkeypatch):
    # the redone rows' minima go through a small buffer and a +inf mask on the dead columns, which keep
    # stale costs; same values and first-minimum ties as a masked copy
    monkeypatch.setattr(ward, "ROW_MIN_CHUNK", 4)
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(0, 5, (30, 17), generator=g).float()
    dead = torch.zeros(1, 17)
    dead[0, [0, 4, 5, 16]] = INF
    idx = torch.randperm(30, generator=g)[:m]
    val, arg = ward._row_min(rows, idx, dead)
    ref_val, ref_arg = (rows.index_select(0, idx) + dead).min(1)
    assert torch.equal(val, ref_val) and torch.equal(arg, ref_arg)
    # two items: each row is masked with its own item's dead columns
    dead2 = torch.cat([dead, torch.zeros(1, 17)])
    items = torch.arange(m) % 2
    val, arg = ward._row_min(rows, idx, dead2, items)
    ref_val, ref_arg = (rows.index_select(0, idx) + dead2.index_select(0, items)).min(1)
    assert torch.equal(val, ref_val) and torch.equal(arg, ref_arg)


# ------------------------------------------------------------------ Ward: rounds against scipy's chain


def _inputs():
    """Tie-free inputs: i.i.d. random and low-rank "weight-like" rows, several seeds."""
    g = torch.Generator().manual_seed(3)
    yield "random", torch.randn(300, 64, generator=g, dtype=torch.float64)
    yield "random-wide", torch.randn(160, 400, generator=g, dtype=torch.float64)
    for seed, rank in ((0, 4), (1, 16), (2, 64)):
        yield f"weight-like-{rank}", weight_like(n=300, d=65, rank=rank, seed=seed, dtype=torch.float64)


@pytest.mark.parametrize("name,x", list(_inputs()))
def test_ward_rounds_give_scipys_partition(name, x, monkeypatch):
    xc = (x - x.mean(0)).unsqueeze(0)
    N = x.shape[0]
    for k in (N - 3, (4 * N) // 5, N // 2, N // 5):
        p = Problem.build(xc, k, None, use_gram=True)
        ref = ward.ward_scipy(p.item_gram(0), k)
        got = ward.ward_rounds(p.G, None, k)[0]
        assert _same_partition(got, ref), (name, k)


def test_ward_rounds_with_ties_match_scipys_inertia():
    # exact duplicates (zero-cost merges) and points on a grid (equal costs everywhere): the tied merges
    # may be taken in another order than scipy's, but the partition costs the same
    g = torch.Generator().manual_seed(5)
    dup = torch.randn(40, 6, generator=g, dtype=torch.float64).repeat_interleave(3, 0)
    grid = torch.cartesian_prod(*(torch.arange(5, dtype=torch.float64),) * 3)
    for x in (dup, grid, torch.cat([dup[:60], grid[:60]], 1)):
        xc = x - x.mean(0)
        for k in ((3 * x.shape[0]) // 4, x.shape[0] // 3):
            p = Problem.build(xc.unsqueeze(0), k, None, use_gram=True)
            for lab in (ward.ward_rounds(p.G, None, k)[0], ward.ward_scipy(p.item_gram(0), k)):
                assert torch.bincount(lab, minlength=k).min() >= 1
            a, b = (_ward_inertia(xc, lab, k) for lab in (ward.ward_rounds(p.G, None, k)[0],
                                                           ward.ward_scipy(p.item_gram(0), k)))
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9)


def _ward_inertia(xc: torch.Tensor, lab: torch.Tensor, k: int) -> float:
    c = torch.zeros(k, xc.shape[1], dtype=xc.dtype).index_add_(0, lab, xc) / torch.bincount(lab, minlength=k)[:, None]
    return float(((xc - c[lab]) ** 2).sum())


@pytest.mark.parametrize("N,k,weighted,scipy", [
    (512, 409, False, True),     # small: scipy's chain
    (513, 350, False, True),     # more than 0.3 N merged away: the chain
    (513, 410, False, False),    # at most 0.3 N merged away: the rounds
    (700, 560, False, False),    # K = 0.8 N above 512: the rounds
    (1024, 819, False, False),
    (1024, 512, False, True),
    (1025, 1000, False, False),  # above WARD_SCIPY_MAX_N: always the rounds
    (300, 240, True, False),     # weighted: always the rounds
])
def test_ward_takes_the_rounds_above_512_points_when_few_are_merged(N, k, weighted, scipy):
    x = torch.zeros(1, N, 2)
    p = Problem.build(x, k, torch.rand(1, N) + 0.5 if weighted else None, use_gram=False)
    assert ward.uses_scipy(p) is scipy


def test_ward_item_labels_same_partition_either_side_of_the_rule(monkeypatch):
    x = weight_like(n=600, d=40, seed=4, dtype=torch.float64)
    p = Problem.build((x - x.mean(0)).unsqueeze(0), 480, None, use_gram=True)
    assert not ward.uses_scipy(p)
    got = ward.ward_item_labels(p, 0)
    monkeypatch.setattr(ward, "WARD_ROUNDS_MIN_N", 10**6)
    assert ward.uses_scipy(p)
    assert _same_partition(got, ward.ward_item_labels(p, 0))


# ------------------------------------------------------------------ Gram on one thread, inertia in blocks


@pytest.mark.parametrize("N", [300, 513, 1100])
def test_blocked_gram_on_one_thread_equals_the_product(N, monkeypatch):
    monkeypatch.setattr(gram, "SMALL_GRAM_MAX_N", 0)
    x = torch.randn(2, N, 70, generator=torch.Generator().manual_seed(N))
    ref = torch.bmm(x.double(), x.double().transpose(1, 2))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        out = torch.full((2, N, N), float("nan"))
        g = gram.gram(x, out=out)
        fresh = gram.gram(x)
    finally:
        torch.set_num_threads(before)
    assert g.data_ptr() == out.data_ptr() and torch.equal(g, fresh)
    assert torch.equal(g, g.transpose(1, 2))  # the lower blocks are copies of the upper ones
    assert torch.allclose(g.double(), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_kmeans_same_result_with_blocked_and_plain_gram(monkeypatch):
    # the blocked product is the plain one up to rounding (bit for bit with MKL here): same labels and inertia
    monkeypatch.setattr(gram, "SMALL_GRAM_MAX_N", 0)
    monkeypatch.setattr(gram, "GRAM_BLOCK", 64)
    x = weight_like(n=300, d=129, seed=7)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        blocked = kmeans(x, 240)
        monkeypatch.setattr(gram, "GRAM_BLOCK", 10**6)
        plain = kmeans(x, 240)
    finally:
        torch.set_num_threads(before)
    assert _same_partition(blocked.labels, plain.labels)
    assert blocked.inertia == pytest.approx(plain.inertia, rel=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_inertia_in_blocks_is_the_whole_tensor_sum(weighted, monkeypatch):
    monkeypatch.setattr(api, "INERTIA_ROWS", 7)
    g = torch.Generator().manual_seed(2)
    Xc = torch.randn(3, 50, 9, generator=g)
    C = torch.randn(3, 12, 9, generator=g)
    labels = torch.randint(0, 12, (3, 50), generator=g)
    w = torch.rand(3, 50, generator=g) if weighted else None
    offs = (torch.arange(3) * 12).view(3, 1)
    d = (Xc - C.reshape(36, 9).index_select(0, (labels + offs).view(-1)).view(3, 50, 9)).pow_(2).sum(-1)
    ref = (d if w is None else d * w).sum(1)
    assert torch.equal(api._inertia(Xc, C, labels, w), ref)
