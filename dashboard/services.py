"""The one module that imports both streamlit and engine: engine calls, caches and error display.

Pages call these functions and never import engine themselves. Every cache is bounded.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from engine import attention as attention_lib
from engine import be_user
from engine import demo
from engine import explain as explain_lib
from engine import explore
from engine import projection as projections
from engine import query
from engine import what_if as what_if_lib
from engine.be_user import Picks
from engine.data import DATASETS, Dataset, DataSplits, load_dataset
from engine.data import access, stats
from engine.data import images as images_lib
from engine.data.upload import guess_mapping, read_header, save_upload, upload_limits
from engine.data.visual import load_image
from engine.errors import CheckpointError, EngineError, UnknownIdError, quoted  # noqa: F401 - pages quote link values
from engine.experiment import make_splits
from engine.history_explain import because_you_liked, supports_history
from engine.jobs import JobManager, history, job_table, may_touch, one_line
from engine.models.base import Recommender
from engine.models.registry import describe_models, model_has
from engine.store import RunsDB, clean_checkpoints

from dashboard.components.text import code, plain

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("RECSYS_DATA_DIR", ROOT / "data"))
DEFAULT_DATASET = "movielens-dslabs"
VISUAL_DATASET = demo.VISUAL_DATASET  # the generated catalogue with ground truth (Visual attention)


@contextmanager
def friendly_errors():
    """Show an engine error as one line with `st.error` and stop the page (no traceback).

    The message often quotes what the visitor typed or a file held, so it is shown as text
    (`plain`), never as Markdown.
    """
    try:
        yield
    except EngineError as exc:
        st.error(plain(one_line(exc)), icon=":material/error:")
        st.stop()


def dataset_choices() -> list[str]:
    """Every dataset ready to use: the default one, visual-synthetic (generated on first use),
    every known format whose default folder exists under the data folder, the uploads, and any
    other dataset that has runs (trained from the command line, say)."""
    found = [DEFAULT_DATASET, demo.VISUAL_DATASET]
    for name in DATASETS:
        if name not in found and (DATA_DIR / name).exists():
            found.append(name)
    for folder in sorted(DATA_DIR.glob("ml-latest*")):
        if folder.is_dir() and folder.name != "ml-latest":
            found.append(f"ml-latest:{folder}")
    found.extend(f"csv:{path}" for path in sorted((DATA_DIR / "uploads").glob("*.csv")))
    try:
        trained = runs_db().list()["dataset"].drop_duplicates().tolist()
    except EngineError:  # an unusable runs database is reported by the pages that need it
        trained = []
    # Runs the operator trained from the command line may name any path: offer only what a
    # visitor may open (`get_dataset` would refuse the rest).
    roots = access.allowed_roots()
    return [spec for spec in dict.fromkeys([*found, *trained]) if access.spec_allowed(spec, DATA_DIR, roots)]


#: A few words per dataset name, for the picker's list (the sidebar is narrow).
DATASET_BLURBS = {
    DEFAULT_DATASET: "MovieLens films, 671 users (default)",
    "visual-synthetic": "generated images, for Visual attention",
    "ml-100k": "MovieLens 100k, with demographics",
    "ml-1m": "MovieLens 1M",
    "ml-latest": "MovieLens CSV folder",
    "ml-latest-small": "MovieLens CSV folder",
    "csv": "uploaded CSV",
    "synthetic": "generated interactions, no titles",
    "visual": "image folder",
}


def split_spec(spec: str) -> tuple[str, str | None]:
    """``(base spec, picture folder or None)``; a malformed image part (``+images`` with no
    folder) is left in the base, for `get_dataset` to refuse in one line."""
    try:
        return images_lib.split_spec(spec)
    except EngineError:
        return str(spec), None


def with_images(spec: str, folder: str | None) -> str:
    """`spec` with `folder` attached as its pictures (None or empty: without pictures)."""
    return images_lib.with_images(split_spec(spec)[0], folder)


def image_problems(spec: str) -> str | None:
    """One line on the attached picture folder's problems (missing, unreadable, not pictures),
    None where it has none or the dataset has no attached folder."""
    problems = get_dataset(spec).extras.get("image_problems")
    if not problems or "with_image" not in problems:  # visual:DIR drops such items itself
        return None
    if not (problems["count"] or problems["not_images_count"]):
        return None
    return images_lib.problem_line(problems)


def dataset_label(spec: str) -> str:
    """How the picker lists a dataset: its spec and a few words (``"visual-synthetic · generated
    images, for Visual attention"``)."""
    base, pictures = split_spec(spec)
    blurb = DATASET_BLURBS.get(base.partition(":")[0])
    if pictures is not None:
        blurb = f"{blurb}, with pictures" if blurb else "with pictures"
    return spec if blurb is None else f"{spec} · {blurb}"


def dataset_description(spec: str) -> str:
    """One line on a dataset for the picker's caption: the format's description, and whether
    visual-synthetic still has to be generated."""
    base, pictures = split_spec(spec)
    name = base.partition(":")[0]
    fmt = DATASETS.get(name)
    if fmt is None:
        return "not a known dataset format"
    text = fmt.description
    if pictures is not None:
        text += f"; item pictures from {pictures}"
    if name == "csv" and (DATA_DIR / "uploads") in Path(base.partition(":")[2]).parents:
        text = f"uploaded on the Data page; {text}"
    if spec == demo.VISUAL_DATASET and not demo.visual_ready(DATA_DIR):
        text += f"; generated the first time it is picked ({demo.VISUAL_GENERATION_SECONDS:.0f} s or so)"
    return text


def get_dataset(spec: str) -> Dataset:
    """The loaded dataset (shared across sessions, never mutated). Every spec comes from a
    visitor (the URL, the sidebar), so its paths are checked first, also for a cached one:
    only the data folder, its uploads and the operator's `RECSYS_ALLOWED_ROOTS` (see
    `engine.data.access`); a refusal is a `DatasetError` like any bad spec."""
    access.check_spec_paths(spec, DATA_DIR, access.allowed_roots())
    return _loaded_dataset(spec, str(DATA_DIR))


@st.cache_resource(max_entries=4, show_spinner="Loading dataset...")
def _loaded_dataset(spec: str, data_dir: str) -> Dataset:
    return load_dataset(spec, data_dir=data_dir)


@st.cache_data(max_entries=8)
def dataset_summary(spec: str) -> dict:
    return get_dataset(spec).summary()


@st.cache_data(max_entries=8)
def dataset_views(spec: str) -> dict[str, pd.DataFrame]:
    """The frames the Data page plots: rating histogram, long tail, user activity."""
    ds = get_dataset(spec)
    return {
        "ratings": stats.rating_histogram(ds),
        "long_tail": stats.long_tail(ds),
        "activity": stats.user_activity(ds),
    }


@st.cache_data(max_entries=8)
def item_table(spec: str) -> pd.DataFrame:
    """Items with their interaction counts, most popular first, for the searchable table."""
    ds = get_dataset(spec)
    table = ds.items[["item_id", "title", "genres", "year"]].copy()
    table["interactions"] = ds.item_popularity()
    return table.sort_values("interactions", ascending=False, kind="stable").reset_index(drop=True)


# ---- runs and fitted models -------------------------------------------------------------------
def runs_db() -> RunsDB:
    """The runs database every page reads (written by the Models page and the CLI)."""
    return RunsDB(DATA_DIR / "runs.sqlite")


def runs_table(spec: str | None = None) -> pd.DataFrame:
    """Runs (newest first), optionally of one dataset spec. Not cached: a training job may have
    just added a row, and the query takes about a millisecond."""
    with friendly_errors():
        return runs_db().list(dataset=spec)


def loadable_runs(spec: str) -> list[dict]:
    """Runs of `spec` whose checkpoint is still on disk, newest first, each a dict with
    ``id, model, label, checkpoint, metrics, params, fit_seconds``."""
    table = runs_table(spec)
    out = []
    for row in table[table["checkpoint_status"] == "ok"].itertuples(index=False):
        run = runs_db().get(int(row.id))
        out.append({**run, "label": run_label(run)})
    return out


def run_label(run: dict) -> str:
    """How a run is named in pickers: ``"bpr #12 (NDCG@10 0.071)"``, and ``"bpr #12 (quick run)
    (NDCG@10 0.071)"`` for a run with the demo's light settings."""
    ndcg = run.get("metrics", {}).get("ndcg@10")
    score = "" if ndcg is None else f" (NDCG@10 {ndcg:.3f})"
    quick = explore.QUICK_MARK if run.get("quick") else ""
    return f"{run['model']} #{run['id']}{quick}{score}"


def get_model(checkpoint: str, spec: str) -> Recommender:
    """The fitted model of a checkpoint (shared across sessions, never mutated), checked against
    the cached dataset it claims to be trained on (`engine.query.open_checkpoint`)."""
    return _opened(checkpoint, spec)[0]


def get_splits(checkpoint: str, spec: str) -> DataSplits:
    """The split a checkpoint was trained and evaluated on, rebuilt from the settings recorded in
    it (not today's defaults): it marks the held-out items and feeds the explainers. Runs that
    share settings share one cached split."""
    settings = query.recorded_split(_opened(checkpoint, spec)[1])
    return _splits(spec, tuple(sorted(settings.items())))


@st.cache_resource(max_entries=8, show_spinner="Loading model...")
def _opened(checkpoint: str, spec: str) -> tuple[Recommender, dict]:
    model, info, _ = query.open_checkpoint(checkpoint, dataset=get_dataset(spec))
    return model, info


@st.cache_resource(max_entries=4, show_spinner="Splitting dataset...")
def _splits(spec: str, settings: tuple) -> DataSplits:
    return make_splits(get_dataset(spec), dict(settings))


# ---- explorer ----------------------------------------------------------------------------------
# User explorer, Similar items and Compare. Everything is cached per (checkpoint, user) or
# (checkpoint, item): one user's top-k is one row of scores, never the users x items matrix.


ACTIVITY_LEVELS = explore.ACTIVITY_LEVELS
shared_counts = explore.shared_counts
QUICK_MARK = explore.QUICK_MARK
default_runs = explore.default_runs  # what a model picker shows before the user picks


def find_user(spec: str, raw_id: str, way_out: str) -> int:
    """Index of a raw user id; an unknown one is an `st.error` naming it and `way_out`, and the
    page stops."""
    try:
        return get_dataset(spec).user_index(raw_id)
    except EngineError as exc:
        st.error(f"{plain(one_line(exc))}. {way_out}", icon=":material/person_off:")
        st.stop()


def find_item(spec: str, raw_id: str) -> int | None:
    """Index of a raw item id, or None after an `st.error` naming it (the page goes on, so its
    item picker is the way out)."""
    try:
        return get_dataset(spec).item_index(raw_id)
    except EngineError as exc:
        st.error(f"{plain(one_line(exc))}. Pick an item by title below.", icon=":material/error:")
        return None


def recommendation_frame(checkpoint: str, spec: str, user_idx: int, items, scores, shared) -> pd.DataFrame:
    """One model's list for the user explorer, with the user's held-out items (in the split the
    checkpoint was evaluated on) marked."""
    held = query.held_out(get_splits(checkpoint, spec), user_idx)
    return explore.recommendation_frame(get_dataset(spec), items, scores, held_out=held, shared=shared)


@st.cache_data(max_entries=8)
def activity_groups(spec: str) -> dict:
    """User indices of each activity level (light / medium / heavy thirds)."""
    return explore.activity_groups(get_dataset(spec))


def pick_user(spec: str, level: str, seed: int, avoid: int | None = None) -> str:
    """Raw id of a seeded random user of an activity level."""
    ds = get_dataset(spec)
    return str(ds.user_ids[explore.pick_user(activity_groups(spec), level, seed, avoid=avoid)])


@st.cache_data(max_entries=64)
def user_history(checkpoint: str, spec: str, user_idx: int) -> pd.DataFrame:
    """One user's interactions, newest first, with the split each went to in `checkpoint`'s
    recorded split."""
    return explore.user_history(get_dataset(spec), user_idx, get_splits(checkpoint, spec))


@st.cache_data(max_entries=512)
def user_recommendations(
    checkpoint: str, spec: str, user_idx: int, k: int, exclude: str = query.DEFAULT_EXCLUDE
) -> tuple:
    """``(item_idx, scores)`` of one user's top-`k` under one checkpoint: the list
    ``python -m engine recommend`` prints (`engine.query.recommend_for`; training items left out,
    held-out ones kept so the page can mark a hit)."""
    return query.recommend_for(get_model(checkpoint, spec), get_dataset(spec), user_idx, k, exclude=exclude)


@st.cache_data(max_entries=512, show_spinner=False)
def because(checkpoint: str, spec: str, user_idx: int, items: tuple[int, ...]) -> list[str] | None:
    """"because you liked ..." per item (three history titles each); None when the model cannot
    re-score a user from a history."""
    model = get_model(checkpoint, spec)
    if not supports_history(model):
        return None
    ds = get_dataset(spec)
    return [explore.because_text(ds, reasons) for reasons in because_you_liked(model, user_idx, list(items), k=3)]


# ---- be the user -------------------------------------------------------------------------------
def picks_from_link(spec: str, picks: str | None, ratings: str | None, max_picks: int) -> tuple[Picks, str | None]:
    """The link's picks (`engine.be_user.picks_from_link`) and None, or no picks and the
    problem as one line of text (the page shows it and goes on: its picker is the way out)."""
    try:
        return be_user.picks_from_link(get_dataset(spec), picks, ratings, max_picks=max_picks), None
    except EngineError as exc:
        return Picks(np.zeros(0, np.int64), None), plain(one_line(exc))


@st.cache_data(max_entries=256, show_spinner=False)
def pick_recommendations(
    checkpoint: str, spec: str, items: tuple[int, ...], ratings: tuple[float, ...] | None, k: int
) -> pd.DataFrame:
    """One run's top-`k` for a new user folded in from `items` (see `engine.be_user`)."""
    picks = Picks(np.asarray(items, np.int64), None if ratings is None else np.asarray(ratings, np.float64))
    return be_user.recommend_for_picks(get_model(checkpoint, spec), get_dataset(spec), picks, k)


@st.cache_data(max_entries=64, show_spinner=False)
def pick_map(checkpoint: str, spec: str, items: tuple[int, ...], ratings: tuple[float, ...] | None):
    """The users' PCA map of one run with the new user on it (`engine.be_user.UserMap`), or None
    where the model's folded state is not a user embedding."""
    picks = Picks(np.asarray(items, np.int64), None if ratings is None else np.asarray(ratings, np.float64))
    with friendly_errors():
        return be_user.embedding_point(get_model(checkpoint, spec), picks)


def held_out_test(checkpoint: str, spec: str, user_idx: int) -> np.ndarray:
    """The user's held-out test item(s) in the split `checkpoint` was evaluated on."""
    return explore.held_out_items(get_splits(checkpoint, spec).test, user_idx)


@st.cache_data(max_entries=64, show_spinner=False)
def what_if(checkpoint: str, spec: str, user_idx: int, remove: tuple[int, ...], add: tuple[int, ...], k: int):
    """One run's list for a real user before and after editing their training history
    (`engine.what_if.WhatIf`), with the held-out test item's rank in both."""
    model = get_model(checkpoint, spec)
    test = held_out_test(checkpoint, spec, user_idx)
    history = np.sort(model.seen_[user_idx].indices.astype(np.int64))
    return what_if_lib.what_if(
        model, get_dataset(spec), history, remove=remove, add=add, test_item=int(test[0]) if len(test) else None, k=k
    )


@st.cache_data(max_entries=4096, show_spinner=False)
def poster(spec: str, item_idx: int) -> str | None:
    """The item's thumbnail as a small data URI (a neutral placeholder for an item without a
    picture), None where the dataset has no images. Thumbnails are made once into the data
    folder's cache, so a page of 60 pictures reads 60 files of a few kB."""
    return explore.thumbnail_uri(get_dataset(spec), item_idx, DATA_DIR / "cache" / "thumbnails")


@st.cache_data(max_entries=8)
def item_choices(spec: str) -> tuple:
    """``(item indices by popularity, their labels)`` for the item picker."""
    ds = get_dataset(spec)
    order = explore.items_by_popularity(ds)
    return order, explore.item_labels(ds)[order]


def can_show_similar(checkpoint: str, spec: str) -> bool:
    """Whether the checkpoint's model has item neighbours (False where it cannot load)."""
    try:
        return bool(_capabilities(checkpoint, spec)["similar_items"])
    except EngineError:
        return False


@st.cache_data(max_entries=64, show_spinner=False)
def _capabilities(checkpoint: str, spec: str) -> dict:
    return get_model(checkpoint, spec).capabilities()


@st.cache_data(max_entries=512)
def similar_items(checkpoint: str, spec: str, item_idx: int, k: int) -> pd.DataFrame:
    """The `k` nearest items of one item under one checkpoint, ranked, with metadata."""
    items, scores = query.similar_to(get_model(checkpoint, spec), item_idx, k)
    return explore.item_frame(get_dataset(spec), items, scores)


def compare_table(spec: str) -> pd.DataFrame:
    """Every run of `spec` (one row each) with its metrics and fit time (not cached, see
    `runs_table`)."""
    return explore.compare_table(runs_table(spec))


def seed_summary(spec: str) -> pd.DataFrame:
    """Runs of `spec` that differ only in their seed: mean and sd per setting
    (`engine.explore.seed_summary`; not cached, like `runs_table`)."""
    return explore.seed_summary(runs_table(spec))


@st.cache_data(max_entries=16, show_spinner="Comparing the top-10 lists of every user...")
def user_overlap(checkpoint_a: str, checkpoint_b: str, spec: str, k: int = 10) -> pd.DataFrame:
    """Every user with the overlap of two checkpoints' top-`k` lists, least overlap first."""
    ds = get_dataset(spec)
    users = np.arange(ds.n_users)
    overlap = explore.topk_overlap(get_model(checkpoint_a, spec), get_model(checkpoint_b, spec), users, k)
    return explore.disagreements(ds, users, overlap)


@st.cache_data(max_entries=32, show_spinner=False)
def list_differences(checkpoint_a: str, checkpoint_b: str, spec: str, users: tuple[int, ...], k: int = 10) -> list:
    """Per user, ``(items only in A's top-k, items only in B's)`` (`engine.explore.list_differences`)."""
    return explore.list_differences(get_model(checkpoint_a, spec), get_model(checkpoint_b, spec), users, k)


# ---- models ------------------------------------------------------------------------------------
# Models page (training worker, runs table) and the Data page's CSV upload. Training runs on a
# process-wide `JobManager` thread, so it survives page switches and reloads; the page only
# submits jobs and reads snapshots.

UPLOAD_ROLES = ("user", "item", "rating", "timestamp")


@st.cache_resource(max_entries=4)
def _job_manager(data_dir: str) -> JobManager:
    clean_leftover_checkpoints(data_dir)  # once per process, before its worker saves anything
    return JobManager(data_dir)


def clean_leftover_checkpoints(data_dir: str) -> list[Path]:
    """Remove what killed trainings left in the data folder's checkpoints (see
    `engine.store.clean_checkpoints`), logging each folder; an unusable runs database only
    skips it with a warning (the pages that read runs report it)."""
    log = logging.getLogger(__name__)
    try:
        removed = clean_checkpoints(data_dir)
    except (EngineError, OSError) as exc:
        log.warning("leftover checkpoints not cleaned: %s", one_line(exc))
        return []
    for path in removed:
        log.info("removed leftover checkpoint folder %s", path)
    return removed


def job_manager() -> JobManager:
    """The training worker of the current data folder (one per process, shared by sessions)."""
    return _job_manager(str(DATA_DIR))


@st.cache_data(max_entries=1)
def model_catalog() -> list[dict]:
    """Every registered model with its description, defaults and parameter ranges."""
    return describe_models()


# ---- who may do what: the operator, and each visitor's session ----------------------------------
# A visitor cancels only the jobs their session started and deletes only the runs it created;
# the operator (see `operator_mode`) may do both to anything, as on a personal machine.

SESSION_KEY = "session_owner"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def session_owner() -> str:
    """This browser tab's token, recorded on the jobs it starts. A random token kept in
    `st.session_state`: it survives page switches, not a reload (a reload is a new session).
    Streamlit's own session id would do, but every AppTest shares one."""
    if SESSION_KEY not in st.session_state:
        st.session_state[SESSION_KEY] = secrets.token_hex(8)
    return st.session_state[SESSION_KEY]


def operator_mode() -> bool:
    """Whether every session has the operator's full control: ``RECSYS_OPERATOR=1`` or ``0``;
    unset, on when the server listens on this machine only (``server.address`` 127.0.0.1, as
    ``.streamlit/config.toml`` sets it), off once it is shared (``--server.address 0.0.0.0``)."""
    value = os.environ.get("RECSYS_OPERATOR", "").strip()
    if value:
        return value not in ("0", "false", "no", "off")
    return (st.get_option("server.address") or "") in _LOOPBACK


def _acting_as() -> str | None:
    """The owner to check jobs and runs against: None (anything) for the operator."""
    return None if operator_mode() else session_owner()


def visitors_may_delete() -> bool:
    """False when the operator turned deleting off for visitors (``RECSYS_VISITOR_DELETE=0``)."""
    return os.environ.get("RECSYS_VISITOR_DELETE", "1").strip() not in ("0", "false", "no", "off")


def may_delete(run_id: int) -> bool:
    """Whether this session may delete run `run_id`: the operator any; a visitor only a run
    their session trained since the server started (kept in memory, not across a restart)."""
    who = _acting_as()
    if who is None:
        return True
    return visitors_may_delete() and int(run_id) in job_manager().created_by(who)


def why_not_delete() -> str:
    """One line on why the Delete button is missing, for a visitor."""
    if not visitors_may_delete():
        return "Deleting runs is turned off on this server."
    return "You can delete only the runs this browser tab trained since the server started."


def start_training(spec: str, model: str, params: dict) -> int:
    """Queue one training run on the (cached) dataset `spec`, owned by this session; returns the
    job id. A bad parameter or dataset is a one-line `st.error` and the page stops."""
    with friendly_errors():
        return job_manager().submit(get_dataset(spec), model, params, owner=session_owner()).id


# ---- the demo: quick runs of every kind, so that every page has something to show ----------------


def demo_plan(spec: str) -> list[demo.DemoRun]:
    """The demo's runs for `spec` (`engine.demo.demo_plan`), the estimate scaled to its size."""
    with friendly_errors():
        interactions = len(get_dataset(spec).interactions)
    return demo.demo_plan(spec, data_dir=DATA_DIR, interactions=interactions)


def demo_todo(spec: str) -> tuple[list[demo.DemoRun], list[demo.DemoRun]]:
    """``(to train, already there)`` of the demo on `spec`: runs that have a quick run on disk,
    or a quick job queued or running, are not trained twice."""
    busy = [(j["dataset"], j["model"]) for j in training_jobs() if j["quick"] and j["status"] in ("queued", "running")]
    return demo.split_done(demo_plan(spec), runs_table(), busy)


def start_demo(spec: str) -> dict:
    """Queue what the demo on `spec` still lacks, as quick runs: ``{"queued": [models],
    "skipped": [models], "seconds": estimate}``."""
    todo, skipped = demo_todo(spec)
    with friendly_errors():
        demo.prepare_visual(DATA_DIR)  # light settings only: a small catalogue, now
        manager = job_manager()
        for dataset in dict.fromkeys(run.dataset for run in todo):
            runs = [(run.model, run.params) for run in todo if run.dataset == dataset]
            # The dataset already loaded for the page is handed over; visual-synthetic is loaded
            # (generated the first time) on the training thread.
            manager.submit_many(get_dataset(dataset) if dataset == spec else dataset, runs, quick=True,
                                owner=session_owner())
    return {
        "queued": [f"{run.model} on {run.dataset}" for run in todo],
        "skipped": [f"{run.model} on {run.dataset}" for run in skipped],
        "seconds": demo.total_seconds(todo),
    }


def demo_progress(spec: str) -> dict:
    """Where the queued quick jobs stand (`engine.demo.progress`), with the estimate of what
    is left from the demo plan of `spec`."""
    jobs = [job for job in training_jobs() if job["quick"]]
    return demo.progress(jobs, demo_plan(spec))


about = demo.about  # an estimate in words ("about 2 minutes")


def starter_models() -> list[str]:
    return [model for model, _ in demo.STARTER_SET]


def empty_page_hint(spec: str, need: str) -> tuple[str, str]:
    """What an empty page says, and which page it links to: ``(text, page)``.

    While the demo is being prepared, the page fills in when its run finishes; with no run on
    `spec` yet, the way in is the demo on the Data page; otherwise training the model that is
    missing on the Models page.
    """
    missing = f"This page needs {need}, and {code(spec)} has none yet."
    state = demo_progress(spec)
    if state["active"]:
        return (f"{missing} The demo is being prepared ({state['finished']} of {state['total']} runs done, "
                "progress on the Data page): open this page again when it is ready.", DATA_PAGE)  # fmt: skip
    if runs_table(spec).empty:
        return (f"{missing} Press **Prepare the demo** on the Data page: quick runs of every kind of model, "
                f"{about(demo.total_seconds(demo_todo(spec)[0]))}.", DATA_PAGE)  # fmt: skip
    return f"{missing} Train one on the Models page.", MODELS_PAGE


DATA_PAGE, MODELS_PAGE = "app_pages/data.py", "app_pages/models.py"


def attention_hint(spec: str) -> str:
    """What the Visual attention page says on a dataset without images: which one to pick, and
    whether the demo still has to train its acf there."""
    visual = demo.VISUAL_DATASET
    text = f"{code(spec)} has no item images. Pick **{visual}** in the sidebar's Dataset box"
    if not demo.visual_ready(DATA_DIR):
        text += " (generated the first time it is picked, in a few seconds)"
    runs = runs_table(visual)
    attentive = runs["model"].map(lambda m: model_has(m, "attention")).astype(bool)
    if not runs[attentive & (runs["checkpoint_status"] == "ok")].empty:
        text += ": its acf run is ready."
    elif any(j["quick"] and model_has(j["model"], "attention") and j["status"] in ("queued", "running")
             for j in training_jobs()):  # fmt: skip
        text += " when the demo being prepared has trained its acf (progress on the Data page)."
    else:
        text += ", then press **Prepare the demo** on the Data page (or train an acf on the Models page)."
    return text + " Or attach a folder of item pictures in the sidebar's **Item pictures** box and train an acf on it."


def training_jobs() -> list[dict]:
    """Snapshots of every remembered job, oldest first (see `engine.jobs.Job.snapshot`), with
    ``mine``: whether this session may cancel it (its own job, or the operator)."""
    who = _acting_as()
    snapshots = [job.snapshot() for job in job_manager().jobs()]
    return [{**snap, "mine": may_touch(snap["owner"], who)} for snap in snapshots]


def cancel_job(job_id: int) -> bool:
    """Cancel a job of this session (any job for the operator); False if it may not or has ended."""
    return job_manager().cancel(job_id, owner=_acting_as())


def cancel_all_jobs() -> int:
    """Cancel this session's queued and running jobs (every job for the operator)."""
    return job_manager().cancel_all(owner=_acting_as())


def clear_finished_jobs() -> int:
    return job_manager().clear_finished()


job_history = history  # a job's events as a table (epoch, phase, loss, val_ndcg@10, seconds)
jobs_table = job_table  # snapshots as one row per job, for the jobs list


def runs_overview(spec: str) -> pd.DataFrame:
    """The runs of `spec` for the Models page: id, model, ``quick run`` (ticked for the demo's
    light settings), dataset, params (one text column), every metric, fit seconds, created and
    whether the checkpoint is still on disk."""
    table = runs_table(spec)
    param_cols = [c for c in table.columns if c.startswith("params.")]
    metric_cols = [c for c in table.columns if c not in param_cols and c not in _RUN_COLUMNS]
    out = table[["id", "model"]].copy()
    out["quick run"] = table["quick"].astype(bool)
    out["dataset"] = table["dataset"]
    out["params"] = [
        ", ".join(f"{c[len('params.'):]}={_param_text(v)}" for c, v in zip(param_cols, row) if not _missing(v))
        for row in table[param_cols].itertuples(index=False, name=None)
    ]
    out[metric_cols] = table[metric_cols]
    out["fit_seconds"] = table["fit_seconds"]
    out["created"] = table["created"]
    out["checkpoint"] = table["checkpoint_status"]
    return out


_RUN_COLUMNS = ("id", "created", "dataset", "model", "quick", "fit_seconds", "checkpoint", "checkpoint_status")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _param_text(value) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def delete_run(run_id: int) -> None:
    """Remove a run and its checkpoint directory (only a folder under the data folder's
    checkpoints, see `RunsDB.delete`). A run this session may not delete is one `st.error`
    line, and the page stops."""
    if not may_delete(run_id):
        st.error(f"Run #{int(run_id)} was not trained in this browser tab: {why_not_delete()}", icon=":material/block:")
        st.stop()
    with friendly_errors():
        runs_db().delete(int(run_id), remove_checkpoint=True)


def gone_runs(ids) -> list[int]:
    """The run ids among `ids` (strings from a URL) that no longer exist: deleted, here or
    from another session. Non-numbers are not run ids and are left out."""
    wanted = [int(i) for i in map(str, ids) if i.isascii() and i.isdigit()]
    if not wanted:
        return []
    known = set(runs_table()["id"].astype(int))
    return [i for i in wanted if i not in known]


# ---- runs in use: which tab has which runs selected ------------------------------------------------
# So that the Models page can warn before deleting a run another tab is showing. Kept in the
# server's memory only; each page's model picker refreshes its tab's entry on every run, and an
# entry not refreshed for `IN_USE_TTL` seconds (a closed or idle tab) is forgotten.

IN_USE_TTL = 600.0
IN_USE_MAX = 2000  # (tab, picker) entries kept at most: the oldest go first


class RunsInUse:
    """Which runs each (session, picker) uses, expiring after `ttl` seconds without a refresh,
    at most `max_entries` entries (the least recently refreshed are dropped). Thread-safe:
    every session's script thread records here."""

    def __init__(self, ttl: float = IN_USE_TTL, max_entries: int = IN_USE_MAX, clock=time.monotonic):
        self.ttl, self.max_entries, self._clock = ttl, max_entries, clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, frozenset[int]]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, owner: str, picker: str, run_ids) -> None:
        """Session `owner`'s picker `picker` now shows `run_ids` (replacing what it showed)."""
        ids = frozenset(int(i) for i in run_ids)
        with self._lock:
            self._entries.pop((owner, picker), None)
            if ids:
                self._entries[(owner, picker)] = (self._clock(), ids)
            self._expire()

    def used_elsewhere(self, owner: str) -> set[int]:
        """The runs some other session's picker showed within the last `ttl` seconds."""
        with self._lock:
            self._expire()
            return {i for (who, _), (_, ids) in self._entries.items() if who != owner for i in ids}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _expire(self) -> None:
        # Oldest first (`record` moves an entry to the end), so stop at the first fresh one.
        oldest_kept = self._clock() - self.ttl
        while self._entries:
            key, (seen, _) = next(iter(self._entries.items()))
            if seen >= oldest_kept and len(self._entries) <= self.max_entries:
                break
            del self._entries[key]


