"""Search: the ask/tell strategies, evaluators, checkpoints and the loop."""

from fnas.search.checkpoint import load_checkpoint, save_checkpoint
from fnas.search.evaluators import Evaluator, ProxyEvaluator, SyntheticEvaluator
from fnas.search.loop import (
    SPACES,
    STRATEGIES,
    SearchConfig,
    SearchOutcome,
    resume_search,
    run_search,
)
from fnas.search.ppo import PPOStrategy
from fnas.search.strategy import Proposal, Strategy

__all__ = ["load_checkpoint", "save_checkpoint", "Evaluator", "ProxyEvaluator",
           "SyntheticEvaluator", "SPACES", "STRATEGIES", "SearchConfig", "SearchOutcome",
           "resume_search", "run_search", "PPOStrategy", "Proposal", "Strategy"]
