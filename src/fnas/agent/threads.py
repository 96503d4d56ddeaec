"""One intra-op thread for the agent's tiny tensors (:func:`single_thread`); the run's
``threads`` setting around a training is :func:`fnas.tasks.threads.torch_threads`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fnas.tasks.threads import MAX_THREADS, torch_threads

__all__ = ["single_thread", "torch_threads", "MAX_THREADS"]


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
