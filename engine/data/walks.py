"""An item graph from co-interactions and node2vec's biased random walks over it.

The graph links each item to its `neighbours` most similar items by co-consumption,
``co(i, j) / (n_i n_j) ** alpha`` with ``co`` the number of users who consumed both and ``n_i``
the consumers of ``i``, kept in both directions. ``alpha = 0.5`` is the cosine of the binary
columns; it still favours popular items so strongly that they become hubs (on ML-100k with
10 kept per item, Star Wars ends with 37 neighbours, Toy Story and Fargo among them), walks
through hubs pull embeddings toward "popular", and Empire Strikes Back ranked 45th-141st
among Star Wars' embedding neighbours. A larger `alpha` (0.75, tuned on ML-100k validation;
Empire then ranks 2nd-5th) discounts popularity; keeping only the top neighbours keeps the graph
sparse (at most ``2 * neighbours`` edges per item) where the full co-occurrence graph is
nearly dense for a catalogue of popular items. (A graph of items consumed close together in
each user's time-ordered history was tried first: on ML-100k it links contemporaneous
releases that users rated in the same session rather than related films, and Star Wars'
neighbours in it were 1996-97 hits.)

Walks follow Grover & Leskovec's second-order transition: from ``v`` (having come from ``t``)
to a neighbour ``x`` with weight ``w_vx * alpha(t, x)``, ``alpha = 1/p`` if ``x == t``
(return), ``1`` if ``x`` is also a neighbour of ``t``, ``1/q`` otherwise (outward). All
walkers move one step per iteration: a candidate is drawn from the first-order distribution
``w_vx`` (one `searchsorted` on per-row cumulative weights) and accepted with probability
``alpha / max(alpha)`` (rejection sampling, exact; the rejected walkers redraw in the next
round); "is ``x`` a neighbour of ``t``" is one `searchsorted` in the sorted edge keys.

References
----------
.. [1] Grover & Leskovec, "node2vec: Scalable Feature Learning for Networks", KDD 2016.
.. [2] Barkan & Koenigstein, "Item2Vec: Neural Item Embedding for Collaborative Filtering",
   MLSP 2016.
.. [3] Yang, Shi, Xiao et al., "KnightKing: a fast distributed graph random walk engine",
   SOSP 2019 (rejection sampling of second-order walks).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engine.data.split import Split
from engine.errors import ParameterError


def cooccurrence_graph(train: Split, neighbours: int = 20, alpha: float = 0.5, block_cells: int = 4_000_000) -> sp.csr_matrix:
    """Symmetric items x items CSR keeping each item's `neighbours` most similar items by
    ``co(i, j) / (n_i n_j) ** alpha`` (co-consumers over consumers; `alpha` 0.5 is the cosine).

    Computed in blocks of items (``AᵀA`` for a block of columns at a time, at most
    `block_cells` dense cells), so the full item x item product is never held.
    """
    if neighbours < 1:
        raise ParameterError(f"graph neighbours must be >= 1, got {neighbours}")
    if train.n_items < 2:
        return sp.csr_matrix((train.n_items, train.n_items))
    a = train.matrix(binary=True).tocsc()
    n = a.shape[1]
    norm = np.maximum(np.asarray(a.sum(axis=0)).ravel(), 1.0) ** alpha
    k = min(neighbours, n - 1)
    rows, cols, vals = [], [], []
    step = max(1, block_cells // max(1, n))
    at = a.T.tocsr()
    for s in range(0, n, step):
        block = np.arange(s, min(n, s + step))
        sims = (at[block] @ a).toarray() / norm[block, None] / norm[None, :]
        sims[np.arange(len(block)), block] = 0.0
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        val = np.take_along_axis(sims, top, axis=1)
        keep = val > 0
        rows.append(np.repeat(block, k)[keep.ravel()])
        cols.append(top[keep])
        vals.append(val[keep])
    r, c, v = (np.concatenate(x) if x else np.empty(0) for x in (rows, cols, vals))
    graph = sp.csr_matrix((v, (r.astype(np.int64), c.astype(np.int64))), shape=(n, n))
    graph = graph.maximum(graph.T).tocsr()  # symmetric: an edge if either keeps the other
    graph.sort_indices()
    return graph


class Node2VecWalker:
    """node2vec walks on a weighted undirected graph, all walkers advanced together.

    Parameters
    ----------
    graph : square scipy.sparse matrix of non-negative edge weights (symmetric for the
        undirected walks of the paper).
    p : return parameter; a large `p` makes stepping straight back to the previous node rare.
    q : in-out parameter; ``q > 1`` keeps walks near where they came from (BFS-like),
        ``q < 1`` pushes them outward (DFS-like).

    References
    ----------
    .. [1] Grover & Leskovec, "node2vec: Scalable Feature Learning for Networks", KDD 2016, Sec. 3.2.
    """

    def __init__(self, graph: sp.spmatrix, p: float = 1.0, q: float = 1.0):
        if p <= 0 or q <= 0:
            raise ParameterError(f"node2vec p and q must be > 0, got p={p}, q={q}")
        csr = sp.csr_matrix(graph, dtype=np.float64, copy=True)
        csr.eliminate_zeros()
        csr.sum_duplicates()
        csr.sort_indices()
        if csr.shape[0] != csr.shape[1] or (csr.data < 0).any():
            raise ParameterError("the walk graph must be square with non-negative weights")
        self.n = csr.shape[0]
        self.p, self.q = float(p), float(q)
        self.indptr = csr.indptr.astype(np.int64)
        self.indices = csr.indices.astype(np.int64)
        self.degree = np.diff(self.indptr)
        self._cum = np.cumsum(csr.data)  # global running sum: each row's slice is increasing
        self._row_start = np.concatenate([[0.0], self._cum])[self.indptr[:-1]]
        self._row_weight = np.concatenate([[0.0], self._cum])[self.indptr[1:]] - self._row_start
        rows = np.repeat(np.arange(self.n, dtype=np.int64), self.degree)
        self._edge_keys = rows * self.n + self.indices  # sorted: CSR rows with sorted columns

    def has_edge(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether each (a, b) is an edge: one binary search in the sorted edge keys."""
        if len(self._edge_keys) == 0:
            return np.zeros(np.shape(a), bool)
        key = np.asarray(a, np.int64) * self.n + np.asarray(b, np.int64)
        pos = np.minimum(np.searchsorted(self._edge_keys, key), len(self._edge_keys) - 1)
        return self._edge_keys[pos] == key

    def _first_order(self, nodes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A neighbour of each node drawn with probability proportional to the edge weight."""
        target = self._row_start[nodes] + rng.random(len(nodes)) * self._row_weight[nodes]
        pos = np.searchsorted(self._cum, target, side="right")
        # Rounding can land one past the row (target == row end); stay inside it.
        pos = np.clip(pos, self.indptr[nodes], self.indptr[nodes + 1] - 1)
        return self.indices[pos]

    def walks(self, starts: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """One walk of `length` nodes (start included) from each of `starts`: (len(starts), length).

        Every start must have at least one neighbour; on a symmetric graph every later node
        then has one too.
        """
        if length < 1:
            raise ParameterError(f"walk length must be >= 1, got {length}")
        starts = np.asarray(starts, np.int64)
        if len(starts) and (self.degree[starts] == 0).any():
            raise ParameterError("walks must start at nodes with at least one neighbour")
        out = np.empty((len(starts), length), np.int64)
        out[:, 0] = starts
        if length == 1 or len(starts) == 0:
            return out
        out[:, 1] = self._first_order(starts, rng)
        alpha_return, alpha_out = 1.0 / self.p, 1.0 / self.q
        alpha_max = max(alpha_return, 1.0, alpha_out)
        for t in range(2, length):
            pending = np.arange(len(starts))
            while len(pending):
                prev, cur = out[pending, t - 2], out[pending, t - 1]
                cand = self._first_order(cur, rng)
                alpha = np.where(cand == prev, alpha_return, np.where(self.has_edge(prev, cand), 1.0, alpha_out))
                accept = rng.random(len(pending)) * alpha_max < alpha
                out[pending[accept], t] = cand[accept]
                pending = pending[~accept]
        return out

    def corpus(self, walks_per_node: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """`walks_per_node` walks from every node with a neighbour, in a shuffled order."""
        nodes = np.flatnonzero(self.degree > 0)
        starts = rng.permutation(np.tile(nodes, walks_per_node))
        return self.walks(starts, length, rng)


def skipgram_pairs(walks: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(centre, context) pairs of every node with each node at most `window` steps away in its
    walk, both directions (word2vec's skip-gram with a fixed window)."""
    if window < 1:
        raise ParameterError(f"skip-gram window must be >= 1, got {window}")
    centres, contexts = [], []
    for d in range(1, min(window, walks.shape[1] - 1) + 1):
        a, b = walks[:, :-d].reshape(-1), walks[:, d:].reshape(-1)
        centres += [a, b]
        contexts += [b, a]
    if not centres:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(centres), np.concatenate(contexts)
