"""The FNAS ablation on real training: how much search compute each part saves against vanilla
MnasNet PPO, next to regularized evolution and random search (issue 10).

What it runs (every search is the real ``fnas`` loop with real training, MnasNet space):

1. **Source experiment** (the lifelong knowledge): one ``fnas`` search on digits (8x8,
   ``--source-budget`` real trainings of ``--source-epochs``), which leaves real results for
   the critic to learn from and trained block weights in the pool. Its store is kept in
   ``--work`` and copied (SQLite backup API + the pool's files) for every variant that uses
   knowledge, so that no variant sees another's results.
2. **Variants** on mnist5k at 28x28, ``--seeds`` seeds each (seeds 0..S-1; each variant's
   search with seed s, so variants of one seed start from the same first batch where their
   samplers agree):

   ============== ========= ====== ====== =================================================
   variant        strategy  critic pool   buffer
   ============== ========= ====== ====== =================================================
   ppo            ppo       -      -      -       vanilla MnasNet PPO (EMA baseline)
   ppo+critic     fnas      yes    -      -       critic pre-trained on the source
   ppo+pool       ppo       -      source -       pool filled by the source
   ppo+buffer     ppo       -      -      yes
   fnas           fnas      yes    source yes     the full method, with the source
   fnas-fresh     fnas      yes    empty  yes     full, without the source knowledge
   rea            rea                             regularized evolution
   random         random                          random search
   ============== ========= ====== ====== =================================================

   Each run trains ``--trainings`` (48) architectures (twice as many where the pool halves the
   epochs, meant to give every run about the vanilla compute; full fnas, whose critic also
   skips trainings, can end before C, which shortens its "best reward within C" but not its
   compute to T): 48 leaves room for the critic, which trusts itself after 24 real results
   (8 with kept knowledge); batch
   ``--batch`` (8), ``--epochs`` E = 2 (a pool-initialised training: 1); reward the
   MnasNet soft reward on multiply-adds with target ``--target-macs`` (analytic, so the compute
   of a run does not depend on latency measurements on a shared machine).
3. **Compute** of a run after each evaluation: its rollouts' training seconds so far (torch at
   one thread per run, two runs at a time on the two cores: ``--jobs``), plus the search's own
   overhead (sampling, critic fits, updates, pool, store), spread evenly over the run's
   evaluations. NOTE: wall seconds of a one-thread process on an otherwise idle machine, not
   ``process_time``: close to CPU-seconds, but not the same.
4. **Metric.** C = the median over seeds of vanilla PPO's total compute, T = the median over
   seeds of vanilla PPO's final best reward. For every run: the compute at which its best real
   reward first reaches T (censored if not within C); per variant the median over seeds and its
   range, and the ratio to vanilla's median. Also each run's best real reward within C, and the
   held-out accuracy of that best architecture retrained for ``--retrain-epochs`` (the same
   training as ``fnas train RUN:1 --epochs N``, seed 0).

Results, written as they come (a killed benchmark resumes where it stopped: finished runs are
kept in ``--out/ablation_real_runs/``, the source store in ``--work``):

    results/ablation_real.json   config, machine, every run's curve, the summary table
    results/ablation_real.png    best-so-far reward against compute, median and IQR per variant
    results/ablation_real.md     the table, for docs/BENCHMARKS.md

Commands (from the repository root):

    python benchmarks/ablation_real.py                 # 8 variants x 3 seeds, about 3.2 h here
    python benchmarks/ablation_real.py --quick         # a 2-minute smoke test of every step
    python benchmarks/ablation_real.py --summarise     # recompute summary/plot from the runs

Machine: whatever runs it (recorded in the JSON); the committed results say which. Seeds: as
above; the rollouts are deterministic on CPU for a given seed. Spread: the range over seeds
(min, median, max), and the IQR band in the plot.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sqlite3
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent

VARIANTS: dict[str, dict[str, Any]] = {
    "ppo": {"strategy": "ppo", "pool": "off", "replay": "off", "knowledge": "none",
            "source": False},
    "ppo+critic": {"strategy": "fnas", "pool": "off", "replay": "off", "knowledge": "all",
                   "source": True},
    "ppo+pool": {"strategy": "ppo", "pool": "on", "replay": "off", "knowledge": "none",
                 "source": True},
    "ppo+buffer": {"strategy": "ppo", "pool": "off", "replay": "on", "knowledge": "none",
                   "source": False},
    "fnas": {"strategy": "fnas", "pool": "on", "replay": "on", "knowledge": "all",
             "source": True},
    "fnas-fresh": {"strategy": "fnas", "pool": "on", "replay": "on", "knowledge": "none",
                   "source": False},
    "rea": {"strategy": "rea", "pool": "off", "replay": "off", "knowledge": "none",
            "source": False},
    "random": {"strategy": "random", "pool": "off", "replay": "off", "knowledge": "none",
               "source": False},
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated subset of: " + ", ".join(VARIANTS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trainings", type=int, default=48,
                    help="real trainings per run (x2 where the pool halves the epochs)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--epochs", type=int, default=2, help="E; pool-initialised: E/2")
    ap.add_argument("--target-macs", type=float, default=8e6)
    ap.add_argument("--source-budget", type=int, default=48)
    ap.add_argument("--source-epochs", type=int, default=5)
    ap.add_argument("--retrain-epochs", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (1 torch thread each)")
    ap.add_argument("--work", default=str(HERE / "results" / "ablation_real_work"),
                    help="stores (not committed: see .gitignore)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 seed, 4 trainings, batch 2, 1 epoch, tiny source")
    ap.add_argument("--summarise", action="store_true",
                    help="only recompute the summary, table and plot from finished runs")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.trainings, a.batch, a.epochs = 1, 4, 2, 1
        a.source_budget, a.source_epochs, a.retrain_epochs = 4, 1, 1
        a.work = str(Path(a.work).with_name("ablation_real_quick_work"))
        a.out = str(Path(a.out) / "quick")
    unknown = [v for v in a.variants.split(",") if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant {unknown[0]!r}: expected some of {', '.join(VARIANTS)}")
    return a


def _task(a: argparse.Namespace, dataset: str, epochs: int):
    from fnas.tasks import TaskConfig

    return TaskConfig(dataset=dataset, epochs=epochs, latency_repeats=0)


def _reward(a: argparse.Namespace):
    from fnas.tasks import RewardConfig

    return RewardConfig(metric="macs", target=a.target_macs)


def source_store(a: argparse.Namespace) -> Path:
    """The source experiment's store (run once, then reused)."""
    import torch

    from fnas.knowledge import Store
    from fnas.search import SearchConfig, run_search

    path = Path(a.work) / "source"
    if (path / "DONE").is_file():
        return path
    # the source is deterministic (fixed seeds, CPU, 2 threads): a rebuilt one must match the
    # fingerprint a resumed benchmark's earlier runs used, else their runs are not comparable
    shutil.rmtree(path, ignore_errors=True)
    torch.set_num_threads(2)
    cfg = SearchConfig(strategy="fnas", budget=a.source_budget, batch=a.batch, seed=1000,
                       task=_task(a, "digits", a.source_epochs), reward=_reward(a),
                       budget_counts="trained", checkpoint=False, knowledge="none")
    with Store(path) as store:
        out = run_search(store, cfg, name="source-digits", progress=True)
        print(f"source: {out.stats['n_trained']} trainings on digits, best "
              f"{out.stats['best_reward']:.4f}, pool of {out.stats.get('pool/rollouts')} "
              "rollouts", flush=True)
    (path / "DONE").write_text(time.strftime("%Y-%m-%d %H:%M"))
    fp = source_fingerprint(path)
    fp_file = Path(a.out) / "ablation_real_source.json"
    if fp_file.is_file():
        old = json.loads(fp_file.read_text())
        if old["sha256"] != fp["sha256"]:
            sys.exit(f"ablation_real: the rebuilt source differs from {fp_file} (best "
                     f"{fp['best']} vs {old['best']}): finished runs used the old one; "
                     "move ablation_real_runs/ away to start over")
    else:
        fp_file.write_text(json.dumps(fp, indent=1))
    return path


