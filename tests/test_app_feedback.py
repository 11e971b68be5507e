"""What the app tells its user after a failure or a change, through its handlers, its API and a real browser.

* Listen & compare: a failed Transcribe leaves its reason on the page (the message box fades), and no result
  of an earlier clip stays beside a new audio; before any compress the compressed Time box is one short line.
* How it works: the folding diagram describes the fold of the chosen layer's unit (FFN neurons, attention
  value or query/key dims per head, or clustering in place).
* Tuning history: a failed evaluation says why instead of "Transcribing …", with no Error badge over the
  chart and the list; a restored plan puts its sparsity on the global sparsity slider (without that slider's
  release setting every slider again).

The browser tests use headless Debian Chromium (never a downloaded browser) and the tiny random Whisper.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apptools import serve, write_wav  # noqa: E402

CLIP = ROOT / "assets" / "clip1.wav"
CHROMIUM = "/usr/bin/chromium"
SPEC = "tiny:whisper"


@pytest.fixture(scope="module")
def server():
    with serve(SPEC) as url:
        yield url


def bad_clips(folder: Path) -> dict[str, tuple[Path, str]]:
    """Audio a user gets wrong: name -> (file, a word its message must hold)."""
    text = folder / "notes.wav"
    text.write_text("These are my meeting notes, not audio.\n" * 20)
    empty = write_wav(folder / "empty.wav", np.zeros(0))
    long = write_wav(folder / "long.wav", 0.1 * np.sin(np.arange(16000 * 70) * 0.05))  # the limit is 60 s
    return {"text renamed .wav": (text, "notes.wav"), "empty": (empty, "empty.wav"), "too long": (long, "too long")}


def tiny_session():
    from ui.session import Session
    from ui.state import get_model

    get_model(SPEC)
    return Session(spec=SPEC)


def tiny_layers():
    from prunelab import find_layers
    from ui.state import get_model

    return find_layers(get_model(SPEC).model)


# --- Listen & compare ------------------------------------------------------------------------------------------


def test_failed_transcribe_raises_for_the_api_and_leaves_its_reason_on_the_page(server, tmp_path):
    """A gradio_client caller gets an exception that says why (no server path); the page's failure event empties
    the transcripts, times and diffs and writes the same reason into the summary line."""
    from ui.tabs.listen import on_transcribe_failed

    client = Client(server, verbose=False)
    client.predict(SPEC, 0.3, "uniform", api_name="/load_model")
    sess = tiny_session()
    for name, (path, word) in bad_clips(tmp_path).items():
        with pytest.raises(Exception) as excinfo:
            client.predict(handle_file(str(path)), "a reference", api_name="/transcribe")
        api_message = str(excinfo.value)
        assert word in api_message.lower() or word in api_message, (name, api_message)
        # what the page shows after the failure: the upload lies in the server's temp folder, as Gradio puts it
        assert str(tmp_path).startswith(tempfile.gettempdir() + "/")
        upload = tmp_path / "gradio" / "3f9a" / path.name
        upload.parent.mkdir(parents=True, exist_ok=True)
        upload.write_bytes(path.read_bytes())
        text_a, time_a, text_b, time_b, summary, diff_a, diff_b = on_transcribe_failed(str(upload), "a reference", sess)
        assert (text_a, time_a, text_b, time_b, diff_a, diff_b) == ("", "", "", "", None, None), name
        assert summary.startswith("**Cannot transcribe:** "), summary
        assert (word in summary.lower() or word in summary) and tempfile.gettempdir() not in summary, summary
    assert "No audio" in on_transcribe_failed(None, "", sess)[4]


def test_compressed_time_box_before_compress_is_one_short_line(server):
    client = Client(server, verbose=False)
    client.predict(SPEC, 0.3, "uniform", api_name="/load_model")
    text_a, time_a, text_b, time_b, summary, diff_a, diff_b = client.predict(
        handle_file(str(CLIP)), "she put the fresh flowers", api_name="/transcribe")
    assert " s for " in time_a and text_b == ""
    assert len(time_b) <= 30 and "There is no compressed model" not in time_b, time_b  # was 88 characters, cut off
    assert "Press **Compress**" in summary  # the explanation is the summary line's


# --- How it works ---------------------------------------------------------------------------------------------


def _fold_words(fig) -> str:
    ax = fig.axes[0]
    return " ".join([ax.get_title(), ax.get_xlabel(), *(t.get_text() for t in ax.get_yticklabels()),
                     *(t.get_text() for t in ax.texts)])


def test_fold_diagram_describes_the_fold_of_the_chosen_layer():
    from matplotlib.collections import PathCollection

    from ui.tabs.how import on_how

    sess = tiny_session()
    by_label = {l.label: l for l in tiny_layers()}
    expected = {  # layer -> words the diagram must hold, words it must not
        "enc.0.fc1": (["Folding:", "enc.0.fc2 adds up the columns", "fc1"], ["head", "in place"]),
        "dec.1.fc1": (["dec.1.fc2 adds up the columns"], ["in place"]),
        "enc.0.v": (["value dims per head", "within each head", "enc.0.out adds up the columns", "head 1"],
                    ["fc1", "fc2", "in place"]),
        "dec.0.cross.v": (["value dims per head", "dec.0.cross.out adds up"], ["fc1", "fc2"]),
        "dec.0.q": (["query/key dims per head", "dec.0.k adds up their key rows", "softmax scale", "head 0"],
                    ["fc1", "fc2", "in place"]),
        "enc.1.k": (["in place", "leads no foldable unit", "Nothing folds away"], ["fc1", "fc2 adds", "head 0"]),
        "enc.0.out": (["in place", "Nothing folds away"], ["fc1", "head 0"]),
        "dec.1.fc2": (["in place", "Nothing folds away"], ["fc1", "adds up"]),
    }
    for label, (present, absent) in expected.items():
        layer = by_label[label]
        _, fold = on_how(layer.name, 8, 0, sess)
        words = _fold_words(fold)
        for w in present:
            assert w in words, (label, w, words)
        for w in absent:
            assert w not in words, (label, w, words)
        from ui.tabs.how import on_fold_caption

        caption = on_fold_caption(layer.name, 8, sess)
        assert label in caption and ("FFN" in caption) == (layer.unit == "ffn-neuron"), caption
        assert ("in place" in caption) == (layer.unit is None), caption
        assert ("Folding attention value dims" in caption) == (layer.unit == "value-dim")
        assert ("Folding attention query/key dims" in caption) == (layer.unit == "qk-dim")
        if layer.unit in ("value-dim", "qk-dim"):  # clustered within each head: no line crosses a head
            ax = fold.axes[0]
            hd = layer.head_dim
            lines = [line.get_xdata() for line in ax.lines]
            assert len(lines) == 24
            for c, (x0, x1) in enumerate(lines):
                assert x0 == c and c // hd * hd - 0.5 <= x1 <= (c // hd + 1) * hd - 0.5, (label, c, x1)
            rows = [c for c in ax.collections if isinstance(c, PathCollection)][1]
            assert len(rows.get_offsets()) >= 24 // hd + 1  # at least one row in each head drawn
            assert f"K = 8 of each head's {hd} dims" in caption, caption  # the picture's K, per head


def test_fold_figure_unit_words_without_a_model():
    import torch

    from prunelab.report import plots

    index = torch.tensor([0, 1, 0, 1, 2, 3, 2, 2])  # heads of 4 dims: clusters 0-1 in head 0, 2-3 in head 1
    ax = plots.fold_figure(index, 4, unit="value-dim", head_dim=4).axes[0]
    assert "v_proj" in " ".join(t.get_text() for t in ax.get_yticklabels()) and "out_proj" in ax.get_xlabel()
    assert max(line.get_xdata()[1] for line in ax.lines[:4]) < 3.5 < min(line.get_xdata()[1] for line in ax.lines[4:])
    ax = plots.fold_figure(index, 4, unit=None).axes[0]
    assert "in place" in ax.get_title().lower() and "fc1" not in " ".join(t.get_text() for t in ax.get_yticklabels())
    with pytest.raises(ValueError, match="Unknown unit"):
        plots.fold_figure(index, 4, unit="heads")


# --- Tuning history --------------------------------------------------------------------------------------------


def test_failed_evaluations_say_why_and_keep_the_chart_and_list():
    import gradio as gr

    from ui.session import Session
    from ui.tabs.tuning import on_evaluate_failed, on_references_failed

    sess = tiny_session()
    text, chart, points = on_evaluate_failed(sess, [])
    assert text.startswith("**Not evaluated:** ") and "press Compress" in text and "Transcribing" not in text
    assert isinstance(chart, type(gr.skip())) and isinstance(points, type(gr.skip()))  # previous content kept
    text, *_ = on_evaluate_failed(Session(), [{"n": 1}, {"n": 2}])
    assert "No model loaded" in text and "history is unchanged (2 evaluated plans)" in text
    text, chart, points = on_references_failed(0.0, sess, [])
    assert "global sparsity above 0" in text and isinstance(chart, type(gr.skip()))


def test_restored_plan_puts_its_sparsity_on_the_global_slider():
    from prunelab import Plan
    from ui.tabs.tuning import on_restore_sparsity

    sess = tiny_session()
    layers = tiny_layers()
    plan20 = {l.name: k for l, k in Plan.from_sparsity(layers, 0.2, "encoder-fc1").active(layers)}
    plan50 = {l.name: k for l, k in Plan.from_sparsity(layers, 0.5, "uniform").active(layers)}
    history = [{"n": 1, "model": SPEC, "plan": plan20}, {"n": 2, "model": SPEC, "plan": plan50},
               {"n": 3, "model": SPEC, "plan": {}}, {"n": 4, "model": "bundled:whisper-base", "plan": plan20}]
    assert on_restore_sparsity(1, history, sess) == pytest.approx(0.2)
    assert on_restore_sparsity("2", history, sess) == pytest.approx(0.5)
    assert on_restore_sparsity(3, history, sess) == 0.0  # a vocabulary-only plan
    skipped = type(on_restore_sparsity(4, history, sess))  # another model's plan is not restored
    assert skipped is type(on_restore_sparsity(9, history, sess)) and skipped.__name__ != "float"


# --- in the browser ---------------------------------------------------------------------------------------------

ERROR_BADGES = ("() => [...document.querySelectorAll('span.error')].filter(e => !e.classList.contains('toast-title')"
                " && e.textContent.trim() === 'Error').length")
"""Red "Error" badges over output components (not the message box's title)."""
RESULTS = ("() => [...document.querySelectorAll('#pl-text-original textarea, #pl-text-compressed textarea')]"
           ".map(t => t.value.trim()).join('|') + '|' + document.querySelector('#pl-wer').innerText.trim()")
"""The two transcripts and the summary line of Listen & compare."""
NO_RESULTS = f"() => ({RESULTS})() === '||'"
REFERENCE_SHOWN = "() => [...document.querySelectorAll('textarea')].some(t => t.value.includes('flowers'))"
"""clip1's reference text is in its box (the example has loaded)."""


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def browser_test(fn):
    """Marked ``browser``; skipped without Debian's chromium."""
    skip = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"Debian chromium is not installed at {CHROMIUM}")
    return pytest.mark.browser(skip(fn))


