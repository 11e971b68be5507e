"""``Plot``: Gradio's ``gr.Plot`` with a real alt text for screen readers.

Gradio draws a matplotlib figure as an ``<img>`` whose alt text is ``"{chart} plot visualising provided
data"``, and it never sets ``chart`` for matplotlib ("undefined plot visualising …"). :class:`Plot` fills it
from the figure itself (:func:`alt_text`: its titles and axis labels), so handlers keep returning plain
figures.
"""
from __future__ import annotations

from typing import Any

import gradio as gr
from gradio import processing_utils
from gradio.components.plot import PlotData


class DescribedPlotData(PlotData):
    chart: str


def alt_text(fig: Any, limit: int = 400) -> str:
    """What a figure shows, in words: each panel's title and axis labels (and the figure's legend title)."""
    parts = []
    for ax in getattr(fig, "axes", []):
        if ax.get_label() == "<colorbar>":
            continue
        title = " ".join(" ".join(ax.get_title(loc) for loc in ("left", "center", "right")).split())
        x, y = " ".join(ax.get_xlabel().split()), " ".join(ax.get_ylabel().split())
        axes = ", ".join(f"{n}: {v}" for n, v in (("x", x), ("y", y)) if v)
        if title or axes:
            parts.append(f"{title}{f' ({axes})' if axes else ''}")
    text = "; ".join(parts) or "Figure"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Plot(gr.Plot):
    """``gr.Plot`` whose matplotlib figures carry an alt text (:func:`alt_text`)."""

    def postprocess(self, value: Any) -> PlotData | None:
        from matplotlib.figure import Figure

        if isinstance(value, Figure):
            return DescribedPlotData(type="matplotlib", plot=processing_utils.encode_plot_to_base64(value, self.format),
                                     chart=f"{alt_text(value)} —")
        return super().postprocess(value)

    def get_block_name(self) -> str:
        return "plot"
