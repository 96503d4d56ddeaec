"""Search strategies: what proposes the architectures and learns from their results, through
the ask/tell contract of :class:`Strategy` (:mod:`fnas.strategies.base`).

One module per strategy: :mod:`~fnas.strategies.random_search` (``random``),
:mod:`~fnas.strategies.rea` (``rea``, regularized evolution), :mod:`~fnas.strategies.ppo`
(``ppo``, MnasNet's controller, with the experience buffer) and the :mod:`fnas.strategies.fnas`
subpackage (``fnas``: screening with the critic, or the veto rule). ``STRATEGIES``
(:mod:`~fnas.strategies.registry`) names them for ``SearchConfig``, the CLI and the benchmark:
a new strategy is a module here plus :func:`register_strategy`, which also declares what it
can use (:class:`Capabilities`: a policy to replay into, the buffer and the pool by default)
and the dataclass of its settings (``SearchConfig.strategy_config``; how they are stored:
:mod:`~fnas.strategies.settings`).
"""

from fnas.strategies.base import Proposal, Strategy, Verdict
from fnas.strategies.ppo import PPOStrategy, PPOStrategyConfig
from fnas.strategies.random_search import RandomSearch
from fnas.strategies.rea import REAConfig, REAStrategy
from fnas.strategies.registry import (
    CAPABILITIES,
    STRATEGIES,
    STRATEGY_CONFIGS,
    Capabilities,
    capabilities,
    config_class,
    register_strategy,
    replay_config,
)

__all__ = ["Proposal", "Strategy", "Verdict", "PPOStrategy", "PPOStrategyConfig", "RandomSearch",
           "REAConfig", "REAStrategy", "STRATEGIES", "CAPABILITIES", "STRATEGY_CONFIGS",
           "Capabilities", "capabilities", "config_class", "register_strategy",
           "replay_config"]
