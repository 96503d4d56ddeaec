"""What :class:`~fnas.integration.optuna.FnasSampler` gives the ``fnas`` strategy in place of
fnas's loop: a trial's result as an evaluation (:class:`Result`) and what is known of an
architecture before it is trained (:class:`Known`, the evaluator it is attached to)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Known", "Result"]


class Known:
    """The evaluator the strategy is attached to: what is known of an architecture before it
    is trained (the sampler's ``features``; no factor of the reward, no fidelities)."""

    fidelities = False

    def __init__(self, features: Callable[[Mapping[str, Any]], Sequence[float]] | None,
                 dists: Mapping[str, Any]) -> None:
        self.fn, self.dists = features, dists

    def known_factor(self, spec: Any) -> None:
        return None

    def features(self, spec: Any) -> Sequence[float] | None:
        if self.fn is None:
            return None
        return self.fn({n: d.choices[spec[n]] for n, d in self.dists.items()})


@dataclass(frozen=True)
class Result:
    """One slot's evaluation, with the fields of a stored ``Evaluation`` that strategies read."""

    decisions: tuple[int, ...]
    arch_key: str
    reward: float
    status: str = "ok"
    trained: bool = True
    cached: bool = False
    predicted: bool = False
    audited: bool = False
    fidelity: float = 1.0
    accuracy: float | None = None
    macs: float | None = None
    latency_ms: float | None = None
