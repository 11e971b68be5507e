"""The Recover tab: win back with audio what compression cost, after Compress (an explicit second step).

* **Repair** (:func:`prunelab.recovery.repair.repair`): re-solves, by ridge least squares, what each compressed
  unit feeds so the model reproduces the original on unlabeled calibration audio: the bundled calibration set
  (default; none of its clips is an evaluation clip) or the user's own uploads. Seconds, no gradient step. It
  always starts from the compressed model (a second Repair replaces the first).
* **Fine-tune** (:func:`prunelab.recovery.finetune.finetune`): a short distillation from the original model (its
  transcripts and token distributions) on the same calibration audio, starting from the model in use (repaired,
  if Repair ran). The loss is drawn live; Cancel stops it at the next step and keeps the model in use.

The recovered model is stored through :func:`ui.session.keep_recovered`: Listen & compare, Evaluate this plan
and the model download use it from then on, and the tab says which step it is at. Every Compress and every model
load clears it (:func:`ui.session.keep_compressed`), and this tab's result lines and chart go with it
(:func:`on_panel`, chained on the Compress status). Uploads that are one of the evaluation clips are refused.
"""
from __future__ import annotations

import hashlib
import queue
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import evaluation
from ..events import HEAVY, INSTANT, PRIVATE, guard, reason_of, user_error
from ..figures import Plot
from ..lib import (CalibrationSet, FinetuneConfig, PrunelabError, RepairConfig, finetune,
                   load_audio, load_calibration, plots, repair)
from ..session import STEPS, Session, keep_recovered, require_compressed, require_model
from ..settings import method_label

if TYPE_CHECKING:
    from .compress import CompressTab
    from .how import HowTab

CLIP_CHOICES = ["8", "16", "32", "64", "all"]
DEFAULT_REPAIR_CLIPS = "32"
DEFAULT_FINETUNE_CLIPS = "16"
FINETUNE_BATCH = 1
"""Windows per optimizer step in the app's fine-tune: one, so even a few clips draw a loss curve of several steps."""


@dataclass
class RecoverTab:
    tab: gr.Tab
    step_md: gr.Markdown
    source: gr.Radio
    files: gr.File
    clips: gr.Dropdown
    select: gr.Checkbox
    repair_btn: gr.Button
    repair_md: gr.Markdown
    epochs: gr.Slider
    ft_clips: gr.Dropdown
    finetune_btn: gr.Button
    cancel_btn: gr.Button
    finetune_md: gr.Markdown
    loss_plot: gr.Plot


# --- calibration audio -----------------------------------------------------------------------------------


_BUNDLED: dict[str, tuple[int, float]] = {}


def bundled_summary() -> tuple[int, float]:
    """How many clips and seconds the bundled calibration set holds (read once)."""
    if "set" not in _BUNDLED:
        try:
            cal = load_calibration(None)
            _BUNDLED["set"] = (len(cal), cal.seconds)
        except PrunelabError:
            _BUNDLED["set"] = (0, 0.0)
    return _BUNDLED["set"]


def source_choices() -> list[tuple[str, str]]:
    n, seconds = bundled_summary()
    bundled = (f"Bundled calibration set: {n} unlabeled clips, {seconds / 60:.1f} min (real and synthetic voices, "
               "none of them an evaluation clip)" if n else "Bundled calibration set (missing in this installation)")
    return [(bundled, "bundled"), ("My own audio (upload below; unlabeled speech is enough)", "uploads")]


_EVAL_HASHES: dict[str, str] = {}
_EVAL_LOCK = threading.Lock()


def _samples_hash(samples) -> str:
    return hashlib.sha256(samples.astype("float32").tobytes()).hexdigest()


def eval_hashes() -> dict[str, str]:
    """The evaluation clips' decoded samples, hashed (hash -> clip name): what an upload is compared with."""
    with _EVAL_LOCK:
        if not _EVAL_HASHES:
            for path in evaluation.eval_clips()[0]:
                _EVAL_HASHES[_samples_hash(load_audio(path))] = path.rsplit("/", 1)[-1]
        return dict(_EVAL_HASHES)