@contextlib.contextmanager
def page_of(browser, url: str):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(int(os.environ.get("PW_TIMEOUT_MS", "120000")))
    try:
        page.goto(url)
        page.get_by_text("compressible linear layers").first.wait_for()
        page.locator(".pl-layer-slider").first.wait_for()
        yield page
    finally:
        context.close()


def _pick_example(page, name: str) -> None:
    page.get_by_label("… or pick an example clip").click()
    page.get_by_role("option", name=name).click()


def _transcribe(page) -> None:
    page.get_by_role("button", name="Transcribe with both models").click()
    page.get_by_text("against the reference: original").first.wait_for()
    page.wait_for_function("() => document.querySelector('#pl-text-original textarea').value.trim() !== ''")


def _upload(page, path: Path) -> None:
    clear = page.locator("#pl-audio").get_by_role("button", name="Clear")
    if clear.count():  # an audio is in the player: the file box comes back once it is cleared
        clear.click()
    page.locator("#pl-audio input[type=file]").set_input_files(str(path))
    page.locator("#pl-audio").get_by_role("button", name="Clear").wait_for()  # the new audio is in the player


@browser_test
def test_listen_results_go_when_the_audio_changes(browser, server, tmp_path):
    with page_of(browser, server) as page:
        page.get_by_role("tab", name="Listen & compare").click()
        _pick_example(page, "clip1")
        page.wait_for_function(REFERENCE_SHOWN)
        _transcribe(page)
        # before any compress: the compressed column's Time box is one short line, shown whole
        shown = page.evaluate("() => [...document.querySelectorAll('input, textarea')].filter(e => "
                              "e.value.startsWith('No compressed model')).map(e => [e.value, e.scrollWidth <= "
                              "e.clientWidth + 1])")
        assert len(shown) == 1 and len(shown[0][0]) <= 30 and shown[0][1], shown  # was cut off: 88 characters
        # another example picked: clip1's transcripts and WER go at once (before Transcribe is pressed)
        _pick_example(page, "clip2")
        page.wait_for_function(NO_RESULTS, timeout=5000)
        _transcribe(page)
        # the audio cleared: the results go
        page.locator("#pl-audio").get_by_role("button", name="Clear").click()
        page.wait_for_function(NO_RESULTS, timeout=5000)
        # another file uploaded: the results of the clip before go
        _pick_example(page, "clip1")
        page.wait_for_function(REFERENCE_SHOWN)
        _transcribe(page)
        _upload(page, write_wav(tmp_path / "tone.wav", 0.2 * np.sin(np.arange(16000) * 0.1)))
        page.wait_for_function(NO_RESULTS, timeout=5000)


