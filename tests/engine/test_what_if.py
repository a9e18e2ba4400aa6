"""What if: a real user's history edited, the lists before and after, the held-out item's rank."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ParameterError
from engine.explore.what_if import edited_history, rank_among_unseen, what_if
from tests.engine.models.test_contract import DATASET, ITEM_BLOCK, SPLITS, make

_MODEL = {}


def als():
    if "als" not in _MODEL:
        _MODEL["als"] = make("als", factors=8).fit(SPLITS.train)
    return _MODEL["als"]


def test_edit_removes_and_appends():
    np.testing.assert_array_equal(edited_history(np.array([4, 2, 9]), remove=[2], add=[7, 1]), [4, 9, 7, 1])
    np.testing.assert_array_equal(edited_history(np.array([4, 2])), [4, 2])


@pytest.mark.parametrize(
    "remove, add, words",
    [([5], [], "5 is not in the user's history"), ([], [2], "2 is already in the user's history"),
     ([4, 2], [], "empty history")],
)  # fmt: skip
def test_bad_edits_are_one_line(remove, add, words):
    with pytest.raises(ParameterError, match=words) as info:
        edited_history(np.array([4, 2]), remove=remove, add=add)
    assert "\n" not in str(info.value)


def test_no_edit_changes_nothing():
    model = als()
    user = 3
    history = model.seen_[user].indices
    result = what_if(model, DATASET, history, k=5)
    np.testing.assert_array_equal(result.before.index, result.after.index)
    assert (result.before["change"] == "").all() and (result.after["change"] == "").all()


def test_moving_a_user_to_the_other_block_changes_the_list_and_marks_it():
    """A block-0 user whose block-0 items are swapped for block-1 items: the list moves to block
    1, every old item is marked as left and every new one as new, and the held-out block-0 test
    item drops down the ranking."""
    model = als()
    user = int(SPLITS.test.user_idx[0])
    test_item = int(SPLITS.test.item_idx[0])
    history = model.seen_[user].indices
    own = history[ITEM_BLOCK[history] == ITEM_BLOCK[test_item]]
    other = np.setdiff1d(np.flatnonzero(ITEM_BLOCK != ITEM_BLOCK[test_item]), history)[:8]
    result = what_if(model, DATASET, history, remove=own, add=other, test_item=test_item, k=5)
    assert (ITEM_BLOCK[result.before.index] == ITEM_BLOCK[test_item]).all()
    assert (ITEM_BLOCK[result.after.index] != ITEM_BLOCK[test_item]).all()
    assert (result.before["change"] == "left").all() and (result.after["change"] == "new").all()
    assert result.test_rank_before <= 5 < result.test_rank_after
    # The ranks are what the folded-in scores say.
    folded = model.fold_in(np.concatenate([history[~np.isin(history, own)], other]))
    assert rank_among_unseen(model, folded, test_item) == result.test_rank_after
    assert not set(result.after.index) & set(folded.items.tolist())


def test_the_test_item_added_to_the_history_has_no_rank():
    model = als()
    user = int(SPLITS.test.user_idx[0])
    test_item = int(SPLITS.test.item_idx[0])
    result = what_if(model, DATASET, model.seen_[user].indices, add=[test_item], test_item=test_item)
    assert result.test_rank_before is not None and result.test_rank_after is None
    assert test_item not in result.after.index
