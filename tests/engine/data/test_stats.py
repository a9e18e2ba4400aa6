"""Dataset statistics against counts worked out by hand on a tiny dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data import from_frames
from engine.data.split import leave_last_out
from engine.data.stats import (
    activity, genre_shares, item_table, long_tail, matrix_blocks, rating_histogram, split_sizes, summary,
    typical_user, user_activity,
)
from engine.data.titles import natural_title

# Users: u1 rates x, y, z; u2 rates x, y; u3 rates x; u4 rates x twice (a repeated pair counts twice).
ROWS = [
    ("u1", "x", 5.0), ("u1", "y", 4.0), ("u1", "z", 4.0),
    ("u2", "x", 3.0), ("u2", "y", 4.0),
    ("u3", "x", 5.0),
    ("u4", "x", 0.5), ("u4", "x", 5.0),
]  # fmt: skip


@pytest.fixture
def tiny():
    return from_frames("tiny", pd.DataFrame(ROWS, columns=["user_id", "item_id", "rating"]))


def test_rating_histogram(tiny):
    hist = rating_histogram(tiny)
    assert hist.to_dict("list") == {"rating": [0.5, 3.0, 4.0, 5.0], "count": [1, 1, 3, 3]}


def test_long_tail(tiny):
    tail = long_tail(tiny)
    # x: 5 interactions, y: 2, z: 1 of 8.
    assert tail["rank"].tolist() == [1, 2, 3]
    assert tail["count"].tolist() == [5, 2, 1]
    assert tail["item_id"].tolist() == ["x", "y", "z"]
    assert np.allclose(tail["cumulative_share"], [5 / 8, 7 / 8, 1.0])


def test_activity_and_user_activity(tiny):
    assert user_activity(tiny).to_dict("list") == {"user_id": ["u1", "u2", "u3", "u4"], "interactions": [3, 2, 1, 2]}
    # One user with 1 interaction, two with 2, one with 3.
    assert activity(tiny).to_dict("list") == {"interactions": [1, 2, 3], "users": [1, 2, 1]}


def test_split_sizes_and_a_typical_user(tiny):
    # Only u1 has 3 interactions: its last is test, the one before validation; the rest train
    # (u4's repeated pair counts once in a split, as leave-last-out keeps its latest time).
    sizes = split_sizes(leave_last_out(tiny))
    assert sizes == {"train": 5, "validation": 1, "test": 1, "tested_users": 1, "users": 4}
    # Activities 3, 2, 1, 2: the median is 2, and u2 is the first user with 2.
    assert tiny.user_ids[typical_user(tiny)] == "u2"


def test_summary(tiny):
    out = summary(tiny)
    assert (out["users"], out["items"], out["interactions"]) == (4, 3, 8)
    assert out["density"] == pytest.approx(8 / 12)
    assert out["interactions_per_user_mean"] == 2.0 and out["interactions_per_user_median"] == 2.0
    assert out["interactions_per_item_median"] == 2.0
    assert out["rating_mean"] == pytest.approx(30.5 / 8)
    assert out["top10pct_items_share"] == pytest.approx(5 / 8)  # the top 10% of 3 items is x alone


def test_on_ml100k(ml100k, ml100k_fixture):
    written = ml100k_fixture.ratings
    assert rating_histogram(ml100k)["count"].tolist() == written["rating"].value_counts().sort_index().tolist()
    assert activity(ml100k)["users"].sum() == 943 and activity(ml100k)["interactions"].min() == 20
    tail = long_tail(ml100k)
    most = written["item_id"].value_counts()
    titles = ml100k_fixture.items.set_index("item_id")["title"].map(natural_title)  # as loaded
    assert tail.iloc[0]["title"] == titles[most.index[0]] and tail.iloc[0]["count"] == most.iloc[0]
    assert tail["count"].tolist() == most.tolist()
    assert tail["cumulative_share"].iloc[-1] == pytest.approx(1.0)


def test_on_real_ml100k(real_ml100k):
    assert rating_histogram(real_ml100k)["count"].sum() == 100000
    assert activity(real_ml100k)["users"].sum() == 943 and activity(real_ml100k)["interactions"].min() == 20
    tail = long_tail(real_ml100k)
    assert tail.iloc[0]["title"] == "Star Wars (1977)" and tail.iloc[0]["count"] == 583
    assert tail["cumulative_share"].iloc[-1] == pytest.approx(1.0)


def test_item_table_most_popular_first_with_counts(tiny):
    table = item_table(tiny)
    assert list(table.columns) == ["item_id", "title", "genres", "year", "interactions"]
    assert table["item_id"].tolist() == ["x", "y", "z"]
    assert table["interactions"].tolist() == [5, 2, 1]  # u4's repeated pair counts twice


def test_matrix_blocks_by_hand(tiny):
    # Users by activity: u1 (3 items), u2 (2), then u3 and u4 (1 distinct item each, in index order);
    # items by popularity: x (4 users), y (2), z (1). Every cell a block of its own:
    whole = matrix_blocks(tiny, blocks=(10, 10))
    np.testing.assert_array_equal(whole["filled"], [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 0]])
    assert whole["user_edges"].tolist() == [1, 2, 3, 4, 5] and whole["item_edges"].tolist() == [1, 2, 3, 4]
    # Two user blocks of two users by one block of all three items: 5 of 6 pairs, then 2 of 6
    # (u4's repeated pair counts once).
    halves = matrix_blocks(tiny, blocks=(2, 1))
    np.testing.assert_allclose(halves["filled"], [[5 / 6], [2 / 6]])


def test_matrix_blocks_agree_with_the_dense_matrix_on_random_data():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"user_id": rng.integers(0, 40, 500), "item_id": rng.integers(0, 70, 500)})
    ds = from_frames("random", rows)
    blocks = matrix_blocks(ds, blocks=(7, 9))
    dense = ds.matrix(binary=True).toarray()  # a toy: fine here, never in the code
    dense = dense[np.argsort(-dense.sum(1), kind="stable")][:, np.argsort(-dense.sum(0), kind="stable")]
    u, i = blocks["user_edges"] - 1, blocks["item_edges"] - 1
    expected = [[dense[u[r]:u[r + 1], i[c]:i[c + 1]].mean() for c in range(9)] for r in range(7)]
    np.testing.assert_allclose(blocks["filled"], expected)
    assert blocks["filled"].shape == (7, 9) and u[-1] == ds.n_users and i[-1] == ds.n_items


def test_genre_shares_of_the_catalogue_and_of_the_interactions():
    # x is Drama|Comedy (5 rows), y Comedy (2), z Horror (1): 8 interaction rows, 3 items.
    items = pd.DataFrame({"item_id": ["x", "y", "z"], "genres": ["Drama|Comedy", "Comedy", "Horror"]})
    ds = from_frames("tiny", pd.DataFrame(ROWS, columns=["user_id", "item_id", "rating"]), items)
    table = genre_shares(ds).set_index("genre")
    assert table.loc["Comedy"].tolist() == pytest.approx([2 / 3, 7 / 8])
    assert table.loc["Drama"].tolist() == pytest.approx([1 / 3, 5 / 8])
    assert table.loc["Horror"].tolist() == pytest.approx([1 / 3, 1 / 8])
    assert list(table.index) == ["Comedy", "Drama", "Horror"]  # the most chosen first


def test_genre_shares_of_a_catalogue_without_genres_is_empty(tiny):
    assert genre_shares(tiny).empty
