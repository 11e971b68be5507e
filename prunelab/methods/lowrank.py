"""Low-rank query/key fold: each head's score form cut to its best rank, in LayerNorm-normalised coordinates.

A head scores query position x against key position y by ``[x;1]^T Q_h^T K_h [y;1]`` (``Q_h`` = q_proj rows
of the head with their bias, ``K_h`` = k_proj rows; the softmax scale is kept apart). Clustering query
dimensions (``kmeans`` with ``units="foldable"``) keeps this form only where rows coincide. This method
instead keeps the best rank-``k`` approximation of the head's form, which is what matters for scores.

Best in which norm? The projections read LayerNorm outputs ``x = gamma * n + beta``; writing
``[x;1] = T [n;1]`` with ``T = [[diag(gamma), beta], [0, 1]]`` and taking ``n`` isotropic (no data, as
in :mod:`prunelab.methods.predictive`), the expected squared score error is the Frobenius error of
``M = (Q_h T_q)^T (K_h T_k)``. Its truncated SVD ``U S V^T`` gives new rows ``sqrt(S) U^T T_q^-1`` (queries,
with bias) and ``sqrt(S) V^T T_k^-1`` (keys). The keys' constant coordinate only adds a per-query constant
to every score, which softmax ignores, so it is dropped before the SVD and the new k_proj has no bias.
At ``k = head_dim`` the fold is exact.

Measured on the tune clips (Whisper-base, see benchmarks/WER_STUDY.md): decoder self-attention at half
of each head's width costs +3 WER points for 2.2 % of the parameters; spread over the six layers by
``allocate="auto"`` instead, nothing (tune 14.8 vs 15.4 %; 48 fresh test clips 19.1 vs 19.5 %, round 6). Past
half width it costs more than 3 points even so, and the other attentions break at half width. Value
dimensions are close to full rank, so the analogous value fold is not offered.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..errors import PlanError
from ..groups import FoldedUnit, UnitContext
from .registry import register_method


def _affine(gamma: Tensor | None, beta: Tensor | None, d: int) -> Tensor:
    """T [D+1, D+1] with [x; 1] = T [n; 1] for x = gamma * n + beta (identity when there is no LayerNorm)."""
    t = torch.eye(d + 1, dtype=torch.float64)
    if gamma is not None:
        t[:d, :d] = torch.diag(gamma.double())
    if beta is not None:
        t[:d, d] = beta.double()
    return t


@register_method("lowrank-qk", folds=True, label="Low-rank query/key per head (data-free)",
                 help="attention query/key dims: each head's score form cut to its best rank in LayerNorm-normalised "
                      "coordinates; q_proj and k_proj shrink, the softmax scale is kept (data-free)")
@torch.no_grad()
def lowrank_query_key(weight: Tensor, bias: Tensor | None, k: int, *, context: UnitContext, seed: int = 0,
                      max_iter: int = 100) -> FoldedUnit:
    """q_proj ``weight`` [H*hd, D] (+ ``bias``) and k_proj (``context.partner_weight`` [H*hd, D]) -> each head's
    best rank-(k/H) form: q_proj [k, D] with bias, k_proj [k, D] without bias (see the module doc)."""
    if context.unit != "qk-dim" or not context.heads:
        raise PlanError("lowrank-qk compresses attention query/key dims (q layers) only; choose an attention-qk preset.")
    heads, d = context.heads, weight.shape[1]
    hd, kq = weight.shape[0] // heads, k // heads
    if kq * heads != k:
        raise PlanError(f"lowrank-qk needs the same width in every head: {k} is not a multiple of {heads}.")
    tq = _affine(context.ln_weight, context.ln_bias, d)
    kg = context.partner_ln_weight if context.partner_ln_weight is not None else context.ln_weight
    kb = context.partner_ln_bias if context.partner_ln_weight is not None else context.ln_bias
    tk = _affine(kg, kb, d)
    zeros = torch.zeros(weight.shape[0], 1, dtype=torch.float64)
    q_rows = torch.cat([weight.double(), zeros if bias is None else bias.double()[:, None]], 1)
    k_rows = torch.cat([context.partner_weight.double(), zeros], 1)  # the key bias is softmax-invariant
    new_q, new_k, lost = [], [], 0.0
    for h in range(heads):
        rows = slice(h * hd, (h + 1) * hd)
        form = (q_rows[rows] @ tq).T @ (k_rows[rows] @ tk)[:, :d]  # [D+1, D]
        u, s, vh = torch.linalg.svd(form, full_matrices=False)
        root = s[:kq].sqrt()
        new_q.append((u[:, :kq] * root).T @ torch.linalg.inv(tq))  # [kq, D+1]
        k_eff = torch.cat([root[:, None] * vh[:kq], torch.zeros(kq, 1, dtype=torch.float64)], 1)
        new_k.append((k_eff @ torch.linalg.inv(tk))[:, :d])
        lost += float((s[kq:] ** 2).sum())
    q2, k2 = torch.cat(new_q), torch.cat(new_k)
    dtype = weight.dtype
    return FoldedUnit(q2[:, :d].to(dtype).contiguous(), None if bias is None else q2[:, d].to(dtype).contiguous(),
                      k2.to(dtype).contiguous(), None, lost)
