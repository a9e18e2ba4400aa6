"""Be the user: picks resolved by id or title, folded in, ranked and explained by a pick."""

from __future__ import annotations

import numpy as np
import pytest

from engine.explore.be_user import (
    PICK_COLUMNS, Picks, embedding_point, example_picks, picks_from_link, recommend_for_picks, resolve_picks,
)
from engine.errors import AbilityError, EngineError, ParameterError, UnknownIdError
from engine.explore.projection import project
from tests.engine.models.test_contract import DATASET, ITEM_BLOCK, ITEMS_PER_BLOCK, SPLITS, make

_FITTED = {}


def fitted(name: str, **params):
    key = (name, tuple(sorted(params.items())))
    if key not in _FITTED:
        _FITTED[key] = make(name, **params).fit(SPLITS.train)
    return _FITTED[key]


def test_picks_by_id_and_by_exact_title(ml100k):
    first, second = ml100k.title(0), ml100k.title(5)
    picks = resolve_picks(ml100k, [str(ml100k.item_ids[3]), first.upper(), f"  {second} "], ratings=[5, 4, 1])
    np.testing.assert_array_equal(picks.items, [3, 0, 5])
    np.testing.assert_array_equal(picks.ratings, [5.0, 4.0, 1.0])
    assert resolve_picks(ml100k, [first]).ratings is None


@pytest.mark.parametrize(
    "picks, ratings, error, words",
    [
        ([], None, ParameterError, "no items picked"),
        (["", "  "], None, ParameterError, "no items picked"),
        (["1", ""], None, ParameterError, "empty item id or title"),
        (["no such film (1999)"], None, UnknownIdError, "no such film"),
        (["1", "2", "1"], None, ParameterError, "'1' is picked more than once"),
        (["1", "2"], [4.0], ParameterError, "1 ratings for 2 picked items"),
        (["1", "2"], [4.0, float("nan")], ParameterError, "finite"),
    ],
)
def test_bad_picks_are_one_line(ml100k, picks, ratings, error, words):
    with pytest.raises(error, match=words) as info:
        resolve_picks(ml100k, picks, ratings)
    assert isinstance(info.value, EngineError) and "\n" not in str(info.value)


def test_example_picks_are_popular_items_of_different_kinds():
    import pandas as pd

    from engine.data import from_frames

    # Popularity: a 5 > b 4 > c 3 > d 2 > e 1; a and b share Drama, c and d share nothing with a.
    counts = {"a": 5, "b": 4, "c": 3, "d": 2, "e": 1}
    rows = [(f"u{n}", item, 4.0, n) for item, count in counts.items() for n in range(count)]
    ratings = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    genres = {"a": "Drama|War", "b": "Drama", "c": "Comedy", "d": "Comedy|Horror", "e": ""}
    items = pd.DataFrame({"item_id": list(genres), "title": list(genres), "genres": list(genres.values())})
    ds = from_frames("toy", ratings, items)
    picked = lambda n: [ds.item_ids[i] for i in example_picks(ds, n)]  # noqa: E731
    assert picked(3) == ["a", "c", "e"]  # b shares Drama with a, d Comedy with c; e has no genre to share
    assert picked(5) == ["a", "c", "e", "b", "d"]  # then the most popular of the rest
    no_genres = from_frames("toy", ratings, items.assign(genres=""))
    assert [no_genres.item_ids[i] for i in example_picks(no_genres, 2)] == ["a", "b"]


def test_picks_from_a_link(ml100k):
    ids = [str(ml100k.item_ids[i]) for i in (4, 1, 7)]
    picks = picks_from_link(ml100k, ",".join(ids) + ",", "5,3,1", max_picks=3)
    np.testing.assert_array_equal(picks.items, [4, 1, 7])
    np.testing.assert_array_equal(picks.ratings, [5.0, 3.0, 1.0])
    assert picks_from_link(ml100k, ",".join(ids), None, max_picks=3).ratings is None
    assert len(picks_from_link(ml100k, "", None, max_picks=3).items) == 0  # a first visit: nothing picked
    with pytest.raises(ParameterError, match="ratings in the link must be numbers"):
        picks_from_link(ml100k, ids[0], "five", max_picks=3)
    with pytest.raises(ParameterError, match="the link picks 3 items: at most 2"):
        picks_from_link(ml100k, ",".join(ids), None, max_picks=2)


def test_the_same_item_by_id_and_by_title_is_a_duplicate(ml100k):
    title = ml100k.title(0)
    with pytest.raises(ParameterError, match="picked more than once") as info:
        resolve_picks(ml100k, [str(ml100k.item_ids[0]), title])
    assert repr(str(ml100k.item_ids[0])) in str(info.value)


