"""Callbacks: your code, run by the search after each evaluation and each policy update.

As Optuna's ``callbacks=``: pass them to ``Search.optimize(callbacks=[...])`` (or
``run_search``/``resume_search``). A callback is a :class:`Callback` (override either method)
or a plain function, called as ``fn(evaluation)`` after each evaluation. Raise
:class:`StopSearch` in one to end the search after the current batch: the run is then
``stopped`` (stop reason ``callback``) and resumable, like a run stopped with Ctrl-C.

::

    from fnas.search.callbacks import Callback, StopSearch

    class StopAt(Callback):
        def on_evaluation(self, run, evaluation):
            if evaluation.reward >= 0.95:
                raise StopSearch(f"reward {evaluation.reward:.3f} reached")

A ready one: :class:`fnas.search.tensorboard.TensorBoardCallback` writes the rewards, the best
reward so far and every update's metrics (``losses/*``...) for TensorBoard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Callback", "StopSearch", "dispatch"]


class StopSearch(Exception):  # noqa: N818  (a signal, as Optuna's TrialPruned)
    """Raised by a callback: end the search after the current batch (resumable)."""


class Callback:
    """Base class; both hooks do nothing unless overridden."""

    def on_evaluation(self, run: Any, evaluation: Any) -> None:
        """After each evaluation is recorded: ``run`` is the ``Experiment``, ``evaluation``
        the ``Evaluation`` (trained, cached or predicted)."""

    def on_update(self, run: Any, iteration: int, metrics: dict[str, Any]) -> None:
        """After each policy update is recorded, with the update's metrics."""


def dispatch(callbacks: Sequence[Callback | Callable[[Any], Any]], hook: str,
             *args: Any) -> str | None:
    """Call ``hook`` on every callback; the message of a :class:`StopSearch`, if one was
    raised (every callback still runs), else None."""
    stop = None
    for cb in callbacks:
        fn = getattr(cb, hook, None) if not _plain(cb) else (cb if hook == "on_evaluation"
                                                             else None)
        if fn is None:
            continue
        try:
            fn(*args) if not _plain(cb) else fn(args[-1])
        except StopSearch as e:
            stop = str(e) or type(cb).__name__
    return stop


def _plain(cb: Any) -> bool:
    return callable(cb) and not hasattr(cb, "on_evaluation") and not hasattr(cb, "on_update")
