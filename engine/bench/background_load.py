"""A declared background load: N busy processes beside a measurement, always stopped afterwards.

A classroom server's fits run while it serves pages and other trainings; a fit that is fast
only on an idle machine is slow where it matters (issue 19 measured NeuMF 26x slower with one
busy neighbour). The bench reproduces that neighbour on demand (``bench --background-load N``):
each busy process is a plain Python loop, one core's worth of CPU-bound work with no memory
traffic to speak of, started before the measured fits and stopped after them, also when they
fail or are interrupted. Each also stops by itself when its parent goes away (a ``kill -9`` of
the bench leaves no spinner behind for long).
"""

from __future__ import annotations

import os
import subprocess
import sys

from engine.errors import ParameterError

#: More busy processes than this is a typo rather than a plan.
MAX_PROCESSES = 64

#: Spin in chunks of ~10-50 ms of work, checking between chunks that the parent still exists.
#: The parent's pid comes as an argument: it may be gone before the spinner has started.
SPINNER = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n    for _ in range(1_000_000):\n        pass\n"


def check_count(n) -> int:
    """`n` as a number of processes, 0 .. `MAX_PROCESSES`; anything else: one line."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_PROCESSES:
        raise ParameterError(f"background load must be a whole number of processes from 0 to {MAX_PROCESSES}, got {n!r}")
    return n


class BackgroundLoad:
    """Context manager running `n` busy processes while its block runs.

    >>> with BackgroundLoad(1):
    ...     model.fit(train)          # timed with one CPU-bound neighbour
    """

    def __init__(self, n: int):
        self.n = check_count(n)
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> "BackgroundLoad":
        try:
            for _ in range(self.n):
                self.processes.append(
                    subprocess.Popen([sys.executable, "-c", SPINNER, str(os.getpid())], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def running(self) -> int:
        """How many of the busy processes are alive."""
        return sum(p.poll() is None for p in self.processes)

    def stop(self) -> None:
        """Terminate every busy process and reap it (kill one that does not end within 5 s)."""
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
