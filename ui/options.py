"""Method options in the app: a method's options dataclass shown as JSON, read back with readable errors.

Every registered method may have options (``Method.options``, a frozen dataclass: e.g. ``kmeans-fold``'s
compensation switches, ``predictive``'s ``merge``). The app shows the selected method's defaults as a small JSON
object the user edits; :func:`parse_options` turns it back into the dict ``CompressionConfig(options=...)`` takes,
and the library's own check (``Method.make_options``) names any unknown option or bad value.
"""
from __future__ import annotations

import json
from dataclasses import asdict

from .lib import METHODS, PrunelabError


def has_options(method: str) -> bool:
    """Whether ``method`` has any option to show."""
    m = METHODS.get(method)
    return m is not None and bool(asdict(m.options()))


def options_json(method: str) -> str:
    """The method's default options as one-line JSON (``"{}"`` for a method without options)."""
    m = METHODS.get(method)
    return json.dumps(asdict(m.options())) if m is not None else "{}"


def parse_options(method: str, text: str | None) -> dict:
    """The options typed for ``method`` as a dict; :class:`PrunelabError` with a readable message otherwise.

    Empty text means the defaults. Options of ANOTHER method (left in the box after the method changed) are
    refused by the library's check, which names the allowed ones."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise PrunelabError(f"Method options must be a JSON object like {options_json(method)}; "
                            f"this is not valid JSON ({e.msg} at character {e.pos}).") from None
    if not isinstance(value, dict):
        raise PrunelabError(f"Method options must be a JSON object like {options_json(method)}, "
                            f"not a {type(value).__name__}.")
    METHODS[method].make_options(value)  # raises a PlanError naming unknown options / bad values
    return value


__all__ = ["has_options", "options_json", "parse_options"]
