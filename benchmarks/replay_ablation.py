"""Experience-buffer ablation on NAS-Bench-Macro: does replay with the off-policy correction cut
the real queries PPO needs, and what happens without the correction?

Variants (each ``fnas bench`` run, the same harness and seeds as ``benchmarks/README.md``):

- ``ppo``                 vanilla MnasNet PPO (replay off);
- ``ppo+replay``          PPO + experience buffer with the correction c = min(1, pi_old/mu_b);
- ``ppo+replay-nocorr``   PPO + experience buffer, c = 1 (no correction);
- ``fnas-noreplay``       the critic on, replay off (``fnas --replay off``);
- ``fnas``                the critic on, replay with correction (the default ``fnas``);
- ``fnas+replay-nocorr``  the critic on, replay without correction.

Every variant: seeds 0 .. S-1 (``--seeds``, 20), noiseless table, batch 8 (with replay: 4 new
architectures and 4 replayed per update), share 0.5, uniform sampling, capacity 1024, budget
``--budget`` real queries (400), at most 5 x budget samples. Queries to target = the 1-based
real query at which a run first evaluates an architecture within 0.2 points of the table's best
(a run that never does counts as infinity). Spread: the interquartile range over seeds.

Trajectories do not depend on the budget (the loop is deterministic and the budget only stops
it), so queries-to-target below the budget equal those of a 1,000-query run; final regret is
taken at the budget. Target: ``ppo+replay`` reaches the target in at most 2/3 of ``ppo``'s
median queries (the paper says 1/2).

Command (from the repository root; ``--data`` defaults to ../shared/data):

    python benchmarks/replay_ablation.py                    # all six variants, 20 seeds
    python benchmarks/replay_ablation.py --variants ppo,ppo+replay --seeds 4 --budget 200
    python benchmarks/replay_ablation.py --variants fnas --merge RESULTS/replay_ablation.json

Writes ``benchmarks/results/replay_ablation.json`` (summary, per-seed results, curves on a
log grid of queries, per-update entropy and replay weights) and ``replay_ablation.png``
(best-so-far, policy entropy against real queries, and the replay weight c over updates).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from fnas.benchmark.harness import BenchConfig, queries_to_target, run_bench
from fnas.execution.evaluators import MacroTableEvaluator

HERE = Path(__file__).parent
DATA = HERE.parent.parent / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"
VARIANTS = {  # label: (strategy, replay, replay settings)
    "ppo": ("ppo", "off", {}),
    "ppo+replay": ("ppo", "on", {}),
    "ppo+replay-nocorr": ("ppo", "on", {"correction": False}),
    "fnas-noreplay": ("fnas", "off", {}),
    "fnas": ("fnas", "on", {}),
    "fnas+replay-nocorr": ("fnas", "on", {"correction": False}),
}


def _grid(budget: int) -> list[int]:
    """Log-spaced query counts 1 .. budget (the curves are stored there)."""
    return sorted({int(round(x)) for x in np.geomspace(1, budget, 60)})


def _compact(run: dict, budget: int, targets: set[str], table) -> dict:
    h = run["history"]
    best = h["best"] + [h["best"][-1]] * (budget - len(h["best"])) if h["best"] else []
    ok = [i for i, a in enumerate(h["accuracy"]) if a is not None]
    inc = max(ok, key=lambda i: h["reward"][i])
    u = run.get("updates", {})
    return {"variant": run["strategy"], "seed": run["seed"], "samples": run["samples"],
            "queries_made": len(h["query"]), "seconds": round(run["seconds"], 2),
            "queries_to_target": queries_to_target(h, targets),
            "final_regret": round(table.best_acc - table.entries[h["arch"][inc]].mean_acc, 4),
            "best_on_grid": [round(best[q - 1], 5) for q in _grid(budget)] if best else [],
            "updates": {k: [None if v is None else round(float(v), 4) for v in vals]
                        for k, vals in u.items()}}


def _summary(runs: list[dict]) -> dict:
    """Queries to target (median, IQR by nearest rank, a miss counting as infinity, success
    rate, per seed) and final regret (median, IQR) of one variant's runs."""
    q = np.array([np.inf if r["queries_to_target"] is None else r["queries_to_target"]
                  for r in runs], dtype=float)
    pct = {p: float(np.percentile(q, p, method="nearest")) for p in (25, 50, 75)}
    reg = np.array([r["final_regret"] for r in runs])
    return {"runs": len(runs),
            "queries_to_target": {"median": pct[50], "q25": pct[25], "q75": pct[75],
                                  "success_rate": float(np.isfinite(q).mean()),
                                  "per_seed": [r["queries_to_target"] for r in runs]},
            "final_regret": {"median": float(np.median(reg)),
                             "q25": float(np.percentile(reg, 25)),
                             "q75": float(np.percentile(reg, 75))},
            "seconds_per_run": float(np.median([r["seconds"] for r in runs]))}


