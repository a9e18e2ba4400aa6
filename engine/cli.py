"""``python -m engine``: datasets, models, train, evaluate, recommend, similar, explain,
faithfulness, data, bench, demo.

Human output is compact aligned tables on stdout; ``--json`` prints exactly one JSON object on
stdout. Progress (epochs, downloads, bench steps) goes to stderr. Bad input of any kind ends with
one line ``error: <message>`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from engine.config import PROJECT_DATA_DIR, data_dir
from engine.errors import EngineError, ParameterError
from engine.text_tables import format_value, table

# Each command imports the engine modules it runs inside its function, on purpose: they bring
# torch and every model (about 5 s), which `--help`, `datasets` and a usage error do without
# (0.5 s). The CLI is the top layer, so these are never cycle dodges (.importlinter).

EXIT_USAGE = 2


# ---- output helpers ------------------------------------------------------------------------
def jsonable(value):
    """Plain JSON types: numpy scalars unwrapped, NaN/inf as null, paths as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(obj, out=None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _progress_printer(prefix: str = ""):
    """A training callback that writes one line per epoch to stderr."""

    def callback(event: dict) -> None:
        if "epoch" not in event:
            return
        phase = "rating split: " if event.get("phase") == "rating" else ""
        parts = [f"{prefix}{phase}epoch {event['epoch']}/{event.get('epochs', '?')}"]
        if event.get("loss") is not None:
            parts.append(f"loss {event['loss']:.4f}")
        if event.get("val_ndcg@10") is not None:
            parts.append(f"val ndcg@10 {event['val_ndcg@10']:.4f}")
        if event.get("seconds") is not None:
            parts.append(f"{event['seconds']:.1f}s")
        _err("  ".join(parts))

    return callback


# ---- commands ------------------------------------------------------------------------------
def cmd_datasets(args) -> int:
    from engine.data import loaders

    describe = getattr(loaders, "describe_datasets", None)
    rows = describe() if describe else [{"name": name} for name in loaders.DATASETS]
    if args.json:
        print_json({"datasets": rows, "data_dir": args.data_dir})
        return 0
    columns = [c for c in ("usage", "description") if any(c in r for r in rows)] or ["name"]
    print(table(rows, columns))
    print(f"\na missing PATH means {Path(args.data_dir) / 'NAME'}")
    print("any spec may end with +images:DIR, a folder of item pictures named by item id (e.g. movielens-dslabs+images:data/posters)")
    return 0


def cmd_models(args) -> int:
    from engine.models import describe_models

    models = describe_models()
    if args.json:
        print_json({"models": models})
        return 0
    rows = []
    for m in models:
        rows.append({"model": m["name"], "parameter": "", "default": "", "range": "", "about": m["description"]})
        for name, p in m["params"].items():
            rows.append(
                {"model": "", "parameter": name, "default": _default_text(p["default"]), "range": _range_text(p),
                 "about": p.get("help", "")}
            )
    print(table(rows, ["model", "parameter", "default", "range", "about"]))
    return 0


def _default_text(value) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def _range_text(p: dict) -> str:
    if p.get("kind") == "choice":
        return "|".join(map(str, p.get("choices", [])))
    if p.get("kind") in ("int", "float"):
        text = (lambda v: str(int(v))) if p["kind"] == "int" else (lambda v: format(v, "g"))
        low, high = (text(v) if v is not None else "" for v in (p.get("low"), p.get("high")))
        return f"{p['kind']} [{low}, {high}]" + (" log" if p.get("log") else "")
    return p.get("kind", "")


def parse_sets(pairs) -> dict:
    """``["a=1", "b=x"]`` (possibly nested lists from repeated --set) -> ``{"a": "1", "b": "x"}``."""
    out = {}
    for item in [x for group in (pairs or []) for x in (group if isinstance(group, list) else [group])]:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def cmd_train(args) -> int:
    from engine.runs.experiment import train_and_evaluate

    result = train_and_evaluate(
        args.dataset,
        args.model,
        parse_sets(args.set),
        device=args.device,
        out=args.out,
        protocol=args.protocol,
        callback=_progress_printer(),
        data_dir=args.data_dir,
    )
    if args.json:
        print_json(result)
        return 0
    print(f"{result['model']} on {result['dataset']}: fit {result['fit_seconds']:.2f} s")
    print(table([{"metric": k, "value": v} for k, v in result["metrics"].items()], ["metric", "value"]))
    print(f"checkpoint  {result['checkpoint']}")
    print(f"run id      {result['run_id']}")
    return 0


def cmd_runs_clean(args) -> int:
    from engine.runs.store import STALE_SECONDS, clean_checkpoints

    min_age = STALE_SECONDS if args.min_age is None else args.min_age
    if not min_age >= 0:  # also refuses nan
        raise ParameterError(f"--min-age must be a number of seconds >= 0, got {args.min_age}")
    found = clean_checkpoints(args.data_dir, min_age=min_age, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in found:
        print(f"{verb} {path}")
    print(f"{verb} {len(found)} leftover checkpoint folder(s) in {Path(args.data_dir) / 'checkpoints'}")
    return 0


def cmd_evaluate(args) -> int:
    from engine.explore.query import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, protocol=args.protocol, data_dir=args.data_dir)
    if args.json:
        print_json(result)
        return 0
    print(f"{result['model']} on {result['dataset']} ({result['protocol']} ranking)")
    recorded = result["recorded"] if result["protocol"] == _recorded_protocol(args.checkpoint) else {}
    # Chance beside each figure: a random order's score on the same split, the scale to read it on.
    rows = [{"metric": k, "value": v, "at training": recorded.get(k), "random order": result["chance"].get(k)}
            for k, v in result["metrics"].items()]  # fmt: skip
    print(table(rows, ["metric", "value", "at training", "random order"]))
    return 0


def _recorded_protocol(directory) -> str | None:
    from engine.models.checkpoint import read_model_json

    return (read_model_json(Path(directory)).get("split") or {}).get("protocol")


def _item_record(dataset, idx: int) -> dict:
    row = dataset.items.iloc[int(idx)]
    year = row.get("year")
    return {
        "item_id": str(dataset.item_ids[idx]),
        "title": str(row["title"]),
        "genres": str(row.get("genres", "") or ""),
        "year": None if year is None or (isinstance(year, float) and math.isnan(year)) else int(year),
    }


def cmd_recommend(args) -> int:
    import pandas as pd

    from engine.explore.views import user_history
    from engine.explore.query import checkpoint_splits, held_out, open_checkpoint, recommend_for

    if args.ratings is not None and args.items is None:
        raise ParameterError("--ratings go with --items: one rating per picked item")
    model, info, dataset = open_checkpoint(args.checkpoint, data_dir=args.data_dir)
    if args.items is not None:
        return _recommend_for_picks(args, model, info, dataset)
    user = dataset.user_index(args.user)
    k = _check_k(args.k, dataset.n_items)
    if args.history < 0:
        raise ParameterError(f"--history must be >= 0, got {args.history}")
    exclude = args.exclude
    splits = checkpoint_splits(dataset, info)
    # The same history and the same list as the dashboard's User explorer (engine.explore.query).
    mine = user_history(dataset, user, splits)
    history = [
        {**_item_record(dataset, i), "rating": row.rating, "split": row.split,
         "date": None if pd.isna(row.date) else row.date.isoformat()}
        for i, row in zip(mine.index, mine.itertuples())
    ]  # fmt: skip
    marks = {int(i): name for name, items in held_out(splits, user).items() for i in items}
    idx, scores = recommend_for(model, dataset, user, k, exclude=exclude)
    recs = [
        {"rank": rank, **_item_record(dataset, i), "score": float(s), "held_out": marks.get(int(i), "")}
        for rank, (i, s) in enumerate(zip(idx, scores), 1)
    ]
    result = {
        "user": str(dataset.user_ids[user]),
        "model": info["model"],
        "dataset": info["dataset"],
        "exclude": exclude,
        "history": history,
        "recommendations": recs,
    }
    if args.json:
        print_json(result)
        return 0
    shown = args.history
    print(f"user {result['user']}: {len(history)} interactions in {info['dataset']}; "
          f"latest {min(shown, len(history))}:")
    print(table(history[:shown], ["item_id", "title", "year", "rating", "split"], digits=1))
    if exclude == "train":
        note = "items seen in training left out; held_out marks a held-out validation or test item"
    else:
        note = "everything the user rated left out"
    print(f"\ntop {len(recs)} by {info['model']} ({note}):")
    print(table(recs, ["rank", "item_id", "title", "year", "score", "held_out"]))
    return 0


def _recommend_for_picks(args, model, info, dataset) -> int:
    """``recommend --items``: a new user folded in from picked items (what the dashboard's Be
    the user page shows), each recommendation with the pick it leans on most."""
    from engine.explore.be_user import recommend_for_picks, resolve_picks

    picks = resolve_picks(dataset, args.items, args.ratings)
    k = _check_k(args.k, dataset.n_items)
    frame = recommend_for_picks(model, dataset, picks, k)
    picked = [_item_record(dataset, i) for i in picks.items]
    if picks.ratings is not None:
        for record, rating in zip(picked, picks.ratings):
            record["rating"] = float(rating)
    recs = [
        {"rank": int(row.rank), **_item_record(dataset, i), "score": float(row.score),
         "because": {"item_id": row.because_id, "title": row.because} if row.because_id else None}
        for i, row in zip(frame.index, frame.itertuples())
    ]  # fmt: skip
    result = {"picks": picked, "model": info["model"], "dataset": info["dataset"], "recommendations": recs}
    if args.json:
        print_json(result)
        return 0
    print(f"{len(picked)} picked items in {info['dataset']}:")
    print(table(picked, ["item_id", "title", "year", *(["rating"] if picks.ratings is not None else [])], digits=1))
    print(f"\ntop {len(recs)} by {info['model']} for these picks:")
    rows = [{**r, "because you picked": (r["because"] or {}).get("title", "")} for r in recs]
    print(table(rows, ["rank", "item_id", "title", "year", "score", "because you picked"]))
    return 0


def _check_k(k: int, n_items: int) -> int:
    """`k` clamped to the catalogue: -k 1000000000000 asked for a 7 TiB result array."""
    if k < 1:
        raise ParameterError(f"-k must be >= 1, got {k}")
    return min(k, n_items)


def cmd_similar(args) -> int:
    from engine.explore.query import open_checkpoint, similar_to

    model, info, dataset = open_checkpoint(args.checkpoint, data_dir=args.data_dir)
    item = dataset.find_item(args.item)
    k = _check_k(args.k, dataset.n_items)
    idx, scores = similar_to(model, item, k)
    similar = [{**_item_record(dataset, i), "score": float(s)} for i, s in zip(idx, scores)]
    result = {"item": _item_record(dataset, item), "model": info["model"], "dataset": info["dataset"],
              "similar": similar}
    if args.json:
        print_json(result)
        return 0
    it = result["item"]
    print(f"items most similar to {it['title']} (id {it['item_id']}) by {info['model']}:")
    print(table([{"rank": r, **s} for r, s in enumerate(similar, 1)], ["rank", "item_id", "title", "year", "score"]))
    return 0


def cmd_download(args) -> int:
    from tqdm import tqdm

    from engine.data.download import download

    bar = None

    def progress(done: int, total: int | None = None) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=args.name, file=sys.stderr)
        bar.update(done - bar.n)

    try:
        path = download(args.name, to=args.to or Path(args.data_dir) / args.name, progress=progress, force=args.force)
    finally:
        if bar is not None:
            bar.close()
    print(f"{args.name} is in {path}; load it with --dataset {args.name}:{path}")
    return 0


