"""SASRec: the causal mask, the order of the sequences, the attention read-out and fold-in.

The registry's contract test covers the rest (scores, saving, abilities); these check what
only a sequence model has.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from engine.data import from_frames, leave_last_out
from engine.errors import ParameterError
from engine.models.sasrec import SASRec, last_items, ordered_histories, sequence_of, training_windows
from engine.models.sasrec_module import PAD, SASRecModule

N_USERS, N_ITEMS = 12, 20


def _dataset():
    """Users walk a cycle of items (user u starts at item u), with timestamps that do not
    follow the item indices, so a model that sorted by index would get every order wrong."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(N_USERS):
        length = 6 + user % 5
        times = np.sort(rng.choice(10_000, length, replace=False))[::-1]  # listed newest first
        for step, t in enumerate(times[::-1]):
            rows.append((user, (user + 3 * step) % N_ITEMS, 4.0, int(t)))
    rows = rows[::-1]  # source rows not in time order either
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    dataset = from_frames("cycle", frame)
    return dataset, leave_last_out(dataset)


DATASET, SPLITS = _dataset()


@pytest.fixture(scope="module")
def model():
    params = dict(factors=8, max_len=5, n_heads=2, epochs=3, batch_size=4, learning_rate=0.01, device="cpu")
    return SASRec(**params).fit(SPLITS.train, val=SPLITS.val)


def _time_ordered(split, user):
    mine = split.user_idx == user
    return split.item_idx[mine][np.argsort(split.timestamp[mine], kind="stable")]


def test_a_later_item_never_changes_an_earlier_position():
    torch.manual_seed(0)
    module = SASRecModule(N_ITEMS, max_len=6, dim=8, n_blocks=2, heads=2, dropout=0.0).eval()
    seq = torch.tensor([[0, 0, 3, 7, 2, 9]])
    changed = seq.clone()
    changed[0, 4] = 11  # position 4 changes: positions 0-3 must not move
    with torch.no_grad():
        before, _ = module.hidden(seq)
        after, _ = module.hidden(changed)
    torch.testing.assert_close(after[0, :4], before[0, :4])
    assert not torch.allclose(after[0, 4:], before[0, 4:]), "the changed position itself must move"


def test_sequences_hold_the_newest_training_items_in_time_order_and_never_a_held_out_one(model):
    for user in range(N_USERS):
        train = _time_ordered(SPLITS.train, user)
        sequence = model.sequences_[user]
        real = sequence[sequence != PAD] - 1
        np.testing.assert_array_equal(real, train[-5:])
        held_out = set(SPLITS.val.item_idx[SPLITS.val.user_idx == user]) | set(SPLITS.test.item_idx[SPLITS.test.user_idx == user])
        assert held_out and not held_out & set(real.tolist())
        assert (sequence[: 5 - len(real)] == PAD).all(), "padding goes on the left, the newest item last"


def test_ordered_histories_keep_one_entry_per_item_at_its_latest_time():
    frame = pd.DataFrame(
        {"user_id": [1, 1, 1, 1], "item_id": [10, 20, 10, 30], "rating": 1.0, "timestamp": [1, 2, 3, 3]}
    )
    dataset = from_frames("repeat", frame)
    from engine.data.split import Split

    indptr, items = ordered_histories(Split.from_dataset(dataset))
    # Item 10 again at time 3 counts once, there; 10 and 30 tie at 3: source row order.
    np.testing.assert_array_equal(dataset.item_ids[items], ["20", "10", "30"])
    np.testing.assert_array_equal(indptr, [0, 3])


def test_training_windows_train_every_transition_once():
    items = np.arange(1, 12)  # one user, 11 items: 10 transitions
    seq, target, owner = training_windows(np.array([0, 11]), items, 4)
    pairs = sorted((int(a), int(b)) for s, t in zip(seq, target) for a, b in zip(s, t) if b != PAD)
    assert pairs == [(int(items[i]) + 1, int(items[i + 1]) + 1) for i in range(10)]
    assert (owner == 0).all()
    # Inputs pad where targets pad: an input slot without a next item trains nothing.
    assert ((seq == PAD) == (target == PAD)).all()


def test_training_windows_of_several_users_keep_each_users_transitions_in_their_rows():
    indptr = np.array([0, 0, 1, 3, 12])  # users with 0, 1, 2 and 9 items
    items = np.arange(12)
    seq, target, owner = training_windows(indptr, items, 4)
    assert owner.tolist() == [2, 3, 3]  # 1 and 8 transitions: one and two windows
    for u in (2, 3):
        got = sorted((int(a), int(b)) for s, t in zip(seq[owner == u], target[owner == u]) for a, b in zip(s, t) if b != PAD)
        own = items[indptr[u] : indptr[u + 1]] + 1
        assert got == list(zip(own[:-1].tolist(), own[1:].tolist()))
    # The newest window is right-aligned: its last slot is the user's last transition.
    assert (seq[1, -1], target[1, -1]) == (11, 12)


