"""Torch's intra-op thread count, set around a piece of work and restored after it: the run's
``threads`` setting around a training (:func:`torch_threads`; the agent's one thread for its
tiny tensors is :func:`fnas.agent.threads.single_thread`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["torch_threads", "MAX_THREADS"]

MAX_THREADS = 1024
"""The most threads a ``threads`` setting may ask for."""


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run torch ops on ``n`` intra-op threads, then restore the caller's setting; ``n`` 0 or
    None leaves the setting as it is (torch's default: one thread per core, unless
    ``OMP_NUM_THREADS`` or the caller set another).

    A proxy training on a small network gains little from more threads, and on a machine that
    runs other work their spin-waits thrash: ``fnas train mnas_default --task digits
    --epochs 1`` took 644 s wall and 122 CPU-s with torch's default on a loaded 2-core
    machine, against 157 s and 11 CPU-s with one thread (issue 36).
    """
    if not n:
        yield
        return
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
