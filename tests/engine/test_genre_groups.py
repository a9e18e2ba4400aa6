"""Which genres a model's item vectors put together (`engine.explore.genre_groups`)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ParameterError
from engine.explore.genre_groups import genre_grouping, genre_to_colour


def _two_clusters(seed=0, per_cluster=20, dims=8):
    """Items 0-19 around one direction, 20-39 around another. Horror is the whole first cluster;
    Comedy every other item of both; Western the first three items."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dims)[:2] * 10
    x = np.repeat(centres, per_cluster, axis=0) + rng.normal(size=(2 * per_cluster, dims))
    n = len(x)
    genres = np.zeros((n, 3), int)
    genres[:per_cluster, 0] = 1  # Horror
    genres[::2, 1] = 1  # Comedy
    genres[:3, 2] = 1  # Western
    return x, genres, ["Horror", "Comedy", "Western"]


def _reference(x, has, k):
    """Straight from the definition: cosine similarities, each item's k most similar others."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return {j: has[nearest[has[:, j]], j].mean() for j in range(has.shape[1]) if has[:, j].sum()}


def test_a_genre_the_vectors_keep_together_ranks_first_with_its_lift_over_chance():
    x, genres, names = _two_clusters()
    table = genre_grouping(x, genres, names, k=5, min_items=4)
    assert table["genre"].tolist()[0] == "Horror"
    horror = table.set_index("genre").loc["Horror"]
    # Every Horror item's 5 neighbours are in its own (all-Horror) cluster: 100% against the
    # 50% a random neighbour would give.
    assert horror["items"] == 20 and horror["together"] == 1.0
    assert horror["chance"] == 0.5 and horror["lift"] == 2.0 and horror["grouping"] == 1.0
    comedy = table.set_index("genre").loc["Comedy"]
    assert comedy["chance"] == 0.5 and comedy["lift"] < 1.5  # spread over both clusters
    assert comedy["grouping"] == pytest.approx((comedy["together"] - 0.5) / 0.5)
    assert list(table["grouping"]) == sorted(table["grouping"], reverse=True)


def test_a_small_genre_with_a_high_lift_ranks_below_a_large_well_kept_one():
    # Western (3 items, all in the Horror cluster) has neighbours in common by luck and a lift
    # far above Horror's 2; Horror, every neighbour of every item, still ranks first.
    x, genres, names = _two_clusters()
    table = genre_grouping(x, genres, names, k=5, min_items=3).set_index("genre")
    assert table.loc["Western", "lift"] > table.loc["Horror", "lift"]
    assert table.index[0] == "Horror"


def test_shares_match_a_brute_force_reference():
    x, genres, names = _two_clusters(seed=3)
    table = genre_grouping(x, genres, names, k=4, min_items=1).set_index("genre")
    expected = _reference(x, genres > 0, 4)
    for j, name in enumerate(names):
        assert table.loc[name, "together"] == pytest.approx(expected[j]), name


def test_genres_with_few_items_are_left_out():
    x, genres, names = _two_clusters()
    assert "Western" not in set(genre_grouping(x, genres, names, min_items=4)["genre"])
    assert "Western" in set(genre_grouping(x, genres, names, min_items=3)["genre"])


def test_only_the_given_items_are_compared_and_counted():
    x, genres, names = _two_clusters()
    shown = np.zeros(len(x), bool)
    shown[:10] = shown[20:40] = True  # half of the Horror cluster, all of the other
    table = genre_grouping(x, genres, names, items=shown, k=3, min_items=1).set_index("genre")
    assert table.loc["Horror", "items"] == 10
    assert table.loc["Horror", "chance"] == pytest.approx(10 / 30)
    expected = _reference(x[shown], genres[shown] > 0, 3)
    assert table.loc["Horror", "together"] == pytest.approx(expected[0])
    # Indices mean the same as the mask.
    by_index = genre_grouping(x, genres, names, items=np.flatnonzero(shown), k=3, min_items=1)
    assert by_index.equals(table.reset_index())


def test_identical_vectors_still_give_each_item_k_other_neighbours():
    x = np.repeat(np.eye(2), 5, axis=0)  # two groups of five identical vectors
    genres = np.array([[1]] * 5 + [[0]] * 5)
    table = genre_grouping(x, genres, ["Horror"], k=4, min_items=1)
    assert table.loc[0, "together"] == 1.0  # the four others of its group, never itself


def test_bad_input_is_a_one_line_error():
    x, genres, names = _two_clusters()
    with pytest.raises(ParameterError, match="genres must be 40 items x 2 genres, got 40 x 3"):
        genre_grouping(x, genres, names[:2])
    with pytest.raises(ParameterError, match="item index 40 is outside 0..39"):
        genre_grouping(x, genres, names, items=[0, 40])
    with pytest.raises(ParameterError, match="k must be >= 1, got 0"):
        genre_grouping(x, genres, names, k=0)


def test_a_single_item_has_no_neighbours_and_gives_an_empty_table():
    # The map's filter can leave one item: the page then shows no genre chart, not an error.
    x, genres, names = _two_clusters()
    table = genre_grouping(x, genres, names, items=[3], min_items=1)
    assert table.empty and list(table.columns) == ["genre", "items", "together", "chance", "lift", "grouping"]
    assert genre_to_colour(table, max_share=1.0) is None


def test_the_genre_to_colour_is_the_best_grouped_one_that_leaves_most_of_the_map_pale():
    x, genres, names = _two_clusters()
    table = genre_grouping(x, genres, names, k=5, min_items=3)
    # Horror groups best but covers half the items, as Comedy does; Western is the small one.
    assert genre_to_colour(table, max_share=1.0) == "Horror"
    assert genre_to_colour(table, max_share=1 / 3) == "Western"
    assert genre_to_colour(table, max_share=0.01) is None
