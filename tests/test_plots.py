"""The plot functions on tiny data: right number of bars/points, labelled axes, no Gradio needed."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from prunelab.report import plots
from prunelab.compression.layers import LayerInfo
from prunelab.methods import kmeans_channels, magnitude_channels
from prunelab.compression.plan import Plan
from prunelab.report.size import SizeReport


def _layers() -> list[LayerInfo]:
    out = []
    for part, blocks, groups in (("encoder", 2, ("self_attn",)), ("decoder", 1, ("self_attn", "cross_attn"))):
        for b in range(blocks):
            for g in groups:
                for kind in ("q", "k", "v", "out"):
                    attn = "self_attn" if g == "self_attn" else "encoder_attn"
                    out.append(LayerInfo(f"model.{part}.layers.{b}.{attn}.{kind}_proj", part, b, g, kind, 8, 8, True))
            out.append(LayerInfo(f"model.{part}.layers.{b}.fc1", part, b, "ffn", "fc1", 32, 8, True))
            out.append(LayerInfo(f"model.{part}.layers.{b}.fc2", part, b, "ffn", "fc2", 8, 32, True))
    return out


def _bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _scatter_sizes(ax) -> list[int]:
    return [len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]


@pytest.fixture
def layer_weights():
    torch.manual_seed(0)
    # three well separated groups of channels, so k-means with K=3 finds them
    centers = torch.randn(3, 6) * 5
    weight = torch.cat([centers[i] + 0.05 * torch.randn(10, 6) for i in range(3)])
    bias = torch.randn(30) * 0.01
    return weight, bias


def test_sparsity_chart_one_bar_per_layer_per_part():
    layers = _layers()
    plan = Plan.from_sparsity(layers, 0.5, "ffn")
    fig = plots.sparsity_chart(layers, plan)
    assert isinstance(fig, Figure)
    enc, dec = fig.axes[:2]
    assert len(_bars(enc)) == sum(l.part == "encoder" for l in layers) == 12
    assert len(_bars(dec)) == sum(l.part == "decoder" for l in layers) == 10
    assert enc.get_title(loc="left").startswith("Encoder") and dec.get_title(loc="left").startswith("Decoder")
    assert "sparsity" in enc.get_ylabel()
    assert enc.get_xlabel() == "encoder block"
    assert [t.get_text() for t in enc.get_xticklabels()] == ["0", "1"]
    heights = sorted({round(b.get_height()) for b in _bars(enc)})
    assert heights == [0, 50]  # attention untouched, FFN at 50 %
    # FFN bars are the 50 % ones
    ffn_colors = {plots.SUBLAYER_COLORS["fc1"], plots.SUBLAYER_COLORS["fc2"]}
    from matplotlib.colors import to_hex
    assert {to_hex(b.get_facecolor()) for b in _bars(enc) if b.get_height() > 0} == {c.lower() for c in ffn_colors}
    legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_labels[:4] == ["q", "k", "v", "out"] and "cross.q" in legend_labels and "fc1" in legend_labels


def test_sparsity_chart_accepts_dict_and_encoder_only_models():
    layers = [l for l in _layers() if l.part == "encoder"]
    fig = plots.sparsity_chart(layers, {layers[0].name: 4})
    assert len(fig.axes) == 1
    heights = [b.get_height() for b in _bars(fig.axes[0])]
    assert len(heights) == 12 and heights.count(50.0) == 1 and heights.count(0.0) == 11


def test_cluster_scatter_points_and_centroids(layer_weights):
    weight, bias = layer_weights
    groups = kmeans_channels(weight, bias, 3, seed=0)
    fig = plots.cluster_scatter(weight, bias, groups)
    ax = fig.axes[0]
    assert _scatter_sizes(ax) == [30, 3]  # 30 channels, 3 centroids
    assert ax.get_xlabel() == "principal axis 1" and ax.get_ylabel() == "principal axis 2"
    assert "K = 3" in ax.get_title()
    # channels of one cluster get one colour: 3 distinct colours for 3 clusters
    colors = ax.collections[0].get_facecolors()
    assert len({tuple(np.round(c, 3)) for c in colors}) == 3


def test_cluster_scatter_marks_dropped_channels(layer_weights):
    weight, bias = layer_weights
    groups = magnitude_channels(weight, bias, 5)
    ax = plots.cluster_scatter(weight, bias, groups).axes[0]
    assert _scatter_sizes(ax) == [5, 25, 5]  # kept, dropped, kept rows
    assert any("dropped" in t.get_text() for t in ax.get_legend().get_texts())


def test_cluster_sizes_histogram(layer_weights):
    weight, bias = layer_weights
    groups = kmeans_channels(weight, bias, 3, seed=0)
    sizes, dropped = plots.cluster_size_counts(groups)
    assert sorted(sizes.tolist()) == [10, 10, 10] and dropped == 0
    ax = plots.cluster_sizes(groups).axes[0]
    bars = _bars(ax)
    assert len(bars) == 1 and bars[0].get_height() == 3  # three clusters of size 10
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10"]
    assert ax.get_xlabel() == "channels in the cluster" and ax.get_ylabel() == "number of clusters"

    mag = magnitude_channels(weight, bias, 4)
    ax = plots.cluster_sizes(mag).axes[0]
    assert [b.get_height() for b in _bars(ax)] == [4, 26]  # 4 singletons, 26 dropped
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "dropped"]


def test_distortion_chart_bars_labels_and_linear_scale():
    layers = _layers()
    compression = {"method": "kmeans", "plan": {layers[4].name: 16, layers[5].name: 4},
                   "distortion": {layers[5].name: 2.0, layers[4].name: 0.5}}
    fig = plots.distortion_chart(compression, layers)
    ax = fig.axes[0]
    assert [b.get_height() for b in _bars(ax)] == [0.5, 2.0]  # model order, not dict order
    assert [t.get_text() for t in ax.get_xticklabels()] == ["enc.0.fc1", "enc.0.fc2"]
    assert ax.get_yscale() == "linear"
    assert "kmeans" in ax.get_title(loc="left")
    # without layers: names as labels
    ax = plots.distortion_chart(compression).axes[0]
    assert len(_bars(ax)) == 2
    # nothing compressed: an explanatory empty figure
    fig = plots.distortion_chart({"distortion": {}})
    assert "No layer" in fig.axes[0].texts[0].get_text()


def test_size_chart_before_after():
    before = SizeReport(params=1_000_000, nonzero_params=1_000_000, bytes=4_000_000, layer_params=800_000)
    after = SizeReport(params=700_000, nonzero_params=700_000, bytes=2_800_000, layer_params=500_000)
    fig = plots.size_chart(before, after.as_dict())
    assert len(fig.axes) == 2
    params_ax, bytes_ax = fig.axes
    assert [b.get_height() for b in _bars(params_ax)] == pytest.approx([1.0, 0.7])
    assert [b.get_height() for b in _bars(bytes_ax)] == pytest.approx([4.0, 2.8])
    assert [t.get_text() for t in params_ax.get_xticklabels()] == ["original", "compressed"]
    assert any("70%" in t.get_text() for t in params_ax.texts)


def test_how_it_works_three_panels(layer_weights):
    weight, bias = layer_weights
    fig = plots.how_it_works_figure(weight, bias, 3, seed=0, layer_label="enc.0.fc1")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3
    original, km, mag = panels
    assert _scatter_sizes(original) == [30]
    assert _scatter_sizes(km) == [30, 3]
    assert _scatter_sizes(mag) == [3, 27, 3]
    assert "C = 30" in original.get_title() and "enc.0.fc1" in original.get_title()
    assert "k-means" in km.get_title() and "90.0%" in km.get_title()  # sparsity 1 - 3/30
    assert "magnitude" in mag.get_title()


def test_fold_figure_lines_from_channels_to_clusters():
    index = torch.tensor([0, 1, 0, 2, 1, 0])
    ax = plots.fold_figure(index, 3).axes[0]
    assert len(ax.lines) == 6  # one line per channel
    assert _scatter_sizes(ax) == [6, 3]
    assert "6 channels use only 3 distinct rows" in ax.get_title()


def test_pca_2d_projects_onto_main_axes():
    rng = np.random.default_rng(0)
    x = np.zeros((50, 5))
    x[:, 2] = rng.normal(size=50) * 10
    x[:, 4] = rng.normal(size=50)
    pts, extra, explained = plots.pca_2d(x, x[:3])
    assert pts.shape == (50, 2) and extra.shape == (3, 2)
    assert np.allclose(np.abs(pts[:, 0]), np.abs(x[:, 2] - x[:, 2].mean()), atol=0.1)
    assert np.allclose(extra, pts[:3])
    assert explained == pytest.approx(1.0)
