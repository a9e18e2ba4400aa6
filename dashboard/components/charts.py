"""Plotly layout and figures shared by the pages' charts: tight margins, readable log axes,
training curves."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go

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


def epoch_step(width: float, ticks: int = 10) -> int:
    """A round step between epoch ticks giving at most about `ticks` of them, never below one:
    Plotly's own ticks on a short run read 0.6, 0.8, 1, 1.2 (there is no epoch 1.2)."""
    return next((s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if s * ticks >= width), 10000)


#: Axis, legend and hover words of the training curves: the table's column names are code.
CURVE_LABELS = {"loss": "loss", "val_ndcg@10": "NDCG@10", "phase": "fit"}


def epoch_curve(table, y: str, title: str, span: list[float], color: str | None = None,
                kept_epoch: int | None = None):
    """A training curve: `y` per epoch of `table` (one line per `color` group), markers on the
    points, x over the whole planned run (`span`, so the curve also shows how far training has
    got) and y from zero (`from_zero`). `kept_epoch`, where given, is marked by a dashed
    vertical line labelled "kept: epoch N" (the weights the run kept)."""
    fig = px.line(table, x="epoch", y=y, color=color, markers=True, title=title, range_x=span,
                  range_y=from_zero(table[y]), labels=CURVE_LABELS)  # fmt: skip
    fig.update_xaxes(tick0=0, dtick=epoch_step(span[1] - span[0]))
    if kept_epoch is not None:
        # The label on the side with more room, so it is not cut at the plot's edge.
        side = "right" if kept_epoch <= (span[0] + span[1]) / 2 else "left"
        fig.add_vline(x=kept_epoch, line_dash="dash", line_color="grey", line_width=1.5,
                      annotation_text=f"kept: epoch {kept_epoch}", annotation_position=f"top {side}")  # fmt: skip
    return tight(fig)


#: Height of one run's row in a horizontal bar chart, and the room for the axes and legend.
ROW_HEIGHT = 34
AXES_HEIGHT = 90
#: Pixels per character of a bar's printed number (Plotly's 12 px text).
DIGIT_WIDTH = 7


def ranked_order(table, column: str, label: str = "run") -> list[str]:
    """The `label`s of `table` from the highest `column` to the lowest."""
    return table.sort_values(column, ascending=False, kind="stable")[label].tolist()


def ranked_bars(table, label: str, values: list[str], *, order: list[str] | None = None, value_label: str = "",
                text_format: str = ".3f"):
    """Horizontal bars, one row per `label` and one bar per column of `values`, each with its
    number printed at its end. Rows run best first from the top (`ranked_order` of the first
    column) unless `order` gives them: read across, run names stay whole where a vertical
    chart's tilted labels were cut, and "which run is best" is the top row."""
    present = set(table[label])
    order = [run for run in (order or ranked_order(table, values[0], label)) if run in present]
    long = table.melt(id_vars=[label], value_vars=values, var_name="metric", value_name="value").dropna()
    fig = px.bar(long, x="value", y=label, color="metric", barmode="group", orientation="h",
                 text_auto=text_format, category_orders={label: order, "metric": values[::-1]},
                 labels={label: "", "value": value_label})  # fmt: skip
    # Plotly stacks a group's bars from the bottom: the metrics go in reversed so the first is
    # on top of each group, and the legend is reversed back to list it first too.
    fig.update_traces(textposition="outside", cliponaxis=False)
    # The legend lies flat above the bars: at its default place, right of the plot, it took a
    # third of a half-width chart on a 1024-pixel projector.
    fig.update_layout(legend_title_text="", legend_traceorder="reversed", showlegend=len(values) > 1,
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1, "yanchor": "bottom"})
    fig.update_xaxes(range=from_zero(long["value"]))  # room for the printed numbers
    rows = len(order) * max(1.0, len(values) / 2)
    fig = tight(fig, height=int(AXES_HEIGHT + ROW_HEIGHT * rows))
    # The longest bar's number is printed past the axis end: in a narrow column the axis range's
    # 15% headroom alone left "54.07" cut at the figure's edge. The margin keeps room for it.
    longest = max((len(format(v, text_format)) for v in long["value"]), default=0)
    fig.update_layout(margin_r=EDGE_MARGIN + DIGIT_WIDTH * longest)
    return fig


def overlap_histogram(shares, k: int):
    """How many users share each fraction of two top-`k` lists: one bar per possible count
    (0, 1/k, ..., 1), labelled in percent to match the page's "mean overlap" figure."""
    fig = px.histogram(x=shares, labels={"x": f"share of the two top-{k} lists in common"})
    fig.update_traces(xbins={"start": -0.5 / k, "end": 1 + 0.5 / k, "size": 1 / k})
    fig.update_xaxes(tickformat=".0%", dtick=0.1 if k >= 10 else 1 / k, range=[-0.5 / k, 1 + 0.5 / k])
    fig.update_yaxes(title_text="users")
    return tight(fig, height=280)


