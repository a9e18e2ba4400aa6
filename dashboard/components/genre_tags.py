"""Genres as coloured tags in a table: "Action|Adventure|Sci-Fi" as it is stored reads as three
chips, and each genre has the same colour in every table of the app."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def with_genre_tags(frame: pd.DataFrame, genres: list[str], column: str = "genres") -> pd.DataFrame:
    """A copy of `frame` whose `column` holds each row's genres as a list, keeping only the
    dataset's `genres` (`Dataset.genre_names`: markers such as "(no genres listed)" go)."""
    if column not in frame.columns:
        return frame
    known = set(genres)
    shown = frame.copy()
    shown[column] = [[g for g in v.split("|") if g in known] if isinstance(v, str) else [] for v in shown[column]]
    return shown


def genre_column(genres: list[str], label: str = "genres"):
    """The column config that draws `with_genre_tags` lists as chips; the colours follow the
    order of `genres` (the dataset's whole list), so a genre keeps its colour everywhere."""
    return st.column_config.MultiselectColumn(label, options=genres, color="auto", disabled=True)