def cmd_bench(args) -> int:
    from engine.bench.runner import format_report, run_bench, split_specs

    models = split_specs(args.models) if args.models is not None else None
    if args.fold_in is not None or args.fold_in_latency or args.fold_in_groups != 1:
        return _bench_fold_in(args, models)
    report = run_bench(
        args.dataset,
        models=models,
        protocol=args.protocol,
        peers=not args.no_peers,
        memory=args.memory,
        seeds=args.seeds,
        background_load=args.background_load,
        data_dir=args.data_dir,
        log=_err,
    )
    if args.json:
        print_json(report)
    else:
        print(format_report(report))
    return 0


def _bench_fold_in(args, models) -> int:
    """``bench --fold-in FRACTION``: the fold-in bench (`engine.bench.fold_in`)."""
    from engine.bench.fold_in import format_fold_in_report, run_fold_in_bench

    if args.fold_in is None:
        raise ParameterError("--fold-in-latency and --fold-in-groups go with --fold-in FRACTION")
    for given, flag in ((args.memory, "--memory"), (args.background_load, "--background-load")):
        if given:
            raise ParameterError(f"{flag} is not available with --fold-in")
    report = run_fold_in_bench(args.dataset, args.fold_in, models=models, protocol=args.protocol, peers=not args.no_peers,
                               latency=args.fold_in_latency, groups=args.fold_in_groups, seeds=args.seeds,
                               data_dir=args.data_dir, log=_err)
    if args.json:
        print_json(report)
    else:
        print(format_fold_in_report(report))
    return 0


