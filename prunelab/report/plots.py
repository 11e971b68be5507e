"""Matplotlib figures that explain what compression did: sparsity per layer, clusters, distortion, sizes.

Every function returns a fresh :class:`matplotlib.figure.Figure` built without ``pyplot`` (no global
figure registry, safe to call from several threads at once, nothing to close). The app shows them in
``gr.Plot``; scripts can ``fig.savefig(...)`` them. Nothing here imports Gradio.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..compression.layers import LayerInfo
from ..compression.plan import Plan
from ..compression.sensitivity import SensitivityCurve
from ..groups import ChannelGroups, channel_rows
from ..methods import kmeans_channels, magnitude_channels

# Sublayer kinds in the order they are drawn inside a block, and their colours.
SUBLAYERS = ("q", "k", "v", "out", "cross.q", "cross.k", "cross.v", "cross.out", "fc1", "fc2")
SUBLAYER_COLORS = {
    "q": "#4C72B0", "k": "#6A8FD0", "v": "#8FB0E8", "out": "#2F4F8F",
    "cross.q": "#8172B3", "cross.k": "#9C8FCB", "cross.v": "#B9AEE0", "cross.out": "#5E4F96",
    "fc1": "#DD8452", "fc2": "#C44E52",
}
DROPPED_COLOR = "#B0B0B0"
MAX_SCATTER_POINTS = 4096  # a layer never has more channels than this in the supported models


def _sublayer(layer: LayerInfo) -> str:
    return ("cross." if layer.group == "cross_attn" else "") + layer.kind


def _clusters_of(plan: Plan | Mapping[str, int] | None) -> dict[str, int]:
    if plan is None:
        return {}
    return dict(plan.clusters if isinstance(plan, Plan) else plan)


# --- per-layer sparsity --------------------------------------------------------------------------------


def sparsity_chart(layers: Iterable[LayerInfo], plan: Plan | Mapping[str, int] | None) -> Figure:
    """Bar chart of each layer's sparsity ``1 - K/C``: one panel per part (encoder, decoder).

    Within a panel, blocks run along the x axis and every sublayer of a block (q, k, v, out, cross
    attention, fc1, fc2) gets its own coloured bar, so there is exactly one bar per compressible layer.
    """
    layers = list(layers)
    clusters = _clusters_of(plan)
    parts = [p for p in ("encoder", "decoder") if any(l.part == p for l in layers)]
    fig = Figure(figsize=(10, 2.4 + 1.9 * max(1, len(parts))), layout="constrained")
    if not layers:
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No compressible layers", ha="center", va="center")
        return fig
    axes = fig.subplots(len(parts), 1, squeeze=False)[:, 0]
    kinds_used: list[str] = []
    for ax, part in zip(axes, parts):
        part_layers = [l for l in layers if l.part == part]
        kinds = [k for k in SUBLAYERS if any(_sublayer(l) == k for l in part_layers)]
        kinds_used += [k for k in kinds if k not in kinds_used]
        blocks = sorted({l.block for l in part_layers})
        width = 0.84 / len(kinds)
        for layer in part_layers:
            k = clusters.get(layer.name, layer.channels)
            s = 100.0 * (1.0 - k / layer.channels)
            x = blocks.index(layer.block) - 0.42 + width * (kinds.index(_sublayer(layer)) + 0.5)
            ax.bar(x, s, width=width, color=SUBLAYER_COLORS[_sublayer(layer)], label=layer.label)
        part_plan = Plan(clusters)
        overall = 100.0 * part_plan.sparsity(part_layers)
        ax.set_title(f"{part.capitalize()}: {len(part_layers)} layers, {overall:.1f}% of their parameters removed",
                     fontsize=10, loc="left")
        ax.set_xticks(range(len(blocks)), [str(b) for b in blocks])
        ax.set_xlim(-0.6, len(blocks) - 0.4)
        ax.set_ylim(0, 100)
        ax.set_xlabel(f"{part} block")
        ax.set_ylabel("sparsity 1 − K/C (%)")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles = [Patch(color=SUBLAYER_COLORS[k], label=k) for k in SUBLAYERS if k in kinds_used]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, title="sublayer", title_fontsize=8)
    return fig


# --- clusters of one layer -----------------------------------------------------------------------------


def pca_2d(rows: torch.Tensor | np.ndarray, *extra: torch.Tensor | np.ndarray) -> tuple[np.ndarray, ...]:
    """Project ``rows`` [N, D] onto their first two principal axes; ``extra`` arrays use the same axes.

    Returns the projected ``rows`` followed by each projected ``extra`` (all [*, 2]), and as the last
    item the fraction of variance the two axes explain.
    """
    x = np.asarray(rows.detach().cpu() if isinstance(rows, torch.Tensor) else rows, dtype=np.float64)
    mean = x.mean(axis=0, keepdims=True)
    centered = x - mean
    if x.shape[0] < 2 or not np.any(centered):
        axes = np.zeros((x.shape[1], 2))
        axes[: min(2, x.shape[1]), : min(2, x.shape[1])] = np.eye(min(2, x.shape[1]))
        explained = 0.0
    else:
        _, s, vt = np.linalg.svd(centered, full_matrices=False)
        axes = np.zeros((x.shape[1], 2))
        n = min(2, vt.shape[0])
        axes[:, :n] = vt[:n].T
        total = float((s**2).sum())
        explained = float((s[:n] ** 2).sum() / total) if total > 0 else 0.0
    out = [centered @ axes]
    for e in extra:
        e = np.asarray(e.detach().cpu() if isinstance(e, torch.Tensor) else e, dtype=np.float64)
        out.append((e.reshape(-1, x.shape[1]) - mean) @ axes)
    return (*out, explained)


def _group_rows(groups: ChannelGroups) -> torch.Tensor:
    return channel_rows(groups.weight, groups.bias)


COLORED_CLUSTERS = 10
"""The scatter colours this many of the largest clusters (2+ channels); the others are drawn in one grey:
a repeating palette over hundreds of clusters would give unrelated clusters the same colour."""
OTHER_CLUSTER_COLOR = "#9AA5B1"


def largest_clusters(index: np.ndarray, k: int, n: int = COLORED_CLUSTERS) -> np.ndarray:
    """Ids of the ``n`` largest clusters that hold at least 2 channels, largest first (ties: lower id)."""
    counts = np.bincount(np.clip(index, 0, k), minlength=k + 1)[:k]
    order = np.lexsort((np.arange(k), -counts))
    return order[counts[order] >= 2][:n]


def _cluster_colors(index: np.ndarray, k: int) -> np.ndarray:
    """An RGBA colour per channel: a distinct colour for each of the largest clusters, one grey for the other
    clusters, a lighter grey for dropped channels."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    colors = np.array([_rgba(OTHER_CLUSTER_COLOR)] * k + [_rgba(DROPPED_COLOR)])
    for rank, cluster in enumerate(largest_clusters(index, k)):
        colors[cluster] = palette[rank % len(palette)] + (1.0,)
    return colors[np.clip(index, 0, k)]


