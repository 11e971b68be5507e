"""Random-weight models with the real large checkpoints' structure (prunelab.models.shapes): HuBERT-,
wav2vec2- and WavLM-large (24 layers, 1024, 4096, stable layer norm, layer-normalised conv encoder) and
Whisper-large-v3 (128 mel bins, 51866 tokens). The fast tests shrink depth and width but keep the real
configuration otherwise (heads, conv feature encoder, norms); the slow one runs HuBERT-large at full size.
Random weights: outputs are compared with each other, never read as WER."""
import json

import numpy as np
import pytest
import torch

from independent import ctc_text
from prunelab import CompressionConfig, compress, find_layers, load_model
from prunelab.compression.plan import PRESETS, UNITS
from prunelab.errors import ModelLoadError, PlanError
from prunelab.models import load_compressed, save_compressed
from prunelab.models import memory
from prunelab.models.shapes import SHAPES, build_random, parameter_count
from prunelab.speech.audio import load_audio
from prunelab.speech.transcribe import transcribe

SMALL = {"hubert-large": 128, "wav2vec2-large": 128, "wavlm-large": 128, "whisper-large-v3": 160}
CLIP = "assets/clip1.wav"
SCALED = {"hidden_size", "d_model", "num_hidden_layers", "encoder_layers", "decoder_layers", "intermediate_size",
          "encoder_ffn_dim", "decoder_ffn_dim", "output_hidden_size", "dtype", "torch_dtype"}


@pytest.fixture(scope="module", params=list(SMALL))
def small(request):
    return build_random(request.param, layers=2, width=SMALL[request.param], ffn=512)


@pytest.fixture(scope="module")
def audio():
    return load_audio(CLIP)[:16000]  # 1 s


def _out(sm, audio):
    """The model's logits on ``audio`` (Whisper: the first decoder steps of a fixed prompt)."""
    with torch.no_grad():
        if sm.family == "ctc":
            x = sm.processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_values
            return sm.model(x).logits
        feats = sm.processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
        return sm.model(input_features=feats, decoder_input_ids=torch.tensor([[50258, 50259, 50359, 50363, 400]])).logits


@pytest.mark.parametrize("name, published_millions", [
    ("whisper-small", 244), ("whisper-medium", 769), ("whisper-large-v3", 1550), ("hubert-large", 316),
    ("wav2vec2-large", 315), ("wavlm-large", 316)])
def test_full_size_parameter_counts_match_the_published_ones(name, published_millions):
    assert parameter_count(name) / 1e6 == pytest.approx(published_millions, rel=0.01)


def test_small_models_keep_the_real_configuration(small):
    name = small.spec.split(":")[1].split("[")[0]
    with torch.device("meta"):
        full = build_random(name, init=False)
    a, b = small.model.config.to_dict(), full.model.config.to_dict()
    differ = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert differ <= SCALED, differ - SCALED
    shape = SHAPES[name]
    assert type(small.model) is type(full.model) and small.family == shape.family
    if shape.family == "ctc":
        assert a["do_stable_layer_norm"] and a["feat_extract_norm"] == "layer" and a["num_attention_heads"] == 16
        assert list(a["conv_dim"]) == [512] * 7
    else:
        assert a["num_mel_bins"] == 128 and a["vocab_size"] == 51866 and a["encoder_attention_heads"] == 20
        assert small.processor.feature_extractor.feature_size == 128


def test_layer_discovery(small):
    layers = find_layers(small.model)
    width = SMALL[small.spec.split(":")[1].split("[")[0]]
    stacks = [("encoder", "self_attn")] + ([("decoder", "self_attn"), ("decoder", "cross_attn")]
                                           if small.family == "whisper" else [])
    want = {}
    for part, group in stacks:
        for kind in ("q", "k", "v", "out"):
            want[(part, group, kind)] = (width, width)
    for part in {p for p, _ in stacks}:
        want[(part, "ffn", "fc1")] = (512, width)
        want[(part, "ffn", "fc2")] = (width, 512)
    got = {}
    for l in layers:
        got.setdefault((l.part, l.group, l.kind), set()).add((l.out_features, l.in_features))
        assert (l.unit is not None) == (l.kind in ("q", "v", "fc1"))
        if l.kind in ("q", "v"):
            assert l.heads * l.head_dim == width and l.heads == (16 if small.family == "ctc" else 20)
    assert got == {k: {v} for k, v in want.items()}
    assert len(layers) == 2 * len(want)  # every one of the two layers of each stack


