"""Errors the engine raises for bad input.

Every message is one line that names the problem and, where there is one, the valid choices,
so the CLI and the dashboard can show it as it is, without a traceback.
"""

from __future__ import annotations

from difflib import get_close_matches


class EngineError(Exception):
    """Base class: a user-facing problem with input (file, id, parameter, checkpoint)."""


class DatasetError(EngineError):
    """A dataset file is missing or malformed, or a dataset spec is unknown."""


class UnknownIdError(EngineError, KeyError):
    """A raw user or item id (or title) that the dataset does not contain."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ParameterError(EngineError, ValueError):
    """An unknown model, parameter name or a value outside its range."""


class CheckpointError(EngineError):
    """A checkpoint directory that is missing, incomplete or corrupt."""


class NotFittedError(EngineError, RuntimeError):
    """A model was asked to score before `fit` (or `load`)."""


class AbilityError(EngineError, NotImplementedError):
    """A model was asked for an optional ability it does not have (see `Recommender.abilities`)."""


def quoted(value, *, limit: int = 60) -> str:
    """`value` quoted for a one-line error message (``'abc'``), cut after `limit` characters
    with its length said (a 10,000-character id from a link is not echoed whole)."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def choices_hint(value: str, choices, *, limit: int = 8) -> str:
    """Return ' (did you mean X?; valid: a, b, c)' for one-line error messages."""
    choices = [str(c) for c in choices]
    close = get_close_matches(str(value), choices, n=1)
    shown = ", ".join(choices[:limit]) + (", ..." if len(choices) > limit else "")
    prefix = f"did you mean {close[0]!r}? " if close else ""
    return f" ({prefix}valid: {shown})"
