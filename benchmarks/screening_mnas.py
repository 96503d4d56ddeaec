"""Does the RL controller earn its place? Screening on the MnasNet space with real training.

    python benchmarks/screening_mnas.py                 # 4 variants x 3 seeds (resumable)
    python benchmarks/screening_mnas.py --summarise     # table from the finished runs
    python benchmarks/screening_mnas.py --quick         # 2 variants x 1 seed, 8 trainings

NAS-Bench-Macro has 6,561 architectures, so screening 512 near-uniform samples may be enough
there; the MnasNet space (42 decisions, about 10^20 decision vectors) is where a policy that
learns where to look should matter. Variants, all ``fnas`` with UCB screening, the critic
from scratch (no knowledge), the knowledge pool and the experience buffer off (so that only
the proposal mechanism differs):

- ``learn+mutants``: the default: PPO controller samples plus mutants of the best results;
- ``learn``: the PPO controller's samples only;
- ``frozen+mutants``: uniform samples plus mutants (mutants alone do the local search);
- ``frozen``: uniform samples only (screening without any learning proposal);
- ``learn+mutants-first``, ``learn-first``: the learning policy with the controller's first
  objective (``ScreenConfig.novelty=False``).

Task: scikit-learn's digits (8x8), the MnasNet space's 8x8 variant, 2 epochs per training,
batch 4, 32 real trainings per run (8 warm-up, then 6 screened rounds), seeds 0-2; runs in
parallel processes at one torch thread each. Per run: the best reward (accuracy: no cost
target), the mean reward of the screened picks (how good what the critic chose to train
was; less noisy than one maximum), and the policy's entropy. Each finished run is one JSON
in ``results/screening_mnas_work/`` (git-ignored); the committed
``results/screening_mnas.json`` holds them all with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
VARIANTS = {
    "learn+mutants": {},
    "learn": {"mutants": 0},
    "frozen+mutants": {"policy": "frozen"},
    "frozen": {"policy": "frozen", "mutants": 0},
    # the controller's first objective (critic mean of unseen samples; the default until
    # 2026-11-30), kept to show what the novelty objective changed
    "learn+mutants-first": {"novelty": False},
    "learn-first": {"mutants": 0, "novelty": False},
}


def one_run(variant: str, seed: int, budget: int, epochs: int, work: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from fnas.knowledge import Store
    from fnas.search import SearchConfig, run_search
    from fnas.tasks import TaskConfig

    cfg = SearchConfig(strategy="fnas", budget=budget, batch=4, seed=seed,
                       task=TaskConfig(dataset="digits", epochs=epochs), knowledge="none",
                       pool="off", replay="off", fnas={"screen": VARIANTS[variant]},
                       checkpoint=False)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        name = f"{variant.replace('+', '_')}-s{seed}"  # run names take no "+"
        out = run_search(store, cfg, name=name, progress=False)
        rows = store.evaluations(out.experiment.id)
        ups = store.updates(out.experiment.id)
        store.close()
    picks = [e.reward for e in rows if e.trained and e.predicted_reward is not None
             and e.status == "ok"]
    rec = {"variant": variant, "seed": seed, "budget": budget, "epochs": epochs,
           "seconds": round(time.time() - t0, 1),
           "best_reward": max(e.reward for e in rows if e.status == "ok"),
           "pick_mean": float(np.mean(picks)) if picks else None,
           "pick_top5": float(np.mean(sorted(picks)[-5:])) if picks else None,
           "rewards": [round(e.reward, 5) for e in rows],
           "archs": [e.arch for e in rows],
           "screened": sum(u.get("screen/screened", 0) for u in ups),
           "entropy": [u.get("controller/entropy") for u in ups],
           "pick_tau": [u.get("critic/pick_tau") for u in ups]}
    Path(work, f"{variant}-s{seed}.json").write_text(json.dumps(rec))
    return rec


def summarise(work: Path, out: Path) -> dict:
    runs = [json.loads(p.read_text()) for p in sorted(work.glob("*.json"))]
    table = {}
    for v in VARIANTS:
        rs = [r for r in runs if r["variant"] == v]
        if not rs:
            continue
        table[v] = {k: {"median": float(np.median([r[k] for r in rs])),
                        "per_seed": [round(r[k], 4) for r in sorted(rs, key=lambda r: r["seed"])]}
                    for k in ("best_reward", "pick_mean", "pick_top5")}
        table[v]["runs"] = len(rs)
        table[v]["seconds"] = float(np.sum([r["seconds"] for r in rs]))
    out.write_text(json.dumps({"table": table, "runs": runs}, separators=(",", ":")))
    print(f"{'variant':<16} {'runs':>4}  {'best reward':>22}  {'mean of screened picks':>24}  "
          f"{'top-5 picks':>12}")
    for v, t in table.items():
        print(f"{v:<16} {t['runs']:>4}  {t['best_reward']['median']:.4f} "
              f"{t['best_reward']['per_seed']}  {t['pick_mean']['median']:.4f} "
              f"{t['pick_mean']['per_seed']}  {t['pick_top5']['median']:.4f}")
    return table


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="2 variants, 1 seed, 8 trainings")
    p.add_argument("--summarise", action="store_true")
    p.add_argument("--work", default=str(HERE / "results" / "screening_mnas_work"))
    p.add_argument("--out", default=str(HERE / "results" / "screening_mnas.json"))
    a = p.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    variants = list(VARIANTS)[:: 3] if a.quick else list(VARIANTS)
    seeds, budget = (1, 12) if a.quick else (a.seeds, a.budget)
    if not a.summarise:
        todo = [(v, s) for s in range(seeds) for v in variants
                if not (work / f"{v}-s{s}.json").exists()]
        with ProcessPoolExecutor(max_workers=a.jobs) as pool:
            futs = [pool.submit(one_run, v, s, budget, a.epochs, str(work)) for v, s in todo]
            for f in futs:
                r = f.result()
                print(f"{r['variant']}-s{r['seed']}: best {r['best_reward']:.4f}, picks "
                      f"{r['pick_mean']}, {r['seconds']:.0f} s", flush=True)
    summarise(work, Path(a.out))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
