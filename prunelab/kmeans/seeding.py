"""Greedy k-means++ seeding, as scikit-learn's ``KMeans(init="k-means++")``.

The first centre is drawn with probability proportional to the weight.  Each further step draws
``n_local_trials`` candidates (default ``2 + int(ln k)``) with probability proportional to the
(weighted) squared distance to the nearest centre chosen so far, and keeps the candidate that lowers
the potential (the weighted sum of those distances) most.  The ``K`` steps are sequential, so a batch
of ``B`` items takes them in lock step (one launch per step for the whole batch).

In kernel space a candidate's distances are a row look-up of ``|x_i|^2 + |x_j|^2 - 2 G_ij``: from a
precomputed ``[B, N, N]`` table while it stays below :data:`DSQ_MAX_BYTES`, else from ``G`` on the fly.

Determinism: all randomness comes from a ``torch.Generator`` seeded with ``seed`` on the points'
device (the same stream for every item of a batch).  On accelerators a floating cumsum is not
deterministic, so the sampling CDF is an integer cumsum of the probabilities quantised to 2^-40 of
their total.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .problem import Problem

#: The precomputed [B, N, N] squared-distance table for seeding is kept only below this size;
#: above it candidate distances are derived from G on the fly.
DSQ_MAX_BYTES = 512 * 1024**2


def default_local_trials(k: int) -> int:
    """scikit-learn's number of candidates per seeding step: ``2 + int(ln k)``."""
    return 2 + int(math.log(k))


def kmeanspp_seeds(p: Problem, seed: int, n_local_trials: int | None = None) -> Tensor:
    """Greedy k-means++ seeds of every item: ``[B, K]`` int64 point indices (the initial centroids)."""
    B, N, k = p.B, p.N, p.k
    L = n_local_trials if n_local_trials is not None else default_local_trials(k)
    gen = torch.Generator(device=p.dev)
    gen.manual_seed(int(seed))
    w = p.w
    u = torch.rand(k, L, generator=gen, device=p.dev, dtype=torch.float64)
    dist_rows = _distance_rows(p)

    # first centre: drawn with probability proportional to the weight
    p0 = torch.ones(B, N, dtype=p.dtype, device=p.dev) if w is None else w
    cdf, tot = _cdf(p0, p.dense)
    first = _sample(cdf, tot, u[0, :1], N)  # [B, 1]
    seeds = [first]
    closest = dist_rows(first).squeeze(1)  # [B, N]
    ar_l = (torch.arange(B, device=p.dev) * L).view(B, 1)
    for c in range(1, k):
        cdf, tot = _cdf(closest if w is None else closest * w, p.dense)
        cand = _sample(cdf, tot, u[c], N)  # [B, L]
        dc = dist_rows(cand)  # [B, L, N]
        torch.minimum(dc, closest.unsqueeze(1), out=dc)
        pot = dc.sum(2) if w is None else torch.bmm(dc, w.unsqueeze(2)).squeeze(2)  # [B, L]
        best = pot.argmin(1, keepdim=True)  # [B, 1] (first minimum, like numpy)
        closest = dc.view(B * L, N).index_select(0, (best + ar_l).view(-1))
        seeds.append(torch.gather(cand, 1, best))
    return torch.cat(seeds, 1)  # [B, k]


def _distance_rows(p: Problem) -> Callable[[Tensor], Tensor]:
    """A function from point indices ``idx`` ``[B, M]`` to their squared distances to every point of
    their item, ``[B, M, N]``: Gram look-ups in kernel space, else a batched product."""
    B, N, D = p.B, p.N, p.D
    X, xn = p.X, p.xn
    if p.use_gram:
        dsq = None
        if B * N * N * X.element_size() <= DSQ_MAX_BYTES:
            dsq = (xn.unsqueeze(2) + xn.unsqueeze(1)).sub_(p.G, alpha=2).clamp_(min=0)
        Gflat = p.G.view(B * N, N)

        def dist_rows(idx: Tensor) -> Tensor:
            flat = (idx + p.boffs_n).view(-1)
            if dsq is not None:
                return dsq.view(B * N, N).index_select(0, flat).view(B, -1, N)
            g = Gflat.index_select(0, flat).view(B, -1, N)
            d = torch.add(torch.gather(xn, 1, idx).unsqueeze(2), g, alpha=-2)
            return d.add_(xn.unsqueeze(1)).clamp_(min=0)

        return dist_rows

    Xt = X.transpose(1, 2)

    def dist_rows(idx: Tensor) -> Tensor:
        rows = torch.gather(X, 1, idx.unsqueeze(-1).expand(B, idx.shape[1], D))
        d = torch.baddbmm(torch.gather(xn, 1, idx).unsqueeze(2), rows, Xt, alpha=-2)
        return d.add_(xn.unsqueeze(1)).clamp_(min=0)

    return dist_rows


def _cdf(prob: Tensor, dense: bool) -> tuple[Tensor, Tensor]:
    """Cumulative sums of ``prob`` (``[B, M]``, >= 0) for sampling, and their totals (``[B, 1]``).

    With ``dense`` (accelerators) a floating cumsum is not deterministic; quantise to integers (2^-40
    of the total) whose cumsum is exact.
    """
    if not dense:
        cdf = torch.cumsum(prob, 1)
        return cdf, cdf[:, -1:]
    tot = prob.sum(1, keepdim=True)
    q = (prob * (2.0**40 / tot.clamp_min(torch.finfo(prob.dtype).tiny))).to(torch.int64)
    cdf = torch.cumsum(q, 1)
    return cdf, cdf[:, -1:]


def _sample(cdf: Tensor, tot: Tensor, u: Tensor, n: int) -> Tensor:
    """Indices ``i < n`` with P(i) ~ p_i for uniforms ``u`` (``[L]``); returns ``[B, L]`` int64."""
    if cdf.dtype == torch.int64:
        r = (u.to(torch.float64).unsqueeze(0) * tot.to(torch.float64)).to(torch.int64)
    else:
        r = u.to(cdf.dtype).unsqueeze(0) * tot
    r = r.contiguous()
    return torch.searchsorted(cdf, r, right=True).clamp_(max=n - 1)