def clip_limit(clips: str | int | None) -> int | None:
    """The clip-count choice as a number (None: all)."""
    text = str(clips or "all").strip().lower()
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise gr.Error(f"Choose how many calibration clips to use ({', '.join(CLIP_CHOICES)}), not {clips!r}.")
    return int(text)


def _paths(files) -> list[str]:
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    return [f if isinstance(f, str) else getattr(f, "name", None) or str(f) for f in files]


def checked_calibration(source: str, files, clips) -> tuple[CalibrationSet, list[str] | None]:
    """The calibration clips chosen on screen, checked before any work (and the uploads' paths, None for the
    bundled set). Raises ``gr.Error`` (no uploads, an upload that is an evaluation clip) or the library's
    ``CalibrationError`` (nothing usable: not audio, silent, empty)."""
    limit = clip_limit(clips)
    if source == "uploads":
        paths = _paths(files)
        if not paths:
            raise gr.Error("No calibration audio uploaded: add some clips, or choose the bundled calibration set.",
                           title="No calibration audio")
        cal = load_calibration(paths, limit=limit)
        known = eval_hashes()
        clash = [(name, known[h]) for name, clip in zip(cal.names, cal.clips) if (h := _samples_hash(clip)) in known]
        if clash:
            raise gr.Error(f"{clash[0][0]} is the evaluation clip {clash[0][1]}: the evaluation clips score every plan "
                           "and are never used to recover one. Remove it (and any other evaluation clip) from the "
                           "uploads.", title="Evaluation clip refused")
        return cal, paths
    return load_calibration(None, limit=limit), None


def skipped_text(cal: CalibrationSet) -> str:
    if not cal.skipped:
        return ""
    shown = "; ".join(f"{name}: {reason}" for name, reason in cal.skipped[:4])
    more = f" (and {len(cal.skipped) - 4} more)" if len(cal.skipped) > 4 else ""
    return f" Skipped {len(cal.skipped)} clip{'s' if len(cal.skipped) != 1 else ''}: {shown}{more}."


def _source_words(files: list[str] | None) -> str:
    return "the bundled calibration set" if files is None else "your uploads"


# --- the step in use -------------------------------------------------------------------------------------


def step_line(sess: Session | None) -> str:
    """Which step the model in use (Listen & compare, Evaluate, the download) is at, as the chain of steps."""
    if sess is None or not sess.spec:
        return "**Model in use:** none yet: load a model on the Compress tab."
    if not sess.compressed:
        return "**Model in use:** the original (not compressed yet): press **Compress** on the Compress tab first."
    step = sess.recovery_step if sess.recovered else "compressed"
    chain = " → ".join(f"**{s}**" if s == step else s for s in STEPS)
    what = f" ({method_label(sess.method)})" if sess.method else ""
    return f"**Model in use: {step}**{what} · {chain} · Listen & compare, Evaluate and the download use it."


def repair_line(record: dict, cal: CalibrationSet, files: list[str] | None) -> str:
    layers = record.get("layers", [])
    kinds: dict[str, int] = {}
    for name in layers:
        kinds[name.rsplit(".", 1)[-1]] = kinds.get(name.rsplit(".", 1)[-1], 0) + 1
    return (f"✅ **Repaired** on {record['clips']} clips ({record['seconds']:.1f} s of audio, {_source_words(files)}): "
            f"{len(layers)} layers re-solved ({', '.join(f'{k} ×{v}' for k, v in kinds.items()) or 'none'}), "
            f"ridge α {record['alpha']:g}, in {record['time_s']:.1f} s."
            + (" The FFN neurons kept were re-chosen from this audio (as many per layer as compressed)."
               if record.get("select") else "") + skipped_text(cal)
            + " Now **Listen & compare** or **Evaluate this plan** on Tuning history.")


