"""Racing (``confirm``, issue 34's robust incumbent): does training a new best again before it
becomes the incumbent return better architectures from noisy evaluations, at equal compute?

    python benchmarks/racing.py                      # 20 seeds per row (resumable)
    python benchmarks/racing.py --jobs 2             # two runs at a time
    python benchmarks/racing.py --summarise          # the table from what exists

Two spaces, each searched through the Python API (``fnas.create_search`` with an evaluator or
an objective), by ``rea`` and by ``fnas``, with ``confirm`` 1 (no racing, the default) and 2:

- **macro-noisy**: NAS-Bench-Macro, each query one of the three training seeds' test accuracy
  (drawn by the evaluation's seed, as a real training gives one); its truth is the mean of
  the three.
- **synthetic**: 6 decisions of 4 choices (4,096 architectures), a fixed random additive and
  pairwise score in [0.7, 0.95] plus Gaussian noise (sd 0.01) per evaluation seed; its truth
  is the noiseless score. Another landscape and another noise than the table's.

The budget counts trainings (a repeat costs one, a cached result nothing), 200 per run. The
quality at c trainings is the **true** score of the incumbent the run would return at c, by
the run's own rule (:class:`fnas.knowledge.racing.Race` over its results so far, as
``search.best``): the regret is the space's best true score minus it. Rows run seed-major; a
finished run is kept in ``results/racing.json`` and not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
OUT = HERE / "results" / "racing.json"
DATA = HERE.parent.parent / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"
BUDGET = 200
CHECKPOINTS = (25, 50, 100, 200)
ROWS = [f"{space}/{strategy}/confirm{c}" for space in ("macro-noisy", "synthetic")
        for strategy in ("rea", "fnas") for c in (1, 2)]


def synthetic():
    """The synthetic space, its objective and its true scores (a fixed landscape)."""
    import fnas

    rng = np.random.default_rng(1234)
    d, k = 6, 4
    unary = rng.normal(0, 1, (d, k))
    pair = rng.normal(0, 0.5, (d, d, k, k))
    grid = np.array(np.meshgrid(*[range(k)] * d, indexing="ij")).reshape(d, -1).T
    raw = unary[np.arange(d), grid].sum(1) + sum(
        pair[i, j, grid[:, i], grid[:, j]] for i in range(d) for j in range(i + 1, d))
    lo, hi = raw.min(), raw.max()
    truth = {tuple(int(v) for v in g): 0.7 + 0.25 * (r - lo) / (hi - lo)
             for g, r in zip(grid, raw, strict=True)}
    space = fnas.make_space("racing-synthetic", {f"d{i}": tuple(range(k)) for i in range(d)})

    def objective(arch, seed):
        t = truth[tuple(arch[f"d{i}"] for i in range(d))]
        return t + float(np.random.default_rng(seed).normal(0, 0.01))

    def true_of(ev):
        v = dict(space.values(ev.decisions))
        return truth[tuple(v[f"d{i}"] for i in range(d))]

    return space, objective, true_of, max(truth.values())


def one(row: str, seed: int, data: str) -> dict:
    """One run: the true score of its incumbent at each checkpoint of trainings."""
    import torch

    torch.set_num_threads(1)
    import fnas
    from fnas.knowledge.racing import Race, replicate_of

    space_name, strategy, confirm = row.split("/")
    confirm = int(confirm.removeprefix("confirm"))
    if space_name == "macro-noisy":
        from fnas.execution.evaluators import MacroTableEvaluator

        objective = MacroTableEvaluator(data, noisy=True)
        table = objective.table
        space, best = "macro", table.best_acc / 100

        def true_of(ev):
            return table.entries[ev.arch_key].mean_acc / 100
    else:
        space, objective, true_of, best = synthetic()
    store = tempfile.mkdtemp(prefix="fnas-racing-")
    t0 = time.perf_counter()
    try:
        s = fnas.create_search(store=store, name="r", space=space, objective=objective,
                               strategy=strategy, budget=BUDGET, batch=8, seed=seed,
                               confirm=confirm, budget_counts="trained", checkpoint=False)
        s.optimize(progress=False)
        race, trained, out = Race(confirm), 0, {}
        marks = list(CHECKPOINTS)
        for ev in s.trials():
            trained += ev.trained
            while marks and trained > marks[0]:
                inc = race.incumbent()
                out[str(marks.pop(0))] = None if inc is None else best - true_of(inc.first)
            if not ev.predicted and ev.fidelity >= 1.0:
                race.add(ev.arch_key, replicate_of(ev.task_signature),
                         ev.reward if ev.status == "ok" else None, ev)
        for m in marks:
            inc = race.incumbent()
            out[str(m)] = None if inc is None else best - true_of(inc.first)
        final = s.best
        repeats = sum(replicate_of(ev.task_signature) > 0 for ev in s.trials())
        return {"row": row, "seed": seed, "regret": out, "trained": trained,
                "repeats": repeats, "returned_regret": best - true_of(final),
                "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        shutil.rmtree(store, ignore_errors=True)


def summarise(runs: list[dict]) -> dict:
    out = {}
    for row in ROWS:
        rs = [r for r in runs if r["row"] == row]
        if not rs:
            continue
        ret = [r["returned_regret"] for r in rs]
        out[row] = {"seeds": len(rs),
                    "repeats_median": float(np.median([r["repeats"] for r in rs])),
                    "returned": {"mean": float(np.mean(ret)), "median": float(np.median(ret)),
                                 "zero": int(sum(x <= 1e-12 for x in ret))}}
        for c in CHECKPOINTS:
            v = [r["regret"][str(c)] for r in rs if r["regret"][str(c)] is not None]
            out[row][f"regret@{c}"] = {"median": float(np.median(v)), "mean": float(np.mean(v)),
                                       "zero": int(sum(x <= 1e-12 for x in v))}
    return out


def table(summary: dict) -> str:
    lines = ["| row | seeds | repeats | " + " | ".join(f"regret @{c} (median / mean)"
                                                      for c in CHECKPOINTS)
             + " | returned at 200: runs at regret 0 |",
             "|---|---:|---:|" + "---|" * len(CHECKPOINTS) + "---:|"]
    for row, s in summary.items():
        cells = [f"{s[f'regret@{c}']['median']:.4f} / {s[f'regret@{c}']['mean']:.4f}"
                 for c in CHECKPOINTS]
        lines.append(f"| {row} | {s['seeds']} | {s['repeats_median']:.0f} | "
                     + " | ".join(cells) + f" | {s['returned']['zero']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--data", default=str(DATA), help="nas-bench-macro_cifar10.json")
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--summarise", action="store_true")
    a = p.parse_args(argv)
    out = Path(a.out)
    doc = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    done = {(r["row"], r["seed"]) for r in doc["runs"]}
    rows = a.rows.split(",")
    todo = [(r, s) for s in range(a.seeds) for r in rows if (r, s) not in done]
    if not Path(a.data).is_file():
        todo = [t for t in todo if not t[0].startswith("macro")]
        print(f"no NAS-Bench-Macro table at {a.data}: its rows are skipped", file=sys.stderr)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    def save():
        doc["runs"].sort(key=lambda r: (r["seed"], ROWS.index(r["row"])))
        doc["summary"] = summarise(doc["runs"])
        args = list(argv or sys.argv[1:])
        if "--data" in args:  # no path of this machine in the committed JSON
            del args[args.index("--data"):args.index("--data") + 2]
        command = "python benchmarks/racing.py " + " ".join(args)
        if a.summarise and "meta" in doc:  # the command that ran the runs stays
            command = doc["meta"]["command"]
        doc["meta"] = {**doc.get("meta", {}), "command": command.strip(),
                       "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                       "budget": BUDGET, "checkpoints": CHECKPOINTS,
                       "seeds": sorted({r["seed"] for r in doc["runs"]})}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")

    if not a.summarise and todo:
        with ProcessPoolExecutor(a.jobs) as pool:
            futs = [pool.submit(one, r, s, a.data) for r, s in todo]
            for f in as_completed(futs):
                r = f.result()
                doc["runs"].append(r)
                save()
                print(f"{r['row']} s{r['seed']}: regret@200 {r['regret']['200']}, "
                      f"repeats {r['repeats']}, {r['seconds']} s", flush=True)
    save()
    print(table(doc["summary"]))


if __name__ == "__main__":
    main()