def cmd_bench_one(args) -> int:
    """Internal: one bench row in this (fresh) process, with its peak RSS; used by bench --memory."""
    from engine.bench.runner import bench_one_process

    print_json(bench_one_process(args.dataset, args.model, protocol=args.protocol, data_dir=args.data_dir))
    return 0


def cmd_demo(args) -> int:
    """Train what the demo lacks in the data folder (quick runs), with a line per run."""
    from engine.runs.demo import run_demo

    start = time.perf_counter()
    # Image features of the ACF run are cached under RECSYS_DATA_DIR: the folder asked for here.
    previous = os.environ.get("RECSYS_DATA_DIR")
    os.environ["RECSYS_DATA_DIR"] = str(args.data_dir)
    try:
        result = run_demo(args.dataset, data_dir=args.data_dir, log=_err,
                          callback=lambda run: _progress_printer(f"  {run.model}: "))  # fmt: skip
    finally:
        if previous is None:
            os.environ.pop("RECSYS_DATA_DIR", None)
        else:
            os.environ["RECSYS_DATA_DIR"] = previous
    result["seconds"] = time.perf_counter() - start
    if args.json:
        print_json(result)
        return 0
    if result["trained"]:
        print(table(result["trained"], ["model", "dataset", "run_id", "ndcg@10", "seconds"]))
        print(f"\ntrained {len(result['trained'])} quick runs in {result['seconds']:.0f} s", end="")
        print(f"; {len(result['skipped'])} were already there" if result["skipped"] else "")
    else:
        print(f"nothing to train: the demo's {len(result['skipped'])} quick runs are already in {args.data_dir}")
    print(f"open the dashboard: {dashboard_command(args.data_dir)}")
    return 0


