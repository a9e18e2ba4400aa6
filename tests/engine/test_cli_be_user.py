"""``python -m engine recommend --items ...``: be the user from the command line."""

from __future__ import annotations

import pytest

from engine.explore.be_user import recommend_for_picks, resolve_picks
from engine.cli import main
from engine.explore.query import open_checkpoint
from tests.engine.test_cli import assert_one_line_error, run, run_json, write_tiny_movielens


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """An ALS and a popularity checkpoint of the tiny two-group dataset (Movies 1-12 and 13-24
    are watched by two separate halves of the users)."""
    spec = write_tiny_movielens(tmp_path_factory.mktemp("tiny") / "movies")
    data = tmp_path_factory.mktemp("data")
    for name in ("als", "popularity"):
        argv = ["--data-dir", str(data), "train", "--dataset", spec, "--model", name, "--out", str(data / name), "--json"]
        assert main(argv) == 0
    return data, data / "als", data / "popularity"


PICKS = ["Movie 1 (1990)", "movie 2 (1991)", "3"]  # two exact titles (any case) and a raw id


def test_items_give_the_engines_list(checkpoints, capsys):
    data, als, _ = checkpoints
    rec = run_json(capsys, "--data-dir", data, "recommend", "--checkpoint", als, "--items", *PICKS, "-k", "5")
    assert [p["item_id"] for p in rec["picks"]] == ["1", "2", "3"] and rec["model"] == "als"
    model, _, dataset = open_checkpoint(als, data_dir=data)
    frame = recommend_for_picks(model, dataset, resolve_picks(dataset, PICKS), 5)
    assert [r["item_id"] for r in rec["recommendations"]] == frame["item_id"].tolist()
    assert [r["rank"] for r in rec["recommendations"]] == [1, 2, 3, 4, 5]
    # The picks' group comes back, and never a pick; each reason is one of the picks.
    assert all(int(r["item_id"]) <= 12 and r["item_id"] not in {"1", "2", "3"} for r in rec["recommendations"])
    reasons = [r["because"] for r in rec["recommendations"] if r["because"]]
    assert reasons and all(b["item_id"] in {"1", "2", "3"} for b in reasons)
    assert reasons[0]["title"].startswith("Movie ")


def test_ratings_travel_with_the_picks_and_the_table_says_why(checkpoints, capsys):
    data, als, _ = checkpoints
    rec = run_json(capsys, "--data-dir", data, "recommend", "--checkpoint", als, "--items", *PICKS,
                   "--ratings", "5", "4", "3")  # fmt: skip
    assert [p["rating"] for p in rec["picks"]] == [5.0, 4.0, 3.0] and len(rec["recommendations"]) == 10
    code, out, _ = run(capsys, "--data-dir", data, "recommend", "--checkpoint", als, "--items", *PICKS, "-k", "3")
    assert code == 0 and "3 picked items" in out and "top 3 by als" in out and "because you picked" in out


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--items", "No Such Film"], ["'No Such Film'"]),
        (["--items", "1", "Movie 1 (1990)"], ["picked more than once"]),
        (["--items", "1", "2", "--ratings", "4"], ["1 ratings for 2 picked items"]),
        (["--user", "1", "--ratings", "4"], ["--ratings go with --items"]),
        (["--items", "1", "-k", "0"], ["-k must be >= 1"]),
    ],
)
def test_bad_picks_are_one_line(checkpoints, capsys, argv, needles):
    data, als, _ = checkpoints
    code, out, err = run(capsys, "--data-dir", data, "recommend", "--checkpoint", als, *argv)
    assert out == ""
    assert_one_line_error(code, err, *needles)


def test_popularity_lists_the_most_popular_unpicked_items(checkpoints, capsys):
    data, _, popularity = checkpoints
    rec = run_json(capsys, "--data-dir", data, "recommend", "--checkpoint", popularity, "--items", "1", "-k", "3")
    model, _, dataset = open_checkpoint(popularity, data_dir=data)
    order = [str(dataset.item_ids[i]) for i in sorted(range(dataset.n_items), key=lambda i: -model.item_scores_[i])]
    listed = [r["item_id"] for r in rec["recommendations"]]
    assert "1" not in listed and sorted(model.item_scores_[[dataset.item_index(i) for i in listed]], reverse=True) == sorted(
        model.item_scores_[[dataset.item_index(i) for i in order if i != "1"][:3]], reverse=True)
    assert not any(r["because"] for r in rec["recommendations"])  # no pick changes a popularity score


def test_a_model_without_fold_in_says_so(checkpoints, capsys, monkeypatch):
    from engine.models.popularity import Popularity

    monkeypatch.setattr(Popularity, "has_fold_in", False)  # every registered model folds in now
    data, _, popularity = checkpoints
    code, _, err = run(capsys, "--data-dir", data, "recommend", "--checkpoint", popularity, "--items", "1")
    assert_one_line_error(code, err, "'popularity'", "cannot fold in")


def test_user_and_items_are_exclusive(checkpoints, capsys):
    data, als, _ = checkpoints
    code, _, err = run(capsys, "--data-dir", data, "recommend", "--checkpoint", als, "--user", "1", "--items", "1")
    assert code == 2 and "not allowed with argument" in err
    code, _, err = run(capsys, "--data-dir", data, "recommend", "--checkpoint", als)
    assert code == 2 and "one of the arguments --user --items is required" in err
