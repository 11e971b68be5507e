"""Shared test data for the k-means tests: synthetic point sets, reference inertias, real layer rows."""
from __future__ import annotations

import numpy as np
import torch

from prunelab.kmeans import KMeansResult, kmeans

# Single k-means runs scatter by ~1% around their mean on these problems, so quality is compared as
# the mean over several seeds (deterministic: the same seeds every time).
SEEDS = tuple(range(10))


def blobs(n=600, d=16, centers=20, seed=0, dtype=torch.float32) -> torch.Tensor:
    """[n, d] points around ``centers`` Gaussian centres."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(centers, d, generator=g) * 5
    lab = torch.randint(0, centers, (n,), generator=g)
    return (c[lab] + torch.randn(n, d, generator=g)).to(dtype)


def weight_like(n=512, d=129, rank=16, seed=0, dtype=torch.float32) -> torch.Tensor:
    """A matrix shaped like a small linear layer [n, d]: low-rank structure + noise, heavy-ish row norms."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, rank, generator=g) * torch.rand(n, 1, generator=g) * 2
    v = torch.randn(rank, d, generator=g) / rank**0.5
    return (u @ v + 0.3 * torch.randn(n, d, generator=g)).to(dtype) * 0.05


def ours_inertia(x: torch.Tensor, k: int, seeds=SEEDS, reduce=np.mean, **kw) -> float:
    return float(reduce([kmeans(x, k, seed=s, **kw).inertia for s in seeds]))


def sk_inertia(x: torch.Tensor, k: int, seeds=SEEDS, reduce=np.mean, **kw) -> float:
    from sklearn.cluster import KMeans

    return float(reduce([KMeans(k, init="k-means++", n_init=1, random_state=s, **kw).fit(x.numpy()).inertia_
                         for s in seeds]))


def direct_inertia(x: torch.Tensor, r: KMeansResult, w: torch.Tensor | None = None) -> float:
    """The inertia of ``r`` recomputed in float64 from its centroids and labels."""
    d = ((x.double() - r.centroids.double()[r.labels]) ** 2).sum(1)
    if w is not None:
        d = d * w.double()
    return float(d.sum())


def layer_matrix(linear: torch.nn.Linear) -> torch.Tensor:
    """[C, in+1] float32: weight rows and the bias column, a zero column when the layer has no bias
    (as benchmarks/bench_kmeans.py builds them)."""
    w = linear.weight.detach().float()
    b = linear.bias.detach().float() if linear.bias is not None else torch.zeros(w.shape[0])
    return torch.cat([w, b[:, None]], 1)


def layer_rows(linear: torch.nn.Linear) -> torch.Tensor:
    """[C, in(+1)] float32: weight rows, bias appended as the last column (as prunelab.methods.channel_rows)."""
    rows = linear.weight.detach().float()
    if linear.bias is not None:
        rows = torch.cat([rows, linear.bias.detach().float()[:, None]], dim=1)
    return rows
