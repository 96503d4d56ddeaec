"""Regularized evolution (Real et al., AAAI 2019): tournament selection with an aging population.

Each child copies the best of ``sample`` members drawn from the population and changes one
decision; the population is a FIFO, so the oldest member dies whatever its reward. Aging
keeps a lucky old architecture from dominating the search.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fnas.errors import ConfigError
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Proposal, Strategy

__all__ = ["REAConfig", "REAStrategy"]


@dataclass(frozen=True)
class REAConfig:
    """Regularized evolution's two knobs (defaults chosen on NAS-Bench-Macro, see REAStrategy)."""

    population: int = 20
    """Size of the aging population, and of the uniform random initial population."""
    sample: int = 10
    """Tournament size: members drawn (without replacement) to pick each parent."""

    def __post_init__(self) -> None:
        for name in ("population", "sample"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError(f"rea {name}={v!r} is not an integer")
        if self.sample < 2:
            raise ConfigError(f"rea sample={self.sample!r} must be at least 2")
        if self.sample > self.population:
            raise ConfigError(f"rea sample={self.sample!r} exceeds population={self.population!r}")


class REAStrategy(Strategy):
    """Regularized evolution over a factorized space (Real et al., 2019, Algorithm 1).

    The first ``population`` proposals are uniform random. After that each child is a mutant
    of a tournament winner: ``sample`` members drawn uniformly without replacement from the
    current population, the highest reward wins (ties: the first drawn), and exactly one
    decision with more than one choice is changed to a different value, both uniformly.
    ``tell`` appends each (decisions, reward) in order and drops the oldest beyond
    ``population``. Children of one batch all see the population as of the ``ask``.

    Defaults population=20, sample=10, from a sweep of population {10, 20, 50} x sample
    {3, 5, 10} on NAS-Bench-Macro (20 seeds, distinct queries to reach within 0.2 of the best):
    30.5 [24.0, 38.2] median [IQR], against 25.5 for the sweep's best, 10/10. We keep 20/10
    because 10/10 makes the tournament the whole population (greedy search with aging), which
    pays on this 6,561-point smooth space but not on large ones (the paper used 100/25).

    NOTE: the paper fills the initial population before evolving. Here, if a batch asks for
    children before any reward of the initial population has been told (the population is
    still empty), those children are uniform random instead.
    """

    name = "rea"

    def __init__(self, space: FactorizedSpace, seed: int, cfg: REAConfig | None = None) -> None:
        super().__init__(space, seed)
        self.cfg = cfg or REAConfig()
        self._rng = np.random.default_rng(seed)
        self._population: deque[tuple[tuple[int, ...], float]] = deque(
            maxlen=self.cfg.population)
        self._asked = 0
        self._mutable = [i for i, n in enumerate(space.sizes) if n > 1]
        self._uniform_logp = -sum(math.log(n) for n in space.sizes)

    @property
    def population(self) -> list[tuple[tuple[int, ...], float]]:
        """The current population, oldest first, as (decisions, reward) pairs (a copy)."""
        return list(self._population)

    def ask(self, n: int) -> list[Proposal]:
        """``n`` proposals: random until ``population`` were asked in total, then mutants."""
        out = []
        for _ in range(n):
            if self._asked < self.cfg.population or not self._population:
                idx = self.space.sample(self._rng)
                out.append(Proposal(self.space.decode(idx), idx, self._uniform_logp))
            else:
                idx = self._mutate(self._tournament())
                # The mutant's probability marginalises over tournaments: not tracked.
                out.append(Proposal(self.space.decode(idx), idx, None))
            self._asked += 1
        return out

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        """Add each proposal with its reward to the population, the oldest dying first.

        Raises:
            ValueError: the number of rewards differs from the number of proposals.
        """
        if len(proposals) != len(rewards):
            raise ValueError(f"tell() got {len(proposals)} proposals but {len(rewards)} rewards")
        for p, r in zip(proposals, rewards, strict=True):
            self._population.append((tuple(int(i) for i in p.decisions), float(r)))
        best = max((r for _, r in self._population), default=float("nan"))
        return {"rea/population": float(len(self._population)), "rea/best_reward": best}

    def _tournament(self) -> tuple[int, ...]:
        """Decisions of the best of ``sample`` members drawn without replacement."""
        k = min(self.cfg.sample, len(self._population))
        drawn = self._rng.choice(len(self._population), size=k, replace=False)
        best = int(drawn[0])
        for j in drawn[1:]:
            if self._population[int(j)][1] > self._population[best][1]:  # ties: first drawn
                best = int(j)
        return self._population[best][0]

    def _mutate(self, parent: tuple[int, ...]) -> tuple[int, ...]:
        """``parent`` with one decision (of those with >1 choice) set to another value."""
        if not self._mutable:  # a one-point space: nothing to change
            return parent
        child = list(parent)
        d = self._mutable[int(self._rng.integers(len(self._mutable)))]
        v = int(self._rng.integers(self.space.sizes[d] - 1))
        child[d] = v + 1 if v >= parent[d] else v  # uniform over the other values
        return tuple(child)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {}, {"rng": self._rng.bit_generator.state, "asked": self._asked,
                    "population": [[list(d), r] for d, r in self._population]}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self._rng.bit_generator.state = meta["rng"]
        self._asked = int(meta["asked"])
        self._population.clear()
        self._population.extend((tuple(int(i) for i in d), float(r))
                                for d, r in meta["population"])