def _plot(out: dict, path: Path, table) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = out["config"]["budget"]
    grid = _grid(budget)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), dpi=110)
    for name in out["summary"]:
        runs = [r for r in out["runs"] if r["variant"] == name]
        ls = "--" if "nocorr" in name else "-"
        m = 100.0 * np.array([r["best_on_grid"] for r in runs])  # table accuracies are in %
        med = np.median(m, 0)
        (line,) = axes[0].plot(grid, med, ls=ls, label=f"{name} (n={len(runs)})")
        axes[0].fill_between(grid, np.percentile(m, 25, 0), np.percentile(m, 75, 0),
                             color=line.get_color(), alpha=0.12, linewidth=0)
        # entropy against real queries: median over seeds on a common query grid
        xs = np.arange(8, budget + 1, 8)
        ent = []
        for r in runs:
            u = r["updates"]
            if not u.get("losses/entropy"):
                continue
            q = np.array(u["n_trained"], dtype=float)
            e = np.array(u["losses/entropy"], dtype=float)
            ent.append(np.interp(xs, q, e))  # a run that stopped keeps its last entropy
        if ent:
            axes[1].plot(xs, np.nanmedian(np.array(ent), 0), ls=ls, color=line.get_color(),
                         label=name)
        cs = [r["updates"].get("replay/c_mean") for r in runs if r["updates"].get("replay/c_mean")]
        if cs and "nocorr" not in name:
            n = min(len(c) for c in cs)
            c = np.array([[np.nan if v is None else v for v in c[:n]] for c in cs])
            axes[2].plot(np.arange(1, n + 1), np.nanmedian(c, 0), color=line.get_color(),
                         label=f"{name}: mean c per update")
            p10 = [r["updates"]["replay/c_p10"][:n] for r in runs]
            p10 = np.array([[np.nan if v is None else v for v in x] for x in p10])
            axes[2].plot(np.arange(1, n + 1), np.nanmedian(p10, 0), color=line.get_color(),
                         lw=0.8,
                         ls=":", label=f"{name}: 10th percentile of c")
    axes[0].axhline(table.best_acc, color="k", lw=0.8, ls="--")
    axes[0].axhline(table.best_acc - 0.2, color="gray", lw=0.8, ls=":",
                    label="target (within 0.2)")
    axes[0].set(xscale="log", xlabel="real queries", ylabel="best accuracy so far (%)",
                ylim=(table.best_acc - 3, table.best_acc + 0.3),
                title="NAS-Bench-Macro: median and IQR over seeds")
    axes[1].set(xscale="log", xlabel="real queries", ylabel="policy entropy (nats/decision)",
                title="policy entropy (median over seeds)")
    axes[2].set(xlabel="update (the first replays nothing)", ylabel="replay weight c",
                ylim=(0, 1.05), xscale="log",
                title="off-policy weight of replayed samples (median over seeds)")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA), help="nas-bench-macro_cifar10.json")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated labels")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=int, default=400)
    ap.add_argument("--jobs", type=int, default=0, help="parallel runs (0: one per core)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--merge", default=None, metavar="JSON",
                    help="keep the other variants' runs from an earlier replay_ablation.json")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.data):
        print(f"replay_ablation: no NAS-Bench-Macro table at {args.data} (see "
              "../shared/data/README.md; pass --data PATH)", file=sys.stderr)
        return 2
    labels = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in labels if v not in VARIANTS]
    if bad:
        print(f"replay_ablation: unknown variants {bad}: expected some of {list(VARIANTS)}",
              file=sys.stderr)
        return 2
    table = MacroTableEvaluator(args.data).table
    targets = table.within(0.2)
    runs, t0 = [], time.time()
    for label in labels:
        strategy, replay, rcfg = VARIANTS[label]
        cfg = BenchConfig(bench="macro", strategies=(strategy,), seeds=args.seeds,
                          budget=args.budget, batch=8, data=args.data, jobs=args.jobs,
                          replay=replay, replay_cfg=rcfg, label=label)
        t = time.time()
        res = run_bench(cfg, progress=True)
        s = res["summary"][label]["queries_to_target"]
        print(f"{label:<20} queries to target {s['median']} [{s['q25']}, {s['q75']}]  "
              f"success {s['success_rate']:.0%}  ({time.time() - t:.0f} s)", flush=True)
        runs += res["runs"]
    runs = [_compact(r, args.budget, targets, table) for r in runs]
    if args.merge:  # variants measured by an earlier invocation (same budget and seeds)
        prev = json.loads(Path(args.merge).read_text())
        if prev["config"]["budget"] != args.budget or prev["config"]["seeds"] != args.seeds:
            print(f"replay_ablation: {args.merge} used another budget or seed count",
                  file=sys.stderr)
            return 2
        runs = [r for r in prev["runs"] if r["variant"] not in labels] + runs
        labels = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
    summary = {v: _summary([r for r in runs if r["variant"] == v]) for v in labels}
    ratios = {}
    for a, b in (("ppo+replay", "ppo"), ("ppo+replay-nocorr", "ppo"),
                 ("fnas", "fnas-noreplay"), ("fnas+replay-nocorr", "fnas-noreplay")):
        if a in summary and b in summary:
            qa, qb = (summary[x]["queries_to_target"]["median"] for x in (a, b))
            ratios[f"{a} / {b}"] = qa / qb if math.isfinite(qa) and qb > 0 else None
    out = {
        "command": "python benchmarks/replay_ablation.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": round(time.time() - t0, 1),
        "config": {"budget": args.budget, "seeds": args.seeds, "batch": 8, "noisy": False,
                   "target_delta": 0.2, "max_samples": 5 * args.budget,
                   "variants": {k: VARIANTS[k] for k in labels}, "query_grid": _grid(args.budget)},
        "summary": summary, "median_ratios": ratios, "runs": runs,
    }
    os.makedirs(args.out, exist_ok=True)
    js = Path(args.out) / "replay_ablation.json"
    js.write_text(json.dumps(out, separators=(",", ":")))
    _plot(out, Path(args.out) / "replay_ablation.png", table)
    for name, e in summary.items():
        q, r = e["queries_to_target"], e["final_regret"]
        print(f"{name:<20} {q['median']:>6} [{q['q25']}, {q['q75']}]  success "
              f"{q['success_rate']:.0%}  regret {r['median']:.3f}")
    print("median ratios:", {k: (round(v, 3) if v else v) for k, v in ratios.items()})
    print(f"wrote {js} and replay_ablation.png ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
