"""The lifelong knowledge pool, write side: trained block weights, shared across runs.

Layout under the store's root (beside ``fnas.db``)::

    DIR/pool/<sha[:2]>/<sha256>.safetensors   one block's tensors (see fnas.knowledge.snapshot)
    DIR/fnas.db, table pool_entries          one row per (space, stage, file)

A row holds the space, the stage, the canonical block string and its input channels, the file's
hash, size and parameter count, the source (architecture key, evaluation id, task signature),
the epochs of the training that produced it and the epochs it has seen in total (its own plus
those of the entry it was initialised from), and the time.

**Fairness.** :meth:`Pool.snapshot` returns an immutable :class:`PoolSnapshot`: the entries
with id <= :attr:`PoolSnapshot.id`. Rows are never changed or deleted and ids never reused, so
``pool.snapshot(upto=snap.id)`` rebuilds the same view later (a resumed batch initialises
exactly as the interrupted one did). A batch reads one snapshot; the driver, the only writer,
adds each trained architecture's weights as it records its evaluation (:meth:`Pool.stage`,
then :meth:`Pool.insert` in the evaluation's transaction: ``PoolRunner.commit``), so the rest
of the batch, reading the snapshot, sees the pool as it was between batches.

NOTE: entries match within one ``space`` string: pass the space's ``signature`` to share only
within one input-size variant, or a coarser name (say ``decision_signature``) to share wider.

Contract (as :class:`~fnas.knowledge.Store`):

- **Persistence.** :meth:`Pool.add` writes the files (temp file, fsync, atomic rename) before
  the rows, and all rows of one architecture in one transaction: a kill -9 leaves at worst an
  orphan file, never a row without its file.
- **Concurrency.** One writer, the search driver; readers and snapshots anywhere (WAL). The
  pool has its own SQLite connection to the store's database.
- **Atomicity.** Adding the same block weights twice (same space, stage and hash) is a no-op
  that returns the existing entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import save as st_save

from fnas._io import atomic_write_bytes
from fnas.errors import ConfigError, StoreError
from fnas.knowledge.snapshot import (
    BlockInit,
    InitStats,
    PoolEntry,
    PoolSnapshot,
    PoolWarning,
    entry_path,
)
from fnas.knowledge.store import Store
from fnas.nn.builder import build_model
from fnas.nn.transfer import SimilarityWeights, block_in_chs, is_buffer, split_blocks
from fnas.space.spec import ArchSpec

__all__ = ["Pool", "PoolStats", "pool_stats", "PoolSnapshot", "PoolEntry", "BlockInit",
           "InitStats", "PoolWarning"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pool_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    space TEXT NOT NULL,
    stage INTEGER NOT NULL,
    block TEXT NOT NULL,
    in_chs INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    nbytes INTEGER NOT NULL,
    params INTEGER NOT NULL,
    arch_key TEXT NOT NULL,
    source_eval INTEGER,
    task TEXT NOT NULL,
    epochs INTEGER NOT NULL,
    total_epochs INTEGER NOT NULL,
    created REAL NOT NULL,
    UNIQUE (space, stage, sha256)
);
CREATE INDEX IF NOT EXISTS pool_by_stage ON pool_entries (space, stage, id);
"""
_FORMAT = "fnas-pool-entry/1"
SHA = re.compile(r"[0-9a-f]{64}")
"""A weights file's name before ``.safetensors``: its content's SHA-256, in hex."""


