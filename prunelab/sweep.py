"""Run a ``prunelab eval`` sweep on Ray: the grid's cells spread over worker processes, each holding one
replica of the model (and one GPU where the cluster has GPUs).

Ray is an optional extra (``pip install -e ".[cluster]"``); nothing else in prunelab imports it. The
driver (this process) never loads the model: it reads the audio once, puts it in Ray's object store, and
hands cells to whichever worker is free, passing each finished row to ``on_row`` at once (the CLI writes
it to the JSON file), so a sweep stopped half way keeps every finished row and resumes from them.

Workers on an existing cluster (``address``) must be able to import prunelab and load the model spec
(a Hugging Face id in their cache, or a folder on a shared path). On a local instance started here,
workers import the same prunelab as this process.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import PrunelabError
from .speech.data import Utterance
from .speech.evaluate import Cell, EvalRow

Log = Callable[[str], None]
INSTALL_HINT = 'pip install -e ".[cluster]" (or: pip install ray)'


def require_ray():
    """The ``ray`` module, or a clear error saying how to get it."""
    try:
        import ray
    except ImportError:
        raise PrunelabError(f"Sweeps on Ray (--workers, --ray-address) need Ray, which is not installed: {INSTALL_HINT}. "
                            "Without those options the sweep runs here, one cell after another.") from None
    return ray


class SweepWorker:
    """One model replica (a Ray actor): loads the model once, then scores the cells it is handed."""

    def __init__(self, spec: str, audios: list, refs: list[str], seed: int, config_overrides: dict | None,
                 load_kwargs: dict | None, model_name: str | None = None):
        import torch

        from .compression import LayerCache
        from .models.load import load_model

        # Ray makes only this worker's GPU visible (CUDA_VISIBLE_DEVICES) when it was given one
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.name = model_name or spec
        self.model = load_model(spec, device=device, **(load_kwargs or {}))
        self.audios, self.refs, self.seed = audios, refs, seed
        self.config_overrides = config_overrides
        self.cache = LayerCache()

    def run(self, cell: Cell) -> dict:
        from .speech.evaluate import run_cell

        return run_cell(self.model, cell, self.audios, self.refs, seed=self.seed, cache=self.cache,
                        config_overrides=self.config_overrides, model_name=self.name).as_dict()


def evaluate_on_ray(
    spec: str,
    utterances: Sequence[Utterance],
    cells: Sequence[Cell],
    *,
    workers: int | None = None,
    address: str | None = None,
    seed: int = 0,
    log: Log | None = None,
    config_overrides: dict | None = None,
    load_kwargs: dict | None = None,
    on_row: Callable[[EvalRow], None] | None = None,
    model_name: str | None = None,
) -> list[EvalRow]:
    """Score ``cells`` on Ray workers; returns their rows in ``cells`` order.

    Args:
        spec: the model spec each worker loads (``load_model(spec, **load_kwargs)``).
        workers: model replicas (default: one per GPU of the cluster, else 1); never more than the cells.
        address: an existing Ray cluster (``"auto"``, ``"ray://host:10001"``, ...); ``None`` starts a local
            instance with ``workers`` CPUs for the duration of the call (unless Ray is already initialised).
        on_row: called in this process with each row as soon as it is done (in completion order).
        model_name: what the rows record as their model (default ``spec``).

    Raises:
        PrunelabError: Ray missing, a worker that cannot load the model or fails on a cell (rows finished
            before that were already handed to ``on_row``).
    """
    log = log or (lambda _msg: None)
    cells = list(cells)
    if workers is not None and workers < 1:
        raise PrunelabError(f"--workers must be at least 1, got {workers}.")
    if not cells:
        return []
    ray = require_ray()
    from .speech.audio import load_audio

    audios = [load_audio(u.audio) for u in utterances]
    refs = [u.text for u in utterances]
    started = False
    if not ray.is_initialized():
        _init(ray, address, workers or 1)
        started = True
    actors: list = []
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        n = min(len(cells), workers or max(1, gpus))
        if gpus and n > gpus:  # an actor waiting for a GPU that another holds to the end would never start
            log(f"Ray: {n} workers asked for, the cluster has {gpus} GPUs: using {gpus}")
            n = gpus
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        log(f"Ray: {n} worker{'s' if n > 1 else ''} on {where}, {'one GPU each' if gpus else 'CPU only'}, "
            f"{len(cells)} cells")
        actor_cls = ray.remote(SweepWorker).options(num_cpus=1, num_gpus=1 if gpus else 0)
        audio_ref = ray.put(audios)
        actors = [actor_cls.remote(spec, audio_ref, refs, seed, config_overrides, load_kwargs, model_name) for _ in range(n)]
        queue = list(enumerate(cells))
        pending: dict[Any, tuple[Any, int]] = {}

        def submit(actor) -> None:
            if queue:
                i, cell = queue.pop(0)
                pending[actor.run.remote(cell)] = (actor, i)

        for a in actors:
            submit(a)
        rows: dict[int, EvalRow] = {}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            actor, i = pending.pop(ref)
            row = EvalRow.from_dict(_get(ray, ref, cells[i]))
            rows[i] = row
            log(f"[{len(rows)}/{len(cells)}] {cells[i].label}: WER {row.wer:.2%}")
            if on_row:
                on_row(row)
            submit(actor)
        return [rows[i] for i in range(len(cells))]
    finally:
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()


def _init(ray, address: str | None, cpus: int) -> None:
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    if address:
        kw["address"] = address
    else:  # workers import this very prunelab (not another copy installed elsewhere)
        root = str(Path(__file__).resolve().parents[1])
        kw.update(num_cpus=cpus, runtime_env={"env_vars": {"PYTHONPATH": root}})
    try:
        ray.init(**kw)
    except Exception as e:  # noqa: BLE001 - unreachable cluster, bad address, ...
        raise PrunelabError(f"Cannot start or reach Ray ({'address ' + address if address else 'local instance'}): "
                            f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None


def _get(ray, ref, cell: Cell) -> dict:
    """``ray.get`` with a worker's failure turned into the error prunelab would have raised here."""
    from ray.exceptions import RayActorError, RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, PrunelabError):
            raise cause from None
        raise PrunelabError(f"A Ray worker failed on {cell.label}: {cause!r}") from None
    except RayActorError as e:
        text = str(e).strip().splitlines()
        detail = next((l for l in reversed(text) if "Error" in l), text[0] if text else type(e).__name__)
        raise PrunelabError(f"A Ray worker died (could it load the model?) while on {cell.label}: {detail}") from None
