"""What the ``fnas`` strategy's veto rule learns besides tensors and generators
(:class:`FNASState`), and how it checkpoints itself: JSON under the checkpoint's
``strategy.fnas`` field, beside the critic's state and the decision generator's."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FNASState"]


@dataclass
class FNASState:
    """The veto rule's learned state (see :mod:`~fnas.strategies.fnas.veto` for its use).

    Errors, spreads and tau are in units of the run's reward standard deviation.
    """

    tau: float
    """Spread under which a prediction is confident (shrinks and grows with the audits)."""
    errors: deque[float]
    """Recent absolute errors of predictions against real rewards (the audit window)."""
    pretrained: int = 0
    """Critic points from earlier experiments (the first points of its data)."""
    knowledge: str = "none"
    """The pre-trained knowledge's standing: none | pending | kept | failed | forgotten."""
    judge_pairs: list[tuple[float, float]] = field(default_factory=list)
    """(prediction, real reward), normalised, that a pending knowledge is judged on."""
    calibration: tuple[float, float] | None = None
    """(slope, intercept) mapping kept knowledge's predictions onto this run's rewards."""
    n_real: int = 0
    """Distinct architectures with a real result in this run."""
    best_real: float = -math.inf
    """The best real reward of this run."""
    streak: int = 0
    """Predictions in a row (the stall guard trains after ``max_predicted_streak``)."""
    norm: tuple[float, float] | None = None
    """(mean, sd) that normalise this run's rewards, once ``norm_after`` results are in."""
    pending_real: list[tuple[list[int], float]] = field(default_factory=list)
    """Real results not yet given to the critic (before the normalisation is fixed)."""
    seen: set[tuple[int, ...]] = field(default_factory=set)
    """Decision vectors with a real result in this run."""
    counts: dict[str, int] = field(default_factory=lambda: {"trained": 0, "predicted": 0,
                                                            "audited": 0})
    """Cumulative decisions: trained, predicted, audited."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, as checkpoints have always held it."""
        return {"tau": self.tau, "errors": list(self.errors), "pretrained": self.pretrained,
                "n_real": self.n_real, "knowledge": self.knowledge,
                "judge_pairs": self.judge_pairs, "seen": sorted(list(k) for k in self.seen),
                "calibration": self.calibration,
                "best_real": self.best_real if self.best_real > -math.inf else None,
                "streak": self.streak, "norm": self.norm, "pending_real": self.pending_real,
                "counts": self.counts}

    @classmethod
    def from_dict(cls, d: dict[str, Any], error_window: int) -> FNASState:
        """From :meth:`to_dict`'s output; ``error_window`` bounds the audit window. Fields
        that older checkpoints lack (knowledge, judge_pairs, seen, calibration) take what
        those versions meant.

        Raises:
            KeyError, TypeError, ValueError: a field is missing or damaged.
        """
        cal, norm = d.get("calibration"), d["norm"]
        return cls(
            tau=float(d["tau"]), errors=deque(d["errors"], maxlen=error_window),
            pretrained=int(d["pretrained"]),
            knowledge=d.get("knowledge", "pending" if d["pretrained"] else "none"),
            judge_pairs=[(float(a), float(b)) for a, b in d.get("judge_pairs", [])],
            calibration=(float(cal[0]), float(cal[1])) if cal is not None else None,
            n_real=int(d["n_real"]),
            best_real=float(d["best_real"]) if d["best_real"] is not None else -math.inf,
            streak=int(d["streak"]),
            norm=(float(norm[0]), float(norm[1])) if norm is not None else None,
            pending_real=[(list(x), float(r)) for x, r in d["pending_real"]],
            seen={tuple(k) for k in d.get("seen", [])}, counts=dict(d["counts"]))