@dataclass(frozen=True)
class PoolStats:
    """Counts and disk use (for ``fnas pool stats``)."""

    entries: int
    files: int
    """Distinct files referenced."""
    disk_bytes: int
    """Bytes of the referenced files present on disk."""
    missing: int
    """Referenced files absent from disk."""
    corrupted: int = 0
    """Referenced files present whose bytes do not hash to their name (searches skip them)."""
    per_space: dict[str, int] = field(default_factory=dict)
    per_stage: dict[tuple[str, int], int] = field(default_factory=dict)
    per_config: dict[tuple[str, int, str], int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "files": self.files, "disk_bytes": self.disk_bytes,
                "missing": self.missing, "corrupted": self.corrupted,
                "per_space": dict(self.per_space),
                "per_stage": [[s, i, n] for (s, i), n in sorted(self.per_stage.items())],
                "per_config": [[s, i, b, n] for (s, i, b), n in sorted(self.per_config.items())]}


def _connect(store: Store) -> sqlite3.Connection:
    if getattr(store, "readonly", False):
        raise StoreError(f"the pool cannot be written through a read-only store {store.root}")
    try:
        db = sqlite3.connect(store.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.text_factory = lambda b: b.decode("utf-8", "replace")  # a damaged store's text
        db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
    except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
        raise StoreError(f"pool table in {store.path} is unusable: {e}") from None
    return db


def _rows(store: Store, q: str, args: tuple) -> list[PoolEntry]:
    """Pool rows read through the store's own connection (read-only stores too); none if the
    store has no pool table yet."""
    db = store._db
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                      "name='pool_entries'").fetchone() is None:
            return []
        out = []
        for r in db.execute(q, args):
            d = dict(r)
            for k, kind in (("id", int), ("space", str), ("stage", int), ("block", str),
                            ("sha256", str), ("nbytes", int)):
                if isinstance(d.get(k), bool) or not isinstance(d.get(k), kind):
                    raise StoreError(f"pool entry {d.get('id')!r}: field {k!r} holds "
                                     f"{d.get(k)!r:.40} (the store is damaged)")
            out.append(_entry(r))
        return out
    except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
        raise StoreError(f"pool table in {store.path} is unusable: "
                         f"{' '.join(str(e).split())}") from None


def _entry(row: sqlite3.Row) -> PoolEntry:
    d = dict(row)
    if not isinstance(d.get("sha256"), str) or not SHA.fullmatch(d["sha256"]):
        raise StoreError(f"pool entry {d.get('id')!r}: field 'sha256' holds "
                         f"{d.get('sha256')!r:.40}, not a sha256 (the store is damaged)")
    names = {f.name for f in dataclasses.fields(PoolEntry)}
    if set(d) != names:  # a damaged schema renames or drops columns
        raise StoreError(f"pool entry {d.get('id')!r}: columns {sorted(set(d) ^ names)} do "
                         "not match the pool table's (the store is damaged)")
    return PoolEntry(**d)


def pool_stats(store: Store, space: str | None = None) -> PoolStats:
    """Entries per space, stage and config, and disk use, of one space or all."""
    q, args = "SELECT * FROM pool_entries", ()
    if space is not None:
        q, args = q + " WHERE space=?", (space,)
    rows = _rows(store, q + " ORDER BY id", args)
    per_space: dict[str, int] = {}
    per_stage: dict[tuple[str, int], int] = {}
    per_config: dict[tuple[str, int, str], int] = {}
    for e in rows:
        per_space[e.space] = per_space.get(e.space, 0) + 1
        per_stage[(e.space, e.stage)] = per_stage.get((e.space, e.stage), 0) + 1
        k = (e.space, e.stage, e.block)
        per_config[k] = per_config.get(k, 0) + 1
    disk = missing = corrupted = 0
    shas = {e.sha256 for e in rows}
    for sha in shas:
        try:
            path = entry_path(store.root, sha)
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                    h.update(chunk)
            disk += path.stat().st_size
        except OSError:
            missing += 1
            continue
        corrupted += h.hexdigest() != sha
    return PoolStats(len(rows), len(shas), disk, missing, corrupted, per_space, per_stage,
                     per_config)


