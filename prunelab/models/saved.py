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
from ..errors import ModelLoadError, SaveError
from ..files import make_shareable
from ..modules import build_module
from ..speech_model import SpeechModel

WEIGHTS = "model.safetensors"
COMPRESSION = "compression.json"
PLAN = "plan.json"


def check_output_folder(folder: str | os.PathLike) -> Path:
    """``folder`` as :func:`save_compressed` will write it, or a :class:`SaveError` that says why it cannot.

    Writable: a folder that does not exist yet (its parent is created), an empty folder, or a model saved by
    prunelab before (it is replaced). Anything else -- a file, a symbolic link, a folder holding other files
    -- is refused before any work is done, so nothing of the user's is ever deleted."""
    given = Path(folder)
    if given.is_symlink():
        raise SaveError(f"{given} is a symbolic link; give the folder itself (or a new folder's name).")
    folder = given.absolute()
    if folder.exists() and not folder.is_dir():
        raise SaveError(f"{given} is a file, not a folder; give a new folder's name to save the model in.")
    if folder.is_dir() and any(folder.iterdir()) and not is_saved_model(folder):
        raise SaveError(f"{given} already holds files that are not a model saved by prunelab; nothing was written. "
                        "Give a new (or empty) folder: prunelab replaces only a folder it saved itself.")
    for parent in folder.parents:  # the first existing ancestor must be a writable folder
        if parent.exists():
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                raise SaveError(f"Cannot create {given}: {parent} is not a folder this user can write to.")
            break
    return folder


def save_compressed(model: SpeechModel, folder: str | os.PathLike) -> Path:
    """Write ``model`` (compressed or not) to ``folder``: weights, HF config, processor files, plan JSON.

    The folder is written next to its final place and renamed at the end, so a crash leaves nothing half-written.
    An existing ``folder`` is replaced only if prunelab saved it (or it is empty); see :func:`check_output_folder`.
    Files and folders get the usual permissions (the umask's), readable by others where the umask allows.
    """
    folder = check_output_folder(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as e:
        raise SaveError(f"Cannot create {folder}: {e.strerror or e}.") from None
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
            Plan(c["plan"]).to_json(tmp / PLAN, method=c["method"], seed=c["seed"], base_model=c["base_model"],
                                    units=c.get("units", "channels"))
        make_shareable(tmp, *tmp.rglob("*"))  # mkdtemp makes the folder private (0700); a model is for sharing
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
