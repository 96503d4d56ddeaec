"""The ``fnas`` strategy's settings: :class:`FNASConfig` (its decision rule, which parts are
on, for ablations) and :class:`DecisionConfig` (the veto rule's: when a confident prediction
may replace a training).

A search with ``strategy='fnas'`` holds an :class:`FNASConfig` as its ``strategy_config``. In
a config file (and a stored run) it is the ``[fnas]`` table, with ``[fnas.screen]``,
``[fnas.decision]`` and ``[fnas.critic_cfg]`` as sub-tables; its controller's settings
(``FNASConfig.ppo``) and the experience buffer's (``FNASConfig.replay_cfg``) are the
``[ppo]`` and ``[replay_cfg]`` tables (:mod:`fnas.search.config`, "The stored shape").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fnas._config_build import build_config
from fnas.agent.acquisition import ACQUISITIONS
from fnas.agent.buffer import ReplayConfig
from fnas.agent.critic import CriticConfig
from fnas.agent.ppo import PPOConfig
from fnas.errors import ConfigError
from fnas.strategies.fnas.screen_config import ScreenConfig

__all__ = ["DECISION_RULES", "DecisionConfig", "FNASConfig"]

DECISION_RULES = ("screen", "veto")
"""The ``fnas`` strategy's decision rules (``FNASConfig.decision_rule``)."""


@dataclass(frozen=True)
class DecisionConfig:
    """The veto rule's settings (``decision_rule='veto'``): when a prediction may replace a
    training (units: reward standard deviations)."""

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
    """Uncertainty-aware critic and its decision rule (off: vanilla PPO, whatever the rule)."""
    decision_rule: str = "screen"
    """How the critic decides what is trained: ``screen`` or ``veto``. Screen (the default):
    it scores many candidates and the acquisition picks the B trained (docs/DESIGN.md,
    "Screening"). Veto: the paper's literal "skip training" decision, kept as an ablation:
    the policy's B samples are the batch and a confident prediction may replace a training
    (docs/DESIGN.md, "The veto rule"; its settings: ``decision``). ``acquisition='off'`` is
    its old spelling."""
    decision: DecisionConfig = DecisionConfig()
    """When a confident prediction may replace a training (``decision_rule='veto'``)."""
    critic_cfg: CriticConfig = CriticConfig()
    """The ensemble critic's size and optimisation."""
    acquisition: str = "ucb"
    """How the screening picks what is trained: ``ucb``, ``ts`` (Thompson sampling), ``ei``
    (expected improvement) or a registered one (``fnas.agent.acquisition``), or ``off``.
    Off: the old spelling of ``decision_rule='veto'``, which has no acquisition (it reads
    ``off``)."""
    screen: ScreenConfig = ScreenConfig()
    """How the critic screens candidates (``decision_rule='screen'``)."""
    imagined: int | None = None
    """Extra PPO updates per batch of real results on batches the critic alone scores
    (nothing recorded; beyond the paper). Screening (default 2): on the round's screened
    policy candidates. Veto rule (default 4): once the critic is trusted, on fresh
    samples it scores confidently; with replay an update gets a proportional share
    (4 x 4/8 = 2). 0 disables them."""
    ppo: PPOConfig = PPOConfig()
    """The PPO controller's optimisation (the ``[ppo]`` table)."""
    replay_cfg: ReplayConfig = ReplayConfig()
    """The experience buffer's settings, used when ``SearchConfig.replay`` turns it on (the
    ``[replay_cfg]`` table)."""

    def __post_init__(self) -> None:
        if self.decision_rule not in DECISION_RULES:
            raise ConfigError(f"decision_rule={self.decision_rule!r:.40}: expected one of "
                              f"{', '.join(DECISION_RULES)}")
        if self.acquisition not in (*ACQUISITIONS, "off"):
            raise ConfigError(f"acquisition={self.acquisition!r}: expected one of "
                              f"{', '.join((*ACQUISITIONS, 'off'))}")
        # One setting, two spellings: acquisition 'off' (stored runs, old files and flags)
        # is the veto rule, and the veto rule reads acquisition 'off' (it screens nothing).
        if self.acquisition == "off":
            object.__setattr__(self, "decision_rule", "veto")
        elif self.decision_rule == "veto":
            if self.acquisition != _DEFAULT_ACQUISITION:
                raise ConfigError(f"decision_rule='veto' has no acquisition: drop "
                                  f"acquisition={self.acquisition!r:.40}, or use "
                                  "decision_rule='screen'")
            object.__setattr__(self, "acquisition", "off")
        if self.imagined is not None and self.imagined < 0:
            raise ConfigError(f"imagined={self.imagined} must be >= 0")
        if self.decision_rule == "veto" and self.screen.rungs:
            raise ConfigError("screen.rungs (a multi-fidelity search) needs "
                              "decision_rule='screen': the veto rule trains at full fidelity")
        if (self.decision_rule == "veto" or not self.critic) and self.screen.zero_cost:
            raise ConfigError("screen.zero_cost (probes of the screening's shortlist) needs "
                              "decision_rule='screen' and the critic on")

    @property
    def n_imagined(self) -> int:
        """Imagined updates per batch: ``imagined``, or its default for the decision rule."""
        if self.imagined is not None:
            return self.imagined
        return 4 if self.decision_rule == "veto" else 2

    @classmethod
    def table_over(cls, d: Mapping[str, Any], base: FNASConfig | None) -> Mapping[str, Any]:
        """Table ``d`` as it applies over ``base`` (``fnas.search``'s ``with_settings``, a
        config file over the defaults): ``decision_rule`` and ``acquisition`` are one setting.
        An acquisition alone names the screening (as before the rule had a name; ``off``, the
        veto rule); a rule alone keeps the base's acquisition, or takes the default one when
        leaving the veto rule.

        Raises:
            ConfigError: the two given, and contradicting each other.
        """
        rule, acq = d.get("decision_rule"), d.get("acquisition")
        if not all(isinstance(v, str | None) for v in (rule, acq)) or rule is acq is None:
            return d  # nothing to do (or a value of the wrong type, which the checks name)
        base = base or cls()
        if rule is None:
            rule = "veto" if acq == "off" else "screen"
        if acq is None:
            acq = "off" if rule == "veto" else \
                base.acquisition if base.acquisition != "off" else _DEFAULT_ACQUISITION
        if (rule == "veto") != (acq == "off"):
            raise ConfigError(f"decision_rule={rule!r:.40} and acquisition={acq!r:.40} "
                              "contradict each other: the veto rule has no acquisition "
                              "('off' is its old spelling)")
        return {**d, "decision_rule": rule, "acquisition": acq}

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = True) -> FNASConfig:
        """From a dict of some of its settings (``screen``, ``decision`` and ``critic_cfg`` as
        dicts), each checked; ``strict`` refuses unknown keys.

        Raises:
            ConfigError: a bad setting, in one line naming its key (``fnas.screen.kappa``).
        """
        return build_config(cls, d, "fnas", strict)


_DEFAULT_ACQUISITION = FNASConfig.acquisition
