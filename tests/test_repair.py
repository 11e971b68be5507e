"""Calibrated repair (prunelab.recovery.repair) on the tiny demo models, whose biases and norms are random."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from prunelab import CompressionConfig, compress, find_layers, load_model, save_compressed
from prunelab.recovery.calibration import CalibrationError, load_calibration, pack_windows
from prunelab.recovery.repair import RecoveryError, RepairConfig, repair
from prunelab.recovery.solve import resolve_keys

SR = 16000


def _speechlike(seed: int, seconds: float = 2.0) -> np.ndarray:
    """A buzz with moving formant-like tones and noise: non-silent, different per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 110 + 40 * rng.random()
    x = sum(np.sin(2 * np.pi * f0 * h * t + rng.random() * 6) / h for h in range(1, 8))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * (2 + rng.random() * 3) * t)) + 0.05 * rng.standard_normal(t.size)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


CLIPS = [_speechlike(i) for i in range(4)]
HELD_OUT = [_speechlike(100 + i) for i in range(2)]


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.model.state_dict().items()}


def _encoder_out(model, clips) -> torch.Tensor:
    if model.family == "whisper":
        feats = model.processor.feature_extractor(clips, sampling_rate=SR, return_tensors="pt").input_features
        with torch.no_grad():
            return model.model.model.encoder(feats).last_hidden_state[:, :100]
    outs = []
    for clip in clips:
        values = model.processor.feature_extractor(clip, sampling_rate=SR, return_tensors="pt").input_values
        with torch.no_grad():
            outs.append(model.model(values).logits)
    return torch.cat(outs, 1)


@pytest.mark.parametrize("spec,config", [
    ("tiny:whisper", CompressionConfig(method="kmeans", sparsity=0.5, preset="encoder-fc1")),
    ("tiny:whisper", CompressionConfig(method="magnitude", sparsity=0.5, preset="encoder")),
    ("tiny:whisper", CompressionConfig(method="predictive", units="foldable", sparsity=0.5, preset="encoder-fc1")),
    ("tiny:whisper", CompressionConfig(method="kmeans", units="foldable", sparsity=0.5, preset="attention-values")),
    ("tiny:ctc", CompressionConfig(method="kmeans", sparsity=0.5, preset="fc1")),
])
def test_repair_brings_the_output_closer_to_the_original_and_leaves_its_inputs_alone(spec, config):
    original = load_model(spec)
    small = compress(original, config)
    before_o, before_c = _state(original), _state(small)
    fixed = repair(small, original, CLIPS, RepairConfig(alpha=1e-3))
    ref = _encoder_out(original, HELD_OUT)
    err_small = (_encoder_out(small, HELD_OUT) - ref).pow(2).mean()
    err_fixed = (_encoder_out(fixed, HELD_OUT) - ref).pow(2).mean()
    assert err_fixed < 0.9 * err_small, (float(err_fixed), float(err_small))
    for before, model in ((before_o, original), (before_c, small)):
        after = model.model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
    assert small.compression.get("recovery") is None
    record = fixed.compression["recovery"][-1]
    assert record["step"] == "repair" and record["clips"] == 4 and record["seconds"] == pytest.approx(8.0)
    assert record["layers"], "no layer was re-solved"


def test_the_first_fc2_equals_an_independent_ridge_solve(tiny_whisper):
    """Block 0's fc2 reads what the unrepaired compressed model gives there: solve it again with numpy."""
    small = compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.5, preset="encoder-fc1"))
    alpha = 1e-3
    fixed = repair(small, tiny_whisper, CLIPS, RepairConfig(alpha=alpha))
    enc_s, enc_o = small.model.model.encoder, tiny_whisper.model.model.encoder
    seen = {}
    hooks = [enc_s.layers[0].fc1.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0])),
             enc_s.layers[0].fc2.register_forward_pre_hook(lambda m, a: seen.__setitem__("h", a[0]))]
    feats = small.processor.feature_extractor(CLIPS, sampling_rate=SR, return_tensors="pt").input_features
    with torch.no_grad():
        enc_s(feats)
    for h in hooks:
        h.remove()
    frames = int(np.ceil(len(CLIPS[0]) / 320))  # every clip is 2 s: its first 100 encoder frames are audio
    x = seen["x"][:, :frames].reshape(-1, seen["x"].shape[-1])
    h = seen["h"][:, :frames].reshape(-1, seen["h"].shape[-1]).double().numpy()
    layer = enc_o.layers[0]
    with torch.no_grad():
        y = layer.fc2(layer.activation_fn(layer.fc1(x))).double().numpy()
    ha = np.hstack([h, np.ones((h.shape[0], 1))])
    gram = ha.T @ ha
    lam = alpha * np.mean(np.diag(gram))
    solved = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), ha.T @ y)
    fc2 = fixed.model.model.encoder.layers[0].fc2
    np.testing.assert_allclose(fc2.weight.detach().double().numpy(), solved[:-1].T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fc2.bias.detach().double().numpy(), solved[-1], rtol=1e-4, atol=1e-5)


