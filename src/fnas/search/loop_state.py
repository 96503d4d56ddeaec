"""The search loop's own state: its counters and its timers, as the checkpoint holds them
(``meta["loop"]``: ``iteration``, ``n_done``, ``n_trained``, ``timers``, ``experiment``,
``trained_cost`` once a low-fidelity training ran, and ``timed`` in a checkpoint written
within a batch)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["LoopState", "Timers"]


@dataclass
class Timers:
    """Seconds the loop spent on each of its parts, summed over the run's resumes (the run's
    stats and its checkpoint carry them under these names)."""

    sample: float = 0.0
    """The strategy's ``ask`` and ``decide``."""
    evaluate: float = 0.0
    """Waiting for rollouts (in this process: running them), the pool's share excluded."""
    train: float = 0.0
    """The rollouts' own training seconds (on Ray, summed over workers)."""
    pool: float = 0.0
    """Initialising trainings from the knowledge pool and writing their weights back."""
    store: float = 0.0
    """Reading and writing the store."""
    update: float = 0.0
    """The strategy's ``observe`` and ``tell``."""
    checkpoint: float = 0.0
    """Writing checkpoints."""
    wall: float = 0.0
    """The loop's wall time (what ``budget_seconds`` limits)."""

    def add(self, part: str, seconds: float) -> None:
        """Count ``seconds`` more for ``part`` (one of the fields)."""
        setattr(self, part, getattr(self, part) + seconds)

    @contextmanager
    def measure(self, part: str) -> Iterator[None]:
        """Count the time spent in the ``with`` block for ``part``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(part, time.perf_counter() - t)

    def to_dict(self) -> dict[str, float]:
        """``{part: seconds}``, in field order (as the stats show them)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Timers:
        """From :meth:`to_dict`'s output; a missing part is 0, an unknown one is ignored (a
        checkpoint written by another version)."""
        return cls(**{f.name: float(d.get(f.name, 0.0)) for f in fields(cls)})


@dataclass
class LoopState:
    """Where the loop stands after its last completed batch: what a resume continues from."""

    iteration: int = 0
    """Batches (policy updates) completed."""
    n_done: int = 0
    """Architectures evaluated (trained, cached or predicted)."""
    n_trained: int = 0
    """Of those, trained."""
    timers: Timers = field(default_factory=Timers)
    """Seconds per part of the loop."""
    trained_cost: float | None = None
    """Trainings counted by their fidelity (a training at 0.25 counts 0.25): what a budget in
    trainings spends; None: ``n_trained`` (every training at full fidelity, or a checkpoint
    written before fidelities existed)."""

    timed: list[int] = field(default_factory=list)
    """Slots of batch ``iteration`` whose seconds ``timers`` already count: a checkpoint
    written within a batch (at the compute limit) counts the slots recorded so far; one
    written after a batch, none."""

    @property
    def trained_spent(self) -> float:
        """The trainings a budget in trainings has spent (:attr:`trained_cost`)."""
        return self.n_trained if self.trained_cost is None else self.trained_cost

    def count(self, trained: bool, fidelity: float) -> None:
        """Count one evaluation's training (at ``fidelity``), if it was trained."""
        if not trained:
            return
        if fidelity < 1.0 and self.trained_cost is None:
            self.trained_cost = float(self.n_trained)
        self.n_trained += 1
        if self.trained_cost is not None:
            self.trained_cost += fidelity

    def to_dict(self, experiment: int) -> dict[str, Any]:
        """The checkpoint's ``loop`` field, which also names the run it belongs to."""
        out = {"iteration": self.iteration, "n_done": self.n_done, "n_trained": self.n_trained,
               "timers": self.timers.to_dict(), "experiment": experiment}
        if self.trained_cost is not None:  # only once a low-fidelity training ran
            out["trained_cost"] = self.trained_cost
        if self.timed:  # only in a checkpoint written within a batch
            out["timed"] = sorted(self.timed)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopState:
        """From a checkpoint's ``loop`` field (type-checked by ``restore.checked_loop_state``);
        ``{}`` is a run's start."""
        cost = d.get("trained_cost")
        return cls(int(d.get("iteration", 0)), int(d.get("n_done", 0)),
                   int(d.get("n_trained", 0)), Timers.from_dict(d.get("timers", {})),
                   None if cost is None else float(cost), list(d.get("timed", [])))
