"""WER of a model and its compressed variants on an evaluation set: the table ``prunelab eval`` prints.

The sweep is a grid of :class:`Cell` s (method x sparsity x preset, plus the uncompressed baseline,
:func:`grid`); :func:`run_cell` scores one cell, :func:`evaluate` runs the grid one cell after another in
this process (skipping cells already done, handing each row over as it finishes), and
:func:`prunelab.sweep.evaluate_on_ray` runs the same cells on Ray workers.

Each row gives two sizes: ``model_sparsity`` (the fraction of the compressible layers' parameters the plan's
K remove, weighted by layer size: what the app's plan line shows) and ``params_removed`` (the fraction of ALL the model's parameters
really gone after folding; unstructured zeros count as nothing removed)."""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Callable, Iterable, Sequence

import numpy as np

from ..compression import CompressionConfig, LayerCache, compress, method_choices, resolve_method
from ..compression.compress import check_fits
from ..compression.config import resolve_recommended, resolve_units
from ..compression.vocabulary import check_script
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
    model: str | None = None  # the model spec the row was measured on (checked when a sweep resumes)
    seed: int = 0
    vocabulary: str | None = None  # decoder tokens kept ("latin", "ascii"); None: all
    data: str | None = None  # fingerprint of the clips (prunelab.speech.results.data_fingerprint), set by --json
    recovery: str | None = None  # what recovery step ran after compressing (e.g. "repair 64 clips"); None: none

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "EvalRow":
        """A row read back from a JSON file (fields it does not know are ignored, missing ones defaulted)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def key(self) -> tuple:
        return row_key(self.method, self.sparsity, self.preset, self.allocate, self.units, self.vocabulary,
                       self.recovery)


def row_key(method: str, sparsity: float, preset: str, allocate: str, units: str,
            vocabulary: str | None = None, recovery: str | None = None) -> tuple:
    """What identifies a row of a sweep (the baseline row is one whatever the preset)."""
    if method == "none":
        return ("none",)
    return ((method, round(float(sparsity), 9), preset, allocate, units) + ((vocabulary,) if vocabulary else ())
            + ((recovery,) if recovery else ()))


@dataclass(frozen=True)
class Cell:
    """One point of the sweep: ``method`` as asked for (``recommended`` allowed, ``none`` = the original model),
    with the method, allocation and units it resolves to."""

    method: str
    sparsity: float
    preset: str
    resolved: str
    allocate: str
    units: str
    vocabulary: str | None = None
    recovery: str | None = None

    @property
    def key(self) -> tuple:
        return row_key(self.method, self.sparsity, self.preset, self.allocate, self.units, self.vocabulary,
                       self.recovery)

    @property
    def label(self) -> str:
        if self.method == "none":
            return "none"
        extra = [p for p in (self.preset, self.allocate if self.allocate != "uniform" else "",
                             f"{self.vocabulary} vocabulary" if self.vocabulary else "") if p]
        return f"{self.method} @ {self.sparsity:.0%} ({', '.join(extra)})"


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


def grid(
    methods: Sequence[str],
    sparsities: Sequence[float],
    presets: Sequence[str],
    *,
    allocate: str | None = None,
    units: str | None = None,
    vocabulary: str | None = None,
    recovery: str | None = None,
    recommended: dict | None = None,
) -> list[Cell]:
    """The baseline cell, then every preset x method x sparsity (in that nesting order, duplicates dropped).

    ``allocate`` / ``units``: ``None`` = uniform / channels, except for ``recommended`` (its own settings).
    ``vocabulary``: decoder tokens every compressed cell keeps (:mod:`prunelab.compression.vocabulary`).
    ``recovery``: the label of the recovery step every compressed cell gets (rows with and without it differ).
    ``recommended``: what ``recommended`` stands for (``method``, ``allocate``, ``units``, optionally ``scale``: its
    sparsities are the asked ones times ``scale``) where not the data-free
    :data:`~prunelab.compression.config.RECOMMENDED` (``prunelab eval --calibration`` passes the repaired one);
    where it has ``select``, its cells' recovery label says ``select`` (its repair re-chooses the FFN neurons).
    """
    check_script(vocabulary)
    methods = validate_methods(methods)
    presets = list(dict.fromkeys(presets))
    if not presets:
        raise PrunelabError("No presets given.")
    cells = [Cell("none", 0.0, presets[0] if len(presets) == 1 else "all", "none", "uniform", "channels")]
    for preset in presets:
        for method in methods:
            resolved, alloc = resolve_method(method, allocate)
            unit = resolve_units(method, units)
            for s in sparsities:
                label = recovery
                if method == "recommended" and recommended:
                    resolved, alloc, unit, s = resolve_recommended(recommended, s, allocate, units)
                    if recovery and recommended.get("select") and not recovery.endswith(" select"):
                        label = recovery + " select"  # its repair re-chooses neurons: not a plain repair's row
                cells.append(Cell(method, round(float(s), 6), preset, resolved, alloc, unit, vocabulary, label))
    unique = {c.key: c for c in reversed(cells)}  # keep the first of equal cells
    return [c for c in cells if unique[c.key] is c]


def cell_config(cell: Cell, seed: int = 0, config_overrides: dict | None = None) -> CompressionConfig | None:
    """The config that compresses ``cell`` (None for the uncompressed ``none`` row)."""
    if cell.method == "none":
        return None
    return CompressionConfig(method=cell.resolved, sparsity=cell.sparsity, preset=cell.preset, seed=seed,
                             allocate=cell.allocate, units=cell.units, vocabulary=cell.vocabulary,
                             **(config_overrides or {}))


def check_cells(model: SpeechModel, cells: Iterable[Cell], seed: int = 0, config_overrides: dict | None = None) -> None:
    """Raise a :class:`~prunelab.errors.PrunelabError` for the first cell that cannot compress ``model``
    (bad sparsity, a method without the units it needs, a vocabulary on a CTC model, a preset selecting no
    layer): checked before anything is transcribed, so a long baseline pass is never wasted."""
    for cell in cells:
        config = cell_config(cell, seed, config_overrides)
        if config is not None:
            check_fits(model, config)


def run_cell(
    model: SpeechModel,
    cell: Cell,
    audios: Sequence[np.ndarray],
    refs: Sequence[str],
    *,
    seed: int = 0,
    cache: LayerCache | None = None,
    log: Log | None = None,
    config_overrides: dict | None = None,
    model_name: str | None = None,
    recover: Callable[[SpeechModel, Cell], SpeechModel] | None = None,
) -> EvalRow:
    """Compress ``model`` as ``cell`` says (nothing for ``none``), transcribe ``audios`` ([T] float arrays at
    16 kHz) and score against ``refs``. ``model_name``: what the row records as its model (default: its spec).
    ``recover``: ``recover(compressed, cell)``, applied to each compressed model before it transcribes (e.g.
    calibrated repair)."""
    log = log or (lambda _msg: None)
    label = cell.label
    small, config = model, cell_config(cell, seed, config_overrides)
    if config is not None:
        small = compress(model, config, cache=cache,
                         progress=lambda i, n, msg: log(f"[{label}] compressing {i}/{n} {msg}"))
        if recover is not None and cell.recovery:
            log(f"[{label}] {cell.recovery} ...")
            small = recover(small, cell)
    start = time.perf_counter()
    hyps = transcribe_batch(small, audios, sampling_rate=SAMPLE_RATE,
                            progress=lambda i, n, _msg: log(f"[{label}] transcribed {i}/{n}"))
    score, secs = wer(refs, hyps), time.perf_counter() - start
    name = model_name or model.spec
    if config is None:
        return EvalRow("none", 0.0, score, cell.preset, 0.0, len(audios), secs, model=name, seed=seed)
    return EvalRow(cell.method, cell.sparsity, score, cell.preset, small.compression["sparsity"], len(audios), secs,
                   cell.allocate, cell.resolved if cell.resolved != cell.method else None,
                   small.compression["params_removed"], config.units, model=name, seed=seed,
                   vocabulary=cell.vocabulary, recovery=cell.recovery)


def evaluate(
    model: SpeechModel,
    utterances: Sequence[Utterance],
    *,
    methods: Sequence[str] = ("kmeans", "magnitude", "magnitude-unstructured"),
    sparsities: Sequence[float] = (0.1, 0.3),
    preset: str | Sequence[str] = "uniform",
    seed: int = 0,
    log: Log | None = None,
    config_overrides: dict | None = None,
    allocate: str | None = None,
    units: str | None = None,
    vocabulary: str | None = None,
    done: Iterable[EvalRow] = (),
    on_row: Callable[[EvalRow], None] | None = None,
    model_name: str | None = None,
    recover: Callable[[SpeechModel, Cell], SpeechModel] | None = None,
    recovery: str | None = None,
    recommended: dict | None = None,
) -> list[EvalRow]:
    """Transcribe ``utterances`` with the original model (method ``none``) and each preset x method x sparsity.

    ``preset``: one preset name or several. ``allocate``: ``"uniform"`` or ``"auto"`` (sensitivity-based K
    per layer); ``None`` = uniform, except that ``recommended`` then uses its own recommended allocation.
    ``units`` likewise: ``None`` = channels, except for ``recommended``. ``vocabulary``: decoder tokens each
    compressed row keeps (``None``: all). ``done``: rows already measured
    (a resumed sweep): their cells are not run again. ``on_row`` is called with each new row as it finishes.
    ``model_name``: what the rows record as their model (default: ``model.spec``).
    ``recover`` (with its label ``recovery``): a step applied to every compressed model before it transcribes, e.g.
    ``lambda small, cell: repair(small, model, clips)``; ``recommended``: see :func:`grid`.
    Returns the grid's rows in grid order, the ``done`` ones included.
    """
    if (recover is None) != (recovery is None):
        raise ValueError("give recover and its label recovery together")
    presets = [preset] if isinstance(preset, str) else list(preset)
    cells = grid(methods, sparsities, presets, allocate=allocate, units=units, vocabulary=vocabulary,
                 recovery=recovery, recommended=recommended)
    log = log or (lambda _msg: None)
    have = {r.key: r for r in done}
    todo = [c for c in cells if c.key not in have]
    if len(todo) < len(cells):
        log(f"resuming: {len(cells) - len(todo)} of {len(cells)} rows already done")
    check_cells(model, todo, seed, config_overrides)
    audios = [load_audio(u.audio) for u in utterances] if todo else []
    refs = [u.text for u in utterances]
    cache = LayerCache()
    for i, cell in enumerate(todo, 1):
        row = run_cell(model, cell, audios, refs, seed=seed, cache=cache, log=log, config_overrides=config_overrides,
                       model_name=model_name, recover=recover)
        have[cell.key] = row
        log(f"[{i}/{len(todo)}] {cell.label}: WER {row.wer:.2%}")
        if on_row:
            on_row(row)
    return [have[c.key] for c in cells]


def format_table(rows: Sequence[EvalRow]) -> str:
    """Plain-text WER table, one row per method x sparsity."""
    names = [f"{r.method}={r.resolved_method}" if r.resolved_method else r.method for r in rows]
    names = [f"{n} +{r.vocabulary} vocab" if r.vocabulary else n for n, r in zip(names, rows)]
    names = [f"{n} +{r.recovery}" if r.recovery else n for n, r in zip(names, rows)]
    w = max([24] + [len(n) + 2 for n in names])  # a long name never runs into the next column
    lines = [f"{'method':<{w}s}{'alloc':<9s}{'preset':<17s}{'units':<9s}{'sparsity':>9s}{'achieved':>10s}"
             f"{'removed':>9s}{'WER':>9s}{'utts':>6s}"]
    for name, r in zip(names, rows):
        lines.append(f"{name:<{w}s}{r.allocate:<9s}{r.preset:<17s}{r.units:<9s}{r.sparsity:>9.0%}{r.model_sparsity:>10.1%}"
                     f"{r.params_removed:>9.2%}{r.wer:>9.2%}{r.utterances:>6d}")
    return "\n".join(lines)
