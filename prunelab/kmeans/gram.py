"""Gram matrices ``G = X X^T``: the kernel space in which k-means on weight rows is cheap.

In compression ``N`` (channels, 384..5120) is comparable to or smaller than ``D`` and ``K`` is a large
fraction of ``N``.  ``method="auto"`` then works in *kernel space*: the Gram matrix ``G = X X^T``
(``[N, N]``) is computed once; k-means++ candidate distances become row look-ups of
``|x_i|^2 + |x_j|^2 - 2 G_ij`` (:mod:`.seeding`); and since a centroid is a weighted mean of its
members, ``C X^T = A G`` with ``A`` the normalised ``[K, N]`` assignment matrix, which is a row
scatter-add of ``G`` in ``O(N^2)`` instead of an ``O(N K D)`` matrix product (:mod:`.lloyd`).  Ward's
costs are read off ``G`` as well (:mod:`.ward`).

On CPU small Gram matrices come from BLAS ``syrk`` (half the flops of a product, then a mirror copy),
run with one BLAS thread; larger ones from a product with the caller's torch threads: on one thread
(two layers compressed side by side, :mod:`prunelab.compression.parallel`) only the upper block
triangle is multiplied and the rest mirrored (:func:`_blocked_gram`), else one plain product.  The mirror
is done in torch on the column-major result (measured at N = 1024: 1.9 ms, against 5.5 ms for numpy's
``U + U.T`` and another 5 ms for stacking a single item).
scipy (for ``syrk``) and threadpoolctl are imported only here, when first needed: importing scipy
takes ~0.3 s, which ``import prunelab`` should not pay.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .threads import caller_threads

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

#: On CPU, Gram matrices up to this N come from BLAS ``syrk`` (half the flops of a product, then a
#: mirror copy); above it the mirror copy costs more than it saves and a plain product is used.
SYRK_MAX_N = 1024

#: Row-block height of :func:`_blocked_gram`.  At 4096 x 1025 (medium's fc1) on one thread: 155-195 ms
#: against 255 ms for the plain product, and bit-for-bit the same matrix (MKL, AVX-512; 128-row blocks
#: were not: their products differ in the last bit).
GRAM_BLOCK = 256


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    """One controller for the process, built on first use (building one scans the loaded shared libraries)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def uses_syrk(X: Tensor) -> bool:
    """Whether :func:`gram` takes BLAS ``syrk`` for ``X`` ``[B, N, D]`` (and makes its own result)."""
    return X.device.type == "cpu" and X.shape[1] <= SYRK_MAX_N


def gram(X: Tensor, out: Tensor | None = None) -> Tensor:
    """``X X^T`` for ``X`` of shape ``[B, N, D]``: ``[B, N, N]``, same dtype.  One large product, so it
    runs with the caller's threads; on CPU up to :data:`SYRK_MAX_N` points through BLAS ``syrk``.
    ``out``: a ``[B, N, N]`` tensor to write the product into (not used where :func:`uses_syrk`)."""
    B, N, D = X.shape
    if uses_syrk(X):
        from scipy.linalg.blas import dsyrk, ssyrk  # (here: scipy takes ~0.3 s to import)

        syrk = dsyrk if X.dtype == torch.float64 else ssyrk
        out = []
        # one BLAS thread: these products take 1-6 ms, and OpenBLAS's idle workers would spin for ~0.1 s
        # of CPU after each call, taking a core from whatever runs next
        with _blas_controller().limit(limits=1, user_api="blas"):
            for b in range(B):
                U = torch.from_numpy(syrk(1.0, X[b].numpy().T, trans=1))  # upper triangle, zeros below
                G = U.contiguous()  # (syrk's result is column-major)
                G.add_(U.T)  # mirror; then the diagonal, which was added twice
                G.diagonal().copy_(U.diagonal())
                out.append(G)
        return out[0].unsqueeze(0) if B == 1 else torch.stack(out)
    with caller_threads(X.device):
        if X.device.type == "cpu" and torch.get_num_threads() == 1 and N > GRAM_BLOCK:
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
