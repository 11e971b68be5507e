"""The repair solvers: ridge least squares on accumulated statistics. Pure tensor maths, no model code.

A repaired layer reads an input ``x`` [in] of the (already repaired) compressed model and should give what the
ORIGINAL model's sublayer gives on the same input, ``y`` [out]. With the input augmented by a constant,
``x~ = [x, 1]`` (the bias), and the statistics summed over calibration frames

    G = sum x~ x~^T   [in+1, in+1]        C = sum x~ y^T   [in+1, out]

the ridge solution of ``min sum ||W~^T x~ - y||^2 + lam ||W~||^2`` is ``W~ = (G + lam I)^-1 C`` (GRAIL's
consumer re-solve; the bias is the last row). ``lam = alpha * mean(diag G)``, so ``alpha`` does not depend on the
scale of the activations or the number of frames.

Shared rows (a :class:`~prunelab.modules.ClusteredLinear` whose C outputs use K rows): the rows of one cluster
must stay equal, and ``sum_{c in g} ||x~^T w - y_c||^2`` is smallest at the solution for the members' MEAN target,
so ``C`` is averaged over each cluster's columns first (:func:`cluster_mean_columns`).

Masked rows (unstructured pruning): each output row keeps its zeros; it is solved on its own support
(:func:`ridge_masked`), one small system per row.

Query/key dims (:func:`resolve_keys`): in one head the score of query input ``x`` (augmented) and key input
``z`` is ``x~^T A B^T z`` with A = [W_q b_q]^T [in+1, d] and B = W_k^T [in, d] (the key bias adds the same amount
to every score of a query, which the softmax ignores). Given the kept queries A_n, the keys B_n that best
reproduce the original scores A_o B_o^T over the query inputs' second moment Q = E[x~ x~^T], for any key inputs,
are ``B_n^T = (A_n^T Q A_n + lam I)^-1 A_n^T Q A_o B_o^T``: the key inputs' covariance cancels.

Choosing which neurons to keep (:func:`select_units`, optional): with the Gram ``G`` [C+1, C+1] of ALL the original
hidden units (augmented) and the original fc2 ``W~`` [out, C+1], the output error of keeping a set S and re-solving
fc2 on it is ``tr(W~ (G - G_{:,S} G_SS^-1 G_{S,:}) W~^T)``. Optimal Brain Surgeon removes one unit at a time:
unit j costs ``||W_{:,j}||^2 / [H^-1]_jj`` (H = G + lam I) given the optimal compensation of the rest, after which
``W -= W_{:,j} [H^-1]_{j,:} / [H^-1]_jj`` and ``H^-1 -= [H^-1]_{:,j} [H^-1]_{j,:} / [H^-1]_jj`` (SparseGPT's and
ZipLM's update for a whole column). Greedy, not optimal, but it sees the data: which units the calibration audio
actually uses, and which others can stand in for them.
"""
from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_ALPHA = 1e-3
"""Ridge strength relative to the mean of the Gram diagonal (the first repair probe's value)."""


def ridge_lambda(gram: Tensor, alpha: float) -> float:
    """``alpha * mean(diag(gram))`` (0 for an all-zero Gram)."""
    return float(alpha * gram.diagonal().mean().clamp_min(0))


def _solve_spd(a: Tensor, b: Tensor) -> Tensor:
    """``a^-1 b`` for a symmetric positive (semi)definite ``a`` plus ridge; Cholesky, falling back to lstsq."""
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_solve(b, chol)
    return torch.linalg.lstsq(a, b).solution


def ridge(gram: Tensor, cross: Tensor, alpha: float = DEFAULT_ALPHA) -> Tensor:
    """``(G + lam I)^-1 C``: ``gram`` [n, n], ``cross`` [n, m] -> [n, m] (float64 in, float64 out)."""
    lam = ridge_lambda(gram, alpha)
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return _solve_spd(gram + lam * eye, cross)


def cluster_mean_columns(cross: Tensor, index: Tensor, k: int) -> Tensor:
    """Columns of ``cross`` [n, C] averaged over each of the K clusters of ``index`` [C] (values in 0..K; the value
    K marks a dropped channel, left out) -> [n, K]. A cluster without members gets a zero column."""
    keep = index < k
    sums = torch.zeros(cross.shape[0], k, dtype=cross.dtype, device=cross.device)
    sums.index_add_(1, index[keep], cross[:, keep])
    counts = torch.bincount(index[keep], minlength=k).to(cross.dtype).clamp_min(1)
    return sums / counts


