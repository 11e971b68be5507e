"""k-means fold of FFN neurons with data-free compensation switches, each measurable alone or combined.

``kmeans-fold`` clusters the C hidden neurons of an FFN (fc1 rows + bias) into K clusters and folds them:
fc1 keeps one row per cluster, fc2 gets one column per cluster. With every switch off it is exactly the
paper's k-means followed by the plain fold (centroid row; fc2 columns of a cluster summed). The switches
come from the data-free compression literature; none reads any data:

* ``features="fc1+fc2"``: cluster on what the neuron also FEEDS, the row ``[w_i, b_i, s * a_i]`` with
  ``a_i`` its fc2 column and ``s = ||[W1 b1]||_F / ||W2||_F`` (the two parts weigh the same in total), as
  Model Folding (Wang et al., ICLR 2025) does.
* ``ln_gain=True``: distances in the coordinates the pre-activation really sees: the preceding LayerNorm's
  gain and shift folded into the row, ``[w_i * gamma, b_i + w_i . beta]`` (an exact reparametrisation;
  used for the distance only, the model's weights are not changed by it).
* ``merge="scale"``: scale-aware merge (Neuron Merging, Kim et al., NeurIPS 2020): a member whose row is
  ``lambda`` times the centroid's outputs about ``lambda`` times the centroid neuron's activation, so its
  fc2 column is added with weight ``lambda_i = ||r_i|| / ||r_c||`` instead of 1.
* ``variance=True``: variance-preserving centroid (Model Folding's data-free repair): averaging ``n``
  rows of mean pairwise cosine ``c`` shrinks the pre-activation's spread by ``sqrt((1 + (n-1) c) / n)``,
  so the centroid row is scaled back by ``sqrt(n / (1 + (n-1) c))``.
* ``mean_shift=True``: fc2's bias absorbs the change of the expected output under the Gaussian stand-in
  of :mod:`prunelab.methods.predictive` (LayerNorm output ``gamma * n + beta``, ``n ~ N(0, I)``):
  ``b2 += sum_i a_i E[GELU(z_i)] - sum_c a'_c E[GELU(z'_c)]`` (DFQ-style bias correction, Nagel et al. 2019).
* ``ridge=mu > 0``: fc2 refitted by ridge least squares on the same stand-in, pulled toward the plain fold:
  with centred activations ``h`` [N, C] of the original and ``h'`` [N, K] of the folded fc1 (paired draws),
  ``W2' = (W2 E[h h'^T] + m W2_fold) (E[h' h'^T] + m I)^-1``, ``m = mu * mean diag E[h' h'^T]``, and the bias
  by the mean formula (FLAP/GRAIL-style reconstruction, here from weights alone). The probe in
  ../shared/notes/fidelity-leads.md found a fit to noise-driven activations harmful without such a prior.

Measured (benchmarks/study/compensation_screen.txt and benchmarks/WER_STUDY.md rounds 2-3, tune clips only):
at 20 % of Whisper-base's encoder FFN neurons, each published switch alone moved the output MORE than the
plain fold (teacher-forced KL 0.86 plain; mean shift 0.88, variance 0.99, scale merge 1.04, LayerNorm gain
1.07, fc1+fc2 features 1.81); only the ridge refit helped (mu 3: 0.49). On tune WER that did not carry over
beyond 10 % (27.5 / 45.6 / 246.2 % vs predictive 28.5 / 36.1 / 122.3 % at 10 / 20 / 30 %), so ``predictive``,
whose choice of WHICH neurons go matters more than how the survivors are averaged, stays recommended.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import PlanError
from ..groups import FoldedUnit, UnitContext, channel_rows
from ..kmeans import kmeans
from .predictive import ridge_refit, sample_activations
from .registry import register_method

FEATURES = ("fc1", "fc1+fc2")
MERGES = ("sum", "scale")


@dataclass(frozen=True)
class FoldOptions:
    """Switches of ``kmeans-fold`` (all off: the paper's k-means + the plain fold).

    Attributes:
        features: ``"fc1"`` (fc1 row + bias) or ``"fc1+fc2"`` (also the scaled fc2 column) to cluster on.
        ln_gain: distances with the preceding LayerNorm's gain and shift folded into the rows.
        merge: ``"sum"`` (fc2 columns of a cluster summed) or ``"scale"`` (each weighted by its norm ratio).
        variance: variance-preserving centroid.
        mean_shift: fc2 bias corrected for the expected output change under the Gaussian stand-in.
        ridge: 0 (off) or the strength of the pull toward the plain fold of the stand-in refit of fc2.
        n_samples: Monte-Carlo draws of the stand-in (``mean_shift`` and ``ridge`` only).
    """

    features: str = "fc1"
    ln_gain: bool = False
    merge: str = "sum"
    variance: bool = False
    mean_shift: bool = False
    ridge: float = 0.0
    n_samples: int = 4096

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise PlanError(f"kmeans-fold features must be one of {', '.join(FEATURES)}; got {self.features!r}.")
        if self.merge not in MERGES:
            raise PlanError(f"kmeans-fold merge must be one of {', '.join(MERGES)}; got {self.merge!r}.")
        if not self.ridge >= 0:
            raise PlanError(f"kmeans-fold ridge must be >= 0 (0: off), got {self.ridge}.")
        if self.n_samples < 16:
            raise PlanError(f"kmeans-fold needs n_samples >= 16, got {self.n_samples}.")


def variance_scale(rows: Tensor, labels: Tensor, k: int) -> Tensor:
    """[K] factor ``sqrt(n / (1 + (n - 1) * mean pairwise cosine))`` per cluster of ``rows`` [C, F] (1 for n = 1)."""
    unit = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sums = torch.zeros(k, rows.shape[1], dtype=rows.dtype).index_add_(0, labels, unit)
    n = torch.bincount(labels, minlength=k).to(rows.dtype)
    pair_sum = (sums ** 2).sum(1) - n  # sum over ordered pairs i != j of cos(r_i, r_j)
    mean_cos = torch.where(n > 1, pair_sum / (n * (n - 1)).clamp_min(1), torch.ones_like(n))
    return torch.sqrt(n / (1 + (n - 1) * mean_cos).clamp_min(1e-12))


@register_method("kmeans-fold", folds=True, options=FoldOptions,
                 label="k-means fold with compensation switches (data-free)",
                 help="FFN neurons: k-means, fold fc2; switches: fc2-aware features, LayerNorm-gain distance, "
                      "scale-aware merge, variance-preserving centroid, stand-in mean shift, stand-in ridge refit")
@torch.no_grad()
def kmeans_fold(weight: Tensor, bias: Tensor | None, k: int, *, context: UnitContext, seed: int = 0,
                max_iter: int = 100, features: str = "fc1", ln_gain: bool = False, merge: str = "sum",
                variance: bool = False, mean_shift: bool = False, ridge: float = 0.0,
                n_samples: int = 4096) -> FoldedUnit:
    """Fold fc1 (``weight`` [C, D], ``bias`` [C]) to K neurons and fc2 (``context.partner_weight`` [O, C]) to
    K columns (see the module doc). Returns fc1 [K, D] and fc2 [O, K]."""
    if context.unit != "ffn-neuron":
        raise PlanError("kmeans-fold compresses FFN neurons (fc1 layers) only; choose a preset of fc1 layers.")
    c, d = weight.shape
    w1 = weight.double()
    b1 = torch.zeros(c, dtype=torch.float64) if bias is None else bias.double()
    w2 = context.partner_weight.double()  # [O, C]
    rows = torch.cat([w1, b1[:, None]], 1)  # [C, D + 1], the fc1 parameters of each neuron
    if ln_gain:
        gamma = torch.ones(d, dtype=torch.float64) if context.ln_weight is None else context.ln_weight.double()
        beta = torch.zeros(d, dtype=torch.float64) if context.ln_bias is None else context.ln_bias.double()
        space = torch.cat([w1 * gamma, (b1 + w1 @ beta)[:, None]], 1)
    else:
        space = rows
    if features == "fc1+fc2":
        scale = space.norm() / w2.norm().clamp_min(1e-12)
        space = torch.cat([space, scale * w2.T], 1)
    plain = not ln_gain and features == "fc1"  # the paper's k-means on exactly its rows
    points = channel_rows(weight, bias) if plain else space.to(weight.dtype)
    labels = kmeans(points, k, seed=seed, max_iter=max_iter).labels.long()
    n = torch.bincount(labels, minlength=k).double()
    centroids = torch.zeros(k, d + 1, dtype=torch.float64).index_add_(0, labels, rows) / n[:, None]
    if variance:
        centroids = centroids * variance_scale(rows, labels, k)[:, None]
    if merge == "scale":
        lam = rows.norm(dim=1) / centroids[labels].norm(dim=1).clamp_min(1e-12)
    else:
        lam = torch.ones(c, dtype=torch.float64)
    new_w2 = torch.zeros(w2.shape[0], k, dtype=torch.float64).index_add_(1, labels, w2 * lam)
    b2 = None if context.partner_bias is None else context.partner_bias.double()
    if mean_shift or ridge > 0:
        h = sample_activations(w1, b1, context.ln_weight, context.ln_bias, n_samples=n_samples, seed=seed)
        hk = sample_activations(centroids[:, :d], centroids[:, d], context.ln_weight, context.ln_bias,
                                n_samples=n_samples, seed=seed)  # the same draws: paired samples [N, K]
        if ridge > 0:
            new_w2 = ridge_refit(w2, new_w2, h, hk, ridge)
        shift = w2 @ h.mean(0) - new_w2 @ hk.mean(0)
        b2 = shift if b2 is None else b2 + shift
    # [K, F] cluster means in the distance's space
    means = torch.zeros(k, space.shape[1], dtype=space.dtype).index_add_(0, labels, space) / n[:, None]
    distortion = float(((space - means[labels]) ** 2).sum())
    dtype = weight.dtype
    return FoldedUnit(centroids[:, :d].to(dtype).contiguous(),
                      None if bias is None else centroids[:, d].to(dtype).contiguous(),
                      new_w2.to(dtype).contiguous(), None if b2 is None else b2.to(dtype), distortion)


__all__ = ["FoldOptions", "kmeans_fold", "variance_scale"]
