"""Giving a store's disk space back (``fnas pool prune``): what no search will read again, and,
when asked, pool weights a later search could still reuse.

Where a store's space goes: its database is small (a few kB per evaluation); each run keeps
one checkpoint, replaced after every update (a few MB with the ``fnas`` critic); the
**knowledge pool** (:mod:`fnas.knowledge.pool`) keeps every block of every trained
architecture, a file per block (about 2.5 MB per MnasNet training: some 90% of a store after
a digits search). :func:`prune_store` removes, always:

- **superseded pool entries**: an entry whose block (stage, configuration and input
  channels) a later entry of the same space repeats. The pool initialises a block from the
  closest entry, ties going to the freshest (:mod:`fnas.knowledge.snapshot`), so such an entry
  is never picked while the fresher one's file is whole. One is kept where a snapshot that a
  run may resume with (the one its last batch used: a batch stopped partway resumes from it)
  holds it without the fresher one, so that every recorded run still resumes exactly;
- **orphan pool files** (no entry names them: a kill between a file and its row) and
  leftover temporary files (``*.tmp`` in ``pool/`` and ``runs/``, a half-made database).

With ``runs``, it also removes the pool entries those runs' trainings added; with
``everything``, every pool entry. Those are weights a later search could reuse (it then
starts those blocks from others, or from scratch): asked for, never done by default.

It never touches a run's evaluations, its updates or its checkpoint: every run reads and
resumes as before (a batch stopped partway and resumed after ``runs``/``everything`` starts
its remaining trainings from what is left of the pool). It refuses while a search runs in
the store; rows go first, in one transaction, then the files no row names (a kill between
leaves orphan files, which the next prune removes).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnas.errors import ConfigError, StoreError
from fnas.knowledge.pool import SHA
from fnas.knowledge.store import Store

__all__ = ["PruneReport", "prune_store"]



@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune_store` removed (or, with ``dry_run``, would remove) and what is left."""

    entries: int
    """Pool entries removed."""
    files: int
    """Files removed (pool files no entry names any more, orphans, temporary files)."""
    bytes: int
    """Bytes those files held."""
    kept_entries: int
    """Pool entries left."""
    kept_bytes: int
    """Bytes of the pool files left."""
    checkpoint_bytes: int
    """Bytes of the runs' checkpoints (never removed; listed to show where space goes)."""
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "files": self.files, "bytes": self.bytes,
                "kept_entries": self.kept_entries, "kept_bytes": self.kept_bytes,
                "checkpoint_bytes": self.checkpoint_bytes, "dry_run": self.dry_run}


