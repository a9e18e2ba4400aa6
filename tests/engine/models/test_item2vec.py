"""item2vec over node2vec walks (engine.models.item2vec)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data import leave_last_out
from engine.models.item2vec import Item2Vec, SkipGram, sgns_loss, unigram_table



@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors gain nothing from intra-op threads; on a busy machine they cost a lot."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_sgns_loss_hand_worked():
    module = SkipGram(3, 2)
    with torch.no_grad():
        module.item.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        module.context.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, -1.0], [0.5, 0.5]]))
    # Centre 0 with context 0 (logit 2) and negatives 1 (logit 0) and 2 (logit 0.5).
    loss = sgns_loss(module, torch.tensor([0]), torch.tensor([0]), torch.tensor([[1, 2]]))
    softplus = lambda x: np.log1p(np.exp(x))
    assert abs(loss.item() - (softplus(-2.0) + softplus(0.0) + softplus(0.5))) < 1e-6


def test_unigram_table_is_power_075():
    cdf = unigram_table(np.array([16.0, 0.0, 1.0]))
    w = np.array([8.0, 0.0, 1.0])  # 16 ** 0.75 = 8
    np.testing.assert_allclose(cdf, np.cumsum(w) / w.sum())


def test_skipgram_loss_decreases(ml100k_splits):
    events = []
    Item2Vec(factors=16, walks_per_node=1, walk_length=20, epochs=3, patience=0, device="cpu").fit(
        ml100k_splits.train, callback=events.append
    )
    losses = [e["loss"] for e in events]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]


def test_sequels_are_neighbours_on_ml100k(ml100k, ml100k_splits, ml100k_fixture):
    # The generated folder's saga: three films drawn from one taste vector, so users who watch
    # one watch the others, and the walks over co-occurrence put the sequels next to the first.
    first, *sequels = (ml100k.item_index(raw) for raw in ml100k_fixture.saga)
    model = Item2Vec(device="cpu").fit(ml100k_splits.train)
    neighbours, _ = model.similar_items([first], k=10)
    assert set(sequels) <= set(neighbours[0].tolist()), [ml100k.title(i) for i in neighbours[0]]


def test_star_wars_neighbours_on_real_ml100k(real_ml100k):
    model = Item2Vec(device="cpu").fit(leave_last_out(real_ml100k).train)
    neighbours, _ = model.similar_items([real_ml100k.item_index("50")], k=10)
    titles = {real_ml100k.title(i) for i in neighbours[0]}
    assert {"Return of the Jedi (1983)", "The Empire Strikes Back (1980)"} <= titles, titles
