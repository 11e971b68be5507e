"""Fast, deterministic k-means in torch: the clustering engine behind channel-wise compression.

Each ``nn.Linear`` gives a matrix ``X`` of shape ``[N, D]`` (one row per output channel, the bias
appended as an extra column).  :func:`kmeans` clusters the rows into ``K`` groups; the compressed
layer replaces every row by its centroid.  :func:`kmeans_batched` does the same for ``B`` matrices of
the same shape at once (``x`` of shape ``[B, N, D]``), which amortises the per-step overhead of the
sequential k-means++ seeding -- useful on a GPU, where launches dominate.

The algorithm follows scikit-learn's ``KMeans(init="k-means++", n_init=1, algorithm="lloyd")``:

* greedy k-means++ seeding: each step draws ``n_local_trials`` candidates (default
  ``2 + int(ln k)``) with probability proportional to the (weighted) squared distance to the nearest
  centre chosen so far, and keeps the candidate that lowers the potential most;
* Lloyd iterations; empty clusters are re-seeded with the points farthest from their centroid;
* stop when the labels no longer change ("strict convergence") or when the total squared centre
  shift is ``<= tol * mean(var(X, axis=0))``, or after ``max_iter`` iterations.

It differs in two small ways, both of which can only lower the inertia for the same seeding: after a
non-strict stop (tol or ``max_iter``) the final E-step (re-label) is followed by an M-step, so the
returned centroids are always exactly the (weighted) means of their members; and points with zero
weight still belong to a cluster (a cluster made only of them gets their plain mean).

Speed.  In compression ``N`` (channels, 384..5120) is comparable to or smaller than ``D`` and ``K`` is a
large fraction of ``N``.  The default ``method="auto"`` then works in *kernel space*: the Gram matrix
``G = X X^T`` (``[N, N]``) is computed once; k-means++ candidate distances become row look-ups of
``|x_i|^2 + |x_j|^2 - 2 G_ij``; and since a centroid is a weighted mean of its members,
``C X^T = A G`` with ``A`` the normalised ``[K, N]`` assignment matrix, which is a row scatter-add of
``G`` in ``O(N^2)`` instead of an ``O(N K D)`` matrix product.  Centroids themselves cost only
``O(N D)`` per iteration (a scatter-add of rows).  ``method="direct"`` uses the plain ``X C^T``
product; both give the same result up to float rounding.

Initialisation.  ``init="auto"`` (the default) replaces k-means++ by Ward's agglomerative clustering
when ``K >= N / 2`` (every compression from 0 to 50% sparsity): merging the cheapest pair of clusters
``N - K`` times gives a lower inertia than k-means++ there (0.67-0.98 of scikit-learn's on Whisper-base
layers) and needs only 1-4 Lloyd iterations after it.  Ward is computed by vectorised rounds of
mutual-nearest-neighbour merges that build only the low part of the dendrogram (torch), or for
small unweighted CPU inputs by scipy's C nearest-neighbour chain; on CPU small Gram matrices come
from BLAS ``syrk``.  Everything else is torch.

Determinism.  All randomness comes from a ``torch.Generator`` seeded with ``seed`` on ``x``'s device,
and only deterministic kernels are used: on CUDA the scatter-adds are replaced by one-hot matrix
products and the seeding CDF is an integer cumsum, so the same call gives the same labels on the
same device.  Results on CPU and on CUDA need not be identical.

Precision.  Work is done in float32 (float64 if ``x`` is float64) on ``x``'s device; ``x`` is centred
(column mean subtracted) first to reduce cancellation in ``|x|^2 + |c|^2 - 2 x.c``; the returned
inertia is computed directly from the explicit centroids.
"""
from __future__ import annotations

import contextlib
import functools
import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["KMeansResult", "kmeans", "kmeans_batched"]

#: ``method="auto"`` uses the Gram path only while the Gram matrices (and the seeding distance
#: table) stay below this many bytes and N below :data:`GRAM_MAX_N`.
GRAM_MAX_BYTES = 2 * 1024**3
GRAM_MAX_N = 16384
#: The precomputed [B, N, N] squared-distance table for seeding is kept only below this size;
#: above it candidate distances are derived from G on the fly.
_DSQ_MAX_BYTES = 512 * 1024**2
#: Unweighted Ward initialisation on CPU uses scipy's C nearest-neighbour chain up to this many points
#: (faster than torch's vectorised rounds for small N, where rounds merge few pairs each).
WARD_SCIPY_MAX_N = 1024
#: On CPU, Gram matrices up to this N come from BLAS ``syrk`` (half the flops of a product, then a
#: mirror copy); above it the mirror copy costs more than it saves and a plain product is used.
SYRK_MAX_N = 1024
#: On CPU the whole call (Gram product, seeding and Lloyd loops: many small ops) runs with at most this many torch threads; set to
#: ``None`` to keep torch's setting.  With several OpenMP threads on a busy machine each small op waits
#: for every thread to be scheduled (measured: Whisper-base at 50% took 4 s with 1 thread vs 51-86 s
#: with 2 threads on a loaded 2-core machine).  The one large product, the Gram matrix, still runs with
#: the caller's threads (2 threads: 26 ms instead of 48 ms for a 2048 x 513 layer on an idle machine).
SEQUENTIAL_THREADS: int | None = 1

