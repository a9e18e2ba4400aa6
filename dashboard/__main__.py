"""``python -m dashboard [streamlit options]``: serve the dashboard for a class.

The same server as ``streamlit run dashboard/streamlit_app.py [options]``, started with Python's
small objects taken from the C allocator (``PYTHONMALLOC=malloc``). Python's own small-object
allocator keeps 1 MiB arenas mapped while any object in them lives, so after a class has left,
the few long-lived objects its tabs' page runs created keep many mostly empty arenas (39 MB for
6 tabs in `tools/memory_probe.py`'s figures); from glibc, the free pages between them go back to
the system at the next trim (`dashboard.session_cleanup`). The setting can only be chosen before
Python starts, hence this launcher: it replaces itself with Streamlit's process. An operator's
own ``PYTHONMALLOC`` is kept. docs/benchmarks.md, "Sharing under load", has the measurements.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

APP = Path(__file__).resolve().parent / "streamlit_app.py"
#: Python's allocator for the server (`PYTHONMALLOC`): glibc's, which `malloc_trim` reaches.
ALLOCATOR = "malloc"


def launch_command(options: Sequence[str], environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """``(argv, environment)`` of the Streamlit process serving the app with `options`."""
    env = dict(environ)
    env.setdefault("PYTHONMALLOC", ALLOCATOR)
    return [sys.executable, "-m", "streamlit", "run", str(APP), *options], env


def main(argv: Sequence[str] | None = None) -> None:
    command, env = launch_command(sys.argv[1:] if argv is None else argv, os.environ)
    os.execve(sys.executable, command, env)


if __name__ == "__main__":
    main()
