"""BPR and WARP: hand-worked losses and gradients, rank weights, violator selection, learning."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from engine.data import from_frames, leave_last_out
from engine.evaluation import evaluate
from engine.models.base import Cancelled
from engine.models.bpr import BPR
from engine.models.sampled_mf import Adagrad, Factors
from engine.models.warp import WARP, estimated_rank, first_violators, rank_weight

FAST = {"factors": 8, "epochs": 30, "batch_size": 64, "learning_rate": 0.05, "regularization": 0.0}


def _tiny_factors() -> Factors:
    return Factors(
        user=torch.tensor([[1.0, 2.0]]),
        item=torch.tensor([[0.5, 0.0], [1.0, -1.0]]),
        item_bias=torch.tensor([0.1, 0.3]),
    )


def _with_grad(f: Factors) -> Factors:
    return Factors(*(t.clone().requires_grad_() for t in (f.user, f.item, f.item_bias)))


# ---- BPR: loss and gradients by hand ---------------------------------------------------------
def test_bpr_loss_and_gradients_by_hand():
    # x_ui = 1*0.5 + 2*0 + 0.1 = 0.6; x_uj = 1*1 + 2*(-1) + 0.3 = -0.7; x_uij = 1.3.
    # L2 (lambda = 0.1): |p|^2 = 5, |q_i|^2 + b_i^2 = 0.25 + 0.01, |q_j|^2 + b_j^2 = 2 + 0.09.
    lam = 0.1
    f = _tiny_factors()
    loss, grads = BPR(regularization=lam).batch_step(f, torch.tensor([0]), torch.tensor([0]), torch.tensor([[1]]), None)
    assert float(loss) == pytest.approx(math.log1p(math.exp(-1.3)) + lam * (5 + 0.26 + 2.09), rel=1e-6)

    s = 1 / (1 + math.exp(1.3))  # sigma(-x_uij): minus the derivative of the loss wrt x_uij
    g = grads.dense(f)
    # d/dp = -s (q_i - q_j) + 2 lam p ; d/dq_i = -s p + 2 lam q_i ; d/dq_j = s p + 2 lam q_j
    assert g.user[0].tolist() == pytest.approx([-s * (0.5 - 1.0) + 0.2 * 1, -s * (0.0 + 1.0) + 0.2 * 2], rel=1e-5)
    assert g.item[0].tolist() == pytest.approx([-s * 1 + 0.2 * 0.5, -s * 2 + 0.2 * 0.0], rel=1e-5)
    assert g.item[1].tolist() == pytest.approx([s * 1 + 0.2 * 1.0, s * 2 - 0.2 * 1.0], rel=1e-5)
    assert g.item_bias.tolist() == pytest.approx([-s + 0.2 * 0.1, s + 0.2 * 0.3], rel=1e-5)


@pytest.mark.parametrize(
    "model", [BPR(regularization=0.3, negatives=3), WARP(regularization=0.3, max_sampled=4, margin=0.5)]
)
def test_closed_form_gradients_match_autograd(model):
    gen = torch.Generator().manual_seed(0)
    f = Factors.random(6, 9, 4, 0.7, gen)
    f.item_bias = torch.randn(9, generator=gen)
    users = torch.tensor([0, 1, 1, 5, 3])
    pos = torch.tensor([2, 3, 3, 8, 0])
    neg = torch.randint(0, 9, (5, model.n_negatives()), generator=gen)
    allowed = torch.tensor([7, 6, 6, 5, 8])
    loss, grads = model.batch_step(f, users, pos, neg, allowed)
    leaf = _with_grad(f)
    reference, _ = model.batch_step(leaf, users, pos, neg, allowed)
    reference.backward()
    g = grads.dense(f)
    assert float(loss) == pytest.approx(float(reference.detach()), rel=1e-6)
    for mine, theirs in ((g.user, leaf.user.grad), (g.item, leaf.item.grad), (g.item_bias, leaf.item_bias.grad)):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


# ---- WARP pieces by hand ----------------------------------------------------------------------
def test_warp_rank_weight_is_the_harmonic_number():
    weights = rank_weight(torch.tensor([0, 1, 2, 3, 10])).tolist()
    assert weights == pytest.approx([0.0, 1.0, 1.5, 1 + 1 / 2 + 1 / 3, 7381 / 2520], rel=1e-6)


def test_first_violator_selection():
    violated = torch.tensor(
        [
            [False, True, True, False],
            [True, False, False, True],
            [False, False, False, False],
            [False, False, False, True],
        ]
    )
    assert first_violators(violated).tolist() == [1, 0, -1, 3]


def test_estimated_rank_is_floor_of_negatives_over_trials():
    n = torch.tensor([100, 100, 7, 3])
    trials = torch.tensor([1, 3, 2, 10])
    assert estimated_rank(n, trials).tolist() == [100, 33, 3, 1]  # never below 1


def test_warp_updates_only_violating_rows_with_rank_weighted_hinge():
    # Two users, one factor, no biases, margin 1. Items' factors are their scores for user 0.
    f = Factors(torch.tensor([[1.0], [1.0]]), torch.tensor([[2.0], [1.5], [0.5], [3.0], [0.0]]), torch.zeros(5))
    users, pos = torch.tensor([0, 1]), torch.tensor([0, 3])
    # Row 0: x_pos = 2; draws 2 (0.5, no), 1 (1.5 > 1: violates at trial 2). Row 1: x_pos = 3, none.
    neg = torch.tensor([[2, 1, 4], [2, 4, 1]])
    allowed = torch.tensor([4, 4])
    loss, grads = WARP(regularization=0.0, margin=1.0, max_sampled=3).batch_step(f, users, pos, neg, allowed)
    weight = 1 + 1 / 2  # rank = floor(4 / 2) = 2
    assert float(loss) == pytest.approx(weight * (1.0 - 2.0 + 1.5) / 2)
    g = grads.dense(f)
    assert g.user[:, 0].tolist() == pytest.approx([weight * (1.5 - 2.0) / 2, 0.0])
    assert g.item[:, 0].tolist() == pytest.approx([-weight / 2, weight / 2, 0.0, 0.0, 0.0])
    assert grads.user[0][0].tolist() == [0]  # the row without a violator is not touched at all


# ---- the optimizer ---------------------------------------------------------------------------
def test_adagrad_by_hand_and_lazy_equals_dense():
    gen = torch.Generator().manual_seed(1)
    start = torch.randn(5, 3, generator=gen)
    dense, lazy = Adagrad(start.clone(), 0.1, lazy=False), Adagrad(start.clone(), 0.1, lazy=True)
    for step in range(3):
        rows = torch.tensor([3, 0, 1, 3])  # row 3 twice: its gradients are summed; rows 2, 4 untouched
        grad = torch.randn(4, 3, generator=gen)
        if step == 0:
            # First step: sum of squares = g^2, so each touched coordinate moves by -0.1 * sign(g).
            summed = grad[[0]] + grad[[3]]
            expected = start.clone()
            expected[3] -= 0.1 * torch.sign(summed[0])
            expected[0] -= 0.1 * torch.sign(grad[1])
            expected[1] -= 0.1 * torch.sign(grad[2])
        dense.step((rows[:2], grad[:2]), (rows[2:], grad[2:]))
        lazy.step((rows[:2], grad[:2]), (rows[2:], grad[2:]))
        if step == 0:
            torch.testing.assert_close(dense.param, expected)
        torch.testing.assert_close(lazy.param, dense.param)
    torch.testing.assert_close(dense.param[[2, 4]], start[[2, 4]], rtol=0, atol=0)


@pytest.mark.parametrize("width", [4, 3, 64])  # 16-byte rows are scattered as wide elements, 12-byte ones not
def test_lazy_and_dense_steps_stay_bit_identical_when_the_touched_rows_change(width):
    """The dense step reuses its gradient buffer and the lazy one a row mask: a step must not
    carry a gradient into the next, whatever rows the next one touches."""
    gen = torch.Generator().manual_seed(2)
    start = torch.randn(50, width, generator=gen)
    dense, lazy = Adagrad(start.clone(), 0.1, lazy=False), Adagrad(start.clone(), 0.1, lazy=True)
    untouched = torch.ones(50, dtype=torch.bool)
    for _ in range(6):
        rows = torch.randint(0, 40, (12,), generator=gen)  # repeats within and across the parts
        grad = torch.randn(12, width, generator=gen)
        untouched[rows] = False
        for opt in (dense, lazy):
            opt.step((rows[:5], grad[:5]), (rows[5:], grad[5:]))
        assert torch.equal(lazy.param, dense.param) and torch.equal(lazy.sum_sq, dense.sum_sq)
    assert torch.equal(dense.param[untouched], start[untouched])
    assert not torch.equal(dense.param[~untouched], start[~untouched])


# ---- learning on a structured dataset ------------------------------------------------------------
@pytest.fixture(scope="module")
def blocks():
    """Two taste groups of 25 users, each liking 70% of its own 20 items (and nothing else)."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(50):
        group = user // 25
        own = np.arange(group * 20, group * 20 + 20)
        for t, item in enumerate(rng.permutation(own)[:14]):
            rows.append((f"u{user}", f"i{item}", t))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return leave_last_out(from_frames("blocks", frame))


