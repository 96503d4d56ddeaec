"""The strategies' registry: ``STRATEGIES`` maps a name to a factory ``(space, SearchConfig)
-> Strategy``, used by the search (``SearchConfig(strategy=...)``, ``fnas search --strategy``,
a resume) and the benchmark; register your own in it (``fnas.search.STRATEGIES`` is the same
dict). A factory receives the search's :class:`~fnas.search.config.SearchConfig` (typed ``Any``
here: the config sits in the layer above, ``fnas.search``) and reads its own settings from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fnas.agent.buffer import ReplayConfig
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Strategy
from fnas.strategies.ppo import PPOStrategy

__all__ = ["STRATEGIES", "replay_config"]


def replay_config(cfg: Any) -> ReplayConfig | None:
    """The experience buffer's settings in this search, or None if replay is off.

    ``auto`` turns it on for the ``fnas`` strategy only (vanilla ``ppo`` is MnasNet's, with
    all three FNAS parts off); ``on`` gives it to ``ppo`` too. Other strategies have no
    policy to update and refuse ``on``
    (``SearchConfig`` already refused bad settings and ``on`` for a strategy without one.)
    """
    if cfg.replay == "off" or (cfg.replay == "auto" and cfg.strategy != "fnas"):
        return None
    return cfg.replay_cfg


def _ppo(space: FactorizedSpace, cfg: Any) -> Strategy:
    return PPOStrategy(space, cfg.seed, cfg.ppo, replay_config(cfg))


def _rea(space: FactorizedSpace, cfg: Any) -> Strategy:
    from fnas.strategies.rea import REAStrategy

    return REAStrategy(space, cfg.seed, cfg.rea)


def _fnas(space: FactorizedSpace, cfg: Any) -> Strategy:
    from fnas.strategies.fnas.screening import ScreeningStrategy
    from fnas.strategies.fnas.veto import FNASStrategy

    f = cfg.fnas
    if not f.critic or f.acquisition == "off":  # vanilla PPO, or the first design's veto rule
        return FNASStrategy(space, cfg.seed, cfg.ppo, f, replay_config(cfg))
    return ScreeningStrategy(space, cfg.seed, cfg.ppo, f.critic_cfg, f.screen, f.acquisition,
                             f.n_imagined, replay_config(cfg))


def _random(space: FactorizedSpace, cfg: Any) -> Strategy:
    from fnas.strategies.random_search import RandomSearch

    return RandomSearch(space, cfg.seed)


STRATEGIES: dict[str, Callable[[FactorizedSpace, Any], Strategy]] = {
    "fnas": _fnas, "ppo": _ppo, "rea": _rea, "random": _random}
"""Strategy factories ``(space, SearchConfig) -> Strategy``; register your own here (it is
``fnas.search.STRATEGIES`` too)."""
