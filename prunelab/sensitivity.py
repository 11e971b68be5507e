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
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from .layers import LayerInfo, find_layers

DEFAULT_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9)
"""Default sparsity grid of the curves (K = round(C * (1 - s))); K = C (distortion 0) is always added."""

Progress = Callable[[int, int, str], None]


# --- importance -----------------------------------------------------------------------------------

def _sibling(name: str, kind: str) -> str | None:
    """Module path of the partner layer of ``name`` (``kind`` one of q/k/v/out/fc1/fc2)."""
    parent, _, leaf = name.rpartition(".")
    if leaf in ("q_proj", "k_proj", "v_proj", "out_proj"):
        return f"{parent}.{kind}_proj"
    if leaf == "fc1" and kind == "fc2":
        return f"{parent}.fc2"
    if name.endswith("feed_forward.intermediate_dense") and kind == "fc2":
        return name[: -len("intermediate_dense")] + "output_dense"
    return None


def _rows(module: nn.Module) -> Tensor:
    w = module.weight.detach().float()
    b = getattr(module, "bias", None)
    return torch.cat([w, b.detach().float()[:, None]], 1) if b is not None else w


def channel_importance(model: nn.Module, layer: LayerInfo | str, *, normalize: bool = True) -> Tensor:
    """Importance ``[C]`` of each output channel of ``layer`` to the next layer (see the module doc).

    Read from ``model`` as given: pass the ORIGINAL (uncompressed) model. Falls back to uniform
    importance when the partner layer cannot be found (or is not a plain linear layer).
    """
    info = layer if isinstance(layer, LayerInfo) else next(l for l in find_layers(model) if l.name == layer)
    c = info.out_features
    partner_kind = {"fc1": "fc2", "v": "out", "q": "k", "k": "q"}.get(info.kind)
    imp = None
    if partner_kind is not None:
        pname = _sibling(info.name, partner_kind)
        try:
            partner = model.get_submodule(pname) if pname else None
        except AttributeError:
            partner = None
        w = getattr(partner, "weight", None)
        if isinstance(w, Tensor) and not hasattr(partner, "index"):  # a plain linear, not a ClusteredLinear
            if info.kind in ("fc1", "v") and w.shape[1] == c:
                imp = w.detach().float().norm(dim=0)  # column norms of the reader
            elif info.kind in ("q", "k") and w.shape[0] == c:
                imp = _rows(partner).norm(dim=1)  # row norms of the partner projection
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
        ys = self.relative if relative else self.distortion
        ks = self.ks
        if k <= ks[0]:
            return ys[0]
        if k >= ks[-1]:
            return ys[-1]
        for i in range(1, len(ks)):
            if k <= ks[i]:
                t = (k - ks[i - 1]) / (ks[i] - ks[i - 1])
                return ys[i - 1] + t * (ys[i] - ys[i - 1])
        return ys[-1]

    def as_dict(self) -> dict:
        return dict(name=self.name, label=self.label, channels=self.channels, ks=list(self.ks),
                    distortion=list(self.distortion), relative=self.relative, energy=self.energy,
                    weighted=self.weighted, method=self.method)


def grid_ks(channels: int, grid: Sequence[float] = DEFAULT_GRID) -> list[int]:
    """Distinct cluster counts for a sparsity grid, ascending, always ending with C."""
    ks = {max(1, min(channels, int(round(channels * (1.0 - s))))) for s in grid}
    ks.add(channels)
    return sorted(ks)


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
    from .methods import NEEDS_IMPORTANCE, STRUCTURED, channel_rows

    rows = channel_rows(weight, bias)
    c = rows.shape[0]
    w = None if importance is None else importance.float().to(rows.device) ** 2
    ks = grid_ks(c, grid)
    raw: list[float] = []
    fn = STRUCTURED[method]
    for k in ks:
        if k == c:
            raw.append(0.0)
            continue
        kwargs: dict = {}
        if method in NEEDS_IMPORTANCE:
            kwargs["importance"] = importance if importance is not None else torch.ones(c)
        elif method == "kmeans" and w is not None:
            kwargs["sample_weight"] = w
        groups = fn(weight, bias, k, seed=seed, max_iter=max_iter, **kwargs)
        dw, db = groups.dense()
        replaced = channel_rows(dw, db)
        raw.append(weighted_distortion(rows, replaced, w))
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
        if cache_key is not None:
            _CURVES[key] = curve
        out.append(curve)
    if progress:
        progress(len(layers), len(layers), "sensitivity done")
    return out


# --- plot -----------------------------------------------------------------------------------------

def plot_sensitivity(curves: Sequence[SensitivityCurve], *, relative: bool = True, title: str | None = None,
                     max_legend: int = 16):
    """Distortion vs layer sparsity, one line per layer; returns a matplotlib ``Figure``.

    Flat, low curves are layers that compress cheaply; steep ones are sensitive. Residual-stream writers
    (fc2, out) are dashed.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    cmap = plt.get_cmap("viridis")
    n = max(1, len(curves) - 1)
    for i, c in enumerate(curves):
        ys = c.relative if relative else c.distortion
        residual = (c.label or c.name).endswith(("fc2", "out", "output_dense", "out_proj"))
        ax.plot([100 * s for s in c.sparsities], ys, marker="o", ms=3, lw=1.2, color=cmap(i / n),
                ls="--" if residual else "-", label=c.label or c.name)
    ax.set_xlabel("layer sparsity 1 - K/C (%)")
    ax.set_ylabel("relative distortion (fraction of layer energy)" if relative else "distortion")
    weighted = any(c.weighted for c in curves)
    ax.set_title(title or f"Data-free layer sensitivity ({'importance-weighted ' if weighted else ''}"
                          f"{curves[0].method if curves else 'kmeans'} distortion)")
    ax.grid(alpha=0.3)
    if 0 < len(curves) <= max_legend:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


__all__ = ["DEFAULT_GRID", "SensitivityCurve", "all_importances", "channel_importance", "grid_ks", "layer_curve",
           "plot_sensitivity", "sensitivity_curves"]
