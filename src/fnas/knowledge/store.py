"""The persistent store: one SQLite database (WAL mode) plus a folder of files per run.

Layout of ``--store DIR`` (default ``./fnas-store``)::

    DIR/fnas.db                 experiments, evaluations (this module)
    DIR/runs/<name>/state.json  search checkpoint metadata (see fnas.search.checkpoint)
    DIR/runs/<name>/state.safetensors

Contract (Optuna ``BaseStorage`` style):

- **Persistence.** Every write is its own transaction, committed before the method returns:
  an evaluation recorded is on disk, and a kill -9 loses at most the rollouts in flight. An
  evaluation and its pool entries share one transaction (``add_evaluation(ev, then=...)``).
- **Concurrency.** One writer (the search driver) at a time per experiment; any number of
  readers (``fnas runs``/``fnas show`` while a search runs) thanks to WAL.
- **Atomicity.** Each method is atomic; nothing is ever deleted by the search.
- **Errors.** A missing, empty (0-byte), corrupted or newer-schema database raises
  :class:`StoreError` with one line naming the file; so does a row whose JSON or types were
  damaged (the message names the run and the field). Nothing already recorded is modified.
  Readers go on past damaged rows, a search never (:mod:`~fnas.knowledge.readers`).
- **Readers.** ``Store(root, readonly=True)`` opens the database so that it cannot write
  (``query_only``, or SQLite's ``mode=ro`` where the folder may not be written), never
  creates, migrates or writes anything, leaves no ``-wal`` or ``-shm`` file behind, and so
  works on a store the user may not write (``fnas runs``, ``show``, ``report``, ``pool
  stats``, ``export``). Opening a current store to write writes nothing either: only a
  migration does.
- **Names.** A run name is 1-100 characters of ``[A-Za-z0-9._-]``, not all digits (a name
  must never read as a run id), not starting with ``.`` or ``-``, without ``..``: it names a
  folder under ``runs/`` and must not escape it (:func:`check_run_name`).
- **Leases.** A process that runs a search holds the run's lease (a ``leases`` row with a
  heartbeat); a second search or resume of the same run is refused while the lease is live,
  from another thread of the same process too. A Store serves the thread that opened it.
  A lease whose owner died (same host: its pid is gone; elsewhere: no heartbeat for
  :data:`LEASE_TTL` seconds) is taken over. A ``running`` run without a live lease reads as
  ``interrupted`` (its process died: kill -9, or a disk too full to record even that).

The schema and run names are in :mod:`~fnas.knowledge.schema`, the row checks in
:mod:`~fnas.knowledge.rows`, the leases in :mod:`~fnas.knowledge.leases` (re-exported here).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnas.errors import StoreError
from fnas.knowledge.leases import LEASE_TTL, Leases
from fnas.knowledge.racing import top_results
from fnas.knowledge.readers import intact_experiments, readable
from fnas.knowledge.records import EVAL_FLAGS, Evaluation, Experiment
from fnas.knowledge.rows import (
    EVAL_COLUMNS,
    db_errors,
    decode_text,
    to_eval,
    to_experiment,
    to_update,
)
from fnas.knowledge.schema import (
    _ADDED,
    _SCHEMA,
    MAX_NAME_LENGTH,
    SCHEMA_VERSION,
    check_run_name,
    connect_readonly,
    create_atomically,
    full_only,
    insert_run,
    schema_current,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Store", "Experiment", "Evaluation", "EVAL_FLAGS", "SCHEMA_VERSION",
           "check_run_name", "LEASE_TTL", "MAX_NAME_LENGTH"]


class Store(Leases):
    """SQLite-backed store of experiments and evaluations under a directory.

    ``root`` is that directory and ``path`` its database file (``root / "fnas.db"``), for
    tools that read or back it up from outside (open it read-only while a search writes).

    Raises:
        StoreError: the database cannot be opened, is not an fnas store, or is corrupted.
    """

    def __init__(self, root: str | Path, create: bool = True, readonly: bool = False) -> None:
        self.root = Path(root)
        self.path = self.root / "fnas.db"
        self.readonly = bool(readonly)
        self._leases: dict[int, threading.Event] = {}
        if (not create or readonly) and not self.path.is_file():
            raise StoreError(f"no fnas store at {self.root} (no fnas.db there)")
        try:
            if not readonly and not self.path.exists():
                create_atomically(self.path)
            if self.path.is_file() and self.path.stat().st_size == 0:
                # fnas never leaves an empty database (a new one appears whole): this one is
                # another program's, so it is neither used nor touched
                raise StoreError(f"store database {self.path} is empty (0 bytes), not an fnas "
                                 "store; point --store elsewhere")
            if readonly:
                self._db = connect_readonly(self.root, self.path)
            else:
                self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                self._db.row_factory = sqlite3.Row
                self._db.text_factory = decode_text
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA foreign_keys=ON")
            self._check_schema()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:  # damaged text too
            raise StoreError(f"store database {self.path} is unreadable: "
                             f"{' '.join(str(e).split())}") from None
        except OSError as e:
            raise StoreError(f"cannot open store {self.root}: {e.strerror or e}") from None

    def _check_schema(self) -> None:
        q = "SELECT name FROM sqlite_master WHERE type='table'"
        tables = {r[0] for r in self._db.execute(q)}
        if tables and "meta" not in tables:
            raise StoreError(f"{self.path} is a SQLite database but not an fnas store")
        if self.readonly and "experiments" not in tables:
            raise StoreError(f"{self.path} is not an fnas store (no experiments table)")
        version = 0
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            try:
                version = int(row[0]) if row else 0
            except (TypeError, ValueError):
                raise StoreError(f"{self.path} has a damaged schema version {row[0]!r}") from None
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema v{version}; this fnas reads up to "
                                 f"v{SCHEMA_VERSION}: upgrade fnas")
        self._tables = tables
        if self.readonly:  # a reader never migrates: older stores are read as they are
            return
        if schema_current(self._db, tables, version):
            return  # opening a store writes nothing: a refused command leaves it as it was
        # IMMEDIATE: take the write lock first (waiting up to the busy timeout), so that
        # processes opening one store at once queue instead of failing on a lock upgrade
        self._db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        have = {r[1] for r in self._db.execute("PRAGMA table_info(evaluations)")}
        for name, kind in _ADDED:  # migrate an older store in place: new columns, NULL
            if name not in have:
                self._db.execute(f"ALTER TABLE evaluations ADD COLUMN {name} {kind}")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))

    def close(self) -> None:
        for exp_id in list(self._leases):
            try:
                self.release_lease(exp_id)
            except StoreError:
                pass
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_dir(self, name: str, create: bool = True) -> Path:
        """Folder for one run's files (checkpoints); created on demand (``create``; else
        perhaps missing).

        Raises:
            StoreError: the name would lead outside ``runs/`` (a damaged or forged row).
        """
        runs = self.root / "runs"
        if not name or name in (".", "..") or any(c in name for c in "/\\\0") \
                or Path(name).is_absolute():
            raise StoreError(f"run name {name[:60]!r} cannot name a folder under {runs}")
        d = runs / name
        if not create:
            return d
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create run folder {d}: {e.strerror or e}") from None
        return d

    @db_errors
    def create_experiment(
        self, name: str, strategy: str, seed: int, space_signature: str, task_signature: str,
        config: Mapping[str, Any], budget: int, unique: bool = False,
    ) -> Experiment:
        """Insert a new experiment (status ``running``). With ``unique`` (a name fnas chose), a
        taken name becomes ``name-2``, ``name-3``, ..., each try one INSERT (no check, then
        insert: no race; :func:`~fnas.knowledge.schema.insert_run`).

        Raises:
            StoreError: the name is taken (not ``unique``), or not safe (:func:`check_run_name`).
        """
        check_run_name(name)
        exp_id = insert_run(self._db, name, unique, (
            strategy, seed, space_signature, task_signature, json.dumps(dict(config),
            sort_keys=True), "running", budget, *[time.time()] * 2))
        if exp_id is None:
            if not unique:
                self.get_experiment(name)  # a damaged row of that name says so instead
            raise StoreError(f"an experiment named {name!r} already exists in {self.root}")
        return self.get_experiment(exp_id)

    @db_errors
    def get_experiment(self, ref: int | str) -> Experiment:
        """By id or name.

        Raises:
            StoreError: no such experiment.
        """
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isascii() and ref.isdigit()
                                    and len(ref) < 19):
            row = self._db.execute("SELECT * FROM experiments WHERE id=?",
                                   (int(ref) if abs(int(ref)) < 2**63 else -1,)).fetchone()
        else:
            row = None
        if row is None:
            row = self._db.execute("SELECT * FROM experiments WHERE name=?", (str(ref),)).fetchone()
        if row is None:
            raise StoreError(f"no experiment {ref!r} in {self.root} (see 'fnas runs')")
        return self._alive(to_experiment(row))

    def list_experiments(self) -> list[Experiment]:
        """The runs by id; a damaged row is left out with a warning on the ``fnas`` logger
        (:func:`~fnas.knowledge.readers.scan_experiments` lists it, marked damaged)."""
        return intact_experiments(self)

    @db_errors
    def update_experiment(self, exp_id: int, *, status: str | None = None,
                          stats: Mapping[str, Any] | None = None,
                          budget: int | None = None) -> None:
        sets, vals = ["updated=?"], [time.time()]
        for col, v in (("status", status), ("budget", budget)):
            if v is not None:
                sets.append(f"{col}=?")
                vals.append(v)
        if stats is not None:
            sets.append("stats=?")
            vals.append(json.dumps(dict(stats), sort_keys=True))
        self._db.execute(f"UPDATE experiments SET {', '.join(sets)} WHERE id=?", (*vals, exp_id))

    # ---- evaluations ------------------------------------------------------------------------
    @db_errors
    def add_evaluation(self, ev: Evaluation,
                       then: Callable[[sqlite3.Connection, int], None] | None = None
                       ) -> Evaluation:
        """Record one evaluation; committed when this returns.

        ``then(connection, evaluation_id)``, if given, runs inside the same transaction, so
        rows that belong with the evaluation (its pool entries) are committed with it or not
        at all: a kill -9 never leaves one without the other.

        Raises:
            StoreError: (experiment, iteration, slot) is already recorded; nothing is written.
        """
        row = {c: getattr(ev, c) for c in EVAL_COLUMNS}
        row["decisions"] = json.dumps(list(ev.decisions))
        row["created"] = ev.created or time.time()
        for f in EVAL_FLAGS:
            row[f] = int(bool(row[f]))
        cols = ", ".join(row)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute(
                f"INSERT INTO evaluations ({cols}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
            if then is not None:
                then(self._db, int(cur.lastrowid))
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError as e:
            self._db.execute("ROLLBACK")
            raise StoreError(f"evaluation not recorded: {e}") from None
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return to_eval(self._db.execute("SELECT * FROM evaluations WHERE id=?",
                                        (cur.lastrowid,)).fetchone())

    @db_errors
    def evaluations(self, exp_id: int, iteration: int | None = None) -> list[Evaluation]:
        """An experiment's evaluations in recording order (optionally one iteration's)."""
        q, args = "SELECT * FROM evaluations WHERE experiment_id=?", [exp_id]
        if iteration is not None:
            q += " AND iteration=?"
            args.append(iteration)
        return [to_eval(r) for r in self._db.execute(q + " ORDER BY id", args)]

    @db_errors
    def lookup_trained(self, task_signature: str, arch_key: str,
                       statuses: Iterable[str] = ("ok", "nan", "invalid")) -> Evaluation | None:
        """The earliest *trained* evaluation of ``arch_key`` on this task in any experiment.

        Only deterministic outcomes are reused: a transient failure (``error``, ``oom``) is
        retried.
        """
        st = tuple(statuses)
        rows = self._db.execute(
            f"SELECT * FROM evaluations WHERE task_signature=? AND arch_key=? AND trained=1 "
            f"AND status IN ({', '.join('?' * len(st))}) ORDER BY id",
            (task_signature, arch_key, *st),
        ).fetchall()  # a damaged row is skipped (with a warning): it is trained again
        return next(iter(readable(rows, f"cached results of {arch_key[:60]}")), None)

    @db_errors
    def recent_pooled(self, limit: int = 100) -> list[Evaluation]:
        """The last ``limit`` trainings, in any run, that started from a pool snapshot."""
        rows = self._db.execute("SELECT * FROM evaluations WHERE pool_snapshot IS NOT NULL "
                                "AND trained=1 ORDER BY id DESC LIMIT ?", (int(limit),))
        return readable(rows, "pool-initialised rollouts")  # damaged rows skipped, counted

    @db_errors
    def top(self, exp_id: int, k: int = 5) -> list[Evaluation]:
        """Best ``k`` distinct architectures of an experiment (real full-fidelity results
        only), by the run's racing rule (:mod:`fnas.knowledge.racing`: with ``confirm`` > 1,
        confirmed architectures first, each by the mean of its replicates)."""
        confirm = int(self.get_experiment(exp_id).config.get("confirm") or 1)
        if confirm <= 1:  # the same rule without replicates: the best k rows, read until found
            out, seen = [], set()
            for r in self._db.execute(
                    "SELECT * FROM evaluations WHERE experiment_id=? AND predicted=0 AND "
                    f"status='ok' {full_only(self._db)}ORDER BY reward DESC, id ASC", (exp_id,)):
                if len(out) >= k:
                    break
                if r["arch_key"] not in seen:
                    seen.add(r["arch_key"])
                    out.append(to_eval(r))
            return out
        rows = self._db.execute(
            "SELECT * FROM evaluations WHERE experiment_id=? AND predicted=0 "
            f"{full_only(self._db)}ORDER BY id ASC", (exp_id,))
        return top_results(map(to_eval, rows), confirm, k)  # a damaged row: one StoreError

    @db_errors
    def summary(self, exp_id: int) -> dict[str, Any]:
        """Counts (evaluated, trained, cached, failed) and the best real reward of a run."""
        row = self._db.execute(
            "SELECT COUNT(*), SUM(trained), SUM(cached), SUM(status != 'ok'), SUM(train_seconds),"
            f" MAX(CASE WHEN status='ok' AND predicted=0 {full_only(self._db)}THEN reward END)"
            " FROM evaluations WHERE experiment_id=?", (exp_id,),
        ).fetchone()
        n, trained, cached, failed, secs, best = row
        for field, v in (("reward", best), ("train_seconds", secs), ("trained", trained),
                         ("cached", cached)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise StoreError(f"run id {exp_id}: field {field!r} holds {v!r:.40} in an "
                                 "evaluation (the store is damaged)")
        if best is not None and self.get_experiment(exp_id).config.get("confirm", 1) != 1:
            best = self.top(exp_id, 1)[0].reward  # racing: the incumbent's mean
        return {"evaluated": n, "trained": trained or 0, "cached": cached or 0,
                "failed": failed or 0, "train_seconds": secs or 0.0, "best_reward": best}

    def to_dataframe(self, run: int | str | None = None) -> pd.DataFrame:
        """A ``pandas.DataFrame`` with one row per evaluation of ``run`` (a name or id), or of
        every run if None, in recording order; its columns (``run``, then the
        :class:`Evaluation` fields) are listed in :mod:`fnas.knowledge.frame`. Damaged rows
        are left out, with a warning saying how many.

        Raises:
            ImportError: pandas is not installed (``pip install pandas``).
            StoreError: ``run`` is unknown, or its own row is damaged.
        """
        from fnas.knowledge.frame import evaluations_frame

        return evaluations_frame(self, run)

    # ---- policy updates ---------------------------------------------------------------------
    @db_errors
    def add_update(self, exp_id: int, iteration: int, metrics: Mapping[str, Any], *,
                   n_done: int, n_trained: int) -> None:
        """Record one policy update's metrics (a resumed iteration replaces its row)."""
        self._db.execute("INSERT OR REPLACE INTO updates VALUES (?,?,?,?,?,?)",
                         (exp_id, int(iteration), int(n_done), int(n_trained),
                          json.dumps(dict(metrics), sort_keys=True), time.time()))

    @db_errors
    def updates(self, exp_id: int) -> list[dict[str, Any]]:
        """An experiment's updates in order: ``iteration``, ``n_done`` (samples so far),
        ``n_trained`` (real trainings so far) and the strategy's metrics, flattened."""
        if "updates" not in self._tables and self.readonly:
            return []  # a store older than v3, read as it is
        rows = self._db.execute("SELECT * FROM updates WHERE experiment_id=? ORDER BY iteration",
                                (exp_id,))
        return [to_update(r) for r in rows]
