"""User explorer, Similar items and Compare: lists, histories, neighbours and overlaps (cached)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from engine.data import stats
from engine.explore import agreement, list_mix
from engine.explore.list_mix import POPULAR_SHARE  # noqa: F401 (the Compare page says the share)
from engine.explore import views as explore
from engine.explore import query
from engine.errors import EngineError
from engine.explain import history_attention as history_attention_lib
from engine.explain.history import because_you_liked, supports_history
from engine.runs.jobs import one_line

from dashboard.text import plain
from dashboard.services import checkpoints, datasets, settings


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
        return datasets.get_dataset(spec).user_index(raw_id)
    except EngineError as exc:
        st.error(f"{plain(one_line(exc))}. {way_out}", icon=":material/person_off:")
        st.stop()


def find_item(spec: str, raw_id: str) -> int | None:
    """Index of a raw item id, or None after an `st.error` naming it (the page goes on, so its
    item picker is the way out)."""
    try:
        return datasets.get_dataset(spec).item_index(raw_id)
    except EngineError as exc:
        st.error(f"{plain(one_line(exc))}. Pick an item by title below.", icon=":material/error:")
        return None


def recommendation_frame(checkpoint: str, spec: str, user_idx: int, items, scores, shared) -> pd.DataFrame:
    """One model's list for the user explorer, with the user's held-out items (in the split the
    checkpoint was evaluated on) and the catalogue's most popular items (`most_popular_items`) marked."""
    held = query.held_out(checkpoints.get_splits(checkpoint, spec), user_idx)
    return explore.recommendation_frame(datasets.get_dataset(spec), items, scores, held_out=held, shared=shared,
                                        popular=most_popular_items(spec))  # fmt: skip


@st.cache_data(max_entries=8, show_spinner=False)
def most_popular_items(spec: str) -> np.ndarray:
    """(n_items,) bool: the most popular items, `POPULAR_SHARE` of the catalogue by interactions
    (`engine.explore.list_mix.most_popular`): the lists' "popular" mark, and Compare's figure."""
    return list_mix.most_popular(datasets.get_dataset(spec).item_popularity())


@st.cache_data(max_entries=16, show_spinner=False)
def chance_level(checkpoint: str, spec: str, k: int = 10) -> dict[str, float] | None:
    """What a random order scores on the split and protocol `checkpoint` was evaluated on
    (`engine.explore.query.chance_level`), the floor under every run's metrics; None when the
    checkpoint cannot say (broken, or trained on another version of the data): the pages then
    go without the comparison rather than show an error for it."""
    try:
        return query.chance_level(checkpoint, datasets.get_dataset(spec), k)
    except EngineError:
        return None


def chance_for(runs: list[dict], spec: str, k: int = 10) -> dict[str, float] | None:
    """`chance_level` on the split of the first of `runs` (`checkpoints.loadable_runs`, newest
    first): the dashboard's runs share one split and protocol (a command-line run may set others)."""
    return chance_level(runs[0]["checkpoint"], spec, k) if runs else None


@st.cache_data(max_entries=8, show_spinner=False)
def how_tested(spec: str) -> dict:
    """The Data page's "How the models are tested": ``sizes`` of the evaluation split
    (`engine.data.stats.split_sizes`, today's split settings, as a run trained now gets) and
    ``history``, a typical user's interactions with the split of each (``user_id``, raw)."""
    ds = datasets.get_dataset(spec)
    splits = checkpoints.default_splits(spec)
    user = stats.typical_user(ds)
    return {"sizes": stats.split_sizes(splits), "user_id": str(ds.user_ids[user]),
            "history": explore.user_history(ds, user, splits)}  # fmt: skip


@st.cache_data(max_entries=8)
def activity_groups(spec: str) -> dict:
    """User indices of each activity level (light / medium / heavy thirds)."""
    return explore.activity_groups(datasets.get_dataset(spec))


def pick_user(spec: str, level: str, seed: int, avoid: int | None = None) -> str:
    """Raw id of a seeded random user of an activity level."""
    ds = datasets.get_dataset(spec)
    return str(ds.user_ids[explore.pick_user(activity_groups(spec), level, seed, avoid=avoid)])


