"""Data-free sensitivity curves, channel importance and automatic mixed-sparsity allocation."""
import pytest
import torch

from prunelab.compression.allocate import allocate, allocate_from_curves
from prunelab.compression.layers import find_layers
from prunelab.compression.plan import PRESETS
from prunelab.compression.sensitivity import (SensitivityCurve, channel_importance, grid_ks, layer_curve,
                                              sensitivity_curves)
from prunelab.report.plots import sensitivity_chart


def _by_label(model):
    return {l.label: l for l in find_layers(model)}


@pytest.mark.parametrize("weighted", [False, True])
def test_curve_monotone_and_zero_at_full_k(weighted):
    torch.manual_seed(0)
    w, b = torch.randn(48, 12), torch.randn(48)
    imp = torch.rand(48) + 0.1 if weighted else None
    curve = layer_curve(w, b, importance=imp, grid=(0.1, 0.3, 0.5, 0.7, 0.9, 0.95))
    assert curve.ks == sorted(curve.ks) and curve.ks[-1] == 48 and curve.ks[0] == grid_ks(48, (0.95,))[0]
    d = curve.distortion
    assert all(a >= b_ for a, b_ in zip(d, d[1:])), d
    assert d[-1] == 0.0 and d[0] > 0
    assert curve.at(48) == 0.0
    rows = torch.cat([w, b[:, None]], 1)
    energy = float(((rows ** 2).sum(1) * (imp ** 2 if weighted else 1)).sum())
    assert curve.energy == pytest.approx(energy, rel=1e-5)
    assert 0 < curve.relative[0] <= 1
    # interpolation lies between neighbouring grid points
    k0, k1 = curve.ks[1], curve.ks[2]
    assert curve.distortion[2] / curve.energy <= curve.at((k0 + k1) / 2) <= curve.distortion[1] / curve.energy


def test_curves_on_a_model_monotone(tiny_whisper):
    layers = [l for l in find_layers(tiny_whisper.model) if PRESETS["encoder"](l)]
    curves = sensitivity_curves(tiny_whisper.model, layers, grid=(0.2, 0.5, 0.8))
    assert [c.name for c in curves] == [l.name for l in layers]
    for c in curves:
        assert all(a >= b for a, b in zip(c.distortion, c.distortion[1:]))
        assert c.distortion[-1] == 0.0 and c.ks[-1] == c.channels and c.weighted
    fig = sensitivity_chart(curves)
    assert len(fig.axes[0].lines) == len(curves)
    styles = [line.get_linestyle() for line in fig.axes[0].lines]
    assert styles == ['--' if c.writes_residual else '-' for c in curves] and '--' in styles and '-' in styles


def test_importance_matches_definition(tiny_whisper):
    model = tiny_whisper.model
    L = _by_label(model)
    get = model.get_submodule
    fc1, fc2 = L["enc.0.fc1"], L["enc.0.fc2"]
    raw = channel_importance(model, fc1, normalize=False)
    torch.testing.assert_close(raw, get(fc2.name).weight.detach().norm(dim=0))
    norm = channel_importance(model, fc1)
    assert float((norm ** 2).mean()) == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(norm / norm[0], raw / raw[0])
    # value channel i is read through column i of out_proj
    torch.testing.assert_close(channel_importance(model, L["enc.1.v"], normalize=False),
                               get(L["enc.1.out"].name).weight.detach().norm(dim=0))
    # query channel i is scored against key row i (and vice versa), bias appended when present
    kmod, qmod = get(L["dec.0.cross.k"].name), get(L["dec.0.cross.q"].name)
    krows = kmod.weight.detach() if kmod.bias is None else torch.cat([kmod.weight.detach(), kmod.bias.detach()[:, None]], 1)
    qrows = qmod.weight.detach() if qmod.bias is None else torch.cat([qmod.weight.detach(), qmod.bias.detach()[:, None]], 1)
    torch.testing.assert_close(channel_importance(model, L["dec.0.cross.q"], normalize=False), krows.norm(dim=1))
    torch.testing.assert_close(channel_importance(model, L["dec.0.cross.k"], normalize=False), qrows.norm(dim=1))
    # residual writers are uniform
    for label in ("enc.0.fc2", "dec.1.out"):
        assert torch.equal(channel_importance(model, L[label]), torch.ones(L[label].channels))


def test_importance_ctc_ffn_pairs(tiny_ctc):
    model = tiny_ctc.model
    fc1 = next(l for l in find_layers(model) if l.kind == "fc1")
    fc2_name = fc1.name.replace("intermediate_dense", "output_dense")
    torch.testing.assert_close(channel_importance(model, fc1, normalize=False),
                               model.get_submodule(fc2_name).weight.detach().norm(dim=0))


def _curve(name, ks, ys, c, ppc=10):
    return SensitivityCurve(name, name, c, ppc, list(ks), list(ys), energy=1.0)


def test_allocation_hits_target_and_prefers_cheap_layers():
    curves = [
        _curve("cheap", [10, 50, 100], [0.05, 0.0, 0.0], 100),  # 50 duplicated channels: free down to K=50
        _curve("costly", [10, 50, 100], [0.95, 0.6, 0.0], 100),
        _curve("mid", [10, 50, 100], [0.6, 0.2, 0.0], 100),
    ]
    for target in (0.1, 0.2, 0.3, 0.5):
        plan = allocate_from_curves(curves, target)
        removed = sum(100 - k for k in plan.clusters.values())
        assert abs(removed - target * 300) <= 1  # within one channel (all layers cost the same per channel)
    plan = allocate_from_curves(curves, 0.2)
    assert plan.clusters["cheap"] <= 50 and plan.clusters["costly"] == 100 and plan.clusters["mid"] == 100
    plan = allocate_from_curves(curves, 0.5)
    assert plan.clusters["cheap"] < plan.clusters["mid"] < plan.clusters["costly"]


def test_allocate_model_duplicated_layer_compressed_first(tiny_whisper):
    model = tiny_whisper.model
    layers = [l for l in find_layers(model) if PRESETS["encoder-ffn"](l)]
    dup = next(l for l in layers if l.kind == "fc1")
    mod = model.get_submodule(dup.name)
    half = dup.channels // 2
    with torch.no_grad():  # every channel of this layer has an exact twin: K = C/2 loses nothing
        mod.weight[half:] = mod.weight[:half]
        mod.bias[half:] = mod.bias[:half]
    for target in (0.15, 0.3):
        plan = allocate(model, target, preset="encoder-ffn", grid=(0.25, 0.5, 0.75, 0.9))
        assert set(plan.clusters) == {l.name for l in layers}
        total = sum(l.params for l in layers)
        achieved = plan.sparsity(layers, over="planned")
        per_channel = max(l.in_features + 1 for l in layers)
        assert abs(achieved - target) * total <= per_channel * len(layers)
        assert achieved >= target - 1e-9
        others = [plan.layer_sparsity(l) for l in layers if l.name != dup.name]
        assert plan.clusters[dup.name] <= half  # its free channels go first
        assert plan.layer_sparsity(dup) >= max(others)
        if target == 0.15:  # the free channels cover most of this target: nobody else comes close
            assert plan.layer_sparsity(dup) > max(others)