@st.cache_resource(max_entries=4)
def _runs_in_use(data_dir: str) -> RunsInUse:
    return RunsInUse()  # per data folder: run ids are numbers of that folder's runs.sqlite


def record_runs_in_use(picker: str, run_ids) -> None:
    """Note that this tab's picker `picker` shows `run_ids` (see `runs_in_use_elsewhere`)."""
    _runs_in_use(str(DATA_DIR)).record(session_owner(), picker, run_ids)


def runs_in_use_elsewhere() -> set[int]:
    """The runs another browser tab has selected in a page's picker within the last ten minutes."""
    return _runs_in_use(str(DATA_DIR)).used_elsewhere(session_owner())


def upload_limit_mb() -> int | None:
    """The uploader's size limit in MB: the operator's ``RECSYS_UPLOAD_MAX_MB``, within the
    server's ``server.maxUploadSize`` (which refuses bigger requests whatever the widget says).
    None for a malformed setting: reading the file then reports it in one line."""
    try:
        limit = upload_limits()[0]
    except EngineError:
        return None
    return min(limit, int(st.get_option("server.maxUploadSize")))


def upload_columns(content, name: str) -> list[str] | None:
    """The header of an uploaded CSV (bytes or Streamlit's upload object, read without copying
    it), or None after a one-line `st.error` (also for a file over the operator's size limit)."""
    try:
        return read_header(content, name=name)
    except EngineError as exc:
        st.error(plain(one_line(exc)), icon=":material/error:")
        return None