@st.cache_data(max_entries=16, show_spinner=False)
def user_found(spec: str, checkpoint: str, level: str, seed: int, k: int = 10) -> str | None:
    """Raw id of a seeded random user of an activity level whose held-out test item is in
    `checkpoint`'s top-`k`, None when it finds no one's (`engine.explore.views.pick_user_found`)."""
    ds = datasets.get_dataset(spec)
    model, test = checkpoints.get_model(checkpoint, spec), checkpoints.get_splits(checkpoint, spec).test
    user = explore.pick_user_found(activity_groups(spec), level, seed, model, test, k)
    return None if user is None else str(ds.user_ids[user])


@st.cache_data(max_entries=64)
def user_history(checkpoint: str, spec: str, user_idx: int) -> pd.DataFrame:
    """One user's interactions, newest first, with the split each went to in `checkpoint`'s
    recorded split."""
    return explore.user_history(datasets.get_dataset(spec), user_idx, checkpoints.get_splits(checkpoint, spec))


@st.cache_data(max_entries=512)
def user_recommendations(
    checkpoint: str, spec: str, user_idx: int, k: int, exclude: str = query.DEFAULT_EXCLUDE
) -> tuple:
    """``(item_idx, scores)`` of one user's top-`k` under one checkpoint: the list
    ``python -m engine recommend`` prints (`engine.explore.query.recommend_for`; training items left out,
    held-out ones kept so the page can mark a hit)."""
    return query.recommend_for(checkpoints.get_model(checkpoint, spec), datasets.get_dataset(spec), user_idx, k, exclude=exclude)


@st.cache_data(max_entries=512, show_spinner=False)
def held_out_rank(checkpoint: str, spec: str, user_idx: int) -> tuple[int, int] | None:
    """``(rank, candidates)`` of the user's held-out test item under one checkpoint, on the split
    it was evaluated on (`engine.explore.query.held_out_rank`); None without one."""
    splits = checkpoints.get_splits(checkpoint, spec)
    return query.held_out_rank(checkpoints.get_model(checkpoint, spec), splits, user_idx)


@st.cache_data(max_entries=512, show_spinner=False)
def because(checkpoint: str, spec: str, user_idx: int, items: tuple[int, ...]) -> list[str] | None:
    """"because you liked ..." per item (three history titles each); None when the model cannot
    re-score a user from a history."""
    model = checkpoints.get_model(checkpoint, spec)
    if not supports_history(model):
        return None
    ds = datasets.get_dataset(spec)
    return [explore.because_text(ds, reasons) for reasons in because_you_liked(model, user_idx, list(items), k=3)]


@st.cache_data(max_entries=64, show_spinner=False)
def history_attention(checkpoint: str, spec: str, user_idx: int) -> pd.DataFrame:
    """Which past items the run's next recommendation for the user attends to, oldest first
    (`engine.explain.history_attention.history_attention`); for runs whose model has attention."""
    model = checkpoints.get_model(checkpoint, spec)
    return history_attention_lib.history_attention(model, datasets.get_dataset(spec), user_idx)


def genre_profile(spec: str, history, lists: dict) -> pd.DataFrame:
    """Genre shares of a history and of each list (`engine.explore.views.genre_profile`)."""
    return explore.genre_profile(datasets.get_dataset(spec), history, lists)


def most_attended(frame: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The `k` most attended items of a `history_attention` frame, with how far back each is
    (`engine.explain.history_attention.most_attended`)."""
    return history_attention_lib.most_attended(frame, k)


how_recent = history_attention_lib.how_recent


def attention_heads(frame: pd.DataFrame) -> list[str]:
    """The per-head columns of a `history_attention` frame (empty for a one-head model)."""
    return history_attention_lib.head_columns(frame)


#: Pictures for the first rows of a long table only (a history, the item table): each is a few kB in the page.
TABLE_POSTERS = 50


@st.cache_data(max_entries=4096, show_spinner=False)
def poster(spec: str, item_idx: int) -> str | None:
    """The item's thumbnail as a small data URI (a neutral placeholder for an item without a
    picture), None where the dataset has no images. Thumbnails are made once into the data
    folder's cache, so a page of 60 pictures reads 60 files of a few kB."""
    return explore.thumbnail_uri(datasets.get_dataset(spec), item_idx, settings.DATA_DIR / "cache" / "thumbnails")


