"""Data-free layer sensitivity: how much each layer loses when its channels are clustered.

Two ingredients, both computed from the weights alone (no audio, no training):

* **Channel importance** (:func:`channel_importance`): how much an output channel of a layer matters to
  the layer that reads it. A perturbation ``d`` of channel ``i``'s row changes the next layer's output
  by roughly ``d . x`` times the weights the next layer applies to channel ``i``, so the importance of
  channel ``i`` is the L2 norm of those weights:

  ====================  ==================================================================================
  layer kind            importance of output channel ``i``
  ====================  ==================================================================================
  ``fc1``               norm of column ``i`` of the paired ``fc2`` weight (what neuron ``i`` writes back)
  ``v``                 norm of column ``i`` of the block's ``out_proj`` weight (value dim ``i`` is mixed
                        by attention, then read through that column)
  ``q``                 norm of row ``i`` of the partner ``k_proj`` (weight, bias appended): the score is
                        ``sum_i q_i k_i``, so an error in ``q_i`` is scaled by ``k_i``
  ``k``                 norm of row ``i`` of the partner ``q_proj`` (symmetrically)
  ``out``, ``fc2``      1 (uniform): they write into the residual stream directly
  ====================  ==================================================================================

  Importances are scaled so that the mean of ``importance**2`` is 1, so weighted and plain distortions
  have the same order of magnitude.

* **Distortion curve** (:func:`layer_curve` / :func:`sensitivity_curves`): for a grid of cluster counts
  K, the (importance-weighted) clustering distortion ``sum_i w_i |row_i - replacement_i|^2`` with
  ``w_i = importance_i**2`` and rows = weight rows with the bias appended. It is made monotone
  non-increasing in K (a larger K can always do at least as well as a smaller one: keep the smaller
  solution and split a cluster), and is exactly 0 at K = C. ``energy = sum_i w_i |row_i|^2`` (the
  distortion of dropping every channel) normalises it, so ``relative`` curves are comparable between
  layers: the fraction of the layer's (weighted) output signal lost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

from ..errors import PlanError
from ..groups import channel_rows
from ..methods import get_method, kmeans_channels
from ..progress import Progress
from .layers import LayerInfo, find_layers
from .plan import clusters_for_sparsity

DEFAULT_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9)
"""Default sparsity grid of the curves (K = round(C * (1 - s))); K = C (distortion 0) is always added."""

# --- importance -----------------------------------------------------------------------------------

def channel_importance(model: nn.Module, layer: LayerInfo | str, *, normalize: bool = True) -> Tensor:
    """Importance ``[C]`` of each output channel of ``layer`` to the next layer (see the module doc).

    Read from ``model`` as given: pass the ORIGINAL (uncompressed) model. Falls back to uniform
    importance when the partner layer cannot be found (or is not a plain linear layer).
    """
    info = layer if isinstance(layer, LayerInfo) else next(l for l in find_layers(model) if l.name == layer)
    c = info.out_features
    imp = None
    try:
        partner = model.get_submodule(info.partner) if info.partner else None
    except AttributeError:
        partner = None
    w = getattr(partner, "weight", None)
    if isinstance(w, Tensor) and not hasattr(partner, "index"):  # a plain linear, not a ClusteredLinear
        if info.kind in ("fc1", "v") and w.shape[1] == c:
            imp = w.detach().float().norm(dim=0)  # column norms of the reader
        elif info.kind in ("q", "k") and w.shape[0] == c:
            imp = channel_rows(w, getattr(partner, "bias", None)).norm(dim=1)  # row norms of the partner
    if imp is None:
        imp = torch.ones(c)
    imp = imp.cpu()
    if normalize:
        ms = float((imp ** 2).mean())
        if ms > 0:
            imp = imp / math.sqrt(ms)
    return imp


def all_importances(model: nn.Module, layers: Iterable[LayerInfo] | None = None) -> dict[str, Tensor]:
    """``{layer name: importance [C]}`` for the given (default: all compressible) layers."""
    layers = find_layers(model) if layers is None else layers
    return {l.name: channel_importance(model, l) for l in layers}


# --- curves ---------------------------------------------------------------------------------------

@dataclass
class SensitivityCurve:
    """Distortion of one layer as a function of its cluster count K.

    Attributes:
        name, label: the layer's module path and short label (``enc.3.fc1``).
        channels: C.
        params_per_channel: parameters one output channel holds (in_features + bias).
        ks: ascending cluster counts, the last one is C.
        distortion: (weighted) distortion at each K: non-increasing, 0 at K = C.
        energy: (weighted) energy of the layer's rows, ``sum_i w_i |row_i|^2``.
        weighted: whether importance weights were used.
        method: the clustering method the curve was measured with.
        writes_residual: the layer writes the residual stream (fc2, out), see :class:`LayerInfo`.
    """

    name: str
    label: str
    channels: int
    params_per_channel: int
    ks: list[int]
    distortion: list[float]
    energy: float
    weighted: bool = True
    method: str = "kmeans"
    writes_residual: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def relative(self) -> list[float]:
        """Distortion as a fraction of the layer's energy."""
        return [d / self.energy if self.energy > 0 else 0.0 for d in self.distortion]

    @property
    def sparsities(self) -> list[float]:
        return [1.0 - k / self.channels for k in self.ks]

    def at(self, k: float, *, relative: bool = True) -> float:
        """Distortion at cluster count ``k``, linearly interpolated between grid points (flat below the grid)."""
        return interpolate(self.ks, self.relative if relative else self.distortion, k)

    def as_dict(self) -> dict:
        return dict(name=self.name, label=self.label, channels=self.channels, ks=list(self.ks),
                    distortion=list(self.distortion), relative=self.relative, energy=self.energy,
                    weighted=self.weighted, method=self.method)