@browser_test
def test_listen_failure_reason_stays_on_the_page(browser, server, tmp_path):
    """A failed Transcribe: the reason stays in the summary line after the message box is gone, the result boxes
    are empty and carry no red Error badge."""
    clips = bad_clips(tmp_path)
    with page_of(browser, server) as page:
        page.get_by_role("tab", name="Listen & compare").click()
        for name in ("text renamed .wav", "empty", "too long"):
            path, word = clips[name]
            _upload(page, path)
            page.get_by_role("button", name="Transcribe with both models").click()
            page.wait_for_function("() => document.querySelector('#pl-wer').innerText.startsWith('Cannot transcribe:')")
            summary = page.locator("#pl-wer").inner_text()
            assert (word in summary or word in summary.lower()) and tempfile.gettempdir() + "/" not in summary, summary
            page.wait_for_function(f"() => ({ERROR_BADGES})() === 0", timeout=5000)
            assert page.evaluate(RESULTS) == "||" + summary
            for close in page.locator(".toast-close").all():  # the message box closed (or faded): the reason stays
                close.click()
            page.wait_for_timeout(300)
            assert page.locator("#pl-wer").inner_text() == summary


def every_k(sparsity: float, preset: str) -> dict[str, int]:
    """Every slider's K after "Set all sliders" at ``sparsity`` on ``preset`` (C where the preset does not apply)."""
    from prunelab import Plan

    layers = tiny_layers()
    plan = Plan.from_sparsity(layers, sparsity, preset)
    return {l.name: plan.clusters.get(l.name, l.channels) for l in layers}


