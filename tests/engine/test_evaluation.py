"""Evaluation protocol: metrics against values worked out by hand (RecBole/cornac style)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import engine.evaluation as ev
from engine.data import Split, from_frames
from engine.errors import EngineError, NotFittedError, ParameterError
from engine.evaluation import evaluate, evaluate_splits, rank_targets, rating_metrics, sample_negatives, user_metrics
from engine.models.base import Recommender


class FixedScores(Recommender):
    """A 'fitted' model whose score matrix is set by hand."""

    name = "fixed-scores"

    def __init__(self, *, table=None):
        self.table = table

    def _fit(self, train, val, callback):
        self.scores_ = np.asarray(self.table, np.float32)

    def _score(self, user_idx, item_idx):
        return self.scores_[user_idx] if item_idx is None else self.scores_[user_idx, item_idx]


# Four users (indices 0..3), six items (0..5). Raw ids are numbers, so index = raw id - 1.
#   user 0: train {0}     val {1}  test {2}
#   user 1: train {3}              test {0, 4}   (two targets)
#   user 2: train {1, 2}  val {5}                (no test: not evaluated on test)
#   user 3: train {0, 3}                         (no test)
PARTS = [
    (0, 0, "train", 5.0), (0, 1, "val", 4.0), (0, 2, "test", 4.0),
    (1, 3, "train", 2.0), (1, 0, "test", 3.0), (1, 4, "test", 5.0),
    (2, 1, "train", 1.0), (2, 2, "train", 2.0), (2, 5, "val", 3.0),
    (3, 0, "train", 4.0), (3, 3, "train", 3.0),
]
SCORES = [
    # item: 0    1    2    3    4    5
    [9.0, 8.0, 5.0, 7.0, 6.0, 4.0],  # user 0
    [1.0, 5.0, 3.0, 9.0, 5.0, 2.0],  # user 1
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # user 2
    [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # user 3
]


@pytest.fixture(scope="module")
def tiny():
    frame = pd.DataFrame(PARTS, columns=["user", "item", "part", "rating"])
    ratings = pd.DataFrame({"user_id": frame.user + 1, "item_id": frame.item + 1, "rating": frame.rating})
    dataset = from_frames("tiny", ratings)
    full = Split.from_dataset(dataset)
    parts = frame["part"].to_numpy()
    train, val, test = (full.subset(parts == p) for p in ("train", "val", "test"))
    assert list(dataset.user_ids) == ["1", "2", "3", "4"] and list(dataset.item_ids) == ["1", "2", "3", "4", "5", "6"]
    model = FixedScores(table=SCORES).fit(train)
    return model, train, val, test


def test_hand_worked_full_ranking(tiny):
    model, _, val, test = tiny
    m = evaluate(model, test, exclude=[val], k=3)
    # User 0: candidates = all - seen {0} - val {1} = {2, 3, 4, 5}; negatives {3, 4, 5} score
    #   7, 6, 4; target 2 scores 5 -> beaten by two -> position 2 (third).
    #   hr@3 = 1, ndcg@3 = 1/log2(4) = 0.5, recall 1/1, precision 1/3, rr 1/3,
    #   auc = negatives below 5: {5} -> 1/3.
    # User 1: seen {3}; targets 4 (score 5) and 0 (score 1); negatives {1, 2, 5} score 5, 3, 2.
    #   target 4: item 1 ties at 5 -> counted above (pessimistic) -> rank 1 -> position 1;
    #   target 0: all three negatives above -> rank 3, plus target 4 above it -> position 4.
    #   hits@3 = 1 (position 1) -> hr 1, recall 1/2, precision 1/3, rr 1/2;
    #   dcg = 1/log2(3), idcg = 1 + 1/log2(3) -> ndcg = 0.63093 / 1.63093 = 0.386853;
    #   auc: target 4 beats items 2 and 5 and ties with item 1 (half a win) -> 2.5/3;
    #   target 0 beats none -> 0/3; user 1's auc is their mean, 5/12.
    ndcg_user1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["users"] == 2
    assert m["hr@3"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx((0.5 + ndcg_user1) / 2)
    assert m["recall@3"] == pytest.approx((1 + 0.5) / 2)
    assert m["precision@3"] == pytest.approx(1 / 3)
    assert m["mrr"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert m["auc"] == pytest.approx((1 / 3 + 5 / 12) / 2)
    # Top-3 lists: user 0 over {2, 3, 4, 5} (5, 7, 6, 4) -> {3, 4, 2}; user 1 over
    #   {0, 1, 2, 4, 5} (1, 5, 3, 5, 2) -> {1, 4, 2}. Distinct {1, 2, 3, 4}: coverage 4/6.
    assert m["coverage@3"] == pytest.approx(4 / 6)
    # Train popularity (users): item 0: 2, item 3: 2, items 1, 2: 1, items 4, 5: 0 -> 1.
    #   4 train users -> self-information 1 bit for popularity 2, 2 bits for 1.
    #   user 0 {3, 4, 2}: (1 + 2 + 2)/3 = 5/3; user 1 {1, 4, 2}: 2 -> mean 11/6.
    assert m["novelty@3"] == pytest.approx(11 / 6)
    assert list(m) == ["hr@3", "ndcg@3", "recall@3", "precision@3", "mrr", "auc", "coverage@3", "novelty@3", "users"]


def test_cutoff_below_the_target(tiny):
    model, _, val, test = tiny
    m = evaluate(model, test, exclude=val, k=2)
    # User 0's target is third: no hit at 2. User 1's best target is second: a hit; its ndcg
    # has the same two-term ideal as at k=3.
    ndcg_user1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["hr@2"] == pytest.approx(0.5)
    assert m["ndcg@2"] == pytest.approx(ndcg_user1 / 2)
    assert m["precision@2"] == pytest.approx((0 + 1 / 2) / 2)
    assert m["mrr"] == pytest.approx((1 / 3 + 1 / 2) / 2)  # untruncated


def test_exclude_split_changes_the_candidates(tiny):
    model, _, _, test = tiny
    m = evaluate(model, test, k=3)
    # Without excluding val, user 0's item 1 (score 8) is a negative too: negatives {1,3,4,5}
    # score 8, 7, 6, 4 -> target (5) at position 3 -> no hit at 3, rr 1/4, auc 1/4. User 1
    # has no val: as before (auc 5/12).
    assert m["hr@3"] == pytest.approx((0 + 1) / 2)
    assert m["mrr"] == pytest.approx((1 / 4 + 1 / 2) / 2)
    assert m["auc"] == pytest.approx((1 / 4 + 5 / 12) / 2)


def test_rank_result_and_top_lists_exclude_seen(tiny):
    model, train, val, test = tiny
    res = rank_targets(model, test, exclude=[val], k=3)
    np.testing.assert_array_equal(res.users, [0, 1])
    np.testing.assert_array_equal(res.target_item, [2, 4, 0])  # best first within a user
    np.testing.assert_array_equal(res.target_rank, [2, 1, 3])
    np.testing.assert_array_equal(res.target_position, [2, 1, 4])
    np.testing.assert_array_equal(res.target_negatives, [3, 3, 3])
    np.testing.assert_array_equal(res.best_position, [2, 1])
    assert res.top_items[0].tolist() == [3, 4, 2]  # item 0 (score 9, seen) and 1 (8, val) skipped
    assert res.top_items[1, 2] == 2 and set(res.top_items[1, :2]) == {1, 4}
    per_user = user_metrics(res)
    np.testing.assert_allclose(per_user["rr"], [1 / 3, 1 / 2])


def test_users_filter(tiny):
    model, _, val, test = tiny
    m = evaluate(model, test, exclude=[val], k=3, users=[1, 2])  # user 2 has no test item
    assert m["users"] == 1
    assert m["mrr"] == pytest.approx(1 / 2)
    with pytest.raises(EngineError, match="nothing to evaluate"):
        evaluate(model, test, users=[2, 3])


def test_ties_are_pessimistic_in_the_lists_and_half_a_win_for_auc(tiny):
    _, train, val, test = tiny
    constant = FixedScores(table=np.ones((4, 6))).fit(train)
    m = evaluate(constant, test, exclude=[val], k=3)
    # Every negative ties with every target and counts above it: user 0's target sits after
    # its 3 negatives (position 3), user 1's after 3 negatives and after each other (3, 4).
    assert m["hr@3"] == 0.0 and m["ndcg@3"] == 0.0
    assert m["mrr"] == pytest.approx(1 / 4)
    # AUC compares the target with each negative: every comparison a tie, a random order.
    assert m["auc"] == pytest.approx(0.5)


def test_nan_scores_rank_last(tiny):
    model, train, val, test = tiny
    table = np.array(SCORES)
    table[0, 2] = np.nan  # user 0's target
    m = evaluate(FixedScores(table=table).fit(train), test, exclude=[val], k=3, users=[0])
    assert m["mrr"] == pytest.approx(1 / 4) and m["auc"] == 0.0


def test_sampled_with_every_negative_drawn(tiny):
    model, _, val, test = tiny
    # Users 0 and 1 each have exactly 3 never-interacted items, so 3 negatives draws them all.
    # Sampled lists are one per target: user 0 as in full ranking (position 2); user 1's
    # target 4 at position 1 and target 0 at position 3 (the other target is no negative).
    m = evaluate(model, test, exclude=[val], protocol="sampled", n_negatives=3, k=3)
    assert m["hr@3"] == pytest.approx((1 + 0.5) / 2)
    assert m["ndcg@3"] == pytest.approx((0.5 + (1 / math.log2(3)) / 2) / 2)
    assert m["mrr"] == pytest.approx((1 / 3 + (1 / 2 + 1 / 4) / 2) / 2)
    assert m["auc"] == pytest.approx((1 / 3 + 5 / 12) / 2)
    # Asking for more than exist ranks against all of them.
    assert evaluate(model, test, exclude=[val], protocol="sampled", n_negatives=50, k=3) == m


def _random_world(seed=0, n_users=40, n_items=120):
    rng = np.random.default_rng(seed)
    rows = [(u, i) for u in range(n_users) for i in rng.choice(n_items, rng.integers(4, 30), replace=False)]
    ratings = pd.DataFrame(rows, columns=["user_id", "item_id"])
    ratings["rating"] = rng.integers(1, 6, len(ratings)).astype(float)
    dataset = from_frames("random", ratings)
    full = Split.from_dataset(dataset)
    part = rng.choice(3, len(full), p=[0.6, 0.2, 0.2])  # several targets per user
    train, val, test = (full.subset(part == p) for p in range(3))
    table = rng.normal(size=(dataset.n_users, dataset.n_items)).round(1)  # rounding makes ties
    return FixedScores(table=table).fit(train), train, val, test


def test_sampled_negatives_are_distinct_unseen_and_seeded():
    model, train, val, test = _random_world()
    users, items, neg = sample_negatives(model, test, exclude=[val], n_negatives=20, random_state=7)
    interacted = (train.matrix(binary=True) + val.matrix(binary=True) + test.matrix(binary=True)).tocsr()
    for t in range(len(users)):
        row = neg[t]
        assert (row >= 0).all() and len(np.unique(row)) == 20
        assert not set(row) & set(interacted[users[t]].indices)
    again = sample_negatives(model, test, exclude=[val], n_negatives=20, random_state=7)[2]
    other = sample_negatives(model, test, exclude=[val], n_negatives=20, random_state=8)[2]
    np.testing.assert_array_equal(neg, again)
    assert (neg != other).any()

    # The ranks of the sampled protocol are those of these very negatives (pessimistic ties).
    res = rank_targets(model, test, exclude=[val], protocol="sampled", n_negatives=20, random_state=7)
    scores = model.scores_
    expected = (scores[users[:, None], neg] >= scores[users, items][:, None]).sum(axis=1)
    got = dict(zip(zip(res.users[res.target_user], res.target_item), res.target_rank))
    assert [got[(u, i)] for u, i in zip(users, items)] == expected.tolist()
    assert (res.target_negatives == 20).all()


def _brute_force(model, target, exclude, k):
    """Per-user loop, straight from the definitions: the reference for the vectorized code."""
    n_items = target.n_items
    banned = model.seen_.toarray().astype(bool) | exclude.matrix(binary=True).toarray().astype(bool)
    targets = target.matrix(binary=True).toarray().astype(bool)
    out = {"hr": [], "ndcg": [], "recall": [], "prec": [], "rr": [], "auc": []}
    for u in np.flatnonzero(targets.any(axis=1)):
        s = model.scores_[u]
        pos_items = np.flatnonzero(targets[u])
        neg = np.flatnonzero(~banned[u] & ~targets[u])
        ranks = np.sort([(s[neg] >= s[i]).sum() for i in pos_items])
        position = ranks + np.arange(len(ranks))
        hits = position < k
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(ranks))))
        out["hr"].append(hits.any())
        out["ndcg"].append(sum(1 / math.log2(p + 2) for p in position[hits]) / idcg)
        out["recall"].append(hits.sum() / len(ranks))
        out["prec"].append(hits.sum() / k)
        out["rr"].append(1 / (position[0] + 1))
        out["auc"].append(np.mean([(s[neg] < s[i]).mean() + (s[neg] == s[i]).mean() / 2 for i in pos_items]))
    return {key: float(np.mean(v)) for key, v in out.items()}


def test_matches_a_per_user_reference():
    model, _, val, test = _random_world(seed=3)
    m = evaluate(model, test, exclude=val, k=5)
    ref = _brute_force(model, test, val, 5)
    for ours, theirs in [("hr@5", "hr"), ("ndcg@5", "ndcg"), ("recall@5", "recall"), ("precision@5", "prec"), ("mrr", "rr"), ("auc", "auc")]:
        assert m[ours] == pytest.approx(ref[theirs]), ours


@pytest.mark.parametrize("protocol", ["full", "sampled"])
def test_blocks_give_the_same_result(monkeypatch, protocol):
    model, _, val, test = _random_world(seed=1)
    whole = evaluate(model, test, exclude=[val], protocol=protocol, n_negatives=30, k=5)
    monkeypatch.setattr(ev, "BLOCK_CELLS", 1)  # one user per block
    single = evaluate(model, test, exclude=[val], protocol=protocol, n_negatives=30, k=5)
    monkeypatch.setattr(ev, "BLOCK_CELLS", 7 * test.n_items * 4)  # a few users per block
    few = evaluate(model, test, exclude=[val], protocol=protocol, n_negatives=30, k=5)
    assert whole == pytest.approx(single) and whole == pytest.approx(few)


def test_rating_metrics_by_hand(tiny, monkeypatch):
    model, _, _, test = tiny
    # Test pairs (user, item, rating -> predicted score): (0, 2, 4 -> 5), (1, 0, 3 -> 1),
    # (1, 4, 5 -> 5): errors 1, -2, 0 -> rmse sqrt(5/3), mae 1.
    expected = {"rmse": math.sqrt(5 / 3), "mae": 1.0}
    assert rating_metrics(model, test) == pytest.approx(expected)
    monkeypatch.setattr(ev, "PAIR_BLOCK", 1)
    assert rating_metrics(model, test) == pytest.approx(expected)


def test_bad_input(tiny):
    model, train, val, test = tiny
    with pytest.raises(ParameterError, match="full, sampled"):
        evaluate(model, test, protocol="loo")
    with pytest.raises(ParameterError, match="k must be"):
        evaluate(model, test, k=0)
    with pytest.raises(ParameterError, match="n_negatives"):
        evaluate(model, test, protocol="sampled", n_negatives=0)
    with pytest.raises(NotFittedError):
        evaluate(FixedScores(table=SCORES), test)
    other = _random_world()[3]
    with pytest.raises(EngineError, match="does not match the model"):
        evaluate(model, other)
    with pytest.raises(EngineError, match="nothing to evaluate"):
        evaluate(model, test.subset(np.zeros(len(test), bool)))


def test_popularity_on_ml100k(ml100k_splits):
    from engine.models.popularity import Popularity

    model = Popularity().fit(ml100k_splits.train)
    m = evaluate_splits(model, ml100k_splits)
    # Measured on the generated folder: ndcg@10 0.038, hr@10 0.080, coverage@10 0.083 (about the
    # real ML-100k's 0.043, 0.084, 0.054); a random ranking would give hr@10 about 10/1,682.
    assert m["users"] == 943
    assert 0.025 < m["ndcg@10"] < 0.06
    assert 0.05 < m["hr@10"] < 0.11
    # One ranking for everyone: the top-10 lists differ only by the items each user has seen.
    assert m["coverage@10"] < 0.1
    # Sampled-99 is far more lenient than full ranking (Krichene & Rendle 2020): measured 0.494.
    sampled = evaluate_splits(model, ml100k_splits, protocol="sampled")
    assert 0.35 < sampled["hr@10"] < 0.6


def test_popularity_on_real_ml100k(real_ml100k):
    from engine.data import leave_last_out
    from engine.models.popularity import Popularity

    splits = leave_last_out(real_ml100k)
    model = Popularity().fit(splits.train)
    m = evaluate_splits(model, splits)
    # Measured: ndcg@10 0.0432, hr@10 0.0838, auc 0.795, coverage@10 0.054 (943 users).
    assert m["users"] == 943
    assert 0.03 < m["ndcg@10"] < 0.06
    assert 0.06 < m["hr@10"] < 0.11
    assert m["coverage@10"] < 0.1
    # Measured: 0.411.
    sampled = evaluate_splits(model, splits, protocol="sampled")
    assert 0.3 < sampled["hr@10"] < 0.5


def test_auc_per_user_is_scikit_learns_roc_auc_ties_included():
    """Each user's AUC is the area under their ROC curve over their candidates (targets against
    negatives), as scikit-learn computes it: the scores are rounded, so ties occur."""
    from sklearn.metrics import roc_auc_score

    model, _, val, test = _random_world(seed=5)
    res = rank_targets(model, test, exclude=[val], k=5)
    per_user = user_metrics(res)["auc"]
    banned = (model.seen_ + val.matrix(binary=True)).toarray().astype(bool)
    targets = test.matrix(binary=True).toarray().astype(bool)
    assert res.target_ties.sum() > 0  # the check below covers ties
    for row, u in enumerate(res.users):
        candidates = ~banned[u]
        expected = roc_auc_score(targets[u, candidates], model.scores_[u, candidates])
        assert per_user[row] == pytest.approx(expected), u
