"""Run leases: a process that runs a search holds its run's lease (a ``leases`` row with a
heartbeat); a lease whose owner died (same host: its pid is gone; elsewhere: no heartbeat for
:data:`LEASE_TTL` seconds) is taken over, and a ``running`` run without a live lease reads as
``interrupted`` (see :mod:`fnas.knowledge.store`'s contract)."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from fnas.errors import StoreError
from fnas.knowledge.records import Experiment
from fnas.knowledge.rows import db_errors

__all__ = ["LEASE_TTL", "Leases"]

LEASE_TTL = 60.0
"""Seconds without a heartbeat after which another host's lease is considered dead."""
_HEARTBEAT = 5.0
_OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    """The lease methods of :class:`~fnas.knowledge.store.Store` (a mixin: they use the
    store's connection ``_db``, its database ``path`` and its ``_leases`` heartbeat events)."""

    _db: sqlite3.Connection
    path: Path
    _leases: dict[int, threading.Event]

    def _lease_table(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS leases (experiment_id INTEGER PRIMARY KEY,"
                         " owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"
                         " heartbeat REAL NOT NULL)")

    @staticmethod
    def _lease_dead(host: str, pid: int, heartbeat: float, now: float) -> bool:
        if host == socket.gethostname():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, OverflowError, ValueError):
                pass
        return now - float(heartbeat) > LEASE_TTL

    @db_errors
    def acquire_lease(self, exp_id: int, name: str = "") -> None:
        """Take the run's lease (this process now runs it) and keep it alive from a heartbeat
        thread until :meth:`release_lease` or :meth:`close`.

        Raises:
            StoreError: another live process holds it (names its pid and host).
        """
        if exp_id in self._leases:
            return
        self._lease_table()
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT owner, host, pid, heartbeat FROM leases WHERE "
                                   "experiment_id=?", (exp_id,)).fetchone()
            if row is not None and row["owner"] != _OWNER and \
                    not self._lease_dead(row["host"], row["pid"], row["heartbeat"], now):
                raise StoreError(f"run {name or exp_id!r} is being run or resumed by pid "
                                 f"{row['pid']} on {row['host']} (heartbeat "
                                 f"{max(0.0, now - row['heartbeat']):.0f} s ago); wait for it "
                                 "to finish or stop it first")
            self._db.execute("INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?)",
                             (exp_id, _OWNER, socket.gethostname(), os.getpid(), now))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        stop = threading.Event()
        self._leases[exp_id] = stop
        threading.Thread(target=self._heartbeat, args=(exp_id, stop), daemon=True,
                         name=f"fnas-lease-{exp_id}").start()

    def _heartbeat(self, exp_id: int, stop: threading.Event) -> None:
        try:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error:
            return
        try:
            while not stop.wait(_HEARTBEAT):
                try:
                    db.execute("UPDATE leases SET heartbeat=? WHERE experiment_id=? AND owner=?",
                               (time.time(), exp_id, _OWNER))
                except sqlite3.Error:
                    pass  # a busy or full disk: the next beat tries again
        finally:
            db.close()

    @db_errors
    def release_lease(self, exp_id: int) -> None:
        """Give the run's lease back (a no-op if this process does not hold it)."""
        stop = self._leases.pop(exp_id, None)
        if stop is None:
            return
        stop.set()
        self._db.execute("DELETE FROM leases WHERE experiment_id=? AND owner=?",
                         (exp_id, _OWNER))


    def _alive(self, exp: Experiment) -> Experiment:
        """``running`` only while a live process holds the run's lease: a run whose process
        died (kill -9, or a full disk that refused even its status) reads ``interrupted``."""
        if exp.status != "running":
            return exp
        try:
            row = self._db.execute("SELECT owner, host, pid, heartbeat FROM leases WHERE "
                                   "experiment_id=?", (exp.id,)).fetchone()
        except sqlite3.OperationalError:  # no leases table: no process ever held one
            row = None
        if row is not None and (row["owner"] == _OWNER or not self._lease_dead(
                row["host"], row["pid"], row["heartbeat"], time.time())):
            return exp
        return replace(exp, status="interrupted")