def _wrap(title: str, width: int = 48) -> str:
    """A long title over several lines (each of its lines wrapped), so that it is never cut at the figure's edge."""
    import textwrap

    return "\n".join(textwrap.fill(line, width) for line in title.split("\n"))


def _rgba(hex_color: str) -> tuple[float, float, float, float]:
    from matplotlib.colors import to_rgba

    return to_rgba(hex_color)


def draw_cluster_scatter(ax, weight: torch.Tensor, bias: torch.Tensor | None, groups: ChannelGroups,
                         title: str | None = None) -> None:
    """Draw :func:`cluster_scatter`'s picture on an existing axes."""
    rows = channel_rows(weight, bias)
    index = groups.index.detach().cpu().numpy()
    k = groups.k
    points, centroids, explained = pca_2d(rows, _group_rows(groups))
    dropped = index >= k
    colors = _cluster_colors(index, k)
    top = largest_clusters(index, k)
    label = (f"channels ({int((~dropped).sum())}): the {len(top)} largest clusters in colour, the others grey"
             if len(top) else f"channels ({int((~dropped).sum())})")
    ax.scatter(points[~dropped, 0], points[~dropped, 1], s=9, c=colors[~dropped], alpha=0.75,
               linewidths=0, label=label)
    if dropped.any():
        ax.scatter(points[dropped, 0], points[dropped, 1], s=9, c=DROPPED_COLOR, alpha=0.6, linewidths=0,
                   marker="o", label=f"dropped channels ({int(dropped.sum())})")
    big = k > 64  # many centroids: smaller, see-through crosses so the channels stay visible
    ax.scatter(centroids[:, 0], centroids[:, 1], s=max(6.0, 42 * (64 / k) ** 0.5) if big else 42, marker="X",
               c="black", edgecolors="white", linewidths=0.3 if big else 0.6, alpha=0.45 if big else 1.0,
               label=f"kept rows / centroids (K={k})", zorder=3)
    ax.set_xlabel("principal axis 1")
    ax.set_ylabel("principal axis 2")
    ax.set_title(_wrap(title or f"{len(index)} channels → K = {k} rows (PCA, {100 * explained:.0f}% of variance)"),
                 fontsize=10)
    ax.legend(fontsize=8, loc="best", markerscale=1.2)
    ax.grid(alpha=0.25)


