"""Lloyd iterations from an initialisation: batched (any device) and incremental in kernel space (CPU).

Each iteration assigns every point to its nearest centroid (E-step) and moves every centroid to the
(weighted) mean of its members (M-step), as scikit-learn's ``KMeans(algorithm="lloyd")``:

* empty clusters are re-seeded with the points farthest from their centroid (never emptying another
  cluster: :func:`relocate_empty`);
* stop when the labels no longer change ("strict convergence") or when the total squared centre
  shift is ``<= tol * mean(var(X, axis=0))`` (:func:`tolerance`), or after ``max_iter`` iterations.

One difference, which can only lower the inertia for the same start: after a non-strict stop (tol or
``max_iter``) the final E-step (re-label) is followed by an M-step, so the returned centroids are
always exactly the (weighted) means of their members.  A cluster made only of zero-weight points gets
their plain mean (see :attr:`Problem.wl`).

Two implementations:

* :func:`lloyd_batched`: every item of the batch in lock step (finished items frozen).  Scores
  ``|c_k|^2 - 2 c_k . x_i`` come from ``C X^T`` (``method="direct"``), or in kernel space from ``A G``
  with the dense normalised assignment matrix ``A`` (accelerators), or from rows of ``G`` when the
  centroids are single points (k-means++ seeds).  With ``p.dense`` (accelerators) the M-step is a
  one-hot product instead of a scatter-add, so it is deterministic there.
* :func:`lloyd_incremental` (kernel space on CPU, one item at a time): the ``[N, K]`` scores from
  ``S^T = G A^T`` (one column scatter-add of the symmetric ``G``) are kept up to date only for clusters
  whose membership changed; in compression ``K`` is a large fraction of ``N`` and after Ward's start
  few clusters change per iteration.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .gram import row_sq_norms
from .problem import Problem
from .rowmin import row_min


def tolerance(X: Tensor, tol: float, xn: Tensor) -> Tensor:
    """scikit-learn's tolerance for ``X`` ``[B, N, D]``: tol * mean over features of the (unweighted,
    biased) variance; ``[B]``. ``xn``: the rows' squared norms ``[B, N]`` (the problem's, saves a pass over ``X``)."""
    if tol == 0:
        return torch.zeros(X.shape[0], dtype=X.dtype, device=X.device)
    B, N, D = X.shape
    mu = X.mean(1)  # var = E[x^2] - E[x]^2 per feature (X is already centred, so this is well conditioned)
    return (xn.sum(1) / N - mu.pow(2).sum(1)) / D * tol


def relocate_empty(lab: Tensor, dist: Tensor, empty: Tensor) -> Tensor:
    """Give each empty cluster the farthest point from its centroid, never emptying another one.

    ``lab``: ``[N]`` labels, ``dist``: ``[N]`` squared distance of each point to its centroid,
    ``empty``: ``[K]`` bool.  Returns new labels ``[N]`` (``lab`` is not modified).
    """
    N, k, dev = lab.shape[0], empty.shape[0], lab.device
    empties = torch.nonzero(empty).flatten()  # ascending
    # keep one member (the lowest index) of every non-empty cluster out of reach
    rep = torch.full((k,), N, dtype=torch.long, device=dev)
    rep.scatter_reduce_(0, lab, torch.arange(N, device=dev), reduce="amin")
    eligible = torch.ones(N, dtype=torch.bool, device=dev)
    eligible[rep[rep < N]] = False
    d = torch.where(eligible, dist, torch.full_like(dist, -1.0))
    order = torch.sort(d, descending=True, stable=True).indices[: empties.numel()]
    lab = lab.clone()
    lab[order] = empties
    return lab


# -------------------------------------------------------------------------------- batched Lloyd


def _assign_matrix(p: Problem, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Dense path: normalised assignment ``A`` ``[B, K, N]`` (deterministic) and cluster masses ``[B, K]``."""
    B, N, k = p.B, p.N, p.k
    vals = (torch.ones(B, N, dtype=p.dtype, device=p.dev) if p.wl is None else p.wl)
    A = torch.zeros(B, k, N, dtype=p.dtype, device=p.dev)
    A.scatter_(1, labels.unsqueeze(1), vals.unsqueeze(1))  # one entry per column: deterministic
    Wk = A.sum(2)
    A.div_(Wk.clamp_min(torch.finfo(p.dtype).tiny).unsqueeze(2))
    return A, Wk


