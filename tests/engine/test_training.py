"""The shared training loop: early stopping, cancellation, seeds, sampling, losses, devices."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from engine.data import from_frames, leave_last_out
from engine.errors import EngineError, NotFittedError, ParameterError
from engine.models.base import Cancelled
from engine.models.ncf import GMF, NeuMF, _pointwise_loss
from engine.models.ncf_modules import NCF, GMFTower
from engine.models.training import (
    EpochRandom,
    Member,
    TrainSettings,
    WeightAverage,
    bce_loss,
    bpr_loss,
    pairwise_examples,
    pointwise_examples,
    seeded,
    train_module,
    train_together,
    validation_sample,
)


def _tiny_splits(n_users=30, n_items=25, per_user=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = [
        (u, int(i), 1.0, u * 100 + t)
        for u in range(n_users)
        for t, i in enumerate(rng.choice(n_items, per_user, replace=False))
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return leave_last_out(from_frames("tiny", frame))


SPLITS = _tiny_splits()
TRAIN = SPLITS.train


def _module(seed=0):
    with seeded(seed):
        return NCF(GMFTower(TRAIN.n_users, TRAIN.n_items, 4))


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class ScriptedEvaluator:
    """Returns the given NDCG values in turn and records the weights it was shown."""

    def __init__(self, module, values):
        self.module, self.values, self.seen = module, list(values), []

    def __call__(self, model, val):
        self.seen.append(_snapshot(self.module))
        return {"ndcg@10": self.values[len(self.seen) - 1]}


def _run(values, *, epochs=8, patience=2, eval_every=1, callback=None, eval_start=False, warmup=0):
    module = _module()
    evaluator = ScriptedEvaluator(module, values)
    settings = TrainSettings(epochs=epochs, batch_size=32, learning_rate=0.05, patience=patience,
                             eval_every=eval_every, device="cpu", eval_start=eval_start, warmup=warmup)
    result = train_module(None, module, pointwise_examples(TRAIN, 2), _pointwise_loss, settings,
                          val=SPLITS.val, callback=callback, evaluator=evaluator)
    return module, evaluator, result


# ---- early stopping --------------------------------------------------------------------------
def test_early_stopping_restores_the_best_epoch():
    events = []
    module, evaluator, result = _run([0.1, 0.3, 0.2, 0.25, 0.9], callback=events.append)
    # Best at epoch 2; epochs 3 and 4 do not improve and patience is 2, so epoch 5 never runs.
    assert result.best_epoch == 2 and result.best_ndcg == 0.3 and result.epochs_run == 4
    assert [e["epoch"] for e in events] == [1, 2, 3, 4]
    assert [e["val_ndcg@10"] for e in events] == [0.1, 0.3, 0.2, 0.25]
    _assert_same_weights(_snapshot(module), evaluator.seen[1])
    with pytest.raises(AssertionError):  # training did move the weights after epoch 2
        _assert_same_weights(_snapshot(module), evaluator.seen[3])
    assert not module.training  # left in eval mode


def test_no_early_stop_within_the_warmup_but_the_best_is_still_tracked():
    # A plateau after epoch 1 (popularity learnt first), then the real rise at epoch 5.
    values = [0.2, 0.1, 0.1, 0.1, 0.3, 0.25, 0.25, 0.9]
    assert _run(values)[2].epochs_run == 3  # patience 2 alone stops on the plateau
    module, evaluator, result = _run(values, warmup=3)
    # Epochs 2-3 do not count; epoch 4 is the first stale one, epoch 5 improves, 6-7 stop it.
    assert result.epochs_run == 7 and result.best_epoch == 5 and result.best_ndcg == 0.3
    _assert_same_weights(_snapshot(module), evaluator.seen[4])
    module, evaluator, result = _run([0.5, 0.1, 0.1, 0.1, 0.1, 0.1], warmup=3)
    assert result.epochs_run == 5 and result.best_epoch == 1  # the warm-up's best is kept
    _assert_same_weights(_snapshot(module), evaluator.seen[0])


def test_models_wait_out_the_warmup_only_when_training_from_scratch():
    from engine.models.ncf import GMF
    from engine.models.neural import WARMUP_EPOCHS

    model = GMF()
    assert model.train_settings().warmup == WARMUP_EPOCHS
    assert model.train_settings(eval_start=True).warmup == 0  # fine-tuning a pre-trained start


def test_patience_zero_trains_every_epoch_but_still_restores_the_best():
    module, evaluator, result = _run([0.5, 0.1, 0.2, 0.3], epochs=4, patience=0)
    assert result.epochs_run == 4 and result.best_epoch == 1
    _assert_same_weights(_snapshot(module), evaluator.seen[0])


def test_eval_start_keeps_the_starting_weights_unless_an_epoch_beats_them():
    start = _snapshot(_module())
    events = []
    module, evaluator, result = _run([0.5, 0.4, 0.3], patience=2, eval_start=True, callback=events.append)
    _assert_same_weights(evaluator.seen[0], start)  # the first evaluation is of the untrained module
    assert result.best_epoch == 0 and result.best_ndcg == 0.5 and result.epochs_run == 2
    assert [e["epoch"] for e in events] == [1, 2]  # epoch 0 is no progress event
    _assert_same_weights(_snapshot(module), start)

    module, evaluator, result = _run([0.5, 0.4, 0.6, 0.1, 0.1], patience=2, eval_start=True)
    assert result.best_epoch == 2
    _assert_same_weights(_snapshot(module), evaluator.seen[2])


def test_eval_every_evaluates_on_schedule_and_after_the_last_epoch():
    events = []
    _, evaluator, result = _run([0.1, 0.2, 0.3], epochs=5, eval_every=2, patience=0, callback=events.append)
    assert [e["epoch"] for e in events if "val_ndcg@10" in e] == [2, 4, 5]
    assert len(evaluator.seen) == 3 and result.best_epoch == 5


def test_progress_events_follow_the_convention():
    events = []
    module = _module()
    train_module(None, module, pointwise_examples(TRAIN, 2), _pointwise_loss,
                 TrainSettings(epochs=3, batch_size=64, device="cpu"), callback=events.append)
    # No validation: no metric and no validation time.
    assert [set(e) for e in events] == [{"epoch", "epochs", "loss", "seconds", "epoch_seconds"}] * 3
    assert [(e["epoch"], e["epochs"]) for e in events] == [(1, 3), (2, 3), (3, 3)]
    assert all(e["loss"] > 0 and math.isfinite(e["loss"]) for e in events)
    seconds = [e["seconds"] for e in events]
    assert seconds == sorted(seconds) and seconds[0] >= 0
    assert all(0 <= e["epoch_seconds"] <= e["seconds"] for e in events)


def test_a_model_fit_uses_the_real_evaluator_and_keeps_its_best_epoch():
    events = []
    model = GMF(factors=4, epochs=6, batch_size=32, learning_rate=0.05, patience=0, device="cpu")
    model.fit(TRAIN, val=SPLITS.val, callback=events.append)
    ndcg = [e["val_ndcg@10"] for e in events]
    assert len(ndcg) == 6 and all(0.0 <= v <= 1.0 for v in ndcg)
    assert model.best_epoch_ == int(np.argmax(ndcg)) + 1 and model.epochs_trained_ == 6


# ---- validation on a fixed sample of users ------------------------------------------------------
class RecordingEvaluator:
    """Records which users each validation ranked; returns a constant NDCG."""

    def __init__(self):
        self.users = []

    def __call__(self, model, val):
        self.users.append(tuple(val.users()))
        return {"ndcg@10": 0.5}


def test_validation_sample_is_fixed_seeded_and_whole_when_small():
    users = SPLITS.val.users()
    assert validation_sample(SPLITS.val, max_users=len(users)) is SPLITS.val  # small: every user
    assert validation_sample(SPLITS.val, max_users=0) is SPLITS.val
    part = validation_sample(SPLITS.val, max_users=10)
    assert len(part.users()) == 10 and set(part.users()) <= set(users)
    # Each sampled user keeps all of their validation interactions, and nothing else.
    assert len(part) == int(np.isin(SPLITS.val.user_idx, part.users()).sum())
    np.testing.assert_array_equal(validation_sample(SPLITS.val, max_users=10).users(), part.users())
    other = validation_sample(SPLITS.val, max_users=10, seed=1)
    assert set(other.users()) != set(part.users())


def test_every_epoch_and_every_stage_validates_the_same_sampled_users():
    evaluator = RecordingEvaluator()
    settings = TrainSettings(epochs=3, batch_size=64, device="cpu", validation_users=7, eval_start=True)
    members = [Member(None, _module(seed), _pointwise_loss) for seed in (0, 1)]
    train_together(members, pointwise_examples(TRAIN, 2), settings, val=SPLITS.val, evaluator=evaluator)
    assert len(evaluator.users) == 2 * (1 + 3) and len(set(evaluator.users)) == 1
    assert evaluator.users[0] == tuple(validation_sample(SPLITS.val, 7).users())


def test_progress_events_report_validation_seconds():
    events = []
    settings = TrainSettings(epochs=4, batch_size=64, device="cpu", eval_every=2, patience=0)
    train_module(None, _module(), pointwise_examples(TRAIN, 2), _pointwise_loss, settings, val=SPLITS.val,
                 callback=events.append, evaluator=RecordingEvaluator())
    assert ["val_seconds" in e for e in events] == [False, True, False, True]
    assert all(0 <= e["val_seconds"] <= e["epoch_seconds"] for e in events if "val_seconds" in e)


def test_members_trained_together_end_as_trained_alone():
    """One stream of examples for two modules: each ends with the weights of its own run."""
    settings = TrainSettings(epochs=3, batch_size=32, learning_rate=0.05, device="cpu")
    alone = []
    for seed in (0, 1):
        module = _module(seed)
        train_module(None, module, pointwise_examples(TRAIN, 2), _pointwise_loss, settings)
        alone.append(_snapshot(module))
    together = [_module(0), _module(1)]
    train_together([Member(None, m, _pointwise_loss) for m in together], pointwise_examples(TRAIN, 2), settings)
    for module, expected in zip(together, alone):
        _assert_same_weights(_snapshot(module), expected)


# ---- cancellation ------------------------------------------------------------------------------
def test_cancel_from_the_callback_leaves_the_model_unfitted():
    seen = []

    def cancel_at_two(event):
        seen.append(event["epoch"])
        if event["epoch"] == 2:
            raise Cancelled("stop")

    model = GMF(factors=4, epochs=10, batch_size=32, device="cpu")
    with pytest.raises(Cancelled):
        model.fit(TRAIN, val=SPLITS.val, callback=cancel_at_two)
    assert seen == [1, 2]
    assert not model.is_fitted and not hasattr(model, "module_")
    with pytest.raises(NotFittedError):
        model.score([0])


# ---- the weight average ---------------------------------------------------------------------------
def _averaged_run(decay, values=(0.1, 0.3, 0.2, 0.15)):
    module = _module()
    start = _snapshot(module)
    evaluator = ScriptedEvaluator(module, values)
    settings = TrainSettings(epochs=len(values), batch_size=32, learning_rate=0.05, patience=0, device="cpu",
                             weight_average=decay)
    result = train_module(None, module, pointwise_examples(TRAIN, 2), _pointwise_loss, settings,
                          val=SPLITS.val, evaluator=evaluator)
    return start, module, evaluator, result


def test_the_average_is_what_validates_and_what_is_kept_while_training_follows_the_raw_weights():
    _, plain, plain_eval, plain_result = _averaged_run(0.0)
    start, averaged, averaged_eval, averaged_result = _averaged_run(0.9)
    # Training went on from its own weights: every epoch's loss is the plain run's, bit for bit.
    assert [e["loss"] for e in averaged_result.history] == [e["loss"] for e in plain_result.history]
    # Validation saw the average (not the plain weights), and the best epoch's average is kept.
    assert not torch.equal(averaged_eval.seen[1]["gmf.user.weight"], plain_eval.seen[1]["gmf.user.weight"])
    assert averaged_result.best_epoch == 2
    _assert_same_weights(_snapshot(averaged), averaged_eval.seen[1])
    # The average lags behind: nearer the start than the weights it follows.
    def moved(state):
        return float((state["gmf.user.weight"] - start["gmf.user.weight"]).norm())

    assert moved(averaged_eval.seen[1]) < moved(plain_eval.seen[1])


def test_weight_average_updates_swaps_and_restores():
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(1.0)
    average = WeightAverage(module, 0.75)
    for value in (3.0, 5.0):
        with torch.no_grad():
            module.weight.fill_(value)
        average.update()
    average.swap_in()
    # The steps' weights 0.75 and 1 (the newest), normalised; the starting 1.0 counts for nothing.
    expected = (0.75 * 3.0 + 5.0) / 1.75
    assert module.weight.item() == pytest.approx(expected) and not module.training
    average.swap_in()  # twice in a row keeps the trained weights set aside, not the average
    average.swap_out()
    assert module.weight.item() == 5.0
    average.restore(average.copy())
    average.swap_out()  # after the restore there is nothing to put back
    assert module.weight.item() == pytest.approx(expected)


# ---- seeds -------------------------------------------------------------------------------------
def _fit_weights(seed):
    model = GMF(factors=4, epochs=3, batch_size=16, random_state=seed, device="cpu").fit(TRAIN)
    return _snapshot(model.module_)


def test_same_seed_gives_identical_weights_and_other_seeds_differ():
    first, again, other = _fit_weights(7), _fit_weights(7), _fit_weights(8)
    _assert_same_weights(first, again)
    assert not torch.equal(first["gmf.user.weight"], other["gmf.user.weight"])


def test_fit_leaves_the_global_torch_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    GMF(factors=4, epochs=2, device="cpu").fit(TRAIN)
    assert torch.equal(torch.rand(3), expected)


# ---- examples and negative sampling --------------------------------------------------------------
def _is_seen(seen, users, items) -> np.ndarray:
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    keys = rows * seen.shape[1] + seen.indices
    return np.isin(np.asarray(users) * seen.shape[1] + np.asarray(items), keys)


def test_pointwise_examples_are_positives_plus_sampled_unseen_items(ml100k_splits):
    train = ml100k_splits.train
    seen = train.matrix(binary=True)
    build = pointwise_examples(train, 4)
    users, items, labels = build(EpochRandom(torch.Generator().manual_seed(0), np.random.default_rng(0)))
    users, items, labels = users.numpy(), items.numpy(), labels.numpy()
    n_pos = seen.nnz
    assert len(users) == 5 * n_pos and labels.sum() == n_pos
    is_seen = _is_seen(seen, users, items)
    np.testing.assert_array_equal(is_seen, labels == 1)  # no negative is a positive
    assert (np.bincount(users[labels == 0], minlength=train.n_users) == 4 * np.diff(seen.indptr)).all()
    # A new epoch draws new negatives.
    _, items2, _ = build(EpochRandom(torch.Generator().manual_seed(1), np.random.default_rng(1)))
    assert (items2.numpy()[n_pos:] != items[n_pos:]).mean() > 0.9


def test_pairwise_examples_never_pair_a_positive_as_negative(ml100k_splits):
    train = ml100k_splits.train
    seen = train.matrix(binary=True)
    users, pos, neg = pairwise_examples(train, 3)(EpochRandom(torch.Generator().manual_seed(0), np.random.default_rng(0)))
    assert neg.shape == (seen.nnz, 3)
    assert _is_seen(seen, users.numpy(), pos.numpy()).all()
    flat_users = np.repeat(users.numpy(), 3)
    assert not _is_seen(seen, flat_users, neg.numpy().reshape(-1)).any()


# ---- losses ------------------------------------------------------------------------------------
def test_bce_loss_matches_hand_computed_values():
    # -log sigmoid(0) = log 2; -log(1 - sigmoid(2)) = log(1 + e^2)
    expected = (math.log(2.0) + math.log(1.0 + math.e**2)) / 2
    assert bce_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])).item() == pytest.approx(expected, rel=1e-6)


def test_bpr_loss_matches_hand_computed_values():
    # -log sigmoid(1 - 0) and -log sigmoid(1 - 3), averaged over the user's two negatives
    expected = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(2.0))) / 2
    assert bpr_loss(torch.tensor([1.0]), torch.tensor([[0.0, 3.0]])).item() == pytest.approx(expected, rel=1e-6)
    # No underflow for a large margin: the loss is exp(-50), not log(0).
    assert bpr_loss(torch.tensor([50.0]), torch.tensor([0.0])).item() == pytest.approx(math.exp(-50), rel=1e-3)


# ---- settings and failures -----------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [("optimizer", "rmsprop"), ("epochs", 0), ("batch_size", 0), ("patience", -1), ("warmup", -1),
                                          ("validation_users", -1), ("weight_average", 1.0),
                                          ("weight_average", -0.1)])
def test_bad_settings_raise_parameter_error(field, value):
    with pytest.raises(ParameterError, match=field):
        TrainSettings(**{field: value})


def test_a_diverging_loss_stops_with_a_clear_error():
    def nan_loss(module, users, items, labels):
        return module(users, items).sum() * float("nan")

    with pytest.raises(EngineError, match="learning_rate"):
        train_module(None, _module(), pointwise_examples(TRAIN, 1), nan_loss, TrainSettings(epochs=2, device="cpu"))


def test_sgd_optimizer_trains_too():
    module = _module()
    before = _snapshot(module)
    train_module(None, module, pointwise_examples(TRAIN, 1), _pointwise_loss,
                 TrainSettings(epochs=1, batch_size=16, optimizer="sgd", learning_rate=0.5, device="cpu"))
    assert not torch.equal(before["gmf.item.weight"], module.state_dict()["gmf.item.weight"])


# ---- devices -----------------------------------------------------------------------------------
def test_cuda_requested_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParameterError, match="cuda"):
        GMF(factors=4, epochs=1, device="cuda").fit(TRAIN)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_training_runs_on_cuda_when_available():
    model = NeuMF(factors=4, layers="8,4", epochs=3, batch_size=64, pretrain=False, device="cuda")
    model.fit(TRAIN, val=SPLITS.val)
    assert model.torch_device.type == "cuda"
    assert all(t.device.type == "cuda" for t in model.module_.state_dict().values())
    scores = model.score(np.arange(TRAIN.n_users))
    assert scores.shape == (TRAIN.n_users, TRAIN.n_items) and np.isfinite(scores).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_auto_device_picks_cuda():
    model = GMF(factors=4, epochs=1).fit(TRAIN)
    assert model.torch_device.type == "cuda"
