"""The ``fnas`` strategy's settings: :class:`FNASConfig` (which parts are on, for ablations)
and :class:`DecisionConfig` (when a confident prediction may replace a training).

``SearchConfig.fnas`` is an :class:`FNASConfig`; in a config file it is the ``[fnas]`` table,
with ``[fnas.screen]``, ``[fnas.decision]`` and ``[fnas.critic_cfg]`` as sub-tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fnas._config_build import build_config
from fnas.agent.acquisition import ACQUISITIONS
from fnas.agent.critic import CriticConfig
from fnas.errors import ConfigError
from fnas.strategies.fnas.screen_config import ScreenConfig

__all__ = ["DecisionConfig", "FNASConfig"]


@dataclass(frozen=True)
class DecisionConfig:
    """When a prediction may replace a training (units: reward standard deviations)."""

    min_real: int = 24
    """Real results of this experiment before a from-scratch critic is trusted."""
    min_real_pretrained: int = 8
    """Real results before a pre-trained critic may be trusted (if its error passes)."""
    tau: float = 0.35
    """Initial spread threshold for a confident prediction."""
    tau_min: float = 0.05
    """Lower bound of the adaptive tau."""
    tau_max: float = 1.0
    """Upper bound of the adaptive tau."""
    audit_fraction: float = 0.2
    """Share of confident samples trained anyway, to measure the critic's error."""
    error_bound: float = 0.5
    """Bound on the mean absolute audited error; tau adapts to keep it."""
    error_window: int = 16
    """Audits the error is averaged over."""
    max_predicted_streak: int = 12
    """Stall guard: predictions in a row after which the next sample is trained."""
    norm_after: int = 8
    """Real results that fix this experiment's reward normalisation."""
    judge_after: int = 8
    """Real results a pre-trained critic is judged on (after the normalisation is fixed)."""
    judge_min_rank: float = 0.4
    """Kendall tau a pre-trained critic needs on them to keep its knowledge."""
    forget_failed_knowledge: bool = True
    """A pre-trained critic that fails its judgement drops the knowledge and starts over."""

    def __post_init__(self) -> None:
        checks = [(self.min_real >= 2, "min_real", ">= 2"),
                  (self.min_real_pretrained >= 2, "min_real_pretrained", ">= 2"),
                  (0 < self.tau_min <= self.tau_max, "tau_min", "in (0, tau_max]"),
                  (self.tau_min <= self.tau <= self.tau_max, "tau", "in [tau_min, tau_max]"),
                  (0 <= self.audit_fraction <= 1, "audit_fraction", "in [0, 1]"),
                  (self.error_bound > 0, "error_bound", "> 0"),
                  (self.error_window >= 1, "error_window", ">= 1"),
                  (self.max_predicted_streak >= 1, "max_predicted_streak", ">= 1"),
                  (self.norm_after >= 2, "norm_after", ">= 2"),
                  (self.judge_after >= 3, "judge_after", ">= 3"),
                  (-1 <= self.judge_min_rank <= 1, "judge_min_rank", "in [-1, 1]")]
        for ok, name, want in checks:
            if not ok:
                raise ConfigError(f"decision {name}={getattr(self, name)!r} is out of range: "
                                  f"expected {want}")


@dataclass(frozen=True)
class FNASConfig:
    """The FNAS parts, each switchable for ablations."""

    critic: bool = True
    """Uncertainty-aware critic + decision module (off: vanilla PPO)."""
    decision: DecisionConfig = DecisionConfig()
    """When a confident prediction may replace a training (the veto rule, ``acquisition``
    ``off``)."""
    critic_cfg: CriticConfig = CriticConfig()
    """The ensemble critic's size and optimisation."""
    acquisition: str = "ucb"
    """How the critic chooses what is trained: ``ucb``, ``ts`` (Thompson sampling) or ``ei``
    (expected improvement) screen many candidates and train the best B
    (``fnas.strategies.fnas.screening``); ``off`` is the first design's veto rule below."""
    screen: ScreenConfig = ScreenConfig()
    """How the critic screens candidates (``acquisition`` ``ucb``, ``ts`` or ``ei``)."""
    imagined: int | None = None
    """Extra PPO updates per batch of real results on batches the critic alone scores
    (nothing recorded; beyond the paper). Screening (default 2): on the round's screened
    policy candidates. Veto rule (``off``, default 4): once the critic is trusted, on fresh
    samples it scores confidently; with replay an update gets a proportional share
    (4 x 4/8 = 2). 0 disables them."""

    def __post_init__(self) -> None:
        if self.acquisition not in (*ACQUISITIONS, "off"):
            raise ConfigError(f"acquisition={self.acquisition!r}: expected one of "
                              f"{', '.join((*ACQUISITIONS, 'off'))}")
        if self.imagined is not None and self.imagined < 0:
            raise ConfigError(f"imagined={self.imagined} must be >= 0")

    @property
    def n_imagined(self) -> int:
        """Imagined updates per batch: ``imagined``, or its default for the acquisition."""
        if self.imagined is not None:
            return self.imagined
        return 4 if self.acquisition == "off" else 2

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = True) -> FNASConfig:
        """From a dict of some of its settings (``screen``, ``decision`` and ``critic_cfg`` as
        dicts), each checked; ``strict`` refuses unknown keys.

        Raises:
            ConfigError: a bad setting, in one line naming its key (``fnas.screen.kappa``).
        """
        return build_config(cls, d, "fnas", strict)
