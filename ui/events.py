"""Shared event settings and the error guard every handler wears.

Pass the settings with ``**``: ``button.click(fn, inputs, outputs, api_name="compress", **HEAVY)``.

* :data:`HEAVY`: CPU-heavy events (loading, clustering, transcribing) run one at a time, all users
  together, in one queue: on a small machine two at once only makes both slow.
* :data:`INSTANT`: small UI updates (a slider's text, a dropdown's help) that skip the queue, show no
  progress and are not part of the API.
* :data:`PRIVATE`: events that are not part of the API (``gradio_client`` users call the named ones).
"""
from __future__ import annotations

import functools
import os
import re
import tempfile
from types import MappingProxyType
from typing import Callable

import gradio as gr

from .lib import PrunelabError

HEAVY = MappingProxyType({"concurrency_id": "heavy", "concurrency_limit": 1})
INSTANT = MappingProxyType({"api_visibility": "private", "show_progress": "hidden", "queue": False})
PRIVATE = MappingProxyType({"api_visibility": "private"})


def _server_roots() -> list[str]:
    """Folders whose paths mean nothing to a visitor: the system temp folder (uploads) and Gradio's cache."""
    roots = {tempfile.gettempdir(), os.environ.get("GRADIO_TEMP_DIR", "")}
    return sorted((r.rstrip("/") for r in roots if r and r.strip("/")), key=len, reverse=True)


def hide_server_paths(text: str) -> str:
    """``text`` with every path under the server's temp folders cut to its file name (an upload's
    ``/tmp/gradio/3f…/clip.wav`` becomes ``clip.wav``)."""
    for root in _server_roots():
        text = re.sub(re.escape(root) + r"(?:/[^\s'\"/]+)*/([^\s'\"/]+)", r"\1", text)
    return text


def user_error(exc: Exception) -> gr.Error:
    """A library error as the message box the user sees (no server paths in it)."""
    return gr.Error(hide_server_paths(str(exc)), title="Cannot do that")


OUT_OF_MEMORY = "The server ran out of memory: try a smaller model, a shorter clip or fewer users at once."


def reason_of(check: Callable[[], object]) -> str | None:
    """Why ``check()`` raises, as the user reads it (no server paths), or None when it passes: what a chained
    failure event shows where the message box's text would otherwise be lost when the box fades."""
    try:
        check()
    except gr.Error as exc:
        return hide_server_paths(exc.message)
    except PrunelabError as exc:
        return hide_server_paths(str(exc))
    except MemoryError:
        return OUT_OF_MEMORY
    return None


def guard(fn: Callable) -> Callable:
    """Turn library errors (bad model id, audio, plan) into gr.Error messages; keep gr.Error as is."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except PrunelabError as exc:
            raise user_error(exc) from exc
        except MemoryError as exc:
            raise gr.Error(OUT_OF_MEMORY) from exc

    return wrapper
