"""The contract every registered model honours (after implicit's ``recommender_base_test``).

Parametrized over `engine.models.registry.MODELS`, so a model added to the registry is covered
without touching this file. A new model whose defaults are too slow for the tiny fixture (or
that needs some setting to learn it) adds an entry to `CONTRACT_PARAMS`; a model that does
not personalise adds its name to `NON_PERSONALISED`.

The fixture is a checkerboard: users of block b interact with most items of block b, with
distinct timestamps, so leave-last-out holds out one of them per user. Each user also rates two
items of the other block low (1 star, before everything else, so they always stay in train):
models that learn from rating values only see observed ratings, and without a few low ones they
would have no information about the other block at all.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from engine.data import from_frames, leave_last_out
from engine.errors import CheckpointError, NotFittedError, ParameterError, UnknownIdError
from engine.models.base import ABILITIES, Cancelled, Recommender
from engine.models.fold_in import FoldedUser
from engine.models.registry import MODELS, load_model

# Fast settings for the tiny fixture; models absent here run with their defaults.
CONTRACT_PARAMS: dict[str, dict] = {
    # No images in the fixture: ACF falls back to one learned component per item (features="auto").
    "acf": {"factors": 16, "attention_dim": 8, "components_dim": 8, "epochs": 15, "batch_size": 256, "learning_rate": 0.02},
    "bpr": {"batch_size": 64, "epochs": 100, "regularization": 0.03},
    "svd": {"factors": 8, "epochs": 40, "batch_size": 64, "learning_rate": 0.02},
    "mf-als": {"factors": 8, "epochs": 5},
    "autorec": {"factors": 16, "epochs": 30, "batch_size": 8, "learning_rate": 0.01},
    "item2vec": {"factors": 8, "walks_per_node": 10, "walk_length": 10, "window": 2, "neighbours": 5, "epochs": 5, "batch_size": 256},
    "feature-mlp": {"factors": 8, "layers": "16", "epochs": 30, "batch_size": 128, "learning_rate": 0.01, "patience": 0},
    "attention-neumf": {"factors": 8, "layers": "16", "heads": 2, "epochs": 15, "batch_size": 128, "learning_rate": 0.01},
    # Tiny data: GMF with more factors memorises each user's sampled negatives (the held-out items).
    "gmf": {"factors": 2, "epochs": 30, "batch_size": 64, "learning_rate": 0.02},
    "mlp": {"factors": 8, "layers": "16,8", "epochs": 30, "batch_size": 64, "learning_rate": 0.05},
    "neumf": {"factors": 8, "layers": "16,8", "epochs": 20, "batch_size": 64, "learning_rate": 0.05, "pretrain": True},
    "sasrec": {"factors": 16, "max_len": 20, "epochs": 30, "batch_size": 16, "learning_rate": 0.01, "eval_every": 1},
}
# Models that give every user the same ranking: checks about personalisation skip them.
NON_PERSONALISED = {"popularity"}

N_BLOCKS, USERS_PER_BLOCK, ITEMS_PER_BLOCK = 2, 20, 15
MISSING, OFF_BLOCK = 3, 2  # own-block items a user never sees; other-block items rated low
K = ITEMS_PER_BLOCK // 3  # own-block candidates left after train: MISSING + val + test = K


def _checkerboard():
    rng = np.random.default_rng(0)
    rows = []
    for user in range(N_BLOCKS * USERS_PER_BLOCK):
        block = user // USERS_PER_BLOCK
        own = np.arange(block * ITEMS_PER_BLOCK, (block + 1) * ITEMS_PER_BLOCK)
        others = np.setdiff1d(np.arange(N_BLOCKS * ITEMS_PER_BLOCK), own)
        t = user * 1000
        for item in rng.choice(others, OFF_BLOCK, replace=False):
            rows.append((user, item, 1.0, t))
            t += 1
        for j, item in enumerate(rng.permutation(own)[: ITEMS_PER_BLOCK - MISSING]):
            rows.append((user, item, 4.0 + j % 2, t))
            t += 1
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    dataset = from_frames("checkerboard", frame)
    user_block = dataset.user_ids.astype(int) // USERS_PER_BLOCK
    item_block = dataset.item_ids.astype(int) // ITEMS_PER_BLOCK
    return dataset, leave_last_out(dataset), user_block, item_block


DATASET, SPLITS, USER_BLOCK, ITEM_BLOCK = _checkerboard()
NAMES = list(MODELS)


def make(name: str, **overrides) -> Recommender:
    cls = MODELS[name]
    params = {**CONTRACT_PARAMS.get(name, {}), **overrides}
    if "device" in cls.param_names():
        params.setdefault("device", "cpu")  # bitwise-reproducible checks; GPU has its own tests
    return cls.from_params(**params)


_FITTED: dict[str, Recommender] = {}


def fitted(name: str) -> Recommender:
    """One fit per model for the read-only checks (they never mutate the model)."""
    if name not in _FITTED:
        _FITTED[name] = make(name).fit(SPLITS.train, val=SPLITS.val)
    return _FITTED[name]


def test_fixture_is_a_checkerboard():
    assert len(SPLITS.test) == len(SPLITS.val) == N_BLOCKS * USERS_PER_BLOCK
    def own_block(split):
        return USER_BLOCK[split.user_idx] == ITEM_BLOCK[split.item_idx]

    assert own_block(SPLITS.val).all() and own_block(SPLITS.test).all()
    assert (~own_block(SPLITS.train)).sum() == OFF_BLOCK * DATASET.n_users


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NON_PERSONALISED])
def test_held_out_item_recovered(name):
    model = fitted(name)
    users, test_items = SPLITS.test.user_idx, SPLITS.test.item_idx
    recs, _ = model.recommend(users, k=K)
    hit = (recs == test_items[:, None]).any(axis=1)
    assert hit.mean() >= 0.8, f"test item in the top {K} for only {hit.mean():.0%} of users"
    own_block = ITEM_BLOCK[recs[:, :3]] == USER_BLOCK[users][:, None]
    assert own_block.mean() >= 0.9, f"only {own_block.mean():.0%} of the top 3 come from the user's block"


@pytest.mark.parametrize("name", NAMES)
def test_batch_scores_equal_single_and_paired(name):
    model = fitted(name)
    users = np.arange(DATASET.n_users)
    full = model.score(users)
    assert full.shape == (DATASET.n_users, DATASET.n_items) and full.dtype == np.float32
    for u in (0, 7, 25, 39):
        np.testing.assert_allclose(model.score([u])[0], full[u], rtol=1e-5, atol=1e-6)
    rng = np.random.default_rng(1)
    pu, pi = rng.integers(0, DATASET.n_users, 50), rng.integers(0, DATASET.n_items, 50)
    np.testing.assert_allclose(model.score(pu, pi), full[pu, pi], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_exclude_seen_and_item_restriction(name):
    model = fitted(name)
    users = np.arange(DATASET.n_users)
    seen = SPLITS.train.matrix(binary=True).toarray().astype(bool)
    recs, scores = model.recommend(users, k=10)
    assert recs.shape == scores.shape == (len(users), 10)
    assert not seen[users[:, None], recs].any(), "a train item was recommended despite exclude_seen"
    assert (np.diff(scores, axis=1) <= 0).all(), "recommendations are not sorted best first"

    allowed = np.array([1, 4, 17, 22])
    recs, scores = model.recommend(users, k=6, exclude_seen=False, items=allowed)
    assert np.isin(recs[:, :4], allowed).all() and (np.sort(recs[:, :4], axis=1) == allowed).all()
    assert (recs[:, 4:] == -1).all() and np.isneginf(scores[:, 4:]).all()


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, tmp_path):
    model = fitted(name)
    model.save(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    users = np.arange(DATASET.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], model.recommend(users, k=5)[0])


@pytest.mark.parametrize("name", NAMES)
def test_corrupt_checkpoints_raise(name, tmp_path):
    model = fitted(name)
    directory = model.save(tmp_path / "ckpt")
    (directory / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="weights.pt"):
        load_model(directory)

    directory = model.save(tmp_path / "ckpt2")
    (directory / "model.json").write_text('{"model": "' + name + '", "params": {')
    with pytest.raises(CheckpointError, match="model.json"):
        load_model(directory)
    (directory / "model.json").unlink()
    with pytest.raises(CheckpointError, match="model.json"):
        load_model(directory)


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_model_raises(name):
    model = make(name)
    with pytest.raises(NotFittedError):
        model.score([0])
    with pytest.raises(NotFittedError):
        model.recommend([0])


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_validated(name):
    cls = MODELS[name]
    with pytest.raises(ParameterError, match="no_such_parameter"):
        cls.from_params(no_such_parameter=1)
    assert set(cls.default_params()) == set(cls.param_names())
    json.dumps(cls.default_params())  # the UI and model.json need JSON defaults
    for key, spec in cls.param_space.items():
        assert key in cls.param_names(), f"param_space names {key!r}, which __init__ does not take"
        if spec.kind in ("int", "float"):
            bad = spec.high * 2 + 1 if spec.high is not None else spec.low - 1
        elif spec.kind == "choice":
            bad = "no-such-choice"
        else:
            bad = "maybe"
        with pytest.raises(ParameterError, match=key):
            cls.from_params(**{key: bad})


@pytest.mark.parametrize("name", NAMES)
def test_nan_inf_and_fractions_are_refused_for_every_number(name):
    """nan slips past every range check (it compares False) and trained to NDCG 0; 16.7 became 16."""
    cls = MODELS[name]
    for key, spec in cls.param_space.items():
        if spec.kind not in ("int", "float"):
            continue
        bad = ["nan", "inf", "-inf", float("nan"), float("inf")] + (["16.7", 16.7, "1e400"] if spec.kind == "int" else [])
        for value in bad:
            with pytest.raises(ParameterError, match=f"parameter {key!r} must be"):
                cls.from_params(**{key: value})


@pytest.mark.parametrize("name", [n for n in NAMES if "random_state" in MODELS[n].param_names()])
def test_fit_is_deterministic_under_random_state(name):
    users = np.arange(DATASET.n_users)
    first = make(name, random_state=3).fit(SPLITS.train).score(users)
    again = make(name, random_state=3).fit(SPLITS.train).score(users)
    other = make(name, random_state=4).fit(SPLITS.train).score(users)
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-6)
    assert not np.allclose(other, first, rtol=1e-5, atol=1e-6), "random_state has no effect"


@pytest.mark.parametrize("name", NAMES)
def test_similar_items(name):
    model = fitted(name)
    query = np.array([0, 5, 16, 29])
    if not model.capabilities()["similar_items"]:
        with pytest.raises(NotImplementedError):
            model.similar_items(query, k=5)
        return
    idx, scores = model.similar_items(query, k=5)
    assert idx.shape == scores.shape == (len(query), 5)
    assert ((idx >= 0) & (idx < DATASET.n_items)).all()
    assert not (idx == query[:, None]).any(), "an item is listed as similar to itself"
    assert all(len(set(row)) == 5 for row in idx.tolist())
    assert (np.diff(scores, axis=1) <= 1e-6).all()


@pytest.mark.parametrize("name", NAMES)
def test_embeddings_match_catalogue(name):
    model = fitted(name)
    caps = model.capabilities()
    for what, n in (("item_embeddings", DATASET.n_items), ("user_embeddings", DATASET.n_users)):
        if caps[what]:
            emb = getattr(model, what)()
            assert emb.ndim == 2 and emb.shape[0] == n and np.isfinite(emb).all()
        else:
            with pytest.raises(NotImplementedError):
                getattr(model, what)()


@pytest.mark.parametrize("name", [n for n in NAMES if "epochs" in MODELS[n].param_names()])
def test_progress_events_and_cancel(name):
    """Every model that trains in epochs reports each one and can be cancelled from the callback."""
    events = []
    make(name).fit(SPLITS.train, callback=events.append)
    assert events, "an iterative model must report progress"
    epochs = [e["epoch"] for e in events]
    assert all({"epoch", "epochs", "loss", "seconds"} <= set(e) for e in events)
    # Never backwards; stages trained side by side (NeuMF's GMF and MLP) report the same epoch.
    assert epochs[0] >= 1 and all(b >= a for a, b in zip(epochs, epochs[1:])) and epochs[-1] > epochs[0]
    for stage in {e.get("stage") for e in events}:
        mine = [e["epoch"] for e in events if e.get("stage") == stage]
        assert all(b > a for a, b in zip(mine, mine[1:]))
    assert all(1 <= e["epoch"] <= e["epochs"] for e in events)

    def cancel(event):
        raise Cancelled("stop")

    model = make(name)
    with pytest.raises(Cancelled):
        model.fit(SPLITS.train, callback=cancel)
    assert not model.is_fitted
    with pytest.raises(NotFittedError):
        model.score([0])


# ---- optional abilities: each class flag agrees with what the fitted model does ------------------
@pytest.mark.parametrize("name", NAMES)
def test_abilities_match_their_flags(name, tmp_path):
    """A flag the UI reads without a checkpoint (`Recommender.abilities`) must match the
    methods: a declared ability works on the fitted model, an undeclared one raises
    `NotImplementedError`."""
    cls, model = MODELS[name], fitted(name)
    assert cls.abilities() <= set(ABILITIES)
    caps = model.capabilities()
    assert cls.has_embeddings == (caps["item_embeddings"] or caps["user_embeddings"])
    assert {a: caps[a] for a in ABILITIES if a != "embeddings"} == {
        a: a in cls.abilities() for a in ABILITIES if a != "embeddings"
    }
    history = np.sort(model.seen_[0].indices)
    if cls.has_fold_in:
        check_fold_in(model, history, tmp_path)
    else:
        with pytest.raises(NotImplementedError, match=repr(name)):
            model.fold_in(history)
        with pytest.raises(NotImplementedError, match=repr(name)):
            model.fold_in_scores(history, np.ones((1, len(history)), bool), [1])
    if cls.has_attention:
        att = model.attention(0)
        items = [i for i, _ in att["profile"]]
        assert set(items) <= set(history.tolist()) and items
        assert sum(a for _, a in att["profile"]) == pytest.approx(1.0, abs=1e-4)
    else:
        with pytest.raises(NotImplementedError, match=repr(name)):
            model.attention(0)
    if cls.has_attention and cls.has_fold_in:  # optional within the ability: check it where it is
        try:
            att = model.folded_attention(model.fold_in(history))
        except NotImplementedError as exc:
            assert repr(name) in str(exc)
        else:
            assert {i for i, _ in att["profile"]} <= set(history.tolist())
            assert sum(a for _, a in att["profile"]) == pytest.approx(1.0, abs=1e-4)
    else:
        with pytest.raises(NotImplementedError, match=repr(name)):
            model.folded_attention(None)
    if cls.has_feature_view:
        frame = model.feature_frame([0, 1, 5], [2, 3, 7])
        assert len(frame) == 3
        np.testing.assert_allclose(model.predict_frame(frame), model.score([0, 1, 5], [2, 3, 7]), rtol=1e-4, atol=1e-5)
    else:
        with pytest.raises(NotImplementedError, match=repr(name)):
            model.feature_frame([0], [1])


def check_fold_in(model, history, tmp_path) -> None:
    """The fold_in ability on one history: shapes, consistency, one-line errors, save/load."""
    folded = model.fold_in(history)
    assert isinstance(folded, FoldedUser) and folded.model == model.name
    np.testing.assert_array_equal(folded.items, history)
    full = model.score_folded(folded)
    assert full.shape == (DATASET.n_items,) and full.dtype == np.float32 and np.isfinite(full).all()
    np.testing.assert_allclose(model.score_folded(folded, [0, 5, 16]), full[[0, 5, 16]], rtol=1e-5, atol=1e-6)
    recs, scores = model.recommend_folded(folded, k=5)
    assert len(recs) == 5 and not set(recs.tolist()) & set(history.tolist())
    assert (np.diff(scores) <= 1e-6).all()
    np.testing.assert_allclose(scores, full[recs], rtol=1e-5, atol=1e-6)
    # The batched variants behind "because you liked": one row per variant, empty ones too.
    masks = np.ones((3, len(history)), bool)
    masks[1, 0], masks[2] = False, False
    batched = model.fold_in_scores(history, masks, [0, 5, 16], user=0)
    assert batched.shape == (3, 3) and np.isfinite(batched).all()
    # Bad histories: one line naming the problem.
    bad = [
        ([], ParameterError, "empty"),
        ([history[0], history[0]], ParameterError, "more than once"),
        ([DATASET.n_items], UnknownIdError, "outside"),
        ([0.5], ParameterError, "integer"),
    ]
    for items, error, words in bad:
        with pytest.raises(error, match=words) as info:
            model.fold_in(items)
        assert "\n" not in str(info.value)
    with pytest.raises(ParameterError, match="one rating per item"):
        model.fold_in(history, ratings=[4.0])
    with pytest.raises(ParameterError, match="folded into"):
        model.score_folded(FoldedUser(folded.items, None, folded.state, "another-model"))
    with pytest.raises(NotFittedError):
        make(model.name).fold_in(history)
    # A reloaded checkpoint folds the same user in to the same scores.
    loaded = load_model(model.save(tmp_path / "ckpt"))
    np.testing.assert_allclose(loaded.score_folded(loaded.fold_in(history)), full, rtol=1e-5, atol=1e-6)


#: Models whose fold-in is exact (the model's own user solve, mean, sum or sequence state): a training user's
#: history folded in ranks the unseen items as the model ranks them for that user.
EXACT_FOLD_IN = {"als", "ease", "item2vec", "itemknn", "sasrec"}


@pytest.mark.parametrize("name", [n for n in NAMES if MODELS[n].has_fold_in])
def test_fold_in_ranks_like_the_model(name):
    """Fold each test user in from their training items: the held-out item comes back near
    the top, and the folded scores rank the unseen items like the model's own scores.

    Exact families agree with the model (ALS up to its last half-sweep, which solved the users
    against the item factors before the final item update). The approximate ones only have to
    rank sensibly: on this checkerboard the measured hit rates are 0.45 (acf) to 1.0, the
    Spearman correlations 0.57 (mf-als) to 0.93; chance is a hit rate near 0.3 and 0.
    The history is given in time order, oldest first, as a user met it: a sequence model
    (sasrec) reads the order, the others only the set.
    """
    from scipy.stats import spearmanr

    model = fitted(name)
    hits, rhos = [], []
    for user, test_item in zip(SPLITS.test.user_idx, SPLITS.test.item_idx):
        history = training_items_in_time_order(user)
        folded = model.fold_in(history)
        recs, _ = model.recommend_folded(folded, k=K)
        hits.append(test_item in recs)
        unseen = np.setdiff1d(np.arange(DATASET.n_items), history)
        rhos.append(spearmanr(model.score_folded(folded)[unseen], model.score([user])[0][unseen])[0])
    if name in NON_PERSONALISED:
        # Nothing to recover from a history: the folded scores are the model's own, exactly.
        assert np.mean(rhos) == pytest.approx(1.0)
        assert all((model.score_folded(model.fold_in(model.seen_[u].indices)) == model.score([u])[0]).all()
                   for u in SPLITS.test.user_idx)
    elif name in EXACT_FOLD_IN:
        assert np.mean(hits) >= 0.85 and np.mean(rhos) >= 0.99, (np.mean(hits), np.mean(rhos))
    else:
        assert np.mean(hits) >= 0.4 and np.mean(rhos) >= 0.4, (np.mean(hits), np.mean(rhos))


def training_items_in_time_order(user: int) -> np.ndarray:
    """`user`'s training items, oldest first (the fixture's timestamps are distinct)."""
    mine = SPLITS.train.user_idx == user
    return SPLITS.train.item_idx[mine][np.argsort(SPLITS.train.timestamp[mine], kind="stable")]


def run_contract(name: str, tmp_path) -> None:
    """Every check above that applies to model `name`, for a model registered during a test
    (the parametrisation only sees the registry as it was at import)."""
    cls = MODELS[name]
    for check in (
        test_batch_scores_equal_single_and_paired,
        test_exclude_seen_and_item_restriction,
        test_unfitted_model_raises,
        test_parameters_are_validated,
        test_nan_inf_and_fractions_are_refused_for_every_number,
        test_similar_items,
        test_embeddings_match_catalogue,
    ):
        check(name)
    with_folder = (test_save_load_round_trip, test_corrupt_checkpoints_raise, test_abilities_match_their_flags)
    for i, check in enumerate(with_folder):
        folder = tmp_path / f"check{i}"
        folder.mkdir()
        check(name, folder)
    if name not in NON_PERSONALISED:
        test_held_out_item_recovered(name)
    if "random_state" in cls.param_names():
        test_fit_is_deterministic_under_random_state(name)
    if "epochs" in cls.param_names():
        test_progress_events_and_cancel(name)
    if cls.has_fold_in:
        test_fold_in_ranks_like_the_model(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("name", [n for n in NAMES if "device" in MODELS[n].param_names()])
def test_cuda_fit_matches_cpu_quality(name):
    model = make(name, device="cuda").fit(SPLITS.train, val=SPLITS.val)
    if name not in NON_PERSONALISED:
        recs, _ = model.recommend(SPLITS.test.user_idx, k=K)
        assert (recs == SPLITS.test.item_idx[:, None]).any(axis=1).mean() >= 0.8
