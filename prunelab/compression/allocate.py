"""Automatic mixed sparsity: choose K per layer for a global target, from data-free sensitivity curves.

Given the layers a preset selects and a target sparsity over their parameters (as
:meth:`prunelab.plan.Plan.sparsity` with ``over="planned"`` measures it), :func:`allocate` picks K per
layer to minimise the summed normalised distortion ``sum_l D_l(K_l) / E_l`` (each layer's importance-
weighted clustering distortion as a fraction of its weighted energy, see :mod:`prunelab.sensitivity`),
so every layer counts by the fraction of its output signal it loses.

Algorithm: each curve is replaced by its lower convex hull in (K, distortion) (so marginal costs
increase as a layer shrinks), then channels are removed greedily one at a time from the layer whose
next channel costs the least distortion per parameter (a channel of a layer holds ``in + 1``
parameters), until the removed parameters reach the target. On convex curves this greedy is optimal;
the result is within one channel per layer of the exact parameter target. K never goes below the
smallest K of a layer's curve grid (90% layer sparsity with the default grid).
"""
from __future__ import annotations

import heapq
from typing import Iterable, Sequence

from torch import nn

from ..errors import PlanError
from ..progress import Progress
from .layers import LayerInfo, find_layers
from .plan import Plan, check_preset, check_sparsity
from .sensitivity import DEFAULT_GRID, SensitivityCurve, interpolate, sensitivity_curves


def _hull(ks: Sequence[int], ys: Sequence[float]) -> tuple[list[int], list[float]]:
    """Lower convex hull of the points (k, y), k ascending (keeps the endpoints)."""
    pts: list[tuple[int, float]] = []
    for k, y in zip(ks, ys):
        while len(pts) >= 2:
            (k1, y1), (k2, y2) = pts[-2], pts[-1]
            # drop the middle point if it lies on or above the segment from pts[-2] to (k, y)
            if (y2 - y1) * (k - k1) >= (y - y1) * (k2 - k1):
                pts.pop()
            else:
                break
        pts.append((k, y))
    return [p[0] for p in pts], [p[1] for p in pts]


def allocate_from_curves(
    curves: Sequence[SensitivityCurve],
    target: float,
    *,
    normalize: str = "energy",
    min_k: dict[str, int] | None = None,
) -> Plan:
    """A plan over the curves' layers removing ``target`` of their parameters at least distortion.

    ``normalize``: ``"energy"`` (default) compares layers by relative distortion ``D/E``; ``"none"`` by raw
    (weighted) distortion.
    """
    check_sparsity(target)
    if normalize not in ("energy", "none"):
        raise PlanError(f"normalize must be 'energy' or 'none', got {normalize!r}")
    total = sum(c.channels * c.params_per_channel for c in curves)
    goal = target * total
    state = []
    for c in curves:
        ys = c.relative if normalize == "energy" else c.distortion
        hk, hy = _hull(c.ks, ys)
        lo = max(hk[0], (min_k or {}).get(c.name, 1))
        state.append([c, hk, hy, c.channels, lo])

    def cost(i: int) -> float:
        c, hk, hy, k, _ = state[i]
        return (interpolate(hk, hy, k - 1) - interpolate(hk, hy, k)) / c.params_per_channel

    heap = [(cost(i), i) for i in range(len(state)) if state[i][3] > state[i][4]]
    heapq.heapify(heap)
    removed = 0.0
    while removed < goal and heap:
        _, i = heapq.heappop(heap)
        st = state[i]
        st[3] -= 1
        removed += st[0].params_per_channel
        if st[3] > st[4]:
            heapq.heappush(heap, (cost(i), i))
    if removed + 1e-9 < goal:
        raise PlanError(f"Cannot reach {target:.0%} sparsity without going below the curves' smallest K.")
    return Plan({st[0].name: st[3] for st in state})


def allocate(
    model: nn.Module,
    target: float,
    *,
    preset: str = "uniform",
    layers: Iterable[LayerInfo] | None = None,
    weighted: bool = True,
    grid: Sequence[float] = DEFAULT_GRID,
    normalize: str = "energy",
    seed: int = 0,
    cache_key: str | None = None,
    progress: Progress | None = None,
) -> Plan:
    """Plan for ``model`` (the ORIGINAL ``nn.Module``): ``target`` sparsity over the layers ``preset`` selects,
    K per layer chosen from importance-weighted k-means sensitivity curves (see the module doc)."""
    check_sparsity(target)
    select = check_preset(preset)
    layers = [l for l in (find_layers(model) if layers is None else layers) if select(l)]
    if not layers:
        raise PlanError(f"Preset {preset!r} selects no layers of this model.")
    if target == 0:
        return Plan({l.name: l.channels for l in layers})
    curves = sensitivity_curves(model, layers, weighted=weighted, grid=grid, seed=seed, cache_key=cache_key,
                                progress=progress)
    return allocate_from_curves(curves, target, normalize=normalize)


__all__ = ["allocate", "allocate_from_curves"]
