"""The demo: one click, or ``python -m engine demo``, gives every page of the dashboard something
to show.

The plan is the starter set (one quick run of each kind of model) on the chosen dataset, then a
quick ACF on the generated ``visual-synthetic`` catalogue for the Visual attention page. Every
run of the plan is recorded as a *quick* run (light settings, not a tuned model), and a model
that already has a quick run on a dataset is not trained again: preparing the demo twice trains
nothing new.

``RECSYS_DEMO_LIGHT=1`` (or ``light=True``) swaps in much lighter settings and a small image
catalogue, for tests that need the whole tour in seconds rather than quality.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from engine import config
from engine.data.visual import generate_visual_synthetic
from engine.runs.experiment import get_dataset, train_and_evaluate
from engine.runs.store import RunsDB

DEFAULT_DATASET = "movielens-dslabs"
VISUAL_DATASET = "visual-synthetic"
#: Set to 1 to run the demo with `LIGHT_RUNS`, `LIGHT_VISUAL_SIZE` and `LIGHT_ACF`.
LIGHT_ENV = "RECSYS_DEMO_LIGHT"

#: The starter set, in the order it trains: one of each kind for the pages to show (users and
#: comparisons; item neighbours; embeddings; a model with side features for Explain), each
#: chosen on the validation split of movielens-dslabs to beat popularity within seconds.
#: itemknn stands where item2vec stood: item2vec's walks need minutes of training to reach
#: popularity's NDCG@10 there, and item neighbours serve Similar items just as well.
STARTER_SET: tuple[tuple[str, dict], ...] = (
    ("popularity", {}),
    ("als", {"factors": 64, "epochs": 8}),
    ("bpr", {"factors": 32, "epochs": 20}),
    ("itemknn", {"neighbours": 10}),
    # Small, and one validation ranking every 3 epochs: ranking all 9,066 items for every user
    # through the MLP costs more than an epoch, and a wider network twice as much.
    ("feature-mlp", {"factors": 16, "layers": "32,16", "epochs": 6, "negatives": 2, "batch_size": 4096,
                     "learning_rate": 0.005, "eval_every": 3}),
    # Last, being the slowest: the model that reads the order of a history, and its attention
    # strip on the User explorer. Narrower and shallower than the default, a larger step and a
    # short weight average (the default's ~500 steps would still hold the starting weights
    # after 6 epochs): validation NDCG@10 0.067 at epoch 6 (0.064 without the average).
    ("sasrec", {"factors": 32, "n_blocks": 1, "learning_rate": 0.005, "weight_average": 0.95, "epochs": 6,
                "eval_every": 2}),
)  # fmt: skip
#: The quick ACF: its validation peaks by epoch 5 on visual-synthetic, with attention that
#: already finds the motifs (component lift and item AUC are reported with its test metrics).
QUICK_ACF: dict = {"epochs": 5, "eval_every": 5}


def lighter_than_defaults(model: str) -> bool:
    """Whether the demo's quick settings of `model` differ from its defaults (popularity's and
    item kNN's are their defaults; SASRec's 6 epochs are far from its 40)."""
    from engine.models.registry import get_model_class

    settings = {**dict(STARTER_SET), "acf": QUICK_ACF}.get(model, {})
    defaults = get_model_class(model).default_params()
    return any(defaults.get(name) != value for name, value in settings.items())


#: Seconds per run on a quiet 2-core machine on movielens-dslabs (100,004 interactions),
#: loading, fitting, evaluating and saving, as `python -m engine demo` prints them; the
#: estimate scales them by the dataset's interactions.
STARTER_SECONDS = {"popularity": 1.0, "als": 1.0, "bpr": 2.0, "itemknn": 2.0, "feature-mlp": 5.0, "sasrec": 45.0}
REFERENCE_INTERACTIONS = 100_004
#: The quick ACF on the default catalogue, with its image features extracted on first use.
ACF_SECONDS = 8.0
#: Generating the default visual-synthetic catalogue (images, ground truth), once per folder.
VISUAL_GENERATION_SECONDS = 8.0

#: Light settings: the point is a run of each kind for the pages, in seconds.
LIGHT_RUNS: tuple[tuple[str, dict], ...] = (
    ("popularity", {}),
    ("als", {"factors": 16, "epochs": 4}),
    ("bpr", {"factors": 16, "epochs": 3}),
    ("itemknn", {"neighbours": 10}),
    ("feature-mlp", {"factors": 8, "layers": "16", "epochs": 1, "negatives": 1, "batch_size": 4096, "eval_every": 2}),
    ("sasrec", {"factors": 8, "max_len": 10, "n_blocks": 1, "epochs": 1, "weight_average": 0.0, "eval_every": 2}),
)
LIGHT_VISUAL_SIZE = {"n_users": 60, "n_items": 40, "min_interactions": 8, "max_interactions": 14}
LIGHT_ACF = {"factors": 8, "attention_dim": 8, "components_dim": 8, "max_profile": 5, "epochs": 2,
             "eval_every": 1, "patience": 0}  # fmt: skip
LIGHT_SECONDS = 2.0


@dataclass(frozen=True)
class DemoRun:
    """One run of the demo plan: a model with its quick settings on a dataset spec, and how
    many seconds it should take on a quiet 2-core machine."""

    dataset: str
    model: str
    params: dict = field(default_factory=dict, hash=False)
    seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return self.dataset, self.model


def light_from_env() -> bool:
    return os.environ.get(LIGHT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def demo_plan(dataset: str = DEFAULT_DATASET, *, data_dir=None, light: bool | None = None,
              interactions: int | None = None) -> list[DemoRun]:  # fmt: skip
    """The demo's runs, in order: the starter set on `dataset`, then the quick ACF on
    ``visual-synthetic``.

    Parameters
    ----------
    dataset : spec of the dataset the starter set trains on.
    data_dir : the data folder (whether ``visual-synthetic`` is there yet changes the estimate).
    light : the light settings; None reads ``RECSYS_DEMO_LIGHT``.
    interactions : the dataset's size, to scale the estimate (None: as movielens-dslabs).
    """
    data_dir = config.data_dir(data_dir)
    light = light_from_env() if light is None else light
    scale = 1.0 if not interactions else interactions / REFERENCE_INTERACTIONS
    runs = [
        DemoRun(dataset, model, dict(params), LIGHT_SECONDS if light else STARTER_SECONDS.get(model, 10.0) * scale)
        for model, params in (LIGHT_RUNS if light else STARTER_SET)
    ]
    acf_seconds = LIGHT_SECONDS if light else ACF_SECONDS
    if not light and not visual_ready(data_dir):
        acf_seconds += VISUAL_GENERATION_SECONDS
    runs.append(DemoRun(VISUAL_DATASET, "acf", dict(LIGHT_ACF if light else QUICK_ACF), acf_seconds))
    return runs


def visual_ready(data_dir) -> bool:
    """Whether the data folder already holds the generated ``visual-synthetic`` catalogue."""
    return (Path(data_dir) / VISUAL_DATASET / "meta.json").is_file()


def prepare_visual(data_dir, *, light: bool | None = None) -> None:
    """With the light settings, write the small catalogue before the plan runs (about a second);
    otherwise the default one is generated the first time the ACF run loads it."""
    light = light_from_env() if light is None else light
    if light and not visual_ready(data_dir):
        generate_visual_synthetic(Path(data_dir) / VISUAL_DATASET, **LIGHT_VISUAL_SIZE)


def split_done(plan: list[DemoRun], runs: pd.DataFrame, busy=()) -> tuple[list[DemoRun], list[DemoRun]]:
    """``(to train, already there)``: a run of the plan is already there when its model has a
    quick run on its dataset whose checkpoint is on disk (in `runs`, a `RunsDB.list` table), or
    when ``(dataset, model)`` is in `busy` (queued or running now)."""
    have = set(busy)
    if not runs.empty and "quick" in runs.columns:
        usable = runs[runs["quick"].astype(bool) & (runs["checkpoint_status"] == "ok")]
        have |= set(zip(usable["dataset"], usable["model"]))
    todo = [run for run in plan if run.key not in have]
    return todo, [run for run in plan if run.key in have]


def total_seconds(plan: list[DemoRun]) -> float:
    return float(sum(run.seconds for run in plan))


def about(seconds: float) -> str:
    """An estimate in words: ``"under a minute"``, ``"about 2 minutes"``."""
    if seconds < 60:
        return "under a minute"
    minutes = math.ceil(seconds / 60)
    return f"about {minutes} minute{'s' if minutes > 1 else ''}"


def progress(jobs: list[dict], plan: list[DemoRun] | None = None) -> dict:
    """Where a queued demo stands, from the snapshots of its jobs (`engine.runs.jobs.Job.snapshot`),
    oldest first; only the `latest_batch` counts.

    Returns ``{"batch" (the id of its first job, None without jobs), "total", "finished",
    "current" (the running job's "model on dataset" or None), "failed" ("model on dataset:
    reason" each), "active" (bool), "seconds_left" (the plan's estimate of the jobs not
    finished; 0 without a plan)}``.
    """
    estimate = {run.key: run.seconds for run in plan or []}
    jobs = latest_batch(jobs)
    finished = [job for job in jobs if job["status"] in ("done", "failed", "cancelled")]
    running = next((job for job in jobs if job["status"] == "running"), None)
    left = [job for job in jobs if job not in finished]
    return {
        "batch": jobs[0]["id"] if jobs else None,
        "total": len(jobs),
        "finished": len(finished),
        "current": None if running is None else f"{running['model']} on {running['dataset']}",
        "failed": [f"{job['model']} on {job['dataset']}: {job['error']}" for job in jobs if job["status"] == "failed"],
        "active": bool(left),
        "seconds_left": float(sum(estimate.get((job["dataset"], job["model"]), 0.0) for job in left)),
    }


def latest_batch(jobs: list[dict]) -> list[dict]:
    """The jobs from the last one queued while nothing else was waiting or running (a demo
    prepared again later counts its own runs, not those of the first time)."""
    start = 0
    for i, job in enumerate(jobs):
        if i and all(e["finished"] is not None and e["finished"] <= job["submitted"] for e in jobs[:i]):
            start = i
    return jobs[start:]


def run_demo(
    dataset: str = DEFAULT_DATASET,
    *,
    data_dir=None,
    light: bool | None = None,
    log: Callable[[str], None] | None = None,
    callback: Callable[[DemoRun], Callable | None] | None = None,
) -> dict:
    """Train what the demo still lacks, one run after another, in this process.

    `log(line)` hears one line per run (started, finished); `callback(run)` may return the
    training callback of that run (epoch events). Returns ``{"dataset", "trained": [{"model",
    "dataset", "run_id", "ndcg@10", "seconds", ...}], "skipped": [{"model", "dataset"}],
    "seconds", "estimate_seconds"}``. A failing run stops the demo with its error; the runs
    before it stay recorded, so running the demo again resumes after them.
    """
    data_dir = config.data_dir(data_dir)
    light = light_from_env() if light is None else light
    log = log or (lambda line: None)
    start = time.perf_counter()
    loaded = get_dataset(dataset, data_dir=data_dir)  # once for the whole starter set
    plan = demo_plan(loaded.spec, data_dir=data_dir, light=light, interactions=len(loaded.interactions))
    todo, skipped = split_done(plan, RunsDB(Path(data_dir) / "runs.sqlite").list())
    for run in skipped:
        log(f"{run.model} on {run.dataset}: a quick run is already there, not trained again")
    if todo:
        runs = f"{len(todo)} quick run{'s' if len(todo) > 1 else ''}"
        log(f"training {runs}: {about(total_seconds(todo))} on a quiet 2-core machine")
    prepare_visual(data_dir, light=light)
    trained = []
    for n, run in enumerate(todo, 1):
        log(f"[{n}/{len(todo)}] {run.model} on {run.dataset}...")
        began = time.perf_counter()
        source = loaded if run.dataset == loaded.spec else run.dataset
        result = train_and_evaluate(source, run.model, run.params, data_dir=data_dir, quick=True,
                                    callback=callback(run) if callback else None)  # fmt: skip
        seconds = time.perf_counter() - began
        metrics = result["metrics"]
        attention = {k: v for k, v in metrics.items() if k.startswith("attention.") and k != "attention.users"}
        trained.append({"model": run.model, "dataset": run.dataset, "run_id": result["run_id"], "seconds": seconds,
                        "ndcg@10": metrics.get("ndcg@10"), **attention})  # fmt: skip
        log(f"[{n}/{len(todo)}] {run.model} on {run.dataset}: test NDCG@10 {metrics.get('ndcg@10', float('nan')):.4f}"
            f" in {seconds:.1f} s")  # fmt: skip
    return {
        "dataset": loaded.spec,
        "trained": trained,
        "skipped": [{"model": run.model, "dataset": run.dataset} for run in skipped],
        "seconds": time.perf_counter() - start,
        "estimate_seconds": total_seconds(todo),
    }
