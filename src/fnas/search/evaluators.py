"""Evaluators turn an architecture into a result; strategies see nothing else.

Contract: ``evaluate(spec, seed)`` returns a :class:`~fnas.tasks.RolloutResult` and never
raises for a bad architecture or a failed training (a failure is a result with a status).
``signature`` names everything that determines a result, so that equal signatures may share
cached results; ``rescore`` recomputes a reward from a stored result's metrics, so a cached
result can serve a search with another reward target.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from fnas.space.factorized import FactorizedSpace
from fnas.tasks.datasets import load_dataset
from fnas.tasks.reward import RewardConfig, mnas_reward
from fnas.tasks.rollout import RolloutResult, run_rollout
from fnas.tasks.trainer import TaskConfig

__all__ = ["Evaluator", "ProxyEvaluator", "SyntheticEvaluator"]


class Evaluator(ABC):
    """Base class of evaluators."""

    signature: str = ""
    reward: RewardConfig = RewardConfig()

    @abstractmethod
    def evaluate(self, spec: Any, seed: int) -> RolloutResult:
        """Train/score ``spec``; never raises for bad input."""

    def rescore(self, accuracy: float | None, latency_ms: float | None, macs: int | None) -> float:
        """This evaluator's reward for stored metrics."""
        if accuracy is None:
            return self.reward.failure_reward
        return mnas_reward(accuracy, latency_ms if self.reward.metric == "latency" else macs,
                           self.reward)


class ProxyEvaluator(Evaluator):
    """Real training on the proxy task (:func:`fnas.tasks.run_rollout`)."""

    def __init__(self, task: TaskConfig, reward: RewardConfig) -> None:
        self.task, self.reward = task, reward
        data = load_dataset(task.dataset, val_fraction=task.val_fraction,
                            split_seed=task.split_seed, max_samples=task.max_samples,
                            image_size=task.image_size)
        self.input_size, self.in_chans = data.image_size, data.in_chans
        self.signature = f"proxy|{data.signature}|{task.signature}"

    def evaluate(self, spec: Any, seed: int) -> RolloutResult:
        return run_rollout(spec, self.task, self.reward, seed, return_weights=False).result


class SyntheticEvaluator(Evaluator):
    """Instant reward with a known optimum: the fraction of decisions equal to ``target``.

    For testing strategies: the best architecture is known, so one can check that a strategy
    raises its probability. ``noise`` adds Gaussian noise seeded by the evaluation seed.
    """

    def __init__(self, space: FactorizedSpace, target: Sequence[int], noise: float = 0.0) -> None:
        self.space, self.noise = space, noise
        self.target = np.asarray(space.check(target))
        self.signature = f"synthetic|{space.signature}|{list(self.target)}|{noise}"
        self.reward = RewardConfig()

    def evaluate(self, spec: Any, seed: int) -> RolloutResult:
        d = np.asarray(self.space.encode(spec))
        acc = float((d == self.target).mean())
        if self.noise:
            acc += float(np.random.default_rng(seed).normal(0.0, self.noise))
        return RolloutResult(spec.to_str(), spec.key, "ok", "", acc, acc, None, None, None,
                             0.0, 0, seed)
