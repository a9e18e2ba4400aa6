"""How many threads the numeric libraries use, and how their idle workers wait, per entry point.

torch (and implicit, LightFM) run their parallel loops on a GNU OpenMP pool whose idle
workers *spin* by default (``OMP_WAIT_POLICY=ACTIVE``-like, for up to ~0.3 s) so that the next
parallel region starts a few microseconds sooner. That is a good bet on a machine a job has to
itself, and a disastrous one on a shared server: a fit runs thousands of small parallel ops per
second, every op ends at a barrier that waits for all its threads, and a spinning worker that
the kernel has preempted for another process's turn holds that barrier for a whole time slice.
On the shared 2-core machine that made NeuMF 20-30x slower than with one passive thread
(docs/benchmarks.md, "Shared cores"). Passive workers sleep instead of spinning, and
fewer threads than cores leave room for the other work, so a neighbour costs a fit a share of
the machine rather than a time slice per op.

The choice is made once per process, before torch is imported (libgomp reads
``OMP_WAIT_POLICY`` and ``OMP_NUM_THREADS`` when it starts; too late afterwards):

========================  ==============================================================
entry point               call
========================  ==============================================================
``python -m engine``      ``configure_process("cli")`` in `engine.__main__` (bench too)
dashboard server          ``configure_process("dashboard")`` at the top of streamlit_app
dashboard training job    ``use_in_this_thread()`` when the job thread starts
========================  ==============================================================

The operator's settings win over the defaults:

- ``RECSYS_THREADS``: threads for torch's intra-op pool (and OpenBLAS/MKL), a whole number
  from 1 to `MAX_THREADS` or ``auto`` (the role's default). Without it, an ``OMP_NUM_THREADS``
  already in the environment is honoured.
- ``OMP_WAIT_POLICY``: ``PASSIVE`` (the default here) or ``ACTIVE`` (the libraries' own
  spinning behaviour, for a machine a job has to itself).

Library code never calls `configure_process`: importing `engine` changes nothing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import MutableMapping

from engine.errors import ParameterError

THREADS_ENV = "RECSYS_THREADS"
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
WAIT_POLICIES = ("PASSIVE", "ACTIVE")
DEFAULT_WAIT_POLICY = "PASSIVE"
MAX_THREADS = 1024
#: Per entry point, the share of the CPUs its fits take by default (at least one thread).
#: The command line gets half: a one-off fit or bench should be quick, but on a shared server
#: the other half is someone else's. The dashboard gets a quarter: its process also serves
#: pages, and a classroom server runs several dashboards and trainings at once. On the 2-core
#: machine both mean one thread, which was faster there than two for NeuMF, BPR and the
#: feature MLP, alone and beside a busy process (docs/benchmarks.md, "Shared cores").
ROLE_SHARE = {"cli": 2, "dashboard": 4}
#: Thread counts that libraries read from the environment when they start.
COUNT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class ThreadPolicy:
    """What one process uses: `threads` for the intra-op pool, `wait_policy` for idle workers,
    and where each came from (``"RECSYS_THREADS"``, ``"OMP_NUM_THREADS"``, ``"default for cli"``,
    ...), for the bench's report and for error messages."""

    threads: int
    wait_policy: str
    threads_from: str
    wait_policy_from: str

    def as_dict(self) -> dict:
        return {"threads": self.threads, "wait_policy": self.wait_policy, "threads_from": self.threads_from,
                "wait_policy_from": self.wait_policy_from}


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask: a container's cpuset, ``taskset``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parse_threads(text: str, variable: str = THREADS_ENV) -> int | None:
    """``"4"`` -> 4; ``"auto"`` or empty -> None (the role's default); anything else: one line."""
    value = text.strip()
    if value.lower() in ("", "auto"):
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_THREADS:
        raise ParameterError(f"{variable} must be a whole number of threads from 1 to {MAX_THREADS} or 'auto', got {text!r}")
    return int(value)


def parse_wait_policy(text: str) -> str:
    """``"passive"`` -> ``"PASSIVE"``; anything but PASSIVE/ACTIVE: one line."""
    value = text.strip().upper()
    if value not in WAIT_POLICIES:
        raise ParameterError(f"{WAIT_POLICY_ENV} must be one of {', '.join(WAIT_POLICIES)}, got {text!r}")
    return value


def default_threads(role: str, cpus: int | None = None) -> int:
    """The role's share of the CPUs (see `ROLE_SHARE`), at least one thread."""
    if role not in ROLE_SHARE:
        raise ParameterError(f"unknown thread role {role!r} (valid: {', '.join(ROLE_SHARE)})")
    return max(1, (cpus or available_cpus()) // ROLE_SHARE[role])


def choose(role: str, environ: MutableMapping[str, str] | None = None, cpus: int | None = None) -> ThreadPolicy:
    """The policy for `role` given the environment: ``RECSYS_THREADS``, else ``OMP_NUM_THREADS``,
    else the role's default; ``OMP_WAIT_POLICY`` if set, else PASSIVE. Invalid values raise
    `ParameterError` with one line naming the variable."""
    environ = os.environ if environ is None else environ
    threads, threads_from = None, f"default for {role}"
    for variable in (THREADS_ENV, "OMP_NUM_THREADS"):
        if environ.get(variable, "").strip():
            threads = parse_threads(environ[variable], variable)
            if threads is not None:
                threads_from = variable
                break
    if threads is None:
        threads = default_threads(role, cpus)
    elif role not in ROLE_SHARE:
        default_threads(role)  # the same error for an unknown role, whatever the environment says
    wait = environ.get(WAIT_POLICY_ENV, "").strip()
    if wait:
        return ThreadPolicy(threads, parse_wait_policy(wait), threads_from, WAIT_POLICY_ENV)
    return ThreadPolicy(threads, DEFAULT_WAIT_POLICY, threads_from, "default")


_configured: ThreadPolicy | None = None


def configure_process(role: str, environ: MutableMapping[str, str] | None = None) -> ThreadPolicy:
    """Choose the policy for `role` and put it where the libraries will read it.

    Writes ``OMP_WAIT_POLICY`` and the thread counts into the environment (so libgomp,
    OpenBLAS and MKL start with them, and child processes inherit them) and, when torch is
    already imported, sets its intra-op pool size too. The wait policy only takes effect if
    this runs before the first import of torch (or implicit, LightFM): call it first thing.
    Idempotent; returns the policy, which `current` returns afterwards.
    """
    global _configured
    environ = os.environ if environ is None else environ
    policy = choose(role, environ)
    environ[WAIT_POLICY_ENV] = policy.wait_policy
    environ["OMP_NUM_THREADS"] = str(policy.threads)
    for variable in COUNT_VARIABLES[1:]:
        environ.setdefault(variable, str(policy.threads))
    _configured = policy
    use_in_this_thread(policy)
    return policy


def current() -> ThreadPolicy | None:
    """The policy `configure_process` set in this process, or None (library use: untouched)."""
    return _configured


def use_in_this_thread(policy: ThreadPolicy | None = None) -> None:
    """Size torch's intra-op pool for work started from this thread (a training job's thread).

    torch keeps one process-wide count, but a thread's OpenMP settings are fixed when it first
    runs a parallel op; setting the count again when a worker thread starts makes that thread
    use it whatever ran before. Does nothing before torch is imported (the environment set by
    `configure_process` applies then) or when no policy is configured.
    """
    policy = policy or _configured
    if policy is None or "torch" not in sys.modules:
        return
    import torch  # already loaded (checked above): this module must not be what loads it

    if torch.get_num_threads() != policy.threads:
        torch.set_num_threads(policy.threads)
