"""A benchmark's configuration (:class:`BenchConfig`) and the benchmarks' registry
(``BENCHMARKS``: a name -> ``BenchConfig -> (evaluator, space name)``; add yours there), with
the objectives given as Python functions (``OBJECTIVES``, :func:`register_objective`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from fnas.benchmark.truth import MISSING, TableEvaluator, import_object, parse_target
from fnas.errors import ConfigError
from fnas.execution.evaluators import Evaluator, MacroTableEvaluator, ProxyEvaluator
from fnas.search.config import STRATEGIES, SearchConfig, space_factory
from fnas.tasks.reward import RewardConfig
from fnas.tasks.score_table import load_score_table
from fnas.tasks.trainer import TaskConfig

__all__ = ["BenchConfig", "BENCHMARKS", "OBJECTIVES", "register_objective",
           "objective_evaluator", "bench_config_from"]

OBJECTIVES: dict[str, Callable[..., Any]] = {}
"""Objectives given as functions (``fnas.bench(objective=f)``), by their ``module:qualname``:
a config names its objective, so that it stays JSON-able and reaches forked workers."""


@dataclass(frozen=True)
class BenchConfig:
    """A comparison: which strategies, seeds and budget on which benchmark."""

    bench: str = "macro"
    """``macro`` (NAS-Bench-Macro table), ``table`` (your table of scores), ``objective``
    (your function) or ``real`` (proxy-task training)."""
    space: str | None = None
    """``table``, ``objective``: the space searched, a registered name (``fnas.register_space``)
    or ``module:attr``; table keys are its ``space.decode(indices).key``."""
    table: str | None = None
    """``table``: a JSON or CSV file mapping architecture keys to scores (higher is better)."""
    metric: str | None = None
    """``table``: the field (column) read as the score, e.g. ``mean_acc``; may be omitted for
    a JSON object of bare numbers. ``-FIELD`` reads a lower-is-better field (an error rate):
    the score is its negation (write ``--metric=-error`` on the command line)."""
    cost: str | None = None
    """``table``: a field read as each query's cost (its sum is the curve's cost axis)."""
    missing: str = "error"
    """``table``: an architecture the table does not list is an ``error`` (checked before the
    runs where the space has at most a million architectures, else when queried), or ``fail``
    (a failed query, given the table's worst score; it costs one query)."""
    objective: str | None = None
    """``objective``: ``module:function`` scoring an architecture (``arch -> score`` or a dict
    of metrics, as ``fnas.create_search(objective=...)`` takes)."""
    optimum: float | None = None
    """``objective``: the best score reachable, if known; regret and ``within:D`` are
    measured against it, else against the best score any run found."""
    target: str | None = None
    """Target set: ``top:K`` (the table's K best), ``within:D`` (score >= best - D) or
    ``score:X``; default ``within:0.2`` (``target_delta``) on NAS-Bench-Macro, ``within:0``
    (the best) elsewhere."""
    strategies: tuple[str, ...] = ("random", "rea", "ppo", "fnas")
    """Strategy names (keys of ``fnas.search.STRATEGIES``)."""
    seeds: int = 20
    """Runs per strategy, seeded 0 .. seeds-1."""
    budget: int = 1000
    """Queries (real evaluations) per run."""
    batch: int = 8
    """Architectures per ask/tell round."""
    noisy: bool = False
    """``macro``, ``table``: draw one of the table's per-seed scores per query (NAS-Bench-Macro's
    three ``test_acc``; a table's score field holding a list) instead of the mean."""
    data: str | None = None
    """``macro``: path of nas-bench-macro_cifar10.json."""
    task: TaskConfig = field(default_factory=TaskConfig)
    """``real``: the proxy task."""
    target_delta: float = 0.2
    """``macro``: the default target set is every architecture within this many points of the
    best (``target`` overrides it)."""
    jobs: int = 0
    """Parallel runs (processes); 0 means one per CPU core."""
    source_flops: float | None = None
    """``macro`` transfer: before each run, a knowledge-source search (strategy ``fnas``,
    ``source_budget`` queries, seed 1000 + seed) optimises MnasNet's reward with this FLOPs
    target in the same store; the run then pre-trains its critic on it (knowledge ``all``).
    The source shares nothing through the cache and its queries are not counted."""
    source_table: str | None = None
    """``table``, ``objective``, ``macro`` transfer: a knowledge-source search, as for
    ``source_flops``, scores the same space with this table instead (``source_metric``)."""
    source_metric: str | None = None
    """The score field of ``source_table`` (default: ``metric``)."""
    source_objective: str | None = None
    """Transfer from a knowledge-source search that scores the same space with this
    ``module:function``."""
    source_budget: int = 200
    """Queries of each knowledge-source search."""
    source_invert: bool = False
    """Transfer: the source measures 1 - accuracy on NAS-Bench-Macro, minus the score of a
    ``source_table`` (a task that ranks the table upside down): misleading knowledge, which
    the run must judge and forget."""
    fnas: dict = field(default_factory=dict)
    """Settings of the ``fnas`` strategy (``SearchConfig.fnas``), e.g. ``{"imagined": 4}``."""
    knowledge_as: str = "measurements"
    """What the source teaches: its ``measurements`` re-scored with the run's reward (plain
    accuracy here), or the ``rewards`` it optimised (``SearchConfig.knowledge_as``)."""
    replay: str = "auto"
    """Experience buffer of every run (``SearchConfig.replay``: auto, on, off)."""
    replay_cfg: dict = field(default_factory=dict)
    """Its settings (``SearchConfig.replay_cfg``), e.g. ``{"correction": False}``."""
    label: str | None = None
    """Name the runs by this label instead of their strategy (a variant of one strategy,
    e.g. ``ppo+replay``); needs exactly one strategy."""

    def __post_init__(self) -> None:
        if self.bench not in BENCHMARKS:
            raise ConfigError(f"unknown benchmark {self.bench!r}: expected one of "
                              f"{sorted(BENCHMARKS)}")
        for s in self.strategies:
            if s not in STRATEGIES:
                raise ConfigError(f"unknown strategy {s!r}: expected one of {sorted(STRATEGIES)}")
        if self.seeds < 1 or self.budget < 2 or self.batch < 2:
            raise ConfigError("seeds must be >= 1, budget and batch >= 2")
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 0:
            raise ConfigError(f"--jobs {self.jobs!r:.20} (jobs=): expected 0 (one per core) or "
                              "more")
        if self.knowledge_as not in ("measurements", "rewards"):
            raise ConfigError(f"knowledge_as={self.knowledge_as!r}: 'measurements' or 'rewards'")
        if self.label is not None and len(self.strategies) != 1:
            raise ConfigError("a label names the runs of one strategy: give one strategy")
        SearchConfig(strategy=self.strategies[0], replay=self.replay,
                     replay_cfg=self.replay_cfg, fnas=self.fnas)  # validates the settings
        self._check_benchmark()

    @property
    def transfer(self) -> bool:
        """Whether each run first learns from a knowledge-source search."""
        return any(getattr(self, f) is not None
                   for f in ("source_flops", "source_table", "source_objective"))

    def _check_benchmark(self) -> None:
        """Each benchmark's own settings: present where needed, refused where meaningless."""
        uses = _USES.get(self.bench)  # None: a registered benchmark reads what it likes
        for f in ("data", "space", "table", "metric", "cost", "objective", "optimum",
                  "source_flops", "source_table", "source_metric", "source_objective"):
            if uses is not None and getattr(self, f) is not None and f not in uses:
                raise ConfigError(f"--{f.replace('_', '-')} ({f}=) does not apply to the "
                                  f"{self.bench} benchmark")
        if self.bench == "macro" and not self.data:
            raise ConfigError("the macro benchmark needs the table's path (--data PATH)")
        for f in _NEEDS.get(self.bench, ()):
            if not getattr(self, f):
                raise ConfigError(f"the {self.bench} benchmark needs --{f} ({f}=)")
        if self.space is not None:
            space_factory(self.space)  # a registered name or module:attr; else one line
        if self.optimum is not None and not math.isfinite(self.optimum):
            raise ConfigError(f"optimum={self.optimum!r}: expected a finite score")
        if self.noisy and self.bench not in ("macro", "table"):
            raise ConfigError("--noisy draws one of a table's per-seed scores: macro or table")
        if self.missing not in MISSING:
            raise ConfigError(f"missing={self.missing!r}: expected one of {MISSING}")
        if self.target is not None:
            if self.bench == "real":
                raise ConfigError("the real benchmark has no target set: drop --target")
            if parse_target(self.target)[0] == "top" and self.bench == "objective":
                raise ConfigError(f"target {self.target!r} ranks a table's architectures: an "
                                  "objective has none; use within:D or score:X")
        sources = [f for f in ("source_flops", "source_table", "source_objective")
                   if getattr(self, f) is not None]
        if len(sources) > 1:
            raise ConfigError(f"one knowledge source at a time: got {', '.join(sources)}")
        if self.source_invert and self.source_objective is not None:
            raise ConfigError("--source-invert turns a table upside down, not an objective")


_USES = {"macro": {"data", "source_flops", "source_table", "source_metric"},
         "table": {"space", "table", "metric", "cost", "source_table", "source_metric",
                   "source_objective"},
         "objective": {"space", "objective", "optimum", "source_table", "source_metric",
                       "source_objective"},
         "real": set()}
"""The benchmark-specific settings each benchmark takes."""
_NEEDS = {"table": ("space", "table"), "objective": ("space", "objective")}


def _macro(cfg: BenchConfig) -> tuple[Evaluator, str]:
    return MacroTableEvaluator(cfg.data, RewardConfig(), noisy=cfg.noisy), "macro"


def _table(cfg: BenchConfig) -> tuple[Evaluator, str]:
    table = load_score_table(cfg.table, cfg.metric, cfg.cost)
    return TableEvaluator(table, cfg.missing, noisy=cfg.noisy), cfg.space


def _objective(cfg: BenchConfig) -> tuple[Evaluator, str]:
    return objective_evaluator(cfg.objective), cfg.space


def objective_evaluator(name: str, version: str | None = None) -> Evaluator:
    """The evaluator of objective ``name`` (one of ``OBJECTIVES``, else ``module:function``
    imported); ``version``: its ``ObjectiveEvaluator`` tag (None: its fingerprint)."""
    from fnas.execution.objective import ObjectiveEvaluator  # a plain function as an evaluator

    fn = OBJECTIVES.get(name) or import_object(name, "objective")
    if not callable(fn):
        raise ConfigError(f"objective {name!r} is a {type(fn).__name__}: expected a function "
                          "arch -> score")
    return ObjectiveEvaluator(fn, version)


def _real(cfg: BenchConfig) -> tuple[Evaluator, str]:
    return ProxyEvaluator(cfg.task, RewardConfig()), "mnas"


BENCHMARKS: dict[str, Callable[[BenchConfig], tuple[Evaluator, str]]] = {
    "macro": _macro, "table": _table, "objective": _objective, "real": _real,
}
"""Benchmark factories: ``BenchConfig -> (evaluator, space name)``; register your own here."""


def register_objective(fn: Callable[..., Any]) -> str:
    """Register a function as an objective and return the name a config gives it: its
    ``module:qualname``, made unique (``@`` its id) when another function has that name (two
    lambdas, two local functions). The benchmark's workers are forked, so they find it."""
    ref = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    if OBJECTIVES.get(ref, fn) is not fn:  # two lambdas, two local functions
        ref += f"@{id(fn):x}"
    OBJECTIVES[ref] = fn
    return ref


def bench_config_from(d: dict[str, Any]) -> BenchConfig:
    """Inverse of ``asdict`` (for re-plotting a saved result); settings a result written
    before they existed lacks take their defaults."""
    known = {f.name for f in fields(BenchConfig)}
    kw = {k: v for k, v in d.items() if k in known}
    return BenchConfig(**{**kw, "task": TaskConfig(**d["task"]),
                          "strategies": tuple(d["strategies"])})
