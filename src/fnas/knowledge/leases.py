"""Run leases: a process that runs a search holds its run's lease (a ``leases`` row with a
heartbeat); a lease whose owner died (same host: its pid is gone; elsewhere: no heartbeat for
:data:`LEASE_TTL` seconds) is taken over, and a ``running`` run without a live lease reads as
``interrupted`` (see :mod:`fnas.knowledge.store`'s contract)."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from fnas.errors import StoreError
from fnas.knowledge.records import Experiment
from fnas.knowledge.rows import db_errors

__all__ = ["LEASE_TTL", "Leases"]

LEASE_TTL = 60.0
"""Seconds without a heartbeat after which another host's lease is considered dead."""
_HEARTBEAT = 5.0
_TOKEN = uuid.uuid4().hex[:8]

# Within one process every lease row has the same owner, so the threads of the process are
# told apart here: (database file, run id) -> (thread, heartbeat stop, the holding store's
# leases); (database file, run name) -> the thread that runs it (Leases.running).
_LOCK = threading.Lock()
_HELD: dict[tuple[tuple[int, int], int], tuple[threading.Thread, threading.Event, dict]] = {}
_RUNNING: dict[tuple[tuple[int, int], str], threading.Thread] = {}


def _owner() -> str:
    """This process's lease owner (its pid now: a forked child is another owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_TOKEN}"


def _busy(name: object, thread: threading.Thread) -> StoreError:
    who = ("this thread, in a search that has not returned" if thread is
           threading.current_thread() else f"another thread of this process (pid "
           f"{os.getpid()}, thread {thread.name!r})")
    return StoreError(f"run {name!r} is being run by {who}; wait for it to finish, or give "
                      "each thread a run of its own")


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
                if int(pid) <= 0:  # a damaged row: 0 or -1 would signal a process group
                    return True
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, OverflowError, ValueError, TypeError):
                pass
        try:
            return now - float(heartbeat) > LEASE_TTL
        except (TypeError, ValueError):  # a damaged heartbeat: nobody keeps it alive
            return True

    def _db_file(self) -> tuple[int, int]:
        """The database file's identity (device, inode): two paths to one store are one."""
        try:
            st = os.stat(self.path)
            return st.st_dev, st.st_ino
        except OSError as e:
            raise StoreError(f"cannot open store database {self.path}: {e.strerror or e}"
                             ) from None

    @db_errors
    def acquire_lease(self, exp_id: int, name: str = "") -> None:
        """Take the run's lease (this process now runs it) and keep it alive from a heartbeat
        thread until :meth:`release_lease` or :meth:`close`.

        Raises:
            StoreError: another live process holds it (names its pid and host), or another
                thread of this process does (says so).
        """
        if exp_id in self._leases:
            return
        key, me, stop = (self._db_file(), exp_id), threading.current_thread(), threading.Event()
        with _LOCK:
            held = _HELD.get(key)
            if held is not None and held[0] is not me and held[0].is_alive():
                raise _busy(name or exp_id, held[0])
            if held is not None:  # this thread's earlier store, or a finished thread's
                held[1].set()
                held[2].pop(exp_id, None)  # so that its close leaves the lease alone
            _HELD[key] = (me, stop, self._leases)
        try:
            self._take_lease(exp_id, name)
        except BaseException:
            with _LOCK:
                if _HELD.get(key, (None, None))[1] is stop:
                    del _HELD[key]
            raise
        self._leases[exp_id] = stop
        threading.Thread(target=self._heartbeat, args=(exp_id, stop), daemon=True,
                         name=f"fnas-lease-{exp_id}").start()

    @db_errors
    def check_lease(self, exp_id: int, name: str = "") -> None:
        """Refuse, as :meth:`acquire_lease` would, a run that another live process or thread
        runs, without writing anything (a resume asks before its other checks, so that it
        says who runs the run rather than what that run has changed meanwhile).

        Raises:
            StoreError: another live process, or another thread of this one, holds it.
        """
        if exp_id in self._leases:
            return
        with _LOCK:
            held = _HELD.get((self._db_file(), exp_id))
        if held is not None and held[0] is not threading.current_thread() and \
                held[0].is_alive():
            raise _busy(name or exp_id, held[0])
        try:
            row = self._db.execute("SELECT owner, host, pid, heartbeat FROM leases WHERE "
                                   "experiment_id=?", (exp_id,)).fetchone()
        except sqlite3.OperationalError:  # no leases table: no process ever held one
            return
        self._refuse_live(row, exp_id, name, time.time())

    def _refuse_live(self, row: sqlite3.Row | None, exp_id: int, name: str, now: float) -> None:
        if row is not None and row["owner"] != _owner() and \
                not self._lease_dead(row["host"], row["pid"], row["heartbeat"], now):
            raise StoreError(f"run {name or exp_id!r} is being run or resumed by pid "
                             f"{row['pid']} on {row['host']} (heartbeat "
                             f"{max(0.0, now - float(row['heartbeat'])):.0f} s ago); wait "
                             "for it to finish or stop it first")

    def _take_lease(self, exp_id: int, name: str) -> None:
        self._lease_table()
        now, owner = time.time(), _owner()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT owner, host, pid, heartbeat FROM leases WHERE "
                                   "experiment_id=?", (exp_id,)).fetchone()
            self._refuse_live(row, exp_id, name, now)
            self._db.execute("INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?)",
                             (exp_id, owner, socket.gethostname(), os.getpid(), now))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def running(self, name: str) -> Iterator[None]:
        """This thread runs the run ``name`` for the duration (``Search.optimize``): another
        thread of this process that tries meanwhile, even before the run is created, is
        refused in one line; at the end this store gives back the run's lease if it still
        holds it (a resume refused after taking it).

        Raises:
            StoreError: another thread of this process runs it.
        """
        key, me = (self._db_file(), name), threading.current_thread()
        with _LOCK:
            holder = _RUNNING.get(key)
            if holder is not None and holder.is_alive():
                raise _busy(name, holder)
            _RUNNING[key] = me
        try:
            yield
        finally:
            with _LOCK:
                if _RUNNING.get(key) is me:
                    del _RUNNING[key]
            if self._leases:
                with contextlib.suppress(StoreError, sqlite3.Error):
                    row = self._db.execute("SELECT id FROM experiments WHERE name=?",
                                           (name,)).fetchone()
                    if row is not None:
                        self.release_lease(row[0])

    def _heartbeat(self, exp_id: int, stop: threading.Event) -> None:
        try:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error:
            return
        try:
            while not stop.wait(_HEARTBEAT):
                try:
                    db.execute("UPDATE leases SET heartbeat=? WHERE experiment_id=? AND owner=?",
                               (time.time(), exp_id, _owner()))
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
        with _LOCK:
            key = next((k for k, v in _HELD.items() if v[1] is stop), None)
            if key is not None:
                del _HELD[key]
        self._db.execute("DELETE FROM leases WHERE experiment_id=? AND owner=?",
                         (exp_id, _owner()))


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
        if row is not None and (row["owner"] == _owner() or not self._lease_dead(
                row["host"], row["pid"], row["heartbeat"], time.time())):
            return exp
        return replace(exp, status="interrupted")