def _fingerprint(sm) -> list:
    """Every tensor's name, shape and sum: the same for the same model (a forward pass is what costs here)."""
    return [(k, tuple(v.shape), float(v.double().sum())) for k, v in sm.model.state_dict().items()]


@pytest.mark.parametrize("units", UNITS)
def test_every_preset_compresses_folds_exactly_and_shrinks(small, audio, units):
    original = _out(small, audio)
    n = lambda m: sum(p.numel() for p in m.model.parameters())  # noqa: E731
    touched, refused = 0, 0
    seen: dict[str, list] = {}  # plan -> fingerprint of the folded model
    layers = find_layers(small.model)
    wavlm = type(small.model).__name__ == "WavLMForCTC"
    for preset in PRESETS:
        cfg = dict(method="kmeans", sparsity=0.3, preset=preset, units=units, seed=0)
        if small.family == "ctc" and "decoder" in preset:  # it selects none of a CTC model's layers: refused
            with pytest.raises(PlanError, match="selects no layer"):
                compress(small, CompressionConfig(**cfg))
            continue
        if wavlm and units == "foldable" and any(PRESETS[preset](l) and l.kind in ("q", "v") for l in layers):
            with pytest.raises(PlanError, match="WavLMAttention cannot be folded.*channels instead"):
                compress(small, CompressionConfig(**cfg))  # its attention is refused, with what to do instead
            refused += 1
            continue
        folded = compress(small, CompressionConfig(fold=True, **cfg))
        assert n(folded) <= n(small)
        assert folded.compression["params_removed"] == pytest.approx(1 - n(folded) / n(small), abs=1e-9)
        assert folded.compression["plan"], preset
        touched += 1
        plan = json.dumps(folded.compression["plan"], sort_keys=True)
        if plan in seen:  # the plan of an earlier preset (e.g. uniform and foldable with foldable units): the
            assert _fingerprint(folded) == seen[plan], preset  # same model, whose outputs were checked there
            continue
        seen[plan] = _fingerprint(folded)
        unfolded = compress(small, CompressionConfig(fold=False, **cfg))
        out = _out(folded, audio)
        torch.testing.assert_close(out, _out(unfolded, audio), rtol=1e-4, atol=1e-4,
                                   msg=lambda m: f"{preset}/{units}: {m}")
        assert (out - original).abs().max() > 1e-6, preset  # it did change the model
    decoder_only = sum("decoder" in p for p in PRESETS)  # they select nothing in a CTC model
    assert touched + refused == len(PRESETS) - (decoder_only if small.family == "ctc" else 0)
    assert refused == (8 if wavlm and units == "foldable" else 0)


def test_wavlm_attention_compressed_by_channels_stays_dense_and_runs(audio):
    """WavLM hands its projections' weights to torch's multi_head_attention_forward, which needs full-size
    matrices: clustered projections there are stored dense (before this, the forward pass failed)."""
    sm = build_random("wavlm-large", layers=2, width=128, ffn=512)
    cut = compress(sm, CompressionConfig(method="kmeans", sparsity=0.5, preset="attention"))
    for l in (l for l in find_layers(sm.model) if l.group == "self_attn"):
        m = cut.model.get_submodule(l.name)
        assert type(m) is torch.nn.Linear and m.weight.shape == (128, 128)
        assert torch.unique(m.weight, dim=0).shape[0] == 64  # 64 distinct rows of 128: clustered
    assert cut.compression["params_removed"] == 0.0
    assert (_out(cut, audio) - _out(sm, audio)).abs().max() > 1e-6


