"""One harness for every strategy: strategies x seeds x budget on one benchmark.

Every run is a real search through :func:`fnas.search.run_search` (the same loop, store and
cache as ``fnas search``) in its own temporary store, so strategies differ only in their
``ask``/``tell``. The budget counts *queries*: real evaluations; a repeated architecture is
served by the run's cache and costs nothing, as with a real NAS that remembers its results.
A run also stops after 5 x budget samples: a policy that has converged onto known
architectures would otherwise sample forever (its curve then stays flat to the budget).

Benchmarks (``BENCHMARKS``, extensible): ``macro`` (the NAS-Bench-Macro table: exact regret and
queries-to-target) and ``real`` (the proxy task, real training).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from fnas.errors import ConfigError
from fnas.knowledge.store import Store
from fnas.search.config import STRATEGIES, SearchConfig
from fnas.search.evaluators import Evaluator, MacroTableEvaluator, ProxyEvaluator
from fnas.search.loop import run_search
from fnas.tasks.reward import RewardConfig
from fnas.tasks.trainer import TaskConfig

__all__ = ["BenchConfig", "BENCHMARKS", "run_bench", "one_run", "summarize",
           "queries_to_target", "format_summary", "save_bench"]


@dataclass(frozen=True)
class BenchConfig:
    """A comparison: which strategies, seeds and budget on which benchmark."""

    bench: str = "macro"
    """``macro`` (NAS-Bench-Macro table) or ``real`` (proxy-task training)."""
    strategies: tuple[str, ...] = ("random", "rea", "ppo", "fnas")
    """Strategy names (keys of ``fnas.search.STRATEGIES``)."""
    seeds: int = 20
    """Runs per strategy, seeded 0 .. seeds-1."""
    budget: int = 1000
    """Queries (real evaluations) per run."""
    batch: int = 8
    """Architectures per ask/tell round."""
    noisy: bool = False
    """``macro``: draw one of the table's three seeds per query instead of the mean."""
    data: str | None = None
    """``macro``: path of nas-bench-macro_cifar10.json."""
    task: TaskConfig = field(default_factory=TaskConfig)
    """``real``: the proxy task."""
    target_delta: float = 0.2
    """``macro``: the target set is every architecture within this many points of the best."""
    jobs: int = 0
    """Parallel runs (processes); 0 means one per CPU core."""
    source_flops: float | None = None
    """``macro`` transfer: before each run, a knowledge-source search (strategy ``fnas``,
    ``source_budget`` queries, seed 1000 + seed) optimises MnasNet's reward with this FLOPs
    target in the same store; the run then pre-trains its critic on it (knowledge ``all``).
    The source shares nothing through the cache and its queries are not counted."""
    source_budget: int = 200
    """Queries of each knowledge-source search."""
    source_invert: bool = False
    """``macro`` transfer: the source measures 1 - accuracy (a task that ranks the table upside
    down): misleading knowledge, which the run must judge and forget."""
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
        if self.knowledge_as not in ("measurements", "rewards"):
            raise ConfigError(f"knowledge_as={self.knowledge_as!r}: 'measurements' or 'rewards'")
        if self.label is not None and len(self.strategies) != 1:
            raise ConfigError("a label names the runs of one strategy: give one strategy")
        SearchConfig(strategy=self.strategies[0], replay=self.replay,
                     replay_cfg=self.replay_cfg, fnas=self.fnas)  # validates the settings
        if self.bench == "macro" and not self.data:
            raise ConfigError("the macro benchmark needs the table's path (--data PATH)")


def _macro(cfg: BenchConfig) -> tuple[Evaluator, str]:
    return MacroTableEvaluator(cfg.data, RewardConfig(), noisy=cfg.noisy), "macro"


def _macro_source(cfg: BenchConfig, store: Store, seed: int) -> None:
    ev = MacroTableEvaluator(cfg.data, RewardConfig("macs", cfg.source_flops), noisy=cfg.noisy,
                             tag="source", invert=cfg.source_invert)
    scfg = SearchConfig(space="macro", strategy="fnas", budget=cfg.source_budget,
                        batch=cfg.batch, seed=1000 + seed, budget_counts="trained",
                        checkpoint=False, max_samples=5 * cfg.source_budget, knowledge="none")
    run_search(store, scfg, name=f"source-s{seed}", evaluator=ev, progress=False)


def _real(cfg: BenchConfig) -> tuple[Evaluator, str]:
    return ProxyEvaluator(cfg.task, RewardConfig()), "mnas"


