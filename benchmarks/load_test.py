"""Load test of the app: N users at once, each with their own plan, through the whole flow.

Each user is a ``gradio_client`` session (as a browser tab is): load the model with its own sparsity on
the encoder FFN neurons (``encoder-fc1``) and its own seed, compress, transcribe ``assets/clip1.wav`` with
both models, download the plan. All users start together and stay connected until every one has finished
(the worst case for memory). Then, in this process, each user's result is checked against the library
alone: the downloaded plan is the user's own, the parameter count in the Compress status is that of the
library's model for that plan, and the app's compressed transcript equals what ``prunelab.compress`` +
``prunelab.transcribe`` give for that plan (the original transcript too).

    python benchmarks/load_test.py --users 8                  # starts its own app (python app.py) on a free port
    python benchmarks/load_test.py --url http://127.0.0.1:7860/ --users 4   # an app already running

Prints one line per user, then a summary; the last line is
``users=N errors=E p50_s=… p95_s=… peak_rss_gb=…``: errors counts users whose flow failed or whose results
did not match their own plan; p50/p95 are the users' whole-flow times (seconds, from the common start);
peak_rss_gb the app process's peak resident memory (``VmHWM`` of /proc/PID/status: its whole life, model
loading included; found from the port when the app was not started here, ``nan`` when it cannot be).
Run it with ``OMP_NUM_THREADS=1`` on a shared machine: the app it starts inherits the environment.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's prunelab, as the app it starts (app.py at the root) imports
CLIP = ROOT / "assets" / "clip1.wav"
PRESET = "encoder-fc1"
METHOD = "kmeans"


def user_setting(i: int) -> tuple[float, int]:
    """User ``i``'s own sparsity on encoder-fc1 (10 %, 13 %, ... 55 %, then again: a distinct K per user up to 16,
    and transcripts that differ from one plan to another beyond ~40 %) and seed (``i``)."""
    return round(0.10 + 0.03 * (i % 16), 2), i


# --- the app process -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(spec: str, log: Path, wait_s: float = 600) -> tuple[subprocess.Popen, str]:
    """``python app.py`` on a free port with ``PRUNELAB_MODEL=spec``; returns the process and its URL once up."""
    port = _free_port()
    # Its own upload folder: Gradio names an upload by its content (every user's clip1.wav is one path) and an
    # app deletes the uploads it made when it shuts down, so another Gradio app on a shared machine sharing
    # the default folder (/tmp/gradio) would delete the clip under this one's queued users.
    uploads = tempfile.mkdtemp(prefix="prunelab-load-test-gradio-")
    env = dict(os.environ, PRUNELAB_MODEL=spec, PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1",
               GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", GRADIO_TEMP_DIR=uploads)
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}; see {log}")
        try:
            urllib.request.urlopen(url + "config", timeout=5).read()
            return proc, url
        except OSError:
            time.sleep(1)
    proc.kill()
    raise RuntimeError(f"the app did not answer on {url} within {wait_s:.0f} s; see {log}")


def pid_listening_on(port: int) -> int | None:
    """The id of the process listening on TCP ``port`` here (from /proc), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
                if m and m.group(1) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def peak_rss_gb(pid: int | None) -> float:
    """Peak resident memory of process ``pid`` in GB (``VmHWM``), ``nan`` when unknown."""
    if pid is None:
        return math.nan
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return math.nan
    m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 / 1e9 if m else math.nan


# --- the users -----------------------------------------------------------------------------------------


def run_user(i: int, url: str, spec: str, start: threading.Barrier, out: dict, clients: list) -> None:
    """One user's whole flow; ``out[i]`` gets its results (or its error) and its time from the common start."""
    from gradio_client import Client, handle_file

    sparsity, seed = user_setting(i)
    rec: dict = {"sparsity": sparsity, "seed": seed}
    out[i] = rec
    try:
        client = Client(url, verbose=False)
        clients.append(client)  # kept connected until every user is done (a closed client ends its session)
        start.wait()
        t0 = time.perf_counter()
        rec["t0"] = t0
        info = client.predict(spec, sparsity, PRESET, api_name="/load_model")[0]
        if spec not in info:
            raise RuntimeError(f"load_model answered {info[:120]!r}")
        status = client.predict(METHOD, seed, "channels", api_name="/compress")[0]
        if "Compressed with" not in status:
            raise RuntimeError(f"compress answered {status[:120]!r}")
        text_a, _, text_b, *_ = client.predict(handle_file(str(CLIP)), "", api_name="/transcribe")
        plan_path = client.predict(METHOD, seed, api_name="/download_plan")
        rec["plan"] = json.loads(Path(plan_path).read_text())
        m = re.search(r"→ ([\d.]+) M", status)
        rec["params_m"] = m.group(1) if m else status
        rec["original"], rec["compressed"] = text_a, text_b
        rec["seconds"] = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - every failure is counted and printed
        rec["error"] = f"{type(exc).__name__}: {exc}"