@pytest.mark.parametrize("units", UNITS)
def test_save_load_and_decoding(small, audio, tmp_path, units):
    wavlm = type(small.model).__name__ == "WavLMForCTC"
    preset = "ffn" if wavlm and units == "foldable" else "uniform"  # WavLM's attention units do not fold
    cut = compress(small, CompressionConfig(method="kmeans", sparsity=0.3, preset=preset, units=units))
    back = load_compressed(save_compressed(cut, tmp_path / "m"))
    torch.testing.assert_close(_out(back, audio), _out(cut, audio), rtol=0, atol=0)
    assert back.compression["modules"] == cut.compression["modules"]
    for sm in (small, cut, back):
        text = transcribe(sm, audio, 16000)
        if sm.family == "ctc":  # greedy CTC: best label per frame, repeats merged, blanks dropped
            ids = _out(sm, audio).argmax(-1)[0]
            assert text == ctc_text(sm.processor.tokenizer, ids)
        else:
            assert isinstance(text, str)
    assert transcribe(back, audio, 16000) == transcribe(cut, audio, 16000)
    if small.family == "whisper":  # large-v3's extra token (no text in Whisper-base's tokenizer) is never emitted
        feats = small.processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            ids = small.model.generate(feats, max_new_tokens=16)
        assert int(ids.max()) < len(small.processor.tokenizer)


def test_load_model_random_specs_dtype_and_size_guard(monkeypatch):
    with pytest.raises(ModelLoadError, match="random:whisper-large-v3.*too large") as e:
        load_model("random:whisper-large-v3", max_bytes=10**9)
    # what it would need: the weights twice (original + compressed copy) + the process
    n = parameter_count("whisper-large-v3")
    assert f"about {(8 * n + memory.PROCESS_BYTES) / 1e9:.1f} GB of memory with float32" in str(e.value)
    assert f"{(4 * n + memory.PROCESS_BYTES) / 1e9:.1f} GB with dtype='bfloat16'" in str(e.value)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 8 * 10**9)  # a machine with 8 GB free
    assert memory.auto_max_bytes(torch.float32) == (8 * 10**9 - memory.PROCESS_BYTES) // 2
    need = f"{(8 * n + memory.PROCESS_BYTES) / 1e9:.1f}"
    with pytest.raises(ModelLoadError, match=need.replace(".", r"\.") + r" GB of memory with float32.*; 8\.0 GB is available now"):
        load_model("random:whisper-large-v3", max_bytes="auto")
    with pytest.raises(ModelLoadError, match="max_bytes must be"):
        load_model("tiny:ctc", max_bytes="4GB")
    with pytest.raises(ModelLoadError, match="Unknown random-weight model.*random:hubert-large"):
        load_model("random:hubert-huge")
    with pytest.raises(ModelLoadError, match="Unsupported weight dtype"):
        load_model("tiny:ctc", dtype="int8")
    half = load_model("tiny:ctc", dtype="bfloat16")
    assert {p.dtype for p in half.model.parameters()} == {torch.bfloat16}
    cut = compress(half, CompressionConfig(method="kmeans", sparsity=0.3, preset="ffn", units="foldable"))
    assert {p.dtype for p in cut.model.parameters()} == {torch.bfloat16}  # compressed layers keep the dtype
    assert isinstance(transcribe(cut, CLIP), str)


@pytest.mark.slow
def test_full_size_hubert_large(audio):
    sm = load_model("random:hubert-large")
    layers = find_layers(sm.model)
    assert len(layers) == 24 * 6
    assert {(l.kind, l.out_features, l.in_features) for l in layers} == {
        ("q", 1024, 1024), ("k", 1024, 1024), ("v", 1024, 1024), ("out", 1024, 1024), ("fc1", 4096, 1024),
        ("fc2", 1024, 4096)}
    cut = compress(sm, CompressionConfig(method="kmeans", sparsity=0.2, preset="foldable", units="foldable"))
    assert cut.compression["params_removed"] > 0.1
    assert np.isfinite(_out(cut, audio).numpy()).all()
    assert transcribe(cut, audio, 16000) == cut.processor.tokenizer.decode(_out(cut, audio).argmax(-1)[0]).strip()