def cluster_scatter(weight: torch.Tensor, bias: torch.Tensor | None, groups: ChannelGroups,
                    title: str | None = None) -> Figure:
    """A layer's output channels (rows of ``weight``, bias appended) projected to 2-D by PCA.

    Each channel is a dot coloured by its cluster (``groups.index``); the K centroids (or the K kept
    channels, for magnitude pruning) are black crosses; dropped channels are grey.
    """
    fig = Figure(figsize=(6.4, 5.2), layout="constrained")
    draw_cluster_scatter(fig.add_subplot(), weight, bias, groups, title)
    return fig


def cluster_size_counts(groups: ChannelGroups) -> tuple[np.ndarray, int]:
    """(channels in each of the K groups, number of dropped channels)."""
    index = groups.index.detach().cpu().numpy().astype(np.int64)
    counts = np.bincount(index, minlength=groups.k + 1)
    return counts[: groups.k], int(counts[groups.k])


def cluster_sizes(groups: ChannelGroups, title: str | None = None) -> Figure:
    """How many channels share each row: a bar per cluster size (x: channels in a cluster, y: clusters).

    k-means gives a spread of sizes (big clusters of similar channels, many singletons); structured
    magnitude pruning keeps K singletons and drops the rest (shown as a grey bar).
    """
    sizes, dropped = cluster_size_counts(groups)
    c = int(groups.index.numel())
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    values, freq = np.unique(sizes, return_counts=True)
    positions = np.arange(len(values))
    ax.bar(positions, freq, color="#4C72B0", label="clusters")
    ax.set_xticks(positions, [str(v) for v in values], fontsize=8 if len(values) < 25 else 6,
                  rotation=0 if len(values) < 25 else 90)
    if dropped:
        ax.bar([len(values)], [dropped], color=DROPPED_COLOR, label="dropped channels")
        ax.set_xticks(list(positions) + [len(values)], [str(v) for v in values] + ["dropped"],
                      fontsize=8 if len(values) < 25 else 6)
    ax.set_xlabel("channels in the cluster")
    ax.set_ylabel("number of clusters")
    ax.set_title(title or f"Cluster sizes: {c} channels in K = {groups.k} clusters "
                          f"(largest {int(sizes.max()) if len(sizes) else 0})", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


# --- whole-model views ---------------------------------------------------------------------------------


def distortion_chart(compression: Mapping, layers: Iterable[LayerInfo] | None = None) -> Figure:
    """Clustering distortion (squared distance of each channel to its replacement, summed) per compressed layer.

    ``compression`` is a compressed model's ``.compression`` dict. With ``layers`` the bars are labelled
    ``enc.3.fc1`` etc., coloured by sublayer and, where the layer's C is known, the bar text shows K/C.
    Linear scale, so that bars compare as they look (a log axis made ~70 look like nothing beside ~100).
    """
    distortion = dict((compression or {}).get("distortion") or {})
    plan = dict((compression or {}).get("plan") or {})
    by_name = {l.name: l for l in (layers or [])}
    names = [l.name for l in layers if l.name in distortion] if layers else list(distortion)
    names += [n for n in distortion if n not in names]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax = fig.add_subplot()
    method = (compression or {}).get("method", "?")
    if not names:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No layer was compressed", ha="center", va="center")
        return fig
    labels = [by_name[n].label if n in by_name else n for n in names]
    colors = [SUBLAYER_COLORS.get(_sublayer(by_name[n]), "#4C72B0") if n in by_name else "#4C72B0" for n in names]
    values = [max(float(distortion[n]), 1e-12) for n in names]
    ax.bar(range(len(names)), values, color=colors)
    ax.set_yscale("linear")
    ax.set_xticks(range(len(names)), labels, rotation=90, fontsize=6 if len(names) > 40 else 8)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel("distortion Σ‖row − replacement‖²\n(linear scale)")
    ks = [f"{plan[n]}" for n in names if n in plan]
    ax.set_title(f"Per-layer distortion ({method}, {len(names)} layers; lower = closer to the original)"
                 + ("" if ks else ""), fontsize=10, loc="left")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if by_name:
        used = [k for k in SUBLAYERS if any(n in by_name and _sublayer(by_name[n]) == k for n in names)]
        fig.legend(handles=[Patch(color=SUBLAYER_COLORS[k], label=k) for k in used], loc="outside right upper",
                   fontsize=8, title="sublayer", title_fontsize=8)
    return fig


def sensitivity_chart(curves: Sequence[SensitivityCurve], *, relative: bool = True, title: str | None = None,
                      max_legend: int = 16) -> Figure:
    """Data-free distortion vs layer sparsity, one line per layer (no pyplot: safe in threads, nothing leaks).

    Flat, low curves are layers that compress cheaply; steep ones are sensitive. Residual-stream writers
    (fc2, out) are dashed.
    """
    from matplotlib import colormaps

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps["viridis"]
    n = max(1, len(curves) - 1)
    for i, c in enumerate(curves):
        ys = c.relative if relative else c.distortion
        ax.plot([100 * s for s in c.sparsities], ys, marker="o", ms=3, lw=1.2, color=cmap(i / n),
                ls="--" if c.writes_residual else "-", label=c.label or c.name)
    ax.set_xlabel("layer sparsity 1 - K/C (%)")
    ax.set_ylabel("relative distortion (fraction of layer energy)" if relative else "distortion")
    weighted = any(c.weighted for c in curves)
    ax.set_title(title or f"Data-free layer sensitivity ({'importance-weighted ' if weighted else ''}"
                          f"{curves[0].method if curves else 'kmeans'} distortion)")
    ax.grid(alpha=0.3)
    if 0 < len(curves) <= max_legend:
        ax.legend(fontsize=7, ncol=2)
    return fig


def size_chart(original: Mapping | object, compressed: Mapping | object, folded: Mapping | object | None = None) -> Figure:
    """Parameters and bytes before and after compression (SizeReport objects or their ``as_dict()``).

    Two panels (millions of parameters, MB in memory); ``folded`` adds a third bar per panel when given.
    """
    def get(report, key):
        return report[key] if isinstance(report, Mapping) else getattr(report, key)

    reports = [("original", original, "#8C8C8C"), ("compressed", compressed, "#4C72B0")]
    if folded is not None:
        reports.append(("folded", folded, "#55A868"))
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (key, unit, scale, what) in zip(axes, [("nonzero_params", "M", 1e6, "non-zero parameters"),
                                                   ("bytes", "MB", 1e6, "bytes in memory")]):
        vals = [get(r, key) / scale for _, r, _ in reports]
        bars = ax.bar([n for n, _, _ in reports], vals, color=[c for _, _, c in reports])
        base = vals[0] or 1.0
        for bar, v in zip(bars, vals):
            ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.1f} {unit}\n({100 * v / base:.0f}%)",
                    ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, max(vals) * 1.3 if max(vals) > 0 else 1)
        ax.set_title(what, fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    return fig


# --- teaching ------------------------------------------------------------------------------------------


def how_it_works_figure(weight: torch.Tensor, bias: torch.Tensor | None, k: int, seed: int = 0,
                        layer_label: str = "layer") -> Figure:
    """The method on one real layer, for teaching: the channels, k-means with K clusters, and the
    structured magnitude baseline with the same K, side by side.

    Panel 1: the layer's channels (rows) as dots in PCA space. Panel 2: k-means groups them into K
    clusters; every channel is replaced by its cluster's centroid (black cross). Panel 3: magnitude
    pruning keeps the K channels with the largest norm and drops the rest (grey), which then output 0.
    """
    rows = channel_rows(weight, bias)
    c = rows.shape[0]
    k = int(max(1, min(k, c)))
    km = kmeans_channels(weight, bias, k, seed=seed)
    mag = magnitude_channels(weight, bias, k, seed=seed)
    fig = Figure(figsize=(13, 4.4), layout="constrained")
    ax0, ax1, ax2 = fig.subplots(1, 3, sharex=True, sharey=True)
    points, explained = pca_2d(rows)
    norms = rows.norm(dim=1).numpy()
    sc = ax0.scatter(points[:, 0], points[:, 1], s=9, c=norms, cmap="viridis", linewidths=0)
    fig.colorbar(sc, ax=ax0, label="channel norm ‖row‖", shrink=0.8)
    ax0.set_title(f"1. {layer_label}: C = {c} channels\n(each dot is one output channel = one weight row)",
                  fontsize=10)
    ax0.set_xlabel("principal axis 1")
    ax0.set_ylabel("principal axis 2")
    ax0.grid(alpha=0.25)
    rel = lambda g: g.distortion / max(float((rows**2).sum()), 1e-12)  # noqa: E731
    draw_cluster_scatter(ax1, weight, bias, km,
                         f"2. k-means: K = {k} clusters, each channel → its centroid\n"
                         f"sparsity 1 − K/C = {100 * (1 - k / c):.1f}%, distortion {100 * rel(km):.1f}% of ‖W‖²")
    draw_cluster_scatter(ax2, weight, bias, mag,
                         f"3. magnitude baseline: keep the K = {k} largest\n"
                         f"channels, drop {c - k}; distortion {100 * rel(mag):.1f}% of ‖W‖²")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax0, ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(4))
    for ax in (ax1, ax2):
        ax.set_ylabel("")
    return fig