BENCHMARKS: dict[str, Callable[[BenchConfig], tuple[Evaluator, str]]] = {
    "macro": _macro, "real": _real,
}
"""Benchmark factories: ``BenchConfig -> (evaluator, space name)``; register your own here."""


def one_run(cfg: BenchConfig, strategy: str, seed: int) -> dict[str, Any]:
    """One strategy x seed: a full search in a throwaway store; returns its query history."""
    import torch

    torch.set_num_threads(1)  # runs go in parallel, one per core: no thread oversubscription
    evaluator, space_name = BENCHMARKS[cfg.bench](cfg)
    transfer = cfg.source_flops is not None and cfg.bench == "macro"
    scfg = SearchConfig(space=space_name, strategy=strategy, budget=cfg.budget, batch=cfg.batch,
                        seed=seed, task=cfg.task, budget_counts="trained", checkpoint=False,
                        max_samples=5 * cfg.budget, knowledge="all" if transfer else "none",
                        knowledge_as=cfg.knowledge_as, fnas=cfg.fnas, replay=cfg.replay,
                        replay_cfg=cfg.replay_cfg)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        if transfer:
            _macro_source(cfg, store, seed)
        out = run_search(store, scfg, name=f"{strategy}-s{seed}", evaluator=evaluator,
                         progress=False)
        rows = store.evaluations(out.experiment.id)
        updates = store.updates(out.experiment.id)
        store.close()
    cols = ("query", "sample", "arch", "reward", "accuracy", "cost", "best")
    history: dict[str, list] = {c: [] for c in cols}  # columnar: compact as JSON
    best, cost, samples = -math.inf, 0.0, 0
    for e in rows:
        samples += 1
        if not e.trained:
            continue
        best = max(best, e.reward) if e.status == "ok" else best
        if isinstance(evaluator, MacroTableEvaluator) and e.status == "ok":
            cost += evaluator.cost(e.arch_key)
        else:
            cost += e.train_seconds
        acc = None if e.accuracy is None else round(e.accuracy, 6)
        for c, v in zip(cols, (len(history["query"]) + 1, samples, e.arch_key,
                               round(e.reward, 6), acc, round(cost, 4), round(best, 6)),
                        strict=True):
            history[c].append(v)
        if len(history["query"]) >= cfg.budget:
            break
    final = {k[len("last/"):]: v for k, v in out.stats.items()
             if k.startswith("last/") and not isinstance(v, list)}
    keys = ("n_trained", "losses/entropy", "replay/n", "replay/c_mean", "replay/c_p10",
            "replay/c_p50", "replay/c_p90", "controller/entropy", "screen/screened",
            "critic/pick_tau", "time/fit_ms", "time/score_ms", "time/update_ms",
            )  # per update, columnar (entropy, replay and screening curves)
    upd = {k: [u.get(k) for u in updates] for k in keys
           if any(k in u for u in updates)}
    return {"strategy": cfg.label or strategy, "seed": seed,
            "seconds": time.perf_counter() - t0, "samples": samples, "history": history,
            "stop_reason": out.stats.get("stop_reason"),
            "final_stats": final, "updates": upd}


def run_bench(cfg: BenchConfig, progress: bool = True) -> dict[str, Any]:
    """Run every strategy x seed (in parallel processes) and summarise. Returns the results."""
    from tqdm.auto import tqdm

    BENCHMARKS[cfg.bench](cfg)  # fail fast on a bad path, before forking workers
    jobs = cfg.jobs or os.cpu_count() or 1
    todo = [(s, seed) for s in cfg.strategies for seed in range(cfg.seeds)]
    names = (cfg.label,) if cfg.label else cfg.strategies
    runs: list[dict[str, Any]] = []
    t0 = time.time()
    with tqdm(total=len(todo), desc=f"bench {cfg.bench}", disable=not progress,
              unit="run") as bar:
        if jobs == 1:
            for s, seed in todo:
                runs.append(one_run(cfg, s, seed))
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(one_run, cfg, s, seed) for s, seed in todo]
                for f in futures:
                    runs.append(f.result())
                    bar.update(1)
    result = {"config": {**asdict(cfg), "task": asdict(cfg.task)}, "seconds": time.time() - t0,
              "runs": runs}
    result["summary"] = summarize(cfg, runs, names)
    return result


def queries_to_target(history: dict[str, list], targets: set[str]) -> int | None:
    """1-based query index of the first hit of ``targets``, or ``None`` within the budget."""
    for q, arch in zip(history["query"], history["arch"], strict=True):
        if arch in targets:
            return q
    return None


