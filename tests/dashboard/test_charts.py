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