def fold_figure(index: torch.Tensor | np.ndarray, k: int, max_channels: int = 24, *, unit: str | None = "ffn-neuron",
                head_dim: int | None = None, leader: str | None = None, partner: str | None = None) -> Figure:
    """Why clustered layers really shrink, drawn for the unit the layer leads (``LayerInfo.unit``).

    Draws the channel -> cluster assignment for the first ``max_channels`` channels as lines from channel slots
    to cluster-row slots. ``unit``: ``"ffn-neuron"`` (fc1 channels that share a centroid give the same
    activation, so fc2 adds up their columns), ``"value-dim"`` (v_proj rows clustered within each head, out_proj
    adds up their columns), ``"qk-dim"`` (query dims of one head that share a row keep one q_proj row, k_proj
    sums the matching rows, the softmax scale is kept) or None (a layer that leads no foldable unit, e.g. k,
    out or fc2: its output channels are clustered in place, as in the paper, and nothing folds away).
    ``head_dim``: channels per head, for per-head units; each head's rows are drawn under its own channels,
    heads separated by dotted lines. ``leader``/``partner``: the names written for the two layers (default:
    fc1/fc2, v_proj/out_proj, q_proj/k_proj). The figure's caption line says how the partner folds.
    """
    texts = {  # unit -> (what the channels are, what the kept rows are, title, how the partner folds)
        "ffn-neuron": ("C channels\n(original {leader})", "K rows kept\n(folded {leader})",
                       "Folding: {n} channels use only {m} distinct rows",
                       "{partner} adds up the columns of the channels that share a row: both layers shrink "
                       "from C to K."),
        "value-dim": ("value dims\n(original {leader})", "rows kept\n(folded {leader})",
                      "Folding value dims per head: {n} dims use only {m} distinct rows",
                      "Clusters stay within each head; {partner} adds up the columns of the dims that share a row."),
        "qk-dim": ("query dims\n(original {leader})", "rows kept\n(folded {leader})",
                   "Folding query/key dims per head: {n} dims use only {m} distinct rows",
                   "Query dims of a head that share a row keep one {leader} row; {partner} adds up their key rows; "
                   "the softmax scale stays 1/\u221a(head size)."),
        None: ("C output channels\n({leader})", "K centroid rows\n(in place)",
               "Clustering in place: {n} channels use only {m} distinct rows",
               "Nothing folds away: {leader} leads no foldable unit, so its output channels are clustered in place "
               "(per layer, as in the paper) and it still outputs C channels."),
    }
    names = {"ffn-neuron": ("fc1", "fc2"), "value-dim": ("v_proj", "out_proj"), "qk-dim": ("q_proj", "k_proj"),
             None: ("this layer", "")}
    if unit not in texts:
        raise ValueError(f"Unknown unit {unit!r}; choose one of: {', '.join(map(str, texts))}.")
    index = np.asarray(index.detach().cpu() if isinstance(index, torch.Tensor) else index)[:max_channels]
    n = len(index)
    per_head = unit in ("value-dim", "qk-dim") and bool(head_dim)
    spans = [(s, min(n, s + head_dim)) for s in range(0, n, head_dim)] if per_head else [(0, n)]
    x_row: dict[int, float] = {}  # cluster -> x of its row, under the channels it gathers
    for s, e in spans:
        used_here = sorted(set(int(g) for g in index[s:e] if g < k))
        for i, g in enumerate(used_here):
            x_row.setdefault(g, s + (i + 0.5) * (e - s) / len(used_here) - 0.5)
    used = sorted(x_row)
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.add_subplot()
    from matplotlib import colormaps

    palette = colormaps["tab20"].colors
    for c, g in enumerate(index):
        if g >= k:
            ax.plot([c, c], [1, 0.85], color=DROPPED_COLOR, lw=1)
            continue
        ax.plot([c, x_row[int(g)]], [1, 0], color=palette[g % len(palette)], lw=1.4)
    ax.scatter(range(n), [1] * n, s=30, c=[palette[g % len(palette)] if g < k else DROPPED_COLOR for g in index],
               zorder=3, label="channels")
    ax.scatter([x_row[g] for g in used], [0] * len(used), s=70,
               marker="s", c=[palette[g % len(palette)] for g in used], zorder=3, label="shared rows (clusters)")
    if per_head:
        ax.vlines([s - 0.5 for s, _ in spans[1:]], -0.2, 1.2, colors="#999999", linestyles=":", lw=1)
        for h, (s, e) in enumerate(spans):
            ax.text((s + e - 1) / 2, 1.17, f"head {h}", ha="center", va="bottom", fontsize=8, color="#555555")
    default_leader, default_partner = names[unit]
    words = {"leader": leader or default_leader, "partner": partner or default_partner, "n": n, "m": len(used)}
    top, bottom, title, caption = (t.format(**words) for t in texts[unit])
    if len(used) == 1:
        title = title.replace("only 1 distinct rows", "only 1 row")
    ax.set_yticks([0, 1], [bottom, top])
    ax.set_xticks([])
    ax.set_ylim(-0.25, 1.35 if per_head else 1.25)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(caption, fontsize=8, wrap=True)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    fig.legend(handles=[Line2D([], [], marker="o", ls="", color="#4C72B0", label="channel"),
                        Line2D([], [], marker="s", ls="", color="#4C72B0", label="cluster row")],
               fontsize=8, loc="outside right center")
    return fig


