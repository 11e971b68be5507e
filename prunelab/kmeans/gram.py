"""Gram matrices ``G = X X^T``: the kernel space in which k-means on weight rows is cheap.

In compression ``N`` (channels, 384..5120) is comparable to or smaller than ``D`` and ``K`` is a large
fraction of ``N``.  ``method="auto"`` then works in *kernel space*: the Gram matrix ``G = X X^T``
(``[N, N]``) is computed once; k-means++ candidate distances become row look-ups of
``|x_i|^2 + |x_j|^2 - 2 G_ij`` (:mod:`.seeding`); and since a centroid is a weighted mean of its
members, ``C X^T = A G`` with ``A`` the normalised ``[K, N]`` assignment matrix, which is a row
scatter-add of ``G`` in ``O(N^2)`` instead of an ``O(N K D)`` matrix product (:mod:`.lloyd`).  Ward's
costs are read off ``G`` as well (:mod:`.ward`).

On CPU every Gram matrix is a torch product (torch releases the GIL while it multiplies; scipy's BLAS
``syrk``, used here before, did not, so while one layer's Gram was computed the other layer compressed side by
side (:mod:`prunelab.compression.parallel`) could not run a line of Python: medium-shaped uniform 20 %, 336
``syrk`` calls of ~17 ms).  Up to :data:`SMALL_GRAM_MAX_N` points the product runs on the calling thread's
torch threads as :func:`sequential_threads` leaves them (one), so a layer gets the same bits whether it is
compressed alone or beside another (MKL splits long reductions differently on two threads); larger ones with
the caller's threads.  On one thread only the upper block triangle is multiplied and the rest mirrored
(:func:`_blocked_gram`), else one plain product.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .threads import caller_threads

#: On CPU, Gram matrices up to this N are computed on the thread count :func:`sequential_threads` leaves
#: (one), the same alone or beside another layer; larger ones with the caller's threads.  Measured on one
#: thread against the ``syrk`` used before, Whisper-medium shapes: 1024 x 1025 13 vs 17 ms, 1024 x 4097 51 vs
#: 53 ms; partitions of 11 of its 336 N = 1024 layers changed by rounding (inertia 36124.4215 / 36124.4223).
SMALL_GRAM_MAX_N = 1024

#: Row-block height of :func:`_blocked_gram`.  At 4096 x 1025 (medium's fc1) on one thread: 155-195 ms
#: against 255 ms for the plain product, and bit-for-bit the same matrix (MKL, AVX-512; 128-row blocks
#: were not: their products differ in the last bit).
GRAM_BLOCK = 256


#: :func:`row_sq_norms` squares this many rows at a time (CPU) through one small buffer.
SQ_NORM_ROWS = 256


def row_sq_norms(X: Tensor) -> Tensor:
    """``|x|^2`` of every row of ``X`` ``[..., D]``: ``[...]``, bit for bit ``X.pow(2).sum(-1)``.

    On CPU the squares go through one ``[256, D]`` buffer instead of a fresh ``X``-sized temporary (each row is
    the same one reduction either way): the squared norms of points and centroids were 4.4 s of a 52 s
    one-thread k-means of Whisper-medium's 384 layers, mostly page faults on those temporaries."""
    if X.device.type != "cpu" or X.dim() < 2 or X.requires_grad:
        return X.pow(2).sum(-1)
    flat = X.reshape(-1, X.shape[-1])
    M, D = flat.shape
    out = torch.empty(M, dtype=X.dtype)
    buf = torch.empty(min(M, SQ_NORM_ROWS), D, dtype=X.dtype)
    for s in range(0, M, SQ_NORM_ROWS):
        e = min(s + SQ_NORM_ROWS, M)
        rows = flat[s:e]
        torch.sum(torch.mul(rows, rows, out=buf[: e - s]), -1, out=out[s:e])
    return out.view(X.shape[:-1])


def gram(X: Tensor, out: Tensor | None = None) -> Tensor:
    """``X X^T`` for ``X`` of shape ``[B, N, D]``: ``[B, N, N]``, same dtype, written into ``out`` (a ``[B, N, N]``
    tensor) when given.  Up to :data:`SMALL_GRAM_MAX_N` points on CPU with the current torch threads (one inside
    a k-means call), above it with the caller's (see the module doc)."""
    N = X.shape[1]
    if X.device.type == "cpu" and N <= SMALL_GRAM_MAX_N:
        return _cpu_gram(X, out)
    with caller_threads(X.device):
        return _cpu_gram(X, out) if X.device.type == "cpu" else torch.bmm(X, X.transpose(1, 2), out=out)


def _cpu_gram(X: Tensor, out: Tensor | None) -> Tensor:
    """:func:`gram` on CPU with torch's current thread count: blocked on one thread (above one block), else ``bmm``."""
    B, N, _ = X.shape
    if torch.get_num_threads() == 1 and N > GRAM_BLOCK:
        out = torch.empty(B, N, N, dtype=X.dtype) if out is None else out
        for b in range(B):
            _blocked_gram(X[b], out[b])
        return out
    return torch.bmm(X, X.transpose(1, 2), out=out)


def _blocked_gram(X: Tensor, out: Tensor) -> None:
    """``X X^T`` for one item ``X`` ``[N, D]`` into ``out`` ``[N, N]``, by rows of :data:`GRAM_BLOCK`: each
    row block is one product over the columns from its diagonal block on (a bit more than half the flops
    of the full product), then the strip below its diagonal block is copied from the transposed strip
    to its right.  Measured on one thread only (with two, a blocked product was not faster than ``bmm``)."""
    N, bs = X.shape[0], GRAM_BLOCK
    for i in range(0, N, bs):
        torch.mm(X[i : i + bs], X[i:].T, out=out[i : i + bs, i:])
    for i in range(0, N - bs, bs):
        out[i + bs :, i : i + bs].copy_(out[i : i + bs, i + bs :].T)
