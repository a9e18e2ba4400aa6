"""dashboard/components/charts.py: the shared figures, checked on their Plotly objects."""

import pandas as pd

from dashboard.components.charts import epoch_curve, from_zero


def test_from_zero_starts_at_zero_unless_a_value_is_negative():
    assert from_zero(pd.Series([0.2, 0.4])) == [0.0, 0.4 * 1.15]
    assert from_zero(pd.Series([0.0])) == [0.0, 1e-3]  # a single zero still has a visible range
    assert from_zero(pd.Series([-1.0, 2.0])) is None


def test_epoch_curve_spans_the_planned_run_with_one_line_per_phase():
    table = pd.DataFrame({"epoch": [1, 2, 1], "loss": [0.9, 0.5, 0.7], "phase": ["a", "a", "b"]})
    fig = epoch_curve(table, "loss", "Training loss", [0.5, 10.5], "phase")
    assert fig.layout.title.text == "Training loss"
    assert list(fig.layout.xaxis.range) == [0.5, 10.5]
    assert list(fig.layout.yaxis.range) == [0.0, 0.9 * 1.15]
    assert [trace.name for trace in fig.data] == ["a", "b"] and fig.data[0].mode == "lines+markers"
    assert fig.layout.margin.t == 40  # room for the title (`tight`)


def test_epoch_curve_ticks_whole_epochs_and_marks_the_kept_one():
    table = pd.DataFrame({"epoch": [1], "val_ndcg@10": [0.01]})
    one = epoch_curve(table, "val_ndcg@10", "Validation NDCG@10", [0.5, 1.5], kept_epoch=1)
    assert (one.layout.xaxis.tick0, one.layout.xaxis.dtick) == (0, 1)  # not 0.6, 0.8, 1, 1.2
    assert one.layout.yaxis.title.text == "NDCG@10"  # words, not the column name val_ndcg@10
    (line,) = one.layout.shapes
    assert (line.x0, line.x1, line.line.dash) == (1, 1, "dash")
    (label,) = one.layout.annotations
    assert label.text == "kept: epoch 1" and label.xanchor == "left"  # right of the line: room there
    long = epoch_curve(table, "val_ndcg@10", "Validation NDCG@10", [0.5, 40.5], kept_epoch=35)
    assert long.layout.xaxis.dtick == 5
    assert long.layout.annotations[0].xanchor == "right"  # near the right edge: written to the left
    assert not epoch_curve(table, "val_ndcg@10", "Validation NDCG@10", [0.5, 1.5]).layout.shapes


def test_ranked_bars_put_the_best_run_on_top_and_follow_a_given_order():
    from dashboard.components.charts import ranked_bars

    table = pd.DataFrame({"run": ["a", "b", "c"], "ndcg": [0.02, 0.05, 0.03], "hr": [0.04, 0.01, 0.05]})
    fig = ranked_bars(table, "run", ["ndcg", "hr"])
    assert list(fig.layout.yaxis.categoryarray)[::-1] == ["b", "c", "a"]  # read from the top
    # The first metric is drawn last, so that it is the top bar of each group (and first in the legend).
    assert [t.name for t in fig.data] == ["hr", "ndcg"] and fig.layout.legend.traceorder == "reversed"
    assert {t.orientation for t in fig.data} == {"h"}
    assert dict(zip(fig.data[0].y, fig.data[0].x)) == {"a": 0.04, "b": 0.01, "c": 0.05}
    # A given order wins; runs missing from the table are left out of it.
    timed = table[table["run"] != "c"]
    fig = ranked_bars(timed, "run", ["hr"], order=["c", "a", "b"])
    assert list(fig.layout.yaxis.categoryarray)[::-1] == ["a", "b"] and not fig.layout.showlegend
    assert list(fig.layout.xaxis.range) == [0.0, 0.04 * 1.15]  # room for the printed numbers
    assert fig.layout.height > 0
    # Several metrics: the legend lies flat above the bars, not in a column beside them.
    two = ranked_bars(table, "run", ["ndcg", "hr"])
    assert two.layout.legend.orientation == "h" and two.layout.legend.yanchor == "bottom"


def test_ranked_bars_keep_room_right_of_the_plot_for_the_longest_printed_number():
    from dashboard.components.charts import DIGIT_WIDTH, EDGE_MARGIN, ranked_bars

    table = pd.DataFrame({"run": ["sasrec", "popularity"], "fit_seconds": [54.07, 0.0]})
    fig = ranked_bars(table, "run", ["fit_seconds"], text_format=".2f")
    assert fig.layout.margin.r == EDGE_MARGIN + DIGIT_WIDTH * len("54.07")
    wide = ranked_bars(table.assign(fit_seconds=[1234.5, 0.0]), "run", ["fit_seconds"], text_format=".2f")
    assert wide.layout.margin.r > fig.layout.margin.r


def test_overlap_histogram_has_one_bar_per_possible_share_in_percent():
    from dashboard.components.charts import overlap_histogram

    fig = overlap_histogram(pd.Series([0.0, 0.1, 0.1, 1.0]), 10)
    bins = fig.data[0].xbins
    assert bins.size == 0.1 and bins.start < 0 < bins.start + bins.size  # 0 in the first bar's middle
    assert bins.end > 1 > bins.end - bins.size
    assert fig.layout.xaxis.tickformat == ".0%" and fig.layout.yaxis.title.text == "users"