def centroids(p: Problem, labels: Tensor) -> tuple[Tensor, Tensor | None]:
    """Weighted means of the members of ``labels`` ``[B, N]``: ``C`` ``[B, K, D]`` (and ``A`` with ``p.dense``)."""
    B, N, D, k = p.B, p.N, p.D, p.k
    if p.dense:
        A, _ = _assign_matrix(p, labels)
        return torch.bmm(A, p.X), A
    flat = (labels + p.boffs_k).view(-1)
    S = torch.zeros(B * k, D, dtype=p.dtype, device=p.dev)
    S.index_put_((flat,), p.Xw.view(B * N, D), accumulate=True)  # deterministic on CPU
    if p.wl is None:
        Wk = torch.bincount(flat, minlength=B * k).to(p.dtype)
    else:
        Wk = torch.zeros(B * k, dtype=p.dtype, device=p.dev).index_put_((flat,), p.wl.reshape(-1), accumulate=True)
    S.div_(Wk.clamp_min(torch.finfo(p.dtype).tiny).unsqueeze(1))
    return S.view(B, k, D), None


def scores(p: Problem, C: Tensor, A: Tensor | None, seeds: Tensor | None, out: Tensor | None) -> Tensor:
    """``|c_k|^2 - 2 c_k . x_i`` for all k, i: ``[B, K, N]`` (the argmin over K is the nearest centroid).

    ``C``: ``[B, K, D]`` centroids; in kernel space either ``seeds`` ``[B, K]`` (centroids that are single
    points) or ``A`` (the assignment matrix that made ``C``) must be given.  ``out``: optional buffer.
    """
    B, N, k = p.B, p.N, p.k
    cn = C.pow(2).sum(2).unsqueeze(2)  # [B, K, 1]
    if not p.use_gram:
        return torch.baddbmm(cn, C, p.X.transpose(1, 2), alpha=-2, out=out)
    if seeds is not None:  # centroids are single points: rows of G
        g = p.G.view(B * N, N).index_select(0, (seeds + p.boffs_n).view(-1)).view(B, k, N)
        return g.mul_(-2).add_(cn)
    # accelerator: dense product with the normalised assignment matrix (the CPU Gram path is
    # lloyd_incremental)
    return torch.baddbmm(cn, A, p.G, alpha=-2, out=out)


def assign(p: Problem, score: Tensor) -> Tensor:
    """Nearest centroid for every point (``score``: ``[B, K, N]``), empty clusters re-seeded: labels ``[B, N]``."""
    mins, labels = score.min(1)
    counts = torch.bincount((labels + p.boffs_k).view(-1), minlength=p.B * p.k).view(p.B, p.k)
    empty = counts == 0
    if bool(empty.any()):
        dist = (mins + p.xn).clamp_(min=0)  # squared distance to the assigned centroid
        for b in torch.nonzero(empty.any(1)).flatten().tolist():
            labels[b] = relocate_empty(labels[b], dist[b], empty[b])
    return labels


