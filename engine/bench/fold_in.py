"""The fold-in bench: how much a user loses by being folded in instead of trained on.

A fraction of the users (drawn with a seed among those with test items) is removed from
training entirely: none of their rows is in the training or validation split a model is fitted
on. Each model is fitted on the rest; the removed users are then folded in from their own
training interactions (`Recommender.fold_in`, ratings given) and ranked on their test items by
the one protocol (`engine.evaluation.evaluate`: every item but the user's training and
validation items is a candidate). The same users are evaluated the same way under a second fit
on the full training split, same parameters and seed: ``ratio = fold-in NDCG@10 / in-training
NDCG@10`` says what folding in costs them. That cost has two parts, told apart by folding the
same users into the second fit too (the one that trained on them): ``same_fit_ndcg_ratio`` is
the fold-in's own cost with the item side unchanged (1 for an exact fold-in), and what is left,
``ndcg_ratio / same_fit_ndcg_ratio``, is what the items lose by being trained without the users.

The two arms are two different fits, so each model's training randomness is in the ratio on top
of the test noise of a few hundred users. With ``seeds=n`` every fit (with and without the users,
the peer's too) is made with seeds 0 .. n-1 and each user's metrics are averaged over the seeds
before the ratio and its interval are taken.

The peer is implicit's ALS: fitted without the removed users, it folds them in with its own
``recommend(..., recalculate_user=True)`` (`engine.bench.peers.ImplicitALS.recalculated_scores`).

`fold_in_latency` times what a page pays per pick: one fold-in plus the top 10, one thread.

Nothing here prints: progress goes to `log`, and the CLI (``bench --fold-in``) shows the report.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable

import numpy as np

from engine import config
from engine.data import DataSplits
from engine.data.split import Split
from engine.errors import EngineError, ParameterError, choices_hint
from engine.evaluation import rank_targets, user_metrics
from engine.bench.peers import PEERS, peer_params
from engine.bench.runner import check_seeds, load_peers, parse_spec, seeded_specs
from engine.runs.experiment import build_model, check_protocol, get_dataset, make_splits
from engine.models.base import Recommender
from engine.models.registry import MODELS
from engine.text_tables import table

#: What the fold-in bench reports of each arm (the evaluation's keys, at k = 10).
METRICS = ("ndcg@10", "recall@10", "hr@10")
#: The latency probe: history length, how many histories, and the list length.
LATENCY_HISTORY = 20
LATENCY_HISTORIES = 100
LATENCY_K = 10
#: Resamples of the bootstrap interval of each NDCG ratio.
BOOTSTRAP_RESAMPLES = 2000
#: Row key of the pooled per-user fold-in NDCG@10 (for the our/peer interval; not reported).
PER_USER = "_fold_in_ndcg_per_user"
#: The peer, and the engine model it is matched with.
PEER, PEER_MATCH = "implicit-als", "als"

Log = Callable[[str], None]


# ---- the removed users ------------------------------------------------------------------------
def check_fraction(fraction) -> float:
    """`fraction` as a float strictly between 0 and 1, or a one-line error."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise ParameterError(f"--fold-in must be a fraction of the users between 0 and 1, got {fraction!r}") from None
    if isinstance(fraction, bool) or not math.isfinite(value) or not 0.0 < value < 1.0:
        raise ParameterError(f"--fold-in must be a fraction of the users strictly between 0 and 1, got {fraction!r}")
    return value


def held_out_groups(splits: DataSplits, fraction: float, *, groups: int = 1, random_state: int = 0) -> list[np.ndarray]:
    """`groups` disjoint groups of ``round(fraction * n)`` users each (sorted indices), drawn
    (seeded) among the n users with test items: consecutive slices of one permutation, so
    group 0 is the same whatever `groups` is. Each group has at least one user and leaves at
    least one such user in training; at most ``n // size`` groups fit."""
    fraction = check_fraction(fraction)
    candidates = splits.test.users()
    if len(candidates) < 2:
        raise EngineError(f"the fold-in bench needs at least 2 users with test items, this split has {len(candidates)}")
    size = min(len(candidates) - 1, max(1, round(fraction * len(candidates))))
    most = len(candidates) // size
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or not 1 <= groups <= most:
        raise ParameterError(f"--fold-in-groups must be a whole number from 1 to {most} (disjoint groups of "
                             f"{size} users among {len(candidates)}), got {groups!r}")
    order = np.random.default_rng(random_state).permutation(candidates)
    return [np.sort(order[g * size : (g + 1) * size]) for g in range(groups)]


