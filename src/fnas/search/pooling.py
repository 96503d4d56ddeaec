"""How the search loop uses the knowledge pool (docs/DESIGN.md, "The knowledge pool").

For every batch the loop takes one :class:`~fnas.knowledge.PoolSnapshot`
(:meth:`PoolRunner.begin_batch`). A slot that is really trained meets the pool twice, in the
slot's one prepare -> train -> commit path (``fnas.search.recording``):

- **prepare** (:meth:`PoolRunner.prepare`): the training starts from the snapshot's closest
  blocks (:meth:`~fnas.knowledge.PoolSnapshot.init_weights`) and trains for ``pool_epochs``
  (default E/2) when any block was initialised, E otherwise: a :class:`PoolInit`.
- **commit** (:meth:`PoolRunner.commit`): its trained weights go into the pool in the
  transaction that records its evaluation, so a kill loses none of them and never separates
  the two: a :class:`PoolCommit`.

The rest of the batch still reads the snapshot taken before the batch, so the effect is
exactly that of updating the pool between batches (the fairness rule: docs/DESIGN.md, "The
knowledge pool"). The snapshot id is recorded with each evaluation, with the hit ratio, the
coverage and the epochs trained; a resumed batch rebuilds the same snapshot from that id.

A pool that cannot be written (disk full, read-only store) warns once per failure and the
search goes on without that entry; missing or corrupted files are skipped by the snapshot.
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from fnas.errors import FnasError
from fnas.knowledge.pool import InitStats, Pool, PoolSnapshot, PoolWarning
from fnas.knowledge.store import Evaluation, Store
from fnas.tasks.rollout import Rollout

__all__ = ["PoolRunner", "PoolInit", "PoolCommit"]


@dataclass(frozen=True)
class PoolInit:
    """What the batch's snapshot gives one training (:meth:`PoolRunner.prepare`)."""

    snapshot: int
    """The id of the batch's snapshot (recorded with the evaluation as ``pool_snapshot``)."""
    weights: dict[str, torch.Tensor] = field(repr=False)
    """The initial weights: a partial state dict, for this process or a remote worker."""
    epochs: int
    """Epochs to train: ``pool_epochs`` when any block was initialised, else the task's."""
    stats: InitStats
    """The initialisation's report (hit ratio, coverage, the entries each block came from)."""
    seconds: float
    """Time spent initialising from the snapshot."""

    def fields(self) -> dict[str, Any]:
        """The evaluation's pool fields: ``pool_snapshot``, ``pool_hit_ratio``,
        ``pool_coverage``."""
        return {"pool_snapshot": self.snapshot, "pool_hit_ratio": self.stats.hit_ratio,
                "pool_coverage": self.stats.coverage}


@dataclass(frozen=True)
class PoolCommit:
    """A trained slot's evaluation recorded with its pool entries (:meth:`PoolRunner.commit`)."""

    evaluation: Evaluation
    """The evaluation as the store recorded it (with its id)."""
    pool_seconds: float
    """Time spent checking the trained weights and writing their block files."""
    store_seconds: float
    """Time spent in the transaction that records the evaluation and its pool entries."""


class PoolRunner:
    """One search's view of the pool: batch snapshots, initialised training, writing back.

    Args:
        store: the run's store (the pool lives in its database and ``pool/`` folder).
        space: the pool's space name; entries are shared between runs with the same name.
        task: the task signature recorded with every entry.
        pool_epochs: epochs of a pool-initialised training.
    """

    def __init__(self, store: Store, space: str, task: str, pool_epochs: int) -> None:
        self.store = store
        self.pool = Pool(store, space)
        self.task = task
        self.pool_epochs = int(pool_epochs)
        self.snapshot: PoolSnapshot | None = None

    def close(self) -> None:
        self.pool.close()

    def begin_batch(self, recorded: Iterable[Evaluation]) -> PoolSnapshot:
        """Take the batch's snapshot: the one its recorded evaluations used (a resumed batch),
        or the pool as it is now."""
        ids = {e.pool_snapshot for e in recorded if e.pool_snapshot is not None}
        self.snapshot = self.pool.snapshot(upto=max(ids) if ids else None)
        return self.snapshot

    def prepare(self, evaluator: Any, spec: Any, seed: int) -> PoolInit:
        """What a training of ``spec`` with ``seed`` needs from the batch's snapshot."""
        assert self.snapshot is not None, "begin_batch() first"
        t = time.perf_counter()
        init, stats = self.snapshot.init_weights(spec, in_chans=evaluator.in_chans,
                                                 num_classes=evaluator.num_classes, seed=seed)
        seconds = time.perf_counter() - t
        epochs = self.pool_epochs if stats.hits else evaluator.epochs
        return PoolInit(self.snapshot.id, init, epochs, stats, seconds)

    def commit(self, spec: Any, ev: Evaluation, rollout: Rollout, init: PoolInit | None
               ) -> PoolCommit:
        """Record ``ev``, the evaluation of ``rollout`` (a training of ``spec`` prepared as
        ``init``; None: from no snapshot), and pool its trained weights with it.

        The block files are written first, then the evaluation and the entries' rows are
        committed in one transaction (:meth:`Store.add_evaluation`), so a kill -9 cannot
        lose the weights of a recorded evaluation (a resumed run would then start later
        batches from another pool), nor leave rows without their evaluation. A failed rollout
        has nothing to pool. Pool trouble never raises: it warns, and the evaluation is
        recorded without its entries.

        Raises:
            StoreError: the evaluation cannot be recorded (its slot is already recorded).
        """
        t = time.perf_counter()
        staged = self._stage(spec, rollout, init)
        t_store = time.perf_counter()

        def insert(db: sqlite3.Connection, eval_id: int) -> None:
            db.execute("SAVEPOINT pool")
            try:
                Pool.insert(db, staged, eval_id)
                db.execute("RELEASE pool")
            except sqlite3.DatabaseError as e:  # the evaluation is kept without its entries
                db.execute("ROLLBACK TO pool")
                db.execute("RELEASE pool")
                warnings.warn(f"pool: weights of {spec.key} not pooled: {e}", PoolWarning,
                              stacklevel=2)

        recorded = self.store.add_evaluation(ev, insert if staged else None)
        return PoolCommit(recorded, t_store - t, time.perf_counter() - t_store)

    def _stage(self, spec: Any, rollout: Rollout, init: PoolInit | None) -> list[tuple]:
        """Check a successful rollout's weights and write their block files; the rows to
        insert (none for a failed rollout, or when the pool cannot be written: it warns)."""
        if not rollout.result.ok or not rollout.weights:
            return []
        try:
            return self.pool.stage(spec, rollout.weights, task=self.task,
                                   epochs=rollout.result.epochs,
                                   init=init.stats if init is not None else None)
        except FnasError as e:
            warnings.warn(f"pool: weights of {spec.key} not pooled: {e}", PoolWarning,
                          stacklevel=3)
            return []
