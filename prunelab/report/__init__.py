"""What prunelab shows people: sizes before and after (:mod:`.size`) and matplotlib figures (:mod:`.plots`,
built without pyplot, so they are thread-safe and never leak). ``plots`` imports matplotlib, so it is
not imported here: ``from prunelab.report import plots`` when figures are wanted.
"""
from __future__ import annotations

from .size import SizeReport, format_size_table, size_report, size_rows

__all__ = ["SizeReport", "format_size_table", "size_report", "size_rows"]
