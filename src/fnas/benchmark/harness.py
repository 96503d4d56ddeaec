"""One harness for every strategy: strategies x seeds x budget on one benchmark.

Every run is a real search through :func:`fnas.search.run_search` (the same loop, store and
cache as ``fnas search``) in its own temporary store, so strategies differ only in their
``ask``/``tell``. The budget counts *queries*: real evaluations; a repeated architecture is
served by the run's cache and costs nothing, as with a real NAS that remembers its results.
A run also stops after 5 x budget samples: a policy that has converged onto known
architectures would otherwise sample forever (its curve then stays flat to the budget).

Benchmarks (``BENCHMARKS``, extensible): ``macro`` (the NAS-Bench-Macro table), ``table`` (a
user's table of scores over any space: :mod:`fnas.tasks.score_table`), ``objective`` (a
function ``arch -> score`` over any space), all three with exact queries-to-target and regret
(:mod:`fnas.benchmark.truth`); and ``real`` (the proxy task, real training).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

from fnas.benchmark.config import (
    BENCHMARKS,
    OBJECTIVES,
    BenchConfig,
    bench_config_from,
    objective_evaluator,
)
from fnas.benchmark.summary import (
    bench_truth,
    format_summary,
    queries_to_target,
    save_bench,
    summarize,
    target_of,
)
from fnas.benchmark.truth import TableEvaluator, check_table
from fnas.execution.evaluators import Evaluator, MacroTableEvaluator
from fnas.knowledge.store import Store
from fnas.search.config import SearchConfig, space_factory
from fnas.search.loop import run_search
from fnas.tasks.reward import RewardConfig
from fnas.tasks.score_table import load_score_table

__all__ = ["BenchConfig", "BENCHMARKS", "OBJECTIVES", "run_bench", "one_run", "summarize",
           "queries_to_target", "format_summary", "save_bench", "bench_config_from",
           "target_of", "bench_truth"]


def _source(cfg: BenchConfig, store: Store, seed: int) -> None:
    """The knowledge-source search of run ``seed``, into its store (see ``source_flops``)."""
    if cfg.source_flops is not None:
        ev: Evaluator = MacroTableEvaluator(cfg.data, RewardConfig("macs", cfg.source_flops),
                                            noisy=cfg.noisy, tag="source",
                                            invert=cfg.source_invert)
    elif cfg.source_table is not None:
        table = load_score_table(cfg.source_table, cfg.source_metric or cfg.metric)
        ev = TableEvaluator(table, cfg.missing, tag="source", invert=cfg.source_invert,
                            noisy=cfg.noisy and table.samples is not None)
    else:
        ev = objective_evaluator(cfg.source_objective, version="source")
    scfg = SearchConfig(space="macro" if cfg.bench == "macro" else cfg.space, strategy="fnas",
                        budget=cfg.source_budget, batch=cfg.batch, seed=1000 + seed,
                        budget_counts="trained", checkpoint=False,
                        max_samples=5 * cfg.source_budget, knowledge="none")
    run_search(store, scfg, name=f"source-s{seed}", evaluator=ev, progress=False)


def one_run(cfg: BenchConfig, strategy: str, seed: int) -> dict[str, Any]:
    """One strategy x seed: a full search in a throwaway store; returns its query history."""
    import torch

    torch.set_num_threads(1)  # runs go in parallel, one per core: no thread oversubscription
    evaluator, space_name = BENCHMARKS[cfg.bench](cfg)
    transfer = cfg.transfer
    scfg = SearchConfig(space=space_name, strategy=strategy, budget=cfg.budget, batch=cfg.batch,
                        seed=seed, task=cfg.task, budget_counts="trained", checkpoint=False,
                        max_samples=5 * cfg.budget, knowledge="all" if transfer else "none",
                        knowledge_as=cfg.knowledge_as, fnas=cfg.fnas, replay=cfg.replay,
                        replay_cfg=cfg.replay_cfg)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        if transfer:
            _source(cfg, store, seed)
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
        best = max(best, e.reward) if e.counts else best  # a low fidelity never counts
        known = evaluator.cost(e.arch_key) if e.status == "ok" else None
        cost += known if known is not None else e.train_seconds
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
            "knowledge/trust", "knowledge/weight", "knowledge/share", "knowledge/stagnant",
            "screen/unscreened")  # per update, columnar (entropy, replay, screening, knowledge)
    upd = {k: [u.get(k) for u in updates] for k in keys
           if any(k in u for u in updates)}
    return {"strategy": cfg.label or strategy, "seed": seed,
            "seconds": time.perf_counter() - t0, "samples": samples, "history": history,
            "stop_reason": out.stats.get("stop_reason"),
            "final_stats": final, "updates": upd}


def run_bench(cfg: BenchConfig, progress: bool = True) -> dict[str, Any]:
    """Run every strategy x seed (in parallel processes) and summarise.

    Returns the results: ``config``, ``runs`` (each run's history), ``summary`` (per strategy)
    and, except on ``real``, ``truth`` (the target set and what regret is against).

    Raises:
        ConfigError, TaskError: a bad setting, table or objective (before any run starts), or
            an architecture a table misses (``missing='error'``) met during a run.
    """
    from tqdm.auto import tqdm

    evaluator, space_name = BENCHMARKS[cfg.bench](cfg)  # fail fast, before forking workers
    _check_tables(cfg, space_name, evaluator.input_size)
    if cfg.bench != "objective":
        bench_truth(cfg)  # a target the table cannot have fails now
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
                try:
                    for f in futures:
                        runs.append(f.result())
                        bar.update(1)
                except BaseException:  # one run's error ends the bench: start no other run
                    pool.shutdown(cancel_futures=True)
                    raise
    result = {"config": {**asdict(cfg), "task": asdict(cfg.task)}, "seconds": time.time() - t0,
              "runs": runs}
    result["summary"] = summarize(cfg, runs, names)
    truth = bench_truth(cfg, runs)
    if truth is not None:
        result["truth"] = truth.describe()
    return result


def _check_tables(cfg: BenchConfig, space_name: str, input_size: int) -> None:
    """A user's tables (the benchmark's, the knowledge source's) against the space."""
    tables = []
    if cfg.bench == "table":
        tables.append(load_score_table(cfg.table, cfg.metric, cfg.cost))
    if cfg.source_table is not None:
        tables.append(load_score_table(cfg.source_table, cfg.source_metric or cfg.metric))
    if cfg.source_objective is not None:
        objective_evaluator(cfg.source_objective)
    if tables:
        space = space_factory(space_name)(input_size)
        for t in tables:
            check_table(t, space, cfg.missing)
