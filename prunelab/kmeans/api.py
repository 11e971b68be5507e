"""The public entry points :func:`kmeans` and :func:`kmeans_batched`: check the arguments, pick the
strategies, compose them.

The algorithm follows scikit-learn's ``KMeans(init="k-means++", n_init=1, algorithm="lloyd")``
(:mod:`.seeding`, :mod:`.lloyd`), with two differences that can only lower the inertia for the same
seeding: the final M-step after a non-strict stop, and zero-weight points still belong to a cluster
(see :mod:`.lloyd`).  A call composes three choices, each resolved here from its ``"auto"`` setting:

* ``method``: kernel space (``"gram"``, :mod:`.gram`) or the plain ``X C^T`` product (``"direct"``);
  both give the same result up to float rounding.  ``"auto"`` takes kernel space while the Gram
  matrices fit (:data:`GRAM_MAX_BYTES`, :data:`GRAM_MAX_N`) and it is cheaper: on accelerators when
  ``N <= D`` (both paths are dense matmuls; Gram costs ``K N^2 + K N D`` per iteration vs ``2 K N D``);
  on CPU when ``8 N <= K D`` (a scatter-add over ``G``, ~``N^2`` and memory bound, vs a ``K N D``
  matmul, ~8x cheaper per flop).
* ``init``: Ward (:mod:`.ward`) when ``K >= N / 2`` and ``N <= GRAM_MAX_N`` (every compression from 0
  to 50% sparsity), else greedy k-means++ (:mod:`.seeding`).
* Lloyd: incremental in kernel space on CPU, else batched (:mod:`.lloyd`).

Determinism.  All randomness comes from a ``torch.Generator`` seeded with ``seed`` on ``x``'s device,
and only deterministic kernels are used: on CUDA the scatter-adds are replaced by one-hot matrix
products and the seeding CDF is an integer cumsum, so the same call gives the same labels on the
same device.  Results on CPU and on CUDA need not be identical.

Precision.  Work is done in float32 (float64 if ``x`` is float64) on ``x``'s device; ``x`` is centred
(column mean subtracted) first to reduce cancellation in ``|x|^2 + |c|^2 - 2 x.c``; the returned
inertia is computed directly from the explicit centroids.

Threads.  On CPU the whole call runs with at most ``threads.SEQUENTIAL_THREADS`` (1) torch threads,
the Gram product with the caller's (:mod:`.threads` says why).

Errors.  Bad arguments a user can pass (shapes, ``k``, weights, option names, non-finite points)
raise :class:`prunelab.errors.PlanError` (a ``ValueError``) with a message that says what was given
and what is allowed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import PlanError
from .lloyd import lloyd_batched, lloyd_incremental, tolerance
from .problem import Problem, dense_deterministic
from .seeding import kmeanspp_seeds
from .threads import sequential_threads
from .ward import ward_labels

__all__ = ["KMeansResult", "kmeans", "kmeans_batched"]

#: ``method="auto"`` uses the Gram path only while the Gram matrices (and the seeding distance
#: table) stay below this many bytes and N below :data:`GRAM_MAX_N`.
GRAM_MAX_BYTES = 2 * 1024**3
GRAM_MAX_N = 16384

METHODS = ("auto", "gram", "direct")
INITS = ("auto", "ward", "k-means++")


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
        PlanError: (a ``ValueError``) bad shape, ``k`` outside ``[1, N]``, non-finite input, bad
            weights or an unknown option.
    """
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise PlanError(f"kmeans clusters the rows of a 2-D tensor [N, D] (N points, D features); got {_shape_of(x)}")
    if sample_weight is not None:
        sample_weight = torch.as_tensor(sample_weight)
        if sample_weight.shape != (x.shape[0],):
            raise PlanError(f"sample_weight must hold one weight per point: shape [{x.shape[0]}] to match the "
                            f"{x.shape[0]} rows of x; got shape {list(sample_weight.shape)}")
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
    (a tensor), and ``n_iter`` the largest iteration count over the batch.  Other arguments and
    errors as in :func:`kmeans`.
    """
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise PlanError(f"kmeans_batched clusters a 3-D tensor [B, N, D] (B sets of N points, D features); "
                        f"got {_shape_of(x)}")
    B, N, D = x.shape
    k = _as_int_k(k)
    _check_options(x, k, max_iter, tol, n_local_trials, method, init)
    if not x.is_floating_point():
        x = x.to(torch.float32)

    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    dev = x.device
    with torch.no_grad(), sequential_threads(dev):
        X = x.detach().to(dtype).contiguous()
        if not bool(torch.isfinite(X.sum())) and not bool(torch.isfinite(X).all()):  # cheap test first
            bad = int((~torch.isfinite(X)).sum())
            raise PlanError(f"x contains {bad} NaN or infinite value(s) (of {X.numel()}); k-means needs finite points")
        w = _check_weights(sample_weight, B, N, dtype, dev)
        return _solve(X, k, w, max_iter, tol, n_local_trials, seed, method, init)


# -------------------------------------------------------------------------------- composition


def _solve(X: Tensor, k: int, w: Tensor | None, max_iter: int, tol: float, n_local_trials: int | None,
           seed: int, method: str, init: str) -> KMeansResult:
    """Checked arguments (``X``: ``[B, N, D]`` float32/64, ``w``: ``[B, N]`` or None) -> the result."""
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
        return KMeansResult(mean.clone(), labels, _inertia(Xc, C, labels, w), 1)

    dense = dense_deterministic(dev)
    p = Problem.build(Xc, k, w, use_gram=_use_gram(method, B, N, D, k, X, dense), dense=dense)
    # 1. initialisation: a partition (Ward) or K points (k-means++)
    seeds = init_labels = None
    if _resolve_init(init, N, k) == "ward":
        init_labels = ward_labels(p)
    else:
        seeds = kmeanspp_seeds(p, seed, n_local_trials)
    # 2. Lloyd
    lloyd = lloyd_incremental if p.use_gram and not p.dense else lloyd_batched
    C, labels, n_iter = lloyd(p, max_iter, tolerance(Xc, tol, p.xn), seeds=seeds, init_labels=init_labels)
    return KMeansResult(C + mean, labels, _inertia(Xc, C, labels, w), n_iter)


def _use_gram(method: str, B: int, N: int, D: int, k: int, X: Tensor, dense: bool) -> bool:
    """Resolve ``method`` to kernel space (True) or the direct product (False); see the module docstring."""
    if method != "auto":
        return method == "gram"
    if N > GRAM_MAX_N or B * N * N * X.element_size() > GRAM_MAX_BYTES:
        return False
    if dense:
        # Accelerators: both paths are dense matmuls; Gram costs K*N*N + K*N*D per iteration vs 2*K*N*D.
        return N <= D
    # CPU: a scatter-add over G (~N*N, memory bound) vs a K*N*D matmul (~ 8x cheaper per flop).
    return 8 * N <= k * D


def _resolve_init(init: str, N: int, k: int) -> str:
    """``"auto"`` -> ``"ward"`` for ``k >= N / 2`` (and ``N <= GRAM_MAX_N``), else ``"k-means++"``."""
    if init == "auto":
        return "ward" if 2 * k >= N and N <= GRAM_MAX_N else "k-means++"
    return init


#: On CPU :func:`_inertia` takes the points this many at a time through one small buffer: two fresh
#: ``[N, D]`` temporaries cost page faults (medium's fc1, 4096 x 1025, one thread: 9-16 ms, 4.5-6 ms in
#: blocks, the same sum bit for bit: each point's squared distance is one row reduction either way).
INERTIA_ROWS = 256


def _inertia(Xc: Tensor, C: Tensor, labels: Tensor, w: Tensor | None) -> Tensor:
    """``sum_i w_i |x_i - c_{label_i}|^2`` per item: ``[B]`` (``Xc`` ``[B, N, D]``, ``C`` ``[B, K, D]``)."""
    B, N, D = Xc.shape
    K = C.shape[1]
    offs = (torch.arange(B, device=Xc.device) * K).view(B, 1)
    flat = (labels + offs).view(-1)
    if Xc.device.type == "cpu":
        d = _squared_distances(Xc.reshape(B * N, D), C.reshape(B * K, D), flat).view(B, N)
    else:  # accelerators: whole tensors (fewer launches)
        d = (Xc - C.reshape(B * K, D).index_select(0, flat).view(B, N, D)).pow_(2).sum(-1)
    if w is not None:
        d = d * w
    return d.sum(1)


def _squared_distances(X: Tensor, C: Tensor, idx: Tensor) -> Tensor:
    """``|X[i] - C[idx[i]]|^2`` for every row ``i`` of ``X`` ``[M, D]`` (``C``: ``[K, D]``, ``idx``: ``[M]``):
    ``[M]``, :data:`INERTIA_ROWS` rows at a time through one reused buffer."""
    M, D = X.shape
    d = torch.empty(M, dtype=X.dtype)
    buf = torch.empty(min(M, INERTIA_ROWS), D, dtype=X.dtype)
    for s in range(0, M, INERTIA_ROWS):
        e = min(s + INERTIA_ROWS, M)
        diff = torch.index_select(C, 0, idx[s:e], out=buf[: e - s])
        torch.sub(X[s:e], diff, out=diff).pow_(2)
        torch.sum(diff, 1, out=d[s:e])
    return d


# -------------------------------------------------------------------------------- argument checks


def _as_int_k(k: object) -> int:
    """k as a Python int; accepts Python / numpy / 0-d torch integers, rejects anything else."""
    if isinstance(k, bool):
        raise PlanError(f"k must be a whole number of clusters (an int), got the bool {k!r}")
    if isinstance(k, int):
        return k
    if isinstance(k, Tensor) and k.dim() == 0 and not k.is_floating_point() and not k.is_complex():
        return int(k)
    if hasattr(k, "dtype") and getattr(k.dtype, "kind", "") in "iu" and getattr(k, "ndim", 1) == 0:
        return int(k)  # numpy integer scalar
    raise PlanError(f"k must be a whole number of clusters (an int), got {k!r} ({type(k).__name__})")


def _check_options(x: Tensor, k: int, max_iter: int, tol: float, n_local_trials: int | None, method: str,
                   init: str) -> None:
    """The checks of everything but the values of ``x`` and the weights (``x``: ``[B, N, D]``)."""
    B, N, D = x.shape
    if N == 0 or D == 0 or B == 0:
        items = f" in each of {B} item(s)" if B != 1 else ""
        raise PlanError(f"cannot cluster an empty point set: x has {N} point(s) of {D} feature(s){items}; "
                        "k-means needs at least one point with at least one feature")
    if not 1 <= k <= N:
        raise PlanError(f"k (the number of clusters) must be between 1 and the number of points, {N}; got k={k}")
    if max_iter < 1:
        raise PlanError(f"max_iter (the most Lloyd iterations) must be >= 1, got {max_iter}")
    if tol < 0:
        raise PlanError(f"tol must be >= 0 (0: stop only when the labels stop changing), got {tol}")
    if n_local_trials is not None and n_local_trials < 1:
        raise PlanError(f"n_local_trials (k-means++ candidates per step) must be >= 1, or None for "
                        f"2 + int(ln k); got {n_local_trials}")
    if method not in METHODS:
        raise PlanError(f"unknown k-means method {method!r}: use one of {', '.join(map(repr, METHODS))}")
    if init not in INITS:
        raise PlanError(f"unknown k-means init {init!r}: use one of {', '.join(map(repr, INITS))}")


def _shape_of(x: object) -> str:
    return f"a tensor of shape {list(x.shape)}" if isinstance(x, Tensor) else f"a {type(x).__name__}"


def _check_weights(sample_weight: Tensor | None, B: int, N: int, dtype: torch.dtype,
                   dev: torch.device) -> Tensor | None:
    """Weights as ``[B, N]`` of ``dtype`` on ``dev``, or None when absent or all 1 (the unweighted path)."""
    if sample_weight is None:
        return None
    w = torch.as_tensor(sample_weight).detach().to(device=dev, dtype=dtype)
    if w.dim() == 1:
        if w.shape[0] != N:
            raise PlanError(_weight_shape_message(w, B, N))
        w = w.unsqueeze(0).expand(B, N)
    elif w.shape != (B, N):
        raise PlanError(_weight_shape_message(w, B, N))
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        n_bad, n_neg = int((~torch.isfinite(w)).sum()), int((w < 0).sum())
        raise PlanError(f"sample_weight must be finite and >= 0; got {n_neg} negative and {n_bad} NaN or "
                        "infinite weight(s)")
    if bool((w.sum(1) <= 0).any()):
        items = torch.nonzero(w.sum(1) <= 0).flatten().tolist()
        where = f" (item(s) {items})" if B > 1 else ""
        raise PlanError(f"sample_weight must have a positive total{where}: every weight is 0")
    if bool((w == 1).all()):
        return None  # unweighted fast path
    return w.contiguous()


def _weight_shape_message(w: Tensor, B: int, N: int) -> str:
    return (f"sample_weight must have shape [{N}] (one weight per point, shared by the batch) or [{B}, {N}] "
            f"(one row per item); got shape {list(w.shape)}")
