"""The Explain page's figures, built from plain explanation dicts (testable without Streamlit).

Each chart is drawn in a column of ~250 px at 1024x768, so every figure keeps its text inside
the figure: feature labels wrap onto two lines and the y axis grows to fit them (`automargin`),
and the x range leaves room for the value printed beside each bar instead of clipping it.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import plotly.graph_objects as go

from dashboard.services.explain import ITEM_EMBEDDING, USER_EMBEDDING

POSITIVE, NEGATIVE, TOTAL = "#d6604d", "#4393c3", "#878787"
#: Feature labels: characters per line and lines at most (longer values end in "...").
LABEL_WIDTH, LABEL_LINES = 30, 2
#: Share of the bars' span added on each side of the x range for the printed values.
TEXT_ROOM = 0.3
ROW_HEIGHT = 40


def wrap_label(text: str, width: int = LABEL_WIDTH, lines: int = LABEL_LINES) -> str:
    """`text` on at most `lines` lines of `width` characters (joined by ``<br>``), breaking at
    spaces and after the ``|`` of genre lists; what does not fit ends in "..."."""
    # A space after each "|" lets textwrap break genre lists; it is removed again below.
    parts = textwrap.wrap(text.replace("|", "| "), width, max_lines=lines, placeholder="...")
    return "<br>".join(part.replace("| ", "|") for part in parts)


#: The engine's feature names in words a student reads without a glossary (engine.data.features,
#: engine.explain.shap_lime); a name not listed is shown with its underscores as spaces.
FEATURE_WORDS = {
    "popularity": "item popularity", "year": "item year", "genres": "item genres",
    "activity": "user activity", "mean_rating": "user's average rating", "genre_affinity": "user's genres",
    "age": "user age", "gender": "user gender", "occupation": "user occupation", "zip": "user zip code",
    USER_EMBEDDING: "learned user vector", ITEM_EMBEDDING: "learned item vector",
}  # fmt: skip
#: What a count feature counts (its value is a bare number).
UNITS = {"popularity": "users", "activity": "items"}
SHARE = re.compile(r"(\S[^,]*?) (\d+(?:\.\d+)?)(?=,|$)")


def feature_words(feature: str) -> str:
    """`feature` in plain words: ``"popularity"`` -> ``"item popularity"``."""
    return FEATURE_WORDS.get(feature, feature.replace("_", " "))


def value_words(feature: str, value: str) -> str:
    """A feature's value as people read it: ``"338 users"``, ``"Comedy, Drama"``, genre shares
    as percentages (``"Drama 59%, Comedy 33%"``)."""
    if feature in UNITS and value.replace(".", "", 1).isdigit():
        return f"{value} {UNITS[feature]}"
    if feature == "genres":
        return value.replace("|", ", ")
    if feature == "genre_affinity":
        return SHARE.sub(lambda m: f"{m[1]} {float(m[2]):.0%}", value)
    return value


def feature_label(feature: str, values: dict) -> str:
    """``"item popularity: 338 users"`` for the y axis; a learned vector is named by whose it is
    (``"learned vector of Forrest Gump"``); just the words where the value is unknown."""
    value = str(values.get(feature, ""))
    if not value:
        return wrap_label(feature_words(feature))
    if feature in (USER_EMBEDDING, ITEM_EMBEDDING):
        return wrap_label(f"learned vector of {value}")
    return wrap_label(f"{feature_words(feature)}: {value_words(feature, value)}")


def _padded_range(low: float, high: float) -> list[float]:
    span = (high - low) or max(abs(high), 1e-3)
    return [low - TEXT_ROOM * span, high + TEXT_ROOM * span]


def _layout(fig: go.Figure, title: str, rows: int, x_range: list[float], x_title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}},
        height=90 + ROW_HEIGHT * rows,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis={"autorange": "reversed", "automargin": True},
        xaxis={"range": x_range, "automargin": True, "title": {"text": x_title, "font": {"size": 12}}},
        showlegend=False,
    )
    return fig


def shap_waterfall(explanation: dict) -> go.Figure:
    """SHAP of one pair as a horizontal waterfall: from the base value (the model's average
    score over the background pairs), each feature's contribution, then the prediction.

    The contributions print as signed changes; the last bar prints the prediction itself, the
    number the title shows (base value + contributions = prediction).
    """
    names = list(explanation["contributions"])
    contributions = [float(explanation["contributions"][n]) for n in names]
    base, prediction = float(explanation["base_value"]), float(explanation["prediction"])
    path = base + np.cumsum([0.0, *contributions])
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            base=base,
            measure=["relative"] * len(names) + ["total"],
            y=[feature_label(n, explanation["values"]) for n in names] + ["this pair's score"],
            x=contributions + [0.0],
            text=[f"{c:+.3f}" for c in contributions] + [f"{prediction:.3f}"],
            textposition="outside",
            cliponaxis=False,
            increasing={"marker": {"color": POSITIVE}},
            decreasing={"marker": {"color": NEGATIVE}},
            totals={"marker": {"color": TOTAL}},
            connector={"line": {"color": "#bbbbbb", "width": 1}},
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    fig.add_vline(x=base, line={"color": TOTAL, "width": 1, "dash": "dot"})  # where every bar starts from
    low, high = min(path.min(), prediction), max(path.max(), prediction)
    return _layout(fig, f"average score {base:.3f} → this pair's {prediction:.3f}", len(names) + 1,
                   _padded_range(low, high), "score")  # fmt: skip


def lime_bars(explanation: dict) -> go.Figure:
    """LIME of one pair: the weight of each feature in the local linear surrogate."""
    names = list(explanation["contributions"])
    weights = [float(explanation["contributions"][n]) for n in names]
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=[feature_label(n, explanation["values"]) for n in names],
            x=weights,
            marker_color=[POSITIVE if w >= 0 else NEGATIVE for w in weights],
            text=[f"{w:+.3f}" for w in weights],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    surrogate = explanation.get("surrogate_prediction", float("nan"))
    title = f"LIME's straight line gives {surrogate:.3f} here, the model {float(explanation['prediction']):.3f}"
    return _layout(fig, title, len(names), _padded_range(min(0.0, *weights), max(0.0, *weights)), "weight")


def shap_beeswarm(long, order: list[str]) -> go.Figure:
    """One strip of points per feature (a pair each, jittered), at its SHAP value."""
    rng = np.random.default_rng(0)
    fig = go.Figure()
    for rank, feature in enumerate(order):
        part = long[long["feature"] == feature]
        fig.add_trace(
            go.Scattergl(
                x=part["shap"], y=rank + rng.uniform(-0.3, 0.3, len(part)), mode="markers", name=feature_words(feature),
                marker={"size": 5, "opacity": 0.6}, text=part["value"],
                hovertemplate="%{text}: %{x:+.3f}<extra></extra>",
            )  # fmt: skip
        )
    fig.update_layout(
        title={"text": "Each dot: one pair's share", "x": 0, "xanchor": "left", "font": {"size": 14}},
        showlegend=False, height=90 + ROW_HEIGHT * len(order), margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis={"tickvals": list(range(len(order))), "ticktext": [wrap_label(feature_words(f)) for f in order],
               "autorange": "reversed", "automargin": True},
        xaxis={"title": {"text": "contribution to the score", "font": {"size": 12}}, "zeroline": True,
               "automargin": True},
    )  # fmt: skip
    return fig


def mean_abs_bars(mean_abs) -> go.Figure:
    """Mean |SHAP| per feature, largest first, its value printed beside each bar."""
    means = [float(v) for v in mean_abs["mean_abs"]]
    fig = go.Figure(
        go.Bar(
            orientation="h", y=[wrap_label(feature_words(f)) for f in mean_abs["feature"]], x=means, marker_color=TOTAL,
            text=[f"{v:.3f}" for v in means], textposition="outside", cliponaxis=False,
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )  # fmt: skip
    )
    high = max(means, default=0.0) or 1e-3
    return _layout(fig, "Average size of the share", len(means), [0.0, high * (1 + TEXT_ROOM)],
                   "mean |SHAP|")
