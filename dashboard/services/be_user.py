"""Be the user and What if: a new user folded in from picks, and a real user's edited history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from engine.explain import history_attention
from engine.explore import be_user
from engine.explore import views as explore
from engine.explore import what_if as what_if_lib
from engine.explore.be_user import Picks
from engine.errors import AbilityError, EngineError
from engine.runs.jobs import one_line

from dashboard.text import plain
from dashboard.services import checkpoints, datasets, errors


# ---- be the user -------------------------------------------------------------------------------
def picks_from_link(spec: str, picks: str | None, ratings: str | None, max_picks: int) -> tuple[Picks, str | None]:
    """The link's picks (`engine.explore.be_user.picks_from_link`) and None, or no picks and the
    problem as one line of text (the page shows it and goes on: its picker is the way out)."""
    try:
        return be_user.picks_from_link(datasets.get_dataset(spec), picks, ratings, max_picks=max_picks), None
    except EngineError as exc:
        return Picks(np.zeros(0, np.int64), None), plain(one_line(exc))


@st.cache_data(max_entries=16, show_spinner=False)
def example_picks(spec: str) -> tuple[int, ...]:
    """Three well-known items of different kinds, for a first try (`engine.explore.be_user.example_picks`)."""
    return tuple(int(i) for i in be_user.example_picks(datasets.get_dataset(spec)))


@st.cache_data(max_entries=256, show_spinner=False)
def pick_recommendations(
    checkpoint: str, spec: str, items: tuple[int, ...], ratings: tuple[float, ...] | None, k: int
) -> pd.DataFrame:
    """One run's top-`k` for a new user folded in from `items` (see `engine.explore.be_user`)."""
    picks = Picks(np.asarray(items, np.int64), None if ratings is None else np.asarray(ratings, np.float64))
    return be_user.recommend_for_picks(checkpoints.get_model(checkpoint, spec), datasets.get_dataset(spec), picks, k)


@st.cache_data(max_entries=64, show_spinner=False)
def pick_map(checkpoint: str, spec: str, items: tuple[int, ...], ratings: tuple[float, ...] | None):
    """The users' PCA map of one run with the new user on it (`engine.explore.be_user.UserMap`), or None
    where the model's folded state is not a user embedding."""
    picks = Picks(np.asarray(items, np.int64), None if ratings is None else np.asarray(ratings, np.float64))
    with errors.friendly_errors():
        return be_user.embedding_point(checkpoints.get_model(checkpoint, spec), picks)


@st.cache_data(max_entries=64, show_spinner=False)
def picks_attention(checkpoint: str, spec: str, items: tuple[int, ...]) -> pd.DataFrame | None:
    """Which picks the run's next recommendation for the new user attends to, first picked
    first (`engine.explain.history_attention.picks_attention`), or None where the model cannot
    attend over a folded-in list."""
    with errors.friendly_errors():
        model = checkpoints.get_model(checkpoint, spec)
        try:
            return history_attention.picks_attention(model, datasets.get_dataset(spec), np.asarray(items, np.int64))
        except AbilityError:
            return None


def held_out_test(checkpoint: str, spec: str, user_idx: int) -> np.ndarray:
    """The user's held-out test item(s) in the split `checkpoint` was evaluated on."""
    return explore.held_out_items(checkpoints.get_splits(checkpoint, spec).test, user_idx)


@st.cache_data(max_entries=64, show_spinner=False)
def what_if(checkpoint: str, spec: str, user_idx: int, remove: tuple[int, ...], add: tuple[int, ...], k: int):
    """One run's list for a real user before and after editing their training history
    (`engine.explore.what_if.WhatIf`), with the held-out test item's rank in both."""
    model = checkpoints.get_model(checkpoint, spec)
    test = held_out_test(checkpoint, spec, user_idx)
    history = explore.training_history(checkpoints.get_splits(checkpoint, spec).train, user_idx)  # oldest first
    return what_if_lib.what_if(
        model, datasets.get_dataset(spec), history, remove=remove, add=add, test_item=int(test[0]) if len(test) else None, k=k
    )
