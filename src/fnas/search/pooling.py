"""How the search loop uses the knowledge pool (docs/DESIGN.md, "The knowledge pool").

For every batch the loop takes one :class:`~fnas.knowledge.PoolSnapshot`. Each architecture
of the batch that is really trained starts from the snapshot's closest blocks
(:meth:`~fnas.knowledge.PoolSnapshot.init_weights`) and trains for ``pool_epochs`` (default
E/2) when any block was initialised, E otherwise. Its trained weights go back into the pool as
soon as it finishes, in the transaction that records its evaluation, so a kill loses none of
them and never separates the two; but the rest of the batch still reads the snapshot taken
before the batch, so the effect is exactly that of updating the pool between batches (the
fairness rule: docs/DESIGN.md, "The knowledge pool"). The snapshot id is recorded with each
evaluation, with the hit ratio, the coverage and the epochs trained; a resumed batch rebuilds
the same snapshot from that id.

A pool that cannot be written (disk full, read-only store) warns once per failure and the
search goes on without that entry; missing or corrupted files are skipped by the snapshot.
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from fnas.errors import FnasError
from fnas.knowledge.pool import Pool, PoolSnapshot, PoolWarning
from fnas.knowledge.store import Evaluation, Store
from fnas.tasks.rollout import Rollout

__all__ = ["PoolRunner"]


class PoolRunner:
    """One search's view of the pool: batch snapshots, initialised training, writing back.

    Args:
        store: the run's store (the pool lives in its database and ``pool/`` folder).
        space: the pool's space name; entries are shared between runs with the same name.
        task: the task signature recorded with every entry.
        pool_epochs: epochs of a pool-initialised training.
    """

    def __init__(self, store: Store, space: str, task: str, pool_epochs: int) -> None:
        self.pool = Pool(store, space)
        self.task = task
        self.pool_epochs = int(pool_epochs)
        self.snapshot: PoolSnapshot | None = None
        self.seconds = 0.0  # time spent initialising from and writing to the pool

    def close(self) -> None:
        self.pool.close()

    def begin_batch(self, recorded: Iterable[Evaluation]) -> PoolSnapshot:
        """Take the batch's snapshot: the one its recorded evaluations used (a resumed batch),
        or the pool as it is now."""
        t = time.perf_counter()
        ids = {e.pool_snapshot for e in recorded if e.pool_snapshot is not None}
        self.snapshot = self.pool.snapshot(upto=max(ids) if ids else None)
        self.seconds += time.perf_counter() - t
        return self.snapshot

    def prepare(self, evaluator: Any, spec: Any, seed: int
                ) -> tuple[dict, int, dict[str, Any], Any]:
        """What a training of ``spec`` needs from the batch snapshot, for this process or a
        remote worker: ``(initial weights, epochs, the evaluation's pool fields, InitStats)``."""
        assert self.snapshot is not None, "begin_batch() first"
        t = time.perf_counter()
        init, stats = self.snapshot.init_weights(spec, in_chans=evaluator.in_chans,
                                                 num_classes=evaluator.num_classes, seed=seed)
        self.seconds += time.perf_counter() - t
        epochs = self.pool_epochs if stats.hits else evaluator.epochs
        fields = {"pool_snapshot": self.snapshot.id, "pool_hit_ratio": stats.hit_ratio,
                  "pool_coverage": stats.coverage}
        return init, epochs, fields, stats

    def train(self, evaluator: Any, spec: Any, seed: int
              ) -> tuple[Rollout, dict[str, Any], Any]:
        """Train ``spec`` from the batch snapshot, here: the rollout, the evaluation's pool
        fields and the ``InitStats`` (for :meth:`stage`)."""
        init, epochs, fields, stats = self.prepare(evaluator, spec, seed)
        return evaluator.train(spec, seed, init, epochs), fields, stats

    def stage(self, spec: Any, rollout: Rollout, stats: Any
              ) -> Callable[[sqlite3.Connection, int], None] | None:
        """Write the block files of a successful rollout and return what inserts their rows,
        for :meth:`Store.add_evaluation`'s ``then``: the evaluation and its pool entries are
        committed together, so a kill -9 between them cannot lose the weights of a recorded
        evaluation (a resumed run would then start later batches from another pool). None
        for a failed rollout. Pool trouble never raises: it warns, and the evaluation is
        recorded without its entries."""
        if not rollout.result.ok or not rollout.weights:
            return None
        t = time.perf_counter()
        try:
            staged = self.pool.stage(spec, rollout.weights, task=self.task,
                                     epochs=rollout.result.epochs, init=stats)
        except FnasError as e:
            warnings.warn(f"pool: weights of {spec.key} not pooled: {e}", PoolWarning,
                          stacklevel=2)
            return None
        finally:
            self.seconds += time.perf_counter() - t

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
        return insert