# --- handlers --------------------------------------------------------------------------------------------


@guard
def on_repair(source: str, files, clips, select: bool, sess: Session, progress=gr.Progress()):
    """Repair the session's compressed model on the chosen calibration audio (``select``: re-choosing the FFN
    neurons kept, :attr:`RepairConfig.select`); it becomes the model in use."""
    original, _ = require_model(sess)
    compressed = require_compressed(sess, recovered=False)
    cal, paths = checked_calibration(source, files, clips)
    progress(0, desc=f"Repairing on {len(cal)} clips …")
    repaired = repair(compressed, original, cal, RepairConfig(select=bool(select)),
                      progress=lambda d, n, m: progress((d, n), desc=f"Repair: {m}", unit="passes"))
    sess = keep_recovered(sess, repaired, {"step": "repair", "files": paths, "limit": clip_limit(clips),
                                           "select": bool(select)}, restart=True)
    return (sess, repair_line(repaired.compression["recovery"][-1], cal, paths), step_line(sess),
            gr.Plot(value=None, visible=False), "")


def _check_repair(source: str, files, clips, select: bool, sess: Session) -> None:
    require_model(sess)
    if not sess.compressed:
        require_compressed(sess, recovered=False)
    checked_calibration(source, files, clips)


def on_repair_failed(source: str, files, clips, select: bool, sess: Session):
    """After a failed Repair: the reason in the result line (it stays when the message box fades)."""
    reason = reason_of(lambda: _check_repair(source, files, clips, select, sess)) or (
        "Repair stopped with an error on the server; press Repair to try again.")
    return f"**Not repaired:** {reason} The model in use is unchanged.", step_line(sess)


class Cancelled(Exception):
    """The user pressed Cancel during a fine-tune."""


_CANCELS: dict[str, threading.Event] = {}
_CANCELS_LOCK = threading.Lock()