def upload_guess(columns: list[str]) -> dict:
    """Role -> column the loader would pick by name (``userId``, ``movieId``, ...), else None."""
    return guess_mapping(columns)


def save_uploaded_csv(content, name: str, mapping: dict) -> str | None:
    """Save the mapped upload under ``DATA_DIR/uploads/`` and return its ``csv:PATH`` spec, or
    None after a one-line `st.error` (nothing is written then)."""
    try:
        path = save_upload(content, mapping, DATA_DIR / "uploads", name=name)
    except EngineError as exc:
        st.error(plain(one_line(exc)), icon=":material/error:")
        return None
    return f"csv:{path}"


# ---- embeddings ----------------------------------------------------------------------------------
# Projections are cached twice: on disk by engine.projection (keyed by the checkpoint's
# model.json, so a retrained model is never shown an old picture) and in memory by cache_data.


def projection_cache_dir() -> Path:
    return DATA_DIR / "cache" / "projections"


def run_has(ability: str):
    """A picker filter (``accept=``): runs whose model declares `ability` (``"embeddings"``,
    ``"fold_in"``, ``"attention"``, ``"feature_view"``), read from the registry class without
    loading the checkpoint (the picker asks this of every run)."""
    return lambda run: model_has(run["model"], ability)


def may_have_embeddings(run: dict) -> bool:
    """Whether a run's model class has embeddings at all (see `run_has`)."""
    return model_has(run["model"], "embeddings")


