"""The ``fnas`` strategy's settings: :class:`FNASConfig` (which parts are on, for ablations)
and :class:`DecisionConfig` (when a confident prediction may replace a training)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fnas.agent.acquisition import ACQUISITIONS
from fnas.agent.critic import CriticConfig
from fnas.errors import ConfigError
from fnas.search.screen_config import ScreenConfig

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
        ok = (self.min_real >= 2 and self.min_real_pretrained >= 2 and 0 < self.tau_min
              <= self.tau <= self.tau_max and 0 <= self.audit_fraction <= 1
              and self.error_bound > 0 and self.error_window >= 1
              and self.max_predicted_streak >= 1 and self.norm_after >= 2
              and self.judge_after >= 3 and -1 <= self.judge_min_rank <= 1)
        if not ok:
            raise ConfigError(f"decision settings out of range: {asdict(self)}")


@dataclass(frozen=True)
class FNASConfig:
    """The FNAS parts, each switchable for ablations."""

    critic: bool = True
    """Uncertainty-aware critic + decision module (off: vanilla PPO)."""
    decision: DecisionConfig = DecisionConfig()
    critic_cfg: CriticConfig = CriticConfig()
    acquisition: str = "ucb"
    """How the critic chooses what is trained: ``ucb``, ``ts`` (Thompson sampling) or ``ei``
    (expected improvement) screen many candidates and train the best B
    (``fnas.search.screening``); ``off`` is the first design's veto rule below."""
    screen: ScreenConfig = ScreenConfig()
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
        if self.imagined is not None:
            return self.imagined
        return 4 if self.acquisition == "off" else 2

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FNASConfig:
        im = d.get("imagined")
        return cls(critic=d.get("critic", True), imagined=None if im is None else int(im),
                   acquisition=d.get("acquisition", "ucb"),
                   screen=ScreenConfig(**d.get("screen", {})),
                   decision=DecisionConfig(**d.get("decision", {})),
                   critic_cfg=CriticConfig(**d.get("critic_cfg", {})))