def interpolate(ks: Sequence[float], ys: Sequence[float], k: float) -> float:
    """``ys`` at ``k``, linear between the ascending grid ``ks``, flat outside it."""
    if k <= ks[0]:
        return ys[0]
    for i in range(1, len(ks)):
        if k <= ks[i]:
            t = (k - ks[i - 1]) / (ks[i] - ks[i - 1])
            return ys[i - 1] + t * (ys[i] - ys[i - 1])
    return ys[-1]


def grid_ks(channels: int, grid: Sequence[float] = DEFAULT_GRID) -> list[int]:
    """Distinct cluster counts for a sparsity grid, ascending, always ending with C."""
    return sorted({clusters_for_sparsity(channels, s) for s in grid} | {channels})


def weighted_distortion(rows: Tensor, replaced: Tensor, weights: Tensor | None) -> float:
    per = ((rows - replaced) ** 2).sum(1)
    return float((per * weights).sum() if weights is not None else per.sum())


def layer_curve(
    weight: Tensor,
    bias: Tensor | None,
    *,
    importance: Tensor | None = None,
    grid: Sequence[float] = DEFAULT_GRID,
    method: str = "kmeans",
    seed: int = 0,
    max_iter: int = 30,
    name: str = "",
    label: str = "",
) -> SensitivityCurve:
    """Distortion curve of one layer over :func:`grid_ks` with a structured method (default plain k-means).

    With ``importance``, the distortion is weighted by ``importance**2`` per channel, and importance-aware
    methods receive it too (``kmeans`` then clusters with ``sample_weight = importance**2``).
    """
    rows = channel_rows(weight, bias)
    c = rows.shape[0]
    w = None if importance is None else importance.float().to(rows.device) ** 2
    ks = grid_ks(c, grid)
    fn = get_method(method)
    if not fn.structured:
        raise PlanError(f"Sensitivity curves need a structured method; {method!r} is not one.")
    raw: list[float] = []
    for k in ks:
        if k == c:
            raw.append(0.0)
            continue
        if method == "kmeans" and w is not None:  # the weighted objective itself
            groups = kmeans_channels(weight, bias, k, seed=seed, max_iter=max_iter, sample_weight=w)
        else:
            groups = fn.apply(weight, bias, k, seed=seed, max_iter=max_iter,
                              importance=importance if importance is not None else torch.ones(c))
        dw, db = groups.dense()
        raw.append(weighted_distortion(rows, channel_rows(dw, db), w))
    # monotone non-increasing in K: min over all smaller-or-equal K (each is achievable at a larger K)
    dist, best = [], float("inf")
    for d in raw:
        best = min(best, d)
        dist.append(best)
    dist[-1] = 0.0
    energy = float(((rows ** 2).sum(1) * w).sum()) if w is not None else float((rows ** 2).sum())
    return SensitivityCurve(name, label, c, rows.shape[1], ks, dist, energy, weighted=w is not None, method=method)


_CURVES: dict[tuple, SensitivityCurve] = {}


def sensitivity_curves(
    model: nn.Module,
    layers: Iterable[LayerInfo] | None = None,
    *,
    weighted: bool = True,
    grid: Sequence[float] = DEFAULT_GRID,
    method: str = "kmeans",
    seed: int = 0,
    max_iter: int = 30,
    cache_key: str | None = None,
    progress: Progress | None = None,
) -> list[SensitivityCurve]:
    """Curves for ``layers`` (default: all compressible layers) of the ORIGINAL ``model``.

    ``cache_key`` (e.g. the model spec) memoises curves per layer in this process, so repeated plans
    (sliders, several sparsities) do not recompute them.
    """
    layers = list(find_layers(model) if layers is None else layers)
    out = []
    for i, l in enumerate(layers):
        key = (cache_key, l.name, weighted, tuple(grid), method, seed, max_iter)
        if cache_key is not None and key in _CURVES:
            out.append(_CURVES[key])
            continue
        if progress:
            progress(i, len(layers), f"sensitivity {l.label}")
        module = model.get_submodule(l.name)
        imp = channel_importance(model, l) if weighted else None
        with torch.no_grad():
            curve = layer_curve(module.weight, getattr(module, "bias", None), importance=imp, grid=grid,
                                method=method, seed=seed, max_iter=max_iter, name=l.name, label=l.label)
        curve.writes_residual = l.writes_residual
        if cache_key is not None:
            _CURVES[key] = curve
        out.append(curve)
    if progress:
        progress(len(layers), len(layers), "sensitivity done")
    return out


__all__ = ["DEFAULT_GRID", "SensitivityCurve", "all_importances", "channel_importance", "grid_ks", "layer_curve",
           "interpolate", "sensitivity_curves"]
