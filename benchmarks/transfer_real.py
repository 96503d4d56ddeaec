"""Lifelong knowledge on the real proxy task: a digits search teaches an mnist5k search.

What it measures, per seed:
1. vanilla MnasNet PPO on mnist5k with ``--budget`` real trainings: its best reward R*;
2. a knowledge-source ``fnas`` search on digits (``--source-budget`` trainings, seed 1000+s);
3. an ``fnas`` search on mnist5k whose critic is pre-trained on (2), in the same store: the
   number of real trainings it needs to reach R*, or "not reached" within the same budget;
4. optionally (``--scratch``) an ``fnas`` search on mnist5k without knowledge, the same way.
Budgets count real trainings; predicted rewards never count as reaching R*.

Command (from the repository root):

    python benchmarks/transfer_real.py                       # 3 seeds, budget 32, 3 epochs
    python benchmarks/transfer_real.py --quick               # 1 seed, budget 8, 1 epoch

Machine: whatever runs it (recorded in the JSON). Seeds: 0..seeds-1. Spread: every seed's
numbers are reported, with the median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from fnas.knowledge import Store
from fnas.search import SearchConfig, run_search
from fnas.tasks import TaskConfig


def _search(store: Store, name: str, strategy: str, dataset: str, budget: int, epochs: int,
            seed: int, knowledge: str) -> tuple[list[float], list[str], dict]:
    """Rewards and architecture keys of the search's real trainings, in order; its stats."""
    cfg = SearchConfig(strategy=strategy, budget=budget, batch=8, seed=seed,
                       task=TaskConfig(dataset=dataset, epochs=epochs), knowledge=knowledge,
                       budget_counts="trained", max_samples=10 * budget,
                       pool="off")  # the critic and its knowledge alone (issue 5), no pool
    out = run_search(store, cfg, name=name, progress=False)
    rows = [e for e in store.evaluations(out.experiment.id) if e.trained]
    return [e.reward for e in rows], [e.arch_key for e in rows], out.stats


def _to_reach(rewards: list[float], target: float) -> int | None:
    return next((i + 1 for i, r in enumerate(rewards) if r >= target), None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first .. first+seeds-1")
    ap.add_argument("--budget", type=int, default=32, help="mnist5k trainings per search")
    ap.add_argument("--source-budget", type=int, default=32, help="digits trainings")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--scratch", action="store_true", help="also fnas without knowledge")
    ap.add_argument("--quick", action="store_true", help="1 seed, budget 8, 1 epoch")
    ap.add_argument("--out", default=os.path.relpath(Path(__file__).parent / "results"))
    a = ap.parse_args()
    if a.quick:
        a.seeds, a.budget, a.source_budget, a.epochs = 1, 8, 8, 1
    runs = []
    for s in range(a.first_seed, a.first_seed + a.seeds):
        t0 = time.time()
        with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
            vanilla, v_keys, _ = _search(Store(d1), "ppo", "ppo", "mnist5k", a.budget,
                                         a.epochs, s, "none")
            target = max(vanilla)
            store = Store(d2)
            _search(store, "source", "fnas", "digits", a.source_budget, a.epochs, 1000 + s,
                    "none")
            fnas_k, k_keys, k_stats = _search(store, "fnas-k", "fnas", "mnist5k", a.budget,
                                              a.epochs, s, "all")
            # Same seed, same first batch (common random numbers); how long do they agree?
            common = next((i for i, (x, y) in enumerate(zip(v_keys, k_keys, strict=False))
                           if x != y),
                          min(len(v_keys), len(k_keys)))
            row = {"seed": s, "vanilla_best": target, "vanilla_to_reach": _to_reach(vanilla,
                                                                                  target),
                   "fnas_knowledge_best": max(fnas_k), "fnas_knowledge_to_reach":
                   _to_reach(fnas_k, target), "same_trainings_prefix": common,
                   "shared_architectures": len(set(v_keys) & set(k_keys)),
                   "vanilla_rewards": vanilla, "fnas_knowledge_rewards": fnas_k,
                   "fnas_knowledge_stats": {k: v for k, v in k_stats.items()
                                            if "critic" in k or "decide" in k}}
            if a.scratch:
                with tempfile.TemporaryDirectory() as d3:
                    fnas_s, _, _ = _search(Store(d3), "fnas-s", "fnas", "mnist5k", a.budget,
                                           a.epochs, s, "none")
                row.update(fnas_scratch_best=max(fnas_s),
                           fnas_scratch_to_reach=_to_reach(fnas_s, target))
        row["seconds"] = time.time() - t0
        runs.append(row)
        print(json.dumps(row))
    reached = [r["fnas_knowledge_to_reach"] for r in runs]
    result = {
        "benchmark": "transfer_real", "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "config": vars(a), "runs": runs,
        "fnas_knowledge_to_reach_median": statistics.median(
            [r if r is not None else float("inf") for r in reached]),
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("transfer_real_quick.json" if a.quick else "transfer_real.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"trainings for fnas+digits knowledge to reach vanilla PPO's best ({a.budget} "
          f"trainings): {reached} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
