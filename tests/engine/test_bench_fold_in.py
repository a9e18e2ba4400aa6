"""The fold-in bench: held-out users never trained on, the same protocol for both arms, the ratio."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.bench import fold_in as fib
from engine.data import load_dataset
from engine.errors import EngineError, ParameterError
from engine.runs.experiment import make_splits
from engine.models.base import Recommender
from engine.models.popularity import Popularity
from tests.engine.test_cli import run, write_tiny_movielens


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_movielens(tmp_path_factory.mktemp("fold_in_bench") / "movies")


@pytest.fixture(scope="module")
def splits(tiny):
    return make_splits(load_dataset(tiny))


@pytest.fixture
def fits(monkeypatch):
    """Every fit of the test as ``(model name, train users, val users)``."""
    seen = []
    original = Recommender.fit

    def spy(self, train, *, val=None, callback=None):
        seen.append((self.name, set(np.unique(train.user_idx).tolist()),
                     set() if val is None else set(np.unique(val.user_idx).tolist())))
        return original(self, train, val=val, callback=callback)

    monkeypatch.setattr(Recommender, "fit", spy)
    return seen


@pytest.mark.parametrize("fraction", [0, 1, float("nan"), -1, 1.5, "abc", float("inf"), True])
def test_bad_fraction_is_one_line(fraction):
    with pytest.raises(ParameterError, match="--fold-in must be a fraction") as info:
        fib.check_fraction(fraction)
    assert "\n" not in str(info.value)


def test_held_out_users_are_a_seeded_share_of_the_test_users(splits):
    users = fib.held_out_users(splits, 0.25)
    assert len(users) == 10 and set(users) <= set(splits.test.users().tolist())  # 40 test users
    np.testing.assert_array_equal(users, fib.held_out_users(splits, 0.25))
    assert not np.array_equal(users, fib.held_out_users(splits, 0.25, random_state=1))
    assert len(fib.held_out_users(splits, 0.001)) == 1  # at least one user
    assert len(fib.held_out_users(splits, 0.999)) == 39  # and one left to train on
    groups = fib.held_out_groups(splits, 0.25, groups=4)
    assert [len(g) for g in groups] == [10] * 4 and len(set(np.concatenate(groups).tolist())) == 40  # disjoint
    np.testing.assert_array_equal(groups[0], users)  # the first group does not depend on how many follow
    for bad in (0, 5, 1.5, True):
        with pytest.raises(ParameterError, match="--fold-in-groups must be a whole number from 1 to 4"):
            fib.held_out_groups(splits, 0.25, groups=bad)


def test_held_out_users_are_never_in_training_and_the_ratio_is_of_the_two_ndcgs(tiny, splits, fits):
    report = fib.run_fold_in_bench(tiny, 0.25, models=["popularity", "als[epochs=3,factors=4]"], peers=False)
    held = set(fib.held_out_users(splits, 0.25).tolist())
    assert report["held_out_users"] == len(held) == 10
    # Each model: one fit without the held-out users (train and validation), then one with them.
    assert [name for name, _, _ in fits] == ["popularity", "popularity", "als", "als"]
    for (_, train_without, val_without), (_, train_with, _) in zip(fits[::2], fits[1::2]):
        assert not train_without & held and not val_without & held
        assert held <= train_with
    assert report["split"]["train_without_first_group"] == sum(~np.isin(splits.train.user_idx, list(held)))
    for row in report["rows"]:
        folded, trained = row["fold_in_metrics"], row["in_training_metrics"]
        assert set(folded) == set(trained) == {"ndcg@10", "recall@10", "hr@10"}
        if trained["ndcg@10"] > 0:
            assert row["ndcg_ratio"] == pytest.approx(folded["ndcg@10"] / trained["ndcg@10"])
        if trained["recall@10"] > 0:
            assert row["recall_ratio"] == pytest.approx(folded["recall@10"] / trained["recall@10"])
    text = fib.format_fold_in_report(report)
    assert "10 of 40 test users held out" in text and "als[epochs=3,factors=4]" in text


def test_groups_are_each_held_out_of_their_own_fit_and_pooled(tiny, splits, fits):
    report = fib.run_fold_in_bench(tiny, 0.25, models=["als[epochs=2,factors=4]"], groups=3, peers=False)
    groups = [set(g.tolist()) for g in fib.held_out_groups(splits, 0.25, groups=3)]
    assert [name for name, _, _ in fits] == ["als"] * 4  # three without a group, one with everyone
    for (_, train, val), group in zip(fits[:3], groups):
        assert not train & group and not val & group and (set().union(*groups) - group) <= train
    assert set().union(*groups) <= fits[3][1]
    assert report["held_out_users"] == 30 and report["groups"] == 3
    row = report["rows"][0]
    assert row["ndcg_ratio"] == pytest.approx(row["fold_in_metrics"]["ndcg@10"] / row["in_training_metrics"]["ndcg@10"])


def test_folded_users_are_ranked_by_the_same_protocol(splits):
    """Popularity folds in exactly (its scores ignore the history), so the fold-in arm of a model
    trained on everyone must score the users exactly as the direct evaluation does: same
    candidates (their training and validation items excluded), same metrics."""
    users = fib.held_out_users(splits, 0.5)
    model = Popularity().fit(splits.train, val=splits.val)
    rows = fib.folded_rows(model, fib._histories(splits.train, users))
    from engine.evaluation import evaluate

    folded = fib.evaluate_folded(rows, splits, users, protocol="full")
    trained = fib.evaluate_users(model, splits, users, protocol="full")
    assert all((folded[m] == trained[m]).all() and len(folded[m]) == len(users) for m in fib.METRICS)
    direct = evaluate(model, splits.test, exclude=[splits.val], users=users)
    assert {m: float(folded[m].mean()) for m in fib.METRICS} == {m: direct[m] for m in fib.METRICS}
    # The view serves only the held-out users: anything else is a bug in the bench, loudly.
    view = fib._HeldOutView.over(splits.train, users, rows)
    other = np.setdiff1d(np.arange(splits.train.n_users), users)[:1]
    with pytest.raises(EngineError, match="only the users that were held out"):
        view.score(other)


def test_ratio_interval_brackets_the_ratio_of_means():
    folded = np.array([0.0, 1.0, 0.5, 0.0, 0.3, 0.0, 1.0, 0.2])
    trained = np.array([0.0, 1.0, 0.6, 0.2, 0.3, 0.0, 0.5, 0.2])
    low, high = fib.ratio_interval(folded, trained)
    assert low < folded.mean() / trained.mean() < high
    assert fib.ratio_interval(folded, folded) == [1.0, 1.0]
    assert fib.ratio_interval(folded, np.zeros(8)) is None  # no denominator: no interval


def test_histories_are_the_users_training_rows(splits):
    users = fib.held_out_users(splits, 0.25)
    histories = fib._histories(splits.train, users)
    seen = splits.train.matrix()
    for user in users:
        items, ratings = histories[int(user)]
        np.testing.assert_array_equal(np.sort(items), seen[int(user)].indices)
        np.testing.assert_allclose(ratings[np.argsort(items)], seen[int(user)].data)


def test_a_model_without_fold_in_is_reported_not_fitted(tiny, fits, monkeypatch):
    monkeypatch.setattr(Popularity, "has_fold_in", False)  # every registered model folds in now
    report = fib.run_fold_in_bench(tiny, 0.25, models=["popularity"], peers=False)
    (row,) = report["rows"]
    assert row["fold_in"] is False and "no fold_in ability" in row["note"] and "fold_in_metrics" not in row
    assert fits == []
    assert "no fold_in ability" in fib.format_fold_in_report(report)


def test_unknown_models_fail_before_any_fit(tiny, fits):
    with pytest.raises(ParameterError, match="unknown model 'alss'.*als"):
        fib.run_fold_in_bench(tiny, 0.25, models=["popularity", "alss"])
    with pytest.raises(ParameterError, match="factors"):
        fib.run_fold_in_bench(tiny, 0.25, models=["als[factors=-1]"])
    assert fits == []


def test_the_peer_folds_in_with_implicits_recalculate_user(tiny, splits, fits):
    pytest.importorskip("implicit")
    report = fib.run_fold_in_bench(tiny, 0.25, models=["als[epochs=3]"])
    peer = report["rows"][-1]
    assert peer["model"] == "implicit-als" and peer["source"] == "peer"
    held = set(fib.held_out_users(splits, 0.25).tolist())
    assert fits[-2][0] == "implicit-als" and not fits[-2][1] & held  # fitted without them first
    (comparison,) = report["comparisons"]
    assert comparison["engine_ndcg@10"] == report["rows"][0]["fold_in_metrics"]["ndcg@10"]
    assert comparison["peer_ndcg@10"] == peer["fold_in_metrics"]["ndcg@10"]
    low, high = comparison["ndcg_ratio_ci95"] or (0.0, float("inf"))
    assert comparison["ndcg_ratio"] is None or low <= comparison["ndcg_ratio"] <= high
    assert all(fib.PER_USER not in row for row in report["rows"])  # per-user arrays stay out of the report
    json.dumps(report)


def test_recalculated_scores_are_implicits_own_solve(splits):
    pytest.importorskip("implicit")
    from engine.bench.peers import ImplicitALS

    model = ImplicitALS(factors=4, epochs=3, num_threads=1).fit(splits.train)
    rows = splits.train.matrix(binary=True)[[0, 5, 9]]
    scores = model.recalculated_scores(rows)
    factors = model._native.recalculate_user(np.arange(3), rows)
    np.testing.assert_allclose(scores, factors @ model.item_factors_.T, rtol=1e-5, atol=1e-6)
    with pytest.raises(ParameterError, match="items"):
        model.recalculated_scores(rows[:, :3])


def test_latency_histories_and_timing(splits):
    histories = fib.latency_histories(splits.train, n=7, length=5)
    seen = splits.train.matrix(binary=True)
    assert len(histories) == 7 and all(len(h) == len(set(h.tolist())) == 5 for h in histories)
    assert all(any(set(h.tolist()) <= set(seen[u].indices.tolist()) for u in range(seen.shape[0])) for h in histories)
    with pytest.raises(EngineError, match="no user has 20 training items"):
        fib.latency_histories(splits.train)
    import torch

    threads = torch.get_num_threads()
    model = Popularity().fit(splits.train)
    result = fib.fold_in_latency(model, histories)
    assert result["histories"] == 7 and 0 < result["median_ms"] <= result["p90_ms"]
    assert torch.get_num_threads() == threads  # the one-thread setting does not leak


def test_cli_fold_in_bench(tiny, capsys):
    code, out, err = run(capsys, "bench", "--dataset", tiny, "--models", "popularity", "--fold-in", "0.25", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["fraction"] == 0.25 and report["rows"][0]["model"] == "popularity"
    for argv, words in [
        (["--fold-in", "0"], "--fold-in must be a fraction"),
        (["--fold-in", "nan"], "--fold-in must be a fraction"),
        (["--fold-in", "-1"], "--fold-in must be a fraction"),
        (["--fold-in-latency"], "--fold-in-latency and --fold-in-groups go with --fold-in"),
        (["--fold-in-groups", "2"], "--fold-in-latency and --fold-in-groups go with --fold-in"),
        (["--fold-in", "0.25", "--fold-in-groups", "9"], "--fold-in-groups must be a whole number from 1 to 4"),
        (["--fold-in", "0.2", "--seeds", "0"], "--seeds must be a whole number from 1 to 100"),
        (["--fold-in", "0.2", "--fold-in-latency"], "no user has 20 training items"),
    ]:
        code, out, err = run(capsys, "bench", "--dataset", tiny, "--models", "popularity", *argv)
        assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1 and words in err


# ---- seeds -----------------------------------------------------------------------------------
ALS = "als[epochs=2,factors=4]"


def _one_seed(spec: str, seed: int) -> str:
    return spec[:-1] + f",random_state={seed}]"


def test_seeds_average_each_users_metrics_over_the_fits_of_each_seed(splits):
    """Two seeds give, user by user, the mean of two one-seed runs with seeds 0 and 1 (both arms)."""
    groups = fib.held_out_groups(splits, 0.25, groups=2)
    both = fib.fold_in_row(ALS, splits, groups, seeds=2)
    first, second = (fib.fold_in_row(_one_seed(ALS, s), splits, groups) for s in (0, 1))
    assert not np.array_equal(first[fib.PER_USER], second[fib.PER_USER])  # the seed matters here
    np.testing.assert_allclose(both[fib.PER_USER], (first[fib.PER_USER] + second[fib.PER_USER]) / 2)
    for arm in ("fold_in_metrics", "in_training_metrics"):
        for m in fib.METRICS:
            assert both[arm][m] == pytest.approx((first[arm][m] + second[arm][m]) / 2)
    assert both["ndcg_ratio"] == pytest.approx(both["fold_in_metrics"]["ndcg@10"] / both["in_training_metrics"]["ndcg@10"])
    assert both["seeds"] == [0, 1] and first["seeds"] == [0] and second["seeds"] == [1]
    # One seed is the model's default seed (0): the same fits as naming random_state=0.
    np.testing.assert_array_equal(fib.fold_in_row(ALS, splits, groups)[fib.PER_USER], first[fib.PER_USER])


def test_seeds_fit_every_arm_once_per_seed_and_unseeded_models_once(tiny, fits, monkeypatch):
    states = []
    original = Recommender.fit

    def spy(self, train, *, val=None, callback=None):
        states.append((self.name, self.get_params().get("random_state")))
        return original(self, train, val=val, callback=callback)

    monkeypatch.setattr(Recommender, "fit", spy)
    report = fib.run_fold_in_bench(tiny, 0.25, models=["popularity", ALS], groups=2, seeds=3, peers=False)
    # popularity has no seed: one fit per group and one with everyone; ALS: each of those per seed.
    assert states == [("popularity", None)] * 3 + [("als", s) for s in (0, 1, 2)] * 3
    assert report["seeds"] == [0, 1, 2]
    assert [row["seeds"] for row in report["rows"]] == [None, [0, 1, 2]]
    text = fib.format_fold_in_report(report)
    assert "model seeds 0-2" in text and "averaged over the seeds" in text
    assert "model seeds" not in fib.format_fold_in_report(fib.run_fold_in_bench(tiny, 0.25, models=["popularity"],
                                                                                peers=False))


def test_the_peer_takes_the_same_seeds(splits):
    pytest.importorskip("implicit")
    groups = fib.held_out_groups(splits, 0.25, groups=2)
    both = fib.peer_row(splits, groups, seeds=2, als_spec=ALS)
    first, second = (fib.peer_row(splits, groups, als_spec=_one_seed(ALS, s)) for s in (0, 1))
    assert both["seeds"] == [0, 1] and first["params"]["random_state"] == 0 and second["params"]["random_state"] == 1
    np.testing.assert_allclose(both[fib.PER_USER], (first[fib.PER_USER] + second[fib.PER_USER]) / 2)
    assert both["in_training_metrics"]["ndcg@10"] == pytest.approx(
        (first["in_training_metrics"]["ndcg@10"] + second["in_training_metrics"]["ndcg@10"]) / 2)


@pytest.mark.parametrize("seeds", [0, -1, 101, 1.5, True, "2"])
def test_bad_seeds_are_one_line(tiny, fits, seeds):
    with pytest.raises(ParameterError, match="--seeds must be a whole number from 1 to 100"):
        fib.run_fold_in_bench(tiny, 0.25, models=["popularity"], seeds=seeds)
    assert fits == []


def test_a_spec_with_its_own_seed_and_seeds_fails_before_any_fit(tiny, fits):
    with pytest.raises(ParameterError, match="sets random_state; with --seeds"):
        fib.run_fold_in_bench(tiny, 0.25, models=["popularity", "als[random_state=3]"], seeds=2)
    assert fits == []


def test_cli_fold_in_bench_with_seeds(tiny, capsys):
    code, out, err = run(capsys, "bench", "--dataset", tiny, "--models", ALS, "--fold-in", "0.25", "--seeds", "2",
                         "--no-peers", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["seeds"] == [0, 1] and report["rows"][0]["seeds"] == [0, 1]
    code, out, err = run(capsys, "bench", "--dataset", tiny, "--models", ALS, "--fold-in", "0.25", "--seeds", "2",
                         "--no-peers")
    assert code == 0 and "model seeds 0-1" in out


# ---- cold items ------------------------------------------------------------------------------
def test_cold_items_are_the_held_out_users_items_no_one_else_trained(tmp_path):
    """Many items and few ratings each: some items are rated only inside a held-out group."""
    sparse = make_splits(load_dataset(write_tiny_movielens(tmp_path / "sparse", n_items=200)))
    groups = fib.held_out_groups(sparse, 0.25, groups=2)
    cold = fib.cold_items(sparse, groups)
    expected = dict.fromkeys(cold, 0)
    for users in groups:
        held = set(users.tolist())
        trained = {int(i) for u, i in zip(sparse.train.user_idx, sparse.train.item_idx) if u not in held}
        cold_users = set()
        for u, i in zip(sparse.train.user_idx, sparse.train.item_idx):
            if u in held:
                expected["history_rows"] += 1
                if int(i) not in trained:
                    expected["history_rows_cold"] += 1
                    cold_users.add(int(u))
        expected["users_with_cold_history"] += len(cold_users)
        for u, i in zip(sparse.test.user_idx, sparse.test.item_idx):
            if u in held:
                expected["test_items"] += 1
                expected["test_items_cold"] += int(int(i) not in trained)
        expected["users"] += len(users)
    assert cold == expected
    assert 0 < cold["history_rows_cold"] < cold["history_rows"] and cold["test_items_cold"] > 0
    assert fib.cold_items(sparse, groups[:1])["users"] == len(groups[0])


def test_the_report_counts_the_cold_items(tiny):
    report = fib.run_fold_in_bench(tiny, 0.25, models=["popularity"], peers=False)
    assert report["cold_items"]["history_rows"] > 0 and report["cold_items"]["users"] == 10
    assert "items no one else trained" in fib.format_fold_in_report(report)


# ---- the fold-in's own cost: the users folded into the fit that trained on them ---------------
def test_same_fit_arm_folds_the_users_into_the_fit_that_trained_them(splits, monkeypatch):
    groups = fib.held_out_groups(splits, 0.25, groups=2)
    held = set(np.concatenate(groups).tolist())
    trained_on, folded_into = {}, []
    fit, fold_in = Recommender.fit, Recommender.fold_in

    def spy_fit(self, train, *, val=None, callback=None):
        trained_on[id(self)] = held <= set(np.unique(train.user_idx).tolist())
        return fit(self, train, val=val, callback=callback)

    def spy_fold_in(self, items, ratings=None):
        folded_into.append(trained_on[id(self)])
        return fold_in(self, items, ratings)

    monkeypatch.setattr(Recommender, "fit", spy_fit)
    monkeypatch.setattr(Recommender, "fold_in", spy_fold_in)
    row = fib.fold_in_row(ALS, splits, groups, seeds=2)
    # Each held-out user is folded in once per seed into a fit without them, once into one with them.
    assert folded_into.count(False) == folded_into.count(True) == 2 * len(held)
    assert row["same_fit_ndcg_ratio"] == pytest.approx(
        row["same_fit_fold_in_metrics"]["ndcg@10"] / row["in_training_metrics"]["ndcg@10"])
    low, high = row["same_fit_ndcg_ratio_ci95"]
    assert low <= row["same_fit_ndcg_ratio"] <= high


def test_an_exact_fold_in_costs_nothing_in_the_same_fit(tiny, splits):
    """Popularity's fold-in is exact (its scores ignore the history): the same-fit arm is the
    in-training arm, user by user, so its ratio is 1 with no width."""
    report = fib.run_fold_in_bench(tiny, 0.25, models=["popularity"], groups=2, peers=False)
    (row,) = report["rows"]
    assert row["same_fit_fold_in_metrics"] == row["in_training_metrics"]
    assert row["same_fit_ndcg_ratio"] == 1.0 and row["same_fit_ndcg_ratio_ci95"] == [1.0, 1.0]
    assert "same-fit ratio" in fib.format_fold_in_report(report)
