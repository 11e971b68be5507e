"""The plan editor of the Compress tab: one slider per layer (its K), grouped by encoder/decoder and block, and
what other tabs need of it: the outputs of an event that sets every slider (:func:`new_plan`, also Tuning
history's Restore), the sliders as a plan of foldable units (:func:`foldable_plan`) and the note on settings
changed since Compress (:func:`stale_note`, :func:`changed_settings`, also Listen & compare).

All sliders live in ONE ``gr.HTML`` component whose value is their HTML, written here from the layers and
the session's plan (:func:`editor_html`). Whatever sets every slider at once (loading a model, "Set all
sliders", auto-allocation, a restored plan JSON) returns a new HTML value: one round trip, however many
layers (Whisper-large-v3 has 512). The browser updates the page in place (Gradio diffs the HTML).

Moving a slider is handled in the browser (:data:`EDITOR_JS`): its "K of C → % sparse" text, its number
box and the sparsity of its block and part headers follow at once, without the server. When a slider is
released (or a number typed), one ``edit`` event sends the whole plan with the revision it was drawn
from; :func:`on_edit` stores it in the session unless the sliders were replaced since (a newer revision).
"""
from __future__ import annotations

import html
from typing import Any, Mapping

import gradio as gr

from .events import guard
from .lib import METHODS, LayerInfo, Plan, PrunelabError, find_layers
from .options import parse_options
from .session import Session, plan_summary
from .settings import known_method, method_label
from .state import MODELS, get_model

# Runs once when the component is mounted; `element`, `trigger` and `watch` are given by gr.HTML.
EDITOR_JS = r"""
const info = (k, c) => `K = ${k} of C = ${c} → ${(100 * (1 - k / c)).toFixed(0)}% sparse`;
const rows = (el) => el.querySelectorAll('.pl-layer-slider');
const rangeOf = (row) => row.querySelector('input[type=range]');
function sparsity(el) {
  let total = 0, removed = 0;
  rows(el).forEach(r => { const p = +r.dataset.p, c = +r.dataset.c; total += p; removed += p * (1 - rangeOf(r).value / c); });
  return total ? 100 * removed / total : 0;
}
function headers(row) {
  for (const sel of ['details.pl-block', 'details.pl-part']) {
    const d = row.closest(sel);
    if (d) d.querySelector(':scope > summary').textContent = `${d.dataset.title} · ${sparsity(d).toFixed(0)}% sparse`;
  }
}
function setRow(row, value) {
  const c = +row.dataset.c;
  let k = Math.round(Number(value));
  if (!Number.isFinite(k)) k = +rangeOf(row).getAttribute('value');
  k = Math.min(c, Math.max(1, k));
  for (const input of row.querySelectorAll('input')) { input.value = k; input.setAttribute('value', k); }
  row.querySelector('.pl-info').textContent = info(k, c);
  headers(row);
}
function plan() {
  const out = {};
  rows(element).forEach(r => { out[r.dataset.name] = +rangeOf(r).value; });
  return out;
}
element.addEventListener('input', (e) => {
  const row = e.target.closest('.pl-layer-slider');
  if (row && e.target.type === 'range') setRow(row, e.target.value);
});
element.addEventListener('change', (e) => {
  const row = e.target.closest('.pl-layer-slider');
  if (!row) return;
  setRow(row, e.target.value);
  const top = element.querySelector('.pl-sliders');
  trigger('edit', {clusters: plan(), rev: top ? +top.dataset.rev : -1});
});
// parts and blocks the user opened or closed stay so when the server sends new sliders
const opened = new Map();
element.addEventListener('toggle', (e) => {
  if (e.target.matches && e.target.matches('details[data-title]')) opened.set(e.target.dataset.title, e.target.open);
}, true);
// after the server sends new sliders: inputs take the value written in the HTML (the user may have moved them)
watch('value', () => {
  rows(element).forEach(r => r.querySelectorAll('input').forEach(i => { i.value = i.getAttribute('value'); }));
  element.querySelectorAll('details[data-title]').forEach(d => {
    if (opened.has(d.dataset.title) && d.open !== opened.get(d.dataset.title)) d.open = opened.get(d.dataset.title);
  });
});
"""

EMPTY = '<div class="pl-sliders" data-rev="-1"><p><em>Load a model to get one slider per layer.</em></p></div>'


def slider_info(k: float, channels: int) -> str:
    """The text beside a slider: its K, the layer's C and the sparsity 1 − K/C."""
    return f"K = {int(k)} of C = {channels} → {100 * (1 - int(k) / channels):.0f}% sparse"


