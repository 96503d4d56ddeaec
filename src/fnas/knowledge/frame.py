"""A store's evaluations as a pandas DataFrame (``Store.to_dataframe``); pandas is optional.

Columns, in this order (one row per evaluation, in recording order, runs by id):

- ``run``: the run's name; ``experiment_id``: its id.
- ``iteration``, ``slot``: the batch (policy update) and the place in it.
- ``arch``: the block string; ``arch_key``: its canonical key; ``decisions``: the decision
  indices (a tuple of ints) in the run's space.
- ``task_signature``: what the result depends on (runs with equal ones share the cache).
- ``reward``; ``status`` (``ok``, ``nan``, ``invalid``, ``error``, ``oom``) and ``message``.
- ``accuracy``, ``latency_ms``, ``macs``, ``params``: the measurements (missing: NA).
- ``train_seconds``, ``seed``, ``epochs``: the training, where there was one.
- ``behaviour_logp``: the log-probability the policy sampled it with (NA: no policy).
- ``trained``, ``predicted``, ``audited``, ``cached``, ``replayed``: the flags
  (:data:`~fnas.knowledge.store.EVAL_FLAGS`), booleans.
- ``created``: when it was recorded (seconds since the epoch, as ``time.time()``).
- ``pool_snapshot``, ``pool_hit_ratio``, ``pool_coverage``: the knowledge pool's share in
  its initial weights (NA: pool off).
- ``predicted_reward``, ``predicted_spread``: the critic's prediction, if it was asked.
- ``id``: the evaluation's row id.

Measurements are ``float64`` (missing: NaN); integer columns that may be missing (``macs``,
``params``, ``epochs``, ``pool_snapshot``) use pandas' nullable ``Int64``; the column types
are the same for an empty frame.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from fnas.knowledge.readers import intact_experiments, readable_evaluations, skipped
from fnas.knowledge.records import EVAL_FLAGS, Evaluation, StoreLike

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["COLUMNS", "evaluations_frame"]

COLUMNS = ("run", *(f.name for f in fields(Evaluation)))
"""The DataFrame's columns, in order."""
logger = logging.getLogger(__name__)
_DTYPES = {**dict.fromkeys(("experiment_id", "iteration", "slot", "seed", "id"), "int64"),
           **dict.fromkeys(("macs", "params", "epochs", "pool_snapshot"), "Int64"),
           **dict.fromkeys(("reward", "accuracy", "latency_ms", "train_seconds",
                            "behaviour_logp", "created", "pool_hit_ratio", "pool_coverage",
                            "predicted_reward", "predicted_spread"), "float64"),
           **dict.fromkeys(EVAL_FLAGS, "bool")}


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("Store.to_dataframe needs pandas: pip install pandas (fnas's "
                          "pandas extra)") from None
    return pandas


def evaluations_frame(store: StoreLike, run: int | str | None = None) -> pd.DataFrame:
    """One row per evaluation of ``run`` (a name or id), or of every run if None. A reader:
    damaged evaluation rows are left out, with one warning per run on the ``fnas`` logger
    saying how many (as ``fnas show`` does), and so are runs whose own row is damaged
    (:func:`~fnas.knowledge.readers.intact_experiments`) when every run is listed.

    Raises:
        ImportError: pandas is not installed (the message says how to install it).
        StoreError: ``run`` is unknown, or its own row is damaged.
    """
    pd = _pandas()
    exps = intact_experiments(store) if run is None else [store.get_experiment(run)]
    rows = []
    for e in exps:
        evals, bad = readable_evaluations(store, e.id)
        if bad:
            logger.warning("%s; the DataFrame leaves them out", skipped(e.name, bad))
        rows += [(e.name, *(getattr(ev, c) for c in COLUMNS[1:])) for ev in evals]
    return pd.DataFrame.from_records(rows, columns=list(COLUMNS)).astype(_DTYPES)
