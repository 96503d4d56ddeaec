"""What the store's database may hold: the SQL schema, its version and the evaluation
columns added since v1 (an older store gains them in place), and the rule for run names."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fnas.errors import StoreError
from fnas.knowledge.rows import decode_text

__all__ = ["SCHEMA_VERSION", "MAX_NAME_LENGTH", "check_run_name", "default_run_name",
           "create_atomically", "insert_run", "full_only", "schema_current", "connect_readonly"]

MAX_NAME_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9._-]+")


def check_run_name(name: Any) -> str:
    """``name`` if it is a safe run name (see :mod:`fnas.knowledge.store`'s contract), else a
    one-line :class:`StoreError` saying what is wrong."""
    if not isinstance(name, str):
        raise StoreError(f"run name must be a string, got {type(name).__name__}")
    shown = repr(name[:40] + ("..." if len(name) > 40 else ""))
    if not name:
        raise StoreError("run name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise StoreError(f"run name {shown} has {len(name)} characters; at most "
                         f"{MAX_NAME_LENGTH}")
    if not _NAME.fullmatch(name) or not name.isascii():
        raise StoreError(f"run name {shown} may only hold letters, digits, '.', '_' and '-'")
    if name.isdigit():
        raise StoreError(f"run name {shown} is all digits: it would read as a run id")
    if name[0] in ".-" or ".." in name:
        raise StoreError(f"run name {shown} must not start with '.' or '-' or hold '..'")
    return name


def default_run_name(*parts: Any, stamp: bool = False) -> str:
    """The one builder of the names fnas gives runs: ``parts`` joined by ``-`` (each cut to
    its safe characters), then, with ``stamp``, the time (``...-20261206-183000``); always a
    safe run name (:func:`check_run_name`)."""
    text = "-".join(str(p) for p in parts if p not in (None, ""))
    if stamp:
        text += f"-{datetime.now():%Y%m%d-%H%M%S}"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", text).replace("..", "_.")[:MAX_NAME_LENGTH]
    name = name.lstrip(".-") or "run"
    return name if not name.isdigit() else f"run-{name}"[:MAX_NAME_LENGTH]


def insert_run(db: sqlite3.Connection, name: str, unique: bool, row: tuple) -> int | None:
    """Insert an experiments row (``row``: the columns after ``name``) under ``name`` or, if
    ``unique`` (fnas chose the name), the first free of ``name-2``, ``name-3``, ... (cut to
    fit :data:`MAX_NAME_LENGTH`): each try is one INSERT, which the UNIQUE constraint refuses
    or takes, so processes naming runs at the same moment never collide (no check, then
    insert). Returns the new row's id, or None when the name (every name tried) is taken."""
    for i in range(1, 1001 if unique else 2):
        tail = f"-{i}" if i > 1 else ""
        try:
            return int(db.execute(
                "INSERT INTO experiments (name, strategy, seed, space_signature, task_signature,"
                " config, status, budget, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (name[:MAX_NAME_LENGTH - len(tail)] + tail, *row)).lastrowid)
        except sqlite3.IntegrityError as e:
            if not (unique and "UNIQUE" in str(e)):
                return None
    return None


SCHEMA_VERSION = 5
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
    fidelity REAL,
    steps INTEGER,
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
# Schema v5 adds each evaluation's fidelity (NULL, read as 1.0: the full protocol) and the
# optimisation steps its training ran.
_ADDED_V2 = (("epochs", "INTEGER"), ("pool_snapshot", "INTEGER"), ("pool_hit_ratio", "REAL"),
             ("pool_coverage", "REAL"))
_ADDED_V4 = (("predicted_reward", "REAL"), ("predicted_spread", "REAL"))
_ADDED_V5 = (("fidelity", "REAL"), ("steps", "INTEGER"))
_ADDED = _ADDED_V2 + _ADDED_V4 + _ADDED_V5
"""Evaluation columns added since v1 (v2: the knowledge pool; v4: the critic's prediction;
v5: the fidelity); an older store gains them in place, NULL."""


def full_only(db: sqlite3.Connection) -> str:
    """SQL (``AND ...``) that keeps an evaluations query to full-fidelity rows; nothing for a
    store read as it was before schema v5 (no ``fidelity`` column: it holds no other)."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(evaluations)")}
    return "AND (fidelity IS NULL OR fidelity >= 1) " if "fidelity" in cols else ""


def create_atomically(path: Path) -> None:
    """Make a new store's database at ``path`` whole, then link it into place: processes that
    open a fresh store at the same moment all find either no file or a complete store (one of
    them wins the link; the others open its store), never a half-made or empty file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))
        finally:
            db.close()
        try:
            os.link(tmp, path)  # atomic; fails if another process linked first
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: the store is made in place
            pass
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            with contextlib.suppress(OSError):
                leftover.unlink()


def schema_current(db: sqlite3.Connection, tables: set[str], version: int) -> bool:
    """Whether a database (its ``tables`` and recorded schema ``version``) already has this
    version's schema: then opening it to write writes nothing (no migration to run)."""
    if version != SCHEMA_VERSION or not {"meta", "experiments", "evaluations",
                                         "updates"} <= tables:
        return False
    have = {r[1] for r in db.execute("PRAGMA table_info(evaluations)")}
    index = db.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND "
                       "name='eval_cache'").fetchone()
    return index is not None and all(name in have for name, _ in _ADDED)


def connect_readonly(root: Path, path: Path) -> sqlite3.Connection:
    """A connection to the database ``path`` (in the store folder ``root``) that cannot write.

    Where this process may write the folder and the database, it is an ordinary connection
    made ``query_only``: SQLite then removes the ``-wal`` and ``-shm`` files it opened with
    when it closes, so a reader leaves the store's files as it found them (a ``mode=ro``
    connection would leave them behind). Elsewhere it is ``mode=ro``, and a WAL database in a
    folder this process may not write (no ``-shm`` to create) is opened ``immutable``: nobody
    can be writing it then.

    Raises:
        sqlite3.DatabaseError: the file is not a readable database.
    """
    uri = quote(str(path.resolve()))
    tries = [f"file:{uri}?mode=ro", f"file:{uri}?mode=ro&immutable=1"]
    if os.access(root, os.W_OK) and os.access(path, os.W_OK):
        tries.insert(0, f"file:{uri}?mode=rw")
    for i, target in enumerate(tries):
        db = sqlite3.connect(target, uri=True, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.text_factory = decode_text
        try:
            if target.endswith("mode=rw"):
                db.execute("PRAGMA query_only=1")
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            db.close()
            if i == len(tries) - 1 or (target.endswith("mode=ro") and os.access(root, os.W_OK)):
                raise
    raise AssertionError("unreachable")
