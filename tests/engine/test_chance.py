"""Chance level: the formulas against the evaluation itself, averaged over every possible order."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from engine.chance import chance_metrics
from engine.data import Split, from_frames
from engine.errors import EngineError, ParameterError
from engine.evaluation import evaluate
from tests.engine.test_evaluation import FixedScores

N_ITEMS = 6
# (user, item, part): one target to three, some users with a validation item, one with nothing
# to find, one whose candidates (three) are fewer than k.
PARTS = [
    (0, 0, "train"), (0, 1, "val"), (0, 2, "test"),
    (1, 3, "train"), (1, 0, "test"), (1, 4, "test"),
    (2, 1, "train"), (2, 2, "test"), (2, 3, "test"), (2, 5, "test"),
    (3, 0, "train"), (3, 3, "train"),
    (4, 0, "train"), (4, 1, "train"), (4, 2, "val"), (4, 5, "test"),
    (5, 4, "test"),
]


@pytest.fixture(scope="module")
def world():
    frame = pd.DataFrame(PARTS, columns=["user", "item", "part"])
    ratings = pd.DataFrame({"user_id": frame.user, "item_id": frame.item, "rating": 1.0})
    dataset = from_frames("chance", ratings)
    assert dataset.n_items == N_ITEMS
    full = Split.from_dataset(dataset)
    parts = frame["part"].to_numpy()
    return tuple(full.subset(parts == p) for p in ("train", "val", "test"))


@pytest.mark.parametrize("protocol", ["full", "sampled"])
@pytest.mark.parametrize("k", [1, 2, 10])
def test_the_expectation_is_the_mean_over_every_order(world, k, protocol):
    """Every one of the 720 orders of six items, given to every user at once, makes each user's
    candidates fall in every order equally often: the mean of `evaluate` over them is exactly
    what a random order scores on average (sampled: two negatives drawn per target, or fewer
    where the user has fewer)."""
    train, val, test = world
    setting = {"exclude": [val], "protocol": protocol, "k": k, "n_negatives": 2}
    runs = [
        evaluate(FixedScores(table=np.tile(np.argsort(order), (train.n_users, 1))).fit(train), test, **setting)
        for order in itertools.permutations(range(N_ITEMS))
    ]
    chance = chance_metrics(train, test, **setting)
    assert set(chance) == {f"hr@{k}", f"ndcg@{k}", f"recall@{k}", f"precision@{k}", "mrr", "auc"}
    for key, value in chance.items():
        assert value == pytest.approx(np.mean([run[key] for run in runs]), abs=1e-12), key


def test_one_target_among_thousands_is_a_small_number():
    """The leave-last-out case: one next item among n candidates is in a random top 10 with
    chance 10 / n, and its reciprocal rank averages (1 + 1/2 + ... + 1/n) / n."""
    n_users, n_items = 3, 2000
    rows = [(u, i, "train") for u in range(n_users) for i in range(u + 1)] + [(u, 1999, "test") for u in range(n_users)]
    rows += [(n_users, i, "train") for i in range(n_items)]  # a user who saw everything: every item exists
    frame = pd.DataFrame(rows, columns=["user", "item", "part"])
    dataset = from_frames("many", pd.DataFrame({"user_id": frame.user, "item_id": frame.item, "rating": 1.0}))
    full = Split.from_dataset(dataset)
    train, test = (full.subset(frame["part"].to_numpy() == p) for p in ("train", "test"))
    candidates = n_items - np.arange(1, n_users + 1)  # user u saw u + 1 items
    chance = chance_metrics(train, test, k=10)
    assert chance["hr@10"] == pytest.approx(np.mean(10 / candidates))
    assert chance["mrr"] == pytest.approx(np.mean([np.sum(1 / np.arange(1, c + 1)) / c for c in candidates]))
    assert chance["auc"] == 0.5


def test_bad_input(world):
    train, val, test = world
    with pytest.raises(ParameterError, match="unknown protocol"):
        chance_metrics(train, test, protocol="loo")
    with pytest.raises(ParameterError, match="k must be"):
        chance_metrics(train, test, k=0)
    with pytest.raises(EngineError, match="no user has target"):
        chance_metrics(train, test.subset(np.zeros(len(test), bool)))