def summarize(cfg: BenchConfig, runs: list[dict[str, Any]],
              names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Per strategy: queries to target (median, IQR, success rate) and final regret (macro),
    or final best reward (real)."""
    table = None
    if cfg.bench == "macro":
        table = MacroTableEvaluator(cfg.data).table
        targets = table.within(cfg.target_delta)
    out: dict[str, Any] = {}
    for s in names or cfg.strategies:  # names: labels of merged results (combine_macro.py)
        rs = [r for r in runs if r["strategy"] == s]
        made = [len(r["history"]["query"]) for r in rs]
        entry: dict[str, Any] = {"runs": len(rs), "queries_made": _stats(made),
                                 "samples": _stats([r["samples"] for r in rs]),
                                 "final_best_reward": _stats([r["history"]["best"][-1]
                                                              for r in rs if r["history"]["best"]])}
        audit = [r.get("final_stats", {}).get("critic/audit_error") for r in rs]
        audit = [a for a in audit if a is not None and not math.isnan(a)]
        if audit:  # the decision module's audited error (units: reward std), end of run
            entry["audit_error"] = _stats(audit)
        if table is not None:
            q = [queries_to_target(r["history"], targets) for r in rs]
            hits = [v for v in q if v is not None]
            # A run that never hits counts as +inf, so medians stay honest about failures; the
            # percentiles use the nearest rank (no interpolation across an infinity).
            qs = np.array([v if v is not None else np.inf for v in q], dtype=float)
            pct = {p: float(np.percentile(qs, p, method="nearest")) for p in (25, 50, 75)}
            entry["queries_to_target"] = {
                "median": pct[50], "q25": pct[25], "q75": pct[75],
                "success_rate": len(hits) / len(rs), "per_seed": q,
            }
            regrets = []
            for r in rs:  # incumbent = best *observed* reward; regret from its table mean
                h = r["history"]
                ok = [i for i, a in enumerate(h["accuracy"]) if a is not None]
                inc = max(ok, key=lambda i: h["reward"][i])
                regrets.append(table.best_acc - table.entries[h["arch"][inc]].mean_acc)
            entry["final_regret"] = _stats(regrets)
        out[s] = entry
    return out


def _stats(v: list[float]) -> dict[str, float]:
    a = np.asarray(v, dtype=float)
    if a.size == 0:
        return {}
    return {"median": float(np.median(a)), "q25": float(np.percentile(a, 25)),
            "q75": float(np.percentile(a, 75)), "mean": float(a.mean())}


def format_summary(cfg: BenchConfig, summary: dict[str, Any]) -> str:
    """The printed table."""
    lines = []
    if cfg.bench == "macro":
        lines.append(f"{'strategy':<10} {'queries to within ' + str(cfg.target_delta):>24}  "
                     f"{'success':>7}  {'final regret (median [IQR])':>28}  {'queries made':>12}")
        for s, e in summary.items():
            q, r = e["queries_to_target"], e["final_regret"]
            lines.append(f"{s:<10} {_fmt(q['median']):>9} [{_fmt(q['q25'])}, {_fmt(q['q75'])}]"
                         f"{'':>5}  {100 * q['success_rate']:6.0f}%  "
                         f"{r['median']:>12.3f} [{r['q25']:.3f}, {r['q75']:.3f}]"
                         f"  {e['queries_made']['median']:>12.0f}")
    else:
        lines.append(f"{'strategy':<10} {'final best reward (median [IQR])':>34}")
        for s, e in summary.items():
            b = e["final_best_reward"]
            lines.append(f"{s:<10} {b['median']:>16.4f} [{b['q25']:.4f}, {b['q75']:.4f}]")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.0f}"


def save_bench(result: dict[str, Any], out_dir: str, stem: str) -> tuple[str, str]:
    """Write ``stem.json`` and ``stem.png`` into ``out_dir``; returns their paths."""
    from fnas.report.bench_plot import plot_bench

    os.makedirs(out_dir, exist_ok=True)
    js = os.path.join(out_dir, stem + ".json")
    with open(js, "w") as f:
        json.dump(result, f, separators=(",", ":"))
    png = os.path.join(out_dir, stem + ".png")
    plot_bench(result, png)
    return js, png


def bench_config_from(d: dict[str, Any]) -> BenchConfig:
    """Inverse of ``asdict`` (for re-plotting a saved result)."""
    return replace(BenchConfig(data=d.get("data")), **{**d, "task": TaskConfig(**d["task"]),
                                                      "strategies": tuple(d["strategies"])})
