"""The folder a fine-tune runs in (``out``): which run it holds, its labels and soft targets, the Trainer's
checkpoints, and the swap to the finished model.

Layout while it runs: ``finetune.json`` (:data:`RUN_FILE`: the run's identity and the teacher's transcripts),
``finetune-targets.safetensors`` (the teacher's soft targets), ``checkpoints/checkpoint-N`` (the Trainer's, one per
epoch, the last kept). At the end :func:`replace_with` puts the saved model in its place (saved beside it, then
renamed), so the finished folder is a plain :func:`prunelab.save_compressed` folder. Files are written under a
temporary name and renamed, so an interruption leaves either the old file or the new one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

from ..errors import SaveError
from ..speech_model import SpeechModel
from .distill import SoftTargets
from .trainset import TrainingData

RUN_FILE = "finetune.json"
TARGETS_FILE = "finetune-targets.safetensors"
CHECKPOINTS = "checkpoints"


def run_identity(model: SpeechModel, data: TrainingData, settings: dict, teacher_spec: str | None) -> dict:
    """What makes a run the same run (resumable from its checkpoints): the compressed model, the data, the
    teacher and the training ``settings`` (all but how long it trains)."""
    compression = json.dumps(model.compression, sort_keys=True, default=str)
    return {"model": model.spec, "compression": hashlib.sha256(compression.encode()).hexdigest()[:16],
            "data": data.fingerprint(), "clips": len(data.clips), "teacher": teacher_spec, **settings}


def check_out(out: str | os.PathLike) -> Path:
    """``out`` as :func:`finetune` will use it, or :class:`~prunelab.errors.SaveError`: a new or empty folder, a
    model prunelab saved (it is replaced at the end), or a fine-tune in progress (``finetune.json``)."""
    from ..models.saved import check_output_folder

    folder = Path(out)
    if folder.is_dir() and not folder.is_symlink() and (folder / RUN_FILE).is_file():
        if not os.access(folder, os.W_OK | os.X_OK):
            raise SaveError(f"Cannot write to {out}: this user may not write there.")
        return folder.absolute()
    return check_output_folder(folder)


def in_progress(folder: Path, run: dict) -> dict | None:
    """The record of the run in progress in ``folder`` if it is this run; None if there is none; else SaveError."""
    path = folder / RUN_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        saved = record["run"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SaveError(f"{path} is not a fine-tune record prunelab can read; give another --out (or delete {folder} "
                        "yourself if it is an old fine-tune).") from None
    differ = sorted(k for k in set(saved) | set(run) if saved.get(k) != run.get(k))
    if differ:
        what = ", ".join(f"{k} {saved.get(k)!r} there, {run.get(k)!r} now" for k in differ[:4])
        raise SaveError(f"{folder} holds a fine-tune in progress of another run ({what}); nothing was written. Give "
                        "the same model, data and settings to resume it, or another --out.")
    return record


def write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


def save_targets(path: Path, targets: list[SoftTargets]) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for i, t in enumerate(targets):
        tensors[f"{i}.ids"], tensors[f"{i}.logp"], tensors[f"{i}.rest"] = t.ids.int(), t.logp, t.rest
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)


def load_targets(path: Path, lengths: Sequence[int | None]) -> list[SoftTargets] | None:
    """The soft targets a run saved, if they are there, whole, and have ``lengths[i]`` positions for sample i
    (None: any number), else None: they are computed again."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    try:
        tensors = load_file(str(path))
        targets = [SoftTargets(tensors[f"{i}.ids"].long(), tensors[f"{i}.logp"], tensors[f"{i}.rest"])
                   for i in range(len(lengths))]
    except (OSError, KeyError, SafetensorError):
        return None
    if len(tensors) != 3 * len(lengths) or any(n is not None and len(t) != n for t, n in zip(targets, lengths)):
        return None
    return targets


def last_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The Trainer's last COMPLETE checkpoint in ``folder`` (its ``trainer_state.json``, written last, is there)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if p.name[len("checkpoint-"):].isdigit() and (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name[len("checkpoint-"):])) if done else None


def replace_with(model: SpeechModel, folder: Path) -> Path:
    """Save ``model`` as ``folder``, replacing the run's files (saved beside it first, then swapped in)."""
    from ..models.saved import save_compressed

    staged = save_compressed(model, folder.parent / f".{folder.name}.finetuned-{os.getpid()}")
    if folder.exists():
        trash = folder.parent / f".{folder.name}.old-{os.getpid()}"
        folder.rename(trash)
        staged.rename(folder)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staged.rename(folder)
    return folder


__all__ = ["CHECKPOINTS", "RUN_FILE", "TARGETS_FILE", "check_out", "in_progress", "last_checkpoint",
           "load_targets", "replace_with", "run_identity", "save_targets", "write_json"]
