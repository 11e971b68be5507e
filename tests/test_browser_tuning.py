"""The app as a tuning bench, in a real browser (headless Debian Chromium, Playwright sync API).

* "Set all sliders" is one round trip: the requests the page makes after the press are counted (the old
  app sent one per slider: 32 on the tiny Whisper, 92 on Whisper-base), and the time until every slider
  shows its new K is printed (targets: Whisper-base <= 1 s, a 512-layer model <= 3 s; sliders of that model
  visible <= 5 s after load). The bounds asserted are generous (loaded 2-core machine); the figures printed
  go to BENCHMARKS.md.
* No stale state: the compressed status, block headers, the global sparsity slider, the model box after a
  failed load, the WER line after an error, the example name after an upload.

The tiny random Whisper keeps most of these quick; Whisper-base and the generated 512-layer model are
marked slow.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from apptools import CHROMIUM, CHROMIUM_ARGS, serve, write_wav

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"Debian chromium is not installed at {CHROMIUM}"),
]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextlib.contextmanager
def open_page(browser, url: str, width: int = 1440, height: int = 1000):
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(int(os.environ.get("PW_TIMEOUT_MS", "120000")))
    try:
        page.goto(url)
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def tiny_url():
    with serve("tiny:whisper") as url:
        yield url


@pytest.fixture
def page(browser, tiny_url):
    with open_page(browser, tiny_url) as pg:
        pg.get_by_text("compressible linear layers").first.wait_for()
        pg.locator(".pl-layer-slider").first.wait_for()
        yield pg


def expected_k(spec: str, sparsity: float, preset: str) -> dict[str, int]:
    """Every layer's K after "Set all sliders" at ``sparsity`` on ``preset`` (C where the preset does not apply)."""
    from prunelab import Plan, find_layers
    from ui.state import get_model

    layers = find_layers(get_model(spec).model)
    plan = Plan.from_sparsity(layers, sparsity, preset)
    return {l.name: plan.clusters.get(l.name, l.channels) for l in layers}


def block_header(spec: str, sparsity: float, preset: str, part: str, block: int) -> str:
    """The title of a block after "Set all sliders": its layers and parameter-weighted sparsity."""
    from prunelab import Plan, find_layers
    from ui.state import get_model

    layers = [l for l in find_layers(get_model(spec).model) if l.part == part and l.block == block]
    plan = Plan.from_sparsity(layers, sparsity, preset)
    return f"{part} block {block} · {len(layers)} layers · {100 * plan.sparsity(layers):.0f}% sparse"


ALL_SLIDERS_AT = """expected => {
  const rows = [...document.querySelectorAll('.pl-layer-slider')];
  return rows.length === Object.keys(expected).length && rows.every(r => {
    const k = expected[r.dataset.name];
    return +r.querySelector('input[type=range]').value === k
        && r.querySelector('.pl-info').textContent.startsWith(`K = ${k} of`);
  });
}"""


def set_global(page, sparsity: float) -> None:
    box = page.locator("#pl-global-sparsity input[type=number]")
    box.fill(str(sparsity))
    box.press("Enter")


def press_set_all_and_count(page, expected: dict[str, int], timeout_ms: int = 60_000) -> tuple[int, float, list[str]]:
    """Press "Set all sliders"; return the requests the page made until every slider shows its K in
    ``expected`` (plus 1 s for stragglers), the seconds that took, and the requests' paths."""
    requests: list[str] = []
    listener = lambda r: requests.append(r.url.split("/gradio_api", 1)[-1])  # noqa: E731
    page.on("request", listener)
    t0 = time.perf_counter()
    page.get_by_role("button", name="Set all sliders").click()
    page.wait_for_function(ALL_SLIDERS_AT, arg=expected, timeout=timeout_ms, polling=20)
    seconds = time.perf_counter() - t0
    page.wait_for_timeout(1000)
    page.remove_listener("request", listener)
    return len(requests), seconds, requests