def lloyd_batched(p: Problem, max_iter: int, tol: Tensor, *, seeds: Tensor | None = None,
                  init_labels: Tensor | None = None) -> tuple[Tensor, Tensor, int]:
    """Lloyd for every item in lock step, from centroids at the points ``seeds`` (``[B, K]``) or at the
    means of ``init_labels`` (``[B, N]``); ``tol``: ``[B]`` absolute shift tolerances.

    Returns centroids ``[B, K, D]``, labels ``[B, N]`` and the iterations run (the most of any item).
    """
    B, N, D, k = p.B, p.N, p.D, p.k
    buf = None
    A = None
    if init_labels is None:
        C = torch.gather(p.X, 1, seeds.unsqueeze(-1).expand(B, k, D))
        score = scores(p, C, None, seeds, None)
        labels = None
    else:
        C, A = centroids(p, init_labels)
        score = scores(p, C, A, None, None)
        labels = init_labels
    done = torch.zeros(B, dtype=torch.bool, device=p.dev)
    strict = torch.zeros(B, dtype=torch.bool, device=p.dev)
    n_iter = 0
    for it in range(max_iter):
        new = assign(p, score)
        if labels is not None and bool(done.any()):
            new = torch.where(done.unsqueeze(1), labels, new)  # finished items stay frozen
        C_new, A = centroids(p, new)
        same = (new == labels).all(1) if labels is not None else torch.zeros_like(done)
        shift = (C_new - C).pow_(2).sum((1, 2))
        strict |= same & ~done
        done |= same | (shift <= tol)
        labels, C = new, C_new
        n_iter = it + 1
        if bool(done.all()):
            break
        if buf is None:
            buf = score if score.is_contiguous() and score.shape == (B, k, N) else None
        score = scores(p, C, A, None, buf)
        buf = score
    if not bool(strict.all()):
        # final E-step so that labels match the centroids, then M-step so that centroids are the
        # means of their members (never raises the inertia).  Strict items are unchanged by it.
        labels = assign(p, scores(p, C, A, None, buf))
        C, _ = centroids(p, labels)
    return C, labels, n_iter


# -------------------------------------------------------------------------------- incremental Lloyd (CPU, kernel space)


def lloyd_incremental(p: Problem, max_iter: int, tol: Tensor, *, seeds: Tensor | None = None,
                      init_labels: Tensor | None = None) -> tuple[Tensor, Tensor, int]:
    """:func:`lloyd_incremental_item` for every item, one at a time; same arguments and results as
    :func:`lloyd_batched` (needs ``p.G``)."""
    outs = [lloyd_incremental_item(p, b, max_iter, float(tol[b]), seeds=None if seeds is None else seeds[b],
                                   init_labels=None if init_labels is None else init_labels[b])
            for b in range(p.B)]
    C = torch.stack([o[0] for o in outs])
    labels = torch.stack([o[1] for o in outs])
    return C, labels, max(o[2] for o in outs)