def _centred_scores(model, x: torch.Tensor) -> torch.Tensor:
    """Block 0 self-attention scores [H, T, T] of hidden states ``x`` [T, D], each row minus its mean (what the
    softmax sees)."""
    attn = model.model.model.encoder.layers[0].self_attn
    with torch.no_grad():
        q, k = attn.q_proj(x), attn.k_proj(x)
    h = attn.num_heads
    s = torch.einsum("thd,shd->hts", q.view(len(x), h, -1), k.view(len(x), h, -1))
    return s - s.mean(-1, keepdim=True)


def test_repaired_keys_bring_the_attention_scores_closer_to_the_original(tiny_whisper):
    small = compress(tiny_whisper, CompressionConfig(method="lowrank-qk", units="foldable", sparsity=0.5,
                                                     preset="encoder-qk"))
    fixed = repair(small, tiny_whisper, CLIPS, RepairConfig(alpha=1e-3))
    assert "model.encoder.layers.0.self_attn.k_proj" in fixed.compression["recovery"][-1]["layers"]
    enc = tiny_whisper.model.model.encoder
    seen = {}
    hook = enc.layers[0].self_attn.q_proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0]))
    feats = tiny_whisper.processor.feature_extractor(HELD_OUT, sampling_rate=SR, return_tensors="pt").input_features
    with torch.no_grad():
        enc(feats)
    hook.remove()
    x = seen["x"][0, :100]  # audio frames of a held-out clip, LayerNorm output (block 0: the same in every model)
    ref = _centred_scores(tiny_whisper, x)
    err_small = (_centred_scores(small, x) - ref).pow(2).mean()
    err_fixed = (_centred_scores(fixed, x) - ref).pow(2).mean()
    assert err_fixed < 0.7 * err_small, (float(err_fixed), float(err_small))


def test_keys_for_kept_queries_match_a_brute_force_score_fit():
    """resolve_keys against an explicit least-squares fit of every (query, key) score of random inputs."""
    g = torch.Generator().manual_seed(0)
    d_in, d_o, d_n, n = 6, 4, 2, 400
    old_q = torch.randn(d_o, d_in + 1, generator=g, dtype=torch.float64)
    old_k = torch.randn(d_o, d_in, generator=g, dtype=torch.float64)
    new_q = torch.randn(d_n, d_in + 1, generator=g, dtype=torch.float64)
    x = torch.cat([torch.randn(n, d_in, generator=g, dtype=torch.float64), torch.ones(n, 1, dtype=torch.float64)], 1)
    z = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    keys = resolve_keys(x.T @ x, new_q, old_q, old_k, heads=1, alpha=0.0)
    scores = (x @ old_q.T) @ (z @ old_k.T).T  # [n, n]
    qn = x @ new_q.T  # [n, d_n]
    design = torch.einsum("id,jc->ijdc", qn, z).reshape(n * n, d_n * d_in)  # score_ij = qn_i^T B z_j
    brute = torch.linalg.lstsq(design, scores.reshape(-1, 1)).solution.reshape(d_n, d_in)
    torch.testing.assert_close(keys, brute, rtol=1e-6, atol=1e-8)
    same = resolve_keys(x.T @ x, old_q, old_q, old_k, heads=1, alpha=0.0)  # nothing compressed: keys unchanged
    torch.testing.assert_close(same, old_k)


