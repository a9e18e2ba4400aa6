"""The runs database (written by the Models page's training jobs and the CLI)."""

from __future__ import annotations

from engine.runs.store import RunsDB

from dashboard.services import settings


def runs_db() -> RunsDB:
    """The runs database every page reads (written by the Models page and the CLI)."""
    return RunsDB(settings.DATA_DIR / "runs.sqlite")
