"""What a run's lists are made of (`engine.explore.list_mix`), against hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import ParameterError
from engine.explore.list_mix import genre_mix, held_out_counts, most_popular, popular_share

# Four items: 0 Action, 1 Action+Comedy, 2 Comedy, 3 Horror; Western on none.
GENRES = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
NAMES = ["Action", "Comedy", "Horror", "Western"]


def test_held_out_counts_count_the_users_per_item():
    assert held_out_counts([2, 0, 2, 3], 4).tolist() == [1, 0, 2, 1]
    with pytest.raises(ParameterError, match="outside 0..3"):
        held_out_counts([4], 4)


def test_most_popular_has_exactly_the_asked_share_ties_by_index():
    popularity = np.array([5, 9, 9, 1, 0, 3, 7, 2, 9, 4])
    assert np.flatnonzero(most_popular(popularity, 0.1)).tolist() == [1]  # ceil(1.0) = 1 of three 9s
    assert np.flatnonzero(most_popular(popularity, 0.25)).tolist() == [1, 2, 8]  # ceil(2.5) = 3
    assert most_popular(popularity, 0.001).sum() == 1  # never empty
    with pytest.raises(ParameterError, match=r"share must be in \(0, 1\]"):
        most_popular(popularity, 0)


def test_popular_share_weights_items_by_how_many_lists_hold_them():
    popular = np.array([True, False, False, True])
    assert popular_share([3, 1, 0, 1], popular) == pytest.approx(4 / 5)
    assert math.isnan(popular_share([0, 0, 0, 0], popular))


def test_genre_mix_is_each_genres_share_of_the_listed_items():
    runs = {"run A": np.array([2, 1, 1, 0]), "chose next": np.array([0, 0, 1, 3])}
    table = genre_mix(runs, GENRES, NAMES)
    # Run A lists 4 items: Action on 3 of them (2 x item 0, item 1), Comedy on 2 (items 1, 2).
    assert table.loc["Action", "run A"] == pytest.approx(3 / 4)
    assert table.loc["Comedy", "run A"] == pytest.approx(2 / 4)
    assert table.loc["Horror", "run A"] == 0
    # What users chose next: 1 Comedy, 3 Horror.
    assert table.loc["Horror", "chose next"] == pytest.approx(3 / 4)
    assert list(table.index) == ["Action", "Comedy", "Horror"]  # by the first column; Western on nothing
    by_next = genre_mix(runs, GENRES, NAMES, order_by="chose next")
    assert list(by_next.index) == ["Horror", "Comedy", "Action"]


def test_genre_mix_refuses_mismatched_shapes():
    with pytest.raises(ParameterError, match="genres has 4 columns for 3 genre names"):
        genre_mix({"a": np.ones(4)}, GENRES, NAMES[:3])
    with pytest.raises(ParameterError, match="counts of 'a' must have 4 entries, got 3"):
        genre_mix({"a": np.ones(3)}, GENRES, NAMES)


def test_a_catalogue_without_genres_gives_an_empty_mix():
    table = genre_mix({"a": np.ones(4), "b": np.ones(4)}, np.zeros((4, 0)), [])
    assert table.empty and list(table.columns) == ["a", "b"]
