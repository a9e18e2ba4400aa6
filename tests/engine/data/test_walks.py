"""node2vec walks and the co-interaction item graph (engine.data.walks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from engine.data import from_frames
from engine.data.split import Split
from engine.data.walks import Node2VecWalker, cooccurrence_graph, skipgram_pairs
from engine.errors import ParameterError


def _graph(edges, n):
    a, b = np.array(edges).T
    g = sp.csr_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    g.sum_duplicates()
    return g


# A triangle 0-1-2 with a tail 2-3-4: from 2 (having come from 1), 1 is a return, 0 is a
# neighbour of 1 (distance 1), 3 is outward (distance 2).
TRIANGLE_TAIL = _graph([(0, 1), (1, 2), (0, 2), (2, 3), (3, 4)], 5)


def test_walks_only_step_along_edges():
    g = _graph([(0, 1), (1, 2), (2, 3), (3, 0), (1, 3), (4, 5)], 6)
    walker = Node2VecWalker(g, p=0.5, q=2.0)
    walks = walker.corpus(20, 15, np.random.default_rng(0))
    assert walks.shape == (6 * 20, 15)
    dense = g.toarray() > 0
    assert dense[walks[:, :-1], walks[:, 1:]].all(), "a walk stepped between unconnected nodes"
    # The component {4, 5} is never left.
    from_small = np.isin(walks[:, 0], [4, 5])
    assert np.isin(walks[from_small], [4, 5]).all() and not np.isin(walks[~from_small], [4, 5]).any()


def _next_step_frequencies(p, q, n=20_000):
    walker = Node2VecWalker(TRIANGLE_TAIL, p=p, q=q)
    walks = walker.walks(np.full(n, 1), 3, np.random.default_rng(0))
    came_via_2 = walks[:, 1] == 2
    third = walks[came_via_2, 2]
    return {node: float(np.mean(third == node)) for node in (0, 1, 3)}


def test_p_and_q_bias_the_second_step():
    # Unbiased (p = q = 1): each of 2's three neighbours is equally likely, 1/3.
    uniform = _next_step_frequencies(1.0, 1.0)
    for node in (0, 1, 3):
        assert abs(uniform[node] - 1 / 3) < 0.02
    # Small p: weights 1/p=4 (return) : 1 : 1 -> return 2/3.
    back = _next_step_frequencies(0.25, 1.0)
    assert abs(back[1] - 4 / 6) < 0.02
    # Large q: outward weight 1/q = 0.25 -> 0.25 / 2.25 = 0.11 outward; small q: 4 / 6 outward.
    local = _next_step_frequencies(1.0, 4.0)
    outward = _next_step_frequencies(1.0, 0.25)
    assert abs(local[3] - 0.25 / 2.25) < 0.02
    assert abs(outward[3] - 4 / 6) < 0.02
    assert local[3] < uniform[3] < outward[3]


def test_edge_weights_drive_the_first_step():
    g = sp.csr_matrix(np.array([[0, 1, 3], [1, 0, 0], [3, 0, 0]], float))
    walks = Node2VecWalker(g).walks(np.zeros(20_000, np.int64), 2, np.random.default_rng(1))
    assert abs(np.mean(walks[:, 1] == 2) - 0.75) < 0.02


def test_walks_are_deterministic_under_seed():
    walker = Node2VecWalker(TRIANGLE_TAIL, p=0.5, q=2.0)
    a = walker.corpus(5, 10, np.random.default_rng(7))
    b = walker.corpus(5, 10, np.random.default_rng(7))
    c = walker.corpus(5, 10, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_has_edge_uses_sorted_rows():
    walker = Node2VecWalker(TRIANGLE_TAIL)
    a = np.array([0, 0, 2, 4, 4, 1])
    b = np.array([1, 3, 3, 3, 0, 4])
    np.testing.assert_array_equal(walker.has_edge(a, b), [True, False, True, True, False, False])


def test_bad_parameters_raise():
    with pytest.raises(ParameterError, match="p and q"):
        Node2VecWalker(TRIANGLE_TAIL, p=0.0)
    with pytest.raises(ParameterError, match="neighbour"):
        Node2VecWalker(_graph([(0, 1)], 3)).walks(np.array([2]), 5, np.random.default_rng(0))


def test_skipgram_pairs_hand_worked():
    centre, context = skipgram_pairs(np.array([[0, 1, 2]]), 2)
    pairs = sorted(zip(centre.tolist(), context.tolist()))
    assert pairs == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]


def test_cooccurrence_graph_hand_worked():
    # Users: u0 {a, b, c}, u1 {a, b}, u2 {c, d}. co(a,b)=2, co(a,c)=1, co(b,c)=1, co(c,d)=1.
    frame = pd.DataFrame(
        [("u0", "a"), ("u0", "b"), ("u0", "c"), ("u1", "a"), ("u1", "b"), ("u2", "c"), ("u2", "d")],
        columns=["user_id", "item_id"],
    )
    frame["rating"], frame["timestamp"] = 1.0, np.arange(len(frame))
    dataset = from_frames("tiny", frame)
    graph = cooccurrence_graph(Split.from_dataset(dataset), neighbours=1, alpha=0.5).toarray()
    a, b, c, d = (int(np.flatnonzero(dataset.item_ids == x)[0]) for x in "abcd")
    # Each item keeps its best neighbour by cosine: a->b (2/2), b->a, c->d (1/sqrt(2)), d->c.
    expected = np.zeros((4, 4))
    for i, j, v in ((a, b, 1.0), (c, d, 1 / np.sqrt(2))):
        expected[i, j] = expected[j, i] = v
    np.testing.assert_allclose(graph, expected, rtol=1e-6)
    assert (graph == graph.T).all()
