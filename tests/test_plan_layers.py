"""Layer discovery and plans."""
import json

import pytest

from prunelab.errors import PlanError
from prunelab.compression.layers import ffn_pairs, find_layers
from prunelab.compression.plan import Plan, clusters_for_sparsity


def test_whisper_layers_named_and_grouped(tiny_whisper):
    layers = find_layers(tiny_whisper.model)
    names = [l.name for l in layers]
    cfg = tiny_whisper.model.config
    # encoder: q,k,v,out,fc1,fc2 per block; decoder adds cross-attention q,k,v,out
    assert len(layers) == 6 * cfg.encoder_layers + 10 * cfg.decoder_layers
    assert "model.encoder.layers.0.fc1" in names and "model.decoder.layers.0.encoder_attn.k_proj" in names
    assert not any("proj_out" in n for n in names)
    by_name = {l.name: l for l in layers}
    fc1 = by_name["model.encoder.layers.0.fc1"]
    assert (fc1.part, fc1.block, fc1.group, fc1.kind) == ("encoder", 0, "ffn", "fc1")
    assert fc1.out_features == cfg.encoder_ffn_dim and fc1.in_features == cfg.d_model
    cross = by_name["model.decoder.layers.0.encoder_attn.q_proj"]
    assert cross.group == "cross_attn" and cross.label == "dec.0.cross.q"
    assert not by_name["model.encoder.layers.0.self_attn.k_proj"].has_bias  # Whisper k_proj has no bias
    assert len(ffn_pairs(layers)) == cfg.encoder_layers + cfg.decoder_layers


def test_ctc_layers_exclude_heads(tiny_ctc):
    layers = find_layers(tiny_ctc.model)
    kinds = sorted({l.kind for l in layers})
    assert kinds == ["fc1", "fc2", "k", "out", "q", "v"]
    assert all(l.part == "encoder" for l in layers)
    assert not any("lm_head" in l.name or "feature_projection" in l.name for l in layers)
    assert len(ffn_pairs(layers)) == tiny_ctc.model.config.num_hidden_layers


def test_from_sparsity_and_presets(tiny_whisper):
    layers = find_layers(tiny_whisper.model)
    plan = Plan.from_sparsity(layers, 0.25, "uniform")
    assert set(plan.clusters) == {l.name for l in layers}
    assert all(plan.clusters[l.name] == round(l.channels * 0.75) for l in layers)
    assert plan.sparsity(layers) == pytest.approx(0.25, abs=0.01)
    ffn = Plan.from_sparsity(layers, 0.5, "ffn")
    assert {l.group for l in layers if l.name in ffn.clusters} == {"ffn"}
    enc = Plan.from_sparsity(layers, 0.5, "encoder")
    assert {l.part for l in layers if l.name in enc.clusters} == {"encoder"}
    dec_fc1 = Plan.from_sparsity(layers, 0.5, "decoder-fc1")
    assert {(l.part, l.kind) for l in layers if l.name in dec_fc1.clusters} == {("decoder", "fc1")}
    assert len(dec_fc1.clusters) == sum(l.part == "decoder" and l.kind == "fc1" for l in layers) > 0
    att = Plan.from_sparsity(layers, 0.5, "attention")
    assert {l.group for l in layers if l.name in att.clusters} == {"self_attn", "cross_attn"}
    # over all compressible parameters, an FFN-only plan removes less than half
    assert 0 < ffn.sparsity(layers) < 0.5 and ffn.sparsity(layers, over="planned") == pytest.approx(0.5, abs=0.01)
    with pytest.raises(PlanError, match="preset"):
        Plan.from_sparsity(layers, 0.5, "everything")
    for bad in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(PlanError, match="Sparsity"):
            Plan.from_sparsity(layers, bad)


def test_clusters_for_sparsity_bounds():
    assert clusters_for_sparsity(10, 0.0) == 10
    assert clusters_for_sparsity(10, 0.99) == 1
    assert clusters_for_sparsity(2048, 0.1) == 1843


def test_validate_rejects_bad_plans(tiny_whisper):
    layers = find_layers(tiny_whisper.model)
    fc1 = next(l for l in layers if l.kind == "fc1")
    Plan({fc1.name: 1}).validate(layers)
    Plan({fc1.name: fc1.channels}).validate(layers)
    with pytest.raises(PlanError, match="between 1 and"):
        Plan({fc1.name: 0}).validate(layers)
    with pytest.raises(PlanError, match=f"has {fc1.channels} channels"):
        Plan({fc1.name: fc1.channels + 1}).validate(layers)
    with pytest.raises(PlanError, match="Did you mean"):
        Plan({fc1.name.replace("fc1", "fc3"): 4}).validate(layers)