def held_out_users(splits: DataSplits, fraction: float, *, random_state: int = 0) -> np.ndarray:
    """The first group of `held_out_groups`."""
    return held_out_groups(splits, fraction, random_state=random_state)[0]


def without_users(split: Split, users: np.ndarray) -> Split:
    """`split` with every row of `users` removed."""
    return split.subset(~np.isin(split.user_idx, users))


# ---- scoring the removed users for the shared evaluation ----------------------------------------
class _HeldOutView(Recommender):
    """What `engine.evaluation.evaluate` needs of a model, for the removed users only.

    Their score rows come from `rows` (a fold-in); ``seen_`` is the full training matrix, so
    their own training items are excluded from the candidates exactly as they are for a model
    that was trained on them. An evaluation device, not a model: it is never fitted or saved.
    """

    name = "fold-in view"
    param_space: dict = {}

    def __init__(self):
        pass

    @classmethod
    def over(cls, train: Split, users: np.ndarray, rows: Callable[[np.ndarray], np.ndarray]) -> "_HeldOutView":
        view = cls()
        view.n_users_, view.n_items_ = train.n_users, train.n_items
        view.seen_ = train.matrix(binary=True)
        view.users_ = users
        view.rows_ = rows
        return view

    def _fit(self, train, val, callback):
        raise EngineError("the fold-in view is not a model: it cannot be fitted")

    def _score(self, user_idx, item_idx):
        if not np.isin(user_idx, self.users_).all():
            raise EngineError("the fold-in view scores only the users that were held out of training")
        if item_idx is not None:
            return self._gather_pairs(user_idx, item_idx)
        return self.rows_(user_idx)


