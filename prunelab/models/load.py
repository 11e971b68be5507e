"""Load speech models from a spec: the bundled Whisper-base, Hugging Face ids or folders, saved
compressed models, and the small demo models.

Everything else in prunelab works on a :class:`~prunelab.speech_model.SpeechModel` and never cares
where it came from. Loaders of one kind are imported when that kind is asked for (transformers and
the CTranslate2 reader are heavy), so ``import prunelab`` stays light.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelLoadError
from ..speech_model import SpeechModel
from .specs import BUNDLED_MODELS, DEFAULT_MODEL, TINY_MODELS, available_models, unknown_model

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""Weight dtypes a model can be loaded in (``load_model(dtype=...)``, ``--dtype``)."""
HUB_TIMEOUT_S = 4.0
_OFFLINE_HINT = f"Use the offline default {DEFAULT_MODEL!r} (or a local model folder) instead."


def load_model(
    spec: str = DEFAULT_MODEL,
    *,
    device: str | torch.device = "cpu",
    max_bytes: int | str | None = None,
    dtype: str | torch.dtype = torch.float32,
) -> SpeechModel:
    """Load a speech model (eval mode) from a spec.

    Args:
        spec: ``"bundled:whisper-base"``, ``"tiny:whisper"``, ``"tiny:ctc"``, a local model folder (a
            transformers checkpoint or a folder saved by prunelab), or a Hugging Face model id (Whisper or
            a ``*ForCTC`` model).
        device: where to put the model.
        max_bytes: refuse (``ModelLoadError``) a model whose known weight size exceeds this many bytes;
            ``"auto"``: whose loading and compressing would not fit in the memory available now
            (:mod:`prunelab.models.memory`). The error says how much memory the model would need.
        dtype: the weights' dtype: ``float32`` (default), or ``bfloat16`` / ``float16`` (half the memory;
            on a CPU bfloat16 also transcribes faster; clustering always computes in float32 and the
            compressed layers keep the model's dtype). A name from :data:`DTYPES` or a ``torch.dtype``.

    Raises:
        ModelLoadError: unknown/unsupported spec, missing folder, too large, or hub unreachable.
    """
    spec = (spec or "").strip() or DEFAULT_MODEL
    dtype = resolve_dtype(dtype)
    if isinstance(max_bytes, str) and max_bytes != "auto":
        raise ModelLoadError(f"max_bytes must be a number of bytes, None or 'auto', not {max_bytes!r}.")
    if spec.startswith("bundled:"):
        sm = _load_bundled(spec, max_bytes, dtype)
    elif spec.startswith("random:"):
        from .shapes import load_random, parameter_count

        if spec[len("random:"):] in _shape_names():
            _check_size(spec, parameter_count(spec[len("random:"):]) * dtype.itemsize, max_bytes, dtype)
        sm = load_random(spec, dtype=dtype)
    elif spec.startswith("tiny:"):
        from .tiny import load_tiny

        sm = load_tiny(spec)
    elif Path(spec).expanduser().is_dir():
        folder = Path(spec).expanduser()
        _check_size(spec, _folder_weight_bytes(folder), max_bytes, dtype)
        from .saved import is_saved_model, load_compressed

        if is_saved_model(folder):  # written by `prunelab compress` / save_compressed
            sm = load_compressed(folder)
        elif not (folder / "config.json").is_file():
            raise ModelLoadError(f"Folder {spec!r} holds no model: neither a model saved by prunelab (compression.json) "
                                 "nor a transformers checkpoint (config.json).")
        else:
            sm = _load_pretrained(str(folder), spec, local_only=True, dtype=dtype)
    elif Path(spec).expanduser().is_file():
        raise ModelLoadError(f"{spec!r} is a file; a model is a folder (saved by prunelab or a transformers "
                             f"checkpoint), a Hugging Face model id, or one of: {', '.join(available_models())}.")
    elif _looks_like_path(spec):
        raise ModelLoadError(
            f"Model folder {spec!r} does not exist. Give an existing folder, a Hugging Face model id, "
            f"or one of: {', '.join(available_models())}."
        )
    else:
        sm = _load_hub(spec, max_bytes, dtype)
    try:
        sm.model.to(device=device, dtype=dtype)
    except Exception as exc:  # e.g. "cuda" without CUDA
        raise ModelLoadError(f"Cannot move the model to device {device!r}: {exc}") from exc
    sm.model.eval()
    return sm


