"""Behaviour of the classic models, against values worked out by hand where possible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from engine.data import from_frames
from engine.data.split import Split
from engine.errors import ParameterError
from engine.models.itemknn import ItemKNN
from engine.models.mf_als import MFALS, _mean_ratings, als_step
from engine.models.popularity import Popularity
from engine.models.svd import SVD


def split_of(rows, columns=("user_id", "item_id")) -> Split:
    """A split holding every interaction of a dataset built from `rows`."""
    return Split.from_dataset(from_frames("hand", pd.DataFrame(rows, columns=list(columns))))


# Users x items (4 x 3):  u0: {0, 1}   u1: {0, 1, 2}   u2: {1, 2}   u3: {0}
# Counts n = (3, 3, 2); co-occurrence B01 = 2 (u0, u1), B02 = 1 (u1), B12 = 2 (u1, u2).
HAND = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2), (3, 0)]
S6 = np.sqrt(6.0)
EXPECTED = {
    "cosine": [[0, 2 / 3, 1 / S6], [2 / 3, 0, 2 / S6], [1 / S6, 2 / S6, 0]],
    "jaccard": [[0, 2 / 4, 1 / 4], [2 / 4, 0, 2 / 3], [1 / 4, 2 / 3, 0]],
    "raw": [[0, 2, 1], [2, 0, 2], [1, 2, 0]],
}


@pytest.mark.parametrize("similarity", sorted(EXPECTED))
def test_itemknn_similarity_by_hand(similarity):
    model = ItemKNN(neighbours=10, similarity=similarity).fit(split_of(HAND))
    expected = np.array(EXPECTED[similarity])
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-6)
    # u3 has only item 0, so its scores are row 0 of S; u0 has items 0 and 1: rows 0 + 1.
    np.testing.assert_allclose(model.score([3])[0], expected[0], rtol=1e-6)
    np.testing.assert_allclose(model.score([0])[0], expected[0] + expected[1], rtol=1e-6)


def test_itemknn_keeps_exactly_k_strongest_neighbours():
    rng = np.random.default_rng(0)
    dense = rng.random((60, 25)) < 0.4
    train = split_of(np.argwhere(dense))
    full = ItemKNN(neighbours=1000).fit(train).similarity_.toarray()
    assert ((full > 0).sum(axis=1) >= 6).all(), "fixture: every item needs more than K co-occurring items"
    model = ItemKNN(neighbours=5).fit(train)
    pruned = model.similarity_.toarray()
    assert (np.diff(model.similarity_.indptr) == 5).all()
    assert (np.diag(pruned) == 0).all()
    # Kept values are each row's 5 largest, and they are kept unchanged.
    np.testing.assert_allclose(np.sort(pruned, axis=1)[:, -5:], np.sort(full, axis=1)[:, -5:], rtol=1e-6)
    kept = pruned > 0
    np.testing.assert_array_equal(pruned[kept], full[kept])
    # Scores use the pruned matrix: user row of A times S.
    a = train.matrix(binary=True).toarray()
    np.testing.assert_allclose(model.score(np.arange(60)), a @ pruned, rtol=1e-5, atol=1e-6)

    idx, vals = model.similar_items(np.arange(25), k=3)
    np.testing.assert_allclose(vals, -np.sort(-full, axis=1)[:, :3], rtol=1e-6)
    idx, vals = model.similar_items([0], k=20)  # more than K: read from unpruned similarity
    assert len(set(idx[0].tolist())) == 20 and 0 not in idx[0]


def test_itemknn_rejects_unknown_similarity_at_fit():
    with pytest.raises(ParameterError, match="similarity"):
        ItemKNN(similarity="dice").fit(split_of(HAND))


def test_itemknn_has_no_embeddings():
    model = ItemKNN().fit(split_of(HAND))
    with pytest.raises(NotImplementedError):
        model.item_embeddings()
    assert model.capabilities() == {
        "item_embeddings": False,
        "user_embeddings": False,
        "similar_items": True,
        "fold_in": True,
        "attention": False,
        "feature_view": False,
    }


def low_rank_ratings(seed=0, n_users=60, n_items=40, observed=0.6):
    """Ratings = 3.5 + user bias + item bias + rank-2 interaction, all (user, item) pairs."""
    rng = np.random.default_rng(seed)
    p, q = rng.normal(size=(n_users, 2)) * 0.7, rng.normal(size=(n_items, 2)) * 0.7
    r = 3.5 + rng.normal(size=(n_users, 1)) * 0.3 + rng.normal(size=(1, n_items)) * 0.3 + p @ q.T
    u, i = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    full = split_of(np.column_stack([u.ravel(), i.ravel(), r.ravel()]), ("user_id", "item_id", "rating"))
    mask = rng.random(len(full)) < observed
    return full.subset(mask), full.subset(~mask), float(r.std())


def as_rows(csr):
    """The ``(crow, col, rating)`` tensors `als_step` takes, in float64 for exact comparisons."""
    return (torch.as_tensor(csr.indptr.astype(np.int64)), torch.as_tensor(csr.indices.astype(np.int64)),
            torch.as_tensor(csr.data.astype(np.float64)))


def rmse(model, split) -> float:
    return float(np.sqrt(np.mean((model.score(split.user_idx, split.item_idx) - split.rating) ** 2)))


@pytest.mark.parametrize(
    "model",
    [
        SVD(factors=4, epochs=100, batch_size=64, learning_rate=0.05, regularization=0.001, missing_weight=0.0,
            device="cpu"),
        MFALS(factors=4, epochs=20, regularization=0.001, missing_weight=0.0, device="cpu"),
    ],
    ids=["svd", "mf-als"],
)
def test_explicit_models_recover_a_low_rank_rating_matrix(model):
    train, held_out, spread = low_rank_ratings()
    model.fit(train)
    assert rmse(model, train) < 0.05
    assert rmse(model, held_out) < 0.1 * spread  # ratings spread ~0.8: a fit, not a memorisation
    assert model.item_embeddings().shape == (40, 4) and model.user_embeddings().shape == (60, 4)
    # Ranks by predicted rating: the score is the prediction itself.
    np.testing.assert_allclose(model.score([0])[0, :5], model.score([0] * 5, np.arange(5)), rtol=1e-6)


@pytest.mark.parametrize("cls", [SVD, MFALS], ids=["svd", "mf-als"])
def test_unrated_items_are_predicted_at_the_baseline(cls):
    train, _, _ = low_rank_ratings(n_items=10)
    train = train.subset(train.item_idx != 9)  # item 9 has no training rating
    model = cls(factors=3, epochs=5, missing_weight=0.0, device="cpu").fit(train)
    assert model.item_bias_[9] == 0 and not model.item_factors_[9].any()
    baseline = model.global_mean_ + model.user_bias_
    np.testing.assert_allclose(model.score(np.arange(60), np.full(60, 9)), baseline, rtol=1e-6)


def test_svd_divergence_names_the_learning_rate():
    train, _, _ = low_rank_ratings()
    with pytest.raises(ParameterError, match="learning_rate"):
        SVD(factors=4, learning_rate=1.0, batch_size=64, device="cpu").fit(train)


def test_svd_loss_decreases():
    train, _, _ = low_rank_ratings()
    losses = []
    model = SVD(factors=4, epochs=20, batch_size=64, learning_rate=0.05, missing_weight=0.0, device="cpu")
    model.fit(train, callback=lambda event: losses.append(event["loss"]))
    assert len(losses) == 20 and losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("weighted", [True, False])
def test_als_step_equals_numpy_closed_form(weighted):
    rng = np.random.default_rng(0)
    n_users, n_items, f, lam, mu = 6, 5, 3, 0.3, 3.2
    rated = rng.random((n_users, n_items)) < 0.6
    rated[0] = False  # a user with no ratings: solved to zero
    rated[1] = True
    ratings = np.where(rated, rng.integers(1, 6, (n_users, n_items)), 0).astype(np.float64)
    q, bi = rng.normal(size=(n_items, f)), rng.normal(size=n_items)
    csr = _mean_ratings(*np.nonzero(rated), ratings[rated], (n_users, n_items))
    rows = as_rows(csr)
    p, bu = als_step(rows, torch.as_tensor(q), torch.as_tensor(bi), mu, lam, weighted)

    for u in range(n_users):
        items = np.flatnonzero(rated[u])
        z = np.column_stack([q[items], np.ones(len(items))])
        target = ratings[u, items] - mu - bi[items]
        reg = lam * (len(items) if weighted else 1) + 1e-6  # the jitter als_step adds
        x = np.linalg.solve(z.T @ z + reg * np.eye(f + 1), z.T @ target)
        np.testing.assert_allclose(p[u].numpy(), x[:f], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(bu[u].item(), x[f], rtol=1e-6, atol=1e-9)
    assert not p[0].any() and bu[0] == 0


def test_als_step_chunks_like_one_batch(monkeypatch):
    """Forcing many small chunks (the memory bound) must not change the solution."""
    import engine.models.mf_als as mf_als

    train, _, _ = low_rank_ratings()
    csr = _mean_ratings(train.user_idx, train.item_idx, train.rating.astype(np.float64), (60, 40))
    rows = as_rows(csr)
    q, bi = torch.randn(40, 4, dtype=torch.float64), torch.randn(40, dtype=torch.float64)
    one = als_step(rows, q, bi, 3.5, 0.1)
    monkeypatch.setattr(mf_als, "CHUNK_FLOATS", 200)
    many = als_step(rows, q, bi, 3.5, 0.1)
    for a, b in zip(one, many):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10)


def test_mean_ratings_averages_repeated_pairs():
    m = _mean_ratings(np.array([0, 0, 1, 0]), np.array([1, 1, 0, 2]), np.array([4.0, 2.0, 5.0, 1.0]), (2, 3))
    np.testing.assert_allclose(m.toarray(), [[0, 3, 1], [5, 0, 0]])


def test_popularity_count_and_reputation_by_hand():
    # Item a: one 5-star rating; item b: four 4-star ratings; item c: 2 and 3.
    rows = [(0, "a", 5.0), (0, "b", 4.0), (1, "b", 4.0), (2, "b", 4.0), (3, "b", 4.0), (1, "c", 2.0), (2, "c", 3.0)]
    train = split_of(rows, ("user_id", "item_id", "rating"))
    a, b, c = (train.dataset.item_index(x) for x in "abc")
    count = Popularity(variant="count").fit(train)
    np.testing.assert_allclose(count.item_scores_[[a, b, c]], [1, 4, 2])
    # Global mean = 26 / 7. With prior 2: (2 * 26/7 + sum) / (2 + count).
    rep = Popularity(variant="reputation", prior=2.0).fit(train)
    mean = 26 / 7
    expected = [(2 * mean + 5) / 3, (2 * mean + 16) / 6, (2 * mean + 5) / 4]
    np.testing.assert_allclose(rep.item_scores_[[a, b, c]], expected, rtol=1e-6)
    assert rep.recommend([0], k=3, exclude_seen=False)[0][0].tolist() == [a, b, c]
