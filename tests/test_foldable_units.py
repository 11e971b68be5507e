"""Foldable units (units="foldable"): FFN neurons, attention value dims and query/key dims per head.

Each fold must be exact for the clustered model (folded == unfolded), must really remove parameters, must
survive save/load, and must leave an uncompressed unit exactly as it was."""
import copy

import pytest
import torch

from prunelab import CompressionConfig, compress, find_layers, load_model
from prunelab.attention import fold_query_key, fold_values, set_widths, widths
from prunelab.compression.plan import Plan
from prunelab.errors import PlanError
from prunelab.groups import ChannelGroups, concat_groups
from prunelab.models import load_compressed, save_compressed
from prunelab.modules import ClusteredLinear

TOKENS = torch.tensor([[50258, 50259, 50359, 50363, 400, 500, 600]])


def _randomise(sm, seed=0):
    """Nonzero biases and LayerNorm parameters everywhere, so a fold that forgets a bias is caught."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in sm.model.modules():
            if isinstance(module, torch.nn.Linear) and module.bias is not None:
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=g))
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.mul_(1 + 0.2 * torch.randn(module.weight.shape, generator=g))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=g))
    return sm


@pytest.fixture(scope="module")
def whisper():
    return _randomise(load_model("tiny:whisper"))


@pytest.fixture(scope="module")
def ctc():
    return _randomise(load_model("tiny:ctc"), seed=1)


@pytest.fixture(scope="module")
def feats():
    return torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(3))


def _logits(sm, feats):
    with torch.no_grad():
        return sm.model(input_features=feats, decoder_input_ids=TOKENS).logits


@pytest.mark.parametrize("preset", ["attention-values", "attention-qk", "foldable", "encoder-foldable"])
def test_whisper_folds_are_exact_and_smaller(whisper, feats, preset):
    cfg = dict(method="kmeans", sparsity=0.5, preset=preset, units="foldable", seed=1)
    unfolded = compress(whisper, CompressionConfig(fold=False, **cfg))
    folded = compress(whisper, CompressionConfig(fold=True, **cfg))
    torch.testing.assert_close(_logits(folded, feats), _logits(unfolded, feats), rtol=1e-4, atol=1e-4)
    assert (_logits(folded, feats) - _logits(whisper, feats)).abs().max() > 1e-5  # it did compress
    with torch.no_grad():  # greedy decoding runs the key/value cache of the narrowed attention
        ids_f = folded.model.generate(feats, max_new_tokens=8, do_sample=False)
        ids_u = unfolded.model.generate(feats, max_new_tokens=8, do_sample=False)
    assert torch.equal(ids_f, ids_u)
    n = lambda m: sum(p.numel() for p in m.model.parameters())  # noqa: E731
    assert n(folded) < n(unfolded) < n(whisper)
    assert folded.compression["params_removed"] == pytest.approx(1 - n(folded) / n(whisper))


def test_params_removed_counts_every_folded_row_and_column(whisper):
    """attention-values at 50 %: each v_proj loses H*(hd - kv) rows (+bias), each out_proj as many columns."""
    small = compress(whisper, CompressionConfig(method="kmeans", sparsity=0.5, preset="attention-values",
                                                units="foldable"))
    vs = [l for l in find_layers(whisper.model) if l.kind == "v"]
    gone = sum(l.heads * (l.head_dim - l.head_dim // 2) * (l.in_features + 1 + l.in_features) for l in vs)
    total = sum(p.numel() for p in whisper.model.parameters())
    assert small.compression["params_removed"] == pytest.approx(gone / total)
    attn = small.model.get_submodule(vs[0].name.rpartition(".")[0])
    assert widths(attn) == (vs[0].head_dim, vs[0].head_dim // 2)


def test_no_compression_is_the_identity(whisper, feats):
    same = compress(whisper, CompressionConfig(method="kmeans", sparsity=0.0, preset="foldable", units="foldable"))
    torch.testing.assert_close(_logits(same, feats), _logits(whisper, feats), rtol=0, atol=0)
    narrowed = copy.deepcopy(whisper)
    for l in find_layers(narrowed.model):
        if l.kind == "q":
            set_widths(narrowed.model.get_submodule(l.name.rpartition(".")[0]))  # variable-width class, full widths
    torch.testing.assert_close(_logits(narrowed, feats), _logits(whisper, feats), rtol=1e-6, atol=1e-6)


def test_ctc_folds_are_exact(ctc):
    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    cfg = dict(method="kmeans", sparsity=0.5, preset="foldable", units="foldable")
    a = compress(ctc, CompressionConfig(fold=False, **cfg))
    b = compress(ctc, CompressionConfig(fold=True, **cfg))
    with torch.no_grad():
        torch.testing.assert_close(b.model(x).logits, a.model(x).logits, rtol=1e-4, atol=1e-4)
    assert set(b.compression["attention"]) == {l.name.rpartition(".")[0] for l in find_layers(ctc.model) if l.kind == "q"}


def test_folded_attention_survives_save_and_load(whisper, feats, tmp_path):
    small = compress(whisper, CompressionConfig(method="kmeans", sparsity=0.25, preset="foldable", units="foldable"))
    back = load_compressed(save_compressed(small, tmp_path / "m"))
    torch.testing.assert_close(_logits(back, feats), _logits(small, feats), rtol=0, atol=0)
    name = next(iter(small.compression["attention"]))
    assert widths(back.model.get_submodule(name)) == widths(small.model.get_submodule(name)) == (12, 12)
    assert back.compression["units"] == "foldable"


def test_fold_query_key_keeps_scores_of_the_clustered_query():
    torch.manual_seed(0)
    heads, hd, d = 2, 4, 6
    q_rows, k = torch.randn(heads * 2, d), torch.nn.Linear(d, heads * hd)
    index = torch.tensor([0, 1, 0, 4, 2, 3, 3, 2])  # head 0 -> rows 0,1 (dim 3 dropped); head 1 -> rows 2,3
    q = ClusteredLinear.from_groups(ChannelGroups(q_rows, torch.randn(heads * 2), index, 0.0))
    q.index[3] = 4  # a dropped query dim
    x, y = torch.randn(5, d), torch.randn(7, d)
    new_q, new_k, kq = fold_query_key(q, k, heads)
    assert kq == 2 and new_q.weight.shape == (4, d) and new_k.weight.shape == (4, d)
    for h in range(heads):
        full = q(x)[:, h * hd:(h + 1) * hd] @ k(y)[:, h * hd:(h + 1) * hd].T  # the clustered model's scores
        folded = new_q(x)[:, h * 2:(h + 1) * 2] @ new_k(y)[:, h * 2:(h + 1) * 2].T
        torch.testing.assert_close(folded, full, rtol=1e-5, atol=1e-5)


def test_fold_values_sums_out_columns_per_cluster():
    torch.manual_seed(1)
    heads, hd, d = 2, 3, 5
    mixed = torch.tensor([0, 0, 1, 1, 1, 0])  # a cluster spanning both heads cannot fold
    v = ClusteredLinear.from_groups(ChannelGroups(torch.randn(2, d), torch.randn(2), mixed, 0.0))
    with pytest.raises(PlanError, match="every head is clustered on its own"):
        fold_values(v, torch.nn.Linear(heads * hd, d), heads)
    v = ClusteredLinear.from_groups(ChannelGroups(torch.randn(2, d), torch.randn(2), torch.tensor([0, 0, 0, 1, 1, 1]), 0.0))
    out = torch.nn.Linear(heads * hd, d)
    new_v, new_out, kv = fold_values(v, out, heads)
    assert kv == 1 and new_out.weight.shape == (d, 2)
    torch.testing.assert_close(new_out.weight[:, 0], out.weight[:, :3].sum(1))
    torch.testing.assert_close(new_out.weight[:, 1], out.weight[:, 3:].sum(1))
    x = torch.randn(4, d)
    torch.testing.assert_close(new_out(new_v(x)), out(v(x)), rtol=1e-5, atol=1e-5)


def test_concat_groups_offsets_and_dropped():
    a = ChannelGroups(torch.ones(2, 3), torch.zeros(2), torch.tensor([0, 2, 1]), 1.0)  # channel 1 dropped
    b = ChannelGroups(2 * torch.ones(1, 3), torch.ones(1), torch.tensor([0, 0, 0]), 2.0)
    g = concat_groups([a, b])
    assert g.k == 3 and g.distortion == 3.0
    assert g.index.tolist() == [0, 3, 1, 2, 2, 2]
    w, bias = g.dense()
    assert w[1].abs().sum() == 0 and torch.equal(w[3], 2 * torch.ones(3)) and bias.tolist() == [0, 0, 0, 1, 1, 1]


def test_foldable_plans_are_checked(whisper):
    layers = find_layers(whisper.model)
    k_layer = next(l for l in layers if l.kind == "k")
    v_layer = next(l for l in layers if l.kind == "v")
    with pytest.raises(PlanError, match="only the layers that lead a unit.*is a k layer"):
        compress(whisper, CompressionConfig(plan=Plan({k_layer.name: 16}), units="foldable"))
    with pytest.raises(PlanError, match="multiple of 4"):
        compress(whisper, CompressionConfig(plan=Plan({v_layer.name: 30}), units="foldable"))
    with pytest.raises(PlanError, match="no foldable units"):
        compress(whisper, CompressionConfig(method="magnitude-unstructured", sparsity=0.5, preset="attention-values",
                                            units="foldable"))
    with pytest.raises(PlanError, match="Unknown units"):
        CompressionConfig(sparsity=0.5, units="neurons")
    plan = Plan.from_sparsity(layers, 0.3, "foldable", units="foldable")
    assert {l.kind for l in layers if l.name in plan.clusters} == {"fc1", "v", "q"}
    assert all(k % 4 == 0 for n, k in plan.clusters.items() if ".fc1" not in n)


def test_attention_without_variable_width_support_is_refused():
    class OtherAttention(torch.nn.Module):
        head_dim = 8

    with pytest.raises(PlanError, match="cannot be folded"):
        set_widths(OtherAttention(), qk_dim=4)


def test_a_unit_level_method_gets_its_context_and_folds(whisper, feats, request):
    """A registered unit-level method (folds=True) sees the partner and the LayerNorm, and its FoldedUnit is
    what the model runs: here "keep the first K units", checked against the same cut made by hand."""
    from prunelab.groups import FoldedUnit
    from prunelab.methods import METHODS, register_method

    seen = []

    def keep_first(weight, bias, k, *, context, seed, max_iter):
        seen.append(context)
        if context.unit == "qk-dim":  # q rows and k rows of the kept dims, per head
            hd = weight.shape[0] // context.heads
            rows = torch.cat([torch.arange(h * hd, h * hd + k // context.heads) for h in range(context.heads)])
            kb = None if context.partner_bias is None else context.partner_bias[rows]
            return FoldedUnit(weight[rows], None if bias is None else bias[rows], context.partner_weight[rows], kb, 0.0)
        if context.unit == "value-dim":
            hd = weight.shape[0] // context.heads
            rows = torch.cat([torch.arange(h * hd, h * hd + k // context.heads) for h in range(context.heads)])
        else:
            rows = torch.arange(k)
        return FoldedUnit(weight[rows], None if bias is None else bias[rows], context.partner_weight[:, rows],
                          context.partner_bias, 0.0)

    register_method("keep-first-units", label="x", help="x", folds=True)(keep_first)
    request.addfinalizer(lambda: METHODS.pop("keep-first-units", None))
    small = compress(whisper, CompressionConfig(method="keep-first-units", sparsity=0.5, preset="foldable",
                                                units="foldable"))
    assert {c.unit for c in seen} == {"ffn-neuron", "value-dim", "qk-dim"}
    fc1 = next(l for l in find_layers(whisper.model) if l.kind == "fc1")
    ctx = next(c for c in seen if c.unit == "ffn-neuron")
    ln = whisper.model.get_submodule(fc1.norm)
    assert torch.equal(ctx.ln_weight, ln.weight) and torch.equal(ctx.partner_weight,
                                                                   whisper.model.get_submodule(fc1.partner).weight)
    # the same cut by hand: zero the dropped units' outgoing weights in a copy of the original
    by_hand = copy.deepcopy(whisper)
    with torch.no_grad():
        for l in find_layers(by_hand.model):
            mod = by_hand.model.get_submodule(l.name)
            partner = by_hand.model.get_submodule(l.partner) if l.partner else None
            if l.kind == "fc1":
                partner.weight[:, l.channels // 2:] = 0
            elif l.kind == "v":
                for h in range(l.heads):
                    partner.weight[:, h * l.head_dim + l.head_dim // 2:(h + 1) * l.head_dim] = 0
            elif l.kind == "q":
                for h in range(l.heads):
                    mod.weight[h * l.head_dim + l.head_dim // 2:(h + 1) * l.head_dim] = 0
                    mod.bias[h * l.head_dim + l.head_dim // 2:(h + 1) * l.head_dim] = 0
    torch.testing.assert_close(_logits(small, feats), _logits(by_hand, feats), rtol=1e-4, atol=1e-4)
    with pytest.raises(PlanError, match="units='foldable'"):
        compress(whisper, CompressionConfig(method="keep-first-units", sparsity=0.5, preset="encoder-fc1"))
    with pytest.raises(PlanError, match="cannot leave them unfolded"):
        compress(whisper, CompressionConfig(method="keep-first-units", sparsity=0.5, preset="encoder-fc1",
                                            units="foldable", fold=False))


def _score_form(q_w, q_b, k_w, tq, tk, d):
    """A head's score form in normalised coordinates, key constants dropped: (Q T_q)^T (K T_k)[:, :d]."""
    zeros = torch.zeros(q_w.shape[0], 1, dtype=torch.float64)
    q = torch.cat([q_w.double(), zeros if q_b is None else q_b.double()[:, None]], 1)
    k = torch.cat([k_w.double(), torch.zeros(k_w.shape[0], 1, dtype=torch.float64)], 1)
    return (q @ tq).T @ (k @ tk)[:, :d]


