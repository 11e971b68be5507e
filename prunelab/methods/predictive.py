"""Predictive folding of FFN neurons under a per-layer Gaussian stand-in: data-free compensation.

The paper's k-means replaces a neuron by the centroid of its cluster. On Whisper-base, FFN neurons are
far apart (nearly orthogonal rows), so a centroid is a poor stand-in for any member, and dropping the
neurons of smallest norm (structured magnitude) is worse still. This method asks instead: what does the
rest of the layer *predict* about a removed neuron's activation, and how much output is lost?

Model (no data, weights only). The FFN reads a LayerNorm output ``x = gamma * n + beta``. Assume the
normalised ``n ~ N(0, I)`` (the DFQ assumption, Nagel et al. 2019). Then fc1's pre-activation
``z_i = (w_i * gamma) . n + (w_i . beta + b_i)`` is Gaussian with mean ``w_i . beta + b_i``, standard
deviation ``||w_i * gamma||`` and correlations ``cos(w_i * gamma, w_j * gamma)``. Activations
``g_i = GELU(z_i)`` are sampled from this model (Monte-Carlo, ``n_samples`` draws, seeded) to get their
means, variances and covariances.

Fold. Each removed neuron i is replaced by its best affine prediction from ONE kept neuron j,
``g_i ~ alpha_ij g_j + c_ij`` with ``alpha_ij = Cov(g_i, g_j) / Var(g_j)``: fc2's column j gains
``alpha_ij a_i`` and fc2's bias gains ``a_i c_ij`` (a_i = fc2 column i). The expected squared output
error of removing i is ``||a_i||^2 Var(g_i) (1 - rho_ij^2)``, so neurons are removed by backward
elimination in ``rounds`` batches, each removing those of least current cost. With ``rho = 0`` this is
"drop + mean compensation" (Nagel et al.'s bias correction); with unit correlation it is Neuron
Merging's scale-aware merge (Kim et al. 2020). fc1 keeps its surviving rows unchanged.

Measured (tune clips only, Whisper-base, 6 encoder fc1 layers; see benchmarks/WER_STUDY.md): the
expected-output-energy criterion and the compensation both matter; the stand-in is crude (real speech
activations are not Gaussian), so the method narrows but does not close the gap to the original.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import PlanError
from ..groups import FoldedUnit, UnitContext
from .registry import register_method


def gaussian_preactivations(w1: Tensor, b1: Tensor | None, gamma: Tensor | None, beta: Tensor | None
                            ) -> tuple[Tensor, Tensor]:
    """(mean [C], effective rows [C, D]) of ``z = w1 (gamma * n + beta) + b1`` for ``n ~ N(0, I)``, float64."""
    w = w1.double()
    d = w.shape[1]
    gamma = torch.ones(d, dtype=torch.float64) if gamma is None else gamma.double()
    beta = torch.zeros(d, dtype=torch.float64) if beta is None else beta.double()
    mean = w @ beta + (0 if b1 is None else b1.double())
    return mean, w * gamma


def sample_activations(w1: Tensor, b1: Tensor | None, gamma: Tensor | None, beta: Tensor | None, *,
                       n_samples: int = 4096, seed: int = 0) -> Tensor:
    """[n_samples, C] draws of ``GELU(z)`` under the Gaussian stand-in (float64, seeded; no data)."""
    mean, rows = gaussian_preactivations(w1, b1, gamma, beta)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n_samples, rows.shape[1], generator=gen, dtype=torch.float64)
    return torch.nn.functional.gelu(noise @ rows.T + mean)


def ridge_refit(w2: Tensor, w2_fold: Tensor, h: Tensor, hk: Tensor, ridge: float) -> Tensor:
    """fc2 [O, K] minimising ``|| hc w2^T - hkc W^T ||^2 / N + m || W - w2_fold ||^2`` (``hc``, ``hkc``: ``h`` [N, C]
    and ``hk`` [N, K] centred; ``m = ridge * mean diag(hkc^T hkc / N)``)."""
    hc, hkc = h - h.mean(0), hk - hk.mean(0)
    n = h.shape[0]
    gram = hkc.T @ hkc / n  # [K, K]
    m = ridge * float(gram.diagonal().mean().clamp_min(1e-12))
    rhs = w2 @ (hc.T @ hkc / n) + m * w2_fold  # [O, K]
    return torch.linalg.solve(gram + m * torch.eye(gram.shape[0], dtype=gram.dtype), rhs.T).T


@dataclass(frozen=True)
class PredictiveOptions:
    """Options of ``predictive``.

    Attributes:
        n_samples: Monte-Carlo draws of the Gaussian stand-in (more: steadier moments, slower).
        rounds: batches of the backward elimination (more: costs updated more often).
        merge: predict removed neurons from a kept one (False: drop + mean compensation only).
        ridge: 0 (off) or the pull toward the merged fc2 of a ridge least-squares refit of fc2 on the stand-in
            (all kept neurons predict the removed ones jointly; see :func:`ridge_refit`).
    """

    n_samples: int = 4096
    rounds: int = 8
    merge: bool = True
    ridge: float = 0.0

    def __post_init__(self) -> None:
        if self.n_samples < 16 or self.rounds < 1 or not self.ridge >= 0:
            raise PlanError(f"predictive needs n_samples >= 16, rounds >= 1 and ridge >= 0, got {self}.")


@register_method("predictive", folds=True, options=PredictiveOptions,
                 label="Predictive fold (data-free compensation)",
                 help="FFN neurons: remove those whose output the rest predicts best under a Gaussian stand-in "
                      "of the LayerNorm output, fold their fc2 columns onto the best predictor + bias (data-free)")
@torch.no_grad()
def predictive_fold(weight: Tensor, bias: Tensor | None, k: int, *, context: UnitContext, seed: int = 0,
                    max_iter: int = 100, n_samples: int = 4096, rounds: int = 8, merge: bool = True,
                    ridge: float = 0.0) -> FoldedUnit:
    """Keep K of fc1's C neurons (``weight`` [C, D], ``bias`` [C]); fc2 (``context.partner_weight`` [O, C])
    absorbs the removed ones' predictable part (see the module doc). Returns fc1 [K, D] and fc2 [O, K]."""
    if context.unit != "ffn-neuron":
        raise PlanError("The predictive fold compresses FFN neurons (fc1 layers) only; choose a preset of fc1 layers.")
    c = weight.shape[0]
    h = sample_activations(weight, bias, context.ln_weight, context.ln_bias, n_samples=n_samples, seed=seed)
    mean = h.mean(0)
    hc = h - mean
    cov = hc.T @ hc / (h.shape[0] - 1)  # [C, C]
    var = cov.diagonal().clamp_min(1e-12)
    w2 = context.partner_weight.double()  # [O, C]
    out_energy = (w2 ** 2).sum(0)  # ||a_i||^2
    rho2 = cov ** 2 / (var[:, None] * var[None, :])
    rho2.fill_diagonal_(0)
    if not merge:
        rho2.zero_()
    kept = torch.ones(c, dtype=torch.bool)
    per_round = math.ceil((c - k) / rounds)
    while int((~kept).sum()) < c - k:
        cost = out_energy * var * (1 - rho2[:, kept].max(1).values)
        cost[~kept] = float("inf")
        n = min(per_round, c - k - int((~kept).sum()))
        kept[torch.topk(cost, n, largest=False).indices] = False
    keep, removed = kept.nonzero().squeeze(1), (~kept).nonzero().squeeze(1)
    cols = w2[:, keep].clone()
    shift = w2[:, removed] @ mean[removed]  # drop + mean compensation
    lost = float((out_energy[removed] * var[removed]).sum())
    if merge and removed.numel():
        sub = rho2[removed][:, keep]
        best_r2, best = sub.max(1)
        j = keep[best]
        alpha = torch.where(best_r2 > 0, cov[removed, j] / var[j], torch.zeros_like(best_r2))
        cols.index_add_(1, best, w2[:, removed] * alpha)
        shift = shift - w2[:, removed] @ (alpha * mean[j])
        lost = float((out_energy[removed] * var[removed] * (1 - best_r2)).sum())
    if ridge > 0:  # joint refit of fc2 on the stand-in, pulled toward the one-neighbour merge
        cols = ridge_refit(w2, cols, h, h[:, keep], ridge)
        shift = w2 @ mean - cols @ mean[keep]
    b2 = context.partner_bias
    new_b2 = shift if b2 is None else b2.double() + shift
    dtype = weight.dtype
    return FoldedUnit(weight.detach()[keep].clone(), None if bias is None else bias.detach()[keep].clone(),
                      cols.to(dtype).contiguous(), new_b2.to(dtype), lost)