_THREADS_LOCK = threading.Lock()
_threads_depth = 0
_threads_saved = 0


@contextlib.contextmanager
def _sequential_threads(device: torch.device):
    """Temporarily cap ``torch.set_num_threads`` at :data:`SEQUENTIAL_THREADS` (CPU only).

    The previous value is restored on exit, also after an exception.  Concurrent calls from several
    Python threads share one reference count, so the value saved by the first entry is restored by the
    last exit (the setting is process-wide, or per OpenMP thread; either way it is restored).
    """
    global _threads_depth, _threads_saved
    cap = SEQUENTIAL_THREADS
    if device.type != "cpu" or cap is None:
        yield
        return
    with _THREADS_LOCK:
        if _threads_depth == 0:
            _threads_saved = torch.get_num_threads()
            if _threads_saved > cap:
                torch.set_num_threads(cap)
        _threads_depth += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_depth -= 1
            if _threads_depth == 0 and torch.get_num_threads() != _threads_saved:
                torch.set_num_threads(_threads_saved)


@contextlib.contextmanager
def _caller_threads(device: torch.device):
    """Inside :func:`_sequential_threads`: run one large dense product (the Gram matrix) with the
    caller's thread count again, where several threads pay off."""
    if device.type != "cpu" or _threads_depth == 0 or torch.get_num_threads() >= _threads_saved:
        yield
        return
    capped = torch.get_num_threads()
    torch.set_num_threads(_threads_saved)
    try:
        yield
    finally:
        torch.set_num_threads(capped)


@dataclass
class KMeansResult:
    """Result of :func:`kmeans` / :func:`kmeans_batched`.

    Attributes:
        centroids: ``[K, D]`` (``[B, K, D]`` batched), float32 (float64 if the input was float64).
        labels: ``[N]`` int64 (``[B, N]`` batched): index of each point's centroid.
        inertia: sum over points of ``weight * |x - centroid|^2``; a float (a ``[B]`` tensor batched).
        n_iter: Lloyd iterations run (batched: the most any item needed).
    """

    centroids: Tensor
    labels: Tensor
    inertia: float | Tensor
    n_iter: int


def kmeans(
    x: Tensor,
    k: int,
    *,
    sample_weight: Tensor | None = None,
    max_iter: int = 300,
    tol: float = 1e-4,
    n_local_trials: int | None = None,
    seed: int = 0,
    method: str = "auto",
    init: str = "auto",
) -> KMeansResult:
    """Cluster the rows of ``x`` (``[N, D]``) into ``k`` clusters.

    Args:
        x: ``[N, D]`` points (any float dtype, any device).
        k: number of clusters, ``1 <= k <= N``.  ``k == N`` returns the points themselves (exact);
            ``k == 1`` the (weighted) mean.
        sample_weight: optional ``[N]`` non-negative weights (positive total).
        max_iter: maximum number of Lloyd iterations.
        tol: relative tolerance on the total squared centre shift, scaled by the mean per-feature
            variance of ``x`` as in scikit-learn.  ``0`` stops only on unchanged labels.
        n_local_trials: k-means++ candidates per seeding step; default ``2 + int(ln k)``.
        seed: seed of the ``torch.Generator`` (on ``x``'s device) used for seeding.
        method: ``"auto"``, ``"gram"`` (kernel-space Lloyd on ``X X^T``) or ``"direct"``.
        init: ``"auto"`` (default: ``"ward"`` when ``k >= N / 2`` and ``N <= GRAM_MAX_N``, else
            ``"k-means++"``), ``"ward"`` (deterministic agglomerative Ward initialisation, ``seed`` is
            not used) or ``"k-means++"`` (greedy k-means++ seeding as in scikit-learn).

    Raises:
        ValueError: bad shape, ``k`` outside ``[1, N]``, non-finite input or bad weights.
    """
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"kmeans expects a 2-D tensor [N, D], got {_shape_of(x)}")
    if sample_weight is not None:
        sample_weight = torch.as_tensor(sample_weight)
        if sample_weight.shape != (x.shape[0],):
            raise ValueError(
                f"sample_weight must have shape [{x.shape[0]}] to match x, got {list(sample_weight.shape)}"
            )
        sample_weight = sample_weight.unsqueeze(0)
    res = kmeans_batched(
        x.unsqueeze(0),
        k,
        sample_weight=sample_weight,
        max_iter=max_iter,
        tol=tol,
        n_local_trials=n_local_trials,
        seed=seed,
        method=method,
        init=init,
    )
    return KMeansResult(res.centroids[0], res.labels[0], float(res.inertia[0]), res.n_iter)


