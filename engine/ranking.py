"""Ranking primitives shared by the models and the evaluation: top-k, masking, cosine neighbours.

Below both, so the evaluation can rank without importing the models package.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Scoring works on blocks of users small enough that (users x items) float32 stays ~64 MB.
SCORE_BLOCK_CELLS = 16_000_000


def mask_rows(scores: np.ndarray, rows: sp.csr_matrix, value: float = -np.inf) -> None:
    """Set scores[i, j] = value for every stored (i, j) of the CSR block `rows` (in place)."""
    r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    scores[r, rows.indices] = value


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k (indices, values), best first; argpartition then a small sort."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def cosine_neighbours(emb: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of `items`, the `k` most cosine-similar rows of `emb` (itself excluded)."""
    emb = np.asarray(emb, np.float32)
    norms = np.linalg.norm(emb, axis=1)
    unit = emb / np.maximum(norms, 1e-12)[:, None]
    out_idx = np.empty((len(items), min(k, len(emb) - 1)), np.int64)
    out_val = np.empty(out_idx.shape, np.float32)
    step = max(1, SCORE_BLOCK_CELLS // max(1, len(emb)))
    for s in range(0, len(items), step):
        block = items[s : s + step]
        sims = unit[block] @ unit.T
        sims[np.arange(len(block)), block] = -np.inf
        out_idx[s : s + step], out_val[s : s + step] = top_k(sims, out_idx.shape[1])
    return out_idx, out_val