def test_repair_is_deterministic_and_a_repaired_model_reloads_to_the_same_outputs(tiny_whisper, tmp_path):
    small = compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.5, preset="ffn"))
    one = repair(small, tiny_whisper, CLIPS)
    two = repair(small, tiny_whisper, CLIPS)
    s1, s2 = one.model.state_dict(), two.model.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert any(not torch.equal(s1[k], small.model.state_dict()[k]) for k in s1), "repair changed nothing"
    assert any(s.startswith("model.decoder") for s in one.compression["recovery"][-1]["layers"])
    save_compressed(one, tmp_path / "fixed")
    back = load_model(str(tmp_path / "fixed"))
    assert back.compression["recovery"] == one.compression["recovery"]
    torch.testing.assert_close(_encoder_out(back, HELD_OUT), _encoder_out(one, HELD_OUT), rtol=0, atol=0)
    ids = torch.tensor([[50258, 50259, 50359, 50363, 400, 401]])
    feats = one.processor.feature_extractor(HELD_OUT[:1], sampling_rate=SR, return_tensors="pt").input_features
    with torch.no_grad():
        a = one.model(input_features=feats, decoder_input_ids=ids).logits
        b = back.model(input_features=feats, decoder_input_ids=ids).logits
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_unstructured_repair_keeps_every_zero(tiny_whisper):
    small = compress(tiny_whisper, CompressionConfig(method="magnitude-unstructured", sparsity=0.5, preset="encoder-ffn"))
    fixed = repair(small, tiny_whisper, CLIPS, RepairConfig(parts=("encoder",)))
    for name in small.compression["modules"]:
        before = small.model.get_submodule(name).weight
        after = fixed.model.get_submodule(name).weight
        assert torch.equal(after == 0, before == 0) or bool(((before == 0) <= (after == 0)).all()), name
    fc2 = "model.encoder.layers.0.fc2"
    assert not torch.equal(fixed.model.get_submodule(fc2).weight, small.model.get_submodule(fc2).weight)


def test_bad_calibration_audio_is_refused_or_skipped_with_a_note(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationError, match="no audio files"):
        load_calibration(empty)
    with pytest.raises(CalibrationError, match="does not exist"):
        load_calibration(tmp_path / "missing")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    sf.write(mixed / "good.wav", CLIPS[0], SR)
    sf.write(mixed / "silent.wav", np.zeros(SR, np.float32), SR)
    (mixed / "broken.wav").write_bytes(b"RIFF not really a wave file")
    sf.write(mixed / "long.wav", np.tile(CLIPS[1], 20), SR)  # 40 s: split into 30 s + 10 s
    cal = load_calibration(mixed)
    assert sorted(n for n, _ in cal.skipped) == ["broken.wav", "silent.wav"]
    assert cal.names == ["good.wav", "long.wav", "long.wav#2"]
    assert [len(c) / SR for c in cal.clips] == [2.0, 30.0, 10.0]
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    sf.write(only_bad / "silent.wav", np.zeros(SR, np.float32), SR)
    with pytest.raises(CalibrationError, match="None of the 1 calibration clips is usable"):
        load_calibration(only_bad)


def test_repair_refuses_what_it_cannot_repair(tiny_whisper, tiny_ctc):
    small = compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.5, preset="encoder-fc1"))
    with pytest.raises(RecoveryError, match="not compressed"):
        repair(tiny_whisper, tiny_whisper, CLIPS)
    with pytest.raises(RecoveryError, match="itself compressed"):
        repair(small, small, CLIPS)
    with pytest.raises(RecoveryError, match="ctc"):
        repair(small, tiny_ctc, CLIPS)
    with pytest.raises(RecoveryError, match="alpha"):
        RepairConfig(alpha=-1)


def test_pack_windows_fills_thirty_seconds_in_order():
    clips = [np.ones(int(s * SR), np.float32) for s in (12, 12, 12, 29)]
    windows = pack_windows(clips)
    assert [round(w.filled / SR, 1) for w in windows] == [24.3, 12.0, 29.0]