def source_fingerprint(path: Path) -> dict[str, Any]:
    """What identifies the source experiment: its evaluations' architectures and rewards."""
    import hashlib

    con = sqlite3.connect(path / "fnas.db")
    rows = con.execute("SELECT iteration, slot, arch_key, round(reward, 6) FROM evaluations "
                       "ORDER BY iteration, slot").fetchall()
    con.close()
    return {"evaluations": len(rows), "best": max(r[3] for r in rows),
            "sha256": hashlib.sha256(json.dumps(rows).encode()).hexdigest()}


def _copy_store(src: Path, dst: Path) -> None:
    """A consistent copy: SQLite's backup API (WAL included), then the pool's files."""
    dst.mkdir(parents=True)
    s, d = sqlite3.connect(src / "fnas.db"), sqlite3.connect(dst / "fnas.db")
    s.backup(d)
    s.close()
    d.close()
    if (src / "pool").is_dir():
        shutil.copytree(src / "pool", dst / "pool")


def run_one(a: argparse.Namespace, variant: str, seed: int, source: Path | None
            ) -> dict[str, Any]:
    """One variant x seed: a real search in its own store; returns its curve."""
    import torch

    from fnas.knowledge import Store
    from fnas.search import SearchConfig, run_search

    torch.set_num_threads(1)
    v = VARIANTS[variant]
    store_dir = Path(a.work) / "runs" / f"{variant}-s{seed}"
    shutil.rmtree(store_dir, ignore_errors=True)
    if v["source"]:
        _copy_store(source, store_dir)
    n = a.trainings * (2 if v["pool"] == "on" and a.epochs >= 2 else 1)
    cfg = SearchConfig(strategy=v["strategy"], budget=n, batch=a.batch, seed=seed,
                       task=_task(a, a.dataset, a.epochs), reward=_reward(a),
                       budget_counts="trained", max_samples=20 * n, checkpoint=False,
                       pool=v["pool"], replay=v["replay"], knowledge=v["knowledge"])
    t0 = time.perf_counter()
    with Store(store_dir) as store:
        out = run_search(store, cfg, name=f"{variant}-s{seed}", progress=False)
        rows = store.evaluations(out.experiment.id)
    stats = out.stats
    train = sum(e.train_seconds for e in rows if e.trained)
    overhead = max(0.0, float(stats["wall"]) - train)
    curve: dict[str, list] = {k: [] for k in ("compute", "best", "trained", "reward", "arch",
                                              "accuracy", "flags")}
    best, secs, n_trained = -math.inf, 0.0, 0
    for i, e in enumerate(rows, 1):
        if e.trained:
            secs += e.train_seconds
            n_trained += 1
        if e.status == "ok" and not e.predicted:
            best = max(best, e.reward)
        flags = "".join(f[0] for f in ("trained", "cached", "predicted", "audited")
                        if getattr(e, f))
        for k, x in (("compute", round(secs + overhead * i / len(rows), 3)),
                     ("best", round(best, 6) if best > -math.inf else None),
                     ("trained", n_trained), ("reward", round(e.reward, 6)), ("arch", e.arch),
                     ("accuracy", e.accuracy), ("flags", flags)):
            curve[k].append(x)
    return {"variant": variant, "seed": seed, "seconds": time.perf_counter() - t0,
            "train_seconds": train, "overhead_seconds": overhead, "evaluations": len(rows),
            "trainings": n_trained, "stats": {k: x for k, x in stats.items()
                                              if not isinstance(x, list)}, "curve": curve}


