"""What the store records: an :class:`Experiment` (one search run) and its
:class:`Evaluation` rows, as plain frozen dataclasses (no database here); and
:class:`StoreLike`, what the store's helper modules use of a store."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["EVAL_FLAGS", "Evaluation", "Experiment", "StoreLike"]

EVAL_FLAGS = ("trained", "predicted", "audited", "cached", "replayed")
"""Flags of an evaluation: really trained; reward predicted by the critic; an audit (trained
although the critic was confident); result reused from an earlier identical evaluation;
replayed (unused: a replayed sample is no new result, so it is not recorded as an
evaluation; each update's replay is logged in the ``updates`` table instead)."""


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
    fidelity: float = 1.0
    """The fraction in (0, 1] of the full evaluation protocol it ran (1: the full protocol,
    and every evaluation recorded before schema v5). Only full-fidelity real results count
    as results (:attr:`counts`)."""
    steps: int | None = None
    """Optimisation steps its training ran (None: not trained here, not reported by the
    evaluator, or recorded before schema v5)."""
    id: int | None = None

    @property
    def counts(self) -> bool:
        """Whether this is a result that counts: a real (not predicted), successful, full
        fidelity evaluation. Only these can be a run's best, its incumbent, or knowledge."""
        return self.status == "ok" and not self.predicted and self.fidelity >= 1.0


class StoreLike(Protocol):
    """What :mod:`~fnas.knowledge.rows`, :mod:`~fnas.knowledge.readers` and
    :mod:`~fnas.knowledge.frame` use of a :class:`~fnas.knowledge.store.Store`: declared here,
    below them, so that they need not import the store (which imports them)."""

    root: Path
    path: Path
    _db: sqlite3.Connection

    def _alive(self, exp: Experiment) -> Experiment: ...

    def get_experiment(self, ref: int | str) -> Experiment: ...

    def updates(self, exp_id: int) -> list[dict[str, Any]]: ...