@st.cache_data(max_entries=8)
def item_choices(spec: str) -> tuple:
    """``(item indices by popularity, their labels)`` for the item picker."""
    ds = datasets.get_dataset(spec)
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
    return checkpoints.get_model(checkpoint, spec).capabilities()


@st.cache_data(max_entries=512)
def similar_items(checkpoint: str, spec: str, item_idx: int, k: int) -> pd.DataFrame:
    """The `k` nearest items of one item under one checkpoint, ranked, with metadata and
    ``both``: how many users chose the item and that neighbour (`engine.explore.views.shared_users`)."""
    items, scores = query.similar_to(checkpoints.get_model(checkpoint, spec), item_idx, k)
    ds = datasets.get_dataset(spec)
    frame = explore.item_frame(ds, items, scores)
    frame["both"] = explore.shared_users(ds, item_idx, items)  # users who chose both: co-occurrence
    return frame


def compare_table(spec: str) -> pd.DataFrame:
    """Every run of `spec` (one row each) with its metrics and fit time (not cached, see
    `runs_table`)."""
    return explore.compare_table(checkpoints.runs_table(spec))


def seed_summary(spec: str) -> pd.DataFrame:
    """Runs of `spec` that differ only in their seed: mean and sd per setting
    (`engine.explore.views.seed_summary`; not cached, like `runs_table`)."""
    return explore.seed_summary(checkpoints.runs_table(spec))


@st.cache_data(max_entries=16, show_spinner="Comparing the top-10 lists of every user...")
def user_overlap(checkpoint_a: str, checkpoint_b: str, spec: str, k: int = 10) -> dict:
    """Two checkpoints' top-`k` lists over every user: ``"users"``, each user with the overlap
    of the two lists and whether each holds the user's held-out test item, least overlap first
    (`engine.explore.agreement.disagreements`); ``"items_a"`` / ``"items_b"``, how many lists
    hold each item; ``"chose_next"``, how many users chose each item next (run A's test split)."""
    ds = datasets.get_dataset(spec)
    users = np.arange(ds.n_users)
    test_a = checkpoints.get_splits(checkpoint_a, spec).test
    lists = agreement.compare_lists(
        checkpoints.get_model(checkpoint_a, spec), checkpoints.get_model(checkpoint_b, spec), users, k,
        held_out_a=test_a, held_out_b=checkpoints.get_splits(checkpoint_b, spec).test,
    )
    return {
        "users": agreement.disagreements(ds, users, lists["overlap"], found_a=lists["found_a"],
                                         found_b=lists["found_b"]),  # fmt: skip
        "items_a": lists["items_a"],
        "items_b": lists["items_b"],
        "chose_next": list_mix.held_out_counts(test_a.item_idx, ds.n_items),
    }


def popular_shares(spec: str, counts: dict[str, np.ndarray]) -> tuple[int, dict[str, float]]:
    """How many items are "the most popular" (`engine.explore.list_mix.POPULAR_SHARE` of the
    catalogue by interactions), and per name the share of its counted items among them."""
    popular = most_popular_items(spec)
    return int(popular.sum()), {name: list_mix.popular_share(c, popular) for name, c in counts.items()}


def genre_mix(spec: str, counts: dict[str, np.ndarray], order_by: str) -> pd.DataFrame:
    """Per genre, the share of each name's counted items that have it (`engine.explore.list_mix.genre_mix`)."""
    ds = datasets.get_dataset(spec)
    return list_mix.genre_mix(counts, ds.genre_matrix(), ds.genre_names, order_by=order_by)


@st.cache_data(max_entries=32, show_spinner=False)
def list_differences(checkpoint_a: str, checkpoint_b: str, spec: str, users: tuple[int, ...], k: int = 10) -> list:
    """Per user, ``(items only in A's top-k, items only in B's)`` (`engine.explore.agreement.list_differences`)."""
    model_a, model_b = checkpoints.get_model(checkpoint_a, spec), checkpoints.get_model(checkpoint_b, spec)
    return agreement.list_differences(model_a, model_b, users, k)
