"""Save a compressed model to a folder (safetensors + config + plan JSON) and load it back."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_model as st_load_model
from safetensors.torch import save_model as st_save_model

from ..compression.layers import set_module
from ..compression.plan import Plan
from ..errors import ModelLoadError
from ..modules import build_module
from ..speech_model import SpeechModel

WEIGHTS = "model.safetensors"
COMPRESSION = "compression.json"
PLAN = "plan.json"


def save_compressed(model: SpeechModel, folder: str | os.PathLike) -> Path:
    """Write ``model`` (compressed or not) to ``folder``: weights, HF config, processor files, plan JSON.

    The folder is written next to its final place and renamed at the end, so a crash leaves nothing half-written.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.model.config.save_pretrained(tmp)
        model.processor.save_pretrained(tmp)
        if getattr(model.model, "generation_config", None) is not None and model.family == "whisper":
            model.model.generation_config.save_pretrained(tmp)
        st_save_model(model.model, str(tmp / WEIGHTS))
        record = {"family": model.family, "spec": model.spec, "compression": model.compression}
        (tmp / COMPRESSION).write_text(json.dumps(record, indent=2) + "\n")
        if model.compression is not None:
            c = model.compression
            Plan(c["plan"]).to_json(tmp / PLAN, method=c["method"], seed=c["seed"], base_model=c["base_model"])
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def is_saved_model(folder: str | os.PathLike) -> bool:
    return (Path(folder) / COMPRESSION).is_file()


def load_compressed(folder: str | os.PathLike, *, device: str | torch.device = "cpu") -> SpeechModel:
    """Load a folder written by :func:`save_compressed`; outputs are identical to the saved model's."""
    from transformers import AutoConfig, AutoModelForCTC, AutoProcessor, GenerationConfig, WhisperForConditionalGeneration

    folder = Path(folder)
    if not is_saved_model(folder):
        raise ModelLoadError(f"{folder} is not a model saved by prunelab (no {COMPRESSION}).")
    record = json.loads((folder / COMPRESSION).read_text())
    config = AutoConfig.from_pretrained(folder)
    if record["family"] == "whisper":
        model = WhisperForConditionalGeneration(config)
    else:
        model = AutoModelForCTC.from_config(config)
    compression = record.get("compression")
    for name, rec in (compression or {}).get("modules", {}).items():
        set_module(model, name, build_module(rec))
    if (compression or {}).get("attention"):  # folded attention units: narrower per-head widths
        from ..attention import set_widths

        for name, dims in compression["attention"].items():
            set_widths(model.get_submodule(name), **dims)
    if (compression or {}).get("vocabulary"):  # trimmed decoder vocabulary: tied embedding + logits
        from ..vocabulary import empty_pair, set_vocabulary

        v = compression["vocabulary"]
        set_vocabulary(model, *empty_pair(v["vocab_size"], v["kept"], v["dim"]))
    missing, unexpected = st_load_model(model, str(folder / WEIGHTS), strict=False)
    if missing or unexpected:
        raise ModelLoadError(
            f"Saved weights in {folder} do not match the model: missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}."  # (safetensors gives sets)
        )
    if record["family"] == "whisper" and (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    return SpeechModel(model.to(device).eval(), processor, record["family"], record["spec"], compression=compression)
