"""The Tuning history tab: score the compressed model's plan on many clips, and keep every score.

"Evaluate this plan" transcribes the bundled evaluation clips (:mod:`ui.evaluation`: 12 clips, 6 synthetic
voices, disjoint from every clip set the project chose settings on) with the original and the compressed
model, in batches, and adds a point to the session's history: parameters really removed against WER. The
chart draws every point, the Pareto front and the original model; any point's plan and method can be put back
on the sliders (and its sparsity on the global sparsity slider); the history downloads as JSON or CSV.

A failed evaluation raises for API callers (``/evaluate_plan``, ``/reference_points``); in the page, a chained
failure event replaces the progress text with the reason and leaves the chart and the list as they were.
"""
from __future__ import annotations

import csv
import functools
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import evaluation, sliders
from ..events import HEAVY, INSTANT, guard, reason_of
from ..figures import Plot
from ..lib import RECOMMENDED, CompressionConfig, Plan, compress, plots, wer
from ..session import require_compressed, require_model, session_file, step_of
from ..settings import method_label
from ..state import LAYER_CACHE

if TYPE_CHECKING:
    from .compress import CompressTab


@dataclass
class TuningTab:
    tab: gr.Tab
    evaluate_btn: gr.Button
    references_btn: gr.Button
    result_md: gr.Markdown
    history_plot: gr.Plot
    point: gr.Dropdown
    restore_btn: gr.Button
    download_btn: gr.Button
    json_out: gr.File
    csv_out: gr.File
    history: gr.State


def point_label(p: dict) -> str:
    return (f"#{p['n']}{' (reference)' if p.get('reference') else ''} · {method_label(p['method'])}"
            + (f" · {p['step']}" if p.get("step") not in (None, "compressed") else "")
            + (f" + {p['vocabulary']} vocabulary" if p.get("vocabulary") else "")
            + f" · {100 * p['params_removed']:.2f}% removed · "
            f"WER {100 * p['wer']:.1f}% (original {100 * p['wer_original']:.1f}%)")


def score(original, compressed, layers, plan: dict, method: str, seed: int, history: list[dict], report,
          reference: bool = False) -> dict:
    """Transcribe the clips with ``compressed`` (the original once per model) and return the history point."""
    audios, refs = evaluation.eval_clips()
    wer_a = evaluation.original_wer(original, audios, refs, lambda i, n, m: report(i, 2 * n, f"Original model: {m}"))
    hyps = evaluation.transcribe_clips(compressed, audios,
                                       lambda i, n, m: report(n + i, 2 * n, f"Compressed model: {m}"))
    c = compressed.compression
    by_name = {l.name: l for l in layers}
    return {"n": len(history) + 1, "model": original.spec, "method": method, "seed": seed,
            "units": c.get("units", "channels"), "params_removed": float(c["params_removed"]),
            "wer": float(wer(refs, hyps)), "wer_original": float(wer_a), "clips": len(audios),
            "plan": {n: int(k) for n, k in plan.items() if n in by_name and k < by_name[n].channels},
            "reference": reference, "vocabulary": (c.get("vocabulary") or {}).get("script"), "step": step_of(c)}


@guard
def on_evaluate(sess, history: list[dict] | None, progress=gr.Progress()):
    """Transcribe the evaluation clips with the original (once per model) and the compressed model; add a point."""
    original, layers = require_model(sess)
    compressed = require_compressed(sess)
    t0 = time.perf_counter()
    history = list(history or [])
    point = score(original, compressed, layers, sess.compressed_plan or {},
                  sess.method or compressed.compression.get("method", "?"), sess.seed, history,
                  lambda i, n, m: progress((i, n), desc=m))
    history.append(point)
    wer_a, wer_b = point["wer_original"], point["wer"]
    summary = (f"**Plan #{point['n']}** on {point['clips']} clips in {time.perf_counter() - t0:.1f} s: WER original "
               f"**{100 * wer_a:.1f}%**, compressed " + (f"({point['step']}) " if point["step"] != "compressed" else "")
               + f"**{100 * wer_b:.1f}%** "
               f"({'+' if wer_b >= wer_a else ''}{100 * (wer_b - wer_a):.1f} points) with "
               f"**{100 * point['params_removed']:.2f}%** of all the parameters removed." + _bought_back(history))
    return history, summary, *_history_views(history, original.spec)


def _bought_back(history: list[dict]) -> str:
    """What the last point's recovery step bought back against the same plan's point at the step before it."""
    links = [(i, j) for i, j in plots.step_links(history) if j == len(history) - 1]
    if not links:
        return ""
    before, after = history[links[0][0]], history[-1]
    gain = 100 * (before["wer"] - after["wer"])
    return (f" Against #{before['n']} (the same plan, {before.get('step') or 'compressed'}): "
            f"{'−' if gain >= 0 else '+'}{abs(gain):.1f} WER points.")


