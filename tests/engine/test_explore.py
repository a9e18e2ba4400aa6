"""The explorer pages' logic on a dataset small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data import from_frames, leave_last_out
from engine.errors import ParameterError
from engine.explore.agreement import compare_lists, disagreements, topk_overlap
from engine.explore.views import (
    HISTORY_COLUMNS,
    RECOMMENDATION_COLUMNS,
    activity_groups,
    because_text,
    compare_table,
    default_runs,
    held_out_items,
    item_labels,
    items_by_popularity,
    pick_user,
    pick_user_found,
    recommendation_frame,
    seed_summary,
    shared_counts,
    user_history,
    user_items,
)
from engine.models import MODELS
from engine.models.base import Recommender
from engine.explore.query import recommend_for
from engine.runs.store import RunsDB

T0 = 1_000_000_000  # 2001-09-09 01:46:40 UTC


@pytest.fixture(scope="module")
def ds():
    # Item ids 10..15 are indices 0..5. User 1: a leave-last-out user (test 13, validation 12);
    # user 2: test 15, validation 14; user 3 has two interactions (train only) at the same time.
    ratings = pd.DataFrame(
        [
            ("1", 10, 5.0, T0 + 1),
            ("1", 11, 3.0, T0 + 2),
            ("1", 12, 4.0, T0 + 3),
            ("1", 13, 1.0, T0 + 4),
            ("2", 10, 2.0, T0 + 5),
            ("2", 14, 5.0, T0 + 6),
            ("2", 15, 4.0, T0 + 7),
            ("3", 11, 3.0, T0 + 9),
            ("3", 12, 4.0, T0 + 9),
        ],
        columns=["user_id", "item_id", "rating", "timestamp"],
    )
    items = pd.DataFrame(
        {
            "item_id": [10, 11, 12, 13, 14, 15],
            "title": ["Alpha", "Beta", "Gamma", "Delta", "Alpha", "Zeta"],
            "genres": ["Drama", "Comedy|Drama", "", "Horror", "Drama", "Comedy"],
            "year": [1990, 1991, None, 1993, 1994, 1995],
        }
    )
    return from_frames("toy", ratings, items)


@pytest.fixture(scope="module")
def splits(ds):
    return leave_last_out(ds)


class Fixed(Recommender):
    """Scores from a fixed users x items table (to build hand-made top-k lists)."""

    name = "fixed"

    def __init__(self, *, table=None):
        self.table = table

    def _fit(self, train, val, callback):
        self.table_ = np.asarray(self.table, np.float32)

    def _score(self, user_idx, item_idx):
        return self.table_[user_idx] if item_idx is None else self.table_[user_idx, item_idx]


def fixed(splits, table):
    return Fixed(table=table).fit(splits.train)


def test_history_columns_order_and_values(ds, splits):
    h = user_history(ds, 0, splits)
    assert tuple(h.columns) == HISTORY_COLUMNS
    assert h.index.name == "item_idx"
    # Newest first: 13 (test), 12 (validation), then the train items 11 and 10.
    assert h["item_id"].tolist() == ["13", "12", "11", "10"]
    assert h.index.tolist() == [3, 2, 1, 0]
    assert h["title"].tolist() == ["Delta", "Gamma", "Beta", "Alpha"]
    assert h["split"].tolist() == ["test", "validation", "train", "train"]
    assert h["rating"].tolist() == [1.0, 4.0, 3.0, 5.0]
    assert h["genres"].tolist() == ["Horror", "", "Comedy|Drama", "Drama"]
    assert h["year"].iloc[0] == 1993 and np.isnan(h["year"].iloc[1])
    assert h["date"].iloc[0] == pd.Timestamp("2001-09-09 01:46:44")


def test_history_ties_keep_later_row_first_and_train_only_user(ds, splits):
    h = user_history(ds, 2, splits)
    assert h["item_id"].tolist() == ["12", "11"]  # same time: the later source row first
    assert h["split"].tolist() == ["train", "train"]  # under 3 interactions: never held out


def test_history_without_splits_or_real_times():
    ratings = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["x", "y"]})  # no times, no ratings
    small = from_frames("plain", ratings)
    h = user_history(small, 0)
    assert h["item_id"].tolist() == ["y", "x"]
    assert h["split"].tolist() == ["", ""]
    assert h["date"].isna().all() and h["rating"].isna().all()


def test_history_rejects_bad_index(ds):
    with pytest.raises(ParameterError, match="user index 3"):
        user_history(ds, 3)


def test_held_out_items(splits):
    assert held_out_items(splits.test, 0).tolist() == [3]
    assert held_out_items(splits.val, 1).tolist() == [4]
    assert held_out_items(splits.test, 2).tolist() == []


def test_shared_counts_by_hand():
    counts = shared_counts([np.array([1, 2, 3]), np.array([3, 4, 1]), np.array([1, 5])])
    assert [c.tolist() for c in counts] == [[2, 0, 1], [1, 0, 2], [2, 0]]
    assert [c.tolist() for c in shared_counts([np.array([7, 8])])] == [[0, 0]]


def test_recommend_for_excludes_train_items_and_marks(ds, splits):
    # User 0 trained on items 0 and 1: they score highest but are never recommended.
    table = np.array([[9, 8, 1, 5, 3, 4], [0] * 6, [0] * 6], np.float32)
    items, scores = recommend_for(fixed(splits, table), ds, 0, k=3)
    assert items.tolist() == [3, 5, 4] and scores.tolist() == [5, 4, 3]
    other = np.array([4, 2, 3])
    shared = shared_counts([items, other])[0]
    frame = recommendation_frame(
        ds,
        items,
        scores,
        held_out={"test": held_out_items(splits.test, 0), "validation": held_out_items(splits.val, 0)},
        shared=shared,
        popular=np.array([False, False, False, True, False, False]),
        because=["because you liked Alpha", "", ""],
    )
    assert tuple(frame.columns) == RECOMMENDATION_COLUMNS
    assert frame["rank"].tolist() == [1, 2, 3]
    assert frame["item_id"].tolist() == ["13", "15", "14"]
    assert frame["title"].tolist() == ["Delta", "Zeta", "Alpha"]
    assert frame["held_out"].tolist() == ["test", "", ""]
    assert frame["shared"].tolist() == [1, 0, 1]
    assert frame["popular"].tolist() == [True, False, False]  # item 3 is the catalogue's one popular item here
    assert frame["because"].tolist() == ["because you liked Alpha", "", ""]


def test_recommend_for_drops_padding(ds, splits):
    # User 0 has 4 unseen items: asking for 6 gives 4, not -1 padding.
    items, scores = recommend_for(fixed(splits, np.ones((3, 6))), ds, 0, k=6)
    assert sorted(items.tolist()) == [2, 3, 4, 5] and np.isfinite(scores).all()


def test_because_text(ds):
    assert because_text(ds, []) == ""
    assert because_text(ds, [(1, 0.5)]) == "because you liked Beta"
    assert because_text(ds, [(1, 0.5), (3, 0.2), (0, 0.1)]) == "because you liked Beta; Delta; Alpha"
    # an item that pulls the score down (or does nothing) is no reason
    assert because_text(ds, [(1, 0.5), (3, 0.0), (0, -0.1)]) == "because you liked Beta"
    assert because_text(ds, [(0, -0.1)]) == ""


def test_activity_groups_and_pick_user(ds):
    # Counts: user 0 -> 4, user 1 -> 3, user 2 -> 2: one user per third.
    groups = activity_groups(ds)
    assert {k: v.tolist() for k, v in groups.items()} == {"light": [2], "medium": [1], "heavy": [0]}
    assert pick_user(groups, "heavy", seed=3) == 0
    many = {"light": np.arange(10)}
    assert pick_user(many, "light", seed=5) == pick_user(many, "light", seed=5)
    assert len({pick_user(many, "light", seed=s) for s in range(20)}) > 1
    assert all(pick_user(many, "light", seed=s, avoid=4) != 4 for s in range(30))
    with pytest.raises(ParameterError, match="valid: light"):
        pick_user(groups, "extreme", seed=0)


def test_item_labels_disambiguate_repeated_titles(ds):
    assert item_labels(ds).tolist() == ["Alpha (id 10)", "Beta", "Gamma", "Delta", "Alpha (id 14)", "Zeta"]


def test_items_by_popularity(ds):
    # Counts: 10 -> 2, 11 -> 2, 12 -> 2, 13..15 -> 1; ties by index.
    assert items_by_popularity(ds).tolist() == [0, 1, 2, 3, 4, 5]


def test_topk_overlap_on_hand_made_pair(ds, splits):
    # Unseen in train: user 0 -> items 2..5, user 1 -> 1..5, user 2 -> 0, 3, 4, 5.
    a = np.array(
        [
            [0, 0, 4, 3, 2, 1],  # top-2 {2, 3}
            [0, 5, 4, 3, 2, 1],  # top-2 {1, 2}
            [4, 0, 0, 3, 2, 1],  # top-2 {0, 3}
        ]
    )
    b = np.array(
        [
            [0, 0, 1, 4, 3, 2],  # top-2 {3, 4}: one in common
            [0, 5, 4, 3, 2, 1],  # same list: two in common
            [1, 0, 0, 2, 3, 4],  # top-2 {5, 4}: none in common
        ]
    )
    ma, mb = fixed(splits, a), fixed(splits, b)
    users = np.array([0, 1, 2])
    overlap = topk_overlap(ma, mb, users, k=2)
    assert overlap.tolist() == [0.5, 1.0, 0.0]
    events = []
    blocked = topk_overlap(ma, mb, users, k=2, block=2, callback=events.append)
    assert blocked.tolist() == overlap.tolist()
    assert events == [{"done": 2, "total": 3}, {"done": 3, "total": 3}]
    # k beyond the unseen items: lists are padded, and the padding is not "in common".
    assert topk_overlap(ma, mb, users, k=6).tolist() == [1.0, 1.0, 1.0]


def test_compare_lists_says_whose_top_k_holds_the_held_out_item(ds, splits):
    # Test items: user 0 -> 3, user 1 -> 5, user 2 has none. Top-2 lists (train items left out):
    a = np.array(
        [
            [0, 0, 4, 3, 2, 1],  # {2, 3}: holds 3
            [0, 1, 2, 3, 4, 5],  # {5, 4}: holds 5
            [4, 0, 0, 3, 2, 1],  # {0, 3}
        ]
    )
    b = np.array(
        [
            [0, 0, 1, 4, 3, 2],  # {3, 4}: holds 3
            [0, 5, 4, 3, 2, 1],  # {1, 2}
            [1, 0, 0, 2, 3, 4],  # {5, 4}
        ]
    )
    ma, mb = fixed(splits, a), fixed(splits, b)
    users = np.array([0, 1, 2])
    lists = compare_lists(ma, mb, users, k=2, held_out_a=splits.test, held_out_b=splits.test, block=2)
    assert lists["overlap"].tolist() == [0.5, 0.0, 0.0]
    assert lists["found_a"].tolist() == [True, True, False]
    assert lists["found_b"].tolist() == [True, False, False]
    # What the lists are made of, summed over both blocks: A's {2, 3}, {5, 4}, {0, 3}; B's {3, 4},
    # {1, 2}, {5, 4}.
    assert lists["items_a"].tolist() == [1, 0, 1, 2, 1, 1]
    assert lists["items_b"].tolist() == [0, 1, 1, 1, 2, 1]
    # Each model against the split it is given: B's lists hold neither validation item (2 for
    # user 0, 4 for user 1), while they held user 0's test item.
    lists = compare_lists(ma, mb, users, k=2, held_out_b=splits.val)
    assert "found_a" not in lists and lists["found_b"].tolist() == [False, False, False]
    # A user in another order gets their own answer, not their neighbour's.
    lists = compare_lists(ma, mb, np.array([1, 0]), k=2, held_out_a=splits.test, held_out_b=splits.test)
    assert lists["found_a"].tolist() == [True, True] and lists["found_b"].tolist() == [False, True]


def test_pick_user_found_is_a_seeded_user_whose_held_out_item_the_model_finds(ds, splits):
    # Top-2 lists: user 0 {2, 3} holds their test item 3, user 1 {5, 4} holds 5, user 2 has none.
    finds = fixed(splits, np.array([[0, 0, 4, 3, 2, 1], [0, 1, 2, 3, 4, 5], [4, 0, 0, 3, 2, 1]]))
    groups = {"medium": np.array([0, 1, 2])}
    picked = {seed: pick_user_found(groups, "medium", seed, finds, splits.test, k=2) for seed in range(8)}
    for seed, user in picked.items():
        order = np.random.default_rng(seed).permutation([0, 1, 2])
        assert user == next(u for u in order if u in (0, 1)), seed  # the first found, in the seed's order
    assert set(picked.values()) == {0, 1}
    # A model that finds no one's item: no user.
    misses = fixed(splits, np.array([[0, 0, 5, 0, 4, 3], [0, 5, 4, 0, 3, 0], [1, 1, 1, 1, 1, 1]]))
    assert pick_user_found(groups, "medium", 0, misses, splits.test, k=2) is None
    with pytest.raises(ParameterError, match="unknown activity level 'loud'"):
        pick_user_found(groups, "loud", 0, finds, splits.test)


def test_disagreements_put_users_only_one_model_got_right_first_among_ties(ds):
    users, overlap = np.array([0, 1, 2]), np.array([0.0, 0.0, 0.0])
    found_a, found_b = np.array([True, False, False]), np.array([True, False, True])
    table = disagreements(ds, users, overlap, found_a=found_a, found_b=found_b)
    assert table.index.tolist() == [2, 0, 1]  # B alone found user 2's item; both found user 0's
    assert table["found_a"].tolist() == [False, True, False]
    assert table["found_b"].tolist() == [True, True, False]
    # Less overlap still comes first, whoever was right.
    table = disagreements(ds, users, np.array([0.5, 0.0, 0.5]), found_a=found_a, found_b=found_b)
    assert table.index.tolist() == [1, 2, 0]


def test_disagreements_sorted_lowest_first(ds):
    table = disagreements(ds, np.array([0, 1, 2]), np.array([0.5, 1.0, 0.5]), n=2)
    assert table.index.tolist() == [0, 2]
    assert table["user_id"].tolist() == ["1", "3"]
    assert table["interactions"].tolist() == [4, 2]
    assert table["overlap"].tolist() == [0.5, 0.5]


def test_compare_table_one_row_per_run(tmp_path):
    db = RunsDB(tmp_path / "runs.sqlite")
    metrics = {"auc": 0.9, "hr@10": 0.3, "ndcg@10": 0.2, "users": 3}
    db.record(model="als", dataset="toy", params={"factors": 8}, metrics=metrics, fit_seconds=1.5)
    db.record(model="bpr", dataset="toy", params={}, metrics={"ndcg@10": 0.1}, fit_seconds=2.0)
    table = compare_table(db.list("toy"))
    assert table["run"].tolist() == ["bpr #2", "als #1"]
    # The headline metrics first, then the others in the table's (alphabetical) order.
    metrics = ["ndcg@10", "hr@10", "auc", "users"]
    assert list(table.columns) == ["run", "id", "model", *metrics, "fit_seconds", "created", "checkpoint_status"]
    assert table["ndcg@10"].tolist() == [0.1, 0.2]
    assert np.isnan(table["hr@10"].iloc[0]) and table["fit_seconds"].tolist() == [2.0, 1.5]
    assert "params.factors" not in table.columns


def test_default_runs_newest_of_each_model_best_first():
    def run(i, model, ndcg=None):
        return {"id": i, "model": model, "metrics": {} if ndcg is None else {"ndcg@10": ndcg}}

    # Newest first, as the runs table lists them: an older, better als run is not picked.
    runs = [run(7, "item2vec", 0.01), run(6, "als", 0.03), run(5, "bpr", 0.05), run(4, "mystery"),
            run(3, "popularity", 0.02), run(2, "als", 0.09)]  # fmt: skip
    assert [r["id"] for r in default_runs(runs, 3)] == [5, 6, 3]
    assert [r["id"] for r in default_runs(runs, 10)] == [5, 6, 3, 7, 4]  # no metric: last
    assert [r["id"] for r in default_runs(runs[:1], 3)] == [7] and default_runs([], 3) == []


def test_seed_summary_groups_runs_that_differ_only_in_their_seed(tmp_path):
    db = RunsDB(tmp_path / "runs.sqlite")
    record = lambda model, params, ndcg, fit: db.record(  # noqa: E731
        model=model, dataset="toy", params=params, metrics={"ndcg@10": ndcg, "hr@10": 2 * ndcg}, fit_seconds=fit)
    record("bpr", {"factors": 16, "random_state": 0}, 0.05, 1.0)
    record("bpr", {"factors": 16, "random_state": 1}, 0.07, 3.0)
    record("bpr", {"factors": 16, "random_state": 2}, 0.06, 2.0)
    record("bpr", {"factors": 64, "random_state": 0}, 0.09, 4.0)  # another setting, one seed: not listed
    record("popularity", {"variant": "count"}, 0.04, 0.1)  # no seed at all: not listed
    defaults = MODELS["als"].default_params()  # every parameter recorded, as `train` records them
    record("als", {**defaults, "random_state": 0}, 0.10, 0.5)
    record("als", {**defaults, "random_state": 3}, 0.12, 0.7)
    table = seed_summary(db.list("toy"))
    assert list(table.columns) == ["setting", "model", "runs", "seeds", "ndcg@10", "ndcg@10 sd", "hr@10", "hr@10 sd", "fit_seconds"]
    rows = {r["setting"]: r for r in table.to_dict("records")}
    assert set(rows) == {"als", "bpr[factors=16]"}  # defaults leave the plain name; changes are spelled out
    bpr, als = rows["bpr[factors=16]"], rows["als"]
    assert (bpr["model"], bpr["runs"], bpr["seeds"]) == ("bpr", 3, "0, 1, 2")
    assert bpr["ndcg@10"] == pytest.approx(0.06) and bpr["ndcg@10 sd"] == pytest.approx(0.01)
    assert bpr["hr@10"] == pytest.approx(0.12) and bpr["fit_seconds"] == pytest.approx(2.0)
    assert (als["runs"], als["seeds"]) == (2, "0, 3") and als["ndcg@10"] == pytest.approx(0.11)
    # Nothing seeded twice: an empty frame with the same columns.
    only_one = seed_summary(db.list("toy").query("model == 'popularity'"))
    assert only_one.empty and list(only_one.columns) == ["setting", "model", "runs", "seeds", "ndcg@10", "ndcg@10 sd",
                                                        "hr@10", "hr@10 sd", "fit_seconds"]


def test_thumbnails_only_where_the_dataset_has_images(ds, tmp_path):
    import base64
    import io

    from PIL import Image

    from engine.data import load_dataset
    from engine.data.visual import generate_visual_synthetic
    from engine.data.images import placeholder_uri
    from engine.explore.views import has_images, thumbnail_uri

    assert not has_images(ds) and thumbnail_uri(ds, 0) is None
    folder = generate_visual_synthetic(tmp_path / "vis", n_users=4, n_items=6, min_interactions=3, max_interactions=4)
    visual = load_dataset(f"visual-synthetic:{folder}")
    assert has_images(visual)
    uri = thumbnail_uri(visual, 2, size=32)
    assert uri.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        assert im.size == (32, 32)  # the square 224 px image, shrunk
    (folder / "images" / visual.items["image"].iat[3]).unlink()
    # A file gone since loading is no poster, not an error: the neutral placeholder instead.
    assert thumbnail_uri(visual, 3, size=32) == placeholder_uri(32)


def test_recommend_for_history_leaves_out_held_out_items_too(ds, splits):
    # User 0's history is items 0, 1 (train), 2 (validation) and 3 (test). "train" keeps the
    # held-out 3 and 2 as candidates (the evaluation's view); "history" leaves them out.
    table = np.array([[9, 8, 7, 6, 1, 2], [0] * 6, [0] * 6], np.float32)
    model = fixed(splits, table)
    assert recommend_for(model, ds, 0, k=3)[0].tolist() == [2, 3, 5]
    items, scores = recommend_for(model, ds, 0, k=3, exclude="history")
    assert items.tolist() == [5, 4] and scores.tolist() == [2, 1]


def test_recommend_for_refuses_an_unknown_exclude(ds, splits):
    with pytest.raises(ParameterError, match="exclude must be one of train, history, got 'seen'"):
        recommend_for(fixed(splits, np.ones((3, 6))), ds, 0, exclude="seen")


def test_user_items_are_every_item_of_the_user_in_any_split(ds):
    assert user_items(ds, ds.user_index("1")).tolist() == [0, 1, 2, 3]  # ids 10..13, the test item too
    assert user_items(ds, ds.user_index("3")).tolist() == [1, 2]


def test_genre_profile_by_hand():
    from engine.explore.views import genre_profile

    items = pd.DataFrame({"item_id": range(5), "title": list("abcde"),
                          "genres": ["Drama|War", "Drama", "Comedy", "Comedy|Drama", "Horror"]})
    ratings = pd.DataFrame({"user_id": ["u"] * 5, "item_id": range(5)})
    toy = from_frames("toy", ratings, items)
    # History a, b, c, d: Drama on 3 of 4, Comedy 2, War 1, Horror none (left out).
    profile = genre_profile(toy, [0, 1, 2, 3], {"A": np.array([4, 2]), "B": np.array([], np.int64)})
    assert profile["genre"].tolist() == ["Drama", "Comedy", "War"]
    np.testing.assert_allclose(profile["history"], [0.75, 0.5, 0.25])
    np.testing.assert_allclose(profile["A"], [0.0, 0.5, 0.0])  # Horror and Comedy: only Comedy is a history genre
    np.testing.assert_allclose(profile["B"], [0.0, 0.0, 0.0])  # an empty list shares nothing
    assert genre_profile(toy, [], {"A": np.array([4])}).empty