def dashboard_command(folder) -> str:
    """The command that opens the dashboard on `folder`: the README's `python -m dashboard`,
    with the folder named only where it is not the project's default."""
    if Path(folder).resolve() == PROJECT_DATA_DIR.resolve():
        return "python -m dashboard"
    return f"RECSYS_DATA_DIR={shlex.quote(str(folder))} python -m dashboard"


# ---- explanations --------------------------------------------------------------------------
def _explain_setup(args):
    """The checkpoint's model, dataset and leave-last-out splits (the ones it was trained on)."""
    from engine.explore.query import checkpoint_splits, open_checkpoint

    model, info, dataset = open_checkpoint(args.checkpoint, data_dir=args.data_dir)
    return model, info, dataset, checkpoint_splits(dataset, info)


def cmd_explain(args) -> int:
    model, info, dataset, splits = _explain_setup(args)
    user, item = dataset.user_index(args.user), dataset.item_index(args.item)
    if args.method == "history":
        from engine.explain.history import explain_history

        start = time.perf_counter()
        result = dict(explain_history(model, user, item, dataset=dataset))
        result.setdefault("method", "history")
        result.setdefault("seconds", time.perf_counter() - start)
    else:
        from engine.explain.shap_lime import explainer_for

        from engine.explain.shap_lime import ITEM_EMBEDDING, USER_EMBEDDING

        explainer = explainer_for(model, splits.train)
        result = explainer.explain(user, item, args.method).to_dict()
        result["values"].update({USER_EMBEDDING: f"user {dataset.user_ids[user]}", ITEM_EMBEDDING: dataset.title(item)})
    result = {**result, "user": str(dataset.user_ids[user]), "item": _item_record(dataset, item),
              "model": info["model"]}  # fmt: skip
    if args.json:
        print_json(result)
        return 0
    it = result["item"]
    print(f"{result['method']} explanation of {info['model']}'s score of {it['title']} (id {it['item_id']}) "
          f"for user {result['user']}: {result['seconds']:.2f} s")
    values = result.get("values") or result.get("titles") or {}
    rows = [{"feature": k, "value": values.get(k, ""), "contribution": v} for k, v in result["contributions"].items()]
    print(table(rows, ["feature", "value", "contribution"]))
    print(f"base value  {format_value(result.get('base_value'))}")
    print(f"prediction  {format_value(result.get('prediction'))}")
    return 0