def test_plan_json_roundtrip_and_errors(tmp_path, tiny_whisper):
    layers = find_layers(tiny_whisper.model)
    plan = Plan.from_sparsity(layers, 0.3, "ffn")
    path = tmp_path / "plan.json"
    plan.to_json(path, method="kmeans")
    data = json.loads(path.read_text())
    assert data["method"] == "kmeans" and data["format"] == "prunelab-plan"
    assert Plan.from_json(path) == plan
    assert Plan.from_json(json.dumps(plan.clusters)) == plan  # bare mapping works too
    with pytest.raises(PlanError, match="not valid JSON"):
        Plan.from_json("{not json")
    with pytest.raises(PlanError, match="whole number"):
        Plan.from_json({"clusters": {fc.name: 2.5 for fc in layers[:1]}})
    with pytest.raises(PlanError, match="Cannot read plan file"):
        Plan.from_json(tmp_path / "missing.json")
    with pytest.raises(PlanError, match=r"^A plan must be a JSON object mapping layer names to cluster counts\.$"):
        Plan.from_json("[1, 2]")
    with pytest.raises(PlanError, match=r'^"clusters" must map layer names to cluster counts\.$'):
        Plan.from_json({"clusters": [1]})


def test_plan_json_edges(tmp_path):
    assert Plan.from_json('  \n {"clusters": {"a": 3}}') == Plan({"a": 3})  # JSON text, not a file name
    assert Plan.from_json({"a": 4.0, "b": 2}) == Plan({"a": 4, "b": 2})  # whole floats are counts
    for bad in ("many", True, None, [3], 2.5, "3"):
        with pytest.raises(PlanError, match="whole number"):
            Plan.from_json({"a": bad})
    missing = tmp_path / "missing.json"
    with pytest.raises(PlanError) as info:
        Plan.from_json(missing)
    assert str(info.value) == f"Cannot read plan file {missing}: No such file or directory."
    named = tmp_path / "plan.json"
    named.write_text(json.dumps({"clusters": {"couche.é": 2}}), encoding="utf-8")
    assert Plan.from_json(named) == Plan({"couche.é": 2}) and Plan.from_json(str(named)) == Plan({"couche.é": 2})


def test_plan_file_format_and_names_without_a_close_match(tmp_path, tiny_whisper):
    layers = find_layers(tiny_whisper.model)
    plan = Plan({layers[0].name: 3, "model.encoder.layers.0.é": 2})
    assert plan.to_dict(method="kmeans") == {"format": "prunelab-plan", "version": 1, "method": "kmeans",
                                             "clusters": {layers[0].name: 3, "model.encoder.layers.0.é": 2}}
    plan.to_json(tmp_path / "p.json", method="kmeans")
    assert json.loads((tmp_path / "p.json").read_bytes().decode("utf-8")) == plan.to_dict(method="kmeans")
    with pytest.raises(PlanError) as info:
        Plan({"zzz": 3}).validate(layers)  # nothing close: no suggestion
    assert str(info.value) == "Plan names layer 'zzz', which this model does not have."


def test_foldable_plans_name_unit_leaders_with_whole_heads(tiny_whisper):
    from prunelab.compression import CompressionConfig, compress

    by_label = {l.label: l for l in find_layers(tiny_whisper.model)}
    q, v, fc1 = by_label["enc.0.q"], by_label["enc.0.v"], by_label["enc.0.fc1"]
    assert q.heads == 4
    good = Plan({q.name: 8, v.name: 12, fc1.name: 100})  # 2 and 3 per head
    good.validate_units(find_layers(tiny_whisper.model), "foldable")
    small = compress(tiny_whisper, CompressionConfig(plan=good, units="foldable"))
    assert small.compression["plan"] == good.clusters
    with pytest.raises(PlanError, match="4 heads"):
        Plan({q.name: 10}).validate_units(find_layers(tiny_whisper.model), "foldable")
    with pytest.raises(PlanError, match="only the layers that lead a unit"):
        Plan({by_label["enc.0.fc2"].name: 10}).validate_units(find_layers(tiny_whisper.model), "foldable")