def retrain(a: argparse.Namespace, arch: str, key: str) -> dict[str, Any]:
    """The held-out accuracy of ``arch`` trained for ``--retrain-epochs`` (as ``fnas train``)."""
    import torch

    from fnas.tasks import run_rollout

    torch.set_num_threads(1)
    r = run_rollout(arch, _task(a, a.dataset, a.retrain_epochs), _reward(a), 0,
                    return_weights=False).result
    return {"key": key, "arch": arch, "status": r.status, "accuracy": r.accuracy,
            "epochs": a.retrain_epochs, "seconds": r.train_seconds}


def best_within(run: dict[str, Any], budget: float) -> tuple[float | None, str | None]:
    """The best real reward of ``run`` within ``budget`` compute seconds, and its arch."""
    c = run["curve"]
    best, arch = None, None
    for comp, r, ar, fl in zip(c["compute"], c["reward"], c["arch"], c["flags"], strict=True):
        if comp > budget:
            break
        if "p" not in fl and (best is None or r > best):
            best, arch = r, ar
    return best, arch


def cost_factor(run: dict[str, Any], arch: str) -> float:
    """reward / accuracy of ``arch`` in ``run``: MnasNet's (MACs / target)^w, which does not
    depend on the training."""
    c = run["curve"]
    for r, acc, ar in zip(c["reward"], c["accuracy"], c["arch"], strict=True):
        if ar == arch and acc:
            return r / acc
    raise ValueError(f"{arch!r} has no accuracy in run {run['variant']}-s{run['seed']}")