def _histories(train: Split, users: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each user's training items and ratings (the history folded in)."""
    mine = train.subset(np.isin(train.user_idx, users))
    order = np.argsort(mine.user_idx, kind="stable")
    u, i, r = mine.user_idx[order], mine.item_idx[order], mine.rating[order]
    starts = np.searchsorted(u, users)
    ends = np.searchsorted(u, users, side="right")
    return {int(user): (i[s:e].astype(np.int64), r[s:e].astype(np.float64)) for user, s, e in zip(users, starts, ends)}


def folded_rows(model: Recommender, histories: dict) -> Callable[[np.ndarray], np.ndarray]:
    """Score rows of users folded into `model` from `histories` (user -> (items, ratings))."""

    def rows(users: np.ndarray) -> np.ndarray:
        return np.stack([model.score_folded(model.fold_in(*histories[int(u)])) for u in users])

    return rows


def evaluate_users(model: Recommender, splits: DataSplits, users: np.ndarray, *, protocol: str) -> dict[str, np.ndarray]:
    """Each of `users`' (sorted) test metrics, by the one protocol (their training and validation
    items excluded): ``{"ndcg@10": (n,), "recall@10": (n,), "hr@10": (n,)}``, whose means are
    what `engine.evaluation.evaluate` reports for them."""
    result = rank_targets(model, splits.test, exclude=[splits.val], protocol=protocol, k=10, users=users)
    per_user = user_metrics(result)
    return {"ndcg@10": per_user["ndcg"], "recall@10": per_user["recall"], "hr@10": per_user["hr"]}


def evaluate_folded(
    rows: Callable[[np.ndarray], np.ndarray], splits: DataSplits, users: np.ndarray, *, protocol: str
) -> dict[str, np.ndarray]:
    """`evaluate_users` for users whose score rows come from a fold-in."""
    return evaluate_users(_HeldOutView.over(splits.train, users, rows), splits, users, protocol=protocol)


def ratio_interval(folded: np.ndarray, trained: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                   random_state: int = 0) -> list[float] | None:
    """95% bootstrap interval of ``mean(folded) / mean(trained)`` over the same users, resampled
    in pairs. With one test item per user most NDCGs are 0, and a hit more or less moves the
    ratio of ~100 users by several percent: the interval says how far to trust it."""
    rng = np.random.default_rng(random_state)
    picks = rng.integers(0, len(folded), size=(resamples, len(folded)))
    num, den = folded[picks].mean(1), trained[picks].mean(1)
    ratios = num[den > 0] / den[den > 0]
    if len(ratios) < resamples // 2:
        return None
    return [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]


# ---- latency ---------------------------------------------------------------------------------
def latency_histories(train: Split, *, n: int = LATENCY_HISTORIES, length: int = LATENCY_HISTORY,
                      random_state: int = 0) -> list[np.ndarray]:
    """`n` histories of `length` items: each a random subset of a random user's training items
    (users with at least `length` of them; a user may be drawn twice, with another subset)."""
    counts = np.bincount(train.user_idx, minlength=train.n_users)
    eligible = np.flatnonzero(counts >= length)
    if len(eligible) == 0:
        raise EngineError(f"no user has {length} training items to time a {length}-item fold-in with")
    rng = np.random.default_rng(random_state)
    seen = train.matrix(binary=True)
    return [rng.choice(seen[int(u)].indices, size=length, replace=False).astype(np.int64)
            for u in rng.choice(eligible, size=n, replace=True)]


def fold_in_latency(model: Recommender, histories: list[np.ndarray], *, k: int = LATENCY_K) -> dict:
    """Milliseconds for one fold-in plus the top `k`, one thread, the model already loaded.

    Returns ``{"median_ms", "p90_ms", "histories"}`` over `histories` (one untimed call first,
    so one-off set-up such as a cached Gram matrix is not charged to the first user).
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    times = []
    try:
        with threadpool_limits(1):
            model.recommend_folded(model.fold_in(histories[0]), k=k)
            for history in histories:
                start = time.perf_counter()
                model.recommend_folded(model.fold_in(history), k=k)
                times.append((time.perf_counter() - start) * 1000.0)
    finally:
        torch.set_num_threads(before)
    return {"median_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90)), "histories": len(times)}


# ---- seeds ---------------------------------------------------------------------------------
def _seed_specs(name: str, seeds: int) -> list[str]:
    """`name` once per seed 0 .. seeds-1 (``random_state`` set), or once for a model without a
    ``random_state`` or with one seed (its default seed, 0 for every registered model)."""
    return [spec for spec, _ in seeded_specs(name, seeds, {})]


def _seed_mean(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each user's metrics averaged over the fits of several seeds (same users, same order)."""
    return {m: np.mean([p[m] for p in parts], axis=0) for m in METRICS}


def _groups_over_seeds(per_seed: list[list[dict[str, np.ndarray]]]) -> list[dict[str, np.ndarray]]:
    """``per_seed[seed][group]`` -> one entry per group, its users' metrics averaged over the seeds."""
    return [_seed_mean(list(groups)) for groups in zip(*per_seed)]


def _seeds_of(fits: list[Recommender]) -> list[int] | None:
    """The ``random_state`` of each fit, or None for a model that has none."""
    states = [f.get_params().get("random_state") for f in fits]
    return None if any(s is None for s in states) else [int(s) for s in states]


# ---- cold items ------------------------------------------------------------------------------
def cold_items(splits: DataSplits, groups: list[np.ndarray]) -> dict:
    """How many of the held-out users' items no one else trained: items whose only training rows
    are the held-out group's, so a model fitted without the group has no learned factors for
    them (they stay at their initial values). The in-training fit has them for a history item;
    a cold test item is trained there only if another held-out user has it in their history.
    A structural cost of folding in, the same for every model: ``{"history_rows", "history_rows_cold",
    "users_with_cold_history", "test_items", "test_items_cold", "users"}``, summed over the
    groups (each group against its own reduced training split)."""
    totals = dict.fromkeys(("history_rows", "history_rows_cold", "users_with_cold_history", "test_items",
                            "test_items_cold", "users"), 0)
    for users in groups:
        trained = np.zeros(splits.train.n_items, dtype=bool)
        trained[without_users(splits.train, users).item_idx] = True
        history = splits.train.subset(np.isin(splits.train.user_idx, users))
        test = splits.test.subset(np.isin(splits.test.user_idx, users))
        cold_rows = ~trained[history.item_idx]
        totals["history_rows"] += len(history)
        totals["history_rows_cold"] += int(cold_rows.sum())
        totals["users_with_cold_history"] += len(np.unique(history.user_idx[cold_rows]))
        totals["test_items"] += len(test)
        totals["test_items_cold"] += int((~trained[test.item_idx]).sum())
        totals["users"] += len(users)
    return totals


# ---- one row ---------------------------------------------------------------------------------
def _ratio(a, b) -> float | None:
    return None if a is None or b is None or b == 0 else float(a) / float(b)


def _pooled(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {m: np.concatenate([p[m] for p in parts]) for m in METRICS}


def _arms(folded: list[dict], trained: list[dict]) -> dict:
    """Both arms pooled over the groups: their means, the ratios, and the NDCG ratio's interval."""
    f, t = _pooled(folded), _pooled(trained)
    fm, tm = ({m: float(a[m].mean()) for m in METRICS} for a in (f, t))
    return {"fold_in_metrics": fm, "in_training_metrics": tm,
            "ndcg_ratio": _ratio(fm["ndcg@10"], tm["ndcg@10"]), "recall_ratio": _ratio(fm["recall@10"], tm["recall@10"]),
            "ndcg_ratio_ci95": ratio_interval(f["ndcg@10"], t["ndcg@10"]), PER_USER: f["ndcg@10"]}


def _same_fit(same: dict[str, np.ndarray], trained: dict[str, np.ndarray]) -> dict:
    """The users folded into the fit that trained on them, against that fit's own scores of them:
    the fold-in's own cost, the item side unchanged. The full ratio is this one times what the
    items lose by being trained without the users (``ndcg_ratio / same_fit_ndcg_ratio``)."""
    mean = {m: float(same[m].mean()) for m in METRICS}
    return {"same_fit_fold_in_metrics": mean, "same_fit_ndcg_ratio": _ratio(mean["ndcg@10"], trained["ndcg@10"].mean()),
            "same_fit_ndcg_ratio_ci95": ratio_interval(same["ndcg@10"], trained["ndcg@10"])}


def _reduced(splits: DataSplits, users: np.ndarray) -> DataSplits:
    return DataSplits(*(without_users(s, users) for s in splits))


def fold_in_row(name: str, splits: DataSplits, groups: list[np.ndarray], *, seeds: int = 1, protocol: str = "full",
                latency_histories: list[np.ndarray] | None = None, log: Log | None = None) -> dict:
    """One engine model: per group and seed, fitted without the group's users, who are then
    folded in; and once per seed fitted on everyone (in training), into which they are also
    folded (``same_fit_*``). Each user's metrics are averaged over the seeds. With
    `latency_histories`, also the `fold_in_latency` of the first model fitted without the first
    group."""

    log = log or (lambda line: None)
    base, params = parse_spec(name)
    row = {"model": name, "source": "engine", "fold_in": MODELS[base].has_fold_in}
    if not row["fold_in"]:
        row["note"] = f"{base} has no fold_in ability: not folded in"
        return row
    specs = _seed_specs(name, seeds)
    folded, fit_without, fold_seconds = [], [], 0.0
    for g, users in enumerate(groups):
        reduced, histories, per_seed = _reduced(splits, users), _histories(splits.train, users), []
        for s, spec in enumerate(specs):
            folding = build_model(*parse_spec(spec)).fit(reduced.train, val=reduced.val)
            fit_without.append(folding.fit_seconds_)
            start = time.perf_counter()
            per_seed.append(evaluate_folded(folded_rows(folding, histories), splits, users, protocol=protocol))
            fold_seconds += time.perf_counter() - start
            if g == 0 and s == 0 and latency_histories is not None:
                row["latency"] = fold_in_latency(folding, latency_histories)
        folded.append(_seed_mean(per_seed))
        log(f"fold-in bench: {name} group {g + 1}/{len(groups)} folded in ({len(specs)} fit(s)): "
            f"ndcg@10 {folded[-1]['ndcg@10'].mean():.4f}")
    row["params"] = build_model(*parse_spec(specs[0])).get_params()
    row["fold_in_seconds_per_user"] = fold_seconds / (len(specs) * sum(len(u) for u in groups))
    log(f"fold-in bench: {name} with every user in training ...")
    in_training, same_fit, fit_with = [], [], []
    for spec in specs:
        trained = build_model(*parse_spec(spec)).fit(splits.train, val=splits.val)
        fit_with.append(trained)
        in_training.append([evaluate_users(trained, splits, users, protocol=protocol) for users in groups])
        same_fit.append([evaluate_folded(folded_rows(trained, _histories(splits.train, users)), splits, users,
                                         protocol=protocol) for users in groups])
    row["seeds"] = _seeds_of(fit_with)
    in_training = _groups_over_seeds(in_training)
    row.update(_arms(folded, in_training))
    row.update(_same_fit(_pooled(_groups_over_seeds(same_fit)),
                         _pooled(in_training)))
    row["fit_seconds"] = {"without": statistics.fmean(fit_without),
                          "with": statistics.fmean(f.fit_seconds_ for f in fit_with)}
    return row


def peer_row(splits: DataSplits, groups: list[np.ndarray], *, seeds: int = 1, protocol: str = "full",
             als_spec: str = PEER_MATCH) -> dict:
    """implicit's ALS (factors, iterations and seed of our `als_spec`, `engine.bench.peers.peer_params`):
    per group and seed, fitted without the group's users, whom it folds in with
    ``recalculate_user=True``; and once per seed fitted on everyone. Same seeds as our ALS."""

    cls, _ = PEERS[PEER]
    seeded = [peer_params(PEER, build_model(*parse_spec(spec)).get_params()) for spec in _seed_specs(als_spec, seeds)]
    items = splits.train.matrix(binary=True)
    folded = []
    for users in groups:
        reduced, per_seed = _reduced(splits, users), []
        for params in seeded:
            folding = cls.from_params(**params).fit(reduced.train, val=reduced.val)

            def rows(batch: np.ndarray, folding=folding) -> np.ndarray:
                return folding.recalculated_scores(items[batch])

            per_seed.append(evaluate_folded(rows, splits, users, protocol=protocol))
        folded.append(_seed_mean(per_seed))
    in_training = []
    for params in seeded:
        trained = cls.from_params(**params).fit(splits.train, val=splits.val)
        in_training.append([evaluate_users(trained, splits, users, protocol=protocol) for users in groups])
    in_training = _groups_over_seeds(in_training)
    return {"model": PEER, "source": "peer", "fold_in": True, "params": seeded[0],
            "seeds": [p.get("random_state") for p in seeded], **_arms(folded, in_training)}


# ---- the whole bench ---------------------------------------------------------------------------
def run_fold_in_bench(
    dataset_spec_or_dataset,
    fraction,
    *,
    models: list[str] | None = None,
    protocol: str = "full",
    peers: bool = True,
    latency: bool = False,
    groups: int = 1,
    seeds: int = 1,
    random_state: int = 0,
    data_dir=None,
    log: Log | None = None,
) -> dict:
    """The fold-in bench (see the module docstring): ``{"dataset", "fraction", "groups", "seeds",
    "random_state", "held_out_users", "split", "cold_items", "rows", "comparisons", "notes"}``.

    Parameters
    ----------
    fraction : share of the users with test items removed from training, in (0, 1).
    models : engine model names (``NAME[key=value,...]`` allowed; default: every registered model).
    peers : also fold the users into implicit's ALS (when ``als`` is among the models).
    latency : also time one fold-in plus top-10 of a 20-item history per model (`fold_in_latency`).
    groups : disjoint groups of `fraction` of the users, each held out of its own fit in turn
        (`held_out_groups`); the metrics pool every group's users. One group of 10% is ~100
        users with one test item each, too few for a ratio within a few percent; 10 groups of
        10% hold every test user out once, for 10 fits instead of 1.
    seeds : fit every model that has a ``random_state`` (and the peer) with seeds 0 .. seeds-1,
        with and without the users, and average each user's metrics over the seeds before the
        ratios and intervals: the ratio compares two fits, so one seed's training noise is in it.
        One seed is each model's default seed (0).
    random_state : seed of the draw of the removed users (not of the models: see `seeds`).
    """
    data_dir = config.data_dir(data_dir)

    log = log or (lambda line: None)
    check_protocol(protocol)
    fraction = check_fraction(fraction)
    seeds = check_seeds(seeds)
    names = list(models) if models else list(MODELS)
    for name in names:
        base, params = parse_spec(name)
        if base not in MODELS:
            raise ParameterError(f"unknown model {base!r} for the fold-in bench{choices_hint(base, MODELS, limit=30)}")
        build_model(base, params)  # bad parameters fail before any fit
        _seed_specs(name, seeds)  # and a spec that sets random_state along with --seeds
    dataset = get_dataset(dataset_spec_or_dataset, data_dir=data_dir)
    splits = make_splits(dataset)
    held = held_out_groups(splits, fraction, groups=groups, random_state=random_state)
    histories = latency_histories(splits.train) if latency else None  # before any fit: it may refuse
    n_held = sum(len(u) for u in held)
    log(f"fold-in bench: {len(held)} group(s) of {len(held[0])} of {len(splits.test.users())} test users, "
        "each held out of its own fit")
    rows, notes = [], []
    for name in names:
        log(f"fold-in bench: {name} on {dataset.name} ...")
        rows.append(fold_in_row(name, splits, held, seeds=seeds, protocol=protocol, latency_histories=histories, log=log))
        if "note" in rows[-1]:
            log(f"fold-in bench: {rows[-1]['note']}")
    als_spec = next((n for n in names if parse_spec(n)[0] == PEER_MATCH), None)
    if peers and als_spec is not None:
        available, _, problem = load_peers()
        if problem or PEER not in available:
            notes.append(problem or f"{PEER} is not available")
        else:
            log(f"fold-in bench: {PEER} (recalculate_user) ...")
            try:
                rows.append(peer_row(splits, held, seeds=seeds, protocol=protocol, als_spec=als_spec))
            except (ImportError, EngineError) as exc:
                notes.append(f"{PEER}: {exc}")
    return {
        "dataset": dataset.spec,
        "fraction": fraction,
        "groups": len(held),
        "seeds": list(range(seeds)),
        "random_state": random_state,
        "protocol": protocol,
        "held_out_users": n_held,
        "split": {"train": len(splits.train), "train_without_first_group": len(_reduced(splits, held[0]).train),
                  "users": dataset.n_users, "items": dataset.n_items, "test_users": len(splits.test.users())},
        "cold_items": cold_items(splits, held),
        "comparisons": peer_comparisons(rows),
        "rows": [{k: v for k, v in row.items() if k != PER_USER} for row in rows],
        "notes": notes,
    }


def peer_comparisons(rows: list[dict]) -> list[dict]:
    """Our ALS's fold-in NDCG@10 over implicit's ``recalculate_user`` one, on the same users (the
    first ALS row: the one the peer's parameters were matched with), with the ratio's paired
    bootstrap interval when the rows carry their per-user NDCGs."""

    ours = next((r for r in rows if r["source"] == "engine" and parse_spec(r["model"])[0] == PEER_MATCH
                 and r.get("fold_in_metrics")), None)
    peer = next((r for r in rows if r["source"] == "peer" and r["model"] == PEER), None)
    if ours is None or peer is None:
        return []
    a, b = ours["fold_in_metrics"]["ndcg@10"], peer["fold_in_metrics"]["ndcg@10"]
    interval = ratio_interval(ours[PER_USER], peer[PER_USER]) if PER_USER in ours and PER_USER in peer else None
    return [{"engine": ours["model"], "peer": PEER, "engine_ndcg@10": a, "peer_ndcg@10": b, "ndcg_ratio": _ratio(a, b),
             "ndcg_ratio_ci95": interval}]


def format_fold_in_report(report: dict) -> str:
    """The fold-in bench as an aligned table, the our/peer comparison, the cold items, then the notes."""

    split = report["split"]
    seeds = report.get("seeds", [0])
    lines = [
        f"{report['dataset']}: {report['held_out_users']} of {split['test_users']} test users held out of training "
        f"({report['groups']} group(s) of fraction {report['fraction']}, each held out of its own fit; seed "
        f"{report['random_state']}); {report['protocol']} ranking of their test items",
    ]
    if len(seeds) > 1:
        lines.append(f"every fit with model seeds {_seed_range(seeds)} (with and without the users, the peer's too); "
                     "each user's metrics averaged over the seeds before the ratios and intervals")
    table_rows = []
    for r in report["rows"]:
        if not r.get("fold_in"):
            table_rows.append({"model": r["model"], "source": r["source"], "note": r.get("note", "")})
            continue
        f, t = r["fold_in_metrics"], r["in_training_metrics"]
        latency = r.get("latency")
        table_rows.append({
            "model": r["model"], "source": r["source"], "seeds": _seed_range(r.get("seeds")),
            "ndcg@10 folded": f["ndcg@10"], "ndcg@10 trained": t["ndcg@10"], "ndcg ratio": r["ndcg_ratio"],
            "95% interval": "-" if not r.get("ndcg_ratio_ci95") else "{:.2f}-{:.2f}".format(*r["ndcg_ratio_ci95"]),
            "same-fit ratio": r.get("same_fit_ndcg_ratio"),
            "recall@10 folded": f["recall@10"], "recall@10 trained": t["recall@10"], "recall ratio": r["recall_ratio"],
            "latency ms": None if latency is None else latency["median_ms"], "note": r.get("note", ""),
        })
    same_fit = any("same_fit_ndcg_ratio" in r for r in report["rows"])
    columns = ["model", "source", *(["seeds"] if len(seeds) > 1 else []), "ndcg@10 folded", "ndcg@10 trained",
               "ndcg ratio", "95% interval", *(["same-fit ratio"] if same_fit else []),
               "recall@10 folded", "recall@10 trained", "recall ratio"]
    if any(r.get("latency") for r in report["rows"]):
        columns.append("latency ms")
    if any(r.get("note") for r in table_rows):
        columns.append("note")
    lines.append(table(table_rows, columns))
    for c in report["comparisons"]:
        interval = "" if not c.get("ndcg_ratio_ci95") else " (95% interval {:.2f}-{:.2f})".format(*c["ndcg_ratio_ci95"])
        lines.append(f"{c['engine']} fold-in / {c['peer']} recalculate_user, ndcg@10: "
                     f"{c['engine_ndcg@10']:.4f} / {c['peer_ndcg@10']:.4f} = {c['ndcg_ratio']:.2f}{interval}")
    if same_fit:
        lines.append("same-fit ratio: the users folded into the fit that trained on them, over that fit's own NDCG@10 "
                     "(the fold-in's own cost; the rest of the ratio is the items trained without them)")
    cold = report.get("cold_items")
    if cold:
        lines.append(f"items no one else trained (no learned factors once a group is held out): "
                     f"{cold['history_rows_cold']} of {cold['history_rows']} history rows "
                     f"({cold['users_with_cold_history']} users), {cold['test_items_cold']} of {cold['test_items']} test items")
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def _seed_range(seeds: list[int] | None) -> str:
    """``[0, 1, 2]`` -> ``"0-2"``; a model without a seed (fitted once) -> ``"-"``."""
    if not seeds:
        return "-"
    return str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
