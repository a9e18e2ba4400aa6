"""Plotly layout and figures shared by the pages' charts: tight margins, readable log axes,
training curves."""

from __future__ import annotations

import plotly.express as px

#: Room above the plot for a figure's own title; without one the page's heading is the title.
TITLE_MARGIN = 40
EDGE_MARGIN = 8


def tight(fig, *, height: int = 320):
    """Plotly's default margins (100 px on top, 80 below) put a band of blank space between a
    page heading and its chart: keep only what the title and the axis labels need."""
    top = TITLE_MARGIN if fig.layout.title.text else EDGE_MARGIN
    fig.update_layout(height=height, margin={"t": top, "b": EDGE_MARGIN, "l": EDGE_MARGIN, "r": EDGE_MARGIN})
    fig.update_xaxes(automargin=True)  # the margins grow to fit the tick and axis labels
    fig.update_yaxes(automargin=True)
    return fig


def log_ticks(fig, axis: str = "y"):
    """A log axis labelled at the powers of ten only, as 1, 10, 100, 1k: Plotly's default also
    labels 2 and 5 of each decade, which reads "1, 2, 5, 10, 2, 5, 100"."""
    update = fig.update_yaxes if axis == "y" else fig.update_xaxes
    update(type="log", dtick=1, tickformat="~s")
    return fig


def from_zero(values) -> list[float] | None:
    """A y range from 0 to a little above the highest value: Plotly pads a single point to a
    range such as -0.5 to 1, which reads as if the metric could be negative. None (Plotly's own
    range) where a value is negative."""
    if values.min() < 0:
        return None
    return [0.0, max(float(values.max()) * 1.15, 1e-3)]


def epoch_curve(table, y: str, title: str, span: list[float], color: str | None = None):
    """A training curve: `y` per epoch of `table` (one line per `color` group), markers on the
    points, x over the whole planned run (`span`, so the curve also shows how far training has
    got) and y from zero (`from_zero`)."""
    fig = px.line(table, x="epoch", y=y, color=color, markers=True, title=title, range_x=span,
                  range_y=from_zero(table[y]))  # fmt: skip
    return tight(fig)
