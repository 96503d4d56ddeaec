"""Search: the loop (:func:`run_search`, :func:`resume_search`, :class:`SearchRun`), its
config (:class:`SearchConfig`, the ``SPACES`` registry), checkpoints, callbacks and what the
loop keeps between batches (recording, the knowledge pool, earlier runs' knowledge).

The strategies are :mod:`fnas.strategies`, the evaluators and executors :mod:`fnas.execution`,
the benchmark harness :mod:`fnas.benchmark`; their main names are re-exported here, and their
modules' old paths (``fnas.search.evaluators``...) still import (below).
"""

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

import fnas._config_build as config_build
from fnas.execution import (
    evaluators,
    executors,
    identity,
    jobs,
    objective,
    ray_guard,
    ray_net,
    worker_main,
    workers,
)
from fnas.execution.evaluators import (
    Evaluator,
    MacroTableEvaluator,
    ProxyEvaluator,
    SyntheticEvaluator,
)
from fnas.execution.objective import ObjectiveError, ObjectiveEvaluator
from fnas.search.callbacks import Callback, StopSearch
from fnas.search.checkpoint import load_checkpoint, save_checkpoint
from fnas.search.config import SPACES, STRATEGIES, SearchConfig
from fnas.search.loop import SearchOutcome, resume_search, run_search
from fnas.search.search_run import SearchRun
from fnas.strategies import base as strategy
from fnas.strategies import ppo, random_search, rea
from fnas.strategies.base import Proposal, Strategy
from fnas.strategies.fnas import candidates as screen_candidates
from fnas.strategies.fnas import config as fnas_config
from fnas.strategies.fnas import screen_config, screening
from fnas.strategies.fnas import state as fnas_state
from fnas.strategies.fnas import veto as fnas_strategy
from fnas.strategies.ppo import PPOStrategy
from fnas.strategies.random_search import RandomSearch
from fnas.strategies.rea import REAConfig, REAStrategy

__all__ = [
    "load_checkpoint", "save_checkpoint", "Evaluator", "ProxyEvaluator", "SyntheticEvaluator",
    "MacroTableEvaluator", "BENCHMARKS", "BenchConfig", "run_bench", "RandomSearch", "REAConfig",
    "REAStrategy", "SPACES", "STRATEGIES", "SearchConfig", "SearchOutcome", "resume_search",
    "run_search", "PPOStrategy", "Proposal", "Strategy", "SearchRun", "Callback",
    "StopSearch", "ObjectiveError", "ObjectiveEvaluator",
]

# Old paths kept so existing code and pickles keep working: the modules that moved out of
# fnas.search (issue 33) are registered under their old names as the same module objects, so
# ``from fnas.search.evaluators import ProxyEvaluator`` and a pickle naming
# ``fnas.search.evaluators`` both find ``fnas.execution.evaluators``.
_MOVED = {"config_build": config_build, "evaluators": evaluators, "executors": executors,
          "identity": identity, "jobs": jobs, "objective": objective, "ray_guard": ray_guard,
          "ray_net": ray_net, "worker_main": worker_main, "workers": workers,
          "strategy": strategy, "ppo": ppo, "random_search": random_search, "rea": rea,
          "screening": screening, "screen_candidates": screen_candidates,
          "screen_config": screen_config, "fnas_config": fnas_config, "fnas_state": fnas_state,
          "fnas_strategy": fnas_strategy}
for _old, _module in _MOVED.items():
    sys.modules[f"{__name__}.{_old}"] = _module

# The benchmark moved to fnas.benchmark, a layer above the search: its old paths (and the
# names BENCHMARKS, BenchConfig, run_bench) import it on first use instead of here.
_LATER = {f"{__name__}.bench": "fnas.benchmark.harness",
          f"{__name__}.bench_summary": "fnas.benchmark.summary",
          f"{__name__}.bench_truth": "fnas.benchmark.truth"}


class _OldBenchPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``fnas.search.bench`` as the module object ``fnas.benchmark.harness`` (and
    so on for ``_LATER``)."""

    def __init__(self) -> None:
        self._specs: dict[str, Any] = {}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        return importlib.util.spec_from_loader(name, self) if name in _LATER else None

    def create_module(self, spec: Any) -> Any:
        module = importlib.import_module(_LATER[spec.name])
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:  # the import set the old name's spec on it:
        module.__spec__ = self._specs.pop(module.__spec__.name)  # give it back its own


if not any(isinstance(f, _OldBenchPaths) for f in sys.meta_path):
    sys.meta_path.append(_OldBenchPaths())


def __getattr__(name: str) -> Any:  # PEP 562: the benchmark's names and old modules
    if name in ("BENCHMARKS", "BenchConfig", "run_bench"):
        return getattr(importlib.import_module("fnas.benchmark.harness"), name)
    if f"{__name__}.{name}" in _LATER:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
