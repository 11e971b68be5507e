"""The progress callback long operations accept: ``progress(done, total, message)``.

``compress()``, the sensitivity curves and the evaluation call it so that the CLI can print and the app
can show a progress bar; the library never depends on how it is shown.
"""
from __future__ import annotations

from typing import Callable

Progress = Callable[[int, int, str], None]
"""(steps done, steps in all, what is being done)"""
