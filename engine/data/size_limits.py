"""Size limits of generated datasets, checked by the generators before anything is allocated.

The operator raises a limit with its environment variable (``AxBxC``); a visitor cannot.
"""

from __future__ import annotations

import os
import re

from engine.errors import ParameterError


def size_limit(variable: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """The limit in environment variable `variable` (``AxBxC``, as many parts as `default`),
    else `default`. A malformed value is a `ParameterError` naming the variable."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return tuple(default)
    parts = re.split(r"\s*[xX]\s*", value)
    if len(parts) != len(default) or not all(p.isdigit() and int(p) > 0 for p in parts):
        example = "x".join(str(n) for n in default)
        raise ParameterError(
            f"{variable} must be {len(default)} positive whole numbers such as {example}, got {value!r}"
        )
    return tuple(int(p) for p in parts)


def check_size(what: str, names: tuple, sizes: tuple, variable: str, default: tuple[int, ...]) -> None:
    """Raise one `ParameterError` line when a size exceeds its limit, naming the limit and how
    the operator raises it. Called before anything is allocated."""
    limit = size_limit(variable, default)
    for name, size, most in zip(names, sizes, limit):
        if size > most:
            raise ParameterError(
                f"{what}: {size:,} {name} is over the limit of {most:,} (the operator can raise it with"
                f" {variable}={'x'.join(str(n) for n in limit)}, in the order {'x'.join(n.upper() for n in names)})"
            )