def cmd_faithfulness(args) -> int:
    from engine.explain.shap_lime import explainer_for, faithfulness, recommended_pairs

    if args.pairs < 1:
        raise ParameterError(f"--pairs must be >= 1, got {args.pairs}")
    model, info, dataset, splits = _explain_setup(args)
    explainer = explainer_for(model, splits.train)
    # The pairs people ask about: sampled test users, each with their top recommendation.
    users, items = recommended_pairs(model, splits.test, args.pairs, random_state=args.seed)

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            _err(f"explained {done}/{total} pairs")

    result = faithfulness(explainer, users, items, progress=progress)
    if args.json:
        print_json(result)
        return 0
    print(f"deletion test on {result['pairs']} users' top recommendations in {info['dataset']} "
          f"({result['seconds']:.1f} s): score drop from replacing the top-3 features / from 3 random ones")
    rows = [
        {"method": m, "deletion_ratio": result[m]["deletion_ratio"], "abs_deletion_ratio": result[m]["abs_deletion_ratio"],
         "max_additivity_error": result[m].get("max_additivity_error")}
        for m in ("shap", "lime", "random")
    ]  # fmt: skip
    print(table(rows, ["method", "deletion_ratio", "abs_deletion_ratio", "max_additivity_error"]))
    agree = result["agreement"]
    print(f"SHAP vs LIME: Spearman {format_value(agree['spearman'])}, "
          f"top-3 overlap {format_value(agree['top3_overlap'])}")
    return 0