REFERENCES = [  # (label, method, preset or None for the one chosen, units, allocation)
    ("kmeans", "kmeans", None, "channels", "uniform"),
    ("magnitude", "magnitude", None, "channels", "uniform"),
    ("recommended", RECOMMENDED["method"], RECOMMENDED["preset"], RECOMMENDED["units"], RECOMMENDED["allocate"]),
]
"""The reference points: the paper's k-means and structured magnitude on the chosen preset, and the
recommended setting (predictive fold of the encoder's FFN neurons, its own allocation), all at the global
sparsity."""


@guard
def on_references(sparsity: float, preset: str, sess, history: list[dict] | None, progress=gr.Progress()):
    """Compress and evaluate the three reference settings at the global sparsity; add them as reference points."""
    original, layers = require_model(sess)
    _check_references(sparsity, sess)
    sparsity = float(sparsity)
    history = list(history or [])
    for r, (label, method, ref_preset, units, alloc) in enumerate(REFERENCES):
        progress((r, len(REFERENCES)), desc=f"Reference {label}: compressing …", unit="settings")
        config = CompressionConfig(method=method, sparsity=sparsity, preset=ref_preset or preset, units=units,
                                   allocate=alloc)
        compressed = compress(original, config, cache=LAYER_CACHE)
        point = score(original, compressed, layers, compressed.compression["plan"], method, 0,
                      history, lambda i, n, m, r=r: progress((r, len(REFERENCES)), desc=f"Reference {label}: {m}"),
                      reference=True)
        history.append(point)
    summary = (f"Reference points at {100 * sparsity:.0f}% sparsity: "
               + ", ".join(f"{label} {100 * p['wer']:.1f}% WER ({100 * p['params_removed']:.2f}% removed)"
                           for (label, *_), p in zip(REFERENCES, history[-len(REFERENCES):])) + ".")
    return history, summary, *_history_views(history, original.spec)


def _history_views(history: list[dict], spec: str | None):
    """Chart and point list of the history (the points of the current model)."""
    mine = [p for p in history if p["model"] == spec]
    chart = plots.tuning_history_chart(mine, title=f"Tuning history of {spec}: {len(mine)} evaluated plan"
                                                   f"{'s' if len(mine) != 1 else ''}")
    choices = [(point_label(p), p["n"]) for p in mine]
    return chart, gr.Dropdown(choices=choices, value=choices[-1][1] if choices else None)


@guard
def on_restore(n: Any, history: list[dict] | None, sess, rev: int):
    """Put a history point's plan on the sliders, its method in the Method dropdown and its decoder vocabulary."""
    _, layers = require_model(sess)
    point = next((p for p in history or [] if str(p["n"]) == str(n)), None)
    if point is None:
        raise gr.Error("Choose an evaluated plan from the list first.")
    if point["model"] != sess.spec:
        raise gr.Error(f"Plan #{point['n']} was made for {point['model']}; load that model first.")
    out = sliders.new_plan(sess, rev, layers, {l.name: point["plan"].get(l.name, l.channels) for l in layers})
    gr.Info(f"Plan #{point['n']} is on the sliders ({method_label(point['method'])}): press Compress to rebuild it.")
    return (*out, gr.Dropdown(value=point["method"]), gr.Radio(value=point.get("vocabulary") or "all"))


def on_restore_sparsity(n: Any, history: list[dict] | None, sess, step: float = 0.05, top: float = 0.9):
    """After a restore: the restored plan's sparsity over the layers it compresses (parameter-weighted, on the
    global sparsity slider's steps), so a later "Set all sliders" starts from the restored plan, not the old value.

    A value set by the server is no slider release: the sliders are not set again from it."""
    point = next((p for p in history or [] if str(p["n"]) == str(n)), None)
    if point is None or sess is None or point["model"] != sess.spec:
        return gr.skip()
    _, layers = require_model(sess)
    sparsity = Plan(dict(point["plan"])).sparsity(layers, over="planned") if point["plan"] else 0.0
    return round(min(top, max(0.0, round(sparsity / step) * step)), 4)


NOT_EVALUATED = "**Not evaluated:** "
"""How the result line begins after a failed evaluation (the reason follows)."""


def _problem(check) -> str:
    """The reason ``check()`` raises, in words (no server paths), or a general line when it passes."""
    return reason_of(check) or "The evaluation stopped with an error on the server (its message said why); try again."


def _check_evaluate(sess) -> None:
    require_model(sess)
    if not sess.compressed:  # as require_compressed says it, without rebuilding a set-aside model
        require_compressed(sess)


def on_evaluate_failed(sess, history: list[dict] | None):
    """After a failed Evaluate (the page's chained failure event): the reason instead of the progress text; the
    chart and the list keep what they showed (their Error badges go)."""
    return NOT_EVALUATED + _problem(lambda: _check_evaluate(sess)) + _unchanged(history), gr.skip(), gr.skip()


