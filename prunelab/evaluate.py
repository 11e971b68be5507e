"""WER of a model and its compressed variants on an evaluation set: the table ``prunelab eval`` prints."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from .audio import load_audio
from .cache import LayerCache
from .compress import CompressionConfig, compress
from .data import Utterance
from .metrics import wer
from .models import SpeechModel
from .transcribe import transcribe

Log = Callable[[str], None]


@dataclass
class EvalRow:
    method: str
    sparsity: float
    wer: float
    preset: str
    model_sparsity: float  # achieved, over the compressible parameters
    utterances: int
    seconds: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def evaluate(
    model: SpeechModel,
    utterances: Sequence[Utterance],
    *,
    methods: Sequence[str] = ("kmeans", "magnitude", "magnitude-unstructured"),
    sparsities: Sequence[float] = (0.1, 0.3),
    preset: str = "uniform",
    seed: int = 0,
    log: Log | None = None,
    config_overrides: dict | None = None,
) -> list[EvalRow]:
    """Transcribe ``utterances`` with the original model (method ``none``) and each method x sparsity."""
    log = log or (lambda _msg: None)
    audios = [load_audio(u.audio) for u in utterances]
    refs = [u.text for u in utterances]
    cache = LayerCache()

    def run(m: SpeechModel, label: str) -> tuple[float, float]:
        start = time.perf_counter()
        hyps = []
        for i, a in enumerate(audios):
            log(f"[{label}] transcribing {i + 1}/{len(audios)}")
            hyps.append(transcribe(m, a))
        return wer(refs, hyps), time.perf_counter() - start

    score, secs = run(model, "none")
    rows = [EvalRow("none", 0.0, score, preset, 0.0, len(audios), secs)]
    log(f"none: WER {score:.2%}")
    for method in methods:
        for s in sparsities:
            label = f"{method} @ {s:.0%}"
            config = CompressionConfig(method=method, sparsity=s, preset=preset, seed=seed, **(config_overrides or {}))
            small = compress(model, config, cache=cache, progress=lambda i, n, msg: log(f"[{label}] compressing {i}/{n} {msg}"))
            score, secs = run(small, label)
            rows.append(EvalRow(method, s, score, preset, small.compression["sparsity"], len(audios), secs))
            log(f"{label}: WER {score:.2%}")
            del small
    return rows


def format_table(rows: Sequence[EvalRow]) -> str:
    """Plain-text WER table, one row per method x sparsity."""
    lines = [f"{'method':<24s}{'preset':<13s}{'sparsity':>9s}{'achieved':>10s}{'WER':>9s}{'utts':>6s}"]
    for r in rows:
        lines.append(f"{r.method:<24s}{r.preset:<13s}{r.sparsity:>9.0%}{r.model_sparsity:>10.1%}{r.wer:>9.2%}{r.utterances:>6d}")
    return "\n".join(lines)
