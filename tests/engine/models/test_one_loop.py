"""One epoch loop (`engine.models.training.run_epochs`) and one validation point (`Recommender.fit`).

The loop is checked with a scripted trainee whose "model" is one number, so what it validates,
keeps and stops is known by hand; then every registered iterative model is checked to send the
loop's progress events and to refuse out-of-range parameters before any work.
"""

from __future__ import annotations

import pytest

from engine.errors import EngineError, ParameterError
from engine.models.registry import MODELS
from engine.models.training import Trainee, TrainSettings, run_epochs
from tests.engine.models.test_contract import SPLITS, make

EVENT_KEYS = {"epoch", "epochs", "loss", "seconds", "epoch_seconds"}


class Scripted:
    """A trainee whose state is the epoch number and whose validation NDCG is scripted."""

    def __init__(self, ndcg_by_epoch: dict[int, float], callback=None):
        self.ndcg_by_epoch, self.state, self.published, self.validated = ndcg_by_epoch, 0, None, []
        self.trainee = Trainee(self.step, model=self, callback=callback, publish=self.publish,
                               snapshot=lambda: self.state, restore=self.restore)

    def step(self, epoch):
        self.state = epoch
        return 1.0 / epoch

    def publish(self):
        self.published = self.state

    def restore(self, state):
        self.state = self.published = state

    def evaluate(self, model, val):
        assert model is self and model.published == self.state, "validation must see the current state"
        self.validated.append(self.state)
        return {"ndcg@10": self.ndcg_by_epoch[self.state]}


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience():
    s = Scripted({2: 0.1, 4: 0.3, 6: 0.2, 8: 0.25, 10: 0.9})
    result = run_epochs([s.trainee], TrainSettings(epochs=10, eval_every=2, patience=2), val=SPLITS.val,
                        evaluator=s.evaluate)[0]
    assert s.validated == [2, 4, 6, 8]  # 6 and 8 do not beat 4: stopped before epoch 10's 0.9
    assert (result.epochs_run, result.best_epoch, result.best_ndcg) == (8, 4, 0.3)
    assert s.published == 4


def test_without_keep_best_the_last_state_stays_and_validation_is_for_listeners_only():
    quiet = Scripted({e: 1.0 / e for e in range(1, 4)})
    settings = TrainSettings(epochs=3, patience=0, keep_best=False)
    result = run_epochs([quiet.trainee], settings, val=SPLITS.val, evaluator=quiet.evaluate)[0]
    assert quiet.validated == [] and quiet.published == 3 and result.epochs_run == 3

    events = []
    heard = Scripted({e: 1.0 / e for e in range(1, 4)}, callback=events.append)
    run_epochs([heard.trainee], settings, val=SPLITS.val, evaluator=heard.evaluate)
    assert heard.validated == [1, 2, 3] and heard.published == 3  # best was epoch 1: not restored
    assert [e["val_ndcg@10"] for e in events] == pytest.approx([1.0, 0.5, 1 / 3])
    assert all(EVENT_KEYS | {"val_seconds"} <= set(e) for e in events)


def test_shared_work_runs_once_per_epoch_for_every_trainee():
    calls = []
    a, b = Scripted({}), Scripted({})
    results = run_epochs([a.trainee, b.trainee], TrainSettings(epochs=3), before_epoch=calls.append)
    assert calls == [1, 2, 3] and [r.epochs_run for r in results] == [3, 3]


def test_a_non_finite_loss_is_a_clear_error_and_the_state_is_still_published():
    s = Scripted({})
    s.trainee.step = lambda epoch: float("nan")
    with pytest.raises(EngineError, match="learning_rate"):
        run_epochs([s.trainee], TrainSettings(epochs=2))
    assert s.published == 0


ITERATIVE = [n for n in MODELS if "epochs" in MODELS[n].param_names()]


@pytest.mark.parametrize("name", ITERATIVE)
def test_every_iterative_model_sends_the_loops_events(name):
    """One progress event type: the same keys from every model, validation where it validated."""
    events = []
    make(name, epochs=2).fit(SPLITS.train, val=SPLITS.val, callback=events.append)
    assert events and all(EVENT_KEYS <= set(e) for e in events)
    assert any("val_ndcg@10" in e and "val_seconds" in e for e in events)


def _out_of_range(spec):
    if spec.kind in ("int", "float"):
        return spec.high * 2 + 1 if spec.high is not None else spec.low - 1
    return "no-such-choice" if spec.kind == "choice" else None


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_checks_every_parameter_range_once_before_any_work(name):
    """A model built directly (not through `from_params`) is checked by `fit` itself."""
    cls = MODELS[name]
    for key, spec in cls.param_space.items():
        bad = _out_of_range(spec)
        if bad is None:
            continue
        model = cls(**{key: bad})
        with pytest.raises(ParameterError, match=key):
            model.fit(SPLITS.train)
        assert not model.is_fitted
