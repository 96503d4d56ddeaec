"""Knowledge that outlives one search: the SQLite store and the block-weight pool.

The pool's names are imported lazily, so ``fnas.knowledge.Store`` stays free of torch.
"""

from typing import Any

from fnas.knowledge.describe import RunDescription, describe_run
from fnas.knowledge.store import EVAL_FLAGS, SCHEMA_VERSION, Evaluation, Experiment, Store

__all__ = ["EVAL_FLAGS", "SCHEMA_VERSION", "Evaluation", "Experiment", "Store",
           "RunDescription", "describe_run", "Pool",
           "PoolSnapshot", "PoolEntry", "PoolStats", "BlockInit", "InitStats", "PoolWarning",
           "pool_stats", "prune_store", "PruneReport"]

_POOL_NAMES = {"Pool", "PoolSnapshot", "PoolEntry", "PoolStats", "BlockInit", "InitStats",
               "PoolWarning", "pool_stats"}


def __getattr__(name: str) -> Any:
    if name in _POOL_NAMES:
        from fnas.knowledge import pool

        return getattr(pool, name)
    if name in ("prune_store", "PruneReport"):
        from fnas.knowledge import prune

        return getattr(prune, name)
    raise AttributeError(f"module 'fnas.knowledge' has no attribute {name!r}")