__all__ = [
    "sparsity_chart", "cluster_scatter", "cluster_sizes", "cluster_size_counts", "distortion_chart",
    "size_chart", "how_it_works_figure", "fold_figure", "pca_2d", "draw_cluster_scatter",
]


# --- tuning history ------------------------------------------------------------------------------------


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: none removes at least as many parameters (x) with at most
    the same WER (y), better in one. Sorted by x."""
    front = []
    for i, (x, y) in enumerate(points):
        beaten = any((x2 >= x and y2 <= y) and (x2 > x or y2 < y) for j, (x2, y2) in enumerate(points) if j != i)
        if not beaten:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], points[i][1]))


STEP_MARKERS = {"compressed": "o", "repaired": "s", "fine-tuned": "^"}
"""The marker of a history point by the step its model was at (``point["step"]``; none: compressed)."""


def plan_key(point: Mapping) -> tuple:
    """What makes two history points the same plan at different recovery steps: model, method, seed, units, the
    per-layer K and the vocabulary (not the step, not the WER)."""
    plan = tuple(sorted((str(n), int(k)) for n, k in (point.get("plan") or {}).items()))
    return (point.get("model"), str(point.get("method")), point.get("seed"), point.get("units"), plan,
            point.get("vocabulary"))


def step_links(history: Sequence[Mapping]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` of the arrows that join the points of one plan in step order (compressed -> repaired
    -> fine-tuned): for each plan with points at two or more steps, the last point of each step to the last of the
    next step it has. Reference points are left out."""
    order = {s: i for i, s in enumerate(STEP_MARKERS)}
    groups: dict[tuple, dict[int, int]] = {}
    for i, h in enumerate(history):
        if h.get("reference"):
            continue
        groups.setdefault(plan_key(h), {})[order.get(str(h.get("step") or "compressed"), 0)] = i
    links = []
    for by_step in groups.values():
        steps = sorted(by_step)
        links += [(by_step[a], by_step[b]) for a, b in zip(steps, steps[1:])]
    return links


