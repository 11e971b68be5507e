"""The Recover tab in a real browser (headless Debian Chromium, Playwright sync API), on the tiny random Whisper:
compress, repair on 8 clips of the bundled calibration set, the step line says "repaired"; then move a slider and
compress again: the line says "compressed" and the repair result is gone. A screenshot of the tab after repair goes
to a temporary folder (``PRUNELAB_SCREENSHOTS=DIR`` keeps it)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from apptools import CHROMIUM, CHROMIUM_ARGS, serve


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"Debian chromium is not installed at {CHROMIUM}"),
]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def page():
    with serve("tiny:whisper") as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1,
                                      color_scheme="light")
        pg = context.new_page()
        pg.set_default_timeout(int(os.environ.get("PW_TIMEOUT_MS", "120000")))
        pg.goto(url)
        pg.get_by_text("compressible linear layers").first.wait_for()
        pg.locator(".pl-layer-slider").first.wait_for()
        yield pg
        context.close()
        browser.close()


def _step(page) -> str:
    """The step line's own text: the markdown, not Gradio's status tracker beside it (whose timer, "0.0s", stays in
    the element's text for a moment while the tab's select event runs, even with its progress hidden)."""
    return page.locator('#pl-step [data-testid="markdown"]').inner_text()


def test_repair_then_compress_again_goes_back_to_compressed(page, tmp_path):
    page.get_by_role("button", name="3 · Compress").click()
    page.get_by_text("Compressed with").first.wait_for()

    page.get_by_role("tab", name="Recover").click()
    page.get_by_text("Model in use: compressed").first.wait_for()
    page.get_by_label("Calibration clips for Repair").click()
    page.get_by_role("option", name="8", exact=True).click()
    page.get_by_role("button", name="Repair the compressed model").click()
    page.get_by_text("Repaired on 8 clips").first.wait_for()
    page.get_by_text("Model in use: repaired").first.wait_for()
    assert "compressed → repaired → fine-tuned" in _step(page)
    page.wait_for_timeout(300)
    shots = Path(os.environ.get("PRUNELAB_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "screenshot-recover.png"), full_page=True)

    # one slider moved on the Compress tab, and Compress again: the repaired model is no longer in use
    page.get_by_role("tab", name="Compress").click()
    rng = page.locator(".pl-layer-slider").filter(has_text="enc.0.fc1").first.locator("input[type=range]")
    box = rng.bounding_box()
    page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + box["height"] / 2)
    page.get_by_role("button", name="3 · Compress").click()
    page.wait_for_function("() => !document.querySelector('#pl-step').innerText.includes('repaired**')"
                           " && document.querySelector('#pl-step').innerText.includes('Model in use: compressed')")
    page.get_by_role("tab", name="Recover").click()
    assert _step(page).startswith("Model in use: compressed")
    assert "Repaired on" not in page.locator("#pl-repair-result").inner_text()


def test_repair_with_neurons_rechosen_says_so_and_listen_uses_it(page):
    """Tick "Also choose which FFN neurons to keep": the result line says the neurons were re-chosen, and Listen &
    compare transcribes with the repaired model and says so beside the WER."""
    page.get_by_role("tab", name="Compress").click()
    page.get_by_role("button", name="3 · Compress").click()
    page.get_by_text("Compressed with").first.wait_for()
    page.get_by_role("tab", name="Recover").click()
    page.get_by_text("Model in use: compressed").first.wait_for()
    page.locator("#pl-select-units input[type=checkbox]").check()
    page.get_by_role("button", name="Repair the compressed model").click()
    page.get_by_text("were re-chosen from this audio").first.wait_for()
    assert _step(page).startswith("Model in use: repaired")

    page.get_by_role("tab", name="Listen & compare").click()
    page.get_by_label("… or pick an example clip").click()
    page.get_by_role("option").first.click()
    page.wait_for_function("() => document.querySelector('#pl-audio audio, #pl-audio [data-testid=\"waveform\"]')"
                           " !== null")
    page.get_by_role("button", name="Transcribe with both models").click()
    page.wait_for_function("() => document.querySelector('#pl-wer').innerText.includes('WER')")
    assert "compressed (repaired)" in page.locator("#pl-wer").inner_text()
