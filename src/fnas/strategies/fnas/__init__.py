"""The ``fnas`` strategy (docs/DESIGN.md, "Screening" and "The veto rule"): MnasNet's PPO
controller with the uncertainty-aware critic and the experience buffer. One strategy, one
config (:class:`FNASConfig`), one knowledge path (:mod:`~fnas.strategies.fnas.knowledge`:
pre-train the critic on earlier runs, judge that knowledge, forget it); its decision rule
(``FNASConfig.decision_rule``) picks how the critic decides what is trained:

- ``screen`` (the default), :mod:`~fnas.strategies.fnas.screening`: :class:`ScreeningStrategy`,
  the critic screens candidates (:mod:`~fnas.strategies.fnas.candidates`) and an acquisition
  function picks what is trained; its settings and JSON state in
  :mod:`~fnas.strategies.fnas.screen_config`;
- ``veto``, :mod:`~fnas.strategies.fnas.veto`: :class:`VetoStrategy`, the paper's literal
  "skip training" decision (a confident prediction replaces a training), kept as an ablation;
  its settings are :class:`DecisionConfig`, its JSON state :mod:`~fnas.strategies.fnas.state`.
  With the critic off (``critic=False``) it is vanilla PPO.

:func:`make_fnas` builds the one for a config (``STRATEGIES["fnas"]`` calls it).
"""

from __future__ import annotations

from typing import Any

from fnas.agent.buffer import ReplayConfig
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Strategy
from fnas.strategies.fnas.config import DECISION_RULES, DecisionConfig, FNASConfig
from fnas.strategies.fnas.screen_config import ScreenConfig, ScreenState
from fnas.strategies.fnas.screening import ScreeningStrategy
from fnas.strategies.fnas.veto import FNASStrategy, VetoStrategy

__all__ = ["DECISION_RULES", "DecisionConfig", "FNASConfig", "ScreenConfig", "ScreenState",
           "ScreeningStrategy", "VetoStrategy", "FNASStrategy", "make_fnas"]


def make_fnas(space: FactorizedSpace, seed: int, ppo: Any, cfg: FNASConfig,
              replay: ReplayConfig | None) -> Strategy:
    """The ``fnas`` strategy of settings ``cfg`` (its controller's ``ppo`` settings, the
    experience buffer's ``replay`` or None): the screening, or the veto rule's class (also
    the controller alone, with the critic off)."""
    if not cfg.critic or cfg.decision_rule == "veto":
        return VetoStrategy(space, seed, ppo, cfg, replay)
    return ScreeningStrategy(space, seed, ppo, cfg.critic_cfg, cfg.screen, cfg.acquisition,
                             cfg.n_imagined, replay)
