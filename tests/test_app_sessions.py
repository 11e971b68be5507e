"""Many people at once: sessions kept apart, compressed models bounded by bytes and rebuilt when set aside,
sessions that end release what they held, and a queue that tells a waiting user where they stand.

Several ``gradio_client`` sessions (each Client is its own session) drive one in-process server on the tiny
random Whisper; the shared stores of :mod:`ui.state` are then inspected directly. Transcripts of random
models are gibberish, but deterministic: they are compared with what the library gives for the same plan.
"""
from __future__ import annotations

import asyncio
import copy
import json
import re
import sys
import tempfile
import threading
import time
import uuid
import wave
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.utils import Status, StatusUpdate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from apptools import serve  # noqa: E402
from prunelab import CompressionConfig, Plan, compress, find_layers, load_model, transcribe  # noqa: E402
from prunelab.speech.audio import load_audio  # noqa: E402
from ui import session as ui_session  # noqa: E402
from ui import state  # noqa: E402
from ui.page import queue_kwargs  # noqa: E402

TINY = "tiny:whisper"


def _unique_clip() -> Path:
    """assets/clip1.wav with a few samples of silence added, so its upload is this run's own file: Gradio
    names an upload by its content, and another Gradio app on the machine deletes the same-named upload
    when it shuts down."""
    src = ROOT / "assets" / "clip1.wav"
    with wave.open(str(src), "rb") as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    path = Path(tempfile.mkdtemp(prefix="prunelab-test-")) / "clip1.wav"
    pad = 1 + uuid.uuid4().int % 64
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        w.writeframes(frames + b"\x00" * (pad * params.sampwidth * params.nchannels))
    return path


CLIP = _unique_clip()


@pytest.fixture(scope="module")
def server():
    with serve(TINY, **queue_kwargs()) as url:
        yield url


@pytest.fixture
def budget():
    """Set the compressed models' byte budget for one test, restored after. The test starts from an empty store:
    it is the process's one store, and app tests of other modules leave their sessions' models in it."""
    saved = state.COMPRESSED.max_bytes
    for key in state.COMPRESSED.keys():
        state.COMPRESSED.drop(key)

    def set_budget(nbytes: int) -> None:
        state.COMPRESSED.max_bytes = nbytes

    yield set_budget
    state.COMPRESSED.max_bytes = saved


def _session(url: str, sparsity: float, preset: str = "ffn") -> Client:
    client = Client(url, verbose=False)
    out = client.predict(TINY, sparsity, preset, api_name="/load_model")
    assert TINY in out[0]
    return client


def _reference(clusters: dict[str, int], method: str, seed: int, units: str = "channels") -> str:
    """What the library alone gives for this plan: the compressed model's transcript of the clip."""
    model = load_model(TINY)
    compressed = compress(model, CompressionConfig(method=method, plan=Plan(clusters), seed=seed, units=units))
    return transcribe(compressed, load_audio(str(CLIP)), 16000)


def _plan(client: Client, method: str, seed: int) -> dict:
    return json.loads(Path(client.predict(method, seed, api_name="/download_plan")).read_text())


async def _updates(job) -> list:
    """Every update the job received (statuses with their progress messages, outputs), in order."""
    return [u async for u in job]


def _compressed_text(client: Client) -> str:
    return client.predict(handle_file(str(CLIP)), "", api_name="/transcribe")[2]


# --- the stores, without a server -------------------------------------------------------------------------