def _row(layer: LayerInfo, k: int, idx: int) -> str:
    label = html.escape(layer.label)
    return (f'<div class="pl-layer-slider" data-name="{html.escape(layer.name)}" data-c="{layer.channels}" '
            f'data-p="{layer.params}">'
            f'<label for="pl-k-{idx}" title="{html.escape(layer.name)}">{label}</label>'
            f'<div class="pl-k-inputs"><input type="range" id="pl-k-{idx}" min="1" max="{layer.channels}" step="1" '
            f'value="{k}" aria-label="{label}: clusters kept (K)">'
            f'<input type="number" min="1" max="{layer.channels}" step="1" value="{k}" '
            f'aria-label="{label}: K as a number"></div>'
            f'<span class="pl-info">{slider_info(k, layer.channels)}</span></div>')


def editor_html(layers: list[LayerInfo], clusters: Mapping[str, int], rev: int) -> str:
    """Every layer's slider at its K in ``clusters`` (C when absent), grouped by part and block.

    Each part and block is a ``<details>`` whose title gives its layers and parameter-weighted sparsity;
    the first block of each part is open. ``rev`` is written on the grid so that edits made on sliders
    the server has since replaced are ignored (:func:`on_edit`)."""
    plan = Plan(dict(clusters))
    out = [f'<div class="pl-sliders" data-rev="{int(rev)}">']
    idx = 0
    for part in ("encoder", "decoder"):
        part_layers = [l for l in layers if l.part == part]
        if not part_layers:
            continue
        blocks = sorted({l.block for l in part_layers})
        title = f"{part.capitalize()} · {len(blocks)} blocks, {len(part_layers)} layers"
        out.append(f'<details class="pl-part" open data-title="{title}">'
                   f'<summary>{title} · {100 * plan.sparsity(part_layers):.0f}% sparse</summary>')
        for b in blocks:
            block_layers = [l for l in part_layers if l.block == b]
            title = f"{part} block {b} · {len(block_layers)} layers"
            out.append(f'<details class="pl-block"{" open" if b == blocks[0] else ""} data-title="{title}">'
                       f'<summary>{title} · {100 * plan.sparsity(block_layers):.0f}% sparse</summary>'
                       f'<div class="pl-grid">')
            for layer in block_layers:
                out.append(_row(layer, int(clusters.get(layer.name, layer.channels)), idx))
                idx += 1
            out.append("</div></details>")
        out.append("</details>")
    out.append("</div>")
    return "".join(out)


def build() -> gr.HTML:
    """The (empty) slider grid; handlers fill it with :func:`editor_html`."""
    return gr.HTML(EMPTY, js_on_load=EDITOR_JS, elem_id="pl-sliders", padding=False)


def new_plan(sess: Session, rev: int, layers: list[LayerInfo], clusters: dict[str, int]):
    """Outputs of every event that sets all sliders at once: session, rev, summary, the sliders (one HTML
    value: one round trip however many layers) and the note on a compressed model made with another plan.

    No chart: drawing one bar per layer took 1-3 s for 512 layers; the See what changed tab draws the
    sliders' plan when it is opened (:func:`ui.tabs.changes.on_plan_chart`)."""
    sess, rev = sess.with_clusters(clusters), (rev or 0) + 1
    return (sess, rev, plan_summary(layers, clusters), editor_html(layers, clusters, rev), stale_note(sess, layers))


def foldable_plan(layers: list[LayerInfo], clusters: dict[str, int]) -> tuple[Plan, list[str]]:
    """The sliders as a plan of foldable units: only unit leaders (fc1, v, q), attention K rounded to whole heads.

    Returns the plan and readable notes on what was left out or rounded (shown in the status)."""
    out, notes = {}, []
    skipped = [l.label for l in layers if l.unit is None and clusters.get(l.name, l.channels) < l.channels]
    if skipped:
        notes.append(f"{len(skipped)} layer(s) that lead no foldable unit kept all their channels "
                     f"({', '.join(skipped[:4])}{' …' if len(skipped) > 4 else ''})")
    rounded = 0
    for l in layers:
        k = clusters.get(l.name, l.channels)
        if l.unit is None or k >= l.channels:
            continue
        if l.heads:
            k2 = l.heads * max(1, round(k / l.heads))
            rounded += k2 != k
            k = min(k2, l.channels)
        out[l.name] = k
    if rounded:
        notes.append(f"{rounded} attention layer(s) rounded to the same K in every head")
    return Plan(out), notes


