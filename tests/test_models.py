"""Tests for the CTranslate2 reader, the bundled Whisper-base, tiny models and load_model's errors."""
from __future__ import annotations

import io
import itertools
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from prunelab.models import bundled
from prunelab.models.ctranslate2 import ConcatReader, CT2FormatError, read_ctranslate2
from prunelab.errors import ModelLoadError
from prunelab.models.load import (
    DEFAULT_MODEL,
    available_models,
    load_model,
    model_size_on_hub,
)

# --- CTranslate2 reader ------------------------------------------------------------------------------


def _ct2_string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<H", len(raw) + 1) + raw + b"\0"


def _ct2_bytes(variables: list[tuple[str, np.ndarray, int]], aliases: list[tuple[str, str]]) -> bytes:
    """Hand-written model.bin per CTranslate2's ModelSpec._serialize (binary version 6)."""
    out = struct.pack("<I", 6) + _ct2_string("TestSpec") + struct.pack("<II", 3, len(variables))
    for name, a, dtype_id in variables:
        out += _ct2_string(name) + struct.pack("<B", a.ndim) + b"".join(struct.pack("<I", d) for d in a.shape)
        out += struct.pack("<BI", dtype_id, a.nbytes) + a.tobytes()
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases:
        out += _ct2_string(alias) + _ct2_string(target)
    return out


RNG = np.random.default_rng(0)
CT2_VARS = [
    ("enc/w", RNG.standard_normal((4, 3)).astype(np.float16), 4),
    ("enc/b", RNG.standard_normal(5).astype(np.float32), 0),
    ("enc/q", np.array([[-128, 0, 127]], dtype=np.int8), 1),
    ("heads", np.array(8, dtype=np.int16), 2),
    ("ids", np.array([1, -2, 70000], dtype=np.int32), 3),
]


def test_ct2_reader_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(_ct2_bytes(CT2_VARS, [("dec/w", "enc/w")]))
    variables, header = read_ctranslate2(path, with_header=True)
    assert header == (6, "TestSpec", 3)
    assert set(variables) == {"enc/w", "enc/b", "enc/q", "heads", "ids", "dec/w"}
    for name, a, _ in CT2_VARS:
        assert variables[name].dtype == a.dtype and variables[name].shape == a.shape
        np.testing.assert_array_equal(variables[name], a)
    assert int(variables["heads"]) == 8 and variables["heads"].shape == ()
    np.testing.assert_array_equal(variables["dec/w"], CT2_VARS[0][1])


def test_ct2_reader_split_file_and_truncation(tmp_path: Path) -> None:
    data = _ct2_bytes(CT2_VARS, [])
    cuts = [0, 7, 40, len(data) - 3, len(data)]  # cut inside the header, a name, and the last array
    parts = []
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        parts.append(tmp_path / f"part{i}")
        parts[-1].write_bytes(data[a:b])
    with ConcatReader(parts) as f:
        variables = read_ctranslate2(f)
    np.testing.assert_array_equal(variables["ids"], CT2_VARS[-1][1])
    with pytest.raises(CT2FormatError, match="truncated"):
        read_ctranslate2(io.BytesIO(data[:-2]))
    with pytest.raises(CT2FormatError, match="version"):
        read_ctranslate2(io.BytesIO(struct.pack("<I", 1) + data[4:]))


# --- bundled Whisper-base ----------------------------------------------------------------------------


@pytest.mark.slow
def test_bundled_config(whisper_base) -> None:
    cfg = whisper_base.model.config
    assert whisper_base.family == "whisper" and whisper_base.spec == DEFAULT_MODEL
    assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers) == (512, 6, 6)
    assert (cfg.encoder_attention_heads, cfg.decoder_attention_heads, cfg.encoder_ffn_dim) == (8, 8, 2048)
    assert (cfg.vocab_size, cfg.num_mel_bins, cfg.max_target_positions) == (51865, 80, 448)
    assert not whisper_base.model.training
    assert all(p.dtype == torch.float32 for p in whisper_base.model.parameters())
    assert 72e6 < whisper_base.num_parameters < 75e6
    gen = whisper_base.model.generation_config
    assert gen.lang_to_id["<|en|>"] == 50259 and gen.task_to_id["transcribe"] == 50359
    assert gen.no_timestamps_token_id == 50363 and gen.decoder_start_token_id == 50258
    assert gen.begin_suppress_tokens == [220, 50257] and len(gen.suppress_tokens) > 50
    tok = whisper_base.processor.tokenizer
    assert tok.convert_tokens_to_ids("<|startoftranscript|>") == 50258
    assert tok.decode(tok(" hello world", add_special_tokens=False).input_ids) == " hello world"