def embedding_kinds(run: dict, spec: str) -> list[str]:
    """Which embeddings a run's fitted model has: a subset of ``["items", "users"]`` (empty when
    the checkpoint cannot be loaded)."""
    try:
        caps = get_model(run["checkpoint"], spec).capabilities()
    except EngineError:
        return []
    return [what for what in ("items", "users") if caps.get(f"{what[:-1]}_embeddings")]


def embedding_matrix(checkpoint: str, spec: str, what: str) -> np.ndarray:
    model = get_model(checkpoint, spec)
    return model.item_embeddings() if what == "items" else model.user_embeddings()


def projection_key(checkpoint: str, what: str, method: str, dims: int, params: dict) -> str:
    with friendly_errors():
        return projections.projection_key(checkpoint, what, method, dims, params)


def projection_on_disk(key: str) -> bool:
    """Whether a projection is already on disk (the page then skips its progress box)."""
    return projections.cache_file(projection_cache_dir(), key).is_file()


def embedding_projection(
    checkpoint: str, spec: str, what: str, method: str, dims: int, params: dict, key: str, progress=None
) -> dict:
    """``{"coords", "explained_variance", "seconds", "from_cache"}`` of one projection.

    `key` (from `projection_key`) changes with the checkpoint, so it also keys the memory cache.
    When the projection is not on disk yet and `progress` is given, it is computed here, outside
    any cache, so that `progress(event)` (the engine's stage events) may update the page.
    """
    if progress is not None and not projection_on_disk(key):
        with friendly_errors():
            result = projections.cached_projection(
                embedding_matrix(checkpoint, spec, what), method, dims, params=params,
                cache_dir=projection_cache_dir(), key=key, callback=progress,
            )  # fmt: skip
        return _projection_dict(result)
    with friendly_errors():
        return _stored_projection(checkpoint, spec, what, method, dims, params, key)


