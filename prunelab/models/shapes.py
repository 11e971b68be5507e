"""Random-weight models with the real checkpoints' shapes: ``random:whisper-medium``, ``random:hubert-large``, ...

The hub cannot be reached everywhere prunelab runs (tests, benchmarks, a machine without network), yet
layer discovery, every preset and unit kind, folding, save/load, decoding and the time and memory all
depend on a model's structure and size, not its weights. These models are built from the real
configurations (the same transformers classes and options: Whisper's 128 mel bins in large-v3, the
stable-layer-norm transformer and layer-normalised conv feature encoder of the large CTC models, WavLM's
relative position buckets) with random weights (seeded), so never read a WER from them.

``scale`` options make the same structure smaller for fast tests: fewer layers, a narrower model and FFN,
with the real number of heads and the real convolutional feature encoder.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ModelLoadError
from ..speech_model import SpeechModel


@dataclass(frozen=True)
class Shape:
    """The dimensions of one real checkpoint (``source``)."""

    family: str  # "whisper" or "ctc"
    arch: str  # "whisper", "hubert", "wav2vec2", "wavlm"
    width: int  # d_model / hidden_size
    layers: int  # per stack (Whisper: encoder and decoder each)
    heads: int
    ffn: int
    source: str
    mels: int = 80
    vocab: int = 51865


SHAPES: dict[str, Shape] = {
    "whisper-base": Shape("whisper", "whisper", 512, 6, 8, 2048, "openai/whisper-base"),
    "whisper-small": Shape("whisper", "whisper", 768, 12, 12, 3072, "openai/whisper-small"),
    "whisper-medium": Shape("whisper", "whisper", 1024, 24, 16, 4096, "openai/whisper-medium"),
    "whisper-large-v3": Shape("whisper", "whisper", 1280, 32, 20, 5120, "openai/whisper-large-v3", mels=128, vocab=51866),
    "hubert-large": Shape("ctc", "hubert", 1024, 24, 16, 4096, "facebook/hubert-large-ls960-ft", vocab=32),
    "wav2vec2-large": Shape("ctc", "wav2vec2", 1024, 24, 16, 4096, "facebook/wav2vec2-large-960h-lv60-self", vocab=32),
    "wavlm-large": Shape("ctc", "wavlm", 1024, 24, 16, 4096, "microsoft/wavlm-large (+ a 32-character CTC head)", vocab=32),
}
SPEC_PREFIX = "random:"


def random_specs() -> list[str]:
    return [SPEC_PREFIX + name for name in SHAPES]


def parameter_count(name: str) -> int:
    """Parameters of the full-size model ``name`` (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        sm = build_random(name, init=False)
    return sum(p.numel() for p in sm.model.parameters())


def load_random(spec: str, *, dtype: torch.dtype = torch.float32) -> SpeechModel:
    """``random:<name>`` -> :func:`build_random` at full size."""
    name = spec[len(SPEC_PREFIX):]
    if name not in SHAPES:
        raise ModelLoadError(f"Unknown random-weight model {spec!r}; available: {', '.join(random_specs())}.")
    return build_random(name, dtype=dtype)


def build_random(
    name: str,
    *,
    layers: int | None = None,
    width: int | None = None,
    ffn: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    init: bool = True,
) -> SpeechModel:
    """A random-weight model with ``SHAPES[name]``'s structure; ``layers`` / ``width`` / ``ffn`` shrink it
    (``width`` must be a multiple of the real head count). Biases and norms are random too."""
    from .tiny import randomize_biases_and_norms

    shape = SHAPES[name]
    layers, width, ffn = layers or shape.layers, width or shape.width, ffn or shape.ffn
    if width % shape.heads:
        raise ValueError(f"width {width} is not a multiple of {name}'s {shape.heads} heads")
    build = _whisper if shape.family == "whisper" else _ctc
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sm = build(shape, layers, width, ffn, dtype)
    if init:
        randomize_biases_and_norms(sm.model, seed=seed + 1)
    sm.spec = SPEC_PREFIX + name if (layers, width, ffn) == (shape.layers, shape.width, shape.ffn) else (
        f"{SPEC_PREFIX}{name}[layers={layers},width={width},ffn={ffn}]")
    sm.model.eval()
    return sm


def _whisper(shape: Shape, layers: int, width: int, ffn: int, dtype: torch.dtype) -> SpeechModel:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    from .bundled import build_generation_config, build_tokenizer, ct2_config

    tokenizer = build_tokenizer()  # Whisper-base's; large-v3's adds one language token (id 51865, suppressed here)
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=shape.mels), tokenizer=tokenizer)
    config = WhisperConfig(
        vocab_size=shape.vocab, num_mel_bins=shape.mels, d_model=width, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=shape.heads, decoder_attention_heads=shape.heads, encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn, max_source_positions=1500, max_target_positions=448, pad_token_id=50257,
        bos_token_id=50257, eos_token_id=50257, decoder_start_token_id=50258, begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    model = WhisperForConditionalGeneration._from_config(config, dtype=dtype)
    gen = build_generation_config(tokenizer, ct2_config(), num_decoder_layers=layers)
    gen.suppress_tokens = sorted(set(gen.suppress_tokens) | set(range(len(tokenizer), shape.vocab)))
    gen.max_length = 64  # random weights rarely stop on their own
    model.generation_config = gen
    return SpeechModel(model=model, processor=processor, family="whisper", spec="")


def _ctc(shape: Shape, layers: int, width: int, ffn: int, dtype: torch.dtype) -> SpeechModel:
    from transformers import (
        HubertConfig,
        HubertForCTC,
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
        WavLMConfig,
        WavLMForCTC,
    )

    from .tiny import CTC_CHARS

    config_cls, model_cls = {"hubert": (HubertConfig, HubertForCTC), "wav2vec2": (Wav2Vec2Config, Wav2Vec2ForCTC),
                             "wavlm": (WavLMConfig, WavLMForCTC)}[shape.arch]
    common = dict(
        vocab_size=len(CTC_CHARS), hidden_size=width, num_hidden_layers=layers, num_attention_heads=shape.heads,
        intermediate_size=ffn, conv_dim=(512,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, feat_extract_norm="layer",
        do_stable_layer_norm=True, pad_token_id=0, ctc_loss_reduction="mean",
        conv_bias=shape.arch != "wavlm",  # the large checkpoints' settings
    )
    if shape.arch == "wavlm":
        common.update(num_buckets=320, max_bucket_distance=800)
    model = model_cls._from_config(config_cls(**common), dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.json"
        vocab_file.write_text(json.dumps({c: i for i, c in enumerate(CTC_CHARS)}), encoding="utf-8")
        tokenizer = Wav2Vec2CTCTokenizer(str(vocab_file), unk_token="<unk>", pad_token="<pad>",
                                         word_delimiter_token="|", do_lower_case=False)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                         return_attention_mask=True)
    processor = Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)
    return SpeechModel(model=model, processor=processor, family="ctc", spec="")
