"""A ready callback that writes a search's curves for TensorBoard (``pip install
tensorboardX``, the ``tensorboard`` extra: ~90 kB, and protobuf).

::

    from fnas.search.tensorboard import TensorBoardCallback

    search.optimize(callbacks=[TensorBoardCallback("runs/tb")])
    # then: tensorboard --logdir runs/tb

Each run writes to its own folder, ``LOGDIR/RUN``, so that TensorBoard overlays runs.

- **Per evaluation**, at step ``iteration x batch + slot`` (a resumed run continues the same
  curves): ``search/reward`` (a real result: trained or cached, failures at the penalty
  reward), ``search/best_reward`` (the best real reward so far, over resumes) and
  ``search/accuracy``; a reward the critic predicted goes to ``search/predicted_reward``.
- **Per policy update**, at step ``iteration``: every numeric metric the strategy reports,
  under its own name (``losses/approx_kl``, ``losses/entropy``, ``screen/screened``,
  ``replay/c_mean``...), as ``fnas show`` and the store's ``updates`` table name them. Lists
  (a replay batch's importance weights) and text are left out.

Events are flushed after every update and by :meth:`TensorBoardCallback.close`.
"""

from __future__ import annotations

import math
import numbers
import uuid
from pathlib import Path
from typing import Any

from fnas.errors import ConfigError
from fnas.search.callbacks import Callback

__all__ = ["TensorBoardCallback"]


class TensorBoardCallback(Callback):
    """Writes scalars with tensorboardX's ``SummaryWriter``, one writer per run.

    Args:
        logdir: the folder TensorBoard reads (``tensorboard --logdir LOGDIR``).
        flush_secs: also flush at least this often (tensorboardX writes in the background).

    Raises:
        ConfigError: tensorboardX is not installed (the message says how to install it).
    """

    def __init__(self, logdir: str | Path = "runs/tensorboard", flush_secs: int = 30) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ConfigError("TensorBoardCallback needs tensorboardX: pip install "
                              "tensorboardX (fnas's tensorboard extra)") from None
        self._writer_cls, self.logdir, self.flush_secs = SummaryWriter, Path(logdir), flush_secs
        self._writers: dict[int, Any] = {}
        self._best: dict[int, float] = {}

    def _writer(self, run: Any) -> Any:
        w = self._writers.get(run.id)
        if w is None:
            # a suffix of its own: tensorboardX names files by the second, so a resume within
            # the same second would overwrite the first writer's file
            w = self._writer_cls(str(self.logdir / run.name), flush_secs=self.flush_secs,
                                 filename_suffix=f".{uuid.uuid4().hex[:8]}")
            self._writers[run.id] = w
            # a resumed run: its best real reward up to its last update (the evaluations of
            # an interrupted batch are dispatched again, and update it from there)
            self._best[run.id] = float(run.stats.get("best_reward", -math.inf))
        return w

    def on_evaluation(self, run: Any, evaluation: Any) -> None:
        w = self._writer(run)
        step = evaluation.iteration * max(1, int(run.config.get("batch", 1))) + evaluation.slot
        if evaluation.predicted:
            w.add_scalar("search/predicted_reward", evaluation.reward, step)
            return
        w.add_scalar("search/reward", evaluation.reward, step)
        if evaluation.counts:  # a low-fidelity result is never the best
            self._best[run.id] = max(self._best[run.id], evaluation.reward)
        if math.isfinite(self._best[run.id]):
            w.add_scalar("search/best_reward", self._best[run.id], step)
        if evaluation.accuracy is not None:
            w.add_scalar("search/accuracy", evaluation.accuracy, step)

    def on_update(self, run: Any, iteration: int, metrics: dict[str, Any]) -> None:
        w = self._writer(run)
        for name, value in metrics.items():
            number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if number and math.isfinite(value):  # numpy scalars too; lists and text are not
                w.add_scalar(name, float(value), iteration)
        w.flush()

    def close(self) -> None:
        """Flush and close every writer (a later event opens a new file)."""
        for w in self._writers.values():
            w.close()
        self._writers.clear()

    def __enter__(self) -> TensorBoardCallback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