def ridge_masked(gram: Tensor, cross: Tensor, mask: Tensor, alpha: float = DEFAULT_ALPHA,
                 bias: bool = True) -> Tensor:
    """Row by row ridge on each row's own support: ``gram`` [in+b, in+b], ``cross`` [in+b, out], ``mask`` [out, in]
    (True where a weight may be nonzero) -> [in+b, out] with zeros off the support (the bias row, when ``bias``,
    is always free)."""
    lam = ridge_lambda(gram, alpha)
    n, out = cross.shape
    result = torch.zeros_like(cross)
    free = torch.ones(out, n, dtype=torch.bool, device=mask.device)
    free[:, :mask.shape[1]] = mask
    if not bias:
        free = free[:, :n]
    for row in range(out):
        idx = free[row].nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        sub = gram.index_select(0, idx).index_select(1, idx)
        sub = sub + lam * torch.eye(idx.numel(), dtype=gram.dtype, device=gram.device)
        result[idx, row] = _solve_spd(sub, cross[idx, row:row + 1]).squeeze(1)
    return result


def resolve_keys(query_moment: Tensor, new_q: Tensor, old_q: Tensor, old_k: Tensor, heads: int,
                 alpha: float = DEFAULT_ALPHA) -> Tensor:
    """New key rows for kept query rows, head by head (see the module doc).

    Args:
        query_moment: Q = sum x~ x~^T over the query inputs, [in+1, in+1] (last row/column: the constant 1).
        new_q: the compressed query rows with their bias as a last column, [H*d_n, in+1].
        old_q: the original query rows with bias, [H*d_o, in+1].
        old_k: the original key rows (no bias), [H*d_o, in_k].
        heads: H.

    Returns:
        The new key rows [H*d_n, in_k].
    """
    dn, do = new_q.shape[0] // heads, old_q.shape[0] // heads
    rows = []
    for h in range(heads):
        a_n = new_q[h * dn:(h + 1) * dn].T  # [in+1, d_n]
        a_o = old_q[h * do:(h + 1) * do].T  # [in+1, d_o]
        b_o = old_k[h * do:(h + 1) * do]  # [d_o, in_k]
        qa = query_moment @ a_n  # [in+1, d_n]
        lhs = a_n.T @ qa  # [d_n, d_n]
        rhs = qa.T @ a_o @ b_o  # [d_n, in_k]
        rows.append(ridge(lhs, rhs, alpha))
    return torch.cat(rows, 0)


def select_units(gram: Tensor, weight: Tensor, k: int, alpha: float = DEFAULT_ALPHA, rounds: int = 64,
                 bias: bool = True) -> Tensor:
    """The ``k`` hidden units to keep, by greedy OBS elimination (see the module doc).

    Args:
        gram: sum h~ h~^T of all C original hidden units with a last constant column, [C+1, C+1] float64.
        weight: the original consumer with its bias as the last column, [out, C+1].
        k: units to keep (1 <= k <= C).
        alpha: ridge strength (relative to the mean Gram diagonal).
        rounds: the C - k removals are made in this many steps, each removing the cheapest units of that step
            together with the joint (block) update; one unit a step is exact greedy OBS but costs C - k full
            [C+1, C+1] updates (22 s for 2048 -> 1000 on 2 cores; 64 rounds: about 1 s).
        bias: whether the consumer has a bias that the re-solve may move. Without one the constant column is left
            out of the system (the kept units must then also carry the mean), and the weight's last column is ignored.

    Returns:
        The kept unit indices, ascending, [k] int64 (the constant column is always kept and never returned).
    """
    n = gram.shape[0] - 1
    if not 1 <= k <= n:
        raise ValueError(f"cannot keep {k} of {n} units")
    size = n + 1 if bias else n
    gram, weight = gram[:size, :size], weight[:, :size]
    lam = ridge_lambda(gram, alpha)
    eye = torch.eye(size, dtype=gram.dtype, device=gram.device)
    hinv = torch.cholesky_inverse(torch.linalg.cholesky(gram + lam * eye))
    w = weight.to(gram.dtype).clone()
    alive = torch.ones(size, dtype=torch.bool, device=gram.device)
    if bias:
        alive[n] = False  # the constant (bias) is never a candidate
    left = n - k
    for step in range(max(1, rounds), 0, -1):
        take = -(-left // step)  # ceil: spread the removals over the remaining steps
        if take <= 0:
            continue
        cost = (w * w).sum(0) / hinv.diagonal().clamp_min(1e-300)
        cost[~alive] = float("inf")
        drop = cost.topk(take, largest=False).indices
        block = hinv[drop][:, drop]  # [b, b]
        rows = torch.linalg.solve(block, hinv[drop])  # [b, C+1]
        w -= w[:, drop] @ rows
        hinv -= hinv[:, drop] @ rows
        alive[drop] = False
        left -= take
    return alive[:n].nonzero().squeeze(1)
