"""Leave-last-out and random splits, on ML-100k and on a tiny dataset worked by hand; fingerprints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data import from_frames, leave_last_out, random_split
from engine.errors import ParameterError

# (user, item, rating, timestamp) in source row order. Expected outcome per user:
#  a: x@1, y@2, z@2 -> tie at t=2 broken by row order: z test, y val, x train
#  b: x@5, y@3, x@1 -> pair (b, x) counts once (at t=5): 2 interactions -> train only
#  c: x@1, y@2 -> fewer than 3 -> train only
#  d: x@1 r5, y@2 r1, z@3 r4, w@4 r2 -> w test, z val, x and y train; with min_rating=3 only x, z remain
#  e: x@1, y@2, z@3, y@4 -> y (latest at t=4) test, z val, x train; the earlier (e, y) row is dropped
TINY = [
    ("a", "x", 4, 1), ("a", "y", 4, 2), ("a", "z", 4, 2),
    ("b", "x", 4, 5), ("b", "y", 4, 3), ("b", "x", 4, 1),
    ("c", "x", 4, 1), ("c", "y", 4, 2),
    ("d", "x", 5, 1), ("d", "y", 1, 2), ("d", "z", 4, 3), ("d", "w", 2, 4),
    ("e", "x", 4, 1), ("e", "y", 4, 2), ("e", "z", 4, 3), ("e", "y", 4, 4),
]  # fmt: skip


@pytest.fixture
def tiny():
    return from_frames("tiny", pd.DataFrame(TINY, columns=["user_id", "item_id", "rating", "timestamp"]))


def named(ds, split):
    """A split as sorted (user, item, timestamp) raw triples."""
    return sorted(zip(ds.user_ids[split.user_idx], ds.item_ids[split.item_idx], split.timestamp.tolist()))


def test_tiny_dataset_worked_by_hand(tiny):
    train, val, test = leave_last_out(tiny)
    assert named(tiny, test) == [("a", "z", 2), ("d", "w", 4), ("e", "y", 4)]
    assert named(tiny, val) == [("a", "y", 2), ("d", "z", 3), ("e", "z", 3)]
    assert named(tiny, train) == [
        ("a", "x", 1),
        ("b", "x", 5), ("b", "y", 3),
        ("c", "x", 1), ("c", "y", 2),
        ("d", "x", 1), ("d", "y", 2),
        ("e", "x", 1),
    ]  # fmt: skip


def test_tiny_dataset_with_min_rating(tiny):
    train, val, test = leave_last_out(tiny, min_rating=3)
    # d keeps x@1 (5) and z@3 (4) only: fewer than 3, train only; w and y leave every split.
    assert named(tiny, test) == [("a", "z", 2), ("e", "y", 4)]
    assert named(tiny, val) == [("a", "y", 2), ("e", "z", 3)]
    assert [t for t in named(tiny, train) if t[0] == "d"] == [("d", "x", 1), ("d", "z", 3)]
    assert all(r >= 3 for split in (train, val, test) for r in split.rating)


def test_min_interactions_below_three_is_refused(tiny):
    with pytest.raises(ParameterError, match="min_interactions"):
        leave_last_out(tiny, min_interactions=2)


def test_ml100k_no_leak_and_one_test_and_val_per_user(ml100k, ml100k_splits):
    train, val, test = ml100k_splits
    n = ml100k.n_items
    train_pairs = set((train.user_idx * n + train.item_idx).tolist())
    assert not train_pairs & set((test.user_idx * n + test.item_idx).tolist())
    assert not train_pairs & set((val.user_idx * n + val.item_idx).tolist())
    # Every user has at least 20 ratings (as in ML-100k), so every user is eligible.
    assert np.array_equal(np.sort(test.user_idx), np.arange(ml100k.n_users))
    assert np.array_equal(np.sort(val.user_idx), np.arange(ml100k.n_users))
    assert len(train) + len(val) + len(test) == ml100k.n_interactions  # no repeated pairs, as in ML-100k


def test_ml100k_test_is_the_latest_by_time_then_row(ml100k, ml100k_splits):
    df = ml100k.interactions.assign(row=np.arange(ml100k.n_interactions))
    ordered = df.sort_values(["user_idx", "timestamp", "row"])
    last = ordered.groupby("user_idx").tail(1).sort_values("user_idx")
    second = ordered.groupby("user_idx").nth(-2).sort_values("user_idx")
    _, val, test = ml100k_splits
    order = np.argsort(test.user_idx)
    assert np.array_equal(test.item_idx[order], last["item_idx"].to_numpy())
    order = np.argsort(val.user_idx)
    assert np.array_equal(val.item_idx[order], second["item_idx"].to_numpy())
    # Ties are real (in ML-100k and in the generated folder, which rates in bursts): for hundreds
    # of users several ratings share the latest second, so the row order decides the test item
    # and this test checks the tie-break.
    latest = df["timestamp"] == df.groupby("user_idx")["timestamp"].transform("max")
    assert (df[latest].groupby("user_idx").size() > 1).sum() > 100


def test_random_split_partitions_the_ratings(ml100k):
    train, val, test = random_split(ml100k, test_fraction=0.2, random_state=3)
    assert len(train) + len(val) + len(test) == ml100k.n_interactions
    assert abs(len(test) / ml100k.n_interactions - 0.2) < 0.01
    keys = lambda s: set((s.user_idx * ml100k.n_items + s.item_idx).tolist())  # noqa: E731
    assert not keys(train) & keys(test) and not keys(val) & keys(test)
    again = random_split(ml100k, test_fraction=0.2, random_state=3).test
    assert np.array_equal(again.item_idx, test.item_idx)


def test_fingerprint_equal_for_equal_data_and_different_otherwise():
    frame = pd.DataFrame(TINY, columns=["user_id", "item_id", "rating", "timestamp"])
    base = from_frames("one", frame).fingerprint
    assert from_frames("another spec", frame.copy()).fingerprint == base
    assert from_frames("x", frame.assign(rating=frame["rating"].where(frame.index != 3, 1))).fingerprint != base
    assert from_frames("x", frame.assign(timestamp=frame["timestamp"] + (frame.index == 0))).fingerprint != base
    assert from_frames("x", frame.iloc[:-1]).fingerprint != base
    assert from_frames("x", frame.assign(user_id=frame["user_id"].replace("e", "f"))).fingerprint != base


def test_fingerprint_of_the_same_file_loaded_twice(ml100k_path, ml100k):
    from engine.data import load_dataset

    assert load_dataset(f"ml-100k:{ml100k_path}").fingerprint == ml100k.fingerprint
