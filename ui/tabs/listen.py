"""The Listen & compare tab: one clip through the original and the compressed model, side by side.

Upload, record or pick an example clip (``assets/*.wav`` with its ``.txt`` reference); both models
transcribe it (the original alone before anything is compressed), each timed as the median of interleaved
runs; with a reference text, the word error rates and word-level diffs.

Results never describe another clip than the one shown: they are emptied in the browser when Transcribe is
pressed and whenever the audio changes (upload, recording, Clear, an example picked). A failed Transcribe
raises for API callers (``/transcribe``: the exception says why); in the page, a chained failure event then
puts the reason in the summary line, where it stays after the message box fades.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .. import sliders
from ..events import HEAVY, INSTANT, PRIVATE, guard, reason_of
from ..lib import SpeechModel, load_audio, transcribe, wer, word_diff_detailed
from ..session import Session, require_compressed, require_model, step_of
from ..settings import ASSETS, MAX_AUDIO_S

DIFF_COLORS = {"wrong": "#f4a261", "should be": "#d9d9d9", "missing": "#e76f51", "extra": "#8ecae6"}


@dataclass
class ListenTab:
    audio: gr.Audio
    example: gr.Dropdown
    reference: gr.Textbox
    transcribe_btn: gr.Button
    wer_md: gr.Markdown
    text_a: gr.Textbox
    time_a: gr.Textbox
    diff_a: gr.HighlightedText
    text_b: gr.Textbox
    time_b: gr.Textbox
    diff_b: gr.HighlightedText


def list_examples() -> dict[str, tuple[Path, str]]:
    """Example clips in assets/: name -> (wav path, reference text or '')."""
    out = {}
    for wav in sorted(ASSETS.glob("*.wav")):
        txt = wav.with_suffix(".txt")
        out[wav.stem] = (wav, txt.read_text(encoding="utf-8").strip() if txt.is_file() else "")
    return out


def on_example(name: str):
    examples = list_examples()
    if not name or name not in examples:
        raise gr.Error(f"Unknown example {name!r}; choose one of: {', '.join(examples) or 'none available'}.")
    wav, ref = examples[name]
    return str(wav), ref


def word_diff(reference: str, hypothesis: str) -> list[tuple[str, str | None]]:
    """The hypothesis against the reference as ``gr.HighlightedText`` tokens (classes of :data:`DIFF_COLORS`)."""
    out: list[tuple[str, str | None]] = []
    for op, ref, hyp in word_diff_detailed(reference, hypothesis):
        if op == "equal":
            out.append((ref + " ", None))
        elif op == "substitute":
            out.append((f"{hyp} ", "wrong"))
            out.append((f"(was: {ref}) ", "should be"))
        elif op == "delete":
            out.append((f"{ref} ", "missing"))
        elif op == "insert":
            out.append((f"{hyp} ", "extra"))
    return out


TIMING_RUNS = 3
"""Each model transcribes the clip this many times, the runs of the two models interleaved, and the median
time is shown: single runs on a shared 2-core machine vary by 2x either way."""
TIMING_BUDGET_S = 20.0
"""No more repeat runs once this much time was spent (a long clip on a big model is timed once)."""


def time_models(models: list[SpeechModel], samples, progress=None) -> tuple[list[str], list[float], int]:
    """Transcribe ``samples`` with each model, interleaved, up to :data:`TIMING_RUNS` times.

    Returns each model's transcript (from the first run), its median time in seconds, and the number of runs."""
    import statistics

    times: list[list[float]] = [[] for _ in models]
    texts: list[str] = []
    start = time.perf_counter()
    for run in range(TIMING_RUNS):
        if run and time.perf_counter() - start > TIMING_BUDGET_S * run / TIMING_RUNS:
            break
        for i, model in enumerate(models):
            if progress is not None:
                progress((run * len(models) + i, TIMING_RUNS * len(models)),
                         desc=f"{'Original' if i == 0 else 'Compressed'} model, run {run + 1} of {TIMING_RUNS} …")
            t0 = time.perf_counter()
            text = transcribe(model, samples, 16000)
            times[i].append(time.perf_counter() - t0)
            if run == 0:
                texts.append(text)
    return texts, [statistics.median(t) for t in times], len(times[0])


NO_COMPRESSED_TIME = "No compressed model yet"
"""The compressed column's Time box before anything is compressed: a one-line box, so a short text (the
summary line says to press Compress)."""


def checked_audio(audio, sess: Session):
    """The session's original model, its layers and the clip's samples (16 kHz); raises ``gr.Error`` (no model,
    no audio) or the library's ``AudioError`` (empty, silent, corrupt, not audio, too long)."""
    original, layers = require_model(sess)
    if audio is None:
        raise gr.Error("No audio: upload a file, record one, or pick an example clip first.", title="No audio")
    return original, layers, load_audio(audio, max_seconds=MAX_AUDIO_S)


