"""The strategies' registry: each strategy is registered by name with its factory, what it can
use (:class:`Capabilities`) and the class of its settings (:func:`register_strategy`).

``STRATEGIES`` maps a name to a factory ``(space, SearchConfig) -> Strategy``, used by the
search (``SearchConfig(strategy=...)``, ``fnas search --strategy``, a resume) and the benchmark
(``fnas.search.STRATEGIES`` is the same dict); ``CAPABILITIES`` to what it can use, which the
config and the loop ask instead of its name; ``STRATEGY_CONFIGS`` to its settings' dataclass,
of which ``SearchConfig.strategy_config`` holds one instance. A factory receives the search's
:class:`~fnas.search.config.SearchConfig` (typed ``Any`` here: the config sits in the layer
above, ``fnas.search``) and reads its settings from ``cfg.strategy_config``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fnas.agent.buffer import ReplayConfig
from fnas.errors import ConfigError
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Strategy
from fnas.strategies.fnas.config import FNASConfig
from fnas.strategies.ppo import PPOStrategy, PPOStrategyConfig
from fnas.strategies.rea import REAConfig
from fnas.strategies.tpe import TPEConfig

__all__ = ["STRATEGIES", "CAPABILITIES", "STRATEGY_CONFIGS", "Capabilities", "capabilities",
           "config_class", "register_strategy", "replay_config"]


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


STRATEGIES: dict[str, Callable[[FactorizedSpace, Any], Strategy]] = {}
"""Strategy factories ``(space, SearchConfig) -> Strategy`` by name (``fnas``, ``ppo``,
``rea``, ``random``, then yours: :func:`register_strategy`)."""
CAPABILITIES: dict[str, Capabilities] = {}
"""Each registered strategy's capabilities; one missing has none."""
STRATEGY_CONFIGS: dict[str, type | None] = {}
"""Each registered strategy's settings dataclass (None: it takes no settings)."""


def capabilities(name: str) -> Capabilities:
    """The capabilities of the strategy registered as ``name`` (none if it declared none)."""
    return CAPABILITIES.get(name, Capabilities())


def config_class(name: str) -> type | None:
    """The settings dataclass of the strategy registered as ``name`` (None: no settings)."""
    return STRATEGY_CONFIGS.get(name)


def register_strategy(name: str, factory: Callable[[FactorizedSpace, Any], Strategy],
                      caps: Capabilities | None = None, *, config: type | None = None) -> None:
    """Register ``factory`` (``(space, SearchConfig) -> Strategy``) as strategy ``name``, with
    what it can use (default: nothing: no replay, no pool) and the frozen dataclass of its
    settings (``config``: ``SearchConfig.strategy_config`` is then one of those, built from a
    table of its fields, each checked; default: no settings).

    Raises:
        ConfigError: a bad name, a factory that is not callable, caps that are no
            Capabilities, or a config that is no dataclass.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a strategy needs a non-empty name")
    if not callable(factory):
        raise ConfigError(f"register_strategy({name!r}): the factory must be callable, got "
                          f"{type(factory).__name__}")
    if caps is not None and not isinstance(caps, Capabilities):
        raise ConfigError(f"register_strategy({name!r}): caps must be a Capabilities")
    if config is not None and not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise ConfigError(f"register_strategy({name!r}): config must be a dataclass, got "
                          f"{config!r:.60}")
    STRATEGIES[name] = factory
    CAPABILITIES[name] = caps or Capabilities()
    STRATEGY_CONFIGS[name] = config


def replay_config(cfg: Any) -> ReplayConfig | None:
    """The experience buffer's settings in this search, or None if replay is off.

    ``auto`` turns it on for a strategy whose capabilities say ``replay`` (``fnas``; vanilla
    ``ppo`` is MnasNet's, with all three FNAS parts off); ``on`` gives it to any strategy with
    a ``policy`` (``ppo`` too). The settings are the strategy's ``replay_cfg`` (the defaults
    for one whose settings hold none). (``SearchConfig`` already refused bad settings and
    ``on`` for a strategy without a policy.)
    """
    if cfg.replay == "off" or (cfg.replay == "auto" and not capabilities(cfg.strategy).replay):
        return None
    return getattr(cfg.strategy_config, "replay_cfg", None) or ReplayConfig()


def _ppo(space: FactorizedSpace, cfg: Any) -> Strategy:
    return PPOStrategy(space, cfg.seed, cfg.strategy_config.ppo, replay_config(cfg))


def _rea(space: FactorizedSpace, cfg: Any) -> Strategy:
    from fnas.strategies.rea import REAStrategy

    return REAStrategy(space, cfg.seed, cfg.strategy_config)


def _fnas(space: FactorizedSpace, cfg: Any) -> Strategy:
    from fnas.strategies.fnas import make_fnas

    f = cfg.strategy_config
    return make_fnas(space, cfg.seed, f.ppo, f, replay_config(cfg))


def _random(space: FactorizedSpace, cfg: Any) -> Strategy:
    from fnas.strategies.random_search import RandomSearch

    return RandomSearch(space, cfg.seed)


register_strategy("fnas", _fnas, Capabilities(policy=True, replay=True, pool=True),
                  config=FNASConfig)
register_strategy("ppo", _ppo, Capabilities(policy=True),  # MnasNet's: the FNAS parts off
                  config=PPOStrategyConfig)
register_strategy("rea", _rea, config=REAConfig)
register_strategy("random", _random)


def _tpe(space: FactorizedSpace, cfg: Any) -> Strategy:
    from fnas.strategies.tpe import TPEStrategy

    return TPEStrategy(space, cfg.seed, cfg.strategy_config)


register_strategy("tpe", _tpe, config=TPEConfig)  # Optuna's TPE (the optuna extra)