def test_lowrank_qk_is_exact_at_full_width_and_optimal_below(whisper):
    from prunelab.compression.assemble import unit_context
    from prunelab.methods import get_method
    from prunelab.methods.lowrank import _affine

    layers = find_layers(whisper.model)
    q = next(l for l in layers if l.kind == "q" and l.group == "cross_attn")  # keys read another LayerNorm
    ctx = unit_context(whisper.model, q)
    assert ctx.partner_ln_weight is not None and not torch.equal(ctx.partner_ln_weight, ctx.ln_weight)
    lin, d, hd = whisper.model.get_submodule(q.name), q.in_features, q.head_dim
    tq = _affine(ctx.ln_weight, ctx.ln_bias, d)
    tk = _affine(ctx.partner_ln_weight, ctx.partner_ln_bias, d)
    for kq in (hd, hd // 4):
        f = get_method("lowrank-qk").apply(lin.weight, lin.bias, kq * q.heads, context=ctx)
        assert f.weight.shape == (kq * q.heads, d) and f.partner_bias is None
        err = 0.0
        for h in range(q.heads):
            orig = _score_form(lin.weight[h * hd:(h + 1) * hd], lin.bias[h * hd:(h + 1) * hd],
                               ctx.partner_weight[h * hd:(h + 1) * hd], tq, tk, d)
            new = _score_form(f.weight[h * kq:(h + 1) * kq], f.bias[h * kq:(h + 1) * kq],
                              f.partner_weight[h * kq:(h + 1) * kq], tq, tk, d)
            err += float(((orig - new) ** 2).sum())
            if kq < hd:  # Eckart-Young: no rank-kq form is closer than the truncated SVD
                s = torch.linalg.svdvals(orig)
                assert float(((orig - new) ** 2).sum()) == pytest.approx(float((s[kq:] ** 2).sum()), rel=1e-3)
        assert err == pytest.approx(f.distortion, rel=1e-3, abs=1e-6)
        if kq == hd:
            assert err < 1e-6


def test_lowrank_qk_through_compress(whisper, feats):
    small = compress(whisper, CompressionConfig(method="lowrank-qk", sparsity=0.5, preset="decoder-self-qk",
                                                units="foldable"))
    qs = [l for l in find_layers(whisper.model) if l.kind == "q" and l.part == "decoder" and l.group == "self_attn"]
    assert set(small.compression["attention"]) == {l.name.rpartition(".")[0] for l in qs}
    assert all(d == {"qk_dim": 8} for d in small.compression["attention"].values())
    with torch.no_grad():
        ids = small.model.generate(feats, max_new_tokens=6, do_sample=False)
    assert ids.shape[1] > 4
    with pytest.raises(PlanError, match="query/key dims"):
        compress(whisper, CompressionConfig(method="lowrank-qk", sparsity=0.5, preset="encoder-fc1", units="foldable"))
