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
  a cost measured with the result (a user objective's ``macs`` or ``latency_ms``, the proxy
  task's measured latency) is learnt from the run's own measurements instead
  (``learn_cost``, :mod:`.cost_model`), and composed the same way once learnt; else nothing
  changes.
- **Features** (``features``; ``auto``: only where no factor is composed, which measured
  better). :meth:`Evaluator.features` (log MACs, log params, per-block
  depth, width and resolution for block-string networks; log FLOPs and params on
  NAS-Bench-Macro) go to the critic as inputs next to the one-hots, standardised once on
  uniform samples of the space (:class:`fnas.space.features.FeatureMap`).

Both are pure functions of the architecture, so nothing here is checkpointed: a resumed run
recomputes them (the learned cost model is refitted from the measured costs that the
screening state keeps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fnas.agent.acquisition import RankGauss
from fnas.space.factorized import FactorizedSpace
from fnas.space.features import FeatureMap
from fnas.strategies.fnas.cost_model import CostModel
from fnas.tasks.reward import mnas_reward

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
        learn_cost: without a known factor, learn the reward's cost from the run's measured
            costs (:mod:`.cost_model`) when the reward has a cost target.
    """

    def __init__(self, space: FactorizedSpace, evaluator: Any, *, decompose: bool,
                 features: str, seed: int, learn_cost: bool = False) -> None:
        self.space, self.evaluator = space, evaluator
        self.exact = False
        self.features: FeatureMap | None = None
        self.cost: CostModel | None = None
        self._factor: dict[tuple[int, ...], float] = {}
        self._measured: dict[tuple[int, ...], float] = {}
        if not decompose and features == "off":
            return
        probe = space.decode(space.sample(np.random.default_rng([seed, 3542])))
        self.exact = bool(decompose) and _finite(evaluator.known_factor(probe))
        wanted = features == "on" or (features == "auto" and not self.exact)
        if wanted and evaluator.features(probe) is not None:
            self.features = FeatureMap(space, evaluator.features, seed=seed)
        rcfg = getattr(evaluator, "reward", None)
        if decompose and learn_cost and not self.exact and rcfg is not None \
                and rcfg.target is not None:
            self.cost = CostModel(space, evaluator)

    @property
    def decomposed(self) -> bool:
        """Whether the critic learns the accuracy and the reward is composed: with an exact
        factor, or a learned cost model that has been fitted."""
        return self.exact or (self.cost is not None and self.cost.ready)

    @property
    def active(self) -> bool:
        """Whether anything is known (else the critic works as it did before issue 34)."""
        return self.exact or self.features is not None or self.cost is not None

    def measured(self, ev: Any) -> float | None:
        """The cost ``ev`` measured, when the learned model applies and ``ev``'s reward is
        the one composed from its accuracy and that cost (a user objective may return a
        reward of its own: then None, and the caller stops learning)."""
        if self.cost is None or ev.status != "ok" or ev.accuracy is None:
            return None
        rcfg = self.evaluator.reward
        c = ev.macs if rcfg.metric == "macs" else ev.latency_ms
        if c is None or not (isinstance(c, (int, float)) and math.isfinite(c) and c > 0):
            return None
        return float(c)

    def note(self, ev: Any, key: Sequence[int], costs: list[Any]) -> bool:
        """Appends a new own result's measured cost to ``costs`` (the learned model's data);
        False if its reward is not its accuracy composed with that cost (the objective
        returned a reward of its own, which cannot be decomposed)."""
        cost = self.measured(ev)
        if cost is None:
            return True
        want = mnas_reward(float(ev.accuracy), cost, self.evaluator.reward)
        if abs(want - float(ev.reward)) > 1e-6 * max(1.0, abs(want)):
            return False
        costs.append((list(key), cost))
        return True

    def fit_cost(self, pairs: Sequence[tuple[Sequence[int], float]], broken: bool) -> bool:
        """Refits the learned cost model on the run's measured ``(decisions, cost)`` pairs
        (``broken``: a reward that is not the composed one was seen: no model); returns
        :attr:`decomposed`."""
        if self.cost is not None and broken:
            self.cost = None
        elif self.cost is not None and len(pairs) != len(self._measured):
            self._measured = {tuple(int(v) for v in d): float(c) for d, c in pairs}
            self.cost.fit(pairs)
        return self.decomposed

    def factor(self, decisions: Any) -> np.ndarray:
        """(n, T) decision vectors -> (n,) known factors (1.0 where the evaluator has none for
        an architecture, which no built-in evaluator does within its space); with a learned
        cost, an evaluated architecture's measured cost, else the model's."""
        x = np.asarray(decisions, dtype=np.int64).reshape(-1, len(self.space.sizes))
        if not self.exact:
            return self._learned(x)
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

    def _learned(self, x: np.ndarray) -> np.ndarray:
        if self.cost is None or not self.cost.ready:
            return np.ones(len(x))
        cost = self.cost.predict(x) if len(x) else np.zeros(0)
        for i, row in enumerate(x.tolist()):
            cost[i] = self._measured.get(tuple(row), cost[i])
        rcfg = self.evaluator.reward
        return np.asarray([mnas_reward(1.0, float(c), rcfg) for c in cost])

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
