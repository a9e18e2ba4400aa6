"""Full rows through the towers: the item side computed once per set of weights, batched users.

For every model that scores full rows from a cached item side (`engine.models.item_side`), the
rows equal the pairwise path (the module's ``forward`` on each (user, item) pair), the item
side is computed once however many blocks and calls, and a training step or new weights are
never scored with a stale item side.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data import leave_last_out
from engine.models.acf import ACF
from engine.models.acf_module import ACFModule
from engine.models.registry import create_model, load_model
from tests.engine.test_features import small_dataset

SPLITS = leave_last_out(small_dataset())
TINY = {"factors": 4, "epochs": 2, "batch_size": 64, "device": "cpu"}
ROW_MODELS = {
    "gmf": {},
    "mlp": {"layers": "8,4"},
    "neumf": {"layers": "8,4", "pretrain": False},
    "attention-neumf": {"layers": "8,4", "heads": 2, "pretrain": False},
    "feature-mlp": {"layers": "8,4"},
}


@pytest.fixture(scope="module", params=sorted(ROW_MODELS))
def fitted(request):
    return create_model(request.param, **TINY, **ROW_MODELS[request.param]).fit(SPLITS.train)


def _pairwise(model, users):
    """The old path: every (user, item) pair through the module's forward."""
    items = np.arange(model.n_items_)
    return model.score(np.repeat(users, len(items)), np.tile(items, len(users))).reshape(len(users), -1)


def _count_item_side(module, monkeypatch) -> list:
    calls = []
    compute = type(module)._item_side

    def counted(self):
        calls.append(1)
        return compute(self)

    monkeypatch.setattr(type(module), "_item_side", counted)
    return calls


def test_rows_equal_the_pairwise_path(fitted):
    users = np.arange(fitted.n_users_)
    np.testing.assert_allclose(fitted.score(users), _pairwise(fitted, users), rtol=1e-5, atol=1e-6)


def test_the_item_side_is_computed_once_for_every_block_and_call(fitted, monkeypatch):
    monkeypatch.setattr(fitted.module_, "pairs_per_block", 3 * fitted.n_items_)  # blocks of 3 users
    fitted.module_.forget_item_side()
    calls = _count_item_side(fitted.module_, monkeypatch)
    users = np.arange(fitted.n_users_)
    first = fitted.score(users)
    again = fitted.recommend(users[:7], 3)
    assert len(calls) == 1
    np.testing.assert_array_equal(fitted.score(users), first)
    assert again[0].shape == (7, 3)


def test_new_weights_are_never_scored_with_a_stale_item_side(fitted):
    users = np.arange(5)
    module = fitted.module_
    before = fitted.score(users)  # fills the cache
    saved = {k: v.clone() for k, v in module.state_dict().items()}
    # A training step: the module enters training mode, the weights move in place.
    module.train()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    moved = fitted.score(users)
    assert not np.allclose(moved, before)
    np.testing.assert_allclose(moved, _pairwise(fitted, users), rtol=1e-5, atol=1e-6)
    # Restoring weights (as early stopping restores the best epoch's) drops the cache too.
    module.load_state_dict(saved)
    np.testing.assert_allclose(fitted.score(users), before, rtol=1e-6, atol=1e-7)


def test_validation_during_training_scores_the_current_weights(monkeypatch):
    """Every epoch's validation (and the callback's scores) use that epoch's weights: with a
    stale item side the rows would disagree with the pairwise path from the second epoch."""
    seen = []
    model = create_model("neumf", **{**TINY, "epochs": 3}, layers="8,4", pretrain=False, patience=0)

    def check(event):
        users = np.arange(6)
        rows = model.score(users)
        np.testing.assert_allclose(rows, _pairwise(model, users), rtol=1e-5, atol=1e-6)
        seen.append(rows)

    model.fit(SPLITS.train, val=SPLITS.val, callback=check)
    assert len(seen) == 3 and not np.allclose(seen[0], seen[1])


def test_a_loaded_model_scores_as_the_fitted_one(fitted, tmp_path):
    users = np.arange(fitted.n_users_)
    loaded = load_model(fitted.save(tmp_path / fitted.name))
    np.testing.assert_allclose(loaded.score(users), fitted.score(users), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(loaded.recommend(users, 5)[0], fitted.recommend(users, 5)[0])


# ---- ACF: the candidates' side (embedding plus image content) during training --------------------
def test_acf_module_caches_the_candidates_and_drops_them_when_training():
    torch.manual_seed(0)
    module = ACFModule(6, 9, 4, 4, 3, torch.randn(9, 5, 7), tied=True, content=True).eval()
    vectors, bias = module.item_side()
    assert module.item_side()[0] is vectors  # cached
    torch.testing.assert_close(vectors, module.item_vectors(torch.arange(9)))
    torch.testing.assert_close(bias, module.item_bias.weight[:, 0])
    module.train()
    with torch.no_grad():
        module.content.weight.add_(1.0)
    module.eval()
    torch.testing.assert_close(module.item_side()[0], module.item_vectors(torch.arange(9)))


def test_acf_validation_rows_equal_paired_scores_every_epoch():
    seen = []
    model = ACF(factors=4, attention_dim=4, components_dim=4, epochs=3, eval_every=1, patience=0, batch_size=64,
                consistency=False, pretrain=False, device="cpu")
    users = np.arange(6)
    items = np.arange(SPLITS.train.n_items)

    def check(event):  # during training ACF scores its live module
        rows = model.score(users)
        pairs = model.score(np.repeat(users, len(items)), np.tile(items, len(users))).reshape(len(users), -1)
        np.testing.assert_allclose(rows, pairs, rtol=1e-5, atol=1e-6)
        seen.append(rows)

    model.fit(SPLITS.train, val=SPLITS.val, callback=check)
    assert len(seen) == 3 and not np.allclose(seen[0], seen[2])
