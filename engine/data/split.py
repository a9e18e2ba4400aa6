"""Splits of a dataset: leave-last-out (the one protocol) and a random split for rating error."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from engine.data.dataset import Dataset
from engine.errors import ParameterError


@dataclass(eq=False)
class Split:
    """A subset of a dataset's interactions, in the dataset's index space.

    Models are fitted on a `Split` (its `dataset` gives metadata and sizes) and evaluated on
    another one. Arrays are aligned: one entry per interaction.
    """

    dataset: Dataset
    user_idx: np.ndarray
    item_idx: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray

    @property
    def n_users(self) -> int:
        return self.dataset.n_users

    @property
    def n_items(self) -> int:
        return self.dataset.n_items

    def __len__(self) -> int:
        return len(self.user_idx)

    @cached_property
    def _matrix(self) -> sp.csr_matrix:
        m = sp.csr_matrix(
            (self.rating.astype(np.float32), (self.user_idx, self.item_idx)),
            shape=(self.n_users, self.n_items),
        )
        m.sum_duplicates()
        m.sort_indices()
        return m

    def matrix(self, *, binary: bool = False) -> sp.csr_matrix:
        """Users x items CSR (sorted indices). Ratings, or 1.0 per observed pair if `binary`."""
        if not binary:
            return self._matrix
        m = self._matrix.copy()
        m.data[:] = 1.0
        return m

    def users(self) -> np.ndarray:
        """Sorted distinct user indices that have interactions in this split."""
        return np.unique(self.user_idx)

    def subset(self, mask: np.ndarray) -> "Split":
        return Split(self.dataset, self.user_idx[mask], self.item_idx[mask], self.rating[mask], self.timestamp[mask])

    @classmethod
    def concat(cls, *parts: "Split") -> "Split":
        return cls(
            parts[0].dataset,
            *(np.concatenate([getattr(p, a) for p in parts]) for a in ("user_idx", "item_idx", "rating", "timestamp")),
        )

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> "Split":
        df = dataset.interactions
        return cls(
            dataset,
            df["user_idx"].to_numpy(np.int64),
            df["item_idx"].to_numpy(np.int64),
            df["rating"].to_numpy(np.float32),
            df["timestamp"].to_numpy(np.int64),
        )


class DataSplits(NamedTuple):
    train: Split
    val: Split
    test: Split


def leave_last_out(dataset: Dataset, *, min_rating: float | None = None, min_interactions: int = 3) -> DataSplits:
    """Each user's latest interaction is test, the one before it validation.

    Order is by timestamp, ties broken by the row order of the source. A (user, item) pair seen
    more than once counts once, at its latest time, so a test item can never also be in train.
    Users with fewer than `min_interactions` interactions stay in train only.

    Parameters
    ----------
    min_rating : keep only interactions rated at least this (implicit feedback from ratings).
    """
    if min_interactions < 3:
        raise ParameterError(f"min_interactions must be >= 3 (test + validation + one to train), got {min_interactions}")
    full = Split.from_dataset(dataset)
    keep = np.ones(len(full), bool) if min_rating is None else full.rating >= min_rating
    row = np.flatnonzero(keep)
    users, items, times = full.user_idx[row], full.item_idx[row], full.timestamp[row]

    # Sort by user, then time, then source row; then keep the last row of each (user, item).
    order = np.lexsort((row, times, users))
    row, users, items = row[order], users[order], items[order]
    pair = users * dataset.n_items + items
    pair_order = np.lexsort((np.arange(len(pair)), pair))
    last_of_pair = np.ones(len(pair), bool)
    last_of_pair[pair_order[:-1]] = pair[pair_order[:-1]] != pair[pair_order[1:]]
    row, users = row[last_of_pair], users[last_of_pair]

    # Position from the end of each user's (time-ordered) run.
    counts = np.bincount(users, minlength=dataset.n_users)
    run_end = np.cumsum(counts)[users]  # one past the user's last row
    from_end = run_end - np.arange(len(users)) - 1
    eligible = counts[users] >= min_interactions
    test_rows = row[eligible & (from_end == 0)]
    val_rows = row[eligible & (from_end == 1)]
    train_rows = row[~(eligible & (from_end <= 1))]

    def take(rows):
        rows = np.sort(rows)
        mask = np.zeros(len(full), bool)
        mask[rows] = True
        return full.subset(mask)

    return DataSplits(take(train_rows), take(val_rows), take(test_rows))


def random_split(dataset: Dataset, *, test_fraction: float = 0.2, random_state: int = 0) -> DataSplits:
    """Random split of ratings (for RMSE/MAE of explicit models): train / val (10% of train) / test."""
    if not 0.0 < test_fraction < 1.0:
        raise ParameterError(f"test_fraction must be in (0, 1), got {test_fraction}")
    full = Split.from_dataset(dataset)
    rng = np.random.default_rng(random_state)
    u = rng.random(len(full))
    test = u < test_fraction
    val = (~test) & (u < test_fraction + (1 - test_fraction) * 0.1)
    return DataSplits(full.subset(~test & ~val), full.subset(val), full.subset(test))