class Pool:
    """The knowledge pool of one ``space`` in a :class:`~fnas.knowledge.Store`.

    Raises:
        StoreError: the store's database cannot hold the pool table.
    """

    def __init__(self, store: Store, space: str,
                 weights: SimilarityWeights | None = None) -> None:
        if not space:
            raise ConfigError("a pool needs a non-empty space name")
        self.store = store
        self.space = space
        self.weights = weights or SimilarityWeights()
        self.root = store.root
        self._db = _connect(store)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entries(self, stage: int | None = None, upto: int | None = None) -> list[PoolEntry]:
        """This space's entries, oldest first (optionally one stage, ids <= ``upto``).

        "Oldest first" is by batch, then slot: the entries of one search batch come after
        everything its snapshot held and are ordered by their evaluation's slot, not by when
        each training finished. Parallel rollouts complete in any order, and ties in the
        similarity go to the freshest entry, so this keeps a search reproducible under Ray.
        An entry without a source evaluation counts as one batch of its own.
        """
        q = ("SELECT p.* FROM pool_entries p LEFT JOIN evaluations ev ON ev.id = p.source_eval"
             " WHERE p.space=?")
        args: list[Any] = [self.space]
        if stage is not None:
            q += " AND p.stage=?"
            args.append(stage)
        if upto is not None:
            q += " AND p.id<=?"
            args.append(upto)
        q += " ORDER BY COALESCE(ev.pool_snapshot, p.id - 1), COALESCE(ev.slot, 0), p.id"
        return [_entry(r) for r in self._db.execute(q, args)]

    def snapshot(self, upto: int | None = None) -> PoolSnapshot:
        """The pool as it is now (or as it was when its last id was ``upto``), frozen."""
        if upto is None:
            row = self._db.execute("SELECT MAX(id) FROM pool_entries").fetchone()
            upto = int(row[0] or 0)
        return PoolSnapshot(self.root, self.space, upto, tuple(self.entries(upto=upto)),
                            self.weights)

    def stats(self) -> PoolStats:
        return pool_stats(self.store, self.space)

    def verify(self) -> list[PoolEntry]:
        """Entries whose file is missing or corrupted (reads every file; warns for each)."""
        snap = self.snapshot()
        return [e for e in snap.entries if snap.load(e) is None]

    def add(self, spec: ArchSpec | str, weights: Mapping[str, torch.Tensor] | None, *,
            task: str, epochs: int, source_eval: int | None = None,
            init: InitStats | None = None) -> list[PoolEntry]:
        """Pool every block of a trained architecture; returns its entries, one per stage.

        ``weights`` is the trained state dict (``Rollout.weights``); ``task`` the task
        signature; ``epochs`` this training's epochs; ``init`` the report of the
        initialisation it started from, so each entry records the epochs it has seen in total.
        (:meth:`stage` then :meth:`insert` do the same in two steps, the rows inside a
        caller's transaction.)

        Raises:
            ConfigError: no weights, or they do not match ``spec`` or are not finite (names the
                first bad tensor); nothing is written then.
            InvalidArchitecture: ``spec`` is a malformed string.
            StoreError: the database or the pool folder cannot be written.
        """
        staged = self.stage(spec, weights, task=task, epochs=epochs, init=init)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self.insert(self._db, staged, source_eval)
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"pool entries not recorded in {self.store.path}: {e}") from None
        return [_entry(self._db.execute(
            "SELECT * FROM pool_entries WHERE space=? AND stage=? AND sha256=?",
            (self.space, r[1], r[4])).fetchone()) for r in staged]

    def stage(self, spec: ArchSpec | str, weights: Mapping[str, torch.Tensor] | None, *,
              task: str, epochs: int, init: InitStats | None = None) -> list[tuple]:
        """Check ``weights`` and write their block files (content-addressed, atomic); return
        the rows for :meth:`insert`. Files before rows: a kill leaves at worst an orphan file.

        Raises: as :meth:`add`.
        """
        if isinstance(spec, str):
            spec = ArchSpec.parse(spec)
        if not weights:
            raise ConfigError(f"no weights to pool for {spec.key} (a failed rollout?)")
        blocks = split_blocks(weights)
        in_chans = _check_weights(spec, blocks)
        inherited = {b.stage: b.source_epochs for b in init.blocks
                     if b.entry_id is not None and b.copied} if init else {}
        now, rows = time.time(), []
        for i, (b, c) in enumerate(zip(spec.blocks, block_in_chs(spec, in_chans), strict=True)):
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in blocks[i].items()}
            # One metadata key: safetensors writes a multi-key map in hash order, and the
            # bytes (hence the address) must not depend on the process.
            meta = json.dumps({"format": _FORMAT, "space": self.space, "stage": i,
                               "block": b.to_str(), "in_chs": c}, sort_keys=True)
            data = st_save(tensors, metadata={"fnas": meta})
            sha = hashlib.sha256(data).hexdigest()
            self._write(sha, data)
            params = sum(t.numel() for k, t in tensors.items() if not is_buffer(k))
            rows.append((self.space, i, b.to_str(), c, sha, len(data), params, spec.key,
                         task, epochs, epochs + inherited.get(i, 0), now))
        return rows

    @staticmethod
    def insert(db: sqlite3.Connection, staged: list[tuple], source_eval: int | None) -> None:
        """Insert :meth:`stage`'s rows with their source evaluation, in the caller's open
        transaction on ``db`` (a connection to the store's database)."""
        db.executemany(
            "INSERT OR IGNORE INTO pool_entries (space, stage, block, in_chs, sha256, nbytes,"
            " params, arch_key, task, epochs, total_epochs, created, source_eval)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", [(*r, source_eval) for r in staged])

    def _write(self, sha: str, data: bytes) -> None:
        """Write ``data`` to its content address, atomically; repair a corrupted copy."""
        path = entry_path(self.root, sha)
        try:
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha:
                return
            atomic_write_bytes(path, data)
        except OSError as e:
            raise StoreError(f"cannot write pool file {path}: {e.strerror or e}") from None


