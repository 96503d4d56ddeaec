"""What the fnas critic is told before training, and how it composes the reward.

Issue 34, docs/DESIGN.md "The critic": a critic that sees only one-hot decisions must learn
from a few trainings what is already known before any: that a reward ``accuracy x (MACs / T)
** w`` falls with the MACs, and how large each network is. Two mechanisms, each one switch
of ``FNASConfig``:

- **Decomposition** (``decompose``). When the evaluator knows the reward's factor before
  training (:meth:`Evaluator.known_factor`: the proxy task or a table with a MACs/FLOPs
  target), the critic's reward nets learn only the unknown part, ``reward / factor`` (the
  accuracy), and a candidate's predicted reward is each ensemble member's accuracy times its
  exact factor. The value nets, which give PPO its per-decision baseline, still learn the
  whole reward. Without a known factor (no target, a latency target, a user objective)
  nothing changes.
- **Features** (``features``; ``auto``: only where no factor is composed, which measured
  better). :meth:`Evaluator.features` (log MACs, log params, per-block
  depth, width and resolution for block-string networks; log FLOPs and params on
  NAS-Bench-Macro) go to the critic as inputs next to the one-hots, standardised once on
  uniform samples of the space (:class:`fnas.space.features.FeatureMap`).

Both are pure functions of the architecture, so nothing here is checkpointed: a resumed run
recomputes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fnas.agent.acquisition import RankGauss
from fnas.space.factorized import FactorizedSpace
from fnas.space.features import FeatureMap

__all__ = ["Known"]


class Known:
    """The known factor and features of a space's architectures under one evaluator.

    Args:
        space: the searched space.
        evaluator: the run's evaluator (its ``known_factor`` and ``features``).
        decompose: use the known factor where the evaluator has one.
        features: ``on``, ``off`` or ``auto`` (only without a composed factor): use the
            evaluator's features where it has them.
        seed: seeds the features' standardisation sample.
    """

    def __init__(self, space: FactorizedSpace, evaluator: Any, *, decompose: bool,
                 features: str, seed: int) -> None:
        self.space, self.evaluator = space, evaluator
        self.decomposed = False
        self.features: FeatureMap | None = None
        if not decompose and features == "off":
            return
        probe = space.decode(space.sample(np.random.default_rng([seed, 3542])))
        self.decomposed = bool(decompose) and _finite(evaluator.known_factor(probe))
        wanted = features == "on" or (features == "auto" and not self.decomposed)
        if wanted and evaluator.features(probe) is not None:
            self.features = FeatureMap(space, evaluator.features, seed=seed)
        self._factor: dict[tuple[int, ...], float] = {}

    @property
    def active(self) -> bool:
        """Whether anything is known (else the critic works as it did before issue 34)."""
        return self.decomposed or self.features is not None

    def factor(self, decisions: Any) -> np.ndarray:
        """(n, T) decision vectors -> (n,) known factors (1.0 where the evaluator has none for
        an architecture, which no built-in evaluator does within its space)."""
        x = np.asarray(decisions, dtype=np.int64).reshape(-1, len(self.space.sizes))
        out = np.empty(len(x))
        for i, row in enumerate(x.tolist()):
            key = tuple(row)
            f = self._factor.get(key)
            if f is None:
                got = self.evaluator.known_factor(self.space.decode(key))
                f = float(got) if _finite(got) else 1.0
                self._factor[key] = f
            out[i] = f
        return out

    def unknown(self, decisions: Any, rewards: Any) -> np.ndarray:
        """The part of each reward the critic learns: ``reward / factor`` (the accuracy)."""
        return np.asarray(rewards, dtype=np.float64) / self.factor(decisions)


    def own_unknown(self, own: Sequence[tuple[Sequence[int], float]]) -> np.ndarray:
        """:meth:`unknown` of a run's own ``(decisions, reward)`` results."""
        x = np.asarray([d for d, _ in own], dtype=np.int64).reshape(-1, len(self.space.sizes))
        return self.unknown(x, [r for _, r in own])

    def compose(self, z: np.ndarray, x: np.ndarray,
                own: Sequence[tuple[Sequence[int], float]], ref: RankGauss) -> np.ndarray:
        """Member predictions ``z`` (K, n) of the unknown part, in rank-Gaussian units of the
        run's own unknowns, -> the members' rewards of candidates ``x`` (n, T) in rank-Gaussian
        units of the run's rewards (``ref``). Unchanged while the own unknowns have fewer than
        two distinct values (no map back yet)."""
        ref_u = RankGauss(self.own_unknown(own))
        if not ref_u.ok:
            return z
        return ref(ref_u.inverse(z) * self.factor(x)[None])


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0
