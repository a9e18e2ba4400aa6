"""The Data page's CSV upload: size limit, header, guessed columns, saving."""

from __future__ import annotations

import streamlit as st

from engine.data.upload import guess_mapping, read_header, save_upload, upload_limits
from engine.errors import EngineError
from engine.runs.jobs import one_line

from dashboard.text import plain
from dashboard.services import settings


UPLOAD_ROLES = ("user", "item", "rating", "timestamp")


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
        path = save_upload(content, mapping, settings.DATA_DIR / "uploads", name=name)
    except EngineError as exc:
        st.error(plain(one_line(exc)), icon=":material/error:")
        return None
    return f"csv:{path}"
