"""Ward's agglomerative clustering cut at ``K`` clusters: the initialisation for ``K >= N / 2``.

Ward merges, ``N - K`` times, the pair of clusters with the smallest increase of inertia
``m_a m_b / (m_a + m_b) |c_a - c_b|^2`` (``m``: total weight).  In compression (``K >= N / 2``: every
compression from 0 to 50% sparsity) this gives a lower inertia than k-means++ (0.67-0.98 of
scikit-learn's on Whisper-base layers) and needs only 1-4 Lloyd iterations after it.  It is
deterministic: ``seed`` plays no part.

Two implementations give the same partition:

* :func:`ward_scipy`: scipy's C nearest-neighbour chain (``linkage(..., "ward")``, the whole dendrogram
  in ``O(N^2)``), used for unweighted CPU items with ``N <= WARD_SCIPY_MAX_N`` (faster than the torch
  rounds for small N, where rounds merge few pairs each), unless few points are merged (:func:`uses_scipy`);
* :func:`ward_rounds`: vectorised rounds of mutual-nearest-neighbour merges that build only the low
  part of the dendrogram in torch -- weighted items, large N, and accelerators, where every item of a
  batch runs its rounds in lock step (fewer launches).  On CPU items go one at a time (the 2-D column
  writes of one item are cheaper).

The costs come from the Gram matrix ``G``: ``|c_i - c_j|^2 = G_ii + G_jj - 2 G_ij``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .gram import gram
from .problem import Problem
from .rowmin import row_min

#: Unweighted Ward initialisation on CPU uses scipy's C nearest-neighbour chain up to this many points
#: (faster than torch's vectorised rounds for small N, where rounds merge few pairs each), except where
#: :data:`WARD_ROUNDS_MIN_N` says otherwise.
WARD_SCIPY_MAX_N = 1024

#: Above this many points the rounds are used all the same when at most :data:`WARD_ROUNDS_MAX_MERGED` of
#: the points are merged away (``K >= 0.7 N``): scipy's chain builds the whole dendrogram whatever K is, the
#: rounds' cost grows with the merges.  Measured on one thread after the rounds' row minima moved to numpy
#: (:mod:`.rowmin`), ms, scipy / rounds, rank-64 "weight-like" and i.i.d. rows (bench_ward_limits.py's):
#: N = 768: K = 0.8 N 21.8 / 16.2 and 21.6 / 15.4, K = 0.5 N 21.5 / 24.1 and 22.3 / 28.8; N = 1024: K = 0.8 N
#: 39.9 / 20.4 and 36.5 / 23.5, K = 0.5 N 40.0 / 36.0 and 25.6 / 30.1; N = 512, K = 0.8 N: 6.4 / 5.1 and
#: 6.1 / 7.3.  On the 336 N = 1024 layers of a Whisper-medium-shaped model at K = 0.8 N: 9.45 s / 7.0 s, the
#: same partitions (only the cluster numbering differs).
WARD_ROUNDS_MIN_N = 512
WARD_ROUNDS_MAX_MERGED = 0.3


def uses_scipy(p: Problem) -> bool:
    """Whether :func:`ward_item_labels` takes scipy's chain for ``p`` (see :data:`WARD_SCIPY_MAX_N`)."""
    if p.wl is not None or p.dev.type != "cpu" or p.N > WARD_SCIPY_MAX_N:
        return False
    return p.N <= WARD_ROUNDS_MIN_N or p.N - p.k > WARD_ROUNDS_MAX_MERGED * p.N


def ward_labels(p: Problem) -> Tensor:
    """Ward's clustering of every item cut at ``K`` clusters: labels ``[B, N]`` int64 in ``0..K-1``."""
    if p.dev.type == "cpu":  # one item at a time: the 2-D column writes of one item are cheaper
        return torch.stack([ward_item_labels(p, b) for b in range(p.B)])
    G = p.G if p.G is not None else gram(p.X)
    return ward_rounds(G, p.wl, p.k)  # accelerators: all items in lock step (fewer launches)


def ward_item_labels(p: Problem, b: int) -> Tensor:
    """:func:`ward_labels` for item ``b`` alone: labels ``[N]``."""
    if uses_scipy(p):
        return ward_scipy(p.item_gram(b), p.k)
    G = p.item_gram(b).unsqueeze(0)
    cost = p.scratch(p.N * p.N).view(1, p.N, p.N)
    return ward_rounds(G, None if p.wl is None else p.wl[b : b + 1], p.k, out=cost)[0]