def prune_store(store: Store, *, runs: Sequence[int | str] = (), everything: bool = False,
                dry_run: bool = False) -> PruneReport:
    """Remove what no search will read again from ``store`` (see the module), and, with
    ``runs`` (names or ids), the pool entries their trainings added, or with ``everything``
    the whole pool. ``dry_run`` reports without removing (a read-only store is enough).

    Raises:
        StoreError: a search is running in the store, an unknown run, a read-only store
            (without ``dry_run``), or the database fails. Nothing is removed then.
        ConfigError: ``runs`` and ``everything`` together.
    """
    if everything and runs:
        raise ConfigError("give runs or everything, not both")
    exps = store.list_experiments()
    live = [e for e in exps if e.status == "running"]
    if live:
        raise StoreError(f"run {live[0].name!r} is running in {store.root}: prune when no "
                         "search runs there")
    ids = [store.get_experiment(r).id for r in runs]  # an unknown run refused first
    if not dry_run and store.readonly:
        raise StoreError(f"cannot prune through a read-only store {store.root}")
    rows = _pool_rows(store._db)
    drop = {r["id"] for r in rows if everything or r["run"] in ids}
    drop |= _superseded(rows, _resumable_snapshots(store._db)) - drop
    kept = {r["sha256"] for r in rows if r["id"] not in drop}
    doomed = _files(store.root, kept)
    freed = sum(_size(p) for p in doomed)
    if not dry_run:
        _delete_rows(store, sorted(drop))
        for path in doomed:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise StoreError(f"cannot remove {path}: {e.strerror or e}") from None
        _remove_empty_folders(store.root / "pool")
    kept_bytes = sum(_size(Path(store.root, "pool", s[:2], f"{s}.safetensors")) for s in kept)
    ckpt = sum(_size(p) for p in (store.root / "runs").glob("*/checkpoint.*")
               if not p.name.endswith(".tmp"))
    return PruneReport(len(drop), len(doomed), freed, len(rows) - len(drop), kept_bytes, ckpt,
                       dry_run)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _pool_rows(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every pool entry in the order the pool ranks them (:meth:`Pool.entries`), with the run
    whose training added it (None without one)."""
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                      "name='pool_entries'").fetchone() is None:
            return []
        q = ("SELECT p.id, p.space, p.stage, p.block, p.in_chs, p.sha256, "
             "ev.experiment_id AS run FROM pool_entries p LEFT JOIN evaluations ev "
             "ON ev.id = p.source_eval ORDER BY p.space, COALESCE(ev.pool_snapshot, p.id - 1), "
             "COALESCE(ev.slot, 0), p.id")
        return [dict(r) for r in db.execute(q)]
    except sqlite3.DatabaseError as e:
        raise StoreError(f"pool table is unusable: {' '.join(str(e).split())}") from None


def _resumable_snapshots(db: sqlite3.Connection) -> set[int]:
    """The pool snapshots that a run's last batch used: a batch stopped partway resumes from
    its snapshot, rebuilt from the entries with ids up to it."""
    q = ("SELECT DISTINCT ev.pool_snapshot FROM evaluations ev JOIN (SELECT experiment_id, "
         "MAX(iteration) AS it FROM evaluations GROUP BY experiment_id) last ON "
         "ev.experiment_id = last.experiment_id AND ev.iteration = last.it "
         "WHERE ev.pool_snapshot IS NOT NULL")
    return {int(r[0]) for r in db.execute(q) if isinstance(r[0], int)}


def _superseded(rows: list[dict[str, Any]], snapshots: set[int]) -> set[int]:
    """Entries no snapshot would pick while a fresher entry of the same block is whole: in
    the present pool and in every snapshot a run may resume with."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:  # in rank order: the last of a group is the freshest
        groups.setdefault((r["space"], r["stage"], r["block"], r["in_chs"]), []).append(r)
    out = set()
    for group in groups.values():
        for i, r in enumerate(group[:-1]):
            later = [g["id"] for g in group[i + 1:]]
            if all(any(j <= x for j in later) for x in snapshots if r["id"] <= x):
                out.add(r["id"])
    return out


def _files(root: Path, kept: set[str]) -> list[Path]:
    """Files to remove: pool files no kept entry names, and leftover temporary files."""
    out = []
    pool = root / "pool"
    if pool.is_dir():
        for p in pool.rglob("*"):
            if p.is_file() and (p.name.endswith(".tmp") or (
                    p.suffix == ".safetensors" and SHA.fullmatch(p.stem)
                    and p.stem not in kept)):
                out.append(p)
    runs = root / "runs"
    if runs.is_dir():
        out += [p for p in runs.glob("*/*.tmp") if p.is_file()]
    out += [p for p in root.glob(".fnas.db.*.new*") if p.is_file()]
    return sorted(out)


def _delete_rows(store: Store, ids: list[int]) -> None:
    db = store._db
    if not ids:
        return
    try:
        db.execute("BEGIN IMMEDIATE")
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            db.execute(f"DELETE FROM pool_entries WHERE id IN ({','.join('?' * len(chunk))})",
                       chunk)
        db.execute("COMMIT")
    except sqlite3.DatabaseError as e:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise StoreError(f"pool entries not removed from {store.path}: {e}") from None


def _remove_empty_folders(pool: Path) -> None:
    if not pool.is_dir():
        return
    for d in pool.iterdir():
        if d.is_dir():
            try:
                os.rmdir(d)  # only if empty
            except OSError:
                pass
