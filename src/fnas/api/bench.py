"""``fnas.bench``: compare strategies on your own benchmark from Python, as ``fnas bench``.

::

    import fnas

    space = fnas.make_space("tiny", {"depth": [1, 2, 3], "width": [16, 32, 64]})
    result = fnas.bench(space, table="scores.csv", metric="acc", target="top:3",
                        strategies=("random", "rea"), seeds=5, budget=20)
    result["summary"]["rea"]["queries_to_target"]["median"], result["truth"]

The space may be an object (it is registered under its name) and the objective a function
(registered under its ``module:qualname``): both reach the benchmark's worker processes,
which are forked. The benchmark itself is :mod:`fnas.benchmark`; this is its entry point, from
Python and from ``fnas bench``, which parses its flags into :func:`bench_config` and calls
:func:`bench`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fnas.api.search import register_space
from fnas.benchmark.config import BenchConfig, register_objective
from fnas.benchmark.harness import run_bench
from fnas.benchmark.summary import save_bench
from fnas.errors import ConfigError
from fnas.search.config import STRATEGIES
from fnas.space.factorized import FactorizedSpace

__all__ = ["bench", "bench_config", "bench_stem"]


def bench_config(space: str | FactorizedSpace | None = None, *, table: str | None = None,
                 metric: str | None = None, objective: str | Callable[..., Any] | None = None,
                 target: str | None = None, **settings: Any) -> BenchConfig:
    """A benchmark's settings from Python values, as :func:`bench` takes them (``fnas bench``
    parses its flags into this call too).

    A space object is registered under its name and a function objective (or
    ``source_objective``) under its ``module:qualname``: both then reach the benchmark's
    worker processes, which are forked. ``bench`` defaults to ``table`` with a ``table``,
    ``objective`` with an ``objective``; ``strategies`` may be a list or a comma-separated
    string.

    Raises:
        ConfigError: a missing benchmark, no strategy, an unknown keyword or a bad setting, in
            one line.
    """
    if isinstance(space, FactorizedSpace):
        register_space(space.name, space)
        space = space.name
    if callable(objective):
        objective = register_objective(objective)
    if callable(settings.get("source_objective")):
        settings["source_objective"] = register_objective(settings["source_objective"])
    bench_name = settings.pop("bench", None) or (
        "table" if table is not None else "objective" if objective is not None else None)
    if bench_name is None:
        raise ConfigError("fnas.bench needs a table=, an objective=, or bench='macro' with "
                          "data=PATH")
    strategies = settings.get("strategies")
    if isinstance(strategies, str):
        settings["strategies"] = tuple(s.strip() for s in strategies.split(",") if s.strip())
        if not settings["strategies"]:
            raise ConfigError(f"strategies {strategies!r:.40} names no strategy: give some of "
                              f"{','.join(STRATEGIES)}, comma-separated")
    elif isinstance(strategies, (list, tuple)):
        settings["strategies"] = tuple(strategies)
    try:
        return BenchConfig(bench=bench_name, space=space, table=table, metric=metric,
                           objective=objective, target=target, **settings)
    except TypeError as e:  # an unknown keyword
        raise ConfigError(f"fnas.bench: {e}") from None


def bench_stem(cfg: BenchConfig) -> str:
    """The default name of a benchmark's files: ``bench-BENCH``, then ``-noisy`` and
    ``-transfer`` where they apply."""
    return f"bench-{cfg.bench}{'-noisy' if cfg.noisy else ''}{'-transfer' if cfg.transfer else ''}"


def bench(space: str | FactorizedSpace | None = None, *, table: str | None = None,
          metric: str | None = None, objective: str | Callable[..., Any] | None = None,
          target: str | None = None, out: str | None = None, name: str | None = None,
          progress: bool = False, config: BenchConfig | None = None,
          **settings: Any) -> dict[str, Any]:
    """Run a benchmark: every strategy x seed, then queries to target and regret.

    Args:
        space: the space (a registered name, ``module:attr`` or a ``FactorizedSpace``).
        table: a JSON or CSV file of scores keyed by ``space.decode(indices).key`` (the
            ``table`` benchmark), with its score field ``metric`` (``"-error"`` for a
            lower-is-better field: the score is its negation).
        objective: a function ``arch -> score`` or ``module:function`` (the ``objective``
            benchmark; give ``optimum=`` if the best score is known).
        target: ``top:K``, ``within:D`` or ``score:X`` (default: the best).
        out: a folder to write ``NAME.json`` and ``NAME.png`` into, as ``fnas bench``.
        name: their name (default :func:`bench_stem`: ``bench-table``, ``bench-macro-noisy``...).
        progress: a progress bar over the runs.
        config: a whole :class:`~fnas.benchmark.config.BenchConfig` instead of the settings
            (:func:`bench_config` makes one).
        **settings: any other :class:`~fnas.benchmark.config.BenchConfig` field (``strategies``,
            ``seeds``, ``budget``, ``batch``, ``cost``, ``missing``, ``source_table``,
            ``jobs``, ...); ``bench="macro", data=PATH`` runs NAS-Bench-Macro.

    Returns:
        The result (``fnas.benchmark.harness.run_bench``): ``summary`` per strategy
        (``queries_to_target``, ``final_regret``...), ``truth``, ``runs``, ``config``; with
        ``out``, also ``files``, the two paths written.

    Raises:
        ConfigError: a bad setting (one line). TaskError: a bad table.
    """
    if config is None:
        config = bench_config(space, table=table, metric=metric, objective=objective,
                              target=target, **settings)
    elif settings or any(v is not None for v in (space, table, metric, objective, target)):
        raise ConfigError("fnas.bench: give config= or the settings, not both")
    result = run_bench(config, progress=progress)
    if out is not None:  # after writing: the file holds the result alone
        result["files"] = list(save_bench(result, out, name or bench_stem(config)))
    return result
