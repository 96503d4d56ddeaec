"""The experience buffer's importance weights on the MnasNet space, whole-architecture against
per-decision (issue 34, part 4).

What it measures: the ``fnas`` strategy (its defaults: screening, replay on) searches the
MnasNet-28 space (42 decisions) for ``--budget`` samples at batch 8, on an instant synthetic
objective (the share of decisions equal to a seeded target architecture: no training, so the
figure is about the weights, not the task). Each run is made twice, with
``replay_cfg.per_decision`` off (the whole-architecture ratio, a product of 42 per-decision
ratios) and on. At the last update: the whole-architecture weights' median and 10% quantile
(``replay/c``, per replayed sample), and with per-decision weights the 10% and 50% quantiles of
every decision's weight (``replay/c_decision_p10``, ``_p50``).

Command (from the repository root; about 2 minutes on the project's 2-core VM)::

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


def run(seed: int, budget: int, per_decision: bool, capacity: int | None = None) -> dict:
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

    cfg = SearchConfig(space="mnas", strategy="fnas", budget=budget, batch=8, seed=seed,
                       replay_cfg={"per_decision": per_decision,
                                   **({} if capacity is None else {"capacity": capacity})})
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        out = run_search(store, cfg, name="r", evaluator=Match(), space=space, progress=False)
        last = [u for u in store.updates(out.experiment.id) if "replay/c" in u][-1]
        store.close()
    c = np.asarray(last["replay/c"], dtype=np.float64)
    row = {"seed": seed, "per_decision": per_decision, "n_done": last["n_done"],
           "sample_weight_median": float(np.median(c)),
           "sample_weight_p10": float(np.quantile(c, 0.1)), "best": float(out.best[0].reward)}
    if per_decision:
        row.update({"decision_weight_p10": last["replay/c_decision_p10"],
                    "decision_weight_p50": last["replay/c_decision_p50"]})
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--capacity", type=int, default=None,
                    help="the buffer's capacity (default: ReplayConfig's)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "replay_weights.json")
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = [run(s, a.budget, per, a.capacity) for s in range(a.seeds) for per in (False, True)]
    summary = {}
    for per in (False, True):
        sub = [r for r in rows if r["per_decision"] == per]
        keys = [k for k in sub[0] if k not in ("seed", "per_decision", "n_done")]
        summary["per_decision" if per else "whole"] = {
            k: statistics.median(r[k] for r in sub) for k in keys}
    res = {"command": f"OMP_NUM_THREADS=1 python benchmarks/replay_weights.py --seeds "
                      f"{a.seeds} --budget {a.budget}",
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "python": platform.python_version()},
           "runs": rows, "summary": summary}
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
