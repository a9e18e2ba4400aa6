"""The chance row and sentence of dashboard.components.chance, on hand-made tables."""

from __future__ import annotations

import pandas as pd

from dashboard.components.chance import RANDOM_ROW, in_words, scale_line, with_chance_row
from tests.dashboard.pages import without_links

CHANCE = {"hr@10": 0.002, "ndcg@10": 0.001, "auc": 0.5}


def table(**hr) -> pd.DataFrame:
    return pd.DataFrame({"run": [f"{m} #{n}" for n, m in enumerate(hr, 1)], "model": list(hr),
                         "hr@10": list(hr.values()), "coverage@10": 0.1})  # fmt: skip


def test_the_random_row_holds_what_chance_has_and_only_that():
    runs = table(als=0.08, popularity=0.04)
    out = with_chance_row(runs, "run", CHANCE, ["hr@10", "coverage@10"])
    assert out["run"].tolist() == ["als #1", "popularity #2", RANDOM_ROW]  # last: the legend takes the runs' colours
    assert out.iloc[-1]["hr@10"] == 0.002 and pd.isna(out.iloc[-1]["coverage@10"])
    assert with_chance_row(runs, "run", CHANCE, ["coverage@10"]) is runs  # nothing to add
    assert with_chance_row(runs, "run", None, ["hr@10"]) is runs


def test_the_sentence_reads_the_best_run_against_chance_and_popularity():
    words = without_links(in_words(table(als=0.08, popularity=0.04, bpr=0.05), "run", CHANCE))
    assert words.startswith("**In words:** als #1, the best here, finds the item a user chose next in its top 10 "
                            "for **8.0%** of users (about 1 in 12). Ten items drawn at random would find it for "
                            "**0.20%** (1 in 500): als #1 does 40 times better than chance.")
    assert "The popularity baseline, popularity #2, which gives everyone the same most chosen items, finds it " \
        "for 4.0%" in words


def test_no_baseline_clause_when_popularity_is_best_and_no_sentence_without_figures():
    assert "baseline" not in in_words(table(popularity=0.04, als=0.03), "run", CHANCE)
    assert in_words(table(als=0.0), "run", CHANCE) is None  # no run finds anyone: no "1 in" to say
    assert in_words(table(als=0.08), "run", {"auc": 0.5}) is None
    assert in_words(table(als=0.08), "run", None) is None


def test_the_scale_line_rounds_to_two_significant_digits():
    chance = {"hr@10": 0.0011221, "ndcg@10": 0.00050987, "auc": 0.5}
    line = without_links(scale_line(chance, ["ndcg@10", "hr@10", "auc"]))
    assert line.startswith("For scale: an order drawn at random scores ndcg@10 0.00051, hr@10 0.0011, auc 0.5 ")
    assert scale_line(None, ["hr@10"]) is None


def test_a_broken_checkpoint_leaves_out_the_comparison_instead_of_failing(app, tmp_path):
    from dashboard.services import explorer

    app()  # the data folder of this test
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model.json").write_text("{not json")
    assert explorer.chance_level(str(folder), "movielens-dslabs") is None
    assert explorer.chance_level(str(tmp_path / "gone"), "movielens-dslabs") is None
