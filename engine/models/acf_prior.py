"""History consistency: a prior for ACF's item-level attention.

A profile item that resembles the rest of the user's history - in who else chose it, and in
what its image shows anywhere - is more likely to reflect the user's taste than an impulse
click. ACF's attention network sees the user, the item and the item's attended image, but not
the rest of the history, and trained only through the ranking loss it does not learn this
comparison (on visual-synthetic α separated the profile items that show a preferred motif
from the others at AUC 0.60, about as well as item popularity does). So the attention gets
the comparison as an input: for each profile item, the mean cosine of its key to the keys of
the user's other training items, z-scored over all profiles, summed over the kinds of keys,
and added to α's logit with a learned weight.

Keys are fixed during training, so the prior is a (users, profile) table computed once:
- collaborative keys: item factors of an implicit ALS fitted on the same training split;
- content keys: the largest value of each (standardised) feature over an image's cells, i.e.
  "does this image show that anywhere" (a motif is present or absent wherever it sits; the
  mean over cells is dominated by background).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

#: Users whose (profile x key) blocks are formed at once: bounds memory on large datasets.
USER_BLOCK = 4096


def unit_keys(keys: np.ndarray) -> np.ndarray:
    """Centred (over items) and unit-length rows: cosine becomes a dot product."""
    keys = np.asarray(keys, np.float64)
    return normalize(keys - keys.mean(0))  # a zero row stays zero


def history_consistency(history: sp.csr_matrix, profile: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(n_users, P) mean cosine of each profile item's key to the user's other history items.

    Parameters
    ----------
    history : (n_users, n_items) binary training interactions; every profile item is in its
        user's row (it is left out of its own comparison).
    profile : (n_users, P) item indices, -1 pads.
    keys : (n_items, d) one key per item.

    Returns
    -------
    float32 array; 0 for padded entries and for users with a single training item.
    """
    history = sp.csr_matrix(history, dtype=np.float64, copy=True)
    history.data[:] = 1.0  # presence only (a copy: the caller's ratings stay)
    unit = unit_keys(keys)
    others = np.diff(history.indptr) - 1
    out = np.zeros(profile.shape, np.float32)
    for start in range(0, len(profile), USER_BLOCK):
        rows = slice(start, start + USER_BLOCK)
        total = history[rows] @ unit  # (block, d): sum of the history's keys
        items = unit[profile[rows].clip(0)]  # (block, P, d)
        dots = np.einsum("bpd,bpd->bp", total[:, None, :] - items, items)
        out[rows] = dots / np.maximum(others[rows], 1)[:, None]
    out[profile < 0] = 0.0
    out[others < 1] = 0.0
    return out


def attention_prior(history: sp.csr_matrix, profile: np.ndarray, keys: list[np.ndarray]) -> np.ndarray:
    """Sum over kinds of keys of the z-scored `history_consistency` (z over real profile entries).

    Each kind counts alike whatever the spread of its cosines; padded entries stay 0.
    """
    valid = profile >= 0
    prior = np.zeros(profile.shape, np.float32)
    for k in keys:
        c = history_consistency(history, profile, k)
        spread = c[valid].std() if valid.any() else 0.0
        if spread > 0:
            prior += np.where(valid, (c - c[valid].mean()) / spread, 0.0).astype(np.float32)
    return prior


def content_keys(features: np.ndarray) -> np.ndarray:
    """(n_items, d): each feature's largest value over an item's cells."""
    return np.asarray(features).max(axis=1)