def _slider_ks(page) -> dict[str, int]:
    return page.evaluate("() => Object.fromEntries([...document.querySelectorAll('.pl-layer-slider')].map(r => "
                         "[r.dataset.name, +r.querySelector('input[type=range]').value]))")


def _set_global(page, sparsity: float) -> None:
    box = page.locator("#pl-global-sparsity input[type=number]")
    box.fill(str(sparsity))
    box.press("Enter")


@browser_test
def test_tuning_failures_say_why_and_leave_no_error_badges(browser, server):
    with page_of(browser, server) as page:
        # Evaluate before any compress: the reason, no "Transcribing …" left, no Error badge on chart and list
        page.get_by_role("tab", name="Tuning history").click()
        page.get_by_role("button", name="Evaluate this plan").click()
        page.wait_for_function("() => document.querySelector('#pl-eval-result').innerText.startsWith('Not evaluated:')")
        assert "press Compress" in page.locator("#pl-eval-result").inner_text()
        page.wait_for_function(f"() => ({ERROR_BADGES})() === 0", timeout=5000)
        page.wait_for_timeout(500)
        assert "Transcribing" not in page.locator("#pl-eval-result").inner_text()

        # with a plan in the history, a failure keeps the chart and the list as they were
        page.get_by_role("tab", name="Compress").click()
        page.get_by_role("button", name="3 · Compress").click()
        page.get_by_text("Compressed with").first.wait_for()
        page.get_by_role("tab", name="Tuning history").click()
        page.get_by_role("button", name="Evaluate this plan").click()
        page.wait_for_function("() => document.querySelector('#pl-eval-result').innerText.startsWith('Plan #1')")
        chart = page.locator("img[alt^='Tuning history of']")
        chart.wait_for()
        before = chart.get_attribute("src")
        page.get_by_role("tab", name="Compress").click()
        _set_global(page, 0)
        page.get_by_role("tab", name="Tuning history").click()
        page.get_by_role("button", name="Add reference points").click()
        page.wait_for_function("() => document.querySelector('#pl-eval-result').innerText.startsWith('Not evaluated:')")
        page.wait_for_function(f"() => ({ERROR_BADGES})() === 0", timeout=5000)
        text = page.locator("#pl-eval-result").inner_text()
        assert "global sparsity above 0" in text and "history is unchanged (1 evaluated plan)" in text, text
        page.wait_for_timeout(500)
        assert "Transcribing" not in page.locator("#pl-eval-result").inner_text()
        assert chart.get_attribute("src") == before
        assert page.get_by_label("Evaluated plans").input_value().startswith("#1 ")


