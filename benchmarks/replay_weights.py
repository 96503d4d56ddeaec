"""The experience buffer's importance weights on the MnasNet space: whole-architecture,
per-decision, and per-decision from a window of recent updates (issue 34, part 4).

What it measures: the ``fnas`` strategy (its defaults: screening, replay on) searches the
MnasNet-28 space (42 decisions) for ``--budget`` samples at batch 8, on an instant synthetic
objective (the share of decisions equal to a seeded target architecture: no training, so the
figure is about the weights, not the task). Each seed runs three variants:

- ``whole``: ``replay_cfg.per_decision`` off, one weight per sample from the
  whole-architecture ratio (a product of 42 per-decision ratios), replaying every entry;
- ``per_decision``: one truncated weight per decision, replaying every entry
  (``max_age=None``: the default before the window);
- ``window``: per decision, replaying only entries of the newest ``--max-age`` updates
  (default: ``ReplayConfig``'s, the search's default).

At the last update: the per-sample weights' median and 10% quantile (``replay/c``; with
per-decision weights a sample's is the mean over its decisions), and for the per-decision
variants the 10% and 50% quantiles of every decision's weight (``replay/c_decision_p10``,
``_p50``).

Command (from the repository root; about 3 minutes on the project's 2-core VM)::

    OMP_NUM_THREADS=1 python benchmarks/replay_weights.py [--seeds 3] [--budget 200]

Writes ``results/replay_weights.json``. Seeds: run seeds 0..N-1 (the objective's target is
drawn with the same seed). Spread: every run's figures are kept, with the median over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def run(seed: int, budget: int, variant: str, max_age: int | None) -> dict:
    from fnas.execution.evaluators import Evaluator
    from fnas.knowledge import Store
    from fnas.search import SearchConfig, run_search
    from fnas.space.mnas import mnas_space
    from fnas.tasks.rollout import RolloutResult

    space = mnas_space(28)
    target = np.asarray(space.sample(np.random.default_rng(1000 + seed)))

    class Match(Evaluator):
        instant = True
        signature = f"match|{seed}"

        def evaluate(self, spec, s):
            acc = float((np.asarray(space.encode(spec)) == target).mean())
            return RolloutResult(spec.to_str(), spec.key, "ok", "", acc, acc, None, None,
                                 None, 0.0, 0, s)

    per_decision = variant != "whole"
    replay = {"per_decision": per_decision, "max_age": max_age if variant == "window" else None}
    cfg = SearchConfig(space="mnas", strategy="fnas", budget=budget, batch=8, seed=seed,
                       replay_cfg=replay)
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        out = run_search(store, cfg, name="r", evaluator=Match(), space=space, progress=False)
        last = [u for u in store.updates(out.experiment.id) if "replay/c" in u][-1]
        store.close()
    c = np.asarray(last["replay/c"], dtype=np.float64)
    row = {"seed": seed, "variant": variant, "max_age": replay["max_age"],
           "n_done": last["n_done"], "sample_weight_median": float(np.median(c)),
           "sample_weight_p10": float(np.quantile(c, 0.1)), "best": float(out.best[0].reward)}
    if per_decision:
        row.update({"decision_weight_p10": last["replay/c_decision_p10"],
                    "decision_weight_p50": last["replay/c_decision_p50"]})
    return row


VARIANTS = ("whole", "per_decision", "window")


def main(argv: list[str] | None = None) -> int:
    from fnas.agent.buffer import ReplayConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--max-age", type=int, default=ReplayConfig().max_age,
                    help="the window variant's max_age (default: the search's)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "replay_weights.json")
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = [run(s, a.budget, v, a.max_age) for s in range(a.seeds) for v in VARIANTS]
    summary = {}
    for v in VARIANTS:
        sub = [r for r in rows if r["variant"] == v]
        keys = [k for k in sub[0] if k not in ("seed", "variant", "max_age", "n_done")]
        summary[v] = {k: statistics.median(r[k] for r in sub) for k in keys}
    res = {"command": f"OMP_NUM_THREADS=1 python benchmarks/replay_weights.py --seeds "
                      f"{a.seeds} --budget {a.budget} --max-age {a.max_age}",
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "python": platform.python_version()},
           "runs": rows, "summary": summary}
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