def edited_clusters(layers: list[LayerInfo], sent: Any) -> dict[str, int]:
    """The plan the browser sent, checked: known layers only, each K a whole number in 1..C."""
    if not isinstance(sent, dict):
        return {}
    out = {}
    for l in layers:
        k = sent.get(l.name)
        if isinstance(k, (int, float)) and not isinstance(k, bool) and k == k:
            out[l.name] = int(min(l.channels, max(1, round(k))))
    return out


STALE_NOTES = {
    "the sliders": "⚠️ **The sliders changed since you pressed Compress.** Listen & compare and the download still use "
                   "the model compressed with the previous plan: press **Compress** to apply the new one.",
    "the vocabulary choice": "⚠️ **The vocabulary choice changed since you pressed Compress.** Listen & compare and the "
                             "download still use the previous model: press **Compress** to apply it.",
}
"""The warning for each setting that can differ from the compressed model's (keys: :func:`changed_settings`)."""

METHOD_SETTINGS = {"method": "the method", "seed": "the seed", "units": "what is clustered",
                   "options": "the method options"}
"""The method settings on screen (:attr:`ui.session.Session.on_screen`) and their names in the warnings."""


def _changed_method_settings(sess: Session) -> list[str]:
    """Names of the method settings on screen that differ from the compressed model's config."""
    screen, config = sess.on_screen, sess.config
    if not screen or config is None:
        return []
    method = known_method(screen.get("method"))
    changed = []
    if method != config.method:
        changed.append("method")
    try:
        seed = int(screen.get("seed") or 0)
    except (TypeError, ValueError):
        seed = None
    if seed != config.seed:
        changed.append("seed")
    if screen.get("units") in ("channels", "foldable") and screen["units"] != config.units:
        changed.append("units")
    if method == config.method:
        try:
            same = METHODS[method].make_options(parse_options(method, screen.get("options"))) == config.options
        except PrunelabError:  # unreadable options: Compress would refuse them, the model cannot have them
            same = False
        if not same:
            changed.append("options")
    return [METHOD_SETTINGS[c] for c in changed]


def changed_settings(sess: Session, layers: list[LayerInfo]) -> list[str]:
    """Which settings on screen differ from those the session's compressed model was made with: "the sliders"
    (another plan), "the vocabulary choice", and the method settings ("the method", "the seed", "what is
    clustered", "the method options"); [] without a compressed model."""
    if not sess.compressed or sess.compressed_plan is None:
        return []
    def active(clusters: Mapping[str, int]) -> dict[str, int]:
        by = {l.name: l for l in layers}
        return {n: int(k) for n, k in clusters.items() if n in by and k < by[n].channels}

    made = active(sess.compressed_plan)
    changed = []
    if made not in (active(sess.clusters), active(foldable_plan(layers, sess.clusters)[0].clusters)):
        changed.append("the sliders")
    if sess.config is not None and (sess.config.vocabulary or "all") != sess.vocabulary:
        changed.append("the vocabulary choice")
    return changed + _changed_method_settings(sess)


def stale_note(sess: Session, layers: list[LayerInfo]) -> str:
    """A warning for each setting that differs from the compressed model's (:func:`changed_settings`), else ''.
    The method settings (method, seed, units, options) share one warning that names them."""
    changed = changed_settings(sess, layers)
    notes = [STALE_NOTES[c] for c in changed if c in STALE_NOTES]
    method = [c for c in changed if c not in STALE_NOTES]
    if method:
        what = " and ".join(filter(None, [", ".join(method[:-1]), method[-1]]))
        notes.append(f"⚠️ **{what[0].upper()}{what[1:]} changed since you pressed Compress** (the model was made "
                     f"with {method_label(sess.config.method)}, seed {sess.config.seed}, "
                     f"{'foldable units' if sess.config.units == 'foldable' else 'output channels'}). Listen & "
                     "compare and the download still use that model: press **Compress** to apply the new settings.")
    return " ".join(notes)


@guard
def on_edit(sess: Session, rev: int, evt: gr.EventData):
    """A slider was released: store the plan the browser sent (unless newer sliders replaced it)."""
    data = getattr(evt, "_data", None) or {}
    if sess is None or not sess.spec or sess.spec not in MODELS or data.get("rev") != rev:
        return gr.skip(), gr.skip(), gr.skip()
    layers = find_layers(get_model(sess.spec).model)
    clusters = edited_clusters(layers, data.get("clusters"))
    if not clusters:
        return gr.skip(), gr.skip(), gr.skip()
    sess = sess.with_clusters(clusters)
    return sess, plan_summary(layers, clusters), stale_note(sess, layers)