def test_a_compressed_model_weighs_only_the_layers_it_replaced():
    model = load_model(TINY)
    layers = find_layers(model.model)
    fc1 = next(l for l in layers if l.kind == "fc1")
    one = compress(model, CompressionConfig(method="kmeans", plan=Plan({fc1.name: fc1.channels // 2}), fold=False))
    everything = sum(p.numel() * p.element_size() for p in model.model.parameters())
    replaced = one.model.get_submodule(fc1.name)
    new_bytes = sum(t.untyped_storage().nbytes() for t in [*replaced.parameters(), *replaced.buffers()])
    assert state.added_bytes(one, model) == new_bytes > 0
    assert new_bytes < everything / 20  # one layer of 32, at half its channels
    assert state.added_bytes(model, model) == 0
    # with its original gone from the store, a compressed model keeps every tensor alive: it weighs them all
    old_layer = sum(t.untyped_storage().nbytes() for t in model.model.get_submodule(fc1.name).parameters())
    assert state.added_bytes(one, None) == state.added_bytes(model, None) - old_layer + new_bytes
    full_copy = copy.deepcopy(model)  # shares nothing: weighs the whole model (tied embeddings counted once)
    assert state.added_bytes(full_copy, model) == sum(
        {p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in full_copy.model.parameters()}.values()
    ) + sum(b.untyped_storage().nbytes() for b in full_copy.model.buffers())


def test_compressed_store_is_bounded_by_bytes_and_keeps_the_newest():
    store = state.CompressedStore(max_bytes=100)
    store.put("a", "A", 40, owner="s1")
    store.put("b", "B", 40, owner="s2")
    assert store.nbytes == 80 and len(store) == 2
    store.get("a")  # "a" is now the most recent: "b" goes first
    store.put("c", "C", 40, owner="s1")
    assert "b" not in store and store.get("a") == "A" and store.get("c") == "C" and store.nbytes == 80
    assert store.evictions == 1
    store.put("c", "C2", 10, owner="s1")  # compressing again under the same key replaces it and its weight
    assert store.get("c") == "C2" and store.nbytes == 50
    store.put("huge", "H", 1000, owner="s3")  # larger than the budget on its own: kept, the others set aside
    assert store.get("huge") == "H" and len(store) == 1 and store.nbytes == 1000
    store.put("d", "D", 5, owner="s1")
    store.put("e", "E", 5, owner="s1")
    store.put("f", "F", 5, owner="s2")
    assert store.drop_owner("s1", keep="e") == 1 and "e" in store and "d" not in store
    assert store.drop_owner("s1") == 1 and store.owners() == {"s2"} and store.nbytes == 5
    assert store.drop("f") and not store.drop("f") and store.nbytes == 0


def test_forgetting_a_session_drops_its_model():
    store_key = "forget-me"
    state.COMPRESSED.put(store_key, "model", 1, owner=None)
    ui_session.forget_session(ui_session.Session(spec=TINY, compressed=store_key))
    assert store_key not in state.COMPRESSED
    ui_session.forget_session(None)  # a state that never held a session: nothing to do, no error


# --- several sessions against one server ----------------------------------------------------------------


def test_concurrent_sessions_see_only_their_own_plan_method_and_model(server):
    """Three users at once, each with their own sparsity, method and seed: every download, status and
    transcript is their own (and equals the library's result for their plan)."""
    users = [(0.25, "kmeans", 1), (0.5, "magnitude", 0), (0.75, "kmeans", 7)]
    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            sparsity, method, seed = users[i]
            client = _session(server, sparsity)
            status = client.predict(method, seed, api_name="/compress")[0]
            results[i] = {"status": status, "plan": _plan(client, method, seed), "text": _compressed_text(client),
                          "client": client}  # kept open: a Client collected ends its session (unload)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(users))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    model = load_model(TINY)
    layers = {l.name: l for l in find_layers(model.model)}
    for i, (sparsity, method, seed) in enumerate(users):
        got = results[i]
        assert got["plan"]["method"] == method and got["plan"]["seed"] == seed
        assert len(got["plan"]["clusters"]) == 8  # the FFN layers of the tiny Whisper
        for name, k in got["plan"]["clusters"].items():
            assert k == round(layers[name].channels * (1 - sparsity)), (i, name, k)
        label = "Structured magnitude" if method == "magnitude" else "k-means"
        assert label.lower() in got["status"].lower()
        assert got["text"] == _reference(got["plan"]["clusters"], method, seed), i
        assert got["client"].session_hash in state.COMPRESSED.owners()
    assert len({json.dumps(r["plan"]["clusters"], sort_keys=True) for r in results.values()}) == 3


def test_an_evicted_model_is_rebuilt_not_dropped(server, budget):
    """With room for one compressed model, a second user's Compress sets the first's aside; the first user's
    transcribe and download still work, on the same model rebuilt from their own plan, with no error."""
    first = _session(server, 0.5)
    first.predict("kmeans", 3, api_name="/compress")
    before = _compressed_text(first)
    budget(1)  # room for the newest model only
    evictions, rebuilds = state.COMPRESSED.evictions, state.COMPRESSED.rebuilds
    second = _session(server, 0.25, preset="uniform")
    second.predict("magnitude", 0, api_name="/compress")
    assert state.COMPRESSED.evictions == evictions + 1
    assert first.session_hash not in state.COMPRESSED.owners() and second.session_hash in state.COMPRESSED.owners()

    job = first.submit(handle_file(str(CLIP)), "", api_name="/transcribe")
    text_after = job.result(timeout=120)[2]
    assert text_after == before  # the same model as before it was set aside
    messages = [p.desc or "" for u in asyncio.run(_updates(job)) if isinstance(u, StatusUpdate)
                for p in (u.progress_data or [])]
    assert any(m.startswith("Rebuilding your compressed model") for m in messages), messages
    assert state.COMPRESSED.rebuilds == rebuilds + 1
    assert first.session_hash in state.COMPRESSED.owners()  # rebuilt under the first user's session
    assert second.session_hash not in state.COMPRESSED.owners()  # ... which set the second's aside in turn
    # the second user's work is not lost either, and stays theirs
    assert _compressed_text(second) == _reference(_plan(second, "magnitude", 0)["clusters"], "magnitude", 0)
    assert state.COMPRESSED.rebuilds == rebuilds + 2
    zip_path = first.predict(api_name="/download_model")  # rebuilt again for the download: still no error
    assert Path(zip_path).stat().st_size > 0


def test_a_session_holds_one_compressed_model(server):
    """Compressing again, or after loading the model anew (a new plan, a new key), replaces the session's model."""
    client = _session(server, 0.5)
    client.predict("kmeans", 0, api_name="/compress")
    client.predict("magnitude", 0, api_name="/compress")
    client.predict(TINY, 0.25, "ffn", api_name="/load_model")
    client.predict("kmeans", 1, api_name="/compress")
    assert len(state.COMPRESSED.keys(client.session_hash)) == 1
    client.close()


def test_closing_a_session_releases_its_model_and_files(server):
    leaving = _session(server, 0.5)
    staying = _session(server, 0.25)
    for client in (leaving, staying):
        client.predict("kmeans", 0, api_name="/compress")
        client.predict("kmeans", 0, api_name="/download_plan")
    owner = leaving.session_hash
    assert owner in state.COMPRESSED.owners()
    folders = list(state._FILE_OWNERS[owner])
    assert folders and all(f.exists() for f in folders)

    leaving.close()  # ends its heartbeat, as closing the browser tab does: Gradio runs the unload event
    deadline = time.time() + 30
    while owner in state.COMPRESSED.owners() and time.time() < deadline:
        time.sleep(0.2)
    assert owner not in state.COMPRESSED.owners()
    while any(f.exists() for f in folders) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(f.exists() for f in folders) and owner not in state._FILE_OWNERS
    # the other session keeps its model and files
    assert staying.session_hash in state.COMPRESSED.owners()
    assert all(f.exists() for f in state._FILE_OWNERS[staying.session_hash])
    assert _compressed_text(staying)


def test_a_waiting_user_sees_their_place_in_the_queue(server, monkeypatch):
    """Heavy events run one at a time: while one user compresses, another's Compress waits in the queue and
    its status says so, with its rank (and an estimated wait once the queue has timed a Compress)."""
    compress_tab = sys.modules["ui.tabs.compress"]
    release = threading.Event()
    started = threading.Event()
    real_compress = compress_tab.compress

    def held_compress(*args, **kwargs):
        started.set()
        release.wait(timeout=60)
        return real_compress(*args, **kwargs)

    busy, waiting = _session(server, 0.5), _session(server, 0.25)
    busy.predict("kmeans", 0, api_name="/compress")  # a Compress the queue has timed (for its estimate)
    monkeypatch.setattr(compress_tab, "compress", held_compress)
    try:
        first = busy.submit("kmeans", 1, api_name="/compress")
        assert started.wait(timeout=60)
        second = waiting.submit("kmeans", 0, api_name="/compress")
        deadline = time.time() + 30
        status = second.status()
        while status.code != Status.IN_QUEUE and time.time() < deadline:
            time.sleep(0.1)
            status = second.status()
        assert status.code == Status.IN_QUEUE and status.rank == 0 and status.queue_size >= 1
        assert status.eta is not None and status.eta > 0
        print(f"queued: rank {status.rank}, queue size {status.queue_size}, eta {status.eta:.1f} s")
        assert not first.done()
    finally:
        release.set()
    assert "Compressed with" in first.result(timeout=120)[0]
    assert "Compressed with" in second.result(timeout=120)[0]


def test_heavy_events_show_progress_and_the_queue_is_bounded():
    demo = app.build_app(default_spec=TINY)
    demo.queue(**queue_kwargs())
    assert demo._queue.max_size and demo._queue.max_size >= 32  # 16 users with one event each fit
    named = {fn.api_name: fn for fn in demo.fns.values() if fn.api_visibility == "public"}
    for name in ("compress", "transcribe", "load_model", "download_model"):
        assert named[name].concurrency_limit == 1 and named[name].show_progress != "hidden", name
    unload = [fn for fn in demo.fns.values() if any(t[1] == "unload" for t in fn.targets)]
    assert [fn.name for fn in unload] == ["end_session"]


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian chromium is not installed at {CHROMIUM}")
def test_in_the_browser_a_waiting_user_sees_the_queue_not_a_frozen_button(server, monkeypatch):
    """Three browser tabs press Compress while the first compression is held: the others' status shows their
    place in the queue ("queue: 1/2 …", "queue: 2/2 …"), and all three compress once it is let go."""
    sync_api = pytest.importorskip("playwright.sync_api")
    compress_tab = sys.modules["ui.tabs.compress"]
    release = threading.Event()
    real_compress = compress_tab.compress

    def held_compress(*args, **kwargs):
        release.wait(timeout=60)
        return real_compress(*args, **kwargs)

    monkeypatch.setattr(compress_tab, "compress", held_compress)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            pages = [browser.new_context(viewport={"width": 1440, "height": 1000}).new_page() for _ in range(3)]
            for page in pages:
                page.goto(server)
            for page in pages:
                page.get_by_text("compressible linear layers").first.wait_for(timeout=120_000)
            for page in pages:
                page.locator("#pl-compress-btn").click()
                page.wait_for_timeout(700)
            queued = []
            for page in pages[1:]:
                page.wait_for_function("() => /queue: \\d+\\/\\d+/.test(document.querySelector('#pl-status').innerText)",
                                       timeout=30_000)
                queued.append(re.search(r"queue: (\d+)/(\d+)", page.locator("#pl-status").inner_text()).groups())
            print("queue shown to the waiting tabs:", queued)
            assert [int(rank) for rank, _ in queued] == [1, 2]
            assert "queue:" not in pages[0].locator("#pl-status").inner_text()  # the first one is running
        finally:
            release.set()
        for page in pages:
            page.get_by_text("Compressed with").first.wait_for(timeout=120_000)
        browser.close()