@pytest.mark.slow
def test_bundled_state_dict_matches_ct2(whisper_base) -> None:
    v = bundled.read_bundled_variables()
    sd = whisper_base.model.state_dict()

    def same(key: str, array: np.ndarray) -> None:
        torch.testing.assert_close(sd[key], torch.from_numpy(np.asarray(array, dtype=np.float32)), rtol=0, atol=0)

    qkv = v["encoder/layer_3/self_attention/linear_0/weight"]
    same("model.encoder.layers.3.self_attn.q_proj.weight", qkv[:512])
    same("model.encoder.layers.3.self_attn.k_proj.weight", qkv[512:1024])
    same("model.encoder.layers.3.self_attn.v_proj.weight", qkv[1024:])
    same("model.encoder.layers.3.self_attn.v_proj.bias", v["encoder/layer_3/self_attention/linear_0/bias"][1024:])
    assert "model.encoder.layers.3.self_attn.k_proj.bias" not in sd
    kv = v["decoder/layer_5/attention/linear_1/weight"]
    same("model.decoder.layers.5.encoder_attn.q_proj.weight", v["decoder/layer_5/attention/linear_0/weight"])
    same("model.decoder.layers.5.encoder_attn.k_proj.weight", kv[:512])
    same("model.decoder.layers.5.encoder_attn.v_proj.weight", kv[512:])
    same("model.decoder.layers.5.encoder_attn.out_proj.weight", v["decoder/layer_5/attention/linear_2/weight"])
    same("model.decoder.layers.5.encoder_attn_layer_norm.weight", v["decoder/layer_5/attention/layer_norm/gamma"])
    same("model.decoder.layers.0.final_layer_norm.bias", v["decoder/layer_0/ffn/layer_norm/beta"])
    same("model.encoder.conv2.weight", v["encoder/conv2/weight"])
    same("model.encoder.embed_positions.weight", v["encoder/position_encodings/encodings"])
    same("model.decoder.embed_tokens.weight", v["decoder/embeddings/weight"])
    m = whisper_base.model
    assert m.proj_out.weight.data_ptr() == m.model.decoder.embed_tokens.weight.data_ptr()


def _espeak_clip(tmp_path: Path, text: str) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    import soundfile
    import soxr  # what librosa.resample uses, without librosa's slow first import

    wav = tmp_path / "clip.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
    audio, sr = soundfile.read(wav, dtype="float32")
    return soxr.resample(audio, sr, 16000).astype(np.float32)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.mark.slow
def test_bundled_transcribes_espeak(whisper_base, tmp_path: Path) -> None:
    audio = _espeak_clip(tmp_path, "Hello world. This is a test of the speech recognition system.")
    feats = whisper_base.processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    assert feats.shape == (1, 80, 3000)
    with torch.no_grad():
        ids = whisper_base.model.generate(feats, language="en", task="transcribe")
    text = whisper_base.processor.batch_decode(ids, skip_special_tokens=True)[0]
    assert {"hello", "world", "test", "speech", "recognition", "system"} <= _words(text), text