def tuning_history_chart(history: Sequence[Mapping], title: str | None = None) -> Figure:
    """Every evaluated plan as a point: parameters really removed (x, %) against WER (y, %).

    ``history`` holds dicts with ``n`` (the point's number), ``method``, ``params_removed`` and ``wer``
    (fractions), ``wer_original`` and optionally ``reference`` (a reference setting: hollow diamond, left out
    of the front) and ``step`` (``"compressed"``, ``"repaired"``, ``"fine-tuned"``: the marker's shape). Points are
    coloured by method and numbered; the points of one plan at successive recovery steps are joined by arrows
    (:func:`step_links`), so the chart shows what each step buys back; the Pareto front (the user's plans nothing
    else beats on both axes) is a line; the original model is a star at 0 % removed.
    """
    fig = Figure(figsize=(7.2, 4.4), layout="constrained")
    ax = fig.add_subplot()
    if not history:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No plan evaluated yet: press Evaluate this plan", ha="center", va="center")
        return fig
    from matplotlib import colormaps
    from matplotlib.patches import FancyArrowPatch

    palette = colormaps["tab10"].colors
    methods = list(dict.fromkeys(str(h["method"]) for h in history))
    xy = [(100 * float(h["params_removed"]), 100 * float(h["wer"])) for h in history]
    own = [i for i, h in enumerate(history) if not h.get("reference")]
    steps = [str(h.get("step") or "compressed") for h in history]
    for m_i, method in enumerate(methods):
        for ref in (False, True):
            idx = [i for i, h in enumerate(history) if str(h["method"]) == method and bool(h.get("reference")) == ref]
            labelled = False
            for s_i, step in enumerate(STEP_MARKERS):
                mine = [i for i in idx if steps[i] == step or (s_i == 0 and steps[i] not in STEP_MARKERS)]
                if mine:
                    ax.scatter([xy[i][0] for i in mine], [xy[i][1] for i in mine], s=60 if ref else 36, zorder=3,
                               marker="D" if ref else STEP_MARKERS[step],
                               facecolors="none" if ref else palette[m_i % 10], edgecolors=palette[m_i % 10],
                               linewidths=1.5 if ref else 0,
                               label=None if labelled else f"reference: {method}" if ref else method)
                    labelled = True
    for h, (x, y) in zip(history, xy):
        ax.annotate(str(h["n"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    links = step_links(history)
    for i, j in links:
        color = palette[methods.index(str(history[i]["method"])) % 10]
        ax.add_patch(FancyArrowPatch(xy[i], xy[j], arrowstyle="-|>", mutation_scale=12, color=color, lw=1.3,
                                     shrinkA=4, shrinkB=5, zorder=2, label="_step"))
    front = [own[i] for i in pareto_front([xy[i] for i in own])]
    if front:
        ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], color="black", lw=1.2, ls="--", zorder=2,
                label=f"Pareto front ({len(front)} plan{'s' if len(front) != 1 else ''})")
    originals = [100 * float(h["wer_original"]) for h in history if h.get("wer_original") is not None]
    if originals:
        ax.scatter([0], [originals[-1]], marker="*", s=140, color="#2a9d8f", zorder=4, label="original model")
        ax.axhline(originals[-1], color="#2a9d8f", lw=0.8, alpha=0.6)
    ax.set_xlabel("parameters really removed (% of all the model's)")
    ax.set_ylabel("WER on the evaluation clips (%)")
    ax.set_title(_wrap(title or f"Tuning history: {len(history)} evaluated plan{'s' if len(history) != 1 else ''}",
                       70), fontsize=10, loc="left")
    ax.set_xlim(left=-0.5)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    shown = {s for i, s in enumerate(steps) if not history[i].get("reference")}
    if shown - {"compressed"}:  # one legend entry per recovery step, and the arrows that join one plan's steps
        for step, marker in STEP_MARKERS.items():
            if step in shown:
                handles.append(Line2D([], [], marker=marker, ls="", color="#666666", label=f"step: {step}"))
        if links:
            handles.append(Line2D([], [], color="#666666", lw=1.3, marker=">", markevery=[1],
                                  label="same plan, next step"))
        labels = [h.get_label() for h in handles]
    ax.legend(handles, labels, fontsize=8, loc="best")
    return fig


def measured_vs_datafree_chart(groups: Sequence[str], wer_increase: Sequence[float], datafree: Sequence[float],
                               sparsity: float, title: str | None = None) -> Figure:
    """Where the data-free proxy is right and where it is wrong: per group of layers (a block or a unit kind)
    compressed ALONE at ``sparsity``, the measured WER increase (left, points) beside the data-free relative
    distortion (right), same order. The title gives their Spearman rank correlation (1: same ranking)."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax0, ax1 = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(groups))
    ax0.barh(y, [100 * w for w in wer_increase], color=["#C44E52" if w > 0 else "#55A868" for w in wer_increase])
    ax0.set_yticks(y, list(groups), fontsize=8)
    ax0.invert_yaxis()
    ax0.axvline(0, color="black", lw=0.8)
    ax0.set_xlabel("measured: WER increase (points) on the evaluation clips")
    ax1.barh(y, [100 * d for d in datafree], color="#4C72B0")
    ax1.set_xlabel("data-free: relative clustering distortion (%)")
    rho = _spearman(wer_increase, datafree) if len(groups) > 2 else float("nan")
    fig.suptitle(_wrap(title or f"Each group compressed alone at {100 * sparsity:.0f}% sparsity: measured vs "
                                f"data-free (rank correlation {rho:.2f})", 100), fontsize=10)
    for ax in (ax0, ax1):
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    return fig


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); nan when either side is constant."""
    from scipy.stats import spearmanr

    if len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


# --- recovery ------------------------------------------------------------------------------------------


def loss_chart(points: Sequence[tuple[int, float]], total_steps: int | None = None, title: str | None = None) -> Figure:
    """A fine-tune's training loss as it goes: ``points`` of (optimizer step, loss); the x axis spans
    ``total_steps`` when known, so the line grows towards the right edge while it trains."""
    fig = Figure(figsize=(7.2, 3.0), layout="constrained")
    ax = fig.add_subplot()
    if points:
        x, y = zip(*points)
        ax.plot(x, y, color="#C44E52", lw=1.6, marker="o" if len(points) < 40 else None, ms=3)
    else:
        ax.text(0.5, 0.5, "No step yet: the original model labels the clips first", ha="center", va="center",
                transform=ax.transAxes, color="#555555")
    if total_steps:
        ax.set_xlim(0, max(total_steps, 1) + 0.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(title or "Fine-tuning loss (distillation from the original model)", fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    return fig


def repair_unit_figure(before: torch.Tensor, after: torch.Tensor, bias_before: torch.Tensor | None = None,
                       bias_after: torch.Tensor | None = None, *, layer: str = "fc2", reads: str = "fc1",
                       max_columns: int = 48, max_rows: int = 16) -> Figure:
    """One repaired layer before and after repair: the L2 norm of each input column (one per kept unit of the
    layer it reads: an FFN neuron, a value dim) as paired bars, and a heat strip of the change of its weights
    (after - before) on the first ``max_rows`` outputs x ``max_columns`` inputs."""
    b = before.detach().to(torch.float64).cpu()
    a = after.detach().to(torch.float64).cpu()
    n = min(max_columns, b.shape[1])
    norms_b, norms_a = b[:, :n].norm(dim=0).numpy(), a[:, :n].norm(dim=0).numpy()
    fig = Figure(figsize=(9.6, 4.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 2])
    x = np.arange(n)
    top.bar(x - 0.2, norms_b, width=0.4, color=DROPPED_COLOR, label="compressed (before repair)")
    top.bar(x + 0.2, norms_a, width=0.4, color="#4C72B0", label="repaired")
    top.set_xlim(-0.7, n - 0.3)
    top.set_ylabel("column L2 norm")
    change = float((a - b).norm() / b.norm().clamp_min(1e-12))
    bias = ""
    if bias_before is not None and bias_after is not None:
        db = (bias_after.detach().double().cpu() - bias_before.detach().double().cpu()).norm()
        bias = f", bias moved by {float(db):.3g} (L2)"
    top.set_title(_wrap(f"{layer} re-solved on calibration audio: each column reads one kept unit of {reads} "
                        f"({b.shape[1]} kept; first {n} drawn); weights changed by {100 * change:.1f} %{bias}", 110),
                  fontsize=10, loc="left")
    top.legend(fontsize=8, loc="upper right")
    top.grid(axis="y", alpha=0.3)
    rows = min(max_rows, b.shape[0])
    delta = (a - b)[:rows, :n].numpy()
    lim = float(np.abs(delta).max()) or 1.0
    image = bottom.imshow(delta, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    bottom.set_xlabel(f"input column of {layer} (kept unit of {reads})")
    bottom.set_ylabel(f"output\n(first {rows})")
    bottom.set_title("change of the weights: repaired − compressed", fontsize=9, loc="left")
    fig.colorbar(image, ax=bottom, shrink=0.9, label="Δ weight")
    return fig
