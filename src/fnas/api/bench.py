"""``fnas.bench``: compare strategies on your own benchmark from Python, as ``fnas bench``.

::

    import fnas

    space = fnas.make_space("tiny", {"depth": [1, 2, 3], "width": [16, 32, 64]})
    result = fnas.bench(space, table="scores.csv", metric="acc", target="top:3",
                        strategies=("random", "rea"), seeds=5, budget=20)
    result["summary"]["rea"]["queries_to_target"]["median"], result["truth"]

The space may be an object (it is registered under its name) and the objective a function
(registered under its ``module:qualname``): both reach the benchmark's worker processes,
which are forked. The benchmark itself is :mod:`fnas.benchmark`; this is its Python entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fnas.api.search import register_space
from fnas.benchmark.config import BenchConfig, register_objective
from fnas.benchmark.harness import run_bench
from fnas.benchmark.summary import save_bench
from fnas.errors import ConfigError
from fnas.space.factorized import FactorizedSpace

__all__ = ["bench"]


def bench(space: str | FactorizedSpace | None = None, *, table: str | None = None,
          metric: str | None = None, objective: str | Callable[..., Any] | None = None,
          target: str | None = None, out: str | None = None, name: str = "bench",
          progress: bool = False, **settings: Any) -> dict[str, Any]:
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
        progress: a progress bar over the runs.
        **settings: any other :class:`~fnas.benchmark.config.BenchConfig` field (``strategies``,
            ``seeds``, ``budget``, ``batch``, ``cost``, ``missing``, ``source_table``,
            ``jobs``, ...); ``bench="macro", data=PATH`` runs NAS-Bench-Macro.

    Returns:
        The result (``fnas.benchmark.harness.run_bench``): ``summary`` per strategy
        (``queries_to_target``, ``final_regret``...), ``truth``, ``runs``, ``config``.

    Raises:
        ConfigError: a bad setting (one line). TaskError: a bad table.
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
    if isinstance(settings.get("strategies"), (list, tuple)):
        settings["strategies"] = tuple(settings["strategies"])
    try:
        cfg = BenchConfig(bench=bench_name, space=space, table=table, metric=metric,
                          objective=objective, target=target, **settings)
    except TypeError as e:  # an unknown keyword
        raise ConfigError(f"fnas.bench: {e}") from None
    result = run_bench(cfg, progress=progress)
    if out is not None:
        save_bench(result, out, name)
    return result