def lloyd_incremental_item(p: Problem, b: int, max_iter: int, tol: float, *, seeds: Tensor | None = None,
                           init_labels: Tensor | None = None) -> tuple[Tensor, Tensor, int]:
    """Lloyd for item ``b`` in kernel space with incremental updates (CPU), from centroids at the
    points ``seeds`` (``[K]``) or at the means of ``init_labels`` (``[N]``, every cluster non-empty).

    The scores ``|c_k|^2 - 2 S[k] / W_k`` with ``S[k] = sum_{j in k} w_j G[j]`` are kept as ``[N, K]``
    (each point's minimum is then a contiguous row reduction; torch's arg-min over the outer dimension of
    a ``[K, N]`` tensor took 10x longer, 150 vs 15 ms at N = 4096, K = 3277).  Since ``G`` is symmetric,
    ``S^T = G A^T`` is one column scatter-add of ``G`` straight into that layout (``index_add_`` on
    dimension 1), with no ``[K, N]`` copy of ``S`` and no transposing copy (measured: 90 instead of
    180 ms at N = 4096).  Then only clusters whose membership changed are recomputed (from their
    members' rows of ``G``), and each point's running (min, argmin) is refreshed from the changed
    clusters only -- except points whose best cluster itself changed, which get a full row minimum.
    This is exact Lloyd: the same labels as a full recomputation (up to rounding).

    Returns centroids ``[K, D]``, labels ``[N]`` and the iterations run.
    """
    N, D, k, dtype, dev = p.N, p.D, p.k, p.dtype, p.dev
    X, G, xn = p.X[b], p.G[b], p.xn[b]
    wl = None if p.wl is None else p.wl[b]
    Gcols = G if wl is None else G * wl.unsqueeze(0)  # column j scaled by w_j: S^T = Gcols A^T
    tiny = torch.finfo(dtype).tiny

    def centroids(lab: Tensor) -> tuple[Tensor, Tensor]:
        Xw = X if wl is None else p.Xw[b]
        Cs = torch.zeros(k, D, dtype=dtype, device=dev).index_put_((lab,), Xw, accumulate=True)
        if wl is None:
            Wk = torch.bincount(lab, minlength=k).to(dtype)
        else:
            Wk = torch.zeros(k, dtype=dtype, device=dev).index_put_((lab,), wl, accumulate=True)
        return Cs.div_(Wk.clamp_min(tiny).unsqueeze(1)), Wk

    def relocate(best_idx: Tensor, best_val: Tensor) -> Tensor:
        counts = torch.bincount(best_idx, minlength=k)
        empty = counts == 0
        if not bool(empty.any()):
            return best_idx
        return relocate_empty(best_idx, (best_val + xn).clamp_(min=0), empty)

    def full_scores(lab: Tensor, cn: Tensor, scale: Tensor) -> None:
        """score [N, K] = cn + scale * S^T, S^T scattered in place from the columns of G."""
        score.zero_().index_add_(1, lab, Gcols)
        score.mul_(scale.unsqueeze(0)).add_(cn.unsqueeze(0))

    labels = None
    score = p.scratch(N * k).view(N, k)  # [N, K]
    if init_labels is None:
        C = X.index_select(0, seeds)
        torch.index_select(G, 1, seeds, out=score)  # G[:, seeds] = G[seeds].T (symmetric)
        score.mul_(-2.0).add_(row_sq_norms(C).unsqueeze(0))
    else:
        labels = init_labels
        C, Wk = centroids(labels)
        full_scores(labels, row_sq_norms(C), -2.0 / Wk.clamp_min(tiny))
    best_val, best_idx = row_min(score)
    full = init_labels is None  # the next update must be a full one (scores of single points)
    strict = False
    n_iter = 0
    for it in range(max_iter):
        n_iter = it + 1
        new = relocate(best_idx, best_val)
        if labels is not None and torch.equal(new, labels):
            strict = True  # (C already holds the means of these labels)
            break
        C_new, Wk = centroids(new)
        shift = float((C_new - C).pow_(2).sum())
        R = None
        if not full:
            moved = torch.nonzero(new != labels).flatten()
            R = torch.unique(torch.cat([labels[moved], new[moved]]))  # sorted
            if 2 * R.numel() > k:
                R = None
        full = False
        labels, C = new, C_new
        cn = row_sq_norms(C)
        scale = -2.0 / Wk.clamp_min(tiny)
        if R is None:  # full recomputation
            full_scores(labels, cn, scale)
            best_val, best_idx = row_min(score)
        else:
            members = torch.nonzero(torch.isin(labels, R)).flatten()
            slot = torch.full((k,), -1, dtype=torch.long, device=dev)
            slot[R] = torch.arange(R.numel(), device=dev)
            rows_g = G.index_select(0, members)  # [M, N]: G[j] = G[:, j] for the changed clusters' members
            if wl is not None:
                rows_g.mul_(wl.index_select(0, members).unsqueeze(1))
            S_R = torch.zeros(R.numel(), N, dtype=dtype, device=dev).index_add_(0, slot[labels[members]], rows_g)
            rows = torch.addcmul(cn[R].unsqueeze(1), S_R, scale[R].unsqueeze(1)).T.contiguous()
            score.index_copy_(1, R, rows)
            sv, si = row_min(rows)
            si = R[si]
            better = (sv < best_val) | ((sv == best_val) & (si < best_idx))
            best_val = torch.where(better, sv, best_val)
            best_idx = torch.where(better, si, best_idx)
            cols = torch.nonzero(torch.isin(best_idx, R) & ~better).flatten()
            if cols.numel():  # their previous best row changed: full column minimum
                cv, ci = row_min(score.index_select(0, cols))
                best_val[cols] = cv
                best_idx[cols] = ci
        if shift <= tol:
            break
    if not strict:
        labels = relocate(best_idx, best_val)
        C, _ = centroids(labels)
    return C, labels, n_iter
