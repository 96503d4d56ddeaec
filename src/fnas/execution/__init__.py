"""How an architecture gets its result, and where that runs.

- Evaluators (:mod:`~fnas.execution.evaluators`: :class:`Evaluator`, the proxy task, a table, a
  synthetic function; :mod:`~fnas.execution.objective`: a user's function, whose cache identity
  is :mod:`~fnas.execution.identity`'s fingerprint) turn an architecture into a result.
- Executors (:mod:`~fnas.execution.executors`: ``EXECUTORS``, in this process or on Ray,
  :mod:`~fnas.execution.ray_net` and :mod:`~fnas.execution.ray_guard`;
  :mod:`~fnas.execution.workers` with :mod:`~fnas.execution.worker_main`: a worker process
  that can be stopped) run the rollout jobs of :mod:`~fnas.execution.jobs`.

The search loop (:mod:`fnas.search`) sends each batch through one evaluator and one executor.
"""

from fnas.execution.evaluators import (
    Evaluator,
    MacroTableEvaluator,
    ProxyEvaluator,
    SyntheticEvaluator,
)
from fnas.execution.executors import EXECUTORS, Executor, LocalExecutor, make_executor
from fnas.execution.objective import ObjectiveError, ObjectiveEvaluator

__all__ = ["Evaluator", "MacroTableEvaluator", "ProxyEvaluator", "SyntheticEvaluator",
           "EXECUTORS", "Executor", "LocalExecutor", "make_executor", "ObjectiveError",
           "ObjectiveEvaluator"]
