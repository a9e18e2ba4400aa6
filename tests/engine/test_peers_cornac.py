"""The Cornac peers score exactly as Cornac does, on our indices, and work with the engine's tools."""

from __future__ import annotations

import numpy as np
import pytest

from engine.models.ease import EASE
from engine.bench.peers import PEERS, CornacBPR, CornacEASE, CornacSASRec, peer_params
from tests.engine.test_peers import SPLITS, _check_engine_tools

USERS = np.array([0, 3, 17, 39])


def test_cornac_bpr_scores_like_cornac():
    pytest.importorskip("cornac")
    model = CornacBPR(factors=8, epochs=10, num_threads=1).fit(SPLITS.train, val=SPLITS.val)
    for u in USERS:
        np.testing.assert_allclose(model.score([u])[0], model._native.score(int(u)), rtol=1e-5, atol=1e-6)
    _check_engine_tools(model)


def test_cornac_ease_scores_like_cornac_and_equals_ours_without_its_clipping():
    pytest.importorskip("cornac")
    clipped = CornacEASE(l2=5.0).fit(SPLITS.train)
    for u in USERS:
        np.testing.assert_allclose(clipped.score([u])[0], np.ravel(clipped._native.score(int(u))), rtol=1e-5, atol=1e-6)
    assert (clipped.weights_ >= 0).all()  # Cornac's default posB drops the negative weights
    _check_engine_tools(clipped)
    # Without the clipping Cornac's B is the closed form our EASE computes (same indices).
    exact = CornacEASE(l2=5.0, positive_only=False).fit(SPLITS.train)
    ours = EASE(l2=5.0).fit(SPLITS.train)
    np.testing.assert_allclose(ours.weights_, exact.weights_, rtol=1e-4, atol=1e-6)


def test_cornac_sasrec_scores_each_user_from_the_chronological_history():
    pytest.importorskip("cornac")
    model = CornacSASRec(factors=16, epochs=2, max_len=5, random_state=1).fit(SPLITS.train)
    train = SPLITS.train
    for u in USERS:
        mine = train.user_idx == u
        order = np.argsort(train.timestamp[mine], kind="stable")
        history = train.item_idx[mine][order]
        np.testing.assert_array_equal(model.history_[model.history_start_[u] : model.history_start_[u + 1]], history)
        expected = model._native.score(int(u), history[-5:].tolist())
        np.testing.assert_allclose(model.score([u])[0], expected, rtol=1e-5, atol=1e-6)
    _check_engine_tools(model)


def test_cornac_peers_take_their_engine_models_settings():
    assert {p: m for p, (_, m) in PEERS.items() if p.startswith("cornac-")} == {
        "cornac-bpr": "bpr", "cornac-ease": "ease", "cornac-lightgcn": "lightgcn", "cornac-sasrec": "sasrec",
    }
    assert peer_params("cornac-ease", {"l2": 300.0}) == {"l2": 300.0}
    assert peer_params("cornac-lightgcn", {"factors": 32, "layers": 2, "epochs": 9, "learning_rate": 0.1}) == {
        "factors": 32, "layers": 2, "epochs": 9,
    }
    assert peer_params("cornac-sasrec", {"factors": 48, "max_len": 30, "epochs": 5, "random_state": 2}) == {
        "factors": 48, "max_len": 30, "epochs": 5, "random_state": 2,
    }
