"""Merge the committed NAS-Bench-Macro results into one comparison table and plot.

    python benchmarks/combine_macro.py     # reads benchmarks/results/bench-macro*.json

Inputs (each produced by the ``fnas bench`` command in benchmarks/README.md): random, REA and
vanilla PPO (``bench-macro.json``), fnas from scratch (``bench-macro-fnas.json``) and fnas with
knowledge from a FLOPs-constrained source search (``bench-macro-fnas-transfer.json``). All use
seeds 0-19, budget 1,000 queries, batch 8, noiseless. Writes ``macro-comparison.{json,png}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fnas.benchmark.harness import bench_config_from, summarize
from fnas.benchmark.plot import plot_bench

RES = Path(__file__).parent / "results"
PARTS = [("bench-macro.json", None), ("bench-macro-fnas.json", None),
         ("bench-macro-fnas-transfer.json", "fnas+knowledge")]


def main() -> int:
    runs, config = [], None
    for name, label in PARTS:
        path = RES / name
        if not path.exists():
            print(f"skipping {path}: not found")
            continue
        r = json.loads(path.read_text())
        config = config or r["config"]
        for run in r["runs"]:
            runs.append({**run, "strategy": label or run["strategy"]})
    names = list(dict.fromkeys(r["strategy"] for r in runs))
    config = {**config, "strategies": names, "source_flops": None}
    cfg = bench_config_from({**config, "strategies": ["random"]})  # validates the rest
    summary = summarize(cfg, runs, tuple(names))
    result = {"config": config, "runs": runs, "summary": summary}
    (RES / "macro-comparison.json").write_text(json.dumps({"config": config,
                                                           "summary": summary}, indent=1))
    plot_bench(result, str(RES / "macro-comparison.png"))
    for s, e in summary.items():
        q = e["queries_to_target"]
        print(f"{s:<16} queries to target {q['median']:>6} [{q['q25']}, {q['q75']}]  "
              f"success {q['success_rate']:.0%}  regret {e['final_regret']['median']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
