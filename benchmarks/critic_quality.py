"""Critic quality: ranking and calibration of the ensemble critic on NAS-Bench-Macro.

What it measures: for N in 50, 100, 200 real results, draw N architectures of NAS-Bench-Macro
uniformly at random, add them to a fresh :class:`fnas.agent.critic.EnsembleCritic` (default
``CriticConfig``) with targets = ``mean_acc`` normalised by those N points' mean and std, and
fit (``--fits`` calls of ``fit()``, 100 steps each). On 1000 other random architectures (none
in the training set) it reports Kendall's tau between the predicted mean and the true
``mean_acc``, the coverage (share of true normalised values within mean +/- 2 spreads), the
RMSE and the median spread (both in normalised units), and Spearman's rho between spread and
absolute error (does a larger spread flag a larger error?). A second table uses noisy targets: one
of the 3 seeds' ``test_acc`` per training point, as a real training would give (the truth
stays ``mean_acc``). Also timed: one ``fit()`` call with N points.

Command (from the repository root):

    python benchmarks/critic_quality.py            # writes benchmarks/results/critic_quality.json
    python benchmarks/critic_quality.py --seeds 0,1 --out /tmp/bench

Machine: whatever runs it (recorded in the JSON); the committed result is from the project's
2-core CPU machine. Seeds: 0-9; seed s draws the architectures (and noisy seeds) and seeds the
critic. Spread: every per-seed value is reported, with median, min and max per N.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from fnas.agent.critic import CriticConfig, EnsembleCritic
from fnas.errors import FnasError
from fnas.tasks.macro_table import load_macro_table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "../shared/data/nas-bench-macro/nas-bench-macro_cifar10.json"
METRICS = ("kendall_tau", "coverage_2sd", "rmse", "median_spread", "spread_error_spearman")


def run_one(table, keys: list[str], n: int, seed: int, noisy: bool, fits: int) -> dict:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(keys))
    train, test = [keys[i] for i in perm[:n]], [keys[i] for i in perm[n:n + 1000]]
    if noisy:
        acc = np.array([table.entries[k].test_acc[int(rng.integers(3))] for k in train])
    else:
        acc = np.array([table.entries[k].mean_acc for k in train])
    mu, sd = acc.mean(), acc.std()

    def dec(ks):
        return np.array([[int(c) for c in k] for k in ks])

    critic = EnsembleCritic([3] * 8, CriticConfig(), seed=seed)
    critic.add(dec(train), (acc - mu) / sd)
    fit_s = []
    for _ in range(fits):
        t0 = time.perf_counter()
        critic.fit()
        fit_s.append(time.perf_counter() - t0)
    mean, spread = critic.predict(dec(test))
    true = np.array([table.entries[k].mean_acc for k in test])
    true_n = (true - mu) / sd
    return {"seed": seed, "n": n,
            "kendall_tau": float(kendalltau(mean, true).statistic),
            "coverage_2sd": float(np.mean(np.abs(true_n - mean) <= 2 * spread)),
            "rmse": float(np.sqrt(np.mean((true_n - mean) ** 2))),
            "median_spread": float(np.median(spread)),
            "spread_error_spearman": float(spearmanr(spread, np.abs(true_n - mean)).statistic),
            "fit_s_median": float(np.median(fit_s))}


def summary(runs: list[dict]) -> dict:
    return {m: {"median": statistics.median(r[m] for r in runs), "min": min(r[m] for r in runs),
                "max": max(r[m] for r in runs)} for m in (*METRICS, "fit_s_median")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="nas-bench-macro_cifar10.json")
    ap.add_argument("--seeds", default=",".join(str(s) for s in range(10)))
    ap.add_argument("--ns", default="50,100,200")
    ap.add_argument("--fits", type=int, default=10, help="fit() calls (100 steps each)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    try:
        table = load_macro_table(Path(args.data).resolve())
    except FnasError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keys = sorted(table.entries)
    seeds = [int(s) for s in args.seeds.split(",")]
    ns = [int(s) for s in args.ns.split(",")]

    t_start = time.perf_counter()
    tables: dict[str, dict] = {}
    for mode in ("noiseless", "noisy"):
        rows = {}
        for n in ns:
            runs = [run_one(table, keys, n, s, mode == "noisy", args.fits) for s in seeds]
            rows[str(n)] = {"runs": runs, "summary": summary(runs)}
        tables[mode] = rows
    wall = time.perf_counter() - t_start

    result = {
        "benchmark": "critic_quality",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch": torch.__version__},
        "config": {"critic": CriticConfig().__dict__, "fits": args.fits, "seeds": seeds,
                   "ns": ns, "test_size": 1000, "data": os.path.basename(table.path)},
        "wall_s": wall,
        "results": tables,
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "critic_quality.json"
    path.write_text(json.dumps(result, indent=2) + "\n")

    def cell(s: dict, fmt: str) -> str:
        return f"{s['median']:{fmt}} [{s['min']:{fmt}}, {s['max']:{fmt}}]"

    for mode, rows in tables.items():
        print(f"\n{mode} targets ({len(seeds)} seeds, {args.fits} fits x "
              f"{CriticConfig().steps} steps; median [min, max])")
        print("| N | Kendall tau | coverage (2 spreads) | RMSE (norm.) | median spread "
              "| rho(spread, abs err) | fit() s |")
        print("|---:|---|---|---|---|---|---:|")
        for n, row in rows.items():
            s = row["summary"]
            print(f"| {n} | {cell(s['kendall_tau'], '.3f')} | {cell(s['coverage_2sd'], '.3f')} "
                  f"| {cell(s['rmse'], '.3f')} | {cell(s['median_spread'], '.3f')} "
                  f"| {cell(s['spread_error_spearman'], '.2f')} "
                  f"| {s['fit_s_median']['median']:.3f} |")
    print(f"\nwall {wall:.1f} s -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
