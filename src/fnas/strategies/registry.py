"""The strategies' registry: ``STRATEGIES`` maps a name to a factory ``(space, SearchConfig)
-> Strategy``, used by the search (``SearchConfig(strategy=...)``, ``fnas search --strategy``,
a resume) and the benchmark; register your own in it (``fnas.search.STRATEGIES`` is the same
dict). A factory receives the search's :class:`~fnas.search.config.SearchConfig` (typed ``Any``
here: the config sits in the layer above, ``fnas.search``) and reads its own settings from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fnas.agent.buffer import ReplayConfig
from fnas.errors import ConfigError
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Strategy
from fnas.strategies.ppo import PPOStrategy

__all__ = ["STRATEGIES", "CAPABILITIES", "Capabilities", "capabilities", "register_strategy",
           "replay_config"]


@dataclass(frozen=True)
class Capabilities:
    """What a strategy can use. The loop and the config ask these, never the strategy's name,
    so a registered strategy opts in by declaring them (:func:`register_strategy`)."""

    policy: bool = False
    """It has a policy that replayed experience can update: ``replay='on'`` is allowed."""
    replay: bool = False
    """``replay='auto'`` turns the experience buffer on for it."""
    pool: bool = False
    """``pool='auto'`` turns the knowledge pool on for it (with an evaluator that trains)."""


CAPABILITIES: dict[str, Capabilities] = {
    "fnas": Capabilities(policy=True, replay=True, pool=True),
    "ppo": Capabilities(policy=True),  # vanilla MnasNet PPO: the FNAS parts off by default
}
"""Each registered strategy's capabilities; one missing has none (random search, REA)."""


def capabilities(name: str) -> Capabilities:
    """The capabilities of the strategy registered as ``name`` (none if it declared none)."""
    return CAPABILITIES.get(name, Capabilities())


def register_strategy(name: str, factory: Callable[[FactorizedSpace, Any], Strategy],
                      caps: Capabilities | None = None) -> None:
    """Register ``factory`` (``(space, SearchConfig) -> Strategy``) as strategy ``name``, with
    what it can use (default: nothing: no replay, no pool).

    Raises:
        ConfigError: a bad name or a factory that is not callable.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a strategy needs a non-empty name")
    if not callable(factory):
        raise ConfigError(f"register_strategy({name!r}): the factory must be callable, got "
                          f"{type(factory).__name__}")
    if caps is not None and not isinstance(caps, Capabilities):
        raise ConfigError(f"register_strategy({name!r}): caps must be a Capabilities")
    STRATEGIES[name] = factory
    CAPABILITIES[name] = caps or Capabilities()


def replay_config(cfg: Any) -> ReplayConfig | None:
    """The experience buffer's settings in this search, or None if replay is off.

    ``auto`` turns it on for a strategy whose capabilities say ``replay`` (``fnas``; vanilla
    ``ppo`` is MnasNet's, with all three FNAS parts off); ``on`` gives it to any strategy with
    a ``policy`` (``ppo`` too). (``SearchConfig`` already refused bad settings and ``on`` for
    a strategy without a policy.)
    """
    if cfg.replay == "off" or (cfg.replay == "auto" and not capabilities(cfg.strategy).replay):
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
