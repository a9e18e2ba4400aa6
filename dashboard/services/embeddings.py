"""Embeddings page: projections (cached on disk and in memory), clusters, neighbours, highlights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from engine.explore import genre_groups
from engine.explore.genre_groups import NEIGHBOURS as GENRE_NEIGHBOURS, STANDS_OUT  # noqa: F401 (the section's words)
from engine.explore import projection as projections
from engine.explore.projection import OTHER_GENRES  # noqa: F401 (the figure draws them pale)
from engine.explore import views as explore
from engine.explore import query
from engine.errors import EngineError, UnknownIdError
from engine.runs.jobs import one_line

from dashboard.text import plain
from dashboard.services import checkpoints, datasets, errors, settings


# ---- embeddings ----------------------------------------------------------------------------------
# Projections are cached twice: on disk by engine.explore.projection (keyed by the checkpoint's
# model.json, so a retrained model is never shown an old picture) and in memory by cache_data.


def projection_cache_dir() -> Path:
    return settings.DATA_DIR / "cache" / "projections"



def embedding_kinds(run: dict, spec: str) -> list[str]:
    """Which embeddings a run's fitted model has: a subset of ``["items", "users"]`` (empty when
    the checkpoint cannot be loaded)."""
    try:
        caps = checkpoints.get_model(run["checkpoint"], spec).capabilities()
    except EngineError:
        return []
    return [what for what in ("items", "users") if caps.get(f"{what[:-1]}_embeddings")]


def embedding_matrix(checkpoint: str, spec: str, what: str) -> np.ndarray:
    model = checkpoints.get_model(checkpoint, spec)
    return model.item_embeddings() if what == "items" else model.user_embeddings()


def projection_key(checkpoint: str, what: str, method: str, dims: int, params: dict) -> str:
    with errors.friendly_errors():
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
        with errors.friendly_errors():
            result = projections.cached_projection(
                embedding_matrix(checkpoint, spec, what), method, dims, params=params,
                cache_dir=projection_cache_dir(), key=key, callback=progress,
            )  # fmt: skip
        return _projection_dict(result)
    with errors.friendly_errors():
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
    with errors.friendly_errors():
        return projections.nearest_neighbours(embedding_matrix(checkpoint, spec, what), index, k)


@st.cache_data(max_entries=8)
def embedding_point_table(spec: str, what: str) -> pd.DataFrame:
    """What the points can be coloured by and named with (`engine.explore.projection.point_table`)."""
    return projections.point_table(datasets.get_dataset(spec), what)


@st.cache_data(max_entries=8, show_spinner=False)
def genre_choices(spec: str) -> list[str]:
    """The genres a map can be coloured by, the one to offer first leading
    (`engine.explore.projection.genres_by_size`); empty for a catalogue without genres."""
    return projections.genres_by_size(datasets.get_dataset(spec))


@st.cache_data(max_entries=8, show_spinner=False)
def genre_colours(spec: str, genre: str) -> np.ndarray:
    """Each item's colour label for `genre` (`engine.explore.projection.genre_labels`)."""
    return projections.genre_labels(datasets.get_dataset(spec), genre)


@st.cache_data(max_entries=16, show_spinner="Finding each item's nearest neighbours...")  # ~3 s for 9,066 items
def genre_grouping(checkpoint: str, spec: str, fewest: int) -> pd.DataFrame:
    """Which genres the run's item vectors keep together, among the items with at least
    `fewest` interactions (the map's points): `engine.explore.genre_groups.genre_grouping`."""
    ds = datasets.get_dataset(spec)
    return genre_groups.genre_grouping(
        embedding_matrix(checkpoint, spec, "items"), ds.genre_matrix(), ds.genre_names,
        items=ds.item_popularity() >= fewest,
    )  # fmt: skip


def genre_to_colour(grouping: pd.DataFrame) -> str | None:
    """The genre the map colours first: the best-grouped one that leaves most of the map pale."""
    return genre_groups.genre_to_colour(grouping, max_share=projections.DEFAULT_GENRE_SHARE)


def embedding_user_marks(checkpoint: str, spec: str, raw_id: str, k: int = 10) -> dict | None:
    """The user to highlight: ``{"user_idx", "history", "recommendations"}`` (item indices;
    history is every item the user interacted with, recommendations the model's top-k). An
    unknown id is an `st.error` naming it and None (the page goes on without highlights)."""
    ds = datasets.get_dataset(spec)
    try:
        u = ds.user_index(raw_id)
    except UnknownIdError as exc:
        st.error(f"{plain(one_line(exc))}. Clear the user box or type another id.", icon=":material/person_off:")
        return None
    history = explore.user_items(ds, u)
    with errors.friendly_errors():
        recs, _ = query.recommend_for(checkpoints.get_model(checkpoint, spec), ds, u, k)
    return {"user_idx": u, "history": history, "recommendations": recs}
