"""The page: the intro above four tabs, theme and CSS; :func:`build_app` puts it together, :func:`main` serves it.

Each tab is built by its module in :mod:`ui.tabs`, then wired, since events may reach across tabs. What
the tabs share is per user ``sess`` (a :class:`~ui.session.Session` in ``gr.State``) and ``rev`` (a
counter bumped whenever every slider is set anew: slider edits made before are ignored), and for all users
the stores of :mod:`ui.state`. When a session ends (``unload``, or its state expiring) its compressed model and files are released.
The queue (:func:`queue_kwargs`) runs heavy events one at a time (:data:`ui.events.HEAVY`) and shows a
waiting user their place in the line and an estimate of the wait.
"""
from __future__ import annotations

import os

import gradio as gr

from .session import Session, end_session, forget_session
from .settings import ASSETS, DEFAULT_SPEC
from .tabs import changes, compress, how, listen, recover, tuning

INTRO = """
# ✂️ prunelab — shrink a speech model without data or training

Every linear layer of a speech model has **C output channels** (rows of its weight). prunelab groups
similar channels with **k-means** into **K clusters** and replaces each channel by its cluster's centroid,
so the layer keeps only K distinct rows: its **sparsity is 1 − K/C**. Compressing takes no audio and no training; the optional **Recover** step then uses unlabeled audio to win back what it cost.
*(Interspeech 2026: “Towards Data-free and Training-free Compression for Speech Foundation Models
Using Parameter Clustering”.)*

**1** pick a model → **2** set how many clusters each layer keeps → **3** compress →
**4** listen and compare transcripts → **5** download the smaller model.
"""

CSS = """
#pl-intro h1 { margin-bottom: 0.2em; }
#pl-compress-btn { min-height: 48px; }
footer { display: none !important; }
/* the plan editor (ui/sliders.py): native range inputs in collapsible parts and blocks */
.pl-sliders details { border: 1px solid var(--border-color-primary); border-radius: 6px; margin: 2px 0; }
.pl-sliders summary { cursor: pointer; padding: 4px 8px; font-weight: 600; }
.pl-sliders details.pl-block { margin: 2px 6px; }
.pl-sliders details.pl-block summary { font-weight: 500; }
.pl-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 4px 14px;
           padding: 4px 10px 8px; }
.pl-layer-slider { display: flex; flex-direction: column; font-size: 0.9em; }
.pl-layer-slider label { font-family: var(--font-mono); }
.pl-k-inputs { display: flex; gap: 6px; align-items: center; }
.pl-k-inputs input[type=range] { flex: 1; min-width: 0; accent-color: var(--color-accent); }
.pl-k-inputs input[type=number] { width: 5.5em; }
.pl-info { color: var(--body-text-color-subdued); font-size: 0.85em; }
/* narrow screens (phones, ~420 px): the six tab names wrap onto two rows rather than clip, dropdown texts wrap */
@media (max-width: 600px) {
  .gradio-container { padding-left: 4px !important; padding-right: 4px !important; }
  .tab-container { flex-wrap: wrap !important; height: auto !important; }
  .tab-container button { font-size: 12px !important; padding: 2px 4px !important; min-width: 0 !important;
                          white-space: normal !important; line-height: 1.15 !important; height: auto !important;
                          flex: 1 1 auto !important; text-align: center; overflow: visible !important; }
  .wrap-inner input, .secondary-wrap input, input[role=listbox] { font-size: 13px !important; }
}
"""

PAGE_JS = """
() => {
  // Gradio's slider applies a value ("release") when its number box loses focus or the pointer is released;
  // Enter in the box and arrow keys on the range should apply the global sparsity too.
  const inGlobal = (el, kind) => el && el.matches && el.matches(`#pl-global-sparsity input[type=${kind}]`);
  const keys = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"];
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && inGlobal(e.target, "number")) e.target.blur();
  }, true);
  document.addEventListener("keyup", (e) => {
    if (keys.includes(e.key) && inGlobal(e.target, "range")) {
      e.target.dispatchEvent(new PointerEvent("pointerup", {bubbles: true}));
    }
  }, true);
}
"""
"""Runs once when the page loads: Enter in the global sparsity's number box and arrow keys on its range apply
the value, as releasing the slider does (Gradio's slider sends its ``release`` event only on blur / pointer up)."""

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="emerald")


def build_app(default_spec: str | None = None) -> gr.Blocks:
    """The whole app; call ``.queue().launch(**launch_kwargs())`` (``launch_kwargs`` adds theme and CSS)."""
    spec0 = default_spec or DEFAULT_SPEC
    with gr.Blocks(title="prunelab: data-free compression of speech models", delete_cache=(1800, 3600)) as demo:
        sess = gr.State(Session(), delete_callback=forget_session)
        rev = gr.State(0)  # bumped whenever every slider is set anew (new model, preset, uploaded plan)

        gr.Markdown(INTRO, elem_id="pl-intro")
        with gr.Tabs():
            compress_tab = compress.build(sess, rev, spec0)
            recover_tab = recover.build()
            changes_tab = changes.build()
            listen_tab = listen.build()
            tuning_tab = tuning.build()
            how_tab = how.build()

        compress.wire(demo, compress_tab, sess, rev, changes=changes_tab, how=how_tab, listen=listen_tab)
        changes.wire(changes_tab, sess, compress_tab)
        listen.wire(listen_tab, sess)
        tuning.wire(tuning_tab, sess, rev, compress_tab)
        how.wire(how_tab, sess, compress_tab)
        recover.wire(recover_tab, sess, compress_tab, how_tab)
        demo.unload(end_session)  # the tab closed: release its compressed model and files now
    return demo


def queue_kwargs() -> dict:
    """The queue: heavy events wait in one line (``HEAVY``: one at a time), light ones run two at a time;
    a waiting user sees their place and an estimated wait (Gradio's queue status, updated as it moves)."""
    return {"max_size": 64, "default_concurrency_limit": 2, "status_update_rate": "auto"}


def launch_kwargs() -> dict:
    """Theme, CSS and the page's script (Gradio 6 takes them in ``launch()``), and the bundled clips' folder as an allowed path:
    Gradio serves files only from the working directory, the temp directory or ``allowed_paths``, so without
    it the example clips fail to play when the app is started from another directory."""
    return {"theme": THEME, "css": CSS, "js": PAGE_JS, "allowed_paths": [str(ASSETS)]}


def main() -> None:
    """Serve the app: on ``GRADIO_SERVER_NAME``/``PORT`` when set, else 127.0.0.1 (0.0.0.0 on a Space)."""
    port = os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("PORT")
    demo = build_app()
    demo.queue(**queue_kwargs()).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"),
        server_port=int(port) if port else None,
        max_file_size="100mb",
        **launch_kwargs(),
    )
