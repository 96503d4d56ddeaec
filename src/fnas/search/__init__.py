"""Search: the ask/tell strategies, evaluators, checkpoints and the loop."""

from fnas.search.bench import BENCHMARKS, BenchConfig, run_bench
from fnas.search.callbacks import Callback, StopSearch
from fnas.search.checkpoint import load_checkpoint, save_checkpoint
from fnas.search.config import SPACES, STRATEGIES, SearchConfig
from fnas.search.evaluators import (
    Evaluator,
    MacroTableEvaluator,
    ProxyEvaluator,
    SyntheticEvaluator,
)
from fnas.search.loop import SearchOutcome, resume_search, run_search
from fnas.search.objective import ObjectiveError, ObjectiveEvaluator
from fnas.search.ppo import PPOStrategy
from fnas.search.random_search import RandomSearch
from fnas.search.rea import REAConfig, REAStrategy
from fnas.search.search_run import SearchRun
from fnas.search.strategy import Proposal, Strategy

__all__ = [
    "load_checkpoint", "save_checkpoint", "Evaluator", "ProxyEvaluator", "SyntheticEvaluator",
    "MacroTableEvaluator", "BENCHMARKS", "BenchConfig", "run_bench", "RandomSearch", "REAConfig",
    "REAStrategy", "SPACES", "STRATEGIES", "SearchConfig", "SearchOutcome", "resume_search",
    "run_search", "PPOStrategy", "Proposal", "Strategy", "SearchRun", "Callback",
    "StopSearch", "ObjectiveError", "ObjectiveEvaluator",
]
