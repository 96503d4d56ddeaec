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
- **Errors.** A missing, corrupted or newer-schema database raises :class:`StoreError` with one
  line naming the file; nothing already recorded is modified.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnas.errors import StoreError

__all__ = ["Store", "Experiment", "Evaluation", "EVAL_FLAGS", "SCHEMA_VERSION"]

SCHEMA_VERSION = 4
EVAL_FLAGS = ("trained", "predicted", "audited", "cached", "replayed")
"""Flags of an evaluation: really trained; reward predicted by the critic; an audit (trained
although the critic was confident); result reused from an earlier identical evaluation;
replayed (unused: a replayed sample is no new result, so it is not recorded as an
evaluation; each update's replay is logged in the ``updates`` table instead)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE NOT NULL,
    strategy TEXT NOT NULL,
    seed INTEGER NOT NULL,
    space_signature TEXT NOT NULL,
    task_signature TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    budget INTEGER NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    stats TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    iteration INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    arch_key TEXT NOT NULL,
    arch TEXT NOT NULL,
    decisions TEXT NOT NULL,
    task_signature TEXT NOT NULL,
    reward REAL NOT NULL,
    accuracy REAL,
    latency_ms REAL,
    macs INTEGER,
    params INTEGER,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    train_seconds REAL NOT NULL,
    seed INTEGER NOT NULL,
    behaviour_logp REAL,
    trained INTEGER NOT NULL DEFAULT 0,
    predicted INTEGER NOT NULL DEFAULT 0,
    audited INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    replayed INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    epochs INTEGER,
    pool_snapshot INTEGER,
    pool_hit_ratio REAL,
    pool_coverage REAL,
    predicted_reward REAL,
    predicted_spread REAL,
    UNIQUE (experiment_id, iteration, slot)
);
CREATE INDEX IF NOT EXISTS eval_cache ON evaluations (task_signature, arch_key, trained);
CREATE TABLE IF NOT EXISTS updates (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    iteration INTEGER NOT NULL,
    n_done INTEGER NOT NULL,
    n_trained INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (experiment_id, iteration)
);
"""
# Schema v3 adds the ``updates`` table (one row per policy update); older stores gain it empty.
# Schema v4 adds the critic's prediction to every evaluation it was asked about.
_ADDED_V2 = (("epochs", "INTEGER"), ("pool_snapshot", "INTEGER"), ("pool_hit_ratio", "REAL"),
             ("pool_coverage", "REAL"))
_ADDED_V4 = (("predicted_reward", "REAL"), ("predicted_spread", "REAL"))
_ADDED = _ADDED_V2 + _ADDED_V4
"""Evaluation columns added since v1 (v2: the knowledge pool; v4: the critic's prediction); an
older store gains them in place, NULL."""


@dataclass(frozen=True)
class Experiment:
    """One search run as stored."""

    id: int
    name: str
    strategy: str
    seed: int
    space_signature: str
    task_signature: str
    config: dict
    status: str
    budget: int
    created: float
    updated: float
    stats: dict


@dataclass(frozen=True)
class Evaluation:
    """One architecture's result inside an experiment, with its flags and cost."""

    experiment_id: int
    iteration: int
    slot: int
    arch_key: str
    arch: str
    decisions: tuple[int, ...]
    task_signature: str
    reward: float
    status: str
    message: str = ""
    accuracy: float | None = None
    latency_ms: float | None = None
    macs: int | None = None
    params: int | None = None
    train_seconds: float = 0.0
    seed: int = 0
    behaviour_logp: float | None = None
    trained: bool = False
    predicted: bool = False
    audited: bool = False
    cached: bool = False
    replayed: bool = False
    created: float = 0.0
    epochs: int | None = None
    """Epochs this training ran (None: not trained here, or recorded before schema v2)."""
    pool_snapshot: int | None = None
    """Knowledge-pool snapshot its initial weights came from (None: pool off)."""
    pool_hit_ratio: float | None = None
    """Share of its blocks initialised from the pool."""
    pool_coverage: float | None = None
    """Share of its block parameters copied from the pool."""
    predicted_reward: float | None = None
    """The critic's predicted reward for it (None: the critic was not asked, or before v4);
    for a ``predicted`` evaluation this is its reward, for a trained one the prediction its
    real reward can be checked against."""
    predicted_spread: float | None = None
    """The critic's ensemble spread for it, in reward units."""
    id: int | None = None


