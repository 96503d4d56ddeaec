"""Readers that go on past damaged rows, so that one damaged row never stops the others.

- ``fnas runs`` lists every run: a run whose experiment row is damaged is a
  :class:`DamagedRun` (status ``damaged`` and the one-line reason) among the intact ones
  (:func:`scan_experiments`); :meth:`Store.list_experiments` leaves it out with a warning on
  the ``fnas`` logger.
- ``fnas show``, reports and the pool's statistics skip a run's damaged evaluation rows and
  say how many they skipped (:func:`readable_evaluations`); the summary and the best
  architectures are then computed from the rows that remain (:func:`summary_of`,
  :func:`top_of`, equal to ``Store.summary`` and ``Store.top`` on intact rows).

Only readers skip. A search or a resume reads every row of its run strictly
(``Store.get_experiment``, ``Store.evaluations``) and refuses a damaged one in one line, so
nothing recorded is ever silently dropped from a run's record.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fnas.errors import StoreError
from fnas.knowledge.records import Evaluation, Experiment, StoreLike
from fnas.knowledge.rows import db_errors, to_eval, to_experiment, to_update

__all__ = ["DamagedRun", "scan_experiments", "intact_experiments", "readable_evaluations",
           "readable_updates", "readable", "skipped", "summary_of", "top_of"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DamagedRun:
    """A run whose experiment row cannot be read: its id, its name as far as it is text, and
    the one-line reason (the field and the value)."""

    id: int
    name: str
    reason: str
    status: str = "damaged"


@db_errors
def scan_experiments(store: StoreLike) -> list[Experiment | DamagedRun]:
    """Every run of the store by id: an :class:`Experiment`, or a :class:`DamagedRun` for a
    row that does not pass the checks."""
    out: list[Experiment | DamagedRun] = []
    for row in store._db.execute("SELECT * FROM experiments ORDER BY id").fetchall():
        try:
            out.append(store._alive(to_experiment(row)))
        except StoreError as e:
            name = row["name"] if isinstance(row["name"], str) else repr(row["name"])
            out.append(DamagedRun(row["id"], name, str(e)))
    return out


def intact_experiments(store: StoreLike) -> list[Experiment]:
    """The runs whose rows pass the checks; each damaged one is left out with a warning."""
    out = []
    for e in scan_experiments(store):
        if isinstance(e, DamagedRun):
            logger.warning("skipped a damaged run: %s", e.reason)
        else:
            out.append(e)
    return out


def readable(rows: Iterable[sqlite3.Row], what: str = "") -> list[Evaluation]:
    """The evaluation rows that pass the checks; the damaged ones are skipped, and counted in
    one warning (naming ``what`` they were read for, and the first one's reason)."""
    good, bad = _split(rows)
    if bad:
        logger.warning("%s%d damaged evaluation row%s skipped (the first: %s)",
                       f"{what}: " if what else "", len(bad), "s" * (len(bad) > 1), bad[0])
    return good


def _split(rows: Iterable[sqlite3.Row]) -> tuple[list[Evaluation], list[str]]:
    good, bad = [], []
    for row in rows:
        try:
            good.append(to_eval(row))
        except StoreError as e:
            bad.append(str(e))
    return good, bad


def skipped(run: str, bad: list[str], kind: str = "evaluation") -> str:
    """The one line that says a reader skipped ``bad`` (their reasons) of ``run``'s rows."""
    return (f"run {run!r}: {len(bad)} damaged {kind} row{'s' * (len(bad) > 1)} skipped "
            f"(the first: {bad[0]})")


@db_errors
def readable_evaluations(store: StoreLike, exp_id: int) -> tuple[list[Evaluation], list[str]]:
    """A run's evaluations in recording order, without its damaged rows, and the reasons
    (one line each) of the rows skipped."""
    return _split(store._db.execute("SELECT * FROM evaluations WHERE experiment_id=? "
                                    "ORDER BY id", (exp_id,)).fetchall())


@db_errors
def readable_updates(store: StoreLike, exp_id: int) -> tuple[list[dict[str, Any]], list[str]]:
    """``Store.updates`` without the damaged rows, and the reasons of the rows skipped."""
    try:
        return store.updates(exp_id), []
    except StoreError:
        pass
    good, bad = [], []
    for r in store._db.execute("SELECT * FROM updates WHERE experiment_id=? ORDER BY "
                               "iteration", (exp_id,)).fetchall():
        try:
            good.append(to_update(r))
        except StoreError as e:
            bad.append(str(e))
    return good, bad


def summary_of(evals: list[Evaluation]) -> dict[str, Any]:
    """``Store.summary`` computed from evaluations already read."""
    real = [e.reward for e in evals if e.counts]
    return {"evaluated": len(evals), "trained": sum(e.trained for e in evals),
            "cached": sum(e.cached for e in evals),
            "failed": sum(e.status != "ok" for e in evals),
            "train_seconds": float(sum(e.train_seconds for e in evals)),
            "best_reward": max(real) if real else None}


def top_of(evals: list[Evaluation], k: int = 5) -> list[Evaluation]:
    """``Store.top`` computed from evaluations already read: the best ``k`` distinct
    architectures by reward (real full-fidelity results only; ties by recording order)."""
    ranked = sorted((e for e in evals if e.counts),
                    key=lambda e: (-e.reward, e.id if e.id is not None else 0))
    out, seen = [], set()
    for e in ranked:
        if e.arch_key not in seen and len(out) < k:
            seen.add(e.arch_key)
            out.append(e)
    return out