def _check_weights(spec: ArchSpec, blocks: Mapping[int, Mapping[str, torch.Tensor]]) -> int:
    """Input channels of ``spec`` inferred from its stem's tensors, after checking every block
    tensor's name and shape against a (meta-device, allocation-free) build of ``spec``."""
    first = spec.blocks[0]
    names = {"cn": ("0.conv.weight", 1), "ds": ("0.conv_dw.weight", 0),
             "ir": ("0.conv_pw.weight", 1)}
    name, dim = names[first.op]
    stem = blocks.get(0, {})
    if name not in stem and first.op == "ir":
        name, dim = "0.conv_dw.weight", 0  # e1: no expansion conv
    if name not in stem:
        raise ConfigError(f"weights lack 'blocks.0.{name}' of {spec.blocks[0]}")
    in_chans = int(stem[name].shape[dim])
    with torch.device("meta"):
        want = split_blocks(build_model(spec, in_chans, 1).state_dict())
    for i in range(len(spec.blocks)):
        got = blocks.get(i, {})
        for k, t in want[i].items():
            if k not in got:
                raise ConfigError(f"weights lack 'blocks.{i}.{k}' of block {spec.blocks[i]}")
            if tuple(got[k].shape) != tuple(t.shape):
                raise ConfigError(f"weight 'blocks.{i}.{k}' has shape {tuple(got[k].shape)}, "
                                  f"block {spec.blocks[i]} needs {tuple(t.shape)}")
            if got[k].is_floating_point() and not bool(torch.isfinite(got[k]).all()):
                raise ConfigError(f"weight 'blocks.{i}.{k}' is not finite: not pooled")
        extra = sorted(set(got) - set(want[i]))
        if extra:
            raise ConfigError(f"weight 'blocks.{i}.{extra[0]}' is not in block {spec.blocks[i]}")
    return in_chans