@pytest.mark.slow
def test_bundled_conversion_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE", str(tmp_path))
    first = load_model("bundled:whisper-base")
    folder = tmp_path / "whisper-base"
    assert (folder / "model.safetensors").is_file() and bundled.is_cached(folder)
    assert [p.name for p in tmp_path.iterdir()] == ["whisper-base"]  # no temp folders left behind
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    second = load_model("bundled:whisper-base")
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime  # read from the cache, not converted again
    key = "model.decoder.layers.2.self_attn.q_proj.weight"
    assert torch.equal(first.model.state_dict()[key], second.model.state_dict()[key])
    (folder / bundled._MARKER).unlink()  # an incomplete cache is converted again, not trusted
    assert not bundled.is_cached(folder)
    load_model("bundled:whisper-base")
    assert bundled.is_cached(folder)


# --- tiny models -------------------------------------------------------------------------------------


def test_tiny_whisper(tiny_whisper) -> None:
    m = tiny_whisper.model
    assert tiny_whisper.family == "whisper" and not m.training
    assert (m.config.d_model, m.config.encoder_layers, m.config.decoder_layers) == (64, 2, 2)
    feats = tiny_whisper.processor(np.zeros(16000, np.float32), sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        out = m(input_features=feats, decoder_input_ids=torch.tensor([[50258, 50259, 50359, 50363]]))
        ids = m.generate(feats, language="en", task="transcribe", max_new_tokens=5)
    assert out.logits.shape == (1, 4, 51865)
    assert out.encoder_last_hidden_state.shape == (1, 1500, 64)
    assert ids.ndim == 2 and ids.shape[1] >= 1
    again = load_model("tiny:whisper").model.state_dict()  # seeded: same weights every time
    assert all(torch.equal(t, again[k]) for k, t in m.state_dict().items())
    _assert_random_biases_and_norms(m, n_linear_biases=26, n_norms=12)  # Whisper's k_proj has no bias


def _assert_random_biases_and_norms(model: torch.nn.Module, n_linear_biases: int, n_norms: int) -> None:
    """Every bias is non-zero and every norm has a non-trivial scale and shift, so a lost or reset bias shows."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.bias is not None]
    norms = [m for m in model.modules() if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm))]
    assert (len(linears), len(norms)) == (n_linear_biases, n_norms)
    for module in linears:
        assert bool((module.bias != 0).all()) and 0.02 < float(module.bias.std()) < 0.1
    for module in norms:
        assert not torch.allclose(module.weight, torch.ones_like(module.weight), atol=0.01)
        assert bool((module.bias != 0).all())
    biases = torch.cat([m.bias.detach() for m in linears])
    assert len(biases.unique()) == len(biases)  # drawn independently, not one shared value


def test_tiny_ctc(tiny_ctc) -> None:
    m = tiny_ctc.model
    assert tiny_ctc.family == "ctc" and type(m).__name__ == "HubertForCTC" and not m.training
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    x = tiny_ctc.processor(audio, sampling_rate=16000, return_tensors="pt").input_values
    with torch.no_grad():
        logits = m(x).logits
    assert logits.shape == (1, 49, 32)  # 20 ms frames, 32 characters
    assert tiny_ctc.processor.tokenizer.decode(tiny_ctc.processor.tokenizer("HI THERE").input_ids) == "HI THERE"
    again = load_model("tiny:ctc").model.state_dict()
    assert all(torch.equal(t, again[k]) for k, t in m.state_dict().items())
    _assert_random_biases_and_norms(m, n_linear_biases=14, n_norms=7)


def test_local_folder_round_trip_and_max_bytes(tiny_ctc, tmp_path: Path) -> None:
    tiny_ctc.model.save_pretrained(tmp_path)
    tiny_ctc.processor.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path))
    assert loaded.family == "ctc" and loaded.spec == str(tmp_path)
    key = "lm_head.weight"
    assert torch.equal(loaded.model.state_dict()[key], tiny_ctc.model.state_dict()[key])
    with pytest.raises(ModelLoadError, match="too large"):
        load_model(str(tmp_path), max_bytes=1000)
    with pytest.raises(ModelLoadError, match="too large"):
        load_model("bundled:whisper-base", max_bytes=10_000_000)


def test_unsupported_architectures(tmp_path: Path) -> None:
    from transformers import BertConfig, HubertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(
        tmp_path / "bert"
    )
    with pytest.raises(ModelLoadError, match="not supported"):
        load_model(str(tmp_path / "bert"))
    HubertConfig(architectures=["HubertModel"]).save_pretrained(tmp_path / "hubert")
    with pytest.raises(ModelLoadError, match="no CTC head"):
        load_model(str(tmp_path / "hubert"))


# --- errors ------------------------------------------------------------------------------------------


def test_available_models() -> None:
    assert available_models()[0] == DEFAULT_MODEL
    assert {"tiny:whisper", "tiny:ctc"} <= set(available_models())


@pytest.mark.parametrize("spec", ["tiny:nope", "bundled:whisper-huge", "/definitely/not/a/folder", "bad id!"])
def test_unknown_spec(spec: str) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model(spec)
    assert "tiny:ctc" in str(info.value) and DEFAULT_MODEL in str(info.value)


class _HubRequests:
    """Stands in for huggingface_hub's session: records each request's timeout, then sends it on (with at
    most 30 s, so that a request without a timeout fails the test instead of hanging it)."""

    def __init__(self, real) -> None:
        self.real, self.timeouts = real, []

    def head(self, url, *args, timeout=None, **kwargs):
        self.timeouts.append(timeout)
        return self.real.head(url, *args, timeout=30 if timeout is None else min(timeout, 30), **kwargs)

    def bounded(self) -> bool:
        """Some request was made, and each waited a few seconds at most."""
        return bool(self.timeouts) and all(t is not None and 0 < t <= 10 for t in self.timeouts)


@pytest.fixture
def hub_requests(monkeypatch: pytest.MonkeyPatch) -> _HubRequests:
    """The hub at a local port nothing listens on, so no test depends on this machine's route to the hub."""
    import socket

    import huggingface_hub.utils
    from huggingface_hub import constants

    with socket.socket() as s:  # a port that was free a moment ago: connections to it are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    spy = _HubRequests(huggingface_hub.utils.get_session())
    monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: spy)
    return spy


