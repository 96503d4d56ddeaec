"""The benchmark harness (``fnas bench``, ``fnas.bench``): strategies x seeds x budget on one
benchmark, then queries to target and regret per strategy.

- :mod:`~fnas.benchmark.config`: :class:`BenchConfig` and the benchmarks' registry
  ``BENCHMARKS`` (a new benchmark is one entry there), ``OBJECTIVES`` (functions by name);
- :mod:`~fnas.benchmark.harness`: :func:`run_bench`, each run a real search
  (:func:`fnas.search.run_search`) in its own store;
- :mod:`~fnas.benchmark.truth`: target sets and regret (``Truth``), a user's table of scores
  as an evaluator (``TableEvaluator``);
- :mod:`~fnas.benchmark.summary`: the numbers per strategy, the printed table, the result files;
- :mod:`~fnas.benchmark.plot`: the figure.

Its names load on first use (PEP 562), so importing :mod:`fnas.benchmark.plot` (as
``fnas.report`` does) does not import the search.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BenchConfig", "BENCHMARKS", "OBJECTIVES", "register_objective", "run_bench",
           "one_run", "summarize", "format_summary", "save_bench", "Truth", "TableEvaluator",
           "plot_bench"]

_HOME = {"BenchConfig": "config", "BENCHMARKS": "config", "OBJECTIVES": "config",
         "register_objective": "config", "run_bench": "harness", "one_run": "harness",
         "summarize": "summary", "format_summary": "summary", "save_bench": "summary",
         "Truth": "truth", "TableEvaluator": "truth", "plot_bench": "plot"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
