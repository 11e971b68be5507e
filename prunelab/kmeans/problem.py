"""One batched clustering problem, the state that seeding, Ward and Lloyd share.

:class:`Problem` holds the centred points of ``B`` items (``[B, N, D]``), the number of clusters
``K``, the weights, the squared norms and (in kernel space) the Gram matrices, plus the per-item
offsets that turn ``[B, N]`` / ``[B, K]`` indices into flat ones.  It is built once per call by
:func:`prunelab.kmeans.api.kmeans_batched` and only read afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .gram import gram, row_sq_norms
from .workspace import buffer


def dense_deterministic(device: torch.device) -> bool:
    """Whether to avoid scatter-adds / float cumsums (non-deterministic on CUDA) in favour of dense
    one-hot products and integer cumsums.  True on every non-CPU device."""
    return device.type != "cpu"


def _gram(Xc: Tensor) -> Tensor:
    """The Gram matrices ``[B, N, N]`` of a problem, in this thread's reusable buffer."""
    B, N, _ = Xc.shape
    return gram(Xc, out=buffer("gram", B * N * N, Xc.dtype, Xc.device).view(B, N, N))


@dataclass(eq=False)
class Problem:
    """Centred points and everything derived from them once (build with :meth:`build`).

    Attributes:
        X: ``[B, N, D]`` centred points (float32 or float64).
        k: number of clusters ``K``.
        w: ``[B, N]`` sample weights, or None (unweighted).
        wl: ``[B, N]`` Lloyd masses (``w`` with zeros replaced by a negligible positive weight, so that a
            cluster made only of zero-weight points still has a well-defined centroid: their plain
            mean), or None (unweighted).
        Xw: ``[B, N, D]`` ``X * wl`` (``X`` itself when unweighted).
        xn: ``[B, N]`` squared norms ``|x_i|^2``.
        G: ``[B, N, N]`` Gram matrices ``X X^T`` when ``use_gram``, else None.
        use_gram: work in kernel space (see :mod:`.gram`).
        dense: use only deterministic dense kernels (see :func:`dense_deterministic`).
        boffs_n: ``[B, 1]`` ``b * N``: flat row offset of item ``b`` in ``[B * N, ...]`` views.
        boffs_k: ``[B, 1]`` ``b * K``: flat offset of item ``b``'s clusters.

    :meth:`scratch` lends one work buffer that the phases take in turn (Ward's ``[N, N]`` cost matrix,
    then Lloyd's ``[N, K]`` scores): a fresh 64 MB tensor (N = 4096) is new memory from the OS, and
    its first touch (page faults) took 35-40 ms of the ~55 ms that filling it took, on 1 thread. It and
    the Gram matrix come from :func:`prunelab.kmeans.workspace.buffer`, so a caller that compresses
    many layers in one thread can keep them from call to call (:func:`~prunelab.kmeans.workspace.reuse_buffers`).
    """

    X: Tensor
    k: int
    w: Tensor | None
    wl: Tensor | None
    Xw: Tensor
    xn: Tensor
    G: Tensor | None
    use_gram: bool
    dense: bool
    boffs_n: Tensor
    boffs_k: Tensor
    _scratch: Tensor | None = field(default=None, repr=False)

    @classmethod
    def build(cls, Xc: Tensor, k: int, w: Tensor | None, *, use_gram: bool, dense: bool | None = None) -> Problem:
        """From centred points ``Xc`` ``[B, N, D]`` and weights ``w`` ``[B, N]`` (or None); ``dense``
        defaults to :func:`dense_deterministic` of ``Xc``'s device."""
        B, N, _ = Xc.shape
        dev = Xc.device
        if w is None:
            wl, Xw = None, Xc
        else:
            tiny = w.amax(1, keepdim=True) * 1e-20
            wl = torch.where(w > 0, w, tiny)
            Xw = Xc * wl.unsqueeze(-1)
        return cls(
            X=Xc,
            k=k,
            w=w,
            wl=wl,
            Xw=Xw,
            xn=row_sq_norms(Xc),
            G=_gram(Xc) if use_gram else None,
            use_gram=use_gram,
            dense=dense_deterministic(dev) if dense is None else dense,
            boffs_n=(torch.arange(B, device=dev) * N).view(B, 1),
            boffs_k=(torch.arange(B, device=dev) * k).view(B, 1),
        )

    @property
    def B(self) -> int:
        return self.X.shape[0]

    @property
    def N(self) -> int:
        return self.X.shape[1]

    @property
    def D(self) -> int:
        return self.X.shape[2]

    @property
    def dev(self) -> torch.device:
        return self.X.device

    @property
    def dtype(self) -> torch.dtype:
        return self.X.dtype

    def scratch(self, numel: int) -> Tensor:
        """A flat work buffer of ``numel`` elements (``dtype``, ``dev``), reused by every caller of this
        problem: its content is undefined, and only one phase may hold it at a time."""
        if self._scratch is None or self._scratch.numel() < numel:
            self._scratch = buffer("scratch", numel, self.dtype, self.dev)
        return self._scratch[:numel]

    def item_gram(self, b: int) -> Tensor:
        """Gram matrix ``[N, N]`` of item ``b`` (made on demand when the problem works without them)."""
        return self.G[b] if self.G is not None else gram(self.X[b : b + 1])[0]
