"""The User explorer's attention strip (engine side) and the ordered history "What if ..." edits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data import from_frames
from engine.data.split import Split
from engine.errors import AbilityError
from engine.explore.views import training_history
from engine.explain.history_attention import COLUMNS, head_columns, history_attention, picks_attention
from engine.models.popularity import Popularity
from tests.engine.models.test_sasrec import DATASET, SPLITS, _time_ordered


@pytest.fixture(scope="module")
def sasrec():
    from engine.models.sasrec import SASRec

    return SASRec(factors=8, max_len=4, n_heads=2, epochs=2, batch_size=4, device="cpu").fit(SPLITS.train)


def test_strip_runs_oldest_to_newest_with_each_head(sasrec):
    user = 5
    frame = history_attention(sasrec, DATASET, user)
    newest = _time_ordered(SPLITS.train, user)[-4:]
    assert frame.index.tolist() == newest.tolist()  # the last four training items, oldest first
    assert frame["position"].tolist() == [1, 2, 3, 4]
    assert frame["title"].tolist() == [DATASET.title(i) for i in newest]
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert head_columns(frame) == ["head 1", "head 2"]
    np.testing.assert_allclose(frame[["weight", "head 1", "head 2"]].sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(frame["weight"], frame[["head 1", "head 2"]].mean(axis=1), rtol=1e-5)
    expected = dict(sasrec.attention(user)["profile"])
    np.testing.assert_allclose(frame["weight"], [expected[i] for i in newest], rtol=1e-6)


def test_picks_are_attended_over_in_the_order_picked(sasrec):
    picks = [6, 2, 9]  # picked in this order: 6 is the oldest, 9 the newest
    frame = picks_attention(sasrec, DATASET, picks)
    assert frame.index.tolist() == picks and frame["position"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(frame[["weight", "head 1", "head 2"]].sum(), 1.0, rtol=1e-5)
    # A training user's own history, folded in, is attended over as the user is.
    user = 5
    own = history_attention(sasrec, DATASET, user)
    folded = picks_attention(sasrec, DATASET, _time_ordered(SPLITS.train, user))
    assert folded.index.tolist() == own.index.tolist()
    np.testing.assert_allclose(folded["weight"], own["weight"], rtol=1e-5)


def test_picks_attention_needs_a_model_that_attends_over_any_list():
    from engine.models.als import ALS

    with pytest.raises(AbilityError, match="folded-in"):
        picks_attention(ALS(factors=4, epochs=1).fit(SPLITS.train), DATASET, [1, 2])


def test_a_model_with_one_weight_per_item_and_no_heads():
    class Stand:  # the shape ACF's attention has: newest first, no "heads"
        has_attention = True
        name = "stand-in"

        def attention(self, user):
            return {"profile": [(2, 0.5), (0, 0.3), (1, 0.2)], "components": {}}

    frame = history_attention(Stand(), DATASET, 0)
    assert frame.index.tolist() == [1, 0, 2] and frame["weight"].tolist() == [0.2, 0.3, 0.5]
    assert head_columns(frame) == []


def test_models_without_attention_are_refused():
    with pytest.raises(AbilityError, match="popularity"):
        history_attention(Popularity().fit(SPLITS.train), DATASET, 0)


def test_training_history_is_in_time_order_with_repeats_at_their_latest_time():
    frame = pd.DataFrame({"user_id": [1, 1, 1, 1, 2], "item_id": [30, 10, 30, 20, 10], "rating": 1.0,
                          "timestamp": [5, 1, 2, 5, 0]})  # fmt: skip
    dataset = from_frames("order", frame)
    split = Split.from_dataset(dataset)
    # User 1: 10 (t1), 30 (t2 and t5: counts at t5), 20 (t5, a later source row than 30's).
    assert dataset.item_ids[training_history(split, 0)].tolist() == ["10", "30", "20"]
    assert dataset.item_ids[training_history(split, 1)].tolist() == ["10"]
