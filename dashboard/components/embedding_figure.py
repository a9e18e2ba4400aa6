"""The Embeddings page's scatter: projected points coloured by a column, with a user's points
marked on top (built from arrays, so it is testable without Streamlit)."""

from __future__ import annotations

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from dashboard.services.embeddings import OTHER_GENRES

CATEGORICAL = {"genre", "cluster"}
LOG_SCALE = {"popularity", "activity"}  # long-tailed counts: a log colour scale shows the body
MARK_COLOUR = "crimson"
#: The items outside the coloured genre: a pale background the genre stands out from.
BACKGROUND = {"color": "#c8c8c8", "opacity": 0.5}


def count_ticks(largest: float) -> np.ndarray:
    """Colour-bar ticks for a count drawn on a log scale: 0, 1, 3, 10, 30, 100, ... up to
    `largest`, so the bar reads in ratings rather than in logarithms."""
    steps = [m * 10**e for e in range(15) for m in (1, 3)]
    return np.array([0] + [t for t in steps if t <= max(largest, 1)], np.int64)


def palette(n: int) -> list[str]:
    colours = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.Alphabet
    return [colours[i % len(colours)] for i in range(n)]


def user_marks(user_id: str, what: str, dims: int, marks: dict) -> list[dict]:
    """Highlight traces for one user (`marks` from ``dashboard.services.embeddings.embedding_user_marks``): in the item
    view their history (open circles) and the model's top-10 (diamonds), in the user view their
    own point. ``{"name", "index", "marker"}`` each, for `build_figure`.

    The open circle's colour is its outline: WebGL scatter (2D) draws an open symbol's border in
    ``marker.color`` and ignores ``marker.line.color``, so a transparent colour hid the history
    in 2D (and its legend symbol) while 3D still showed it.
    """
    big = dims == 2
    if what == "users":
        return [{"name": f"user {user_id}", "index": [marks["user_idx"]],
                 "marker": {"size": 14 if big else 7, "color": MARK_COLOUR, "symbol": "diamond"}}]  # fmt: skip
    return [
        {"name": f"user {user_id}: history", "index": marks["history"],
         "marker": {"size": 10 if big else 5, "color": "black", "symbol": "circle-open",
                    "line": {"color": "black", "width": 2 if big else 1}}},
        {"name": f"user {user_id}: top-10", "index": marks["recommendations"],
         "marker": {"size": 12 if big else 6, "color": MARK_COLOUR, "symbol": "diamond",
                    "line": {"color": "white", "width": 1}}},
    ]  # fmt: skip


def build_figure(coords, labels, values, colour: str, marks: list[dict], axis_titles: list[str],
                 shown=None) -> go.Figure:
    """WebGL scatter (2D) or 3D scatter of `coords`, coloured by `values`, with highlight traces.

    Every trace carries the point index as customdata, so a selection maps back to points
    whichever trace it hits. A numeric colour has its colour bar on the right; the legend (the
    highlights) then lies flat above the plot, so the two never overlap. `shown` (a boolean mask)
    keeps only some points in the coloured layer; the highlights are drawn whatever it says.
    A genre's points (values `OTHER_GENRES` for the rest) are drawn over a pale background.
    """
    dims = coords.shape[1]
    trace = go.Scattergl if dims == 2 else go.Scatter3d
    size = 5 if dims == 2 else 2.5
    idx = np.arange(len(coords))
    shown = np.ones(len(coords), bool) if shown is None else np.asarray(shown, bool)

    def points(sel, **kwargs):
        xyz = {"x": coords[sel, 0], "y": coords[sel, 1]}
        if dims == 3:
            xyz["z"] = coords[sel, 2]
        return trace(
            mode="markers", customdata=idx[sel], text=labels[sel], hovertemplate="%{text}<extra></extra>",
            **xyz, **kwargs,
        )  # fmt: skip

    fig = go.Figure()
    legend = {"itemsizing": "constant"}
    if colour in CATEGORICAL:
        other = shown & (np.asarray(values, object) == OTHER_GENRES)
        if other.any():  # underneath the genre, pale
            fig.add_trace(points(other, name=OTHER_GENRES, marker={"size": size, **BACKGROUND}))
        cats, counts = np.unique(np.asarray(values)[shown & ~other], return_counts=True)
        cats = cats[np.argsort(-counts, kind="stable")]
        for cat, col in zip(cats, palette(len(cats))):
            name = f"cluster {cat}" if colour == "cluster" else str(cat)
            opacity = 0.9 if other.any() else 0.75  # one genre over the pale rest: strong
            marker = {"size": size, "color": col, "opacity": opacity}
            fig.add_trace(points(shown & (values == cat), name=name, marker=marker))
    else:
        numeric = np.asarray(values, np.float64)
        known = np.isfinite(numeric)
        bar = {"title": {"text": colour, "side": "right"}, "thickness": 12, "x": 1.0, "xanchor": "left"}
        scale = numeric
        if colour in LOG_SCALE:
            scale = np.log10(1 + numeric)
            ticks = count_ticks(numeric[known].max() if known.any() else 0)
            bar.update(title={"text": f"{colour} (log scale)", "side": "right"}, tickvals=np.log10(1 + ticks).tolist(),
                       ticktext=[f"{t:,}" for t in ticks])  # fmt: skip
        coloured = shown & known
        marker = {"size": size, "color": scale[coloured], "colorscale": "Viridis", "opacity": 0.75, "colorbar": bar}
        fig.add_trace(points(coloured, name=colour, marker=marker, showlegend=False))
        if (shown & ~known).any():
            fig.add_trace(points(shown & ~known, name=f"unknown {colour}", marker={"size": size, "color": "lightgrey"}))
        legend.update(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom")
    for mark in marks:
        sel = np.zeros(len(coords), bool)
        sel[mark["index"]] = True
        if sel.any():
            fig.add_trace(points(sel, name=mark["name"], marker=mark["marker"]))
    layout = {"height": 640, "margin": {"l": 0, "r": 0, "t": 40, "b": 0}, "legend": legend,
              "dragmode": "lasso" if dims == 2 else "orbit"}  # fmt: skip
    if dims == 2:
        fig.update_layout(xaxis_title=axis_titles[0], yaxis_title=axis_titles[1], **layout)
    else:
        fig.update_layout(scene={f"{a}axis_title": t for a, t in zip("xyz", axis_titles)}, **layout)
    return fig