def test_recommendations_follow_the_picks_and_leave_them_out():
    """Picks from block 1 of the checkerboard: every recommendation is a block-1 item, none is
    a pick, and the list is the model's own folded-in ranking."""
    model = fitted("als", factors=8)
    block1 = np.flatnonzero(ITEM_BLOCK == 1)[:5]
    picks = resolve_picks(DATASET, [str(DATASET.item_ids[i]) for i in block1])
    frame = recommend_for_picks(model, DATASET, picks, k=5)
    assert list(frame.columns) == list(PICK_COLUMNS) and len(frame) == 5
    assert (ITEM_BLOCK[frame.index] == 1).all() and not set(frame.index) & set(block1.tolist())
    idx, scores = model.recommend_folded(model.fold_in(picks.items), k=5)
    np.testing.assert_array_equal(frame.index, idx)
    np.testing.assert_allclose(frame["score"], scores, rtol=1e-6)
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5]


def test_because_names_the_pick_whose_removal_hurts_most():
    """By hand: fold in the picks without each one in turn; the reason is the pick whose
    removal lowers the recommendation's score most."""
    model = fitted("als", factors=8)
    block0 = np.flatnonzero(ITEM_BLOCK == 0)[:4]
    off = np.flatnonzero(ITEM_BLOCK == 1)[:1]
    chosen = np.concatenate([block0, off])
    picks = Picks(chosen.astype(np.int64), None)
    frame = recommend_for_picks(model, DATASET, picks, k=4)
    full = model.score_folded(model.fold_in(chosen), frame.index.to_numpy())
    drops = np.stack(
        [full - model.score_folded(model.fold_in(np.delete(chosen, n)), frame.index.to_numpy()) for n in range(len(chosen))]
    )
    for t, item in enumerate(frame.index):
        best = chosen[int(np.argmax(drops[:, t]))]
        assert frame["because_id"].iat[t] == str(DATASET.item_ids[best])
        assert frame["because"].iat[t] == DATASET.title(int(best))
    # Without explanations the column is there and empty.
    assert (recommend_for_picks(model, DATASET, picks, k=4, explain=False)["because"] == "").all()


def test_popularity_recommends_the_most_popular_unpicked_items_without_a_reason():
    """Popularity folds in trivially: its list is the popularity ranking minus the picks, and
    no pick is named as the reason (none changes a score)."""
    model = fitted("popularity")
    order = np.argsort(-model.item_scores_, kind="stable")
    picks = Picks(order[[0, 2]].astype(np.int64), None)
    frame = recommend_for_picks(model, DATASET, picks, k=3)
    assert frame.index.tolist() == [int(i) for i in order[[1, 3, 4]]] or (
        np.sort(model.item_scores_[frame.index]) == np.sort(model.item_scores_[order[[1, 3, 4]]])
    ).all()  # ties may swap equally popular items
    assert (frame["because"] == "").all()


@pytest.mark.parametrize("name", ["feature-mlp"])
def test_models_without_fold_in_say_so_in_one_line(name):
    model = fitted(name)
    with pytest.raises(AbilityError, match="cannot fold in a new user") as info:
        recommend_for_picks(model, DATASET, Picks(np.array([0, 1]), None))
    assert repr(name) in str(info.value) and "\n" not in str(info.value)


def test_k_is_checked_and_clamped_to_the_catalogue():
    model = fitted("als", factors=8)
    picks = Picks(np.arange(3, dtype=np.int64), None)
    with pytest.raises(ParameterError, match="k must be >= 1"):
        recommend_for_picks(model, DATASET, picks, k=0)
    assert len(recommend_for_picks(model, DATASET, picks, k=10_000, explain=False)) == DATASET.n_items - 3


def test_the_users_point_is_on_the_embeddings_pca_map():
    """The map is the Embeddings page's PCA of the users; a training user's own history folded
    in (exact for ALS with alpha = 0) lands on that user's point."""
    model = fitted("als", factors=8, alpha=0.0, cg_steps=3)
    user = 4
    picks = Picks(model.seen_[user].indices.astype(np.int64), None)
    mapped = embedding_point(model, picks)
    coords, point = mapped.coords, mapped.point
    reference = project(model.user_embeddings(), "pca", 2)
    np.testing.assert_allclose(coords, reference.coords, atol=1e-5)
    np.testing.assert_allclose(mapped.explained_variance, reference.explained_variance_ratio)
    # ALS's user factors come from the last half-sweep, so the two agree closely, not exactly.
    assert np.linalg.norm(point - coords[user]) < 0.05 * np.linalg.norm(coords, axis=1).mean()
    others = np.delete(np.arange(len(coords)), user)
    assert np.linalg.norm(point - coords[user]) < np.linalg.norm(coords[others] - point, axis=1).min() + 1e-6
    # The closest users are found in the model's own space: the user whose history it is first.
    assert mapped.closest[0] == user and len(mapped.closest) == 3
    emb = model.user_embeddings().astype(np.float64)
    state = model.fold_in(picks.items, None).state
    cosine = emb @ state / (np.linalg.norm(emb, axis=1) * np.linalg.norm(state))
    assert mapped.closest.tolist() == np.argsort(-cosine, kind="stable")[:3].tolist()


def test_no_point_where_the_state_is_not_a_user_embedding():
    picks = Picks(np.arange(ITEMS_PER_BLOCK // 3, dtype=np.int64), None)
    assert embedding_point(fitted("itemknn"), picks) is None
