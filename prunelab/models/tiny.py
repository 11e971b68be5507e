"""Small random-weight demo models with the real tokenizers' vocabularies: ``tiny:whisper`` and ``tiny:ctc``.

They load in a fraction of a second, so tests, the app's test mode and demos can exercise every path
(layer discovery, every method, folding, save/load, transcription) without the real weights. Their
weights are random (seeded), so never read a WER from them.

Every bias (linear and convolution layers) and every normalisation layer's scale and shift is random too
(:func:`randomize_biases_and_norms`): with transformers' zero biases and unit norms, a compressed layer
that lost or replaced its bias would still match the original exactly, and no test on these models could
tell.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..speech_model import SpeechModel
from .specs import unknown_model

BIAS_STD = 0.05
"""Spread of the random biases: a third of a channel's weight-row norm in the tiny models (0.02 x sqrt(64)),
enough that clustering and every bias copy matter."""
NORM_STD = 0.1
"""Spread of the random norm scales around 1 and shifts around 0."""


def randomize_biases_and_norms(model: nn.Module, seed: int) -> nn.Module:
    """Give every bias a random value, and every LayerNorm / GroupNorm a random scale (around 1) and shift.

    Deterministic given ``seed`` (its own generator: the global random state is untouched). In place; returns ``model``.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
                if module.weight is not None:
                    module.weight.copy_(1 + NORM_STD * torch.randn(module.weight.shape, generator=g))
                if module.bias is not None:
                    module.bias.copy_(NORM_STD * torch.randn(module.bias.shape, generator=g))
            elif isinstance(module, (nn.Linear, nn.Conv1d)) and module.bias is not None:
                module.bias.copy_(BIAS_STD * torch.randn(module.bias.shape, generator=g))
    return model


def load_tiny(spec: str) -> SpeechModel:
    if spec == "tiny:whisper":
        return _tiny_whisper()
    if spec == "tiny:ctc":
        return _tiny_ctc()
    raise unknown_model(spec)


def _tiny_whisper() -> SpeechModel:
    """Random Whisper (D=64, 2+2 layers, 4 heads, ffn 256, 80 mels) with the real Whisper tokenizer; random
    biases and norms."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from .bundled import build_generation_config, build_processor, ct2_config

    processor = build_processor()
    config = WhisperConfig(
        vocab_size=51865, num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256,
        max_source_positions=1500, max_target_positions=448, pad_token_id=50257, bos_token_id=50257,
        eos_token_id=50257, decoder_start_token_id=50258, begin_suppress_tokens=None, suppress_tokens=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration(config)
    randomize_biases_and_norms(model, seed=1)
    model.generation_config = build_generation_config(processor.tokenizer, ct2_config())
    model.generation_config.max_length = 32  # random weights rarely stop on their own
    return SpeechModel(model=model, processor=processor, family="whisper", spec="tiny:whisper")


CTC_CHARS = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"]


def _tiny_ctc() -> SpeechModel:
    """Random HuBERT CTC model (hidden 64, 2 layers, 4 heads, 7 small convs: 20 ms frames, 32-char vocab); random
    biases and norms."""
    from transformers import (
        HubertConfig,
        HubertForCTC,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Processor,
    )

    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.json"
        vocab_file.write_text(json.dumps({c: i for i, c in enumerate(CTC_CHARS)}), encoding="utf-8")
        tokenizer = Wav2Vec2CTCTokenizer(str(vocab_file), unk_token="<unk>", pad_token="<pad>",
                                         word_delimiter_token="|", do_lower_case=False)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=False)
    config = HubertConfig(
        vocab_size=len(CTC_CHARS), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=256, conv_dim=(32,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        feat_extract_norm="group", do_stable_layer_norm=False, pad_token_id=0, ctc_loss_reduction="mean",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = HubertForCTC(config)
    randomize_biases_and_norms(model, seed=2)
    processor = Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)
    return SpeechModel(model=model, processor=processor, family="ctc", spec="tiny:ctc")