# --- bundled model -------------------------------------------------------------------------


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A ``torch.dtype`` from a name in :data:`DTYPES` (or a dtype); ``ModelLoadError`` for anything else."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.strip().lower() in DTYPES:
        return DTYPES[dtype.strip().lower()]
    raise ModelLoadError(f"Unsupported weight dtype {dtype!r}; choose from: {', '.join(DTYPES)}.")


def _shape_names() -> list[str]:
    from .shapes import SHAPES

    return list(SHAPES)


def _load_bundled(spec: str, max_bytes: int | None, dtype: torch.dtype = torch.float32) -> SpeechModel:
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from .bundled import bundled_whisper_dir

    if spec not in BUNDLED_MODELS:
        raise unknown_model(spec)
    _check_size(spec, 74_000_000 * dtype.itemsize, max_bytes, dtype)  # Whisper-base: ~74M parameters
    folder = bundled_whisper_dir()
    model = WhisperForConditionalGeneration.from_pretrained(folder, dtype=dtype, local_files_only=True)
    processor = WhisperProcessor.from_pretrained(folder, local_files_only=True)
    return SpeechModel(model=model, processor=processor, family="whisper", spec=spec)


# --- Hugging Face ids and folders --------------------------------------------------------------------


def _looks_like_path(spec: str) -> bool:
    return (
        spec.startswith(("/", ".", "~"))
        or "\\" in spec
        or spec.count("/") > 1
        or not re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", spec)
    )


def _folder_weight_bytes(folder: Path) -> int | None:
    files = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()]
    return sum(p.stat().st_size for p in files) or None


def _check_size(spec: str, size: int | None, max_bytes: int | str | None,
                dtype: torch.dtype = torch.float32) -> None:
    """Refuse weights of ``size`` bytes (in ``dtype``) above ``max_bytes``, saying what the model would need.
    ``max_bytes="auto"``: what can be loaded and compressed in the memory available now."""
    from .memory import auto_max_bytes, describe_need

    if max_bytes == "auto":
        max_bytes = auto_max_bytes(dtype)
    if max_bytes is not None and size is not None and size > max_bytes:
        raise ModelLoadError(
            f"Model {spec!r} is too large: about {size / 1e9:.2f} GB of weights, the limit is "
            f"{max_bytes / 1e9:.2f} GB; {describe_need(size // dtype.itemsize, dtype)}. "
            f"Pick a smaller model, e.g. {DEFAULT_MODEL!r}, or a machine with more memory."
        )


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """True when the Hugging Face hub answers an HTTP request within ``timeout`` seconds."""
    if _hub_offline():
        return False
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:  # noqa: BLE001 - any transport failure means "not reachable"
        return False
    return True