def check(results: dict, spec: str) -> None:
    """Compare every user's results with the library alone, for that user's own plan (sets ``rec['mismatch']``)."""
    from prunelab import CompressionConfig, Plan, compress, find_layers, load_model, size_report, transcribe
    from prunelab.compression import LayerCache
    from prunelab.speech.audio import load_audio

    model = load_model(spec)
    layers = find_layers(model.model)
    samples = load_audio(str(CLIP))
    original = transcribe(model, samples, 16000)
    cache = LayerCache()
    for i, rec in sorted(results.items()):
        if "error" in rec:
            continue
        expected = {name: k for name, k in Plan.from_sparsity(layers, rec["sparsity"], PRESET).clusters.items()
                    if k < next(l.channels for l in layers if l.name == name)}
        problems = []
        if rec["plan"].get("clusters") != expected or rec["plan"].get("seed") != rec["seed"]:
            problems.append("downloaded plan is not the user's own")
        compressed = compress(model, CompressionConfig(method=METHOD, plan=Plan(expected), seed=rec["seed"]),
                              cache=cache)
        rec["reference"] = transcribe(compressed, samples, 16000)
        if rec["params_m"] != f"{size_report(compressed).params / 1e6:.2f}":
            problems.append(f"compress status gives {rec['params_m']} M parameters, the library "
                            f"{size_report(compressed).params / 1e6:.2f} M")
        if rec["compressed"] != rec["reference"]:
            problems.append(f"compressed transcript {rec['compressed']!r} != library's {rec['reference']!r}")
        if rec["original"] != original:
            problems.append(f"original transcript {rec['original']!r} != library's {original!r}")
        if problems:
            rec["mismatch"] = "; ".join(problems)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; nan for no values."""
    if not values:
        return math.nan
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="an app already running (default: start one here on a free port)")
    ap.add_argument("--pid", type=int, help="the app's process id for its peak memory (default: found from the port)")
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--spec", default="bundled:whisper-base", help="the model each user loads")
    ap.add_argument("--no-check", action="store_true", help="skip comparing results with the library alone")
    ap.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "prunelab_load_test_app.log",
                    help="the started app's output (default: in the temp folder)")
    args = ap.parse_args(argv)

    proc = None
    if args.url:
        url, pid = args.url, args.pid
        if pid is None:
            port = int(re.search(r":(\d+)", url.split("//", 1)[-1]).group(1)) if re.search(r":(\d+)", url) else 80
            pid = pid_listening_on(port)
    else:
        t = time.perf_counter()
        proc, url = start_app(args.spec, args.log)
        pid = proc.pid
        print(f"app started at {url} (pid {pid}) in {time.perf_counter() - t:.1f} s", flush=True)
    try:
        results: dict[int, dict] = {}
        clients: list = []
        barrier = threading.Barrier(args.users)
        threads = [threading.Thread(target=run_user, args=(i, url, args.spec, barrier, results, clients))
                   for i in range(args.users)]
        wall = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - wall
        rss = peak_rss_gb(pid)
        for c in clients:
            c.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    if not args.no_check:
        check(results, args.spec)
    for i, rec in sorted(results.items()):
        what = rec.get("error") or rec.get("mismatch") or f"ok, compressed: {rec['compressed'][:70]!r}"
        sec = f"{rec['seconds']:.1f} s" if "seconds" in rec else "-"
        print(f"user {i:2d}: sparsity {rec['sparsity']:.2f} seed {rec['seed']:2d}  {sec:>8}  {what}")
    seconds = [rec["seconds"] for rec in results.values() if "seconds" in rec and "mismatch" not in rec]
    errors = sum(1 for rec in results.values() if "error" in rec or "mismatch" in rec)
    if proc is not None and args.log.is_file():
        rebuilt = args.log.read_text(errors="replace").count("rebuilt a set-aside compressed model")
        print(f"app log {args.log}: {rebuilt} compressed model(s) rebuilt after being set aside")
    checked = "not checked" if args.no_check else f"{len(seconds)}/{args.users} match their own plan"
    print(f"wall {wall:.1f} s for {args.users} users; {checked}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"users={args.users} errors={errors} p50_s={percentile(seconds, 0.5):.1f} "
          f"p95_s={percentile(seconds, 0.95):.1f} peak_rss_gb={rss:.2f}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