def test_last_items_matches_one_sequence_at_a_time():
    indptr = np.array([0, 3, 3, 10])
    items = np.arange(10)
    out = last_items(indptr, items, 4)
    for u in range(3):
        np.testing.assert_array_equal(out[u], sequence_of(items[indptr[u] : indptr[u + 1]], 4))


def test_attention_rows_sum_to_one_over_the_history_per_head_and_averaged(model):
    for user in range(N_USERS):
        att = model.attention(user)
        items = [i for i, _ in att["profile"]]
        np.testing.assert_array_equal(items, _time_ordered(SPLITS.train, user)[-5:][::-1])  # most recent first
        assert att["heads"].shape == (2, len(items))
        np.testing.assert_allclose(att["heads"].sum(1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(sum(a for _, a in att["profile"]), 1.0, rtol=1e-5)
        np.testing.assert_allclose([a for _, a in att["profile"]], att["heads"].mean(0), rtol=1e-5)
        assert att["components"] == {}


def test_attention_over_a_folded_in_history_is_the_users_own_for_their_history(model):
    for user in range(N_USERS):
        own = model.attention(user)
        folded = model.folded_attention(model.fold_in(_time_ordered(SPLITS.train, user)))
        assert [i for i, _ in folded["profile"]] == [i for i, _ in own["profile"]]
        np.testing.assert_allclose(folded["heads"], own["heads"], rtol=1e-5, atol=1e-6)
    # In the order given: the first item of the list is the oldest.
    picks = np.array([3, 7, 1])
    assert [i for i, _ in model.folded_attention(model.fold_in(picks))["profile"]] == [1, 7, 3]


def test_fold_in_from_a_training_users_ordered_history_equals_its_scores(model):
    for user in range(N_USERS):
        history = _time_ordered(SPLITS.train, user)
        folded = model.score_folded(model.fold_in(history))
        np.testing.assert_allclose(folded, model.score([user])[0], rtol=1e-5, atol=1e-6)
    # The order matters: the same items newest first are another user.
    history = _time_ordered(SPLITS.train, 0)
    assert not np.allclose(model.score_folded(model.fold_in(history[::-1])), model.score([0])[0], atol=1e-4)


def test_batched_variants_put_a_training_users_sorted_history_in_time_order(model):
    """"Because you liked" passes the history sorted by index, with the user: the full
    variant must still score like the user."""
    user = 3
    hist = np.sort(_time_ordered(SPLITS.train, user))
    targets = np.arange(N_ITEMS)
    masks = np.ones((2, len(hist)), bool)
    masks[1, 0] = False
    scores = model.fold_in_scores(hist, masks, targets, user=user)
    np.testing.assert_allclose(scores[0], model.score([user])[0], rtol=1e-5, atol=1e-5)
    kept = model.in_time_order(user, hist[1:])
    np.testing.assert_allclose(scores[1], model.score_folded(model.fold_in(kept)), rtol=1e-5, atol=1e-5)


def test_in_time_order_puts_unknown_items_last_in_the_given_order(model):
    user = 0
    train = _time_ordered(SPLITS.train, user)
    others = [i for i in range(N_ITEMS) if i not in set(train.tolist())][:2]
    mixed = np.array([others[1], train[2], others[0], train[0]])
    np.testing.assert_array_equal(model.in_time_order(user, mixed), [train[0], train[2], others[1], others[0]])


@pytest.mark.parametrize("loss", ["softmax", "bce"])
def test_both_losses_learn_the_cycle(loss):
    """Each user steps +3 through the items: the next item is the last one plus 3, which only
    the order reveals. Both losses must find it for most users."""
    model = SASRec(factors=16, max_len=8, epochs=60, batch_size=4, learning_rate=0.01, loss=loss, patience=0,
                   dropout=0.0, device="cpu").fit(SPLITS.train)  # fmt: skip
    hits = []
    for user in range(N_USERS):
        last = _time_ordered(SPLITS.train, user)[-1]
        recs, _ = model.recommend([user], k=3)
        hits.append((last + 3) % N_ITEMS in recs[0])
    assert np.mean(hits) >= 0.75, np.mean(hits)


def test_heads_must_divide_factors():
    with pytest.raises(ParameterError, match="n_heads"):
        SASRec(factors=10, n_heads=3, device="cpu").fit(SPLITS.train)