@st.cache_data(max_entries=16, show_spinner=False)
def _stored_projection(checkpoint: str, spec: str, what: str, method: str, dims: int, params: dict, key: str) -> dict:
    result = projections.cached_projection(
        embedding_matrix(checkpoint, spec, what), method, dims, params=params,
        cache_dir=projection_cache_dir(), key=key,
    )  # fmt: skip
    return _projection_dict(result)


def _projection_dict(result) -> dict:
    return {
        "coords": result.coords,
        "explained_variance": result.explained_variance_ratio,
        "seconds": result.seconds,
        "from_cache": result.from_cache,
    }


@st.cache_data(max_entries=16, show_spinner="Clustering embeddings...")
def embedding_clusters(checkpoint: str, spec: str, what: str, k: int, key: str) -> np.ndarray:
    """k-means labels in the original embedding space (`key` ties them to the checkpoint)."""
    return projections.kmeans_labels(embedding_matrix(checkpoint, spec, what), k)


def embedding_neighbours(checkpoint: str, spec: str, what: str, index, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Cosine neighbours in the original embedding space of the rows in `index`."""
    with friendly_errors():
        return projections.nearest_neighbours(embedding_matrix(checkpoint, spec, what), index, k)


@st.cache_data(max_entries=8)
def embedding_point_table(spec: str, what: str) -> pd.DataFrame:
    """What the points can be coloured by and named with (`engine.projection.point_table`)."""
    return projections.point_table(get_dataset(spec), what)


def embedding_user_marks(checkpoint: str, spec: str, raw_id: str, k: int = 10) -> dict | None:
    """The user to highlight: ``{"user_idx", "history", "recommendations"}`` (item indices;
    history is every item the user interacted with, recommendations the model's top-k). An
    unknown id is an `st.error` naming it and None (the page goes on without highlights)."""
    ds = get_dataset(spec)
    try:
        u = ds.user_index(raw_id)
    except UnknownIdError as exc:
        st.error(f"{plain(one_line(exc))}. Clear the user box or type another id.", icon=":material/person_off:")
        return None
    inter = ds.interactions
    history = np.unique(inter["item_idx"].to_numpy()[inter["user_idx"].to_numpy() == u])
    with friendly_errors():
        recs, _ = query.recommend_for(get_model(checkpoint, spec), ds, u, k)
    return {"user_idx": u, "history": history, "recommendations": recs}


# ---- visual attention ----------------------------------------------------------------------------
# ACF's attention read-out (alpha over the profile, beta over each image's 7x7 cells), drawn on
# the item images server-side, and checked against the generator's truth on visual-synthetic.


ATTENTION_VIEWS = {"raw": "Image", "overlay": "Attention overlay", "truth": "Ground-truth motif cells"}


def has_images(spec: str) -> bool:
    """Whether the dataset carries item pictures (a visual dataset, or ``+images:DIR``)."""
    return images_lib.has_images(get_dataset(spec))


def has_attention_truth(spec: str) -> bool:
    return attention_lib.has_ground_truth(get_dataset(spec))


def attention_users(checkpoint: str, spec: str) -> list[str]:
    """Raw ids of the users with a test item in the checkpoint's split (the ones the fidelity
    figures average over), followed by the rest."""
    ds = get_dataset(spec)
    tested = np.zeros(ds.n_users, bool)
    tested[get_splits(checkpoint, spec).test.user_idx] = True
    return [*ds.user_ids[tested].tolist(), *ds.user_ids[~tested].tolist()]


@st.cache_data(max_entries=4, show_spinner="Scoring attention against the ground truth...")
def attention_fidelity(checkpoint: str, spec: str) -> dict:
    """`engine.attention.attention_fidelity` over the test users of `spec` (cached per run)."""
    with friendly_errors():
        test = get_splits(checkpoint, spec).test
        return attention_lib.attention_fidelity(get_model(checkpoint, spec), get_dataset(spec), test)


def user_attention(checkpoint: str, spec: str, user_idx: int, k: int = 10) -> dict:
    """One user's attention and top-`k`, ready to draw (`engine.attention.user_attention`)."""
    ds = get_dataset(spec)
    model = get_model(checkpoint, spec)
    with friendly_errors():
        recommendations = query.recommend_for(model, ds, user_idx, k)
        return attention_lib.user_attention(model, ds, int(user_idx), recommendations)


def attention_image(spec: str, item_idx: int, grid=None, *, size: int = 224) -> Image.Image:
    """An item's image, with `grid` (a 7x7 attention or truth map) drawn over it when given."""
    with friendly_errors():
        image = load_image(get_dataset(spec), item_idx, size)
        return image if grid is None else attention_lib.attention_overlay(image, np.asarray(grid, np.float32))


# ---- explain ----------------------------------------------------------------------------------
# SHAP and LIME of the score of a model with the feature view (feature-mlp) for one (user,
# item) pair, and a global SHAP summary.
# The explainer (a k-means summary of 500 training pairs) is built once per checkpoint; a lock
# keeps two sessions from interleaving calls on it (LIME re-seeds its shared generator per call).


_EXPLAIN_LOCK = threading.Lock()
#: How many held-out test pairs the global summary explains (choices offered by the page).
GLOBAL_PAIRS = (50, 100, 200)


@st.cache_resource(max_entries=4, show_spinner="Summarising training pairs for the explainer...")
def get_explainer(checkpoint: str, spec: str) -> explain_lib.PairExplainer:
    return explain_lib.explainer_for(get_model(checkpoint, spec), get_splits(checkpoint, spec).train)


def explain_default_user(checkpoint: str, spec: str) -> str:
    """The first user with a held-out test item (so the default view is a real recommendation)."""
    ds, splits = get_dataset(spec), get_splits(checkpoint, spec)
    users = splits.test.user_idx
    return str(ds.user_ids[int(users[0]) if len(users) else 0])


@st.cache_data(max_entries=64, show_spinner=False)
def explain_candidates(checkpoint: str, spec: str, user_id: str, k: int = 10) -> list[dict]:
    """The user's top-`k` recommendations (``item_id``, ``title``, ``score``): the items the page
    offers to explain, best first."""
    with friendly_errors():
        ds = get_dataset(spec)
        user = ds.user_index(user_id)
        idx, scores = query.recommend_for(get_model(checkpoint, spec), ds, user, k)
    return [{"item_id": str(ds.item_ids[i]), "title": ds.title(i), "score": float(s)}
            for i, s in zip(idx, scores)]  # fmt: skip


def explain_item_title(spec: str, item_id: str) -> str:
    with friendly_errors():
        ds = get_dataset(spec)
        return ds.title(ds.item_index(item_id))


@st.cache_data(max_entries=64, show_spinner="Explaining with SHAP and LIME...")
def explain_pair(checkpoint: str, spec: str, user_id: str, item_id: str) -> dict:
    """SHAP and LIME of one pair, their agreement and each one's deletion ratio on this pair.

    Returns ``{"shap": Explanation dict, "lime": ..., "agreement": {"spearman",
    "top3_overlap"}, "deletion": {"shap", "lime"}}``; the embedding features' values are the
    raw user id and the item's title.
    """
    ds = get_dataset(spec)
    user, item = ds.user_index(user_id), ds.item_index(item_id)
    explainer = get_explainer(checkpoint, spec)
    with _EXPLAIN_LOCK:
        shap_exp, lime_exp = explainer.shap(user, item), explainer.lime(user, item)
        deletion = {}
        for e in (shap_exp, lime_exp):
            top, rand = explainer.deletion_changes([user], [item], [e.vector(explainer.features)])
            deletion[e.method] = explain_lib.deletion_ratio(top, rand)
    out = {"agreement": explain_lib.agreement(shap_exp, lime_exp), "deletion": deletion}
    for e in (shap_exp, lime_exp):
        e.values.update({explain_lib.USER_EMBEDDING: f"user {user_id}", explain_lib.ITEM_EMBEDDING: ds.title(item)})
        out[e.method] = e.to_dict()
    return out


def explain_verdict(result: dict) -> explain_lib.Verdict:
    """What to conclude from SHAP vs LIME on the pair of `explain_pair`'s `result`
    (`engine.explain.agreement_verdict`)."""
    return explain_lib.agreement_verdict(
        result["shap"]["contributions"], result["lime"]["contributions"], result["deletion"]
    )


#: Global summaries kept (least recently used dropped first).
GLOBAL_SUMMARIES_MAX = 8


@st.cache_resource
def _global_summaries() -> OrderedDict:
    """Global summaries by ``(checkpoint, spec, pairs)``, shared by every session.

    A plain bounded store rather than ``st.cache_data``: the summary takes seconds to minutes, so
    the page shows progress while it runs, and a cached function may not touch page elements
    (its cache replays them, and one created outside the function cannot be replayed).
    """
    return OrderedDict()


def explain_global(checkpoint: str, spec: str, pairs: int, progress=None) -> dict:
    """SHAP values of `pairs` held-out test pairs (seeded): ``{"long": frame (pair, feature,
    shap, value), "mean_abs": frame (feature, mean_abs), "method", "seconds",
    "max_additivity_error", "pairs"}``. Computed once per arguments; `progress(done, total)`
    is called only while computing. The frames are shared between sessions: read them only."""
    key, store = (checkpoint, spec, int(pairs)), _global_summaries()
    explainer = get_explainer(checkpoint, spec)
    users, items = explain_lib.background_pairs(get_splits(checkpoint, spec).test, int(pairs), random_state=0)
    with _EXPLAIN_LOCK:  # one computation at a time; a session waiting here may find it done
        if key not in store:
            result = explainer.global_shap(users, items, progress=progress)
            mean_abs = result.mean_abs
            store[key] = {
                "long": result.long_frame(),
                "mean_abs": pd.DataFrame({"feature": mean_abs.index, "mean_abs": mean_abs.to_numpy()}),
                "method": result.method,
                "seconds": result.seconds,
                "max_additivity_error": result.max_additivity_error,
                "pairs": len(users),
            }
            while len(store) > GLOBAL_SUMMARIES_MAX:
                store.popitem(last=False)
        store.move_to_end(key)
        return store[key]