def ward_scipy(G: Tensor, k: int) -> Tensor:
    """One unweighted item by scipy's NN chain (CPU; ``G``: its ``[N, N]`` Gram matrix), cut at the
    ``N - k`` lowest merges: labels ``[N]``."""
    from scipy.cluster.hierarchy import linkage  # (here: scipy takes ~0.3 s to import)
    from scipy.spatial.distance import squareform

    N = G.shape[0]
    sq = G.diagonal()
    d = (sq.unsqueeze(1) + sq.unsqueeze(0)).sub_(G, alpha=2).clamp_(min=0).sqrt_()
    d.fill_diagonal_(0)
    Z = linkage(squareform(d.double().numpy(), checks=False), "ward")
    acc = np.argsort(Z[:, 2], kind="stable")[: N - k]  # (numpy: a few small steps)
    up = np.arange(2 * N - 1)
    up[Z[acc, 0].astype(np.int64)] = N + acc
    up[Z[acc, 1].astype(np.int64)] = N + acc
    while True:  # pointer jumping to the roots
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    return torch.from_numpy(np.unique(up[:N], return_inverse=True)[1].astype(np.int64))


def ward_rounds(G: Tensor, wl: Tensor | None, k: int, *, out: Tensor | None = None) -> Tensor:
    """Ward cut at ``k`` for ``B`` items at once (``G``: ``[B, N, N]`` Gram matrices, ``wl``: ``[B, N]``
    masses or None; ``out``: optional ``[B, N, N]`` work buffer for the cost matrix): labels ``[B, N]``.

    Ward's linkage is *reducible*, so pairs of mutual nearest neighbours can be merged in any order
    without changing the dendrogram (the nearest-neighbour-chain theorem).  Clusters live in the
    slot of their lowest member; a round merges mutual pairs ``(a, b)`` into slot ``a`` in every item
    at once, updating only the merged rows and columns of the cost matrices by the Lance-Williams
    formula ``d(u, c) = ((m_a + m_c) d(a, c) + (m_b + m_c) d(b, c) - m_c d(a, b)) / (m_a + m_b + m_c)``,
    and the nearest neighbour only of rows that were merged or pointed at a merged slot
    (reducibility: no other row's neighbour changes), so a round costs ``O(P N)`` for ``P`` merges.
    A round skips pairs costing more than the item's ``N - k``-th lowest merge known so far (they
    cannot be in the cut); an item stops once every pair left costs at least that much.  Its
    ``N - k`` lowest merges (heights made monotone, ties broken by creation order) then give the
    greedy ``N -> k`` partition.  Slots are numbered globally, ``b * N + i``; memory: one
    ``[B, N, N]`` cost matrix.

    Dead columns (slots merged away) are never written: they keep stale finite costs, and every row
    minimum adds a ``[B, N]`` mask (0, or +inf where dead) to the rows it reads (:func:`_row_min`).
    Filling them with +inf was half of the column writes, strided scatters over the whole matrix
    (medium's fc1, N = 4096, K = 3277, one thread: the column writes took ~115 ms a layer with them,
    ~69 ms without); the mask costs one add per redone row, in cache.
    """
    B, N, dev, dtype = G.shape[0], G.shape[1], G.device, G.dtype
    need = N - k
    inf = float("inf")
    BN = B * N
    ar_n = torch.arange(N, device=dev)
    m = torch.ones(BN, dtype=dtype, device=dev) if wl is None else wl.reshape(BN).clone()
    sq = G.diagonal(dim1=1, dim2=2)  # [B, N]
    # cost[b, i, j] = m_i m_j / (m_i + m_j) |c_i - c_j|^2 ; +inf on the diagonal (dead columns: stale)
    cost = torch.empty_like(G) if out is None else out
    if wl is None:  # (|c_i|^2 + |c_j|^2) / 2 - c_i . c_j
        half = sq * 0.5
        torch.sub(half.unsqueeze(2), G, out=cost).add_(half.unsqueeze(1)).clamp_(min=0)
    else:
        torch.add(sq.unsqueeze(2), sq.unsqueeze(1), out=cost).sub_(G, alpha=2).clamp_(min=0)
        cost.mul_(wl.unsqueeze(2) * wl.unsqueeze(1) / (wl.unsqueeze(2) + wl.unsqueeze(1)))
    cost.diagonal(dim1=1, dim2=2).fill_(inf)
    rows_of = cost.view(BN, N)  # row of global slot g
    flat = cost.view(-1)
    val, nn = row_min(rows_of)  # first minimum: ties go to the lowest slot
    dead = torch.zeros(B, N, dtype=dtype, device=dev)  # +inf in the columns of dead slots
    base = torch.arange(B, device=dev).repeat_interleave(N) * N  # [BN]: b * N of each slot
    nn = nn + base  # global
    alive = torch.ones(BN, dtype=torch.bool, device=dev)
    node = ar_n.repeat(B)  # dendrogram node id (per item) of the cluster in each slot
    hgt = torch.zeros(BN, dtype=dtype, device=dev)  # monotone height of the cluster in each slot
    next_id = torch.full((B,), N, dtype=torch.long, device=dev)
    lowest = torch.full((B, need), inf, dtype=dtype, device=dev)  # each item's lowest heights, sorted
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    rec_item, rec_par, rec_a, rec_b, rec_h = [], [], [], [], []
    while True:
        # items whose cut is known: every pair left costs at least their (N - k)-th lowest merge
        left = torch.full((B,), inf, dtype=dtype, device=dev).scatter_reduce_(
            0, base // N, torch.where(alive, val, inf), "amin")
        bound = lowest[:, need - 1]
        done |= (left >= bound) | (left == inf)
        act = torch.nonzero(alive & ~done.repeat_interleave(N)).flatten()
        nn_act = nn.index_select(0, act)
        pa = act[(nn.index_select(0, nn_act) == act) & (act < nn_act)]  # mutual pairs (a < b)
        if pa.numel() == 0:
            break
        pb = nn.index_select(0, pa)
        item = torch.div(pa, N, rounding_mode="floor")
        h = torch.maximum(val.index_select(0, pa), torch.maximum(hgt.index_select(0, pa), hgt.index_select(0, pb)))
        keep = h <= bound.index_select(0, item)
        # (an item with no pair under its bound got there by rounding, heights above costs: merge anyway)
        kept_any = torch.zeros(B, dtype=torch.bool, device=dev).index_put_((item,), keep, accumulate=True)
        keep |= ~kept_any.index_select(0, item)
        pa, pb, item, h = pa[keep], pb[keep], item[keep], h[keep]
        P = pa.numel()
        counts = torch.bincount(item, minlength=B)
        starts = torch.cumsum(counts, 0) - counts
        pos = torch.arange(P, device=dev) - starts.index_select(0, item)  # rank of the pair in its item
        width = int(counts.max())
        new_h = torch.full((B, width), inf, dtype=dtype, device=dev).index_put_((item, pos), h)
        lowest = torch.sort(torch.cat([lowest, new_h], 1), 1).values[:, :need]
        new_ids = next_id.index_select(0, item) + pos
        next_id += counts
        rec_item.append(item), rec_par.append(new_ids), rec_h.append(h)
        rec_a.append(node.index_select(0, pa)), rec_b.append(node.index_select(0, pb))
        # Lance-Williams rows of the merged clusters (inf on the diagonal follows from the inf there in
        # rows a and b; dead columns get stale values, finite or +inf, never NaN)
        ma, mb = m.index_select(0, pa), m.index_select(0, pb)
        tot = ma + mb
        dab = val.index_select(0, pa)
        mc = m.view(B, N).index_select(0, item)  # [P, N]
        rows = rows_of.index_select(0, pa).mul_(ma.unsqueeze(1) + mc)
        rows.add_(rows_of.index_select(0, pb).mul_(mb.unsqueeze(1) + mc)).sub_(mc * dab.unsqueeze(1))
        rows.div_(tot.unsqueeze(1) + mc)
        # between two new clusters of the same item: Lance-Williams once more, on the other side;
        # then the columns dying now.  (i, j): every pair of pairs of one item.
        per = counts.index_select(0, item)
        i_idx = torch.arange(P, device=dev).repeat_interleave(per)
        j_idx = starts.index_select(0, item).repeat_interleave(per)
        j_idx = j_idx + torch.arange(j_idx.numel(), device=dev) - (torch.cumsum(per, 0) - per).repeat_interleave(per)
        a_loc, b_loc = pa - item * N, pb - item * N
        aj, bj = a_loc.index_select(0, j_idx), b_loc.index_select(0, j_idx)
        mu = tot.index_select(0, i_idx)
        ma_j, mb_j = ma.index_select(0, j_idx), mb.index_select(0, j_idx)
        blk = rows[i_idx, aj].mul_(mu + ma_j).add_(rows[i_idx, bj].mul_(mu + mb_j))
        blk.sub_(mu * dab.index_select(0, j_idx)).div_(mu + ma_j + mb_j)
        rows.index_put_((i_idx, aj), blk)
        rows.index_put_((i_idx, bj), torch.full_like(blk, inf))
        m.index_copy_(0, pa, tot)
        hgt.index_copy_(0, pa, h)
        node.index_copy_(0, pa, new_ids)
        alive.index_fill_(0, pb, False)
        val.index_fill_(0, pb, inf)
        dead.view(-1).index_fill_(0, pb, inf)
        rows_of.index_copy_(0, pa, rows)
        # columns: cost[b, r, a] = rows[i, r] for the new clusters (dead columns are left as they are)
        if B == 1:  # one strided 2-D copy (cheaper on CPU than flat indices)
            cost[0].index_copy_(1, a_loc, rows.T.contiguous())
        else:
            col = (item * N * N).unsqueeze(1) + ar_n.unsqueeze(0) * N  # [P, N] flat index of (b, r, 0)
            flat.index_copy_(0, (col + a_loc.unsqueeze(1)).view(-1), rows.view(-1))
        # nearest neighbours: recompute rows that were merged or pointed at a merged slot; any other
        # live row keeps its neighbour unless a new cluster is strictly nearer (only by rounding)
        merged = torch.zeros(BN, dtype=torch.bool, device=dev)
        merged[pa] = True
        merged[pb] = True
        redo = torch.nonzero(alive & (merged | merged.index_select(0, nn))).flatten()
        if redo.numel():
            rv, ri = _row_min(rows_of, redo, dead, None if B == 1 else torch.div(redo, N, rounding_mode="floor"))
            val.index_copy_(0, redo, rv)
            nn.index_copy_(0, redo, ri + base.index_select(0, redo))
        slot = (item * N).unsqueeze(1) + ar_n.unsqueeze(0)  # [P, N] global slot of (pair's item, r)
        cv = torch.full((BN,), inf, dtype=dtype, device=dev).scatter_reduce_(0, slot.view(-1), rows.view(-1), "amin")
        closer = alive & (cv < val)
        if bool(closer.any()):  # first pair reaching the minimum, as a row minimum would pick it
            hit = rows.view(-1) == cv.index_select(0, slot.view(-1))
            pid = torch.where(hit, torch.arange(P, device=dev).repeat_interleave(N), P)
            ci = torch.full((BN,), P, dtype=torch.long, device=dev).scatter_reduce_(0, slot.view(-1), pid, "amin")
            val = torch.where(closer, cv, val)
            nn = torch.where(closer, pa.index_select(0, ci.clamp_(max=P - 1)), nn)
    # cut: each item's N - k lowest merges (stable order: children are created before their parents)
    item, par, ca, cb, hs = (torch.cat(t) for t in (rec_item, rec_par, rec_a, rec_b, rec_h))
    order = torch.sort(hs, stable=True).indices
    order = order[torch.sort(item.index_select(0, order), stable=True).indices]  # by item, then height
    it_sorted = item.index_select(0, order)
    cnt = torch.bincount(it_sorted, minlength=B)
    rank = torch.arange(order.numel(), device=dev) - (torch.cumsum(cnt, 0) - cnt).index_select(0, it_sorted)
    acc = order[rank < need]
    W = 2 * N - 1
    off = item.index_select(0, acc) * W
    up = torch.arange(B * W, device=dev)
    up[off + ca.index_select(0, acc)] = off + par.index_select(0, acc)
    up[off + cb.index_select(0, acc)] = off + par.index_select(0, acc)
    while True:  # pointer jumping to the roots
        nxt = up.index_select(0, up)
        if torch.equal(nxt, up):
            break
        up = nxt
    roots = up.view(B, W)[:, :N]
    return torch.stack([torch.unique(roots[b], return_inverse=True)[1] for b in range(B)])


#: :func:`_row_min` copies this many rows at a time (in random 1025-d data about half the rows point at a
#: merged slot each round: copying them all at once was a fresh 32 MB tensor at N = 4096).
ROW_MIN_CHUNK = 256


def _row_min(rows_of: Tensor, idx: Tensor, dead: Tensor, items: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(min, first argmin) of the rows ``rows_of[idx]`` over live columns (``rows_of``: ``[R, N]``, ``idx``:
    ``[M]``): two ``[M]`` tensors, through one small reused buffer instead of an ``[M, N]`` copy.

    ``dead``: ``[B, N]`` column mask, 0 where the slot lives and +inf where it is dead, added to each row
    copied (``x + 0`` is ``x`` exactly, so live costs and first-minimum ties are unchanged); ``items``:
    ``[M]`` the item (row of ``dead``) of each row, or None when ``B == 1``."""
    M, N = idx.numel(), rows_of.shape[1]
    val = torch.empty(M, dtype=rows_of.dtype, device=rows_of.device)
    arg = torch.empty(M, dtype=torch.long, device=rows_of.device)
    buf = torch.empty(min(M, ROW_MIN_CHUNK), N, dtype=rows_of.dtype, device=rows_of.device)
    for s in range(0, M, ROW_MIN_CHUNK):
        e = min(s + ROW_MIN_CHUNK, M)
        chunk = torch.index_select(rows_of, 0, idx[s:e], out=buf[: e - s])
        chunk.add_(dead[0] if items is None else dead.index_select(0, items[s:e]))
        val[s:e], arg[s:e] = row_min(chunk)
    return val, arg
