"""fnas's screening on NAS-Bench-Macro against its baselines, with the ablations of issue 17.

    python benchmarks/screening_macro.py                  # all variants (resumable), then the table
    python benchmarks/screening_macro.py --only fnas,rea  # some variants
    python benchmarks/screening_macro.py --summarise      # the table and plot from what exists

Every variant is one ``fnas bench`` configuration (``fnas.benchmark.harness.run_bench``: the same
loop, store and cache as ``fnas search``), seeds 0-19, target: any architecture within 0.2
points of the table's best mean accuracy. A run stops at its budget of real queries or at
5 x budget samples. Each variant's full result (every query of every run) is written to
``results/screening_work/VARIANT.json`` (git-ignored; a variant whose file exists is not run
again); the committed ``results/screening_macro.{json,md,png}`` hold per seed what the
figures are computed from: queries to target, final regret, queries made, stop reason, and
per-update curves of the policy's entropy and the screened counts.

Deterministic: the same command gives the same queries (timings aside).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from fnas.benchmark.harness import BenchConfig, queries_to_target, run_bench, save_bench
from fnas.execution.evaluators import MacroTableEvaluator

HERE = Path(__file__).parent
RES = HERE / "results"
WORK = RES / "screening_work"
DATA = HERE.parent.parent / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"

ABL = 300  # budget of every row but the baselines' and fnas's own: queries to target is what
# they compare (fnas reaches regret 0 well before 300), and 20 seeds x 1,000 queries of every
# variant does not fit the 2-core machine beside other work
FULL = 1000
# name: (strategy, BenchConfig overrides, what it is)
VARIANTS: dict[str, tuple[str, dict, str]] = {
    "random": ("random", {}, "random search"),
    "rea": ("rea", {}, "regularized evolution (population 20, tournament 10)"),
    "ppo": ("ppo", {}, "vanilla MnasNet PPO, 10 update epochs"),
    "tpe": ("tpe", {"budget": ABL}, "Optuna's TPE (its defaults but the constant liar)"),
    "tpe-noisy": ("tpe", {"noisy": True, "budget": ABL}, "Optuna's TPE, one training seed per "
                  "query"),
    "fnas": ("fnas", {}, "fnas: screening, UCB, mutants, learning policy (the default)"),
    "fnas+knowledge": ("fnas", {"source_flops": 40e6, "budget": ABL},
                       "fnas, critic pre-trained on a FLOPs-40 source search"),
    "fnas+misleading": ("fnas", {"source_flops": 40e6, "source_invert": True, "budget": ABL},
                        "fnas, critic pre-trained on a source measuring 1 - accuracy"),
    "rea-noisy": ("rea", {"noisy": True, "budget": ABL}, "REA, one training seed per query"),
    "ppo-noisy": ("ppo", {"noisy": True, "budget": ABL},
                  "vanilla PPO, one training seed per query"),
    "fnas-noisy": ("fnas", {"noisy": True, "budget": ABL}, "fnas, one training seed per query"),
    "rea-b4": ("rea", {"batch": 4, "budget": ABL}, "REA at batch 4"),
    "ppo-b4": ("ppo", {"batch": 4, "budget": ABL}, "vanilla PPO at batch 4"),
    "fnas-b4": ("fnas", {"batch": 4, "budget": ABL}, "fnas at batch 4"),
    "abl-frozen": ("fnas", {"budget": ABL, "fnas": {"screen": {"policy": "frozen",
                                                                "mutants": 0}}},
                   "screening uniform samples: frozen uniform policy, no mutants"),
    "abl-frozen+mutants": ("fnas", {"budget": ABL, "fnas": {"screen": {"policy": "frozen"}}},
                           "frozen uniform policy with mutants (mutants alone)"),
    "abl-no-mutants": ("fnas", {"budget": ABL, "fnas": {"screen": {"mutants": 0}}},
                       "learning policy, no mutants"),
    "abl-ucb-kappa1": ("fnas", {"budget": ABL, "fnas": {"screen": {"kappa": 1.0}}},
                       "UCB with kappa 1 (the default is 0.5)"),
    "fnas-features": ("fnas", {"budget": 100, "fnas": {"screen": {"features": "on"}}},
                      "fnas with the free features (log FLOPs, log params) as critic inputs"),
    "fnas-features-noisy": ("fnas", {"budget": 100, "noisy": True,
                                     "fnas": {"screen": {"features": "on"}}},
                            "fnas with the free features, one training seed per query"),
    "abl-ts": ("fnas", {"budget": ABL, "fnas": {"acquisition": "ts"}}, "Thompson sampling"),
    "abl-ei": ("fnas", {"budget": ABL, "fnas": {"acquisition": "ei"}}, "expected improvement"),
    "abl-off": ("fnas", {"budget": ABL, "fnas": {"acquisition": "off"}},
                "the first design: the critic only vetoes the policy's samples"),
    "ppo+replay": ("ppo", {"budget": ABL, "replay": "on"},
                   "vanilla PPO with the experience buffer (corrected), the replay_ablation row"),
    "ppo+replay-nocorr": ("ppo", {"budget": ABL, "replay": "on",
                                  "replay_cfg": {"correction": False}},
                          "vanilla PPO with the buffer, c = 1"),
    "abl-c64": ("fnas", {"budget": ABL, "fnas": {"screen": {"candidates": 64, "mutants": 0}}},
                "learning policy, 64 candidates a round, no mutants (a space 100x larger)"),
    "abl-c64-frozen": ("fnas", {"budget": ABL, "fnas": {"screen": {
        "candidates": 64, "mutants": 0, "policy": "frozen"}}},
                       "frozen uniform policy, 64 candidates a round, no mutants"),
    "abl-c64-first": ("fnas", {"budget": ABL, "fnas": {"screen": {
        "candidates": 64, "mutants": 0, "novelty": False}}},
                      "learning policy, first objective, 64 candidates, no mutants"),
    "abl-no-mutants-first": ("fnas", {"budget": ABL, "fnas": {"screen": {
        "mutants": 0, "novelty": False}}},
                             "learning policy, first objective (unseen candidates' critic "
                             "mean), no mutants"),
    "fnas-first": ("fnas", {"fnas": {"screen": {"novelty": False}}},
                   "fnas with the controller's first objective (the default until "
                   "2026-11-30)"),
    "abl-ts-noisy": ("fnas", {"budget": ABL, "noisy": True, "fnas": {"acquisition": "ts"}},
                     "Thompson sampling, one training seed per query"),
}


def config(name: str, data: str, seeds: int) -> BenchConfig:
    strategy, over, _ = VARIANTS[name]
    base = BenchConfig(strategies=(strategy,), seeds=seeds, budget=FULL, batch=8, data=data,
                       label=name)
    return replace(base, **over)


def compact(name: str, result: dict, table) -> dict:
    """Per seed what the figures come from (the work file keeps every query)."""
    cfg = config(name, result["config"]["data"], result["config"]["seeds"])
    targets = table.within(cfg.target_delta)
    per = []
    for r in result["runs"]:
        h = r["history"]
        ok = [i for i, a in enumerate(h["accuracy"]) if a is not None]
        inc = max(ok, key=lambda i: h["reward"][i])
        u = r.get("updates", {})
        every = max(1, len(u.get("n_trained", [])) // 50)
        per.append({
            "seed": r["seed"], "queries_to_target": queries_to_target(h, targets),
            "final_regret": round(table.best_acc - table.entries[h["arch"][inc]].mean_acc, 4),
            "queries_made": len(h["query"]), "samples": r["samples"],
            "stop_reason": r.get("stop_reason"), "seconds": round(r["seconds"], 1),
            "totals": {k[len("screen/total_"):]: v for k, v in r.get("final_stats", {}).items()
                       if k.startswith("screen/total_")},
            "curves": {k: v[::every] for k, v in u.items()
                       if k in ("n_trained", "controller/entropy", "losses/entropy",
                                "screen/screened", "critic/pick_tau")},
        })
    return {"what": VARIANTS[name][2], "config": result["config"], "seconds": result["seconds"],
            "summary": result["summary"][name], "runs": per}


def summarise(data: str) -> dict:
    table = MacroTableEvaluator(data).table
    out = {}
    for name in VARIANTS:
        path = WORK / f"{name}.json"
        if path.exists():
            out[name] = compact(name, json.loads(path.read_text()), table)
    (RES / "screening_macro.json").write_text(json.dumps(out, separators=(",", ":")))
    lines = ["| variant | budget | batch | queries to target, median [IQR] | success | "
             "final regret, median [IQR] | regret 0 | queries made (median) | what |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, v in out.items():
        s, c = v["summary"], v["config"]
        q = s["queries_to_target"]
        r = [x["final_regret"] for x in v["runs"]]
        lines.append(
            f"| {name} | {c['budget']} | {c['batch']} | {_f(q['median'])} [{_f(q['q25'])}, "
            f"{_f(q['q75'])}] | {round(q['success_rate'] * len(v['runs']))}/{len(v['runs'])} | "
            f"{np.median(r):.3f} [{np.percentile(r, 25):.3f}, {np.percentile(r, 75):.3f}] | "
            f"{sum(x == 0 for x in r)}/{len(r)} | {s['queries_made']['median']:.0f} | "
            f"{v['what']} |")
    (RES / "screening_macro.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(out)
    return out


def _f(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.0f}"


def _plot(out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(16, 4.8))
    names = [n for n in out if not n.endswith("-noisy") and "-b4" not in n]
    qs = [[x["queries_to_target"] or 1e4 for x in out[n]["runs"]] for n in names]
    ax[0].boxplot(qs, orientation="horizontal", tick_labels=names)
    ax[0].set_xscale("log")
    ax[0].set_xlabel("queries to the target set (log; a miss plotted at 10,000)")
    ax[0].set_title("NAS-Bench-Macro, 20 seeds, batch 8")
    for n in [n for n in ("fnas", "fnas-first", "fnas+knowledge", "abl-no-mutants", "abl-off")
              if n in out]:
        xs, ys = [], []
        for run in out[n]["runs"]:
            c = run["curves"]
            ent = c.get("controller/entropy") or c.get("losses/entropy")
            if ent:
                xs.append(c["n_trained"][: len(ent)])
                ys.append(ent)
        if ys:
            m = min(len(y) for y in ys)
            ax[1].plot(np.median([x[:m] for x in xs], 0), np.median([y[:m] for y in ys], 0),
                       label=n)
    ax[1].axhline(np.log(3), ls=":", c="k", lw=0.8)
    ax[1].set_xlabel("real queries")
    ax[1].set_ylabel("policy entropy per decision (median over seeds)")
    ax[1].set_xscale("symlog", linthresh=50)
    ax[1].legend()
    ax[1].set_title("does the policy keep exploring? (uniform: ln 3)")
    for n in [n for n in ("fnas", "fnas-first", "abl-no-mutants", "abl-no-mutants-first",
                          "abl-frozen") if n in out]:
        runs = out[n]["runs"]
        c0 = [r["curves"] for r in runs if r["curves"].get("screen/screened")]
        if c0:
            m = min(len(c["screen/screened"]) for c in c0)
            ax[2].plot(np.median([c["n_trained"][:m] for c in c0], 0),
                       np.median([c["screen/screened"][:m] for c in c0], 0), label=n)
    ax[2].set_xlabel("real queries")
    ax[2].set_ylabel("candidates screened out per round (median)")
    ax[2].legend()
    ax[2].set_title("unseen candidates left to screen")
    fig.tight_layout()
    fig.savefig(RES / "screening_macro.png", dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.relpath(DATA), help="nas-bench-macro_cifar10.json")
    p.add_argument("--only", default=None, help="comma-separated variants (default: all)")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--jobs", type=int, default=0, help="parallel runs (0: one per core)")
    p.add_argument("--summarise", action="store_true", help="only the table and plot")
    p.add_argument("--work", default=None, help="folder of the full results (smoke tests)")
    p.add_argument("--out", default=None, help="folder of the committed results")
    a = p.parse_args()
    global WORK, RES
    if a.work:
        WORK = Path(a.work)
    if a.out:
        RES = Path(a.out)
    if not Path(a.data).exists():
        print(f"NAS-Bench-Macro table not found at {a.data} (see shared/data/README.md)",
              file=sys.stderr)
        return 2
    names = [n.strip() for n in a.only.split(",")] if a.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(f"unknown variant(s) {unknown}: expected some of {list(VARIANTS)}",
              file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    RES.mkdir(parents=True, exist_ok=True)
    if not a.summarise:
        for name in names:
            if (WORK / f"{name}.json").exists():
                continue
            cfg = replace(config(name, a.data, a.seeds), jobs=a.jobs)
            print(f"== {name}: {VARIANTS[name][2]}", flush=True)
            result = run_bench(cfg, progress=False)
            save_bench(result, str(WORK), name)
            s = result["summary"][name]["queries_to_target"]
            print(f"   queries to target {s['median']} [{s['q25']}, {s['q75']}], "
                  f"{result['seconds']:.0f} s", flush=True)
    summarise(a.data)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
