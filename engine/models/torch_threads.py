"""torch's intra-op thread pool held at one thread for a block: small mini-batch steps run faster so."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def single_intra_op_thread():
    """Run a block with torch's intra-op pool at one thread, restoring it afterwards.

    A mini-batch step is ~30 small ops on (batch x factors) tensors: splitting each across
    threads gains little and costs a barrier per op, which on a busy machine (a dashboard
    serving pages, other fits) waits for every thread to be scheduled. Measured on a shared
    2-core machine: 0.2 s per ML-100k epoch with one thread, 1.5-5 s with two.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
