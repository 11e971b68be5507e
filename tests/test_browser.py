"""The app in a real browser: headless Debian Chromium driven by Playwright (sync API).

Loads the bundled Whisper-base, moves one layer's slider, compresses, transcribes an example clip and
checks that both transcripts appear. Takes two screenshots, screenshot.png (the first screen) and
screenshot-compare.png (the side-by-side transcripts), into a temporary folder; with
``PRUNELAB_SCREENSHOTS=docs`` it refreshes the tracked ``docs/*.png`` of the README instead (any other
value: that folder).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from apptools import CHROMIUM, CHROMIUM_ARGS, serve

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # loads the real Whisper-base
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"Debian chromium is not installed at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def url():
    with serve(os.environ.get("PRUNELAB_BROWSER_MODEL", "bundled:whisper-base")) as local_url:
        yield local_url


@pytest.fixture(scope="module")
def page(url):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1,
                                      color_scheme="light")
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        pg.goto(url)
        yield pg
        context.close()
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: a temporary folder, or docs/ (the README's images) when asked for."""
    wanted = os.environ.get("PRUNELAB_SCREENSHOTS", "").strip()
    folder = DOCS if wanted == "docs" else Path(wanted) if wanted else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait_text(page, selector: str, timeout_ms: int = 240_000) -> str:
    """Wait until the textarea under ``selector`` holds text; return it."""
    page.wait_for_function(
        "sel => { const t = document.querySelector(sel + ' textarea'); return t && t.value.trim().length > 0; }",
        arg=selector, timeout=timeout_ms)
    return page.locator(f"{selector} textarea").input_value()


def test_slider_compress_transcribe(page, shots):
    # the model loads on page load; its sliders are rendered per layer, grouped by part and block
    page.get_by_text("compressible linear layers").first.wait_for(timeout=180_000)
    page.get_by_text("Encoder · ").first.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "screenshot.png"))

    # everything back to K = C, then one slider moved: a quick one-layer compression
    global_box = page.locator("#pl-global-sparsity input[type=number]")
    global_box.fill("0")
    global_box.press("Enter")
    page.get_by_role("button", name="Set all sliders").click()
    page.get_by_text("0 of 96 layers compressed").first.wait_for()
    page.get_by_text("encoder block 0 · 6 layers · 0% sparse").first.wait_for()  # sliders rebuilt

    slider = page.locator(".pl-layer-slider").filter(has_text="enc.0.fc1").first
    slider.wait_for()
    rng = slider.locator("input[type=range]")
    before = int(rng.input_value())
    box = rng.bounding_box()
    page.mouse.click(box["x"] + 0.4 * box["width"], box["y"] + box["height"] / 2)  # move the knob to ~40 %
    page.wait_for_function("el => Number(el.value) < 2048", arg=rng.element_handle())
    after = int(rng.input_value())
    assert after < before
    page.get_by_text("1 of 96 layers compressed").first.wait_for()

    page.get_by_role("button", name="3 · Compress").click()
    page.get_by_text("Compressed with").first.wait_for(timeout=180_000)

    page.get_by_role("tab", name="Listen & compare").click()
    page.get_by_label("… or pick an example clip").click()
    page.get_by_role("option", name="clip1").click()
    reference = page.get_by_label("Reference text (what is really said; optional)")
    page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => t.value.includes('flowers'))")
    assert "flowers" in reference.input_value()
    page.get_by_role("button", name="Transcribe with both models").click()
    original = _wait_text(page, "#pl-text-original")
    compressed = _wait_text(page, "#pl-text-compressed")
    assert "flowers" in original.lower()
    assert compressed.strip()
    page.get_by_text("against the reference").first.wait_for()  # the WER summary under the transcripts
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "screenshot-compare.png"), full_page=True)
    assert (shots / "screenshot.png").stat().st_size > 10_000 and (shots / "screenshot-compare.png").stat().st_size > 10_000