@guard
def on_transcribe(audio, reference: str, sess: Session, progress=gr.Progress()):
    """Transcribe the clip with the original model and, once there is one, the compressed model (each timed:
    the median of interleaved runs); WER and diffs with a reference."""
    original, layers, samples = checked_audio(audio, sess)
    try:
        compressed = require_compressed(sess)
    except gr.Error:  # no compressed model (yet, or dropped): the original transcribes alone
        compressed = None
    models = [original] if compressed is None else [original, compressed]
    step = step_of(compressed.compression) if compressed is not None else None  # compressed, repaired, fine-tuned
    texts, seconds, runs = time_models(models, samples, progress)
    dur = len(samples) / 16000
    how = f" (median of {runs} runs{', interleaved' if len(models) > 1 else ''})" if runs > 1 else ""
    text_a, time_a = texts[0], f"{seconds[0]:.2f} s for {dur:.1f} s of audio{how}"
    if compressed is None:
        text_b, time_b = "", NO_COMPRESSED_TIME
    else:
        text_b = texts[1]
        time_b = (f"{seconds[1]:.2f} s for {dur:.1f} s of audio{how}"
                  + (f" — {seconds[1] / seconds[0]:.2f}× the original's time" if seconds[0] else ""))
    reference = (reference or "").strip()
    changed = sliders.changed_settings(sess, layers) if compressed is not None else []
    note = (f" *The compressed model was made before {' and '.join(changed)} last changed: press Compress to compare "
            "the current setting.*" if changed else "")
    if reference:
        wer_a = wer(reference, text_a)
        if compressed is None:
            summary = (f"**WER** against the reference: original **{100 * wer_a:.1f}%**. Press **Compress** on the "
                       "Compress tab to compare a compressed model.")
            diff_a, diff_b = word_diff(reference, text_a), None
        else:
            wer_b = wer(reference, text_b)
            summary = (f"**WER** against the reference: original **{100 * wer_a:.1f}%**, compressed "
                       + (f"({step}) " if step != "compressed" else "") +
                       f"**{100 * wer_b:.1f}%** ({'+' if wer_b >= wer_a else ''}{100 * (wer_b - wer_a):.1f} points).")
            diff_a, diff_b = word_diff(reference, text_a), word_diff(reference, text_b)
    else:
        summary = "Type a reference text (what is really said) to get word error rates and word-level diffs."
        diff_a = diff_b = None
    if step not in (None, "compressed"):
        note += f" *The compressed column is the **{step}** model (Recover tab).*"
    return text_a, time_a, text_b, time_b, summary + note, diff_a, diff_b


CANNOT = "**Cannot transcribe:** "
"""How the summary line begins after a failed Transcribe (the reason follows)."""


def transcribe_problem(audio, sess: Session) -> str:
    """Why Transcribe failed for this clip and session, in words (no server paths): what the checks before
    transcribing say, or a general line when they pass (the failure came later)."""
    return (reason_of(lambda: checked_audio(audio, sess))
            or "The transcription stopped with an error on the server; press Transcribe to try again.")


def on_transcribe_failed(audio, reference: str, sess: Session):
    """After a failed Transcribe (the page's chained failure event): no transcript, time or diff, and the reason
    in the summary line, which stays when the message box has faded (and replaces the outputs' Error badges)."""
    return "", "", "", "", CANNOT + transcribe_problem(audio, sess), None, None


def _transcript_column(which: str) -> tuple[gr.Textbox, gr.Textbox, gr.HighlightedText]:
    """One side of the comparison: the transcript, its time, and its highlighted diff against the reference."""
    with gr.Column():
        gr.Markdown(f"#### {which} model")
        text = gr.Textbox(label=f"{which} transcript", lines=3, elem_id=f"pl-text-{which.lower()}")
        seconds = gr.Textbox(label="Time", max_lines=1)
        diff = gr.HighlightedText(label="vs reference", show_legend=True, combine_adjacent=True, color_map=DIFF_COLORS)
    return text, seconds, diff


def build() -> ListenTab:
    with gr.Tab("Listen & compare", id="listen"):
        with gr.Row():
            with gr.Column(scale=2):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                 label=f"Audio (upload or record, at most {MAX_AUDIO_S:.0f} s)", elem_id="pl-audio")
                example = gr.Dropdown(list(list_examples()), value=None, label="… or pick an example clip",
                                      info="Fills the audio and its reference text.")
            with gr.Column(scale=2):
                reference = gr.Textbox(label="Reference text (what is really said; optional)", lines=3)
                transcribe_btn = gr.Button("Transcribe with both models", variant="primary")
                wer_md = gr.Markdown("", elem_id="pl-wer")
        with gr.Row():
            text_a, time_a, diff_a = _transcript_column("Original")
            text_b, time_b, diff_b = _transcript_column("Compressed")
    return ListenTab(audio, example, reference, transcribe_btn, wer_md, text_a, time_a, diff_a, text_b, time_b, diff_b)


CLEAR_RESULTS_JS = "() => ['', '', '', '', '', null, null]"
"""Runs in the browser when Transcribe is pressed and whenever the audio changes (upload, recording, Clear, an
example picked): old transcripts, times and WER go at once, so an error (or a slow run, or a new clip) never
leaves the previous clip's results beside the new one."""
CLEAR_EXAMPLE_JS = "(example, reference) => example ? [null, ''] : [null, reference]"
"""Runs in the browser when a file is uploaded or recorded: the example's name (and its reference text, if
an example filled it) no longer describe the audio."""


def wire(t: ListenTab, sess: gr.State) -> None:
    t.example.input(on_example, t.example, [t.audio, t.reference], api_name="pick_example")
    results = [t.text_a, t.time_a, t.text_b, t.time_b, t.wer_md, t.diff_a, t.diff_b]
    t.transcribe_btn.click(None, None, results, js=CLEAR_RESULTS_JS, **PRIVATE)
    inputs = [t.audio, t.reference, sess]
    done = t.transcribe_btn.click(on_transcribe, inputs, results, api_name="transcribe", **HEAVY)
    done.failure(on_transcribe_failed, inputs, results, **INSTANT)  # the reason stays; the Error badges go
    for trigger in (t.audio.upload, t.audio.stop_recording):
        trigger(None, [t.example, t.reference], [t.example, t.reference], js=CLEAR_EXAMPLE_JS, **PRIVATE)
    for trigger in (t.audio.upload, t.audio.stop_recording, t.audio.clear, t.example.input):
        trigger(None, None, results, js=CLEAR_RESULTS_JS, **PRIVATE)