def _check_references(sparsity: float, sess) -> None:
    require_model(sess)
    if not 0 < float(sparsity or 0) < 1:
        raise gr.Error("Set a global sparsity above 0 on the Compress tab first.")


def on_references_failed(sparsity: float, sess, history: list[dict] | None):
    """After failed reference points: the reason instead of the progress text; chart and list as they were."""
    return (NOT_EVALUATED + _problem(lambda: _check_references(sparsity, sess)) + _unchanged(history),
            gr.skip(), gr.skip())


def _unchanged(history: list[dict] | None) -> str:
    n = len(history or [])
    return f" The history is unchanged ({n} evaluated plan{'s' if n != 1 else ''})." if n else ""


@guard
def on_download(history: list[dict] | None):
    """The history as JSON (every point with its plan) and CSV (one row per point, without the plans)."""
    if not history:
        raise gr.Error("Nothing evaluated yet: press Evaluate this plan first.")
    path_json = session_file("prunelab-tuning-history.json")
    path_json.write_text(json.dumps(history, indent=1), encoding="utf-8")
    path_csv = path_json.with_suffix(".csv")
    fields = ["n", "model", "method", "seed", "units", "vocabulary", "step", "params_removed", "wer", "wer_original", "clips",
              "layers_compressed"]
    with open(path_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for p in history:
            w.writerow({**{k: p.get(k) for k in fields[:-1]}, "layers_compressed": len(p["plan"])})
    return str(path_json), str(path_csv)


def build() -> TuningTab:
    with gr.Tab("Tuning history", id="tune") as tab:
        gr.Markdown("Score the compressed model's plan on **12 bundled clips** (6 synthetic voices, never used to "
                    "choose any setting): both models transcribe them in batches. Each evaluation adds a point below; "
                    "the dashed line joins the plans nothing else beats (fewer parameters *and* lower WER).")
        with gr.Row():
            evaluate_btn = gr.Button("Evaluate this plan", variant="primary", elem_id="pl-evaluate-btn", scale=2)
            references_btn = gr.Button("Add reference points", scale=1)
        gr.Markdown("*Reference points* (hollow diamonds): the paper's k-means and structured magnitude on the chosen "
                    "preset, and the recommended setting (predictive fold of the encoder FFN neurons), all at the "
                    "global sparsity of the Compress tab.")
        result_md = gr.Markdown("", elem_id="pl-eval-result")
        history_plot = Plot(label="Tuning history", format="png", show_label=False)
        with gr.Row(equal_height=True):
            point = gr.Dropdown([], label="Evaluated plans", scale=4, min_width=240,
                                info="Choose one to put its plan and method back on the Compress tab.")
            restore_btn = gr.Button("Restore this plan", scale=1, min_width=120)
        download_btn = gr.Button("Download history (JSON + CSV)", size="sm")
        with gr.Row():
            json_out = gr.File(label="History JSON", interactive=False, height=90, min_width=140)
            csv_out = gr.File(label="History CSV", interactive=False, height=90, min_width=140)
        history = gr.State([])
    return TuningTab(tab, evaluate_btn, references_btn, result_md, history_plot, point, restore_btn, download_btn, json_out,
                     csv_out, history)


def wire(t: TuningTab, sess: gr.State, rev: gr.State, compress: CompressTab) -> None:
    for btn in (t.evaluate_btn, t.references_btn):  # the progress text is drawn where the old result was
        btn.click(None, None, t.result_md, js="() => 'Transcribing the evaluation clips …'", api_visibility="private")
    shown = [t.result_md, t.history_plot, t.point]
    evaluated = t.evaluate_btn.click(on_evaluate, [sess, t.history], [t.history, *shown],
                                     api_name="evaluate_plan", **HEAVY)
    evaluated.failure(on_evaluate_failed, [sess, t.history], shown, **INSTANT)
    referenced = t.references_btn.click(on_references, [compress.sparsity, compress.preset, sess, t.history],
                                        [t.history, *shown], api_name="reference_points", **HEAVY)
    referenced.failure(on_references_failed, [compress.sparsity, sess, t.history], shown, **INSTANT)
    restored = t.restore_btn.click(on_restore, [t.point, t.history, sess, rev],
                                   [sess, rev, compress.plan_md, compress.editor, compress.stale_md, compress.method,
                                    compress.vocabulary],
                                   api_name="restore_plan")
    # the global sparsity follows (a chained event: /restore_plan's outputs stay as they were for API callers)
    restored.success(functools.partial(on_restore_sparsity, step=compress.sparsity.step,
                                       top=compress.sparsity.maximum),
                     [t.point, t.history, sess], compress.sparsity, **INSTANT)
    t.download_btn.click(on_download, t.history, [t.json_out, t.csv_out], api_name="download_history")
