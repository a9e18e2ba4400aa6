"""Uniform negative sampling: items a user has *not* interacted with, drawn in whole batches.

Every pairwise or sampled-softmax model (BPR, WARP, the neural models) needs, for each training
user, items outside that user's history. Rejection sampling (draw, test membership, redraw the
collisions) gets slow and inexact for heavy users. Here each draw is instead mapped straight
onto the user's unseen items: draw a rank ``r`` uniformly in ``[0, n_items - degree(u))`` and
return the ``r``-th item the user has not seen. With the user's seen items sorted,
``s_0 < s_1 < ...``, the quantity ``s_j - j`` counts the unseen items before ``s_j``; the
``r``-th unseen item is ``r + #{j : s_j - j <= r}``, one `searchsorted` per draw. Keys are
offset by ``user * n_items`` so a single sorted array serves every user at once: exactly
uniform over the allowed items, no per-row Python loop, no retry rounds, any density.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from engine.errors import ParameterError

#: Returned in place of a negative for a user who has interacted with every item.
NO_NEGATIVE = -1


class NegativeSampler:
    """Draws items uniformly among those each user has not interacted with.

    Build it once per training run (it sorts the interactions, O(nnz log nnz)); every call of
    `sample` then costs one random draw and one binary search per negative.

    Parameters
    ----------
    seen : scipy.sparse matrix, users x items
        Interactions to avoid (any stored entry counts, whatever its value).

    Examples
    --------
    >>> sampler = NegativeSampler(train.matrix(binary=True))
    >>> neg = sampler.sample(train.user_idx, 4, np.random.default_rng(0))   # (len, 4) int64
    """

    def __init__(self, seen: sp.spmatrix):
        csr = sp.csr_matrix(seen, copy=True)
        csr.sum_duplicates()  # also sorts the indices of each row
        self.n_users, self.n_items = csr.shape
        self.indptr = csr.indptr.astype(np.int64)
        self.degree = np.diff(self.indptr)
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), self.degree)
        items = csr.indices.astype(np.int64)
        rank_in_row = np.arange(len(items), dtype=np.int64) - self.indptr[rows]
        # Sorted globally: per row the values lie in [0, n_items) and are non-decreasing.
        self._gap_keys = rows * self.n_items + (items - rank_in_row)
        self._pair_keys = rows * self.n_items + items
        self._torch: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    # ---- numpy ---------------------------------------------------------------------------
    def sample(self, users, n: int, generator=None):
        """`n` negatives for each entry of `users`: array of shape (len(users), n).

        Parameters
        ----------
        users : 1-d int array (numpy or torch). Repeats are drawn independently.
        n : negatives per entry.
        generator : numpy ``Generator`` (numpy `users`), torch ``Generator`` (torch `users`),
            an int seed, or None (fresh entropy).

        Returns
        -------
        Same kind as `users` (numpy int64, or a torch int64 tensor on `users`' device).
        Rows of users who have seen every item are filled with `NO_NEGATIVE` (-1).
        """
        if n < 1:
            raise ParameterError(f"number of negatives must be >= 1, got {n}")
        if isinstance(users, torch.Tensor):
            return self._sample_torch(users, n, generator)
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        self._check_users(users)
        rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
        allowed = self.n_items - self.degree[users]
        full = allowed == 0
        rank = rng.integers(0, np.maximum(allowed, 1)[:, None], size=(len(users), n), dtype=np.int64)
        # The search runs in torch: the same integers as numpy's searchsorted in about half
        # the time on millions of draws (a third of BPR's sampling cost at 10M interactions).
        gap_keys, indptr, _ = self._tensors(torch.device("cpu"))
        users_t, rank_t = torch.from_numpy(users), torch.from_numpy(rank)
        query = users_t.unsqueeze(1) * self.n_items + rank_t
        out = rank_t + torch.searchsorted(gap_keys, query, right=True) - indptr[users_t].unsqueeze(1)
        out = out.numpy()
        if full.any():
            out[full] = NO_NEGATIVE
        return out

    def contains(self, users, items) -> np.ndarray:
        """Boolean array: whether each (user, item) pair is a seen interaction (broadcasts)."""
        users, items = np.broadcast_arrays(np.asarray(users, np.int64), np.asarray(items, np.int64))
        if len(self._pair_keys) == 0:
            return np.zeros(users.shape, bool)
        key = users * self.n_items + items
        pos = np.minimum(np.searchsorted(self._pair_keys, key), len(self._pair_keys) - 1)
        return self._pair_keys[pos] == key

    # ---- torch ---------------------------------------------------------------------------
    def _tensors(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device not in self._torch:
            self._torch[device] = tuple(
                torch.from_numpy(a).to(device) for a in (self._gap_keys, self.indptr, self.degree)
            )
        return self._torch[device]

    def _sample_torch(self, users: torch.Tensor, n: int, generator) -> torch.Tensor:
        users = users.reshape(-1).long()
        if len(users) and (int(users.min()) < 0 or int(users.max()) >= self.n_users):
            raise ParameterError(f"user indices must lie in 0..{self.n_users - 1}")
        gap_keys, indptr, degree = self._tensors(users.device)
        if generator is None or isinstance(generator, (int, np.integer)):
            seed = generator
            generator = torch.Generator(device=users.device)
            generator.manual_seed(int(seed)) if seed is not None else generator.seed()
        allowed = (self.n_items - degree[users]).unsqueeze(1)
        # float64 draws: 53 bits keep the floor() uniform for any realistic catalogue size.
        u = torch.rand((len(users), n), generator=generator, dtype=torch.float64, device=users.device)
        rank = torch.minimum((u * allowed).long(), (allowed - 1).clamp_min(0))
        query = users.unsqueeze(1) * self.n_items + rank
        out = rank + torch.searchsorted(gap_keys, query, right=True) - indptr[users].unsqueeze(1)
        return out.masked_fill(allowed == 0, NO_NEGATIVE)

    def _check_users(self, users: np.ndarray) -> None:
        if len(users) and (users.min() < 0 or users.max() >= self.n_users):
            raise ParameterError(f"user indices must lie in 0..{self.n_users - 1}")


def sample_negatives(seen: sp.spmatrix, users, n: int, generator=None):
    """One-off convenience: ``NegativeSampler(seen).sample(users, n, generator)``.

    Training loops should build a `NegativeSampler` once and call `sample` per epoch or batch.
    """
    return NegativeSampler(seen).sample(users, n, generator)