@pytest.mark.parametrize("cls", [BPR, WARP])
def test_training_lifts_auc_well_above_chance(blocks, cls):
    model = cls(**FAST, device="cpu").fit(blocks.train)
    auc = evaluate(model, blocks.test, exclude=[blocks.val])["auc"]
    untrained = cls(**{**FAST, "epochs": 1, "learning_rate": 1e-5}, device="cpu").fit(blocks.train)
    before = evaluate(untrained, blocks.test, exclude=[blocks.val])["auc"]
    # A test item competes with 20 other-group items and 6 unseen own-group ones it cannot be told
    # apart from: the best achievable AUC is (20 + 6 / 2) / 26 = 0.885.
    assert before < 0.7
    assert auc > 0.8


@pytest.mark.parametrize("cls", [BPR, WARP])
def test_same_seed_same_model_other_seed_other_model(blocks, cls):
    params = {**FAST, "epochs": 3, "device": "cpu"}
    a = cls(**params, random_state=3).fit(blocks.train)
    b = cls(**params, random_state=3).fit(blocks.train)
    c = cls(**params, random_state=4).fit(blocks.train)
    assert np.array_equal(a.item_factors_, b.item_factors_) and np.array_equal(a.user_factors_, b.user_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)
    assert a.item_embeddings().shape == (blocks.train.n_items, 8)
    assert a.user_embeddings().shape == (blocks.train.n_users, 8)


