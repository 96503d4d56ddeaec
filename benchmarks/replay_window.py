"""The replay window (``ReplayConfig.max_age``) on NAS-Bench-Macro: queries to the target set
with every entry replayable (``max_age=None``, the default before the window) and with the
newest 4 or 8 updates' entries only (issue 34, part 4).

What it measures: ``fnas bench`` runs (the harness of ``benchmarks/README.md``) of each
strategy with replay on, 20 seeds, batch 8, budget ``--budget`` real queries (300),
noiseless table; queries to target = the first real query within 0.2 points of the table's
best (a miss counts as infinity). ``--strategies`` picks ``fnas`` (screening, its defaults)
and/or ``ppo`` (vanilla PPO with the buffer, the replay ablation's ``ppo+replay``).
``--ages 0,4,8``: 0 stands for None.

Command (from the repository root; about 8 minutes a setting for ``fnas`` and 4 for ``ppo``
on the project's 2-core VM, 2 runs at a time)::

    OMP_NUM_THREADS=1 python benchmarks/replay_window.py --strategies fnas,ppo --ages 0,4,8

Writes ``results/replay_window.json`` (each setting's summary: median, IQR, success, per
seed). Spread: the interquartile range over the 20 seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"


def main(argv: list[str] | None = None) -> int:
    from fnas.benchmark.config import BenchConfig
    from fnas.benchmark.harness import run_bench

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategies", default="fnas,ppo")
    ap.add_argument("--ages", default="0,4,8")
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "replay_window.json")
    a = ap.parse_args(argv)
    if not a.data.is_file():
        print(f"replay_window: no NAS-Bench-Macro table at {a.data} (see --data)",
              file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = {}
    for strat in a.strategies.split(","):
        for age in (int(x) for x in a.ages.split(",")):
            t = time.time()
            label = f"{strat}-age{age}"
            cfg = BenchConfig(bench="macro", strategies=(strat,), seeds=a.seeds,
                              budget=a.budget, batch=8, data=str(a.data), jobs=2, replay="on",
                              replay_cfg={"max_age": age or None}, label=label)
            s = run_bench(cfg, progress=False)["summary"][label]
            q = s["queries_to_target"]
            print(strat, age, q["median"], q["q25"], q["q75"], q["success_rate"],
                  round(time.time() - t), flush=True)
            out[label] = s
    res = {"command": "OMP_NUM_THREADS=1 python benchmarks/replay_window.py " +
                      " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "python": platform.python_version()},
           "date": time.strftime("%Y-%m-%d %H:%M"), "budget": a.budget, "seeds": a.seeds,
           "summary": out}
    a.out.write_text(json.dumps(res, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
