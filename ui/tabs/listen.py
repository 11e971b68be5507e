"""The Listen & compare tab: one clip through the original and the compressed model, side by side.

Upload, record or pick an example clip (``assets/*.wav`` with its ``.txt`` reference); both models
transcribe it, each timed; with a reference text, the word error rates and word-level diffs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..events import HEAVY, guard
from ..lib import SpeechModel, load_audio, transcribe, wer, word_diff_detailed
from ..session import Session, require_compressed, require_model
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


def _transcribe_timed(model: SpeechModel, samples) -> tuple[str, float]:
    t0 = time.perf_counter()
    text = transcribe(model, samples, 16000)
    return text, time.perf_counter() - t0


@guard
def on_transcribe(audio, reference: str, sess: Session, progress=gr.Progress()):
    """Transcribe the clip with the original and the compressed model; WER and diffs with a reference."""
    original, _ = require_model(sess)
    if audio is None:
        raise gr.Error("No audio: upload a file, record one, or pick an example clip first.", title="No audio")
    samples = load_audio(audio, max_seconds=MAX_AUDIO_S)
    compressed = require_compressed(sess)
    progress(0.05, desc="Original model …")
    text_a, sec_a = _transcribe_timed(original, samples)
    progress(0.5, desc="Compressed model …")
    text_b, sec_b = _transcribe_timed(compressed, samples)
    dur = len(samples) / 16000
    time_a = f"{sec_a:.2f} s for {dur:.1f} s of audio"
    time_b = f"{sec_b:.2f} s for {dur:.1f} s of audio" + (f" ({sec_b / sec_a:.2f}× the original's time)" if sec_a else "")
    reference = (reference or "").strip()
    if reference:
        wer_a, wer_b = wer(reference, text_a), wer(reference, text_b)
        summary = (f"**WER** against the reference: original **{100 * wer_a:.1f}%**, compressed "
                   f"**{100 * wer_b:.1f}%** ({'+' if wer_b >= wer_a else ''}{100 * (wer_b - wer_a):.1f} points).")
        diff_a, diff_b = word_diff(reference, text_a), word_diff(reference, text_b)
    else:
        summary = "Type a reference text (what is really said) to get word error rates and word-level diffs."
        diff_a = diff_b = None
    return text_a, time_a, text_b, time_b, summary, diff_a, diff_b


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
                                 label=f"Audio (upload or record, at most {MAX_AUDIO_S:.0f} s)")
                example = gr.Dropdown(list(list_examples()), value=None, label="… or pick an example clip",
                                      info="Fills the audio and its reference text.")
            with gr.Column(scale=2):
                reference = gr.Textbox(label="Reference text (what is really said; optional)", lines=3)
                transcribe_btn = gr.Button("Transcribe with both models", variant="primary")
                wer_md = gr.Markdown("")
        with gr.Row():
            text_a, time_a, diff_a = _transcript_column("Original")
            text_b, time_b, diff_b = _transcript_column("Compressed")
    return ListenTab(audio, example, reference, transcribe_btn, wer_md, text_a, time_a, diff_a, text_b, time_b, diff_b)


def wire(t: ListenTab, sess: gr.State) -> None:
    t.example.input(on_example, t.example, [t.audio, t.reference], api_name="pick_example")
    t.transcribe_btn.click(on_transcribe, [t.audio, t.reference, sess],
                           [t.text_a, t.time_a, t.text_b, t.time_b, t.wer_md, t.diff_a, t.diff_b],
                           api_name="transcribe", **HEAVY)