def model_size_on_hub(repo_id: str, *, timeout: float = HUB_TIMEOUT_S) -> int | None:
    """Bytes of the weight files transformers would download for ``repo_id`` (None when unknown).

    Prefers ``model.safetensors`` (or its shards), else ``pytorch_model.bin`` (or shards). This is the
    size on disk: a float16 checkpoint takes about twice as much memory once loaded as float32.
    """
    if _hub_offline() or not hub_reachable(timeout):
        return None
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(repo_id, files_metadata=True, timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means the size is unknown
        return None
    sizes = {s.rfilename: s.size for s in (info.siblings or []) if s.size is not None}
    for single, shard in (
        ("model.safetensors", r"model-\d+-of-\d+\.safetensors"),
        ("pytorch_model.bin", r"pytorch_model-\d+-of-\d+\.bin"),
    ):
        if single in sizes:
            return int(sizes[single])
        shards = [n for n in sizes if re.fullmatch(shard, n)]
        if shards:
            return int(sum(sizes[n] for n in shards))
    return None


def _offline_error(spec: str) -> ModelLoadError:
    return ModelLoadError(f"Cannot load {spec!r}: the Hugging Face hub cannot be reached. {_OFFLINE_HINT}")


def _load_hub(spec: str, max_bytes: int | None, dtype: torch.dtype = torch.float32) -> SpeechModel:
    """Hub id: fail fast when offline (unless already in the local HF cache), else check and download."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if _hub_offline() or not hub_reachable():
        try:  # a model downloaded earlier still loads from the local cache
            return _load_pretrained(spec, spec, local_only=True, dtype=dtype)
        except _Unsupported:
            raise
        except ModelLoadError:
            raise _offline_error(spec) from None
    try:
        HfApi().model_info(spec, timeout=HUB_TIMEOUT_S * 2)
    except GatedRepoError:
        raise ModelLoadError(f"Model {spec!r} is gated on the Hugging Face hub and needs a login.") from None
    except RepositoryNotFoundError:
        raise ModelLoadError(
            f"Model {spec!r} was not found on the Hugging Face hub. Check the id, or use one of: "
            f"{', '.join(available_models())}."
        ) from None
    except Exception:  # noqa: BLE001 - timeouts and the like
        raise _offline_error(spec) from None
    _check_size(spec, model_size_on_hub(spec), max_bytes, dtype)
    return _load_pretrained(spec, spec, local_only=False, dtype=dtype)


class _Unsupported(ModelLoadError):
    """The checkpoint was read but is not a model prunelab can work on."""


def _load_pretrained(source: str, spec: str, *, local_only: bool, dtype: torch.dtype = torch.float32) -> SpeechModel:
    """Load a Whisper or ``*ForCTC`` model (and its processor) from a folder or hub id."""
    from transformers import (
        AutoConfig,
        AutoModelForCTC,
        AutoProcessor,
        WhisperForConditionalGeneration,
    )
    from transformers.models.auto.modeling_auto import MODEL_FOR_CTC_MAPPING_NAMES

    kw: dict[str, Any] = {"local_files_only": local_only}
    try:
        config = AutoConfig.from_pretrained(source, **kw)
    except Exception as exc:  # missing, corrupt, or not downloadable
        raise ModelLoadError(f"Cannot read the model config of {spec!r}: {_short(exc)}") from exc
    model_type = getattr(config, "model_type", None)
    archs = list(getattr(config, "architectures", None) or [])
    if model_type == "whisper":
        family, cls = "whisper", WhisperForConditionalGeneration
    elif model_type in MODEL_FOR_CTC_MAPPING_NAMES:
        if archs and not any(a.endswith("ForCTC") for a in archs):
            raise _Unsupported(
                f"Model {spec!r} ({', '.join(archs)}) has no CTC head (a pretrained-only checkpoint): "
                "use a checkpoint fine-tuned for speech recognition, e.g. facebook/hubert-large-ls960-ft."
            )
        family, cls = "ctc", AutoModelForCTC
    else:
        raise _Unsupported(
            f"Model {spec!r} (type {model_type!r}) is not supported: prunelab handles Whisper and CTC speech "
            "recognisers (HuBERT, wav2vec2, WavLM, data2vec-audio, ...)."
        )
    try:
        model = cls.from_pretrained(source, config=config, dtype=dtype, **kw)
        processor = AutoProcessor.from_pretrained(source, **kw)
    except Exception as exc:  # shown to the user as a ModelLoadError
        raise ModelLoadError(f"Cannot load {spec!r}: {_short(exc)}") from exc
    return SpeechModel(model=model, processor=processor, family=family, spec=spec)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