def test_cli_compress_and_eval_repair_with_calibration_and_refuse_bad_audio_first(tmp_path, capsys, monkeypatch):
    from prunelab import cli

    cal = tmp_path / "cal"
    cal.mkdir()
    for i, clip in enumerate(CLIPS[:2]):
        sf.write(cal / f"c{i}.wav", clip, SR)
    sf.write(cal / "silent.wav", np.zeros(SR, np.float32), SR)
    rc = cli.main(["compress", "--model", "tiny:whisper", "--method", "kmeans", "--sparsity", "0.5", "--preset",
                   "encoder-fc1", "--calibration", str(cal), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0 and "repaired on 2 clips" in captured.out
    assert "silent.wav skipped" in captured.err
    saved = load_model(str(tmp_path / "out"))
    assert saved.compression["recovery"][-1]["clips"] == 2

    empty = tmp_path / "empty"
    empty.mkdir()
    loaded = []
    monkeypatch.setattr(cli, "_open", lambda *a, **k: loaded.append(a) or load_model("tiny:whisper"))
    rc = cli.main(["compress", "--model", "tiny:whisper", "--sparsity", "0.5", "--calibration", str(empty),
                   "--out", str(tmp_path / "out2")])
    assert rc == 2 and "holds no audio files" in capsys.readouterr().err and not loaded

    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", HELD_OUT[0], SR)
    (data / "a.txt").write_text("a buzz")
    rc = cli.main(["eval", "--model", "tiny:whisper", "--data", str(data), "--methods", "kmeans",
                   "--sparsities", "0.5", "--preset", "encoder-fc1", "--calibration", str(cal)])
    out = capsys.readouterr().out
    assert rc == 0 and "kmeans +repair 2 clips" in out

    rc = cli.main(["compress", "--model", "tiny:whisper", "--method", "magnitude", "--units", "foldable",
                   "--sparsity", "0.5", "--preset", "encoder-fc1", "--calibration", str(cal), "--select-units",
                   "--out", str(tmp_path / "out3")])
    assert rc == 0 and load_model(str(tmp_path / "out3")).compression["recovery"][-1]["select"] is True
    capsys.readouterr()
    rc = cli.main(["compress", "--model", "tiny:whisper", "--sparsity", "0.5", "--select-units",
                   "--out", str(tmp_path / "out4")])
    assert rc == 2 and "give --calibration" in capsys.readouterr().err
    rc = cli.main(["eval", "--model", "tiny:whisper", "--data", str(data), "--methods", "magnitude", "--units",
                   "foldable", "--sparsities", "0.5", "--preset", "encoder-fc1", "--calibration", str(cal),
                   "--select-units"])
    assert rc == 0 and "magnitude +repair 2 clips select" in capsys.readouterr().out


def test_recommended_with_calibration_reaches_a_fifth_of_whisper_base_at_the_top_of_its_axis():
    """Issue 25 item 6: ``prunelab eval --methods recommended --sparsities 0.1,...,0.5 --calibration DIR`` must
    remove >= 20 % of all parameters at 0.5. The grid cell is the repaired recommendation at 0.5 x its scale; the
    parameters that cell's FFN fold removes are counted here from the layer shapes of Whisper-base (each of the
    C - K dropped neurons: an fc1 row with its bias and an fc2 column), uniform over the selected layers."""
    from prunelab.compression.plan import Plan
    from prunelab.models.shapes import build_random, parameter_count
    from prunelab.recovery.repair import RECOMMENDED_REPAIRED
    from prunelab.speech.evaluate import grid

    top = grid(["recommended"], [0.1, 0.5], [RECOMMENDED_REPAIRED["preset"]], recommended=RECOMMENDED_REPAIRED)[-1]
    assert (top.resolved, top.allocate, top.units) == ("predictive", "auto", "foldable")
    assert top.sparsity == pytest.approx(0.5 * RECOMMENDED_REPAIRED["scale"])
    model = build_random("whisper-base")
    layers = find_layers(model.model)
    plan = Plan.from_sparsity(layers, top.sparsity, top.preset)
    removed = 0
    for layer, k in plan.active(layers):
        assert layer.kind == "fc1"
        fc2 = model.model.get_submodule(layer.partner)
        removed += (layer.out_features - k) * (layer.in_features + 1 + fc2.out_features)
    assert removed / parameter_count("whisper-base") >= 0.20


def test_recommended_cells_that_repair_with_selection_are_labelled_so():
    """A recommended cell whose repair re-chooses neurons is not the same row as a plain repair of the same
    setting (an older --json of plain repairs must not resume it); other methods keep the plain label."""
    from prunelab.speech.evaluate import grid

    rec = {"method": "predictive", "allocate": "auto", "units": "foldable", "preset": "ffn", "select": True}
    cells = grid(["recommended", "kmeans"], [0.2], ["ffn"], recovery="repair 8 clips", recommended=rec)
    labels = {c.method: c.recovery for c in cells}
    assert labels == {"none": None, "recommended": "repair 8 clips select", "kmeans": "repair 8 clips"}
    plain = grid(["recommended"], [0.2], ["ffn"], recovery="repair 8 clips", recommended={**rec, "select": False})
    assert plain[-1].recovery == "repair 8 clips" and plain[-1].key != cells[1].key
    again = grid(["recommended"], [0.2], ["ffn"], recovery="repair 8 clips select", recommended=rec)
    assert again[-1].recovery == "repair 8 clips select"


def test_cli_compress_recommended_with_calibration_is_the_repaired_setting_on_its_axis(tmp_path, capsys):
    """``compress --method recommended --calibration`` means what ``eval`` means by it: the repaired setting
    (RECOMMENDED_REPAIRED: predictive FFN neurons of encoder + decoder, auto) at --sparsity x its scale; a sparsity
    the scale would push to 1 or beyond is refused before any work."""
    from prunelab import cli
    from prunelab.recovery.repair import RECOMMENDED_REPAIRED

    cal = tmp_path / "cal"
    cal.mkdir()
    for i, clip in enumerate(CLIPS[:2]):
        sf.write(cal / f"c{i}.wav", clip, SR)
    rc = cli.main(["compress", "--model", "tiny:whisper", "--method", "recommended", "--sparsity", "0.5",
                   "--calibration", str(cal), "--out", str(tmp_path / "out")])
    assert rc == 0 and "method recommended = predictive" in capsys.readouterr().out
    saved = load_model(str(tmp_path / "out")).compression
    plan = saved["plan"]  # layer name -> K
    assert saved["method"] == "predictive" and saved["units"] == "foldable" and saved["allocate"] == "auto"
    assert saved["recovery"][-1]["clips"] == 2
    assert saved["recovery"][-1]["select"] is True and RECOMMENDED_REPAIRED["select"]  # R5: neurons re-chosen
    assert plan and all(name.endswith("fc1") for name in plan)
    assert any(".decoder." in name for name in plan) and any(".encoder." in name for name in plan)  # preset fc1
    channels = {layer.name: layer.out_features for layer in find_layers(load_model("tiny:whisper").model)}
    kept = sum(plan.values()) / sum(channels[name] for name in plan)
    assert 1 - kept == pytest.approx(0.5 * RECOMMENDED_REPAIRED["scale"], abs=0.01)  # auto spreads, the mean holds

    rc = cli.main(["compress", "--model", "tiny:whisper", "--method", "recommended", "--sparsity", "0.9",
                   "--calibration", str(cal), "--out", str(tmp_path / "out2")])
    assert rc == 2 and "below 0.83" in capsys.readouterr().err and not (tmp_path / "out2").exists()


def _kept_set_error(gram: torch.Tensor, weight: torch.Tensor, kept: list[int], bias: bool = True) -> float:
    """tr(W~ (G - G_S G_SS^-1 G_S) W~^T): the output error of keeping ``kept`` and re-solving exactly
    (with the constant column among the regressors only when the consumer has a bias)."""
    idx = list(kept) + ([gram.shape[0] - 1] if bias else [])
    g_s = gram[idx]
    residual = gram - g_s.T @ torch.linalg.pinv(g_s[:, idx], hermitian=True) @ g_s
    return float(torch.einsum("oi,ij,oj->", weight, residual, weight))


def test_unit_selection_keeps_what_the_data_needs_and_matches_brute_force_on_small_cases():
    """Unit 6 never fires and unit 7 copies unit 0: removing them costs nothing, and the greedy choice of 4 of 8
    is the best of all 70 subsets here; the block update (rounds < removals) gives the same sets."""
    from itertools import combinations

    from prunelab.recovery.solve import select_units

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=gen, dtype=torch.float64)
    x[:, 6] = 0
    x[:, 7] = x[:, 0]
    h = torch.cat([x, torch.ones(400, 1, dtype=torch.float64)], 1)
    gram, weight = h.T @ h, torch.randn(3, 9, generator=gen, dtype=torch.float64)
    kept6 = select_units(gram, weight, 6, alpha=1e-9).tolist()
    assert 6 not in kept6 and len({0, 7} & set(kept6)) == 1 and len(kept6) == 6
    assert _kept_set_error(gram, weight, kept6) < 1e-6
    for k in (5, 4, 3):
        kept = select_units(gram, weight, k, alpha=1e-9).tolist()
        best = min(_kept_set_error(gram, weight, list(s)) for s in combinations(range(8), k))
        assert len(kept) == k and kept == sorted(kept)
        assert _kept_set_error(gram, weight, kept) <= best * (1 + 1e-6) + 1e-9
        assert select_units(gram, weight, k, alpha=1e-9, rounds=2).tolist() == kept
    with pytest.raises(ValueError):
        select_units(gram, weight, 0)


def test_unit_selection_without_a_consumer_bias_cannot_lean_on_the_constant():
    """Unit 5 is a constant: with a bias to re-solve it costs nothing to drop, without one it must stay; the
    bias-free choice is also the best subset of a bias-free exact re-solve."""
    from itertools import combinations

    from prunelab.recovery.solve import select_units

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(400, 8, generator=gen, dtype=torch.float64)
    x[:, 6] = 0
    x[:, 5] = 1
    h = torch.cat([x, torch.ones(400, 1, dtype=torch.float64)], 1)
    gram, weight = h.T @ h, torch.randn(3, 9, generator=gen, dtype=torch.float64)
    weight[:, 5] *= 4  # a big constant contribution
    weight[:, 8] = 0  # no bias
    with_bias = select_units(gram, weight, 6, alpha=1e-9).tolist()
    without = select_units(gram, weight, 6, alpha=1e-9, bias=False).tolist()
    assert 5 not in with_bias and 6 not in with_bias
    assert 5 in without and 6 not in without
    best = min(_kept_set_error(gram, weight, list(s), bias=False) for s in combinations(range(8), 6))
    assert _kept_set_error(gram, weight, without, bias=False) <= best * (1 + 1e-6) + 1e-9


def test_repair_with_unit_selection_beats_plain_repair_and_reloads(tiny_whisper, tmp_path):
    """select=True keeps as many neurons per layer as compressed, takes them from the original fc1, and the
    re-solved FFN is closer to the original than plain repair's; the saved folder reloads to the same outputs."""
    small = compress(tiny_whisper, CompressionConfig(method="magnitude", units="foldable", sparsity=0.6,
                                                     preset="encoder-fc1"))
    plain = repair(small, tiny_whisper, CLIPS, RepairConfig(alpha=1e-3))
    chosen = repair(small, tiny_whisper, CLIPS, RepairConfig(alpha=1e-3, select=True))
    assert chosen.compression["recovery"][-1]["select"] is True
    assert plain.compression["recovery"][-1]["select"] is False
    orig_fc1 = tiny_whisper.model.model.encoder.layers[0].fc1.weight
    for name, module in chosen.model.named_modules():
        if name.endswith("encoder.layers.0.fc1"):
            compressed_fc1 = small.model.get_submodule(name)
            assert module.out_features == compressed_fc1.out_features < orig_fc1.shape[0]
            rows = {tuple(r.tolist()) for r in orig_fc1}
            assert all(tuple(r.tolist()) in rows for r in module.weight)
            assert not torch.equal(module.weight, compressed_fc1.weight), "the data chose the same neurons"
    assert chosen.compression["params_removed"] == small.compression["params_removed"]
    ref = _encoder_out(tiny_whisper, CLIPS)
    err_plain = (_encoder_out(plain, CLIPS) - ref).pow(2).mean()
    err_chosen = (_encoder_out(chosen, CLIPS) - ref).pow(2).mean()
    assert err_chosen < err_plain, (float(err_chosen), float(err_plain))
    save_compressed(chosen, tmp_path / "chosen")
    back = load_model(str(tmp_path / "chosen"))
    torch.testing.assert_close(_encoder_out(back, HELD_OUT), _encoder_out(chosen, HELD_OUT), rtol=0, atol=0)
