"""The peer wrappers score exactly as their libraries do, and work with the engine's tools."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from engine.data import from_frames, leave_last_out
from engine.errors import EngineError, ParameterError
from engine.evaluation import evaluate
from engine.models.registry import MODELS
from engine.bench.peers import PEERS, ImplicitALS, ImplicitBPR, ImplicitCosine, LightFMWARP, peer_params


def _splits():
    rng = np.random.default_rng(0)
    rows = [(u, i, t) for u in range(40) for t, i in enumerate(rng.choice(30, 8, replace=False))]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame["timestamp"] += frame["user_id"] * 100
    return leave_last_out(from_frames("peers-tiny", frame))


SPLITS = _splits()
USERS = np.array([0, 3, 17, 39])


def _fit(cls, **params):
    return cls(num_threads=1, **params).fit(SPLITS.train, val=SPLITS.val)


def _check_engine_tools(model):
    recs, scores = model.recommend(np.arange(SPLITS.train.n_users), k=5)
    seen = SPLITS.train.matrix(binary=True).toarray().astype(bool)
    assert recs.shape == (SPLITS.train.n_users, 5) and (recs >= 0).all()
    assert not seen[np.arange(len(recs))[:, None], recs].any(), "a train item was recommended"
    metrics = evaluate(model, SPLITS.test, exclude=[SPLITS.val])
    assert 0.0 <= metrics["ndcg@10"] <= 1.0 and metrics["users"] == 40


def _library_top(native, users, k=6):
    """The library's own top-k (ids, scores) without filtering, for each user."""
    user_items = SPLITS.train.matrix(binary=True).astype(np.float32)
    return native.recommend(users, user_items[users], N=k, filter_already_liked_items=False)


@pytest.mark.parametrize("cls", [ImplicitALS, ImplicitBPR])
def test_implicit_factor_peers_score_like_implicit(cls):
    pytest.importorskip("implicit")
    model = _fit(cls, factors=8, epochs=10)
    ids, scores = _library_top(model._native, USERS)
    ours = model.score(np.repeat(USERS, ids.shape[1]), ids.ravel()).reshape(ids.shape)
    np.testing.assert_allclose(ours, scores, rtol=1e-4, atol=1e-5)
    _check_engine_tools(model)


def test_implicit_cosine_scores_like_implicit():
    pytest.importorskip("implicit")
    model = _fit(ImplicitCosine, K=5)
    ids, scores = _library_top(model._native, USERS)
    ours = model.score(np.repeat(USERS, ids.shape[1]), ids.ravel()).reshape(ids.shape)
    np.testing.assert_allclose(ours, scores, rtol=1e-5, atol=1e-6)
    _check_engine_tools(model)


def test_lightfm_warp_scores_like_lightfm_predict():
    pytest.importorskip("lightfm")
    model = _fit(LightFMWARP, factors=8, epochs=5)
    rng = np.random.default_rng(1)
    users = rng.integers(0, SPLITS.train.n_users, 20)
    items = rng.integers(0, SPLITS.train.n_items, 20)
    expected = model._native.predict(users.astype(np.int32), items.astype(np.int32))
    np.testing.assert_allclose(model.score(users, items), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.score(users)[np.arange(20), items], expected, rtol=1e-5, atol=1e-5)
    _check_engine_tools(model)


@pytest.mark.parametrize("cls_name", ["ImplicitALS", "ImplicitBPR"])
def test_progress_events_are_relayed(cls_name):
    # implicit's ALS and BPR call their callbacks with different arities.
    pytest.importorskip("implicit")
    import engine.bench.peers as peers

    events = []
    getattr(peers, cls_name)(factors=4, epochs=3, num_threads=1).fit(SPLITS.train, callback=events.append)
    assert [e["epoch"] for e in events] == [1, 2, 3] and all(e["epochs"] == 3 for e in events)


def test_peer_table_matches_engine_models():
    assert set(PEERS) == {"implicit-als", "implicit-bpr", "implicit-cosine", "lightfm-warp",
                          "cornac-bpr", "cornac-ease", "cornac-lightgcn", "cornac-sasrec"}
    for name, (cls, match) in PEERS.items():
        assert cls.name == name and name not in MODELS
        assert match in ("als", "bpr", "itemknn", "warp", "ease", "lightgcn", "sasrec")


def test_peer_params_copies_factors_and_iterations():
    ours = {"factors": 48, "epochs": 12, "regularization": 7.5, "alpha": 0.0, "random_state": 3, "device": "cpu"}
    assert peer_params("implicit-als", ours) == {"factors": 48, "epochs": 12, "random_state": 3}
    assert peer_params("lightfm-warp", {"factors": 32, "epochs": 20}) == {"factors": 32, "epochs": 20}
    assert peer_params("implicit-cosine", ours) == {}
    with pytest.raises(ParameterError, match="implicit-als"):
        peer_params("implicit-alss", ours)
    # What the bench does: a peer built from the copied parameters.
    peer = ImplicitALS.from_params(**peer_params("implicit-als", ours))
    assert (peer.factors, peer.epochs, peer.regularization) == (48, 12, 0.01)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightfm", None)  # makes `import lightfm` fail
    with pytest.raises(EngineError, match="pip install -r requirements-bench.txt"):
        LightFMWARP(factors=4, epochs=1).fit(SPLITS.train)
