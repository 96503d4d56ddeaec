"""What a run needs beyond its strategy, decided before it starts: the epochs of its
pool-initialised trainings (:func:`pool_epochs`) and whether its evaluations go to a worker
process (:func:`worker_needed`)."""

from __future__ import annotations

import logging

from fnas.errors import ConfigError
from fnas.execution.evaluators import Evaluator
from fnas.execution.executors import Executor, LocalExecutor
from fnas.search.config import SearchConfig
from fnas.strategies.registry import capabilities

__all__ = ["pool_epochs", "worker_needed"]

logger = logging.getLogger("fnas.search.loop")  # the loop's logger, as before the split


def pool_epochs(cfg: SearchConfig, evaluator: Evaluator) -> int | None:
    """Epochs of a pool-initialised training in this search, or None if the pool is off.

    Raises:
        ConfigError: the pool is ``on`` but the evaluator trains no weights (a table).
    """
    if cfg.pool == "off" or (cfg.pool == "auto" and (not capabilities(cfg.strategy).pool
                                                     or not evaluator.trains)):
        return None
    if not evaluator.trains:
        raise ConfigError("the knowledge pool needs an evaluator that trains weights (a "
                          "benchmark table has none): use pool 'off' or 'auto'")
    return cfg.pool_epochs or max(1, evaluator.epochs // 2)


def worker_needed(cfg: SearchConfig, evaluator: Evaluator, executor: Executor | None,
                  warn: bool = True) -> bool:
    """Whether a run's local evaluations go to a worker process (``fnas.execution.workers``):
    when ``eval_isolation`` asks for one, or (``auto``) when ``eval_timeout`` or
    ``budget_seconds`` must be able to stop an evaluation that may take long. The caller's
    executor, other than the local one, is used as it is. Checked (``warn=False``) before a
    run is created or resumed, so that a refusal writes nothing.

    Raises:
        ConfigError: ``eval_timeout`` with an executor that cannot stop evaluations, or with
            an objective that cannot be sent to a worker process.
    """
    if executor is not None and not isinstance(executor, LocalExecutor):
        if cfg.eval_timeout is not None and not executor.stops:
            raise ConfigError(f"executor {executor.name!r} cannot stop an evaluation: "
                              "eval_timeout needs the local or the ray executor")
        return False
    want = cfg.eval_isolation == "process" or (
        cfg.eval_isolation == "auto" and not evaluator.instant
        and (cfg.eval_timeout is not None or cfg.budget_seconds is not None))
    if not want:
        return False
    from fnas.execution.workers import can_ship

    why = can_ship(evaluator)
    if why is None:
        return True
    if cfg.eval_timeout is not None or cfg.eval_isolation == "process":
        raise ConfigError(f"evaluations with a timeout run in a worker process, and the "
                          f"objective cannot be sent there ({why}): define it at module "
                          "level, or drop eval_timeout")
    if warn:
        logger.warning("budget_seconds: the objective cannot be sent to a worker process (%s), "
                       "so it is checked between evaluations only", why)
    return False
