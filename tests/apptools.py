"""What the app tests share: a free port, the app served on it, a WAV writer for bad-input cases, and how the
browser tests start Debian's Chromium."""
from __future__ import annotations

import contextlib
import socket
import sys
import wave
from pathlib import Path
from typing import Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (never a downloaded browser)."""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
"""Headless flags of the browser tests: no sandbox (root in CI), no GPU, no background traffic."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(spec: str, **queue) -> Iterator[str]:
    """The app (``app.build_app``) with ``spec`` loaded at page load, on a free local port; yields its URL.
    ``queue``: ``demo.queue`` settings (default: two events at once)."""
    sys.path.insert(0, str(ROOT))
    import app

    demo = app.build_app(default_spec=spec)
    demo.queue(**(queue or {"default_concurrency_limit": 2}))
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                            quiet=True, **app.launch_kwargs())
    try:
        yield url
    finally:
        demo.close()


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """``samples`` (floats in [-1, 1]) as a 16-bit mono WAV at ``rate``."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path
