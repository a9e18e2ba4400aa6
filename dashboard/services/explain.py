"""Explain page: SHAP and LIME of one (user, item) pair and a global SHAP summary."""

from __future__ import annotations

import threading
from collections import OrderedDict

import streamlit as st

from engine.explain import reports
from engine.explain import shap_lime as explain_lib
from engine.explore import query
from engine.explain.shap_lime import ITEM_EMBEDDING, USER_EMBEDDING  # noqa: F401 (the figures name them)

from dashboard.services import checkpoints, datasets, errors


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
    return explain_lib.explainer_for(checkpoints.get_model(checkpoint, spec), checkpoints.get_splits(checkpoint, spec).train)


def explain_default_user(checkpoint: str, spec: str) -> str:
    """The first user with a held-out test item (so the default view is a real recommendation)."""
    ds, splits = datasets.get_dataset(spec), checkpoints.get_splits(checkpoint, spec)
    users = splits.test.user_idx
    return str(ds.user_ids[int(users[0]) if len(users) else 0])


@st.cache_data(max_entries=64, show_spinner=False)
def explain_candidates(checkpoint: str, spec: str, user_id: str, k: int = 10) -> list[dict]:
    """The user's top-`k` recommendations (``item_id``, ``title``, ``score``): the items the page
    offers to explain, best first."""
    with errors.friendly_errors():
        ds = datasets.get_dataset(spec)
        user = ds.user_index(user_id)
        idx, scores = query.recommend_for(checkpoints.get_model(checkpoint, spec), ds, user, k)
    return [{"item_id": str(ds.item_ids[i]), "title": ds.title(i), "score": float(s)}
            for i, s in zip(idx, scores)]  # fmt: skip


def explain_item_title(spec: str, item_id: str) -> str:
    with errors.friendly_errors():
        ds = datasets.get_dataset(spec)
        return ds.title(ds.item_index(item_id))


@st.cache_data(max_entries=64, show_spinner="Explaining with SHAP and LIME...")
def explain_pair(checkpoint: str, spec: str, user_id: str, item_id: str) -> dict:
    """SHAP and LIME of one pair, their agreement and faithfulness
    (`engine.explain.reports.pair_report`), one pair at a time on the shared explainer."""
    ds = datasets.get_dataset(spec)
    user, item = ds.user_index(user_id), ds.item_index(item_id)
    explainer = get_explainer(checkpoint, spec)
    with _EXPLAIN_LOCK:
        return reports.pair_report(explainer, ds, user, item)


def explain_verdict(result: dict) -> explain_lib.Verdict:
    """What to conclude from SHAP vs LIME on the pair of `explain_pair`'s `result`
    (`engine.explain.shap_lime.agreement_verdict`)."""
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
    """SHAP values of `pairs` held-out test pairs (seeded; `engine.explain.reports.global_report`).
    Computed once per arguments; `progress(done, total)` is called only while computing. The
    frames are shared between sessions: read them only."""
    key, store = (checkpoint, spec, int(pairs)), _global_summaries()
    explainer = get_explainer(checkpoint, spec)
    test = checkpoints.get_splits(checkpoint, spec).test
    users, items = explain_lib.background_pairs(test, int(pairs), random_state=0)
    with _EXPLAIN_LOCK:  # one computation at a time; a session waiting here may find it done
        if key not in store:
            store[key] = reports.global_report(explainer, users, items, progress=progress)
            while len(store) > GLOBAL_SUMMARIES_MAX:
                store.popitem(last=False)
        store.move_to_end(key)
        return store[key]
