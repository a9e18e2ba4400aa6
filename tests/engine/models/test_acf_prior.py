"""The history-consistency prior of ACF's item attention."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engine.models import acf_prior
from engine.models.acf_prior import attention_prior, content_keys, history_consistency


def _history(rows, n_items):
    r = sp.lil_matrix((len(rows), n_items))
    for u, items in enumerate(rows):
        r[u, items] = 1.0
    return r.tocsr()


def test_consistency_hand_worked():
    keys = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])  # already centred
    history = _history([[0, 1, 2], [3]], 4)
    profile = np.array([[0, 2, -1], [3, -1, -1]])
    out = history_consistency(history, profile, keys)
    # Item 0 against items 1 and 2: cosines 1 and -1; item 2 against 0 and 1: -1 and -1.
    np.testing.assert_allclose(out, [[0.0, -1.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)


def test_consistency_matches_a_loop_over_users_across_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    n_users, n_items, p = 11, 15, 4
    history = sp.random(n_users, n_items, density=0.4, random_state=1, format="csr")
    history.data[:] = 3.0  # ratings: only presence counts
    keys = rng.normal(size=(n_items, 5)) + 2.0  # off-centre: centring matters
    profile = np.full((n_users, p), -1)
    for u in range(n_users):
        items = history[u].indices
        profile[u, : min(p, len(items))] = rng.permutation(items)[:p]
    monkeypatch.setattr(acf_prior, "USER_BLOCK", 3)
    out = history_consistency(history, profile, keys)
    assert (history.data == 3.0).all()  # the caller's matrix is left as it was
    centred = keys - keys.mean(0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    for u in range(n_users):
        items = history[u].indices
        for s, item in enumerate(profile[u]):
            if item < 0 or len(items) < 2:
                assert out[u, s] == 0.0
                continue
            others = [j for j in items if j != item]
            expected = np.mean([unit[item] @ unit[j] for j in others])
            assert abs(out[u, s] - expected) < 1e-5


def test_prior_z_scores_each_kind_and_ignores_constant_keys():
    rng = np.random.default_rng(2)
    history = _history([[0, 1, 2, 3], [1, 2, 4], [0, 4, 5, 6]], 7)
    profile = np.array([[3, 2, 1], [4, 2, -1], [6, 5, 0]])
    keys = rng.normal(size=(7, 3))
    one = attention_prior(history, profile, [keys])
    valid = profile >= 0
    assert abs(one[valid].mean()) < 1e-6 and abs(one[valid].std() - 1.0) < 1e-5
    assert (one[~valid] == 0).all()
    np.testing.assert_allclose(attention_prior(history, profile, [keys, keys]), 2 * one, rtol=1e-5)
    # A key that is the same for every item says nothing: it adds 0.
    np.testing.assert_allclose(attention_prior(history, profile, [keys, np.ones((7, 3))]), one, rtol=1e-6)


def test_content_keys_take_each_feature_at_its_strongest_cell():
    features = np.zeros((2, 4, 3), np.float32)
    features[0, 2, 1] = 5.0  # item 0 shows feature 1 in cell 2 only
    features[1, :, 0] = 1.0
    np.testing.assert_array_equal(content_keys(features), [[0, 5, 0], [1, 0, 0]])