def compute_to_reach(run: dict[str, Any], target: float, budget: float) -> float | None:
    """Compute seconds ``run`` took to reach ``target`` (None: not within ``budget``)."""
    c = run["curve"]
    for comp, b in zip(c["compute"], c["best"], strict=True):
        if comp > budget:
            return None
        if b is not None and b >= target - 1e-12:
            return comp
    return None


def _spread(v: list[float]) -> dict[str, float] | None:
    if not v:
        return None
    return {"min": float(np.min(v)), "median": float(np.median(v)), "max": float(np.max(v)),
            "n": len(v)}


def summarise(a: argparse.Namespace, runs: list[dict[str, Any]],
              retrained: dict[str, dict]) -> dict[str, Any]:
    base = [r for r in runs if r["variant"] == "ppo"]
    if not base:
        return {"note": "no vanilla PPO run yet: nothing to compare against"}
    budget = float(np.median([r["curve"]["compute"][-1] for r in base]))
    target = float(np.median([max(b for b in r["curve"]["best"] if b is not None)
                              for r in base]))
    table = {}
    for v in VARIANTS:
        rs = [r for r in runs if r["variant"] == v]
        if not rs:
            continue
        reach = [compute_to_reach(r, target, budget) for r in rs]
        reached = [x for x in reach if x is not None]
        med = float(np.median([x if x is not None else math.inf for x in reach]))
        bests = [best_within(r, budget) for r in rs]
        kept = [(r, arch) for r, (_, arch) in zip(rs, bests, strict=True)
                if arch in retrained and retrained[arch]["accuracy"] is not None]
        acc = [retrained[arch]["accuracy"] for _, arch in kept]
        # the same objective the search optimised, on the longer training: the accuracy times
        # the architecture's cost factor (its reward / accuracy in the run: MACs are analytic)
        rew = [retrained[arch]["accuracy"] * cost_factor(r, arch) for r, arch in kept]
        table[v] = {"runs": len(rs), "reached": len(reached),
                    "compute_to_target": _spread(reached),
                    "compute_to_target_median": med if math.isfinite(med) else None,
                    "best_reward_within_budget": _spread([b for b, _ in bests if b is not None]),
                    "retrained_accuracy": _spread(acc),
                    "retrained_reward": _spread(rew),
                    "trainings_within_budget": _spread([
                        sum(1 for comp, fl in zip(r["curve"]["compute"], r["curve"]["flags"],
                                                  strict=True) if comp <= budget and "t" in fl)
                        for r in rs])}
    ref = table["ppo"]["compute_to_target_median"]
    for row in table.values():
        m = row["compute_to_target_median"]
        row["ratio_to_ppo"] = (ref / m) if (ref and m) else None
    return {"budget_compute": budget, "target_reward": target, "table": table,
            "mechanics": _mechanics(runs, budget), "difficulty": _difficulty(runs, target),
            "per_run": _per_run(runs, budget)}


