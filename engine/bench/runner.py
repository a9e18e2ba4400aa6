"""The benchmark: our models against the peers (implicit, LightFM, Cornac) on the very same split.

Every row is one model fitted on the leave-last-out train split (validation given, as in
``train``) and evaluated on test with validation items excluded. Each peer is configured from
the default parameters of the engine model it is matched with (equal factors and iterations,
see `engine.bench.peers.peer_params`), and each matched pair gets ratios: NDCG@10 ours/peer, fit time
ours/peer, and the training time our model needs to first reach the peer's NDCG@10.

With ``seeds=n`` every model that has a ``random_state`` is fitted with seeds 0 .. n-1 (the
split stays the same) and the report adds the mean and standard deviation per model; the
our/peer and variant ratios are then ratios of those means. One fit of a stochastic trainer is
one draw: on ML-100k the test NDCG@10 of NeuMF or LightFM moves by 0.003-0.008 between seeds,
as much as the gaps between the models, so "A beats B" is a claim about means over seeds.

With ``memory=True`` every row is computed in a fresh Python process (``python -m engine
bench-one``) that reports its own peak resident set size, so one model's memory does not hide
behind another's.

With ``background_load=n`` the fits run beside `n` busy processes (`engine.bench.background_load`):
a fit time measured that way, divided by the quiet one, is what sharing the cores costs. The
report records the load and the thread policy of the process (`engine.threads`).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine import config
from engine.bench.background_load import BackgroundLoad, check_count
from engine.data import Dataset, DataSplits
from engine.errors import EngineError, ParameterError, choices_hint
from engine.runs.experiment import build_model, check_protocol, evaluate_test, get_dataset, make_splits
from engine.models.base import Cancelled, Recommender
from engine.models.registry import MODELS
from engine.text_tables import table
from engine.threads import current

INSTALL_HINT = "peers unavailable: install them with `pip install -r requirements-bench.txt`"
#: The bench runs every registered model by default (the issue: "report every neural model's
#: metrics"); `models` narrows it. 4 min 21 s on ML-100k on a quiet 2-core machine (measured;
#: the neural models dominate).
DEFAULT_MODELS = tuple(MODELS)
#: Variants reported right after their base model, with their ratio to it (the effect of the change).
VARIANTS = {name: cls.variant_of for name, cls in MODELS.items() if cls.variant_of}
TABLE_METRICS = ("hr@10", "ndcg@10", "recall@10", "mrr", "auc", "coverage@10")
ATTENTION_METRICS = ("attention.component_lift", "attention.item_auc")

Log = Callable[[str], None]


# ---- peers ---------------------------------------------------------------------------------
def load_peers() -> tuple[dict, Callable | None, str | None]:
    """``(PEERS, peer_params, None)``, or ``({}, None, reason)`` when `engine.bench.peers` cannot load."""
    try:  # optional: the peers need implicit and LightFM (requirements-bench.txt)
        from engine.bench.peers import PEERS, peer_params
    except ImportError as exc:
        if (exc.name or "").startswith("engine"):
            return {}, None, f"no peers to compare with ({exc})"
        return {}, None, f"{INSTALL_HINT} ({exc})"
    return dict(PEERS), peer_params, None


def split_specs(text: str) -> list[str]:
    """``"bpr,acf[features=cnn,epochs=10]"`` -> ``["bpr", "acf[features=cnn,epochs=10]"]``:
    commas inside brackets belong to the spec."""
    out, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    specs = [s.strip() for s in out if s.strip()]
    if not specs:  # "," or "": running every model instead would be a surprise of hours
        raise ParameterError(f"--models names no model (got {text!r}): give comma-separated names, e.g. bpr,als")
    return specs


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"acf[features=cnn,epochs=10]"`` -> ``("acf", {"features": "cnn", "epochs": "10"})``.

    A bench row is a registry name, optionally with parameters in brackets, so one run can
    compare variants of a model (both component extractors of ACF, say) on the same split.
    Values are strings, coerced by the model's parameter ranges when it is built.
    """
    name, bracket, rest = spec.strip().partition("[")
    if not bracket:
        return name, {}
    if not rest.endswith("]"):
        raise ParameterError(f"model spec {spec!r} lacks its closing ']' (expected NAME[key=value,...])")
    params = {}
    for item in filter(None, (x.strip() for x in rest[:-1].split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"model spec {spec!r}: expected key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return name.strip(), params


#: Every seed is one more fit of every seeded model: beyond this, a number is a typo, not a plan
#: (``--seeds 2**63`` would otherwise build a list of that many fits before the first one).
MAX_SEEDS = 100


def check_seeds(seeds) -> int:
    """`seeds` as a whole number from 1 to `MAX_SEEDS`, or a one-line error."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or not 1 <= seeds <= MAX_SEEDS:
        raise ParameterError(f"--seeds must be a whole number from 1 to {MAX_SEEDS}, got {seeds!r}")
    return int(seeds)


def seeded_specs(name: str, seeds: int, peers: dict) -> list[tuple[str, int | None]]:
    """``[(spec, seed), ...]``: `name` once per seed 0 .. seeds-1, or once (seed None) when it has
    no ``random_state`` or ``seeds`` is 1 (the model's own default seed then applies)."""
    base, params = parse_spec(name)
    cls = MODELS[base] if base in MODELS else peers[base][0]
    if seeds == 1 or "random_state" not in cls.param_names():
        return [(name, None)]
    if "random_state" in params:
        raise ParameterError(f"model spec {name!r} sets random_state; with --seeds the bench sets it (drop one of the two)")
    inner = ",".join(f"{k}={v}" for k, v in params.items())
    return [(f"{base}[{inner + ',' if inner else ''}random_state={seed}]", seed) for seed in range(seeds)]


def _resolve(name: str, peers: dict, peer_params) -> tuple[str, Callable[[], Recommender]]:
    """``(source, factory)`` for an engine model (possibly ``NAME[key=value,...]``) or a peer name."""
    base, params = parse_spec(name)
    if base in MODELS:
        return "engine", lambda: build_model(base, params)
    if base in peers:
        cls, match = peers[base]
        engine_params = build_model(match).get_params() if match in MODELS else {}
        return "peer", lambda: cls.from_params(**{**peer_params(base, engine_params), **params})
    raise ParameterError(f"unknown model or peer {name!r}{choices_hint(name, [*MODELS, *peers], limit=30)}")


def select(models: list[str] | None, *, peers: bool, available_peers: dict) -> tuple[list[str], list[str]]:
    """Engine names and peer names to run; a peer runs when it or its matched model is selected."""
    valid = [*MODELS, *available_peers]
    specs, peer_specs = [], []  # models given with parameters, run after the plain ones
    for name in models or []:
        base, params = parse_spec(name)
        if base not in valid:
            raise ParameterError(f"unknown model or peer {base!r}{choices_hint(base, valid, limit=30)}")
        if params and base in MODELS:
            build_model(base, params)  # unknown or out-of-range parameters: fail before any fitting
            specs.append(name)
        elif params:
            available_peers[base][0].from_params(**params)  # the peer's own parameter check
            peer_specs.append(name)
    chosen = set(models) if models else None
    ours = _variants_after_bases([n for n in MODELS if (n in chosen if chosen is not None else n in DEFAULT_MODELS)])
    ours += specs
    theirs = []
    if peers:
        theirs = [p for p, (_, match) in available_peers.items() if chosen is None or p in chosen or match in chosen]
        theirs += peer_specs
    return ours, theirs


def _variants_after_bases(names: list[str]) -> list[str]:
    """`names` in registry order, except that a variant follows its base when both are present."""
    out = [n for n in names if VARIANTS.get(n) not in names]
    for variant, base in VARIANTS.items():
        if variant in names and base in names:
            out.insert(out.index(base) + 1, variant)
    return out


# ---- one row -------------------------------------------------------------------------------
def bench_row(name: str, splits: DataSplits, *, protocol: str = "full", peers=None) -> dict:
    """Fit one engine model or peer on ``splits.train`` (with val) and evaluate it on test."""
    peer_map, peer_params = (peers if peers is not None else load_peers()[:2])
    source, factory = _resolve(name, peer_map, peer_params)
    model = factory()
    model.fit(splits.train, val=splits.val)
    metrics = evaluate_test(model, splits, protocol=protocol)
    return {
        "model": name,
        "source": source,
        "params": model.get_params(),
        "metrics": metrics,
        "fit_seconds": model.fit_seconds_,
        # Comparable across dataset sizes: linear scaling keeps it constant.
        "fit_seconds_per_million": model.fit_seconds_ / max(1e-6, len(splits.train) / 1e6),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (VmHWM, or getrusage where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # Unix only: imported where it is used, after /proc was tried

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def bench_one_process(dataset_spec: str, name: str, *, protocol: str = "full", data_dir=None) -> dict:
    """One row computed in this process from scratch, with the process's peak RSS (bench-one)."""
    data_dir = config.data_dir(data_dir)
    dataset = get_dataset(dataset_spec, data_dir=data_dir)
    splits = make_splits(dataset)
    loaded = peak_rss_mb()  # what the data alone costs, to tell it apart from the model's share
    row = bench_row(name, splits, protocol=protocol)
    row["peak_rss_mb"] = peak_rss_mb()
    row["data_rss_mb"] = loaded
    return row


def _row_in_subprocess(dataset: Dataset, name: str, *, protocol: str, data_dir) -> dict:
    cmd = [sys.executable, "-m", "engine", "--data-dir", str(data_dir), "bench-one", "--dataset", dataset.spec,
           "--model", name, "--protocol", protocol]
    env = dict(os.environ)
    # The child must import this very engine, wherever the parent was started from.
    root = str(Path(__file__).resolve().parents[2])  # engine/bench/runner.py -> the repository
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EngineError(f"failed in its own process (exit {proc.returncode}): {last.removeprefix('error: ')}")
    return json.loads(proc.stdout)


# ---- time to reach a peer's NDCG -------------------------------------------------------------
def time_to_reach(
    name: str, splits: DataSplits, target: float, *, protocol: str = "full", params: dict | None = None
) -> dict:
    """Training seconds at which engine model `name` first reaches test NDCG@10 >= `target`.

    The model is refitted exactly as in its bench row (same parameters, validation given) with a
    per-epoch callback that evaluates test NDCG@10. The callback's own time is subtracted from
    the clock; the model's own validation stays in it, as it does in the row's fit time (and it
    is what makes models that publish their factors only when validating scorable mid-fit). The
    fit stops once the target is reached. Returns ``{"seconds", "epoch", "ndcg@10", "curve",
    "note"}``: seconds/epoch None when not reached, `note` set when it could not be measured.
    """
    base, spec_params = parse_spec(name)
    model = build_model(base, {**spec_params, **(params or {})})
    curve: list[dict] = []
    state = {"spent": 0.0, "reached": None, "note": None}
    start = time.perf_counter()

    def callback(event: dict) -> None:
        trained = time.perf_counter() - start - state["spent"]
        t0 = time.perf_counter()
        try:
            ndcg = evaluate_test(model, splits, protocol=protocol)["ndcg@10"]
        except Exception as exc:  # a model that cannot score mid-fit: report, do not crash the bench
            state["note"] = f"cannot score during fit ({type(exc).__name__})"
            raise Cancelled(state["note"]) from None
        state["spent"] += time.perf_counter() - t0
        curve.append({"epoch": event.get("epoch"), "seconds": trained, "ndcg@10": ndcg})
        if ndcg >= target:
            state["reached"] = curve[-1]
            raise Cancelled("target reached")

    try:
        model.fit(splits.train, val=splits.val, callback=callback)
    except Cancelled:
        pass
    if not curve and state["note"] is None:
        state["note"] = "not iterative (no per-epoch callback)"
    reached = state["reached"] or {}
    return {
        "seconds": reached.get("seconds"),
        "epoch": reached.get("epoch"),
        "ndcg@10": reached.get("ndcg@10"),
        "curve": curve,
        "note": state["note"],
    }


def is_iterative(name: str) -> bool:
    """Whether an engine model (name or spec) trains in epochs (and so calls back per epoch)."""
    return "epochs" in MODELS[parse_spec(name)[0]].param_names()


# ---- the whole bench ------------------------------------------------------------------------
def run_bench(
    dataset_spec_or_dataset,
    *,
    models: list[str] | None = None,
    protocol: str = "full",
    peers: bool = True,
    memory: bool = False,
    reach: bool = True,
    seeds: int = 1,
    background_load: int = 0,
    data_dir=None,
    log: Log | None = None,
) -> dict:
    """Run the benchmark: ``{"dataset", "protocol", "split", "seeds", "rows", "means", "ratios",
    "variants", "notes"}``.

    Parameters
    ----------
    models : engine model and/or peer names (default: every registered model and every peer).
    peers : also run the peers of the selected engine models.
    memory : compute every row in a fresh subprocess and add its ``peak_rss_mb``.
    reach : measure the time each iterative engine model needs to reach its peer's NDCG@10
        (at the model's default seed, against the peer's mean NDCG@10).
    seeds : fit every seeded model with seeds 0 .. seeds-1; `rows` has one row per fit (with its
        ``seed``), `means` one row per model with the mean metrics and their ``sd``.
    background_load : busy processes running during the fits (and the time-to-reach refits).
    log : receives one line per step (the CLI writes them to stderr).
    """
    data_dir = config.data_dir(data_dir)
    log = log or (lambda line: None)
    check_protocol(protocol)
    seeds = check_seeds(seeds)
    check_count(background_load)
    dataset = get_dataset(dataset_spec_or_dataset, data_dir=data_dir)
    splits = make_splits(dataset)
    notes: list[str] = []
    available, peer_params, problem = load_peers() if peers else ({}, None, None)
    if problem:
        notes.append(problem)
        log(problem)
    ours, theirs = select(models, peers=peers, available_peers=available)
    runs = [(name, spec, seed) for name in [*ours, *theirs] for spec, seed in seeded_specs(name, seeds, available)]

    rows = []
    with contextlib.ExitStack() as load:
        if background_load:
            log(f"bench: {background_load} busy background process(es) during the fits")
            load.enter_context(BackgroundLoad(background_load))
        _fit_rows(runs, rows, dataset, splits, notes, theirs, available, peer_params,
                  protocol=protocol, memory=memory, data_dir=data_dir, log=log)
        means = mean_rows(rows)
        ratios = pair_ratios(means, available)
        if reach:
            for ratio in ratios:
                if not is_iterative(ratio["engine"]):
                    continue
                log(f"bench: time for {ratio['engine']} to reach {ratio['peer']}'s ndcg@10 {ratio['peer_ndcg@10']:.4f} ...")
                found = time_to_reach(ratio["engine"], splits, ratio["peer_ndcg@10"], protocol=protocol)
                add_reach(ratio, found)
    return {
        "dataset": dataset.spec,
        "protocol": protocol,
        "split": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test),
                  "users": dataset.n_users, "items": dataset.n_items},
        "seeds": seeds,
        "background_load": background_load,
        "threads": thread_report(),
        "rows": rows,
        "means": means,
        "ratios": ratios,
        "variants": variant_ratios(means),
        "notes": notes,
    }


def thread_report() -> dict:
    """The threads torch uses here and the OpenMP wait policy this process started with."""
    policy = current()
    return {
        "threads": torch.get_num_threads(),
        "wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (the libraries' spinning default)"),
        "configured": policy.as_dict() if policy is not None else None,
    }


def _fit_rows(runs, rows, dataset, splits, notes, theirs, available, peer_params, *, protocol, memory, data_dir, log):
    """Fit every ``(name, spec, seed)`` of `runs` into `rows` (peers that cannot run go to `notes`)."""
    for name, spec, seed in runs:
        log(f"bench: {spec} on {dataset.name} ...")
        try:
            if memory:
                row = _row_in_subprocess(dataset, spec, protocol=protocol, data_dir=data_dir)
            else:
                row = bench_row(spec, splits, protocol=protocol, peers=(available, peer_params))
        except (ImportError, EngineError) as exc:
            if name not in theirs and not memory:
                raise  # our own models must work; only peers (optional packages) may be skipped
            note = f"{name}: {exc}" if isinstance(exc, EngineError) else f"{name}: {INSTALL_HINT} ({exc})"
            if not any(n.split(": ", 1)[-1] == note.split(": ", 1)[-1] for n in notes):
                notes.append(note)  # one line per missing package, not one per peer
                log(note)
            continue
        row.update(model=name, seed=seed)
        rows.append(row)
        log(
            f"bench: {spec}: ndcg@10 {row['metrics']['ndcg@10']:.4f}, fit {row['fit_seconds']:.2f} s"
            + (f", peak RSS {row['peak_rss_mb']:.0f} MiB" if "peak_rss_mb" in row else "")
        )


def mean_rows(rows: list[dict]) -> list[dict]:
    """One row per (source, model), in first-seen order: metrics and fit seconds averaged over its
    seeds, ``sd`` the sample standard deviation of each metric (None for one run), ``seeds`` the seeds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["source"], row["model"]), []).append(row)
    out = []
    for (source, model), group in groups.items():
        keys = [k for k in group[0]["metrics"] if all(isinstance(r["metrics"].get(k), (int, float)) for r in group)]
        values = {k: [float(r["metrics"][k]) for r in group] for k in keys}
        out.append(
            {
                "model": model,
                "source": source,
                "seeds": [r.get("seed") for r in group],
                "metrics": {k: statistics.fmean(v) for k, v in values.items()},
                "sd": {k: statistics.stdev(v) if len(v) > 1 else None for k, v in values.items()},
                "fit_seconds": statistics.fmean(r["fit_seconds"] for r in group),
            }
        )
    return out


def variant_ratios(rows: list[dict]) -> list[dict]:
    """Variant/base ratios of NDCG@10, HR@10 and fit time for every `VARIANTS` pair with both rows."""
    by_name = {r["model"]: r for r in rows if r["source"] == "engine"}
    out = []
    for variant, base in VARIANTS.items():
        v, b = by_name.get(variant), by_name.get(base)
        if v is None or b is None:
            continue
        out.append(
            {
                "variant": variant,
                "base": base,
                "ndcg_ratio": _ratio(v["metrics"]["ndcg@10"], b["metrics"]["ndcg@10"]),
                "hr_ratio": _ratio(v["metrics"]["hr@10"], b["metrics"]["hr@10"]),
                "fit_time_ratio": _ratio(v["fit_seconds"], b["fit_seconds"]),
            }
        )
    return out


def pair_ratios(rows: list[dict], peers: dict) -> list[dict]:
    """Ours/peer NDCG@10 and fit-time ratios for every peer whose matched engine model has a row."""
    by_name = {(r["source"], r["model"]): r for r in rows}
    out = []
    for peer_name, (_, match) in peers.items():
        ours, theirs = by_name.get(("engine", match)), by_name.get(("peer", peer_name))
        if ours is None or theirs is None:
            continue
        out.append(
            {
                "engine": match,
                "peer": peer_name,
                "engine_ndcg@10": ours["metrics"]["ndcg@10"],
                "peer_ndcg@10": theirs["metrics"]["ndcg@10"],
                "ndcg_ratio": _ratio(ours["metrics"]["ndcg@10"], theirs["metrics"]["ndcg@10"]),
                "fit_time_ratio": _ratio(ours["fit_seconds"], theirs["fit_seconds"]),
                "peer_fit_seconds": theirs["fit_seconds"],
            }
        )
    return out


def add_reach(ratio: dict, found: dict) -> dict:
    """Put a `time_to_reach` result into a ratio entry (``reach_ratio`` = seconds / peer fit)."""
    ratio["reach_seconds"] = found["seconds"]
    ratio["reach_epoch"] = found["epoch"]
    ratio["reach_ratio"] = None if found["seconds"] is None else _ratio(found["seconds"], ratio["peer_fit_seconds"])
    best = max(found.get("curve") or [], key=lambda c: c["ndcg@10"], default=None)
    missed = "not reached" + (f" (best {best['ndcg@10']:.4f} at epoch {best['epoch']})" if best else "")
    ratio["reach_note"] = found["note"] or (None if found["seconds"] is not None else missed)
    return ratio


def _mean_sd(row: dict, metric: str) -> str | None:
    if metric not in row["metrics"]:
        return None
    sd = row["sd"][metric]
    return f"{row['metrics'][metric]:.4f}" + ("" if sd is None else f" ± {sd:.4f}")


def _conditions(report: dict) -> str:
    """``"threads 1 (OMP_WAIT_POLICY PASSIVE), background load 1 busy process"``."""
    threads = report.get("threads") or {}
    load = report.get("background_load", 0)
    return (f"threads {threads.get('threads', '?')} (OMP_WAIT_POLICY {threads.get('wait_policy', '?')}), "
            f"background load {load} busy process{'' if load == 1 else 'es'}")


def _ratio(a, b) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return float(a) / float(b)


# ---- text report ----------------------------------------------------------------------------
def format_report(report: dict) -> str:
    """The bench as aligned tables: one row per fit, the means over seeds (when there are several),
    then the our/peer and variant ratios (of the means)."""
    memory = any("peak_rss_mb" in r for r in report["rows"])
    # Attention fidelity exists only for attention models on datasets with ground truth.
    attention = [m for m in ATTENTION_METRICS if any(m in r["metrics"] for r in report["rows"])]
    seeded = report.get("seeds", 1) > 1
    rows = [
        {"model": r["model"], "source": r["source"], "seed": r.get("seed"),
         **{m: r["metrics"].get(m) for m in (*TABLE_METRICS, *attention)},
         "fit s": r["fit_seconds"], "s/1M": r.get("fit_seconds_per_million"),
         "peak MiB": None if r.get("peak_rss_mb") is None else round(r["peak_rss_mb"])}
        for r in report["rows"]
    ]
    columns = ["model", "source", *(["seed"] if seeded else []), *TABLE_METRICS, *attention, "fit s", "s/1M"]
    columns += ["peak MiB"] if memory else []
    split = report["split"]
    lines = [
        f"{report['dataset']}: {split['users']} users x {split['items']} items; "
        f"train {split['train']}, val {split['val']}, test {split['test']} ({report['protocol']} ranking)",
        _conditions(report),
        table(rows, columns),
    ]
    if seeded:
        shown = ("hr@10", "ndcg@10", *attention)
        mean_rows = [
            {"model": r["model"], "source": r["source"], "seeds": len(r["seeds"]),
             **{m: _mean_sd(r, m) for m in shown}, "fit s": r["fit_seconds"]}
            for r in report["means"]
        ]
        lines += ["", f"mean ± sd over seeds 0-{report['seeds'] - 1}",
                  table(mean_rows, ["model", "source", "seeds", *shown, "fit s"])]
    if report["ratios"]:
        ratio_rows = []
        for r in report["ratios"]:
            reach = r.get("reach_note") or ""
            if r.get("reach_seconds") is not None:
                reach = f"{r['reach_seconds']:.2f} s (epoch {r['reach_epoch']}) = {r['reach_ratio']:.2f}x peer fit"
            ratio_rows.append(
                {"our/peer": f"{r['engine']}/{r['peer']}", "ndcg@10": r["ndcg_ratio"], "fit time": r["fit_time_ratio"],
                 "time to peer's ndcg@10": reach if "reach_seconds" in r else "-"}
            )
        lines += ["", table(ratio_rows, ["our/peer", "ndcg@10", "fit time", "time to peer's ndcg@10"], digits=2)]
    if report.get("variants"):
        variant_rows = [
            {"variant/base": f"{r['variant']}/{r['base']}", "ndcg@10": r["ndcg_ratio"], "hr@10": r["hr_ratio"],
             "fit time": r["fit_time_ratio"]}
            for r in report["variants"]
        ]
        lines += ["", table(variant_rows, ["variant/base", "ndcg@10", "hr@10", "fit time"], digits=2)]
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)