def test_set_all_sliders_is_one_round_trip(page):
    set_global(page, 0.5)
    page.locator("#pl-global-sparsity input[type=number]").blur()
    n, seconds, paths = press_set_all_and_count(page, expected_k("tiny:whisper", 0.5, "encoder-fc1"))
    print(f"\ntiny:whisper (32 layers): Set all sliders: {n} requests, {seconds:.2f} s until every slider shows "
          f"its new K: {paths}")
    assert n <= 5, paths  # was one request per slider (32 here)
    page.get_by_text(block_header("tiny:whisper", 0.5, "encoder-fc1", "encoder", 0)).first.wait_for()
    # a block the user opened stays open when the sliders are set again
    block1 = page.locator("details.pl-block").filter(has_text="encoder block 1").first
    assert block1.get_attribute("open") is None
    block1.locator("summary").click()
    page.wait_for_function("() => [...document.querySelectorAll('details.pl-block')].some(d => d.open && "
                           "d.dataset.title.startsWith('encoder block 1'))")
    set_global(page, 0.3)
    page.get_by_role("button", name="Set all sliders").click()
    page.wait_for_function(ALL_SLIDERS_AT, arg=expected_k("tiny:whisper", 0.3, "encoder-fc1"))
    page.wait_for_timeout(300)
    assert block1.evaluate("d => d.open")


@pytest.mark.slow
def test_set_all_sliders_whisper_base(browser):
    with serve("bundled:whisper-base") as url, open_page(browser, url) as page:
        page.get_by_text("96 compressible linear layers").first.wait_for(timeout=300_000)
        set_global(page, 0.5)
        page.get_by_label("Apply to (preset)").click()
        page.get_by_role("option", name="Uniform (all layers)").click()  # choosing a preset sets the sliders too
        page.wait_for_function(ALL_SLIDERS_AT, arg=expected_k("bundled:whisper-base", 0.5, "uniform"))
        set_global(page, 0.3)
        n, seconds, paths = press_set_all_and_count(page, expected_k("bundled:whisper-base", 0.3, "uniform"))
        print(f"\nWhisper-base (96 layers): Set all sliders: {n} requests, {seconds:.2f} s until every slider "
              f"shows its new K")
        assert n <= 5, paths  # target: <= 5 (was 92)
        assert seconds <= 5, seconds  # target 1 s; generous on a loaded 2-core machine


