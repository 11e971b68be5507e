"""kmeans-fold and its data-free compensation switches, each checked against what it claims to compute."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prunelab import CompressionConfig, compress
from prunelab.errors import PlanError
from prunelab.groups import UnitContext
from prunelab.methods import get_method, kmeans_channels
from prunelab.methods.compensation import ridge_refit, variance_scale
from prunelab.methods.predictive import sample_activations


def _ffn(c=12, d=6, o=5, seed=0, gamma=None, beta=None):
    g = torch.Generator().manual_seed(seed)
    w1, b1 = torch.randn(c, d, generator=g), torch.randn(c, generator=g)
    w2, b2 = torch.randn(o, c, generator=g), torch.randn(o, generator=g)
    gamma = torch.rand(d, generator=g) + 0.5 if gamma is None else gamma
    beta = 0.1 * torch.randn(d, generator=g) if beta is None else beta
    return w1, b1, UnitContext("ffn-neuron", w2, b2, gamma, beta)


def fold(w1, b1, k, ctx, **options):
    return get_method("kmeans-fold").apply(w1, b1, k, context=ctx, options=options)


def test_all_switches_off_is_the_papers_kmeans_and_the_plain_fold():
    w1, b1, ctx = _ffn()
    unit = fold(w1, b1, 5, ctx)
    labels = kmeans_channels(w1, b1, 5).index
    for j in range(5):  # independent: cluster means of the original rows, fc2 columns summed per cluster
        members = labels == j
        torch.testing.assert_close(unit.weight[j], w1[members].mean(0))
        torch.testing.assert_close(unit.bias[j], b1[members].mean())
        torch.testing.assert_close(unit.partner_weight[:, j], ctx.partner_weight[:, members].sum(1))
    torch.testing.assert_close(unit.partner_bias, ctx.partner_bias)


def test_variance_scale_of_identical_orthogonal_and_single_rows():
    rows = torch.tensor([[1.0, 0, 0], [2.0, 0, 0], [0, 1.0, 0], [0, 0, 3.0], [5.0, 5.0, 5.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2])
    scale = variance_scale(rows, labels, 3)
    # parallel rows (cos 1): no shrinkage; orthogonal pair: sqrt(2 / 1); a single row: 1
    torch.testing.assert_close(scale, torch.tensor([1.0, 2 ** 0.5, 1.0], dtype=torch.float64))


def test_variance_switch_scales_each_centroid_by_its_clusters_factor():
    w1, b1, ctx = _ffn()
    plain, vp = fold(w1, b1, 4, ctx), fold(w1, b1, 4, ctx, variance=True)
    labels = kmeans_channels(w1, b1, 4).index
    scale = variance_scale(torch.cat([w1, b1[:, None]], 1).double(), labels, 4).float()
    torch.testing.assert_close(vp.weight, plain.weight * scale[:, None])
    torch.testing.assert_close(vp.bias, plain.bias * scale)
    assert (scale > 1).any()


def test_scale_merge_weights_each_member_by_its_norm_ratio():
    r = torch.tensor([[1.0, 2.0, -1.0]])
    w1 = torch.cat([r, 2 * r])  # the second neuron's row is twice the first's: the centroid is 1.5 r
    b1 = torch.tensor([0.5, 1.0])
    a = torch.tensor([[1.0, 10.0], [-2.0, 3.0]])  # fc2 [O=2, C=2]
    ctx = UnitContext("ffn-neuron", a, None, None, None)
    plain, scaled = fold(w1, b1, 1, ctx), fold(w1, b1, 1, ctx, merge="scale")
    torch.testing.assert_close(scaled.weight, 1.5 * r)
    torch.testing.assert_close(plain.partner_weight[:, 0], a.sum(1))
    torch.testing.assert_close(scaled.partner_weight[:, 0], a[:, 0] / 1.5 + a[:, 1] * 2 / 1.5)


def test_mean_shift_keeps_the_stand_in_expected_output():
    w1, b1, ctx = _ffn(c=16)
    shifted, plain = fold(w1, b1, 6, ctx, mean_shift=True, n_samples=2048), fold(w1, b1, 6, ctx)

    def mean_out(w1_, b1_, w2, b2):  # E[fc2(GELU(fc1(x)))] under the Gaussian stand-in, same draws
        h = sample_activations(w1_, b1_, ctx.ln_weight, ctx.ln_bias, n_samples=2048, seed=0)
        return (h @ w2.double().T + b2.double()).mean(0)

    want = mean_out(w1, b1, ctx.partner_weight, ctx.partner_bias)
    got = mean_out(shifted.weight, shifted.bias, shifted.partner_weight, shifted.partner_bias)
    off = mean_out(plain.weight, plain.bias, plain.partner_weight, plain.partner_bias)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (off - want).abs().max() > 100 * (got - want).abs().max()
    # with nothing merged there is nothing to correct
    same = fold(w1, b1, 16, ctx, mean_shift=True)
    torch.testing.assert_close(same.partner_bias, ctx.partner_bias, atol=1e-5, rtol=1e-5)


def test_ridge_refit_solves_the_regularised_least_squares_it_states():
    w1, b1, ctx = _ffn(c=16)
    w2 = ctx.partner_weight.double()
    plain = fold(w1, b1, 6, ctx)
    h = sample_activations(w1, b1, ctx.ln_weight, ctx.ln_bias, n_samples=1024, seed=0)
    hk = sample_activations(plain.weight, plain.bias, ctx.ln_weight, ctx.ln_bias, n_samples=1024, seed=0)
    for mu in (1e-3, 0.5):
        got = ridge_refit(w2, plain.partner_weight.double(), h, hk, mu)
        # independent: lstsq on the stacked system [hkc; sqrt(m N) I] W^T = [hc w2^T; sqrt(m N) w2_fold^T]
        hc, hkc = h - h.mean(0), hk - hk.mean(0)
        m = mu * float((hkc ** 2).sum(0).mean() / h.shape[0])
        a = torch.cat([hkc, (m * h.shape[0]) ** 0.5 * torch.eye(6, dtype=torch.float64)])
        y = torch.cat([hc @ w2.T, (m * h.shape[0]) ** 0.5 * plain.partner_weight.double().T])
        torch.testing.assert_close(got, torch.linalg.lstsq(a, y).solution.T)
    # a strong pull keeps the plain fold; the method's own bias follows the mean formula
    strong = fold(w1, b1, 6, ctx, ridge=1e6, n_samples=1024)
    torch.testing.assert_close(strong.partner_weight, plain.partner_weight, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(strong.partner_bias, fold(w1, b1, 6, ctx, mean_shift=True, n_samples=1024).partner_bias,
                               atol=1e-3, rtol=1e-3)
    with pytest.raises(PlanError, match="ridge must be >= 0"):
        fold(w1, b1, 6, ctx, ridge=-1.0)


def test_fc2_features_group_neurons_by_what_they_feed():
    w1 = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.0, 1.1]])
    b1 = torch.zeros(4)
    w2 = torch.tensor([[50.0, -50.0, 50.0, -50.0]])  # neurons 0 and 2 feed the same, 1 and 3 the same
    ctx = UnitContext("ffn-neuron", w2, None, None, None)
    by_fc1 = fold(w1, b1, 2, ctx)
    by_both = fold(w1, b1, 2, ctx, features="fc1+fc2")
    rows = lambda u: [x for row in sorted(u.weight.tolist()) for x in row]  # noqa: E731
    assert rows(by_fc1) == pytest.approx([0.0, 1.05, 1.0, 0.05])
    assert rows(by_both) == pytest.approx([0.5, 0.5, 0.5, 0.6])
    assert sorted(by_both.partner_weight[0].tolist()) == [-100.0, 100.0]


def test_ln_gain_measures_distances_as_the_pre_activation_sees_them():
    # plain rows pair {0,1} and {2,3} by column 1; a LayerNorm gain of 100 on input 0 pairs them by column 0
    w1 = torch.tensor([[0.0, 0.0], [0.1, 0.05], [0.0, 5.0], [0.1, 5.05]])
    b1 = torch.zeros(4)
    ctx = UnitContext("ffn-neuron", torch.ones(1, 4), None, torch.tensor([100.0, 1.0]), torch.zeros(2))
    plain, ln = fold(w1, b1, 2, ctx), fold(w1, b1, 2, ctx, ln_gain=True)
    assert sorted(plain.weight[:, 1].tolist()) == pytest.approx([0.025, 5.025])
    assert sorted(ln.weight[:, 0].tolist()) == pytest.approx([0.0, 0.1])
    # the weights themselves are not rescaled: the centroid is a mean of ORIGINAL rows
    assert sorted(ln.weight[:, 1].tolist()) == pytest.approx([2.5, 2.55])


def test_options_and_units_are_checked_readably():
    w1, b1, ctx = _ffn()
    with pytest.raises(PlanError, match="features must be one of fc1, fc1\\+fc2"):
        fold(w1, b1, 4, ctx, features="fc2")
    with pytest.raises(PlanError, match="merge must be one of sum, scale"):
        fold(w1, b1, 4, ctx, merge="max")
    with pytest.raises(PlanError, match="FFN neurons"):
        get_method("kmeans-fold").apply(w1, b1, 4, context=UnitContext("qk-dim", torch.randn(12, 6), None, heads=2))


def test_compress_with_kmeans_fold_equals_the_papers_kmeans_folded(tiny_whisper):
    """Through compress(): the switch-free unit method gives the same model as the paper's k-means + fold."""
    feats = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[50258, 50259, 50359, 50363, 400, 401]])
    a = compress(tiny_whisper, CompressionConfig(method="kmeans-fold", sparsity=0.25, preset="fc1", units="foldable"))
    b = compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.25, preset="fc1"))
    c = compress(tiny_whisper, CompressionConfig(method="kmeans-fold", sparsity=0.25, preset="fc1", units="foldable",
                                                 options={"variance": True, "mean_shift": True, "merge": "scale"}))
    with torch.no_grad():
        la, lb, lc = (m.model(input_features=feats, decoder_input_ids=ids).logits for m in (a, b, c))
    torch.testing.assert_close(la, lb, atol=1e-4, rtol=1e-4)
    assert a.compression["params_removed"] == pytest.approx(b.compression["params_removed"])
    assert (la - lc).abs().max() > 1e-3  # the switches change the model
    assert F.kl_div(F.log_softmax(lc, -1), F.log_softmax(la, -1), log_target=True, reduction="batchmean") < 10