#: Shares of filled pairs labelled on the matrix picture's colour bar.
FILL_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def matrix_picture(blocks: dict):
    """The users x items matrix from afar (`engine.data.stats.matrix_blocks`): one cell per
    block of users (most active at the top) and items (most popular on the left), darker where
    more of its pairs have an interaction, white where none has: the colour is the share itself
    (a square-root scale tinted the whole matrix and hid how empty it is)."""
    filled, users, items = blocks["filled"], blocks["user_edges"], blocks["item_edges"]
    top = max(float(filled.max()), 1e-9)
    ticks = [t for t in FILL_TICKS if t <= top]
    ticks += [top] if top - ticks[-1] > 0.1 else []  # the darkest cell's share, unless a tick is close
    hover = [[f"users {users[r]:,}-{users[r + 1] - 1:,} by activity<br>items {items[c]:,}-{items[c + 1] - 1:,}"
              f" by popularity<br>{filled[r, c]:.1%} of the pairs filled" for c in range(filled.shape[1])]
             for r in range(filled.shape[0])]  # fmt: skip
    fig = go.Figure(go.Heatmap(
        z=filled, x=items[:-1], y=users[:-1], colorscale="Blues", zmin=0, zmax=top,
        text=hover, hovertemplate="%{text}<extra></extra>",
        colorbar={"title": {"text": "pairs filled", "side": "right"}, "thickness": 12,
                  "tickvals": ticks, "ticktext": [f"{t:.0%}" for t in ticks]},
    ))  # fmt: skip
    fig.update_yaxes(autorange="reversed", title="users, most active first")
    fig.update_xaxes(title="items, most popular first")
    return tight(fig, height=300)


#: The reference series of a share chart (a user's history, chance, what users chose): grey,
#: not a model's colour.
REFERENCE_GREY = "#8a8a8a"


def grey_row(fig, row: str):
    """One row of a `ranked_bars` chart in grey, every metric's bar: a reference such as chance,
    not a run. The row should come last in the chart's table, as the legend takes each metric's
    colour from its first bar."""
    for trace in fig.data:
        trace.marker.color = [REFERENCE_GREY if y == row else trace.marker.color for y in trace.y]
    return fig


def share_bars(table, label: str, values: list[str], reference: str, *, value_label: str = "share of the items"):
    """Shares (0-1) as grouped horizontal bars (`ranked_bars`), one group per `label` in the
    table's order, printed in percent, the `reference` column (one of `values`) in grey and the
    others each in its own colour: a genre profile against a user's history, genres against
    chance, two runs against what users chose."""
    fig = ranked_bars(table, label, values, order=table[label].tolist(), value_label=value_label, text_format=".0%")
    fig.update_traces(marker_color=REFERENCE_GREY, selector={"name": reference})
    return fig.update_xaxes(tickformat=".0%")


#: Where each interaction went, in the colours of the glossary's pictures
#: (tools/glossary_figures.py): train blue, validation amber, the test item green as its badge.
SPLIT_COLOURS = {"train": "#4c78a8", "validation": "#f2a541", "test": "#3a9d5d"}
SPLIT_NAMES = {"train": "train: the models learn from it", "validation": "validation: picks settings and when to stop",
               "test": "test: the item to find"}  # fmt: skip
#: Longest title written beside the validation and test dots; the hover has the whole one.
LABEL_CHARS = 34


def split_timeline(history):
    """One user's history (`engine.explore.views.user_history`, newest first) as a strip of
    dots oldest first, each coloured by the split it went to; the validation and test items
    larger and named. What leave-last-out does, on real data."""
    ordered = history.iloc[::-1]
    position = list(range(1, len(ordered) + 1))
    fig = go.Figure()
    for split, colour in SPLIT_COLOURS.items():
        mine = [n for n, s in enumerate(ordered["split"]) if s == split]
        if not mine:
            continue
        titles = ordered["title"].iloc[mine].astype(str).tolist()
        fig.add_trace(go.Scatter(
            x=[position[n] for n in mine], y=[0] * len(mine), mode="markers", name=SPLIT_NAMES[split],
            marker={"color": colour, "size": 9 if split == "train" else 16, "line": {"width": 0}},
            text=titles, hovertemplate="%{text}<br>interaction %{x}<extra>" + split + "</extra>",
        ))  # fmt: skip
        if split != "train":  # the held-out items named, above (test) and below (validation) the strip
            short = titles[-1] if len(titles[-1]) <= LABEL_CHARS else titles[-1][: LABEL_CHARS - 1] + "…"
            fig.add_annotation(x=position[mine[-1]], y=0, text=short, showarrow=False, xanchor="right",
                               yshift=22 if split == "test" else -22, font={"color": colour, "size": 13})  # fmt: skip
    fig.update_yaxes(visible=False, range=[-1, 1])
    fig.update_xaxes(title_text="this user's interactions, oldest first", range=[0, len(position) + 1.5])
    fig.update_layout(legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"})
    return tight(fig, height=210)
