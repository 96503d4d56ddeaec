"""Torch's intra-op thread count, set around a piece of work and restored after it: one thread
for the agent's tiny tensors (:func:`single_thread`), the run's ``threads`` setting for a
training (:func:`torch_threads`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["single_thread", "torch_threads", "MAX_THREADS"]

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


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch ops on one intra-op thread, then restore the caller's setting.

    The controller's and critic's tensors are tiny (B x 42 decisions x 100 units): extra
    threads only add synchronisation, and on a loaded 2-core machine their spin-waits made one
    PPO update 60x slower (0.9 s instead of 15 ms per backward, measured while a rollout
    trained).
    """
    with torch_threads(1):
        yield
