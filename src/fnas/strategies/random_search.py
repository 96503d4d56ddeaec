"""Random search: uniform samples of the decision vector, the baseline every strategy must beat."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Proposal, Strategy

__all__ = ["RandomSearch"]


class RandomSearch(Strategy):
    """Draw each decision uniformly and independently, with replacement; learn nothing.

    A repeated architecture is proposed again: deduplication is the harness's cache's business.
    The whole state is the generator's state, so ``state``/``load_state`` resume exactly.
    """

    name = "random"

    def __init__(self, space: FactorizedSpace, seed: int, cfg: Any = None) -> None:
        # cfg is unused: accepted so that every strategy has the same constructor.
        super().__init__(space, seed)
        self._rng = np.random.default_rng(seed)
        self._logp = -sum(math.log(n) for n in space.sizes)

    def ask(self, n: int) -> list[Proposal]:
        """``n`` uniform proposals, each with the uniform log-probability."""
        out = []
        for _ in range(n):
            idx = self.space.sample(self._rng)
            out.append(Proposal(self.space.decode(idx), idx, self._logp))
        return out

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        """Nothing to learn; returns no metrics."""
        return {}

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {}, {"rng": self._rng.bit_generator.state}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self._rng.bit_generator.state = meta["rng"]