def _assert_fails_offline(spec: str) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model(spec)
    assert "cannot be reached" in str(info.value) and DEFAULT_MODEL in str(info.value)


def test_hub_model_fails_fast_without_network(hub_requests: _HubRequests) -> None:
    # (an id no HF cache holds: a cached model would load offline, as it should)
    _assert_fails_offline("prunelab-tests/no-such-model")
    # fast: every request to the hub waits a few seconds at most, so a machine whose packets to the hub are
    # dropped (not refused, as here) fails within seconds too
    assert hub_requests.bounded(), hub_requests.timeouts


def test_hub_offline_env(monkeypatch: pytest.MonkeyPatch, hub_requests: _HubRequests) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _assert_fails_offline("prunelab-tests/no-such-model")
    assert model_size_on_hub("openai/whisper-tiny") is None
    assert hub_requests.timeouts == []  # HF_HUB_OFFLINE: not one request


def test_hub_unresponsive_endpoint_times_out(monkeypatch: pytest.MonkeyPatch, hub_requests: _HubRequests) -> None:
    """A hub that accepts the connection and never answers (a socket on loopback that never reads)."""
    import socket

    import huggingface_hub.constants

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever answers
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        _assert_fails_offline("prunelab-tests/no-such-model")
    assert hub_requests.bounded(), f"requests to a silent hub waited {hub_requests.timeouts} s"


@pytest.mark.slow
def test_bundled_tokenizer_control_and_timestamp_tokens(whisper_base) -> None:
    tok = whisper_base.processor.tokenizer
    assert len(tok) == whisper_base.model.config.vocab_size == 51865
    el, nl, ts0, ts30 = tok.convert_tokens_to_ids(["<|el|>", "<|nl|>", "<|0.00|>", "<|30.00|>"])
    assert {el, nl} <= set(tok.all_special_ids)  # language tokens never leak into transcripts
    assert (ts0, ts30) == (50364, 51864)
    words = tok.encode(" hello there", add_special_tokens=False)
    assert tok.decode([50258, el, 50359, 50363, *words, ts0, nl], skip_special_tokens=True).strip() == "hello there"