_EVAL_COLUMNS = [f for f in Evaluation.__dataclass_fields__ if f != "id"]


class Store:
    """SQLite-backed store of experiments and evaluations under a directory.

    Raises:
        StoreError: the database cannot be opened, is not an fnas store, or is corrupted.
    """

    def __init__(self, root: str | Path, create: bool = True) -> None:
        self.root = Path(root)
        self.path = self.root / "fnas.db"
        if not create and not self.path.is_file():
            raise StoreError(f"no fnas store at {self.root} (no fnas.db there)")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._check_schema()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"store database {self.path} is unreadable: {e}") from None
        except OSError as e:
            raise StoreError(f"cannot open store {self.root}: {e.strerror or e}") from None

    def _check_schema(self) -> None:
        q = "SELECT name FROM sqlite_master WHERE type='table'"
        tables = {r[0] for r in self._db.execute(q)}
        if tables and "meta" not in tables:
            raise StoreError(f"{self.path} is a SQLite database but not an fnas store")
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema v{version}; this fnas reads up to "
                                 f"v{SCHEMA_VERSION}: upgrade fnas")
        self._db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
        have = {r[1] for r in self._db.execute("PRAGMA table_info(evaluations)")}
        for name, kind in _ADDED:  # migrate an older store in place: new columns, NULL
            if name not in have:
                self._db.execute(f"ALTER TABLE evaluations ADD COLUMN {name} {kind}")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_dir(self, name: str) -> Path:
        """Folder for one run's files (checkpoints); created on demand."""
        d = self.root / "runs" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    # ---- experiments ------------------------------------------------------------------------
    def create_experiment(
        self, name: str, strategy: str, seed: int, space_signature: str, task_signature: str,
        config: Mapping[str, Any], budget: int,
    ) -> Experiment:
        """Insert a new experiment (status ``running``).

        Raises:
            StoreError: the name is taken.
        """
        now = time.time()
        try:
            cur = self._db.execute(
                "INSERT INTO experiments (name, strategy, seed, space_signature, task_signature,"
                " config, status, budget, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (name, strategy, seed, space_signature, task_signature,
                 json.dumps(dict(config), sort_keys=True), "running", budget, now, now),
            )
        except sqlite3.IntegrityError:
            raise StoreError(f"an experiment named {name!r} already exists in {self.root}"
                             ) from None
        return self.get_experiment(cur.lastrowid)

    def get_experiment(self, ref: int | str) -> Experiment:
        """By id or name.

        Raises:
            StoreError: no such experiment.
        """
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            row = self._db.execute("SELECT * FROM experiments WHERE id=?", (int(ref),)).fetchone()
        else:
            row = None
        if row is None:
            row = self._db.execute("SELECT * FROM experiments WHERE name=?", (str(ref),)).fetchone()
        if row is None:
            raise StoreError(f"no experiment {ref!r} in {self.root} (see 'fnas runs')")
        d = dict(row)
        d["config"], d["stats"] = json.loads(d["config"]), json.loads(d["stats"])
        return Experiment(**d)

    def list_experiments(self) -> list[Experiment]:
        ids = [r[0] for r in self._db.execute("SELECT id FROM experiments ORDER BY id")]
        return [self.get_experiment(i) for i in ids]

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
        row = {c: getattr(ev, c) for c in _EVAL_COLUMNS}
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
        return self._to_eval(self._db.execute("SELECT * FROM evaluations WHERE id=?",
                                              (cur.lastrowid,)).fetchone())

    def evaluations(self, exp_id: int, iteration: int | None = None) -> list[Evaluation]:
        """An experiment's evaluations in recording order (optionally one iteration's)."""
        q, args = "SELECT * FROM evaluations WHERE experiment_id=?", [exp_id]
        if iteration is not None:
            q += " AND iteration=?"
            args.append(iteration)
        return [self._to_eval(r) for r in self._db.execute(q + " ORDER BY id", args)]

    def lookup_trained(self, task_signature: str, arch_key: str,
                       statuses: Iterable[str] = ("ok", "nan", "invalid")) -> Evaluation | None:
        """The earliest *trained* evaluation of ``arch_key`` on this task in any experiment.

        Only deterministic outcomes are reused: a transient failure (``error``, ``oom``) is
        retried.
        """
        st = tuple(statuses)
        row = self._db.execute(
            f"SELECT * FROM evaluations WHERE task_signature=? AND arch_key=? AND trained=1 "
            f"AND status IN ({', '.join('?' * len(st))}) ORDER BY id LIMIT 1",
            (task_signature, arch_key, *st),
        ).fetchone()
        return self._to_eval(row) if row else None

    def recent_pooled(self, limit: int = 100) -> list[Evaluation]:
        """The last ``limit`` trainings, in any run, that started from a pool snapshot."""
        rows = self._db.execute("SELECT * FROM evaluations WHERE pool_snapshot IS NOT NULL "
                                "AND trained=1 ORDER BY id DESC LIMIT ?", (int(limit),))
        return [self._to_eval(r) for r in rows]

    def top(self, exp_id: int, k: int = 5) -> list[Evaluation]:
        """Best ``k`` distinct architectures of an experiment by reward (real results only)."""
        rows = self._db.execute(
            "SELECT * FROM evaluations WHERE experiment_id=? AND predicted=0 AND status='ok' "
            "ORDER BY reward DESC, id ASC", (exp_id,),
        )
        out, seen = [], set()
        for r in rows:
            if r["arch_key"] not in seen:
                seen.add(r["arch_key"])
                out.append(self._to_eval(r))
            if len(out) >= k:
                break
        return out

    def summary(self, exp_id: int) -> dict[str, Any]:
        """Counts (evaluated, trained, cached, failed) and the best real reward of a run."""
        row = self._db.execute(
            "SELECT COUNT(*), SUM(trained), SUM(cached), SUM(status != 'ok'), SUM(train_seconds),"
            " MAX(CASE WHEN status='ok' AND predicted=0 THEN reward END)"
            " FROM evaluations WHERE experiment_id=?", (exp_id,),
        ).fetchone()
        n, trained, cached, failed, secs, best = row
        return {"evaluated": n, "trained": trained or 0, "cached": cached or 0,
                "failed": failed or 0, "train_seconds": secs or 0.0, "best_reward": best}

    # ---- policy updates ---------------------------------------------------------------------
    def add_update(self, exp_id: int, iteration: int, metrics: Mapping[str, Any], *,
                   n_done: int, n_trained: int) -> None:
        """Record one policy update's metrics (a resumed iteration replaces its row)."""
        self._db.execute("INSERT OR REPLACE INTO updates VALUES (?,?,?,?,?,?)",
                         (exp_id, int(iteration), int(n_done), int(n_trained),
                          json.dumps(dict(metrics), sort_keys=True), time.time()))

    def updates(self, exp_id: int) -> list[dict[str, Any]]:
        """An experiment's updates in order: ``iteration``, ``n_done`` (samples so far),
        ``n_trained`` (real trainings so far) and the strategy's metrics, flattened."""
        rows = self._db.execute("SELECT * FROM updates WHERE experiment_id=? ORDER BY iteration",
                                (exp_id,))
        return [{"iteration": r["iteration"], "n_done": r["n_done"],
                 "n_trained": r["n_trained"], **json.loads(r["metrics"])} for r in rows]

    @staticmethod
    def _to_eval(row: sqlite3.Row) -> Evaluation:
        d = dict(row)
        d["decisions"] = tuple(json.loads(d["decisions"]))
        for f in EVAL_FLAGS:
            d[f] = bool(d[f])
        return Evaluation(**d)
