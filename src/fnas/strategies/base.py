"""The ask/tell contract every search strategy implements (Optuna ``BaseSampler`` style).

A strategy proposes architectures (``ask``) and learns from their rewards (``tell``). It owns
its seeded generators, so the same seed gives the same search, and it can save and restore
its whole state (``state``/``load_state``) so that a search resumes exactly where its last
checkpoint left it. Strategies never see modules, datasets or the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fnas.space.factorized import FactorizedSpace

__all__ = ["Proposal", "Strategy", "Verdict"]


@dataclass(frozen=True)
class Proposal:
    """One architecture a strategy asks to evaluate."""

    spec: Any
    """The decoded architecture (an ArchSpec for the MnasNet space)."""
    decisions: tuple[int, ...]
    """The decision vector it was decoded from."""
    logp: float | None = None
    """log-probability under the policy that drew it (the behaviour policy), if any."""
    fidelity: float = 1.0
    """The fraction in (0, 1] of the full evaluation to run it at (1: the full protocol;
    ``Evaluator.evaluate_at``). A lower fidelity's result never counts as a result."""
    replicate: int = 0
    """Which training of the architecture this is: 0 for a strategy's proposal, ``r`` >= 1
    for a repeat with a new seed that the loop's racing asks for
    (:mod:`fnas.knowledge.racing`, ``SearchConfig.confirm``)."""


@dataclass(frozen=True)
class Verdict:
    """What the decision step does with one proposal: ``train``, ``predict`` or ``audit``.

    ``predict`` records ``mean`` as the reward without training (flag ``predicted``);
    ``audit`` trains although the prediction was confident (flags ``trained`` + ``audited``).
    """

    action: str = "train"
    mean: float | None = None
    spread: float | None = None


class Strategy(ABC):
    """Base class: ``ask(n)`` then ``tell(proposals, rewards)``, alternately.

    Contract:
        - ``ask`` is called with n >= 1 and returns exactly ``fresh_count(n)`` proposals
          (n, unless the strategy replays part of its batch); it may only be followed by
          ``tell`` with those proposals (in order) and one reward each.
        - All randomness comes from generators seeded by ``seed`` in ``__init__``.
        - ``state()`` after ``tell`` and ``load_state()`` on a fresh instance with the same
          space, seed and config reproduce the rest of the search exactly.
    """

    name = "base"

    def __init__(self, space: FactorizedSpace, seed: int) -> None:
        self.space = space
        self.seed = seed

    @abstractmethod
    def ask(self, n: int) -> list[Proposal]:
        """Propose the fresh part of a batch of ``n``: ``fresh_count(n)`` architectures."""

    def fresh_count(self, n: int) -> int:
        """How many of a batch of ``n`` :meth:`ask` samples afresh (the rest of the update's
        batch comes from the strategy's memory, e.g. an experience buffer). No side effects."""
        return n

    @abstractmethod
    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        """Learn from the rewards of the last ``ask``; returns metrics under stable names."""

    def decide(self, proposals: Sequence[Proposal]) -> list[Verdict]:
        """The decision step: by default every proposal is trained. Deterministic given the
        strategy's state (a resumed search must reach the same verdicts)."""
        return [Verdict() for _ in proposals]

    def observe(self, evaluations: Sequence[Any]) -> None:  # noqa: B027
        """Called before ``tell`` with the batch's stored evaluations (flags included)."""

    def attach(self, evaluator: Any) -> None:  # noqa: B027
        """Called once by the loop with the run's evaluator, before ``pretrain`` and before a
        checkpoint is restored: a strategy that uses what is known before training (the
        evaluator's ``known_factor`` and ``features``) reads it here."""

    def pretrain(self, knowledge: Sequence[tuple[Sequence[int], float]]) -> int:
        """Learn from earlier experiments' real results, ``(decisions, normalised reward)``.
        Returns how many were used (0: this strategy keeps no such knowledge)."""
        return 0

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-able metadata) holding everything needed to resume."""
        return {}, {}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:  # noqa: B027
        """Restore what :meth:`state` returned (a stateless strategy needs nothing)."""