# ---- parser --------------------------------------------------------------------------------
LIGHT_HELP = "RECSYS_DEMO_LIGHT=1 uses much lighter settings and a small image catalogue (for tests)."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Recommender engine: data, models, evaluation")
    parser.add_argument(
        "--data-dir", default=None,
        help="where datasets, checkpoints and runs.sqlite live (default: $RECSYS_DATA_DIR, else data/ in the project folder)"
    )
    visible = "{datasets,models,train,runs,evaluate,recommend,similar,explain,faithfulness,data,bench,demo}"
    sub = parser.add_subparsers(dest="command", required=True, metavar=visible)

    p = sub.add_parser("datasets", help="list the dataset specs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("models", help="list the models with their parameters and ranges")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train, evaluate on the test split, save and record a model")
    p.add_argument("--dataset", required=True, help="dataset spec, e.g. ml-100k:DIR or csv:FILE")
    p.add_argument("--model", required=True, help="registry name (see `models`)")
    p.add_argument("--set", action="append", nargs="+", metavar="KEY=VALUE", help="hyperparameter (repeatable)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None)
    p.add_argument("--out", type=Path, default=None, help="checkpoint directory (default: DATA_DIR/checkpoints/...)")
    p.add_argument("--protocol", choices=("full", "sampled"), default="full")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", help="the runs database and its checkpoints")
    runs_sub = p.add_subparsers(dest="runs_command", required=True)
    r = runs_sub.add_parser(
        "clean", help="remove what killed trainings left in DATA_DIR/checkpoints",
        description="Remove hidden temporary folders of interrupted saves and checkpoint folders no run "
        "names, both untouched for --min-age seconds. Only folders holding nothing but a checkpoint's "
        "files, directly inside DATA_DIR/checkpoints; symbolic links are left alone.",
    )
    r.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    r.add_argument("--min-age", type=float, default=None, metavar="SECONDS",
                   help="leave anything younger alone (default: 300; a save may still be running)")
    r.set_defaults(func=cmd_runs_clean)

    p = sub.add_parser("evaluate", help="re-evaluate a checkpoint on its test split")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--protocol", choices=("full", "sampled"), default=None, help="default: the one used in training")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="a user's (or a few picked items') top-k recommendations")
    p.add_argument("--checkpoint", required=True, type=Path)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="raw user id")
    who.add_argument("--items", nargs="+", metavar="ID_OR_TITLE",
                     help="be the user: raw item ids or exact titles picked by a new user (models with fold-in)")
    p.add_argument("--ratings", nargs="+", type=float, metavar="R", help="one rating per picked item (with --items)")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--history", type=int, default=10, help="history rows shown in the table (JSON has all)")
    p.add_argument("--exclude", choices=("train", "history"), default="train",
                   help="leave out the training items (default: held-out items may appear, as in the "
                        "evaluation and the dashboard) or the whole history")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("similar", help="items most similar to one item")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--item", required=True, help="raw item id or exact title")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("explain", help="why a model scores an item for a user (SHAP, LIME or history)")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--user", required=True, help="raw user id")
    p.add_argument("--item", required=True, help="raw item id")
    p.add_argument("--method", choices=("shap", "lime", "history"), default="shap")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("faithfulness", help="deletion test and SHAP/LIME agreement on recommendations")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--pairs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="which test users are sampled")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_faithfulness)

    p = sub.add_parser("data", help="dataset files")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    d = data_sub.add_parser("download", help="download a MovieLens dataset from GroupLens")
    d.add_argument("name", choices=("ml-100k", "ml-1m", "ml-latest-small"))
    d.add_argument("--to", type=Path, default=None, help="target directory (default: DATA_DIR/NAME)")
    d.add_argument("--force", action="store_true", help="download again even if the target holds the dataset")
    d.set_defaults(func=cmd_download)

    p = sub.add_parser("bench", help="our models against implicit / LightFM on the same split")
    p.add_argument("--dataset", required=True)
    p.add_argument("--models", default=None, help="comma-separated model or peer names; NAME[key=value,...] adds a variant row (default: all)")
    p.add_argument("--protocol", choices=("full", "sampled"), default="full")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--memory", action="store_true", help="train each model in a fresh process and report its peak RSS")
    p.add_argument("--seeds", type=int, default=1, help="fit seeded models with seeds 0..N-1 and report mean ± sd (default 1); with --fold-in, "
                   "each user's metrics are averaged over the seeds before the ratios")
    p.add_argument("--background-load", type=int, default=0, metavar="N",
                   help="run N busy processes beside the fits, to measure a shared machine (default 0); "
                   "threads: RECSYS_THREADS, OMP_WAIT_POLICY (see engine/threads.py)")
    p.add_argument("--fold-in", default=None, metavar="FRACTION",
                   help="hold this fraction of the users out of training, fold them in, and compare with the same "
                   "users trained on (peer: implicit's ALS with recalculate_user)")
    p.add_argument("--fold-in-latency", action="store_true",
                   help="with --fold-in: also time one fold-in plus top-10 of a 20-item history, one thread (median ms)")
    p.add_argument("--fold-in-groups", type=int, default=1, metavar="G",
                   help="with --fold-in: hold out G disjoint groups of users, each from its own fit, and pool them "
                   "(default 1; 10 with --fold-in 0.1 holds every test user out once)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "demo", help="quick runs of every kind of model, so every dashboard page has something to show",
        description="Train the starter set on --dataset and a quick ACF on visual-synthetic, as quick runs. "
        "Models that already have a quick run there are skipped, so a second call trains nothing. "
        f"{LIGHT_HELP}",
    )
    p.add_argument("--dataset", default="movielens-dslabs", help="dataset spec of the starter set (default: movielens-dslabs)")
    # Also after the command (`demo --data-dir DIR`); SUPPRESS keeps an earlier --data-dir.
    p.add_argument("--data-dir", default=argparse.SUPPRESS, help="the data folder the dashboard will read")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench-one")  # internal, for bench --memory
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--protocol", choices=("full", "sampled"), default="full")
    p.set_defaults(func=cmd_bench_one)
    return parser


def main(argv=None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input or OS error, 1 broken pipe, 130 interrupted)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage or help already
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.data_dir is None:
        args.data_dir = str(data_dir())  # the one default, shared with the dashboard and the jobs
    try:
        return args.func(args)
    except (EngineError, NotImplementedError) as exc:
        _err(f"error: {_one_line(exc)}")
        return EXIT_USAGE
    except BrokenPipeError:  # `python -m engine models | head`: the reader left, nothing to report
        _silence_stdout()
        return 1
    except OSError as exc:  # a folder given as a file, permission denied, disk full: bad input too
        _err(f"error: {_one_line(exc)}")
        return EXIT_USAGE
    except MemoryError:
        _err("error: not enough memory for this request (try a smaller dataset, model or -k)")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
