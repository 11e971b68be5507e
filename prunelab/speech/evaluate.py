"""WER of a model and its compressed variants on an evaluation set: the table ``prunelab eval`` prints.

Each row gives two sizes: ``model_sparsity`` (the fraction of the compressible layers' output channels the
plan removes, what a slider shows) and ``params_removed`` (the fraction of ALL the model's parameters
really gone after folding; unstructured zeros count as nothing removed)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from ..compression import CompressionConfig, LayerCache, compress, method_choices, resolve_method
from ..compression.config import resolve_units
from ..errors import PrunelabError
from ..speech_model import SpeechModel
from .audio import SAMPLE_RATE, load_audio
from .data import Utterance
from .metrics import wer
from .transcribe import transcribe_batch

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
    allocate: str = "uniform"
    resolved_method: str | None = None  # what ``recommended`` stood for
    params_removed: float = 0.0  # fraction of ALL the model's parameters really gone
    units: str = "channels"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def validate_methods(methods: Sequence[str]) -> list[str]:
    """Check method names (``recommended`` allowed) before any expensive work; raise a clear error."""
    known = method_choices()
    methods = list(methods)
    if not methods:
        raise PrunelabError(f"No methods given; choose from: {', '.join(known)}.")
    bad = [m for m in methods if m not in known]
    if bad:
        import difflib

        hints = [f"{b!r}" + (f" (did you mean {c[0]!r}?)" if (c := difflib.get_close_matches(b, known, n=1)) else "")
                 for b in bad]
        raise PrunelabError(f"Unknown method{'s' if len(bad) > 1 else ''} {', '.join(hints)}; "
                            f"choose from: {', '.join(known)}.")
    return methods


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
    allocate: str | None = None,
    units: str | None = None,
) -> list[EvalRow]:
    """Transcribe ``utterances`` with the original model (method ``none``) and each method x sparsity.

    ``allocate``: ``"uniform"`` or ``"auto"`` (sensitivity-based K per layer); ``None`` = uniform, except
    that ``recommended`` then uses its own recommended allocation. ``units`` likewise: ``None`` = channels,
    except for ``recommended``.
    """
    methods = validate_methods(methods)
    log = log or (lambda _msg: None)
    audios = [load_audio(u.audio) for u in utterances]
    refs = [u.text for u in utterances]
    cache = LayerCache()

    def run(m: SpeechModel, label: str) -> tuple[float, float]:
        start = time.perf_counter()
        hyps = transcribe_batch(m, audios, sampling_rate=SAMPLE_RATE,
                                progress=lambda i, n, _msg: log(f"[{label}] transcribed {i}/{n}"))
        return wer(refs, hyps), time.perf_counter() - start

    score, secs = run(model, "none")
    rows = [EvalRow("none", 0.0, score, preset, 0.0, len(audios), secs)]
    log(f"none: WER {score:.2%}")
    for method in methods:
        resolved, alloc = resolve_method(method, allocate)
        for s in sparsities:
            label = f"{method} @ {s:.0%}" + (f" ({alloc})" if alloc != "uniform" else "")
            config = CompressionConfig(method=resolved, sparsity=s, preset=preset, seed=seed, allocate=alloc,
                                       units=resolve_units(method, units), **(config_overrides or {}))
            small = compress(model, config, cache=cache, progress=lambda i, n, msg: log(f"[{label}] compressing {i}/{n} {msg}"))
            score, secs = run(small, label)
            rows.append(EvalRow(method, s, score, preset, small.compression["sparsity"], len(audios), secs, alloc,
                                resolved if resolved != method else None, small.compression["params_removed"],
                                config.units))
            log(f"{label}: WER {score:.2%}")
            del small
    return rows


def format_table(rows: Sequence[EvalRow]) -> str:
    """Plain-text WER table, one row per method x sparsity."""
    names = [f"{r.method}={r.resolved_method}" if r.resolved_method else r.method for r in rows]
    w = max([24] + [len(n) + 2 for n in names])  # a long name never runs into the next column
    lines = [f"{'method':<{w}s}{'alloc':<9s}{'preset':<17s}{'units':<9s}{'sparsity':>9s}{'achieved':>10s}"
             f"{'removed':>9s}{'WER':>9s}{'utts':>6s}"]
    for name, r in zip(names, rows):
        lines.append(f"{name:<{w}s}{r.allocate:<9s}{r.preset:<17s}{r.units:<9s}{r.sparsity:>9.0%}{r.model_sparsity:>10.1%}"
                     f"{r.params_removed:>9.2%}{r.wer:>9.2%}{r.utterances:>6d}")
    return "\n".join(lines)