def make_many_layer_whisper(folder: Path, layers: int = 32, d_model: int = 64) -> Path:
    """A random-weight Whisper with ``layers`` encoder and ``layers`` decoder blocks (32 + 32: Whisper-large-v3's
    512 compressible linear layers) at a tiny width, saved as a transformers checkpoint with the real processor."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from prunelab.models.bundled import build_processor

    config = WhisperConfig(
        vocab_size=51865, num_mel_bins=80, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=4 * d_model,
        decoder_ffn_dim=4 * d_model, max_source_positions=1500, max_target_positions=448, pad_token_id=50257,
        bos_token_id=50257, eos_token_id=50257, decoder_start_token_id=50258)
    model = WhisperForConditionalGeneration(config)
    model.save_pretrained(folder)
    build_processor().save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_set_all_sliders_on_a_512_layer_model(browser, tmp_path):
    folder = make_many_layer_whisper(tmp_path / "whisper-32x32")
    spec = str(folder)
    with serve("tiny:whisper") as url, open_page(browser, url) as page:
        page.get_by_text("compressible linear layers").first.wait_for()
        box = page.get_by_label("1 · Model")
        box.fill(spec)
        t0 = time.perf_counter()
        page.get_by_role("button", name="Load model").click()
        page.get_by_text("512 compressible linear layers").first.wait_for(timeout=300_000)
        loaded = time.perf_counter() - t0
        page.wait_for_function("() => document.querySelectorAll('.pl-layer-slider').length === 512")
        visible = time.perf_counter() - t0
        set_global(page, 0.4)
        page.locator("#pl-global-sparsity input[type=number]").blur()
        n, seconds, paths = press_set_all_and_count(page, expected_k(spec, 0.4, "encoder-fc1"))
        # one arrow-key step on a slider: its text follows in the browser, without the server
        rng = page.locator(".pl-layer-slider").filter(has_text="enc.0.fc1").first.locator("input[type=range]")
        k0 = int(rng.input_value())
        t1 = time.perf_counter()
        rng.focus()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("k => [...document.querySelectorAll('.pl-layer-slider')].some(r => "
                               "r.querySelector('.pl-info').textContent.startsWith(`K = ${k} of`))", arg=k0 - 1)
        step = time.perf_counter() - t1
        print(f"\n512-layer Whisper (d_model 64): load + sliders shown {visible:.2f} s (model info after "
              f"{loaded:.2f} s); Set all sliders: {n} requests, {seconds:.2f} s until all 512 sliders show their new "
              f"K; one arrow-key step shown after {1000 * step:.0f} ms")
        assert n <= 5, paths
        assert seconds <= 9, seconds  # target 3 s
        assert visible - loaded <= 5, (visible, loaded)  # sliders follow the model info at once (target: 5 s)


# --- no stale state ------------------------------------------------------------------------------------------


def test_compressed_status_goes_stale_when_the_plan_changes(page):
    page.get_by_role("button", name="3 · Compress").click()
    page.get_by_text("Compressed with").first.wait_for()
    stale = page.locator("#pl-stale")
    assert "sliders changed" not in stale.inner_text()
    set_global(page, 0.6)
    page.get_by_role("button", name="Set all sliders").click()
    page.get_by_text("The sliders changed since you pressed Compress").wait_for()
    page.get_by_role("button", name="3 · Compress").click()
    page.wait_for_function("() => !document.querySelector('#pl-stale').innerText.includes('sliders changed')")
    # moving one slider by hand makes it stale too
    page.wait_for_timeout(500)  # as a person would: not within milliseconds of the status
    rng = page.locator(".pl-layer-slider").filter(has_text="enc.0.fc1").first.locator("input[type=range]")

    def arrow_left() -> None:
        rng.focus()
        page.keyboard.press("ArrowLeft")

    move_until_shown(page, arrow_left, "The sliders changed since you pressed Compress")


def sliders_rev(page) -> int:
    """The revision of the sliders on the page (a slider move is sent with it)."""
    return page.evaluate("() => +document.querySelector('.pl-sliders').dataset.rev")


def move_until_shown(page, move, text: str, attempts: int = 3) -> None:
    """Move a slider (``move()``) until ``text`` shows. A move is dropped by design when it was made on sliders
    that a reply already on its way replaces (entering the global sparsity can send one beside "Set all
    sliders"); that reply redraws them, so the move is made again. A move made on sliders that stay (the same
    revision) and never shows ``text`` fails the test."""
    for _ in range(attempts):
        drawn = sliders_rev(page)
        move()
        try:
            page.get_by_text(text).first.wait_for(timeout=30_000)
            return
        except sync_api.TimeoutError:
            assert sliders_rev(page) != drawn, f"a slider move on the current sliders never showed {text!r}"
    raise AssertionError(f"{text!r} never showed after {attempts} slider moves")


def test_block_header_and_plan_follow_a_moved_slider(page):
    set_global(page, 0)
    page.get_by_role("button", name="Set all sliders").click()
    page.get_by_text("0 of 32 layers compressed").first.wait_for()
    page.get_by_text("encoder block 0 · 6 layers · 0% sparse").first.wait_for()
    header = page.locator("details.pl-block > summary").filter(has_text="encoder block 0").first
    before = header.inner_text()
    assert before.endswith("% sparse")
    rng = page.locator(".pl-layer-slider").filter(has_text="enc.0.fc1").first.locator("input[type=range]")

    def click_at_ten_percent() -> None:
        page.get_by_text("encoder block 0 · 6 layers · 0% sparse").first.wait_for()  # (again after a redraw)
        before = header.inner_text()
        box = rng.bounding_box()
        page.mouse.click(box["x"] + 0.1 * box["width"], box["y"] + box["height"] / 2)  # K ~ 10 % of C
        page.wait_for_function("b => document.querySelector('details.pl-block > summary').innerText !== b",
                               arg=before)  # the block header follows in the browser
        assert int(rng.input_value()) < 60

    move_until_shown(page, click_at_ten_percent, "1 of 32 layers compressed")  # the server's plan summary


def test_global_sparsity_slider_sets_the_sliders(page):
    from ui.settings import DEFAULT_PRESET, DEFAULT_SPARSITY

    expected = expected_k("tiny:whisper", DEFAULT_SPARSITY, DEFAULT_PRESET)
    page.wait_for_function(ALL_SLIDERS_AT, arg=expected)  # as loaded
    rng = page.locator("#pl-global-sparsity input[type=range]")
    box = rng.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5 / 0.9, box["y"] + box["height"] / 2)  # ~0.5, released
    value = float(rng.input_value())
    assert 0.4 <= value <= 0.6
    page.wait_for_function(ALL_SLIDERS_AT, arg=expected_k("tiny:whisper", value, "encoder-fc1"))


def test_failed_model_load_puts_back_the_model_in_use(page):
    box = page.get_by_label("1 · Model")
    box.fill("tiny:nothing")
    page.get_by_role("button", name="Load model").click()
    page.get_by_text("Unknown model").first.wait_for()
    page.wait_for_function("() => document.querySelector('#pl-model-info').innerText.includes('tiny:whisper')")
    page.wait_for_function("() => [...document.querySelectorAll('input')].some(i => i.value === 'tiny:whisper')")
    assert box.input_value() == "tiny:whisper"


def pick_clip1(page) -> None:
    """On Listen & compare, pick the example clip1 and wait until its reference text is in its box."""
    page.get_by_role("tab", name="Listen & compare").click()
    page.get_by_label("… or pick an example clip").click()
    page.get_by_role("option", name="clip1").click()
    page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => t.value.includes('flowers'))")


def test_listen_example_wer_and_errors_leave_no_stale_results(page, tmp_path):
    pick_clip1(page)
    # the original transcribes alone before anything is compressed
    page.get_by_role("button", name="Transcribe with both models").click()
    page.get_by_text("against the reference: original").first.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('input, textarea')]"
                           ".some(t => t.value.startsWith('No compressed model'))")
    # another file uploaded: the example's name and its reference text go
    noise = write_wav(tmp_path / "noise.wav", 0.1 * np.random.default_rng(0).standard_normal(16000))
    page.locator("#pl-audio").get_by_role("button", name="Clear").click()
    page.locator("#pl-audio input[type=file]").set_input_files(str(noise))
    page.wait_for_function("() => ![...document.querySelectorAll('textarea')].some(t => t.value.includes('flowers'))")
    example = page.get_by_label("… or pick an example clip")
    assert "clip1" not in example.input_value()
    # an error: the previous WER line does not stay beside it
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000))
    page.locator("#pl-audio").get_by_role("button", name="Clear").click()
    page.locator("#pl-audio input[type=file]").set_input_files(str(silent))
    page.get_by_role("button", name="Transcribe with both models").click()
    page.get_by_text("silent").first.wait_for()
    assert "against the reference" not in page.locator("body").inner_text()


def test_narrow_screen_shows_every_tab_name_and_whole_dropdown_texts(browser, tiny_url):
    with open_page(browser, tiny_url, width=420, height=900) as page:
        page.locator(".pl-layer-slider").first.wait_for()
        for name in ("Compress", "See what changed", "Listen & compare", "Recover", "Tuning history", "How it works"):
            tab = page.get_by_role("tab", name=name)
            assert tab.is_visible(), name  # not folded into an overflow menu
            box = tab.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 420, (name, box)
            assert tab.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), name  # the name is not clipped
        cut = page.evaluate("() => [...document.querySelectorAll('input[role=listbox]')].filter(i => i.offsetParent)"
                            ".filter(i => i.scrollWidth > i.clientWidth + 1).map(i => i.value)")
        assert cut == []


def test_plan_upload_box_shows_its_whole_prompt(page):
    """The 'Restore sliders from a plan JSON' drop zone was 90 px tall, and its 'Click to Upload' line was cut off
    at the bottom (seen in Chromium): every line of the prompt must lie inside the visible box."""
    page.locator(".pl-layer-slider").first.wait_for()
    zone = page.locator("#pl-downloads").first.locator("button").filter(has_text="Click to Upload").first
    zone.scroll_into_view_if_needed()
    # the rectangles of the prompt's text lines themselves (a Range), against the drop zone's
    lines = zone.evaluate("""b => {
        const walk = document.createTreeWalker(b, NodeFilter.SHOW_TEXT), out = [], c = b.getBoundingClientRect();
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
            if (!n.textContent.trim()) continue;
            const r = document.createRange(); r.selectNodeContents(n); const t = r.getBoundingClientRect();
            out.push([n.textContent.trim(), t.top - c.top, c.bottom - t.bottom]);
        }
        return out; }""")
    assert any(text == "Click to Upload" for text, _, _ in lines), lines
    assert all(above >= -1 and below >= -1 for _, above, below in lines), lines


def test_plot_images_have_alt_text(page):
    page.get_by_role("button", name="3 · Compress").click()
    page.get_by_text("Compressed with").first.wait_for()
    page.get_by_role("tab", name="See what changed").click()
    page.locator("[data-testid=matplotlib] img").first.wait_for()
    alts = page.eval_on_selector_all("[data-testid=matplotlib] img", "imgs => imgs.map(i => i.alt)")
    assert alts and not any(a.startswith("undefined") for a in alts), alts
    assert any("layers" in a for a in alts), alts


def _choose_method(page, label: str) -> None:
    box = page.get_by_label("Method", exact=True)
    box.click()
    page.get_by_role("option", name=label).click()


def test_method_options_box_follows_the_method(page):
    """The Method options box appears, with the method's default switches, only for a method that has options;
    a unit-level method selects foldable units."""
    options = page.locator("#pl-options textarea")
    assert not options.is_visible()  # the paper's k-means has no options
    foldable = page.get_by_label("Foldable units: FFN neurons, attention value and query/key dims per head")
    assert not foldable.is_checked()
    _choose_method(page, "k-means fold with compensation switches (data-free)")
    options.wait_for(state="visible")
    page.wait_for_function("() => [...document.querySelectorAll('#pl-units input')].some(i => i.checked && "
                           "i.value === 'foldable')")  # a unit-level method needs foldable units: chosen for it
    page.wait_for_function("() => document.querySelector('#pl-options textarea').value.includes('mean_shift')")
    assert '"variance": false' in options.input_value() and '"ridge": 0.0' in options.input_value()
    _choose_method(page, "k-means clustering (paper)")
    options.wait_for(state="hidden")
    assert foldable.is_checked()  # the paper's k-means works on either: the user's choice stays


def test_vocabulary_choice_compresses_and_goes_stale_when_changed(page):
    """Choosing Latin-script tokens compresses the decoder vocabulary too (the status says how many tokens stay);
    choosing another vocabulary afterwards warns that the compressed model is the previous one. The choices say
    what share of the LOADED model's parameters they remove (not Whisper-base's)."""
    from prunelab.compression import vocabulary_savings
    from ui.state import get_model

    share = vocabulary_savings(get_model("tiny:whisper"))
    for script in ("latin", "ascii"):
        page.locator("#pl-vocab").get_by_text(f"−{100 * share[script]:.2f} % of this model").wait_for()
    assert "of Whisper-base" not in page.locator("#pl-vocab").inner_text()
    page.get_by_label("Latin-script tokens only", exact=False).check()
    page.get_by_role("button", name="3 · Compress").click()
    page.get_by_text("Decoder vocabulary: 43,007 of 51,865 tokens kept").wait_for()
    stale = page.locator("#pl-stale")
    assert "vocabulary choice changed" not in stale.inner_text()
    page.get_by_label("All tokens (every language)").check()
    page.get_by_text("The vocabulary choice changed since you pressed Compress").wait_for()
    # Listen & compare says which setting the compressed model no longer matches
    pick_clip1(page)
    page.get_by_role("button", name="Transcribe with both models").click()
    page.get_by_text("made before the vocabulary choice last changed").wait_for()
    assert "the sliders" not in page.get_by_text("made before the vocabulary choice").inner_text()
    page.get_by_role("tab", name="Compress").click()
    page.get_by_label("Latin-script tokens only", exact=False).check()
    page.wait_for_function("() => !document.querySelector('#pl-stale').innerText.includes('vocabulary choice')")
    # both changed: both warnings; the vocabulary put back: the sliders' warning stays
    set_global(page, 0.6)
    page.get_by_role("button", name="Set all sliders").click()
    page.get_by_text("The sliders changed since you pressed Compress").wait_for()
    page.get_by_label("ASCII tokens only", exact=False).check()
    page.get_by_text("The vocabulary choice changed since you pressed Compress").wait_for()
    assert "sliders changed" in stale.inner_text()
    page.get_by_label("Latin-script tokens only", exact=False).check()
    page.wait_for_function("() => !document.querySelector('#pl-stale').innerText.includes('vocabulary choice')")
    assert "sliders changed" in stale.inner_text()


def test_enter_in_the_global_sparsity_box_and_arrow_keys_apply_it(page):
    """Gradio's slider applies its value only on blur or pointer up: typing 0.5 + Enter left the sliders as
    they were (a Compress right after used the old plan), and arrow keys on the range never applied."""
    from ui.settings import DEFAULT_PRESET

    box = page.locator("#pl-global-sparsity input[type=number]")
    box.fill("0.5")
    box.press("Enter")
    page.wait_for_function(ALL_SLIDERS_AT, arg=expected_k("tiny:whisper", 0.5, DEFAULT_PRESET))
    rng = page.locator("#pl-global-sparsity input[type=range]")
    rng.focus()
    rng.press("ArrowRight")
    assert float(rng.input_value()) == pytest.approx(0.55)
    page.wait_for_function(ALL_SLIDERS_AT, arg=expected_k("tiny:whisper", 0.55, DEFAULT_PRESET))


def visible_error_badges(page) -> int:
    """Gradio's red "Error" marks on components (left on an event's outputs when the event fails); the message
    box (toast) with the reason is not one."""
    return page.evaluate("""() => [...document.querySelectorAll('span, div')].filter(e =>
        e.childElementCount === 0 && e.textContent.trim() === 'Error' && e.offsetParent !== null
        && !String(e.className).includes('toast')).length""")


def test_a_refused_plan_file_leaves_every_control_usable(page, tmp_path):
    """A plan file naming an unknown layer was refused in the event that restores the sliders and the method, so
    Gradio marked both with "Error" and the Method dropdown could not be clicked until the mark was closed."""
    bad = tmp_path / "bad_plan.json"
    bad.write_text('{"hello": 1}')
    page.locator("#pl-downloads input[type=file]").last.set_input_files(str(bad))
    page.get_by_text("which this model does not have").first.wait_for()
    assert visible_error_badges(page) == 0
    page.get_by_role("combobox", name="Method").click(timeout=10_000)
    page.get_by_role("option", name=re.compile("Structured magnitude")).click(timeout=10_000)
    page.wait_for_function("() => document.body.innerText.includes('keep the K channels')"
                           " || document.body.innerText.toLowerCase().includes('largest')")
    assert visible_error_badges(page) == 0


def test_a_method_changed_after_compress_is_flagged_until_it_is_put_back(page):
    page.get_by_role("button", name="3 · Compress").click()
    page.get_by_text("Compressed with").first.wait_for()
    page.get_by_role("combobox", name="Method").click()
    page.get_by_role("option", name=re.compile("Structured magnitude")).click()
    page.get_by_text("The method changed since you pressed Compress").wait_for()
    page.get_by_role("combobox", name="Method").click()
    page.get_by_role("option", name=re.compile("k-means clustering")).first.click()
    page.wait_for_function("() => !document.querySelector('#pl-stale').innerText.includes('method changed')")
    page.locator("#pl-stale").get_by_text("changed since", exact=False).wait_for(state="detached")


def test_loading_another_model_clears_the_previous_models_results(page):
    """After a model switch, See what changed still showed the old model's sizes and charts and Listen &
    compare its transcripts and WER."""
    page.get_by_role("button", name="3 · Compress").click()
    page.get_by_text("Compressed with").first.wait_for()
    pick_clip1(page)
    page.get_by_role("button", name="Transcribe with both models").click()
    page.get_by_text("against the reference: original").first.wait_for()
    page.get_by_role("tab", name="See what changed").click()
    in_sizes = "() => document.body.textContent.includes('FFN pairs folded')"  # the Sizes table's last row
    page.wait_for_function(in_sizes)
    page.get_by_role("tab", name="Compress").click()
    page.get_by_label("1 · Model").fill("tiny:ctc")
    page.get_by_role("button", name="Load model").click()
    page.wait_for_function("() => document.querySelector('#pl-model-info').innerText.includes('tiny:ctc')")
    page.get_by_role("tab", name="Listen & compare").click()
    page.wait_for_function("() => !document.body.innerText.includes('against the reference: original')"
                           " && document.querySelector('#pl-text-original textarea').value === ''"
                           " && document.querySelector('#pl-text-compressed textarea').value === ''")
    page.get_by_role("tab", name="See what changed").click()
    page.wait_for_function(f"() => !({in_sizes})()")
