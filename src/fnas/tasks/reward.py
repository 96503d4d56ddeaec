"""MnasNet's multi-objective reward: ``ACC * (COST / T) ** w``.

``w = alpha`` if ``COST <= T`` else ``beta``. The soft constraint (alpha = beta = -0.07, the
paper's default) trades about 5% of accuracy for 2x of cost on either side of the target; the
hard constraint (alpha = 0, beta = -1) only penalises architectures over the target. Under
the soft constraint the target only scales every reward by ``T ** 0.07``: the ranking of
architectures does not depend on it.
The cost is the measured latency in milliseconds or the analytic multiply-adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fnas.errors import ConfigError

__all__ = ["RewardConfig", "mnas_reward"]

_MODES = {"soft": (-0.07, -0.07), "hard": (0.0, -1.0)}


@dataclass(frozen=True)
class RewardConfig:
    """How a trained architecture's accuracy and cost become one scalar reward."""

    metric: str = "latency"
    """Cost the target applies to: ``latency`` (ms, measured) or ``macs`` (analytic)."""
    target: float | None = None
    """Target T in ms or multiply-adds; ``None`` means the reward is the accuracy alone."""
    mode: str = "soft"
    """``soft`` (alpha = beta = -0.07) or ``hard`` (alpha = 0, beta = -1)."""
    failure_reward: float = 0.0
    """Reward recorded for a rollout that failed (NaN loss, exception, bad config)."""

    def __post_init__(self) -> None:
        if self.metric not in ("latency", "macs"):
            raise ConfigError(f"reward metric {self.metric!r}: expected 'latency' or 'macs'")
        if self.mode not in _MODES:
            raise ConfigError(f"reward mode {self.mode!r}: expected 'soft' or 'hard'")
        if self.target is not None and not (math.isfinite(self.target) and self.target > 0):
            raise ConfigError(f"reward target {self.target!r} must be a positive number")

    @property
    def exponents(self) -> tuple[float, float]:
        """(alpha, beta)."""
        return _MODES[self.mode]


def mnas_reward(accuracy: float, cost: float | None, cfg: RewardConfig) -> float:
    """``accuracy * (cost / target) ** w`` (accuracy in [0, 1]).

    Raises:
        ConfigError: a target is set but the cost is missing or not positive.
    """
    if cfg.target is None:
        return float(accuracy)
    if cost is None or not cost > 0:
        raise ConfigError(f"reward needs a positive {cfg.metric}, got {cost!r}")
    alpha, beta = cfg.exponents
    w = alpha if cost <= cfg.target else beta
    return float(accuracy * (cost / cfg.target) ** w)