@browser_test
def test_restoring_a_plan_sets_the_global_sparsity_and_keeps_its_sliders(browser, server):
    with page_of(browser, server) as page:
        # plan #1: 50 % on the encoder FFN neurons, compressed and evaluated
        page.get_by_role("tab", name="Compress").click()
        _set_global(page, 0.5)
        page.get_by_role("button", name="Set all sliders").click()
        plan1 = every_k(0.5, "encoder-fc1")
        page.wait_for_function("e => Object.entries(e).every(([n, k]) => +document.querySelector("
                               "`.pl-layer-slider[data-name='${n}'] input[type=range]`).value === k)", arg=plan1)
        page.get_by_role("button", name="3 · Compress").click()
        page.get_by_text("Compressed with").first.wait_for()
        page.get_by_role("tab", name="Tuning history").click()
        page.get_by_role("button", name="Evaluate this plan").click()
        page.wait_for_function("() => document.querySelector('#pl-eval-result').innerText.startsWith('Plan #1')")

        # another plan on the sliders: uniform at 10 % (choosing a preset sets the sliders)
        page.get_by_role("tab", name="Compress").click()
        _set_global(page, 0.1)
        page.get_by_label("Apply to (preset)").click()
        page.get_by_role("option", name="Uniform (all layers)").click()
        uniform10 = every_k(0.1, "uniform")
        page.wait_for_function("e => Object.entries(e).every(([n, k]) => +document.querySelector("
                               "`.pl-layer-slider[data-name='${n}'] input[type=range]`).value === k)", arg=uniform10)

        # restore plan #1: the sliders AND the global sparsity come back, and the sliders stay plan #1's (the
        # server's value on the global slider is no release: it does not set every slider, here uniformly)
        page.get_by_role("tab", name="Tuning history").click()
        page.get_by_role("button", name="Restore this plan").click()
        page.wait_for_function("() => +document.querySelector('#pl-global-sparsity input[type=number]').value === 0.5")
        page.get_by_role("tab", name="Compress").click()
        page.wait_for_function("e => Object.entries(e).every(([n, k]) => +document.querySelector("
                               "`.pl-layer-slider[data-name='${n}'] input[type=range]`).value === k)", arg=plan1)
        page.wait_for_timeout(2000)
        assert _slider_ks(page) == plan1
        assert float(page.locator("#pl-global-sparsity input[type=number]").input_value()) == 0.5


@browser_test
def test_how_it_works_caption_and_diagram_follow_the_layer(browser, server):
    with page_of(browser, server) as page:
        page.get_by_role("tab", name="How it works").click()
        caption = page.locator("#pl-fold-caption")
        page.wait_for_function("() => document.querySelector('#pl-fold-caption').innerText.includes('FFN pair')")
        for label, caption_words, diagram_words in (
                ("enc.0.v", "value dims (enc.0.v → enc.0.out), head by head", "Folding value dims per head"),
                ("dec.0.q", "query/key dims (dec.0.q and dec.0.k), head by head", "Folding query/key dims per head"),
                ("enc.1.k", "Clustering in place (enc.1.k)", "Clustering in place")):
            page.get_by_label("Layer", exact=True).click()
            page.get_by_role("option", name=label, exact=False).first.click()
            page.wait_for_function("w => document.querySelector('#pl-fold-caption').innerText.includes(w)",
                                   arg=caption_words)
            page.wait_for_function("w => [...document.querySelectorAll('[data-testid=matplotlib] img')]"
                                   ".some(i => i.alt.startsWith(w))", arg=diagram_words)
            assert "FFN" not in caption.inner_text() and "fc1" not in caption.inner_text()