@pytest.mark.parametrize("cls", [BPR, WARP])
def test_lazy_and_dense_updates_train_bit_identical_models(blocks, cls, monkeypatch):
    """Which tables are updated lazily is a matter of speed only: a seed gives the same model."""
    import engine.models.sampled_mf as sampled_mf

    fitted = []
    for lazy_rows in (0, 10**9):  # every table lazy, every table dense
        monkeypatch.setattr(sampled_mf, "LAZY_ROWS", lazy_rows)
        fitted.append(cls(**{**FAST, "epochs": 3, "batch_size": 16}, device="cpu").fit(blocks.train))
    for name in ("user_factors_", "item_factors_", "item_bias_"):
        assert np.array_equal(getattr(fitted[0], name), getattr(fitted[1], name))


def test_tables_much_larger_than_a_batch_are_updated_lazily(blocks, monkeypatch):
    import engine.models.sampled_mf as sampled_mf

    made = []
    monkeypatch.setattr(sampled_mf, "Adagrad", lambda t, lr, lazy: made.append(lazy) or Adagrad(t, lr, lazy=lazy))
    # 50 users, 40 items. Batches of 8: the user table (50 > 2 x 8 rows) is lazy. BPR with 2
    # negatives updates 24 item rows per batch (40 < 48: dense); WARP updates a positive and one
    # violator per row whatever max_sampled is, 16 rows (40 > 32: lazy).
    BPR(**{**FAST, "epochs": 1, "batch_size": 8, "negatives": 2}, device="cpu").fit(blocks.train)
    WARP(**{**FAST, "epochs": 1, "batch_size": 8, "max_sampled": 10}, device="cpu").fit(blocks.train)
    assert made == [True, False, False, True, True, True]


def test_events_early_stopping_and_best_weights(blocks):
    events = []
    params = {**FAST, "learning_rate": 0.2, "epochs": 40, "eval_every": 2, "patience": 2, "device": "cpu"}
    model = BPR(**params).fit(blocks.train, val=blocks.val, callback=events.append)
    assert [e["epoch"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["epochs"] == 40 and e["loss"] > 0 and e["seconds"] >= 0 for e in events)
    checks = [e["val_ndcg@10"] for e in events if "val_ndcg@10" in e]
    assert [e["epoch"] for e in events if "val_ndcg@10" in e] == list(range(2, len(events) + 1, 2))
    if len(events) < 40:  # stopped early: the last `patience` checks did not beat the best
        assert max(checks[-2:]) <= max(checks[:-2])
    assert evaluate(model, blocks.val)["ndcg@10"] == pytest.approx(max(checks))


def test_cancelled_fit_leaves_the_model_unfitted_and_threads_restored(blocks):
    threads = torch.get_num_threads()

    def stop(event):
        assert torch.get_num_threads() == 1  # the CPU loop runs single-threaded
        raise Cancelled("stop")

    model = WARP(**FAST, device="cpu")
    with pytest.raises(Cancelled):
        model.fit(blocks.train, callback=stop)
    assert not model.is_fitted
    assert torch.get_num_threads() == threads


def test_scores_are_factor_products_plus_item_bias(blocks):
    model = BPR(**{**FAST, "epochs": 2}, device="cpu").fit(blocks.train)
    users = np.array([0, 3, 3])
    full = model.score(users)
    expected = model.user_factors_[users] @ model.item_factors_.T + model.item_bias_
    np.testing.assert_allclose(full, expected, rtol=1e-5)
    items = np.array([1, 0, 7])
    np.testing.assert_allclose(model.score(users, items), expected[[0, 1, 2], items], rtol=1e-5)


def test_save_load_round_trip(blocks, tmp_path):
    model = WARP(**{**FAST, "epochs": 2}, device="cpu").fit(blocks.train)
    loaded = WARP.load(model.save(tmp_path / "warp"))
    users = np.arange(5)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert loaded.get_params() == model.get_params()