def _per_run(runs: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """Per run, within C: samples, predictions, cache hits, samples per compute second, the
    training at which its final best came, and how many positions sampled the same
    architecture as vanilla PPO with the same seed (how far the variant's policy moved)."""
    ppo = {r["seed"]: r["curve"]["arch"] for r in runs if r["variant"] == "ppo"}
    out = {}
    for r in runs:
        c = r["curve"]
        inside = [i for i, comp in enumerate(c["compute"]) if comp <= budget]
        fl = [c["flags"][i] for i in inside]
        final = c["best"][inside[-1]]
        at = next(i for i in inside if c["best"][i] == final)
        same = (sum(x == y for x, y in zip(ppo[r["seed"]], c["arch"], strict=False))
                if r["variant"] != "ppo" and r["seed"] in ppo else None)
        out[f"{r['variant']}-s{r['seed']}"] = {
            "samples": len(inside), "predicted": sum("p" in f for f in fl),
            "cached": sum("c" in f for f in fl),
            "samples_per_compute_s": len(inside) / c["compute"][inside[-1]],
            "best": final, "best_at_training": c["trained"][at],
            "same_arch_as_ppo_at_same_position": same}
    return out


def _mechanics(runs: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """What each part did inside C, per variant (medians over seeds): the evidence for which
    part contributes what."""
    out = {}
    for v in VARIANTS:
        rs = [r for r in runs if r["variant"] == v]
        if not rs:
            continue
        rows = []
        for r in rs:
            c = r["curve"]
            inside = [i for i, comp in enumerate(c["compute"]) if comp <= budget]
            fl = [c["flags"][i] for i in inside]
            trained = sum("t" in f for f in fl)
            rows.append({"samples": len(inside), "trained": trained,
                         "predicted": sum("p" in f for f in fl),
                         "cached": sum("c" in f for f in fl),
                         "audited": sum("a" in f for f in fl),
                         "train_s_per_training": r["train_seconds"] / max(1, r["trainings"]),
                         "overhead_s": r["overhead_seconds"]})
        out[v] = {k: float(np.median([x[k] for x in rows])) for k in rows[0]}
    return out


def _difficulty(runs: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """How hard T is: the share of random search's trained samples that reach it, and so the
    chance that n uniform samples contain one (n = vanilla PPO's trainings)."""
    rs = [r for r in runs if r["variant"] == "random"]
    rewards = [x for r in rs for x, f in zip(r["curve"]["reward"], r["curve"]["flags"],
                                             strict=True) if "t" in f]
    base = [r["trainings"] for r in runs if r["variant"] == "ppo"]
    if not rewards or not base:
        return None
    p = sum(x >= target - 1e-12 for x in rewards) / len(rewards)
    n = int(np.median(base))
    return {"random_samples": len(rewards), "share_reaching_target": p, "n": n,
            "chance_n_uniform_samples_reach": 1 - (1 - p) ** n}


def _censored(row: dict[str, Any], budget: float) -> str:
    """"median [min, max]" over all runs, a run that missed T counted as "> C"."""
    m, r = row["compute_to_target_median"], row["compute_to_target"]
    missed = row["runs"] - row["reached"]
    if r is None:
        return "not reached"
    lo = f"{r['min']:.0f}"
    hi = f"> {budget:.0f}" if missed else f"{r['max']:.0f}"
    med = f"> {budget:.0f}" if m is None else f"{m:.0f}"
    return f"{med} [{lo}, {hi}]"


def table_md(summary: dict[str, Any]) -> str:
    """The summary as the Markdown table of the results file (and docs/BENCHMARKS.md)."""
    lines = [f"Compute budget C = {summary['budget_compute']:.0f} s (vanilla PPO's median total);"
             f" target T = {summary['target_reward']:.4f} (vanilla PPO's median final best).",
             "",
             "| variant | reached T | compute to T, s: median [min, max], a miss = > C |"
             " speed-up vs PPO |"
             " best reward within C: median [min, max] | its accuracy retrained:"
             " median [min, max] | its reward retrained: median [min, max] |",
             "|---|---:|---:|---:|---:|---:|---:|"]

    def rng(s, f="{:.0f}"):
        if s is None:
            return "-"
        return f"{f.format(s['median'])} [{f.format(s['min'])}, {f.format(s['max'])}]"

    for v, row in summary["table"].items():
        m = row["compute_to_target_median"]
        ratio = row["ratio_to_ppo"]
        lines.append(
            f"| {v} | {row['reached']}/{row['runs']} | "
            f"{_censored(row, summary['budget_compute'])} | "
            f"{'-' if ratio is None else f'{ratio:.2f}x'} | "
            f"{rng(row['best_reward_within_budget'], '{:.4f}')} | "
            f"{rng(row['retrained_accuracy'], '{:.4f}')} | "
            f"{rng(row.get('retrained_reward'), '{:.4f}')} |")
    mech = summary.get("mechanics") or {}
    if mech:
        lines += ["", "What each part did within C (medians over seeds; the last two columns:"
                  " whole run):", "",
                  "| variant | samples | real trainings | critic predictions | audits |"
                  " cache hits | training s per training | search overhead, s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for v, m in mech.items():
            lines.append(f"| {v} | {m['samples']:.0f} | {m['trained']:.0f} | "
                         f"{m['predicted']:.0f} | {m['audited']:.0f} | {m['cached']:.0f} | "
                         f"{m['train_s_per_training']:.1f} | {m['overhead_s']:.0f} |")
    d = summary.get("difficulty")
    if d:
        lines += ["", f"How hard T is: {d['share_reaching_target']:.1%} of random search's "
                  f"{d['random_samples']} trained samples reach it, so {d['n']} uniform samples "
                  f"contain one with probability {d['chance_n_uniform_samples_reach']:.0%}."]
    return "\n".join(lines) + "\n"


def plot(runs: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = summary.get("budget_compute")
    end = max(r["curve"]["compute"][-1] for r in runs)
    grid = np.linspace(0, budget or end, 200)
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, v in enumerate(VARIANTS):
        rs = [r for r in runs if r["variant"] == v]
        if not rs:
            continue
        m = np.full((len(rs), len(grid)), np.nan)
        for j, r in enumerate(rs):
            c = np.array(r["curve"]["compute"])
            b = np.array([x if x is not None else np.nan for x in r["curve"]["best"]])
            idx = np.searchsorted(c, grid, side="right") - 1
            ok = idx >= 0
            m[j, ok] = b[idx[ok]]
        with warnings.catch_warnings():  # before a run's first result its best is undefined
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(m, 0)
            lo, hi = np.nanpercentile(m, 25, 0), np.nanpercentile(m, 75, 0)
        ax.plot(grid, med, color=f"C{i}", label=f"{v} (n={len(rs)})",
                ls="-" if v.startswith(("ppo", "fnas")) else "--")
        if len(rs) > 1:
            ax.fill_between(grid, lo, hi, color=f"C{i}", alpha=0.12, linewidth=0)
    if summary.get("target_reward") is not None:
        ax.axhline(summary["target_reward"], color="k", lw=0.8, ls=":",
                   label="T: vanilla PPO's final best")
    ax.set_xlabel("search compute (s: rollout training + search overhead)")
    ax.set_ylabel("best real reward so far")
    ax.set_title("FNAS ablation on mnist5k (median over seeds, IQR band)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    out = Path(a.out)
    runs_dir = out / "ablation_real_runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    variants = a.variants.split(",")
    todo = [(v, s) for s in range(a.seeds) for v in variants
            if not (runs_dir / f"{v}-s{s}.json").is_file()]
    t0 = time.time()
    if todo and not a.summarise:
        source = source_store(a) if any(VARIANTS[v]["source"] for v, _ in todo) else None
        print(f"{len(todo)} runs to go, {a.jobs} at a time", flush=True)
        with ProcessPoolExecutor(max_workers=a.jobs) as pool:
            futs = {pool.submit(run_one, a, v, s, source): (v, s) for v, s in todo}
            for f in as_completed(futs):
                v, s = futs[f]
                r = f.result()
                (runs_dir / f"{v}-s{s}.json").write_text(json.dumps(r))
                c = r["curve"]
                print(f"{v}-s{s}: {r['trainings']} trainings, best {c['best'][-1]}, compute "
                      f"{c['compute'][-1]:.0f} s ({r['seconds']:.0f} s wall)", flush=True)
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*.json"))]
    runs = [r for r in runs if r["variant"] in variants and r["seed"] < a.seeds]
    if not runs:
        print("no finished run yet")
        return 0
    summary = summarise(a, runs, {})
    retrained_path = out / "ablation_real_retrained.json"
    retrained = json.loads(retrained_path.read_text()) if retrained_path.is_file() else {}
    if "table" in summary and not a.summarise:
        want = {}
        for r in runs:
            _, arch = best_within(r, summary["budget_compute"])
            if arch and arch not in retrained:
                want[arch] = arch
        if want:
            print(f"retraining {len(want)} best architectures for {a.retrain_epochs} epochs",
                  flush=True)
            with ProcessPoolExecutor(max_workers=a.jobs) as pool:
                futs = {pool.submit(retrain, a, arch, arch): arch for arch in want}
                for f in as_completed(futs):
                    retrained[futs[f]] = f.result()
                    retrained_path.write_text(json.dumps(retrained, indent=1))
    summary = summarise(a, runs, retrained)
    import torch

    result = {"command": "python benchmarks/ablation_real.py " + " ".join(
                  argv if argv is not None else sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "torch": torch.__version__},
              "config": {k: v for k, v in vars(a).items() if k not in ("work", "out")},
              "variants": VARIANTS, "seconds_this_call": time.time() - t0,
              "summary": summary, "retrained": retrained, "runs": runs}
    (out / "ablation_real.json").write_text(json.dumps(result, indent=1))
    if "table" in summary:
        md = table_md(summary)
        (out / "ablation_real.md").write_text(md)
        plot(runs, summary, out / "ablation_real.png")
        print(md)
    else:
        print(summary["note"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