def kmeans_batched(
    x: Tensor,
    k: int,
    *,
    sample_weight: Tensor | None = None,
    max_iter: int = 300,
    tol: float = 1e-4,
    n_local_trials: int | None = None,
    seed: int = 0,
    method: str = "auto",
    init: str = "auto",
) -> KMeansResult:
    """Cluster ``B`` independent point sets of the same shape at once: ``x`` is ``[B, N, D]``.

    Item ``b`` of the result equals ``kmeans(x[b], k, seed=seed, ...)`` (the same random stream is used
    for every item) up to float rounding of batched vs single matrix products.  ``sample_weight`` is
    ``[N]`` (shared) or ``[B, N]``.  Returns centroids ``[B, K, D]``, labels ``[B, N]``, inertia ``[B]``
    (a tensor), and ``n_iter`` the largest iteration count over the batch.  Other arguments as in
    :func:`kmeans`.
    """
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(f"kmeans_batched expects a 3-D tensor [B, N, D], got {_shape_of(x)}")
    B, N, D = x.shape
    k = _as_int_k(k)
    if N == 0 or D == 0 or B == 0:
        raise ValueError(f"cannot cluster an empty tensor of shape {list(x.shape)}")
    if not 1 <= k <= N:
        raise ValueError(f"k must satisfy 1 <= k <= N (number of points = {N}), got k={k}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if n_local_trials is not None and n_local_trials < 1:
        raise ValueError(f"n_local_trials must be >= 1, got {n_local_trials}")
    if method not in ("auto", "gram", "direct"):
        raise ValueError(f"method must be 'auto', 'gram' or 'direct', got {method!r}")
    if init not in ("auto", "ward", "k-means++"):
        raise ValueError(f"init must be 'auto', 'ward' or 'k-means++', got {init!r}")
    if not x.is_floating_point():
        x = x.to(torch.float32)

    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    dev = x.device
    with torch.no_grad(), _sequential_threads(dev):
        X = x.detach().to(dtype).contiguous()
        if not bool(torch.isfinite(X.sum())) and not bool(torch.isfinite(X).all()):  # cheap test first
            raise ValueError("x contains NaN or infinite values")
        w = _check_weights(sample_weight, B, N, dtype, dev)
        return _kmeans_impl(X, k, w, max_iter, tol, n_local_trials, seed, method, init)


# --------------------------------------------------------------------------------------------------
# implementation


def _as_int_k(k) -> int:
    """k as a Python int; accepts Python / numpy / 0-d torch integers, rejects anything else."""
    if isinstance(k, bool):
        raise ValueError(f"k must be an integer number of clusters, got {k!r}")
    if isinstance(k, int):
        return k
    if isinstance(k, Tensor) and k.dim() == 0 and not k.is_floating_point() and not k.is_complex():
        return int(k)
    if hasattr(k, "dtype") and getattr(k.dtype, "kind", "") in "iu" and getattr(k, "ndim", 1) == 0:
        return int(k)  # numpy integer scalar
    raise ValueError(f"k must be an integer number of clusters, got {k!r}")


def _shape_of(x) -> str:
    return f"shape {list(x.shape)}" if isinstance(x, Tensor) else type(x).__name__


def _check_weights(sample_weight, B: int, N: int, dtype, dev) -> Tensor | None:
    if sample_weight is None:
        return None
    w = torch.as_tensor(sample_weight).detach().to(device=dev, dtype=dtype)
    if w.dim() == 1:
        if w.shape[0] != N:
            raise ValueError(f"sample_weight must have shape [{N}] or [{B}, {N}], got {list(w.shape)}")
        w = w.unsqueeze(0).expand(B, N)
    elif w.shape != (B, N):
        raise ValueError(f"sample_weight must have shape [{N}] or [{B}, {N}], got {list(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("sample_weight must be finite and non-negative")
    if bool((w.sum(1) <= 0).any()):
        raise ValueError("sample_weight must have a positive total")
    if bool((w == 1).all()):
        return None  # unweighted fast path
    return w.contiguous()


def _dense_deterministic(device: torch.device) -> bool:
    """Whether to avoid scatter-adds / float cumsums (non-deterministic on CUDA) in favour of dense
    one-hot products and integer cumsums.  True on every non-CPU device."""
    return device.type != "cpu"


def _use_gram(method: str, B: int, N: int, D: int, k: int, X: Tensor) -> bool:
    if method != "auto":
        return method == "gram"
    if N > GRAM_MAX_N or B * N * N * X.element_size() > GRAM_MAX_BYTES:
        return False
    if _dense_deterministic(X.device):
        # Accelerators: both paths are dense matmuls; Gram costs K*N*N + K*N*D per iteration vs 2*K*N*D.
        return N <= D
    # CPU: a scatter-add over G (~N*N, memory bound) vs a K*N*D matmul (~ 8x cheaper per flop).
    return 8 * N <= k * D


def _kmeans_impl(X: Tensor, k: int, w: Tensor | None, max_iter: int, tol: float, n_local_trials, seed: int,
                 method: str, init: str = "auto") -> KMeansResult:
    B, N, D = X.shape
    dev, dtype = X.device, X.dtype

    if k == N:  # every point is its own cluster
        labels = torch.arange(N, device=dev).expand(B, N).contiguous()
        return KMeansResult(X.clone(), labels, torch.zeros(B, dtype=dtype, device=dev), 0)

    # centre the data (weighted mean): reduces float cancellation, does not change the clustering
    if w is None:
        mean = X.mean(1, keepdim=True)
    else:
        mean = (w.unsqueeze(-1) * X).sum(1, keepdim=True) / w.sum(1).view(B, 1, 1)
    Xc = X - mean

    if k == 1:
        labels = torch.zeros(B, N, dtype=torch.long, device=dev)
        C = torch.zeros(B, 1, D, dtype=dtype, device=dev)
        inertia = _inertia(Xc, C, labels, w)
        return KMeansResult(mean.clone(), labels, inertia, 1)

    eng = _Engine(Xc, k, w, use_gram=_use_gram(method, B, N, D, k, X))
    return _cluster(eng, Xc, mean, k, w, max_iter, tol, n_local_trials, seed, init)


def _cluster(eng: "_Engine", Xc: Tensor, mean: Tensor, k: int, w: Tensor | None, max_iter: int, tol: float,
             n_local_trials, seed: int, init: str) -> KMeansResult:
    B, N, D = Xc.shape
    dev = Xc.device
    if init == "auto":
        init = "ward" if 2 * k >= N and N <= GRAM_MAX_N else "k-means++"
    seeds = init_labels = None
    if init == "ward":
        init_labels = eng.ward_labels_all()
    else:
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(seed))
        L = n_local_trials if n_local_trials is not None else 2 + int(math.log(k))
        seeds = eng.seed_plusplus(L, gen)
    tol_b = _tolerance(Xc, tol)
    if eng.use_gram and not eng.cuda_like:
        outs = [eng.lloyd_gram_incremental(b, None if seeds is None else seeds[b], max_iter, float(tol_b[b]),
                                           None if init_labels is None else init_labels[b]) for b in range(B)]
        C = torch.stack([o[0] for o in outs])
        labels = torch.stack([o[1] for o in outs])
        n_iter = max(o[2] for o in outs)
    else:
        C, labels, n_iter = eng.lloyd(seeds, max_iter, tol_b, init_labels)
    inertia = _inertia(Xc, C, labels, w)
    return KMeansResult(C + mean, labels, inertia, n_iter)


def _tolerance(X: Tensor, tol: float) -> Tensor:
    """scikit-learn's tolerance: tol * mean over features of the (unweighted, biased) variance; [B]."""
    if tol == 0:
        return torch.zeros(X.shape[0], dtype=X.dtype, device=X.device)
    B, N, D = X.shape
    mu = X.mean(1)  # var = E[x^2] - E[x]^2 per feature (X is already centred, so this is well conditioned)
    return (X.pow(2).sum((1, 2)) / N - mu.pow(2).sum(1)) / D * tol


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _gram(X: Tensor) -> Tensor:
    """``X X^T`` for ``X`` of shape ``[B, N, D]``: ``[B, N, N]``.  One large product, so it runs with the
    caller's threads; on CPU up to :data:`SYRK_MAX_N` points through BLAS ``syrk``."""
    B, N, D = X.shape
    if X.device.type == "cpu" and N <= SYRK_MAX_N:
        from scipy.linalg.blas import dsyrk, ssyrk  # (here: scipy takes ~0.3 s to import)

        syrk = dsyrk if X.dtype == torch.float64 else ssyrk
        out = []
        # one BLAS thread: these products take 1-6 ms, and OpenBLAS's idle workers would spin for ~0.1 s
        # of CPU after each call, taking a core from whatever runs next
        with _blas_controller().limit(limits=1, user_api="blas"):
            for b in range(B):
                U = syrk(1.0, X[b].numpy().T, trans=1)  # upper triangle of X X^T, zeros below
                G = U + U.T
                np.fill_diagonal(G, np.diagonal(U))
                out.append(torch.from_numpy(G))
        return torch.stack(out)
    with _caller_threads(X.device):
        return torch.bmm(X, X.transpose(1, 2))


def _inertia(Xc: Tensor, C: Tensor, labels: Tensor, w: Tensor | None) -> Tensor:
    B, N, D = Xc.shape
    K = C.shape[1]
    offs = (torch.arange(B, device=Xc.device) * K).view(B, 1)
    assigned = C.reshape(B * K, D).index_select(0, (labels + offs).view(-1)).view(B, N, D)
    d = (Xc - assigned).pow_(2).sum(-1)
    if w is not None:
        d = d * w
    return d.sum(1)


class _Engine:
    """State shared by seeding and Lloyd for one batched call (centred data Xc: [B, N, D])."""

    def __init__(self, Xc: Tensor, k: int, w: Tensor | None, use_gram: bool):
        self.X = Xc
        self.B, self.N, self.D = Xc.shape
        self.k = k
        self.dev, self.dtype = Xc.device, Xc.dtype
        self.cuda_like = _dense_deterministic(Xc.device)  # use only deterministic (no atomics) kernels
        self.w = w  # None: unweighted
        # Lloyd weights: zero weights replaced by a negligible positive one so that a cluster made only
        # of zero-weight points still has a well-defined centroid (their plain mean).
        if w is None:
            self.wl = None
            self.Xw = Xc
        else:
            tiny = w.amax(1, keepdim=True) * 1e-20
            self.wl = torch.where(w > 0, w, tiny)
            self.Xw = Xc * self.wl.unsqueeze(-1)
        self.xn = Xc.pow(2).sum(-1)  # [B, N] squared norms
        self.use_gram = use_gram
        self.G = _gram(Xc) if use_gram else None  # [B, N, N]
        self.boffs_n = (torch.arange(self.B, device=self.dev) * self.N).view(self.B, 1)
        self.boffs_k = (torch.arange(self.B, device=self.dev) * k).view(self.B, 1)

    # ---------------------------------------------------------------- seeding (greedy k-means++)
    def _cdf(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """Cumulative sums of p ([B, M] >= 0) for sampling, and their totals ([B, 1]).

        On accelerators a floating cumsum is not deterministic; quantise to integers (2^-40 of the
        total) whose cumsum is exact.
        """
        if not self.cuda_like:
            cdf = torch.cumsum(p, 1)
            return cdf, cdf[:, -1:]
        tot = p.sum(1, keepdim=True)
        q = (p * (2.0**40 / tot.clamp_min(torch.finfo(p.dtype).tiny))).to(torch.int64)
        cdf = torch.cumsum(q, 1)
        return cdf, cdf[:, -1:]

    def _sample(self, cdf: Tensor, tot: Tensor, u: Tensor) -> Tensor:
        """Indices i with P(i) ~ p_i for uniforms u ([L]); returns [B, L] int64."""
        if cdf.dtype == torch.int64:
            r = (u.to(torch.float64).unsqueeze(0) * tot.to(torch.float64)).to(torch.int64)
        else:
            r = u.to(cdf.dtype).unsqueeze(0) * tot
        r = r.contiguous()
        return torch.searchsorted(cdf, r, right=True).clamp_(max=self.N - 1)

    def seed_plusplus(self, L: int, gen: Tensor) -> Tensor:
        B, N, k = self.B, self.N, self.k
        X, xn, w = self.X, self.xn, self.w
        u = torch.rand(k, L, generator=gen, device=self.dev, dtype=torch.float64)

        if self.use_gram:
            dsq = None
            if B * N * N * X.element_size() <= _DSQ_MAX_BYTES:
                dsq = (xn.unsqueeze(2) + xn.unsqueeze(1)).sub_(self.G, alpha=2).clamp_(min=0)
            Gflat = self.G.view(B * N, N)

            def dist_rows(idx: Tensor) -> Tensor:  # idx [B, M] -> squared distances [B, M, N]
                flat = (idx + self.boffs_n).view(-1)
                if dsq is not None:
                    return dsq.view(B * N, N).index_select(0, flat).view(B, -1, N)
                g = Gflat.index_select(0, flat).view(B, -1, N)
                d = torch.add(torch.gather(xn, 1, idx).unsqueeze(2), g, alpha=-2)
                return d.add_(xn.unsqueeze(1)).clamp_(min=0)
        else:
            Xt = X.transpose(1, 2)

            def dist_rows(idx: Tensor) -> Tensor:
                rows = torch.gather(X, 1, idx.unsqueeze(-1).expand(B, idx.shape[1], self.D))
                d = torch.baddbmm(torch.gather(xn, 1, idx).unsqueeze(2), rows, Xt, alpha=-2)
                return d.add_(xn.unsqueeze(1)).clamp_(min=0)

        # first centre: drawn with probability proportional to the weight
        p0 = torch.ones(B, N, dtype=self.dtype, device=self.dev) if w is None else w
        cdf, tot = self._cdf(p0)
        first = self._sample(cdf, tot, u[0, :1])  # [B, 1]
        seeds = [first]
        closest = dist_rows(first).squeeze(1)  # [B, N]
        ar_l = (torch.arange(B, device=self.dev) * L).view(B, 1)
        for c in range(1, k):
            cdf, tot = self._cdf(closest if w is None else closest * w)
            cand = self._sample(cdf, tot, u[c])  # [B, L]
            dc = dist_rows(cand)  # [B, L, N]
            torch.minimum(dc, closest.unsqueeze(1), out=dc)
            pot = dc.sum(2) if w is None else torch.bmm(dc, w.unsqueeze(2)).squeeze(2)  # [B, L]
            best = pot.argmin(1, keepdim=True)  # [B, 1] (first minimum, like numpy)
            closest = dc.view(B * L, N).index_select(0, (best + ar_l).view(-1))
            seeds.append(torch.gather(cand, 1, best))
        return torch.cat(seeds, 1)  # [B, k]

    # ---------------------------------------------------------------- seeding (agglomerative Ward)
    def ward_labels_all(self) -> Tensor:
        """Ward's agglomerative clustering of every item cut at ``k`` clusters: labels [B, N] in ``0..k-1``.

        Equivalent to greedily merging, ``N - k`` times, the pair of clusters with the smallest increase
        of inertia ``m_a m_b / (m_a + m_b) |c_a - c_b|^2`` (``m``: total weight).  Unweighted CPU items
        with ``N <= WARD_SCIPY_MAX_N`` use scipy's nearest-neighbour-chain ``linkage(..., "ward")`` (C
        code, the whole dendrogram in ``O(N^2)``); otherwise :meth:`_ward_rounds` builds only the low
        part of the dendrogram in torch, one item at a time on CPU and every item at once on
        accelerators.  Deterministic; ``seed`` plays no part.
        """
        if self.dev.type == "cpu":  # one item at a time: the 2-D column writes of one item are cheaper
            return torch.stack([self.ward_labels(b) for b in range(self.B)])
        G = self.G if self.G is not None else _gram(self.X)
        return self._ward_rounds(G, self.wl)  # accelerators: all items in lock step (fewer launches)

    def ward_labels(self, b: int) -> Tensor:
        """:meth:`ward_labels_all` for item ``b`` alone: labels [N]."""
        if self.wl is None and self.dev.type == "cpu" and self.N <= WARD_SCIPY_MAX_N:
            return self._ward_scipy(b)
        G = self._item_gram(b).unsqueeze(0)
        return self._ward_rounds(G, None if self.wl is None else self.wl[b : b + 1])[0]

    def _item_gram(self, b: int) -> Tensor:
        """Gram matrix ``[N, N]`` of item ``b`` (made on demand when the engine works without them)."""
        return self.G[b] if self.G is not None else _gram(self.X[b : b + 1])[0]

    def _ward_scipy(self, b: int) -> Tensor:
        """Item ``b`` by scipy's NN chain (unweighted, CPU), cut at the ``N - k`` lowest merges."""
        from scipy.cluster.hierarchy import linkage
        from scipy.spatial.distance import squareform

        N, k = self.N, self.k
        G = self._item_gram(b)
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

    def _ward_rounds(self, G: Tensor, wl: Tensor | None) -> Tensor:
        """Ward cut at ``k`` for ``B`` items at once (``G``: ``[B, N, N]`` Gram matrices, ``wl``: ``[B, N]``
        masses or None): labels ``[B, N]``.

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
        """
        B, N, dev, dtype, k = G.shape[0], self.N, self.dev, self.dtype, self.k
        need = N - k
        inf = float("inf")
        BN = B * N
        ar_n = torch.arange(N, device=dev)
        m = torch.ones(BN, dtype=dtype, device=dev) if wl is None else wl.reshape(BN).clone()
        sq = G.diagonal(dim1=1, dim2=2)  # [B, N]
        # cost[b, i, j] = m_i m_j / (m_i + m_j) |c_i - c_j|^2 ; +inf on the diagonal and in dead columns
        if wl is None:  # (|c_i|^2 + |c_j|^2) / 2 - c_i . c_j
            half = sq * 0.5
            cost = torch.sub(half.unsqueeze(2), G).add_(half.unsqueeze(1)).clamp_(min=0)
        else:
            cost = (sq.unsqueeze(2) + sq.unsqueeze(1)).sub_(G, alpha=2).clamp_(min=0)
            cost.mul_(wl.unsqueeze(2) * wl.unsqueeze(1) / (wl.unsqueeze(2) + wl.unsqueeze(1)))
        cost.diagonal(dim1=1, dim2=2).fill_(inf)
        rows_of = cost.view(BN, N)  # row of global slot g
        flat = cost.view(-1)
        val, nn = rows_of.min(1)  # first minimum: ties go to the lowest slot
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
            # Lance-Williams rows of the merged clusters (inf in dead columns and on the diagonal follows
            # from the inf there in rows a and b)
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
            rows_of.index_copy_(0, pa, rows)
            # columns: cost[b, r, a] = rows[i, r] for the new clusters, +inf for the dead slots
            if B == 1:  # one strided 2-D copy (cheaper on CPU than flat indices)
                rows_t = rows.T.contiguous()
                cost[0].index_copy_(1, torch.cat([a_loc, b_loc]), torch.cat([rows_t, torch.full_like(rows_t, inf)], 1))
            else:
                col = (item * N * N).unsqueeze(1) + ar_n.unsqueeze(0) * N  # [P, N] flat index of (b, r, 0)
                flat.index_copy_(0, (col + a_loc.unsqueeze(1)).view(-1), rows.view(-1))
                flat.index_fill_(0, (col + b_loc.unsqueeze(1)).view(-1), inf)
            # nearest neighbours: recompute rows that were merged or pointed at a merged slot; any other
            # live row keeps its neighbour unless a new cluster is strictly nearer (only by rounding)
            merged = torch.zeros(BN, dtype=torch.bool, device=dev)
            merged[pa] = True
            merged[pb] = True
            redo = torch.nonzero(alive & (merged | merged.index_select(0, nn))).flatten()
            if redo.numel():
                rv, ri = rows_of.index_select(0, redo).min(1)
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

    # ---------------------------------------------------------------- Lloyd
    def _assign_matrix(self, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Accelerator path: dense normalised assignment A [B, K, N] (deterministic) and counts [B, K]."""
        B, N, k = self.B, self.N, self.k
        vals = (torch.ones(B, N, dtype=self.dtype, device=self.dev) if self.wl is None else self.wl)
        A = torch.zeros(B, k, N, dtype=self.dtype, device=self.dev)
        A.scatter_(1, labels.unsqueeze(1), vals.unsqueeze(1))  # one entry per column: deterministic
        Wk = A.sum(2)
        A.div_(Wk.clamp_min(torch.finfo(self.dtype).tiny).unsqueeze(2))
        return A, Wk

    def centroids(self, labels: Tensor) -> tuple[Tensor, Tensor | None]:
        """Weighted means of the members: C [B, K, D] (and A on accelerators)."""
        B, N, D, k = self.B, self.N, self.D, self.k
        if self.cuda_like:
            A, _ = self._assign_matrix(labels)
            return torch.bmm(A, self.X), A
        flat = (labels + self.boffs_k).view(-1)
        S = torch.zeros(B * k, D, dtype=self.dtype, device=self.dev)
        S.index_put_((flat,), self.Xw.view(B * N, D), accumulate=True)  # deterministic on CPU
        if self.wl is None:
            Wk = torch.bincount(flat, minlength=B * k).to(self.dtype)
        else:
            Wk = torch.zeros(B * k, dtype=self.dtype, device=self.dev).index_put_((flat,), self.wl.reshape(-1), accumulate=True)
        S.div_(Wk.clamp_min(torch.finfo(self.dtype).tiny).unsqueeze(1))
        return S.view(B, k, D), None

    def scores(self, C: Tensor, labels: Tensor | None, A: Tensor | None, seeds: Tensor | None,
               out: Tensor | None) -> Tensor:
        """|c_k|^2 - 2 c_k . x_i for all k, i: [B, K, N] (the argmin over K is the nearest centroid)."""
        B, N, k = self.B, self.N, self.k
        cn = C.pow(2).sum(2).unsqueeze(2)  # [B, K, 1]
        if not self.use_gram:
            return torch.baddbmm(cn, C, self.X.transpose(1, 2), alpha=-2, out=out)
        if seeds is not None:  # centroids are single points: rows of G
            g = self.G.view(B * N, N).index_select(0, (seeds + self.boffs_n).view(-1)).view(B, k, N)
            return g.mul_(-2).add_(cn)
        # accelerator: dense product with the normalised assignment matrix (the CPU Gram path is
        # lloyd_gram_incremental)
        return torch.baddbmm(cn, A, self.G, alpha=-2, out=out)

    def assign(self, score: Tensor) -> Tensor:
        """Nearest centroid for every point, with empty clusters re-seeded; labels [B, N]."""
        mins, labels = score.min(1)
        counts = torch.bincount((labels + self.boffs_k).view(-1), minlength=self.B * self.k).view(self.B, self.k)
        empty = counts == 0
        if bool(empty.any()):
            dist = (mins + self.xn).clamp_(min=0)  # squared distance to the assigned centroid
            for b in torch.nonzero(empty.any(1)).flatten().tolist():
                labels[b] = self._relocate(labels[b], dist[b], empty[b])
        return labels

    def _relocate(self, lab: Tensor, dist: Tensor, empty: Tensor) -> Tensor:
        """Give each empty cluster the farthest point from its centroid, never emptying another one."""
        N, k = self.N, self.k
        empties = torch.nonzero(empty).flatten()  # ascending
        # keep one member (the lowest index) of every non-empty cluster out of reach
        rep = torch.full((k,), N, dtype=torch.long, device=self.dev)
        rep.scatter_reduce_(0, lab, torch.arange(N, device=self.dev), reduce="amin")
        eligible = torch.ones(N, dtype=torch.bool, device=self.dev)
        eligible[rep[rep < N]] = False
        d = torch.where(eligible, dist, torch.full_like(dist, -1.0))
        order = torch.sort(d, descending=True, stable=True).indices[: empties.numel()]
        lab = lab.clone()
        lab[order] = empties
        return lab

    def lloyd(self, seeds: Tensor | None, max_iter: int, tol: Tensor,
              init_labels: Tensor | None = None) -> tuple[Tensor, Tensor, int]:
        """Lloyd from centroids at the points ``seeds`` ([B, K]) or at the means of ``init_labels`` ([B, N])."""
        B, N, D, k = self.B, self.N, self.D, self.k
        buf = None
        if init_labels is None:
            C = torch.gather(self.X, 1, seeds.unsqueeze(-1).expand(B, k, D))
            score = self.scores(C, None, None, seeds, None)
            labels = None
        else:
            C, A = self.centroids(init_labels)
            score = self.scores(C, init_labels, A, None, None)
            labels = init_labels
        done = torch.zeros(B, dtype=torch.bool, device=self.dev)
        strict = torch.zeros(B, dtype=torch.bool, device=self.dev)
        n_iter = 0
        for it in range(max_iter):
            new = self.assign(score)
            if labels is not None and bool(done.any()):
                new = torch.where(done.unsqueeze(1), labels, new)  # finished items stay frozen
            C_new, A = self.centroids(new)
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
            score = self.scores(C, labels, A, None, buf)
            buf = score
        if not bool(strict.all()):
            # final E-step so that labels match the centroids, then M-step so that centroids are the
            # means of their members (never raises the inertia).  Strict items are unchanged by it.
            labels = self.assign(self.scores(C, labels, A, None, buf))
            C, _ = self.centroids(labels)
        return C, labels, n_iter

    # ---------------------------------------------------------------- CPU kernel-space Lloyd
    def lloyd_gram_incremental(self, b: int, seeds: Tensor | None, max_iter: int, tol: float,
                               init_labels: Tensor | None = None) -> tuple[Tensor, Tensor, int]:
        """Lloyd for item ``b`` in kernel space with incremental updates (CPU), from centroids at the
        points ``seeds`` ([K]) or at the means of ``init_labels`` ([N], every cluster non-empty).

        ``S[k] = sum_{j in k} w_j G[j]`` and the scores ``|c_k|^2 - 2 S[k] / W_k`` (kept as ``[N, K]``, so
        that each point's minimum is a contiguous row reduction) are recomputed only for clusters whose
        membership changed, and each point's running (min, argmin) is refreshed from the changed
        clusters only -- except points whose best cluster itself changed, which get a full row minimum.
        This is exact Lloyd: the same labels as a full recomputation (up to rounding).
        """
        N, D, k = self.N, self.D, self.k
        X, G, xn = self.X[b], self.G[b], self.xn[b]
        wl = None if self.wl is None else self.wl[b]
        Gw = G if wl is None else G * wl.unsqueeze(1)
        tiny = torch.finfo(self.dtype).tiny

        def centroids(lab: Tensor) -> tuple[Tensor, Tensor]:
            Xw = X if wl is None else self.Xw[b]
            Cs = torch.zeros(k, D, dtype=self.dtype, device=self.dev).index_put_((lab,), Xw, accumulate=True)
            if wl is None:
                Wk = torch.bincount(lab, minlength=k).to(self.dtype)
            else:
                Wk = torch.zeros(k, dtype=self.dtype, device=self.dev).index_put_((lab,), wl, accumulate=True)
            return Cs.div_(Wk.clamp_min(tiny).unsqueeze(1)), Wk

        def relocate(best_idx: Tensor, best_val: Tensor) -> Tensor:
            counts = torch.bincount(best_idx, minlength=k)
            empty = counts == 0
            if not bool(empty.any()):
                return best_idx
            return self._relocate(best_idx, (best_val + xn).clamp_(min=0), empty)

        def fill(score: Tensor, S: Tensor, cn: Tensor, scale: Tensor) -> None:
            """score [N, K] = cn + scale * S.T (one transposing copy, then in place: no [K, N] temporary)."""
            score.copy_(S.T)
            torch.addcmul(cn.unsqueeze(0), score, scale.unsqueeze(0), out=score)

        S = None
        labels = None
        score = torch.empty(N, k, dtype=self.dtype, device=self.dev)  # [N, K]
        if init_labels is None:
            C = X.index_select(0, seeds)
            fill(score, G.index_select(0, seeds), C.pow(2).sum(1), torch.full((k,), -2.0, dtype=self.dtype, device=self.dev))
        else:
            labels = init_labels
            C, Wk = centroids(labels)
            S = torch.zeros(k, N, dtype=self.dtype, device=self.dev).index_put_((labels,), Gw, accumulate=True)
            fill(score, S, C.pow(2).sum(1), -2.0 / Wk.clamp_min(tiny))
        best_val, best_idx = score.min(1)
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
            if S is None:
                R = None
            else:
                moved = torch.nonzero(new != labels).flatten()
                R = torch.unique(torch.cat([labels[moved], new[moved]]))  # sorted
                if 2 * R.numel() > k:
                    R = None
            labels, C = new, C_new
            cn = C.pow(2).sum(1)
            scale = -2.0 / Wk.clamp_min(tiny)
            if R is None:  # full recomputation
                if S is None:
                    S = torch.zeros(k, N, dtype=self.dtype, device=self.dev)
                else:
                    S.zero_()
                S.index_put_((labels,), Gw, accumulate=True)
                fill(score, S, cn, scale)
                best_val, best_idx = score.min(1)
            else:
                members = torch.nonzero(torch.isin(labels, R)).flatten()
                S.index_fill_(0, R, 0)
                S.index_put_((labels[members],), Gw.index_select(0, members), accumulate=True)
                rows = torch.addcmul(cn[R].unsqueeze(1), S.index_select(0, R), scale[R].unsqueeze(1)).T.contiguous()
                score.index_copy_(1, R, rows)
                sv, si = rows.min(1)
                si = R[si]
                better = (sv < best_val) | ((sv == best_val) & (si < best_idx))
                best_val = torch.where(better, sv, best_val)
                best_idx = torch.where(better, si, best_idx)
                cols = torch.nonzero(torch.isin(best_idx, R) & ~better).flatten()
                if cols.numel():  # their previous best row changed: full column minimum
                    cv, ci = score.index_select(0, cols).min(1)
                    best_val[cols] = cv
                    best_idx[cols] = ci
            if shift <= tol:
                break
        if not strict:
            labels = relocate(best_idx, best_val)
            C, _ = centroids(labels)
        return C, labels, n_iter