def _owner(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "-"


def on_cancel(request: gr.Request = None):
    """Cancel the session's running fine-tune: it stops at its next step and the model in use stays."""
    with _CANCELS_LOCK:
        event = _CANCELS.get(_owner(request))
    if event is None:
        return gr.skip()
    event.set()
    return "Cancelling at the next step …"


LOSS = re.compile(r"loss ([0-9.eE+-]+)")
LEFT = re.compile(r"(\S+) left")


def on_finetune(source: str, files, clips, epochs: float, sess: Session, request: gr.Request = None):
    """Fine-tune the model in use (repaired, if Repair ran) by distillation from the original on the chosen clips.

    A generator: it yields the status (step, loss, time left) and the loss chart as training goes, and at the end
    the session with the fine-tuned model in use. Cancel stops it at the next step (the model in use stays)."""
    try:
        original, _ = require_model(sess)
        model = require_compressed(sess)
        cal, paths = checked_calibration(source, files, clips)
        epochs = float(epochs or 1)
        if not 0 < epochs <= 10:
            raise gr.Error("Choose between 1 and 10 epochs.")
    except PrunelabError as exc:
        raise user_error(exc) from exc
    start_step = sess.recovery_step if sess.recovered else "compressed"
    cancel = threading.Event()
    owner = _owner(request)
    with _CANCELS_LOCK:
        _CANCELS[owner] = cancel
    updates: queue.Queue = queue.Queue()
    result: dict[str, Any] = {}

    def report(done: int, total: int, message: str) -> None:
        if cancel.is_set():
            raise Cancelled
        updates.put((done, total, message))

    def run() -> None:
        try:
            result["model"] = finetune(model, cal.clips, FinetuneConfig(epochs=epochs, batch_size=FINETUNE_BATCH),
                                       teacher=original, progress=report)
        except BaseException as exc:  # noqa: BLE001 - handed to the generator, which says what happened
            result["error"] = exc

    t0 = time.perf_counter()
    worker = threading.Thread(target=run, name="prunelab-finetune", daemon=True)
    worker.start()
    losses: list[tuple[int, float]] = []
    total, status = None, f"Fine-tuning the {start_step} model on {len(cal)} clips: the original model labels them …"
    yield gr.skip(), status, gr.Plot(value=plots.loss_chart(losses), visible=True), gr.skip()
    try:
        while worker.is_alive() or not updates.empty():
            worker.join(0.5)
            changed = False
            while not updates.empty():
                done, n, message = updates.get()
                changed = True
                loss = LOSS.search(message)
                if loss and n:
                    losses.append((int(done), float(loss.group(1))))
                    total = int(n)
                    left = LEFT.search(message)
                    status = (f"Fine-tuning: step {done} of {n}, loss {float(loss.group(1)):.4f}"
                              + (f", about {left.group(1)} left" if left else "") + " · Cancel stops at the next step.")
                elif message.startswith("note:"):
                    status = f"Fine-tuning: {message[5:].strip()}"
                else:
                    status = f"Fine-tuning: the original model labels the clips ({message}) …"
            if changed:
                yield gr.skip(), status, plots.loss_chart(losses, total), gr.skip()
    finally:
        with _CANCELS_LOCK:
            if _CANCELS.get(owner) is cancel:
                _CANCELS.pop(owner)
    error = result.get("error")
    chart = plots.loss_chart(losses, total)
    if isinstance(error, Cancelled) or (error is None and cancel.is_set() and "model" not in result):
        yield (gr.skip(), f"**Fine-tune cancelled** after {len(losses)} step{'s' if len(losses) != 1 else ''} "
                          f"({time.perf_counter() - t0:.0f} s); the model in use is still the {start_step} one.",
               chart, step_line(sess))
        return
    if error is not None:
        if isinstance(error, PrunelabError):
            raise user_error(error) from error
        if isinstance(error, MemoryError):
            raise gr.Error("The server ran out of memory during fine-tuning: use fewer clips.") from error
        raise error
    tuned = result["model"]
    sess = keep_recovered(sess, tuned, {"step": "finetune", "files": paths, "limit": clip_limit(clips),
                                        "epochs": epochs}, restart=False)
    record = tuned.compression["recovery"][-1]
    line = (f"✅ **Fine-tuned** the {start_step} model: {record['epochs']:g} epoch{'s' if record['epochs'] != 1 else ''}"
            f", {record['steps']} steps on {record['clips']} clips ({record['seconds']:.1f} s of audio, "
            f"{_source_words(paths)}), labels and soft targets from the original model, in {record['time_s']:.0f} s"
            + (f"; final loss {record['final_loss']:.4f}" if record.get("final_loss") is not None else "") + "."
            + skipped_text(cal) + " Now **Listen & compare** or **Evaluate this plan**.")
    yield sess, line, chart, step_line(sess)


def on_panel(sess: Session):
    """After Compress (or a model load) changed the status: the step line, and with no recovered model left the
    result lines and the loss chart go (they described a model that is no longer in use)."""
    if sess is not None and sess.recovered:
        return step_line(sess), gr.skip(), gr.skip(), gr.skip()
    return step_line(sess), "", "", gr.Plot(value=None, visible=False)


# --- layout and events -----------------------------------------------------------------------------------


def build() -> RecoverTab:
    with gr.Tab("Recover", id="recover") as tab:
        gr.Markdown("**After Compress: win back what compression cost, with audio.** Compression itself is data-free "
                    "(the paper's method); this optional second step uses unlabeled speech. **Repair** re-solves the "
                    "layers each compressed unit feeds (ridge least squares, no training: seconds) so the model "
                    "reproduces the original; **Fine-tune** then distils the original into it for a few epochs. "
                    "The 12 evaluation clips of Tuning history are never used here.")
        step_md = gr.Markdown(step_line(None), elem_id="pl-step")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                source = gr.Radio(source_choices(), value="bundled", label="Calibration audio", elem_id="pl-cal-source")
                files = gr.File(file_count="multiple", type="filepath", label="Your calibration audio (unlabeled clips)",
                                file_types=["audio"], height=120, elem_id="pl-cal-files", visible=False)
            with gr.Column(scale=2, min_width=260):
                clips = gr.Dropdown(CLIP_CHOICES, value=DEFAULT_REPAIR_CLIPS, label="Calibration clips for Repair",
                                    info="The first N clips (the bundled set mixes real and synthetic voices in "
                                         "every first 8, 16, 32, 64).")
                select = gr.Checkbox(False, label="Also choose which FFN neurons to keep, from this audio",
                                     info="Keeps as many neurons per layer as Compress did, but picks them by how "
                                          "much the original's output needs each (greedy Optimal Brain Surgeon). "
                                          "Pruned or folded FFN neurons only; about a minute more.",
                                     elem_id="pl-select-units")
                repair_btn = gr.Button("Repair the compressed model", variant="primary", elem_id="pl-repair-btn")
        repair_md = gr.Markdown("", elem_id="pl-repair-result")
        with gr.Accordion("Fine-tune (distillation from the original model; minutes on a CPU)", open=True):
            with gr.Row(equal_height=False):
                epochs = gr.Slider(1, 3, value=1, step=1, label="Epochs", scale=2)
                ft_clips = gr.Dropdown(CLIP_CHOICES, value=DEFAULT_FINETUNE_CLIPS, label="Clips", scale=1,
                                       info="From the calibration audio above.")
                with gr.Column(scale=1, min_width=160):
                    finetune_btn = gr.Button("Fine-tune", variant="primary", elem_id="pl-finetune-btn")
                    cancel_btn = gr.Button("Cancel", variant="stop", size="sm", elem_id="pl-cancel-btn")
            finetune_md = gr.Markdown("", elem_id="pl-finetune-result")
            loss_plot = Plot(label="Fine-tuning loss", format="png", show_label=False, visible=False,
                             elem_id="pl-loss-plot")
    return RecoverTab(tab, step_md, source, files, clips, select, repair_btn, repair_md, epochs, ft_clips, finetune_btn,
                      cancel_btn, finetune_md, loss_plot)


def wire(t: RecoverTab, sess: gr.State, compress: CompressTab, how: HowTab) -> None:
    """Events of this tab; the Compress tab's status changing (a Compress, a model load) refreshes the step line and
    clears what described a model no longer in use, here and on How it works."""
    inputs = [t.source, t.files, t.clips, t.select, sess]
    t.repair_btn.click(None, None, t.repair_md, js="() => 'Repairing …'", **PRIVATE)
    repaired = t.repair_btn.click(on_repair, inputs, [sess, t.repair_md, t.step_md, t.loss_plot, t.finetune_md],
                                  api_name="repair", **HEAVY)
    repaired.failure(on_repair_failed, inputs, [t.repair_md, t.step_md], **INSTANT)
    t.finetune_btn.click(on_finetune, [t.source, t.files, t.ft_clips, t.epochs, sess],
                         [sess, t.finetune_md, t.loss_plot, t.step_md], api_name="finetune", **HEAVY)
    t.cancel_btn.click(on_cancel, None, t.finetune_md, api_name="cancel_finetune", show_progress="hidden", queue=False)
    t.tab.select(step_line, sess, t.step_md, **INSTANT)
    t.source.change(lambda source: gr.File(visible=source == "uploads"), t.source, t.files, **INSTANT)
    compress.status_md.change(on_panel, sess, [t.step_md, t.repair_md, t.finetune_md, t.loss_plot], **INSTANT)
    compress.status_md.change(lambda s: (gr.skip(), gr.skip()) if s is not None and s.recovered else (
        gr.Markdown(value="", visible=False), gr.Plot(value=None, visible=False)), sess,
        [how.repair_md, how.repair_plot], **INSTANT)
