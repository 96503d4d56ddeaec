"""Knowledge that never hurts (issue 35): fnas with knowledge of a related task against fnas
from scratch, on pairs of NAS-Bench-Macro tasks whose best architectures differ, a friendly
pair, and a source that ranks the table backwards.

Each pair is (source task -> target task) on NAS-Bench-Macro's 6,561 architectures. A run
first makes a knowledge-source search of the source task (fnas, ``--source-budget`` queries,
seed 1000 + seed), then searches the target task with that knowledge (``knowledge='all'``);
the from-scratch row searches the target task alone, same seeds. Rows per pair:

- ``scratch``: no knowledge;
- ``weigh``: knowledge weighed every round (``screen.knowledge_rule='weigh'``, the default
  since issue 35);
- ``judge``: knowledge judged once on its first 8 picks (the rule before issue 35), for the
  pairs where it is the question;
- ``hedge``: ``weigh`` with ``screen.hedge=0.5`` (off by default): half the first batch drawn
  uniformly, and a distrusted source's run completes the from-scratch warm-up;
- ``hedge-s`` and ``hedge-b``: the same with the knowledge judged on its own (screened)
  picks only, and on the lower of the two trusts (``screen.hedge_trust``); not run yet.

The pairs (the tasks are tables of scores written from NAS-Bench-Macro's accuracies, FLOPs
and parameters into ``--work``; never committed):

| pair | source | target | Spearman | top-10 shared |
|---|---|---|---:|---:|
| flops-tradeoff | accuracy | acc x (FLOPs / 50M)^-0.03 | 0.89 | 0 |
| params-vs-flops | acc x (FLOPs / 50M)^-0.03 | acc x (params / 1.5M)^-0.03 | 0.92 | 0 |
| moved-optimum | accuracy | accuracy - 1 point within Hamming distance 2 of its best | 0.99 | 4 |
| friendly-seed | acc x (FLOPs / 50M)^-0.03, one training seed | the same, mean | 0.99 | 8 |
| macro-flops40 | MnasNet reward, FLOPs target 40M (its accuracies re-scored) | accuracy | | |
| macro-invert | 1 - accuracy | accuracy | -1 | 0 |

The ``macro-*`` pairs' sources make 200 queries (``screening_macro.py``'s, whose friendly
row measured 3 median queries), the tables' ``--source-budget`` (100: the shifted-pair check
of the issue). Target set: the target table's 10 best architectures (``top:10``); on the
``macro-*`` pairs NAS-Bench-Macro's usual target (within 0.2 points of the best mean
accuracy). Figures: per pair and row, queries to the target set (median over seeds, a miss
counted as never), the ratio of medians knowledge / scratch (target <= 1.0 in every pair),
and per seed whether the knowledge run took more than 1.5 x its from-scratch queries + 8
(target: no seed); per round, the knowledge's trust, weight and share of the critic's fit
(``knowledge/*``), plotted for one friendly and one shifted run.

Commands (from the repository root; resumable: each finished row is kept in ``--work``):

    python benchmarks/knowledge_shift.py                  # everything, 20 seeds
    python benchmarks/knowledge_shift.py --only flops-tradeoff --seeds 5
    python benchmarks/knowledge_shift.py --summarise      # the table and plot from the rows
    python benchmarks/knowledge_shift.py --rows hedge-b   # run one row; the others carried
    python benchmarks/knowledge_shift.py --quick          # smoke test: 2 seeds, budget 40

``--rows`` runs only the rows named (of the ``--only`` pairs); every other row of every pair
whose run is not in ``--work`` is carried from the committed ``knowledge_shift.json`` (its
per-seed queries and trust curves, marked ``carried_from`` with the date it was run), so one
new row costs its own runs only.

Machine: recorded in the JSON (the committed result: the project's 2-core CPU machine, one
thread per run). Seeds: 0..19. Spread: IQR and per-seed values in the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"

# pair: (source table or macro setting, target table or None for the macro benchmark, rows)
PAIRS: dict[str, dict] = {
    "flops-tradeoff": {"source": "acc", "target": "acc_f03",
                       "rows": ("weigh", "judge", "hedge", "hedge-s", "hedge-b")},
    "moved-optimum": {"source": "acc", "target": "acc_moved",
                      "rows": ("weigh", "judge", "hedge", "hedge-s", "hedge-b")},
    "macro-invert": {"macro": {"source_flops": 40e6, "source_invert": True,
                               "source_budget": 200},
                     "rows": ("weigh", "judge", "hedge", "hedge-s", "hedge-b")},
    "friendly-seed": {"source": "acc_f03_seed0", "target": "acc_f03",
                      "rows": ("weigh", "hedge", "hedge-s", "hedge-b")},
    "macro-flops40": {"macro": {"source_flops": 40e6, "source_budget": 200},
                      "rows": ("weigh", "hedge", "hedge-s", "hedge-b"),
                      "scratch_of": "macro-invert"},  # the same from-scratch runs
    "params-vs-flops": {"source": "acc_f03", "target": "acc_p03",
                        "rows": ("weigh", "hedge", "hedge-s", "hedge-b")},
}


HEDGES = ("hedge", "hedge-s", "hedge-b")
"""The hedge's rows: ``screen.hedge=0.5`` with the trust judged on all own results
(``hedge_trust='all'``, the default), on the knowledge's screened picks only ('screened'),
and the lower of the two ('both')."""


def tables(data: str, work: Path) -> dict[str, Path]:
    """Write the pairs' score tables (architecture key -> score) into ``work``."""
    raw = json.loads(Path(data).read_text())
    keys = list(raw)
    acc = np.array([raw[k]["mean_acc"] for k in keys])
    acc0 = np.array([raw[k]["test_acc"][0] for k in keys])
    flops = np.array([raw[k]["flops"] for k in keys], dtype=float)
    params = np.array([raw[k]["params"] for k in keys], dtype=float)
    x = np.array([[int(c) for c in k] for k in keys])
    near_best = (x != x[int(np.argmax(acc))]).sum(1) <= 2
    scores = {"acc": acc, "acc_f03": acc * (flops / 50e6) ** -0.03,
              "acc_p03": acc * (params / 1.5e6) ** -0.03,
              "acc_f03_seed0": acc0 * (flops / 50e6) ** -0.03,
              "acc_moved": acc - 1.0 * near_best}
    work.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, s in scores.items():
        path = work / f"{name}.json"
        if not path.is_file():
            path.write_text(json.dumps({k: round(float(v), 6) for k, v in zip(keys, s,
                                                                                strict=True)}))
        out[name] = path
    return out


def config(pair: str, row: str, a: argparse.Namespace, paths: dict[str, Path]):
    from fnas.benchmark.config import BenchConfig

    p = PAIRS[pair]
    rule = {"judge": {"knowledge_rule": "judge"}, "hedge": {"hedge": 0.5, "hedge_trust": "all"},
            "hedge-s": {"hedge": 0.5, "hedge_trust": "screened"},
            "hedge-b": {"hedge": 0.5, "hedge_trust": "both"}}.get(row, {})
    base = dict(strategies=("fnas",), seeds=a.seeds, budget=a.budget, batch=8, jobs=a.jobs,
                label=f"{pair}:{row}", source_budget=a.source_budget,
                fnas={"screen": rule} if rule else {})
    if "macro" in p:
        cfg = BenchConfig(bench="macro", data=a.data, **base)
        return replace(cfg, **p["macro"]) if row != "scratch" else cfg
    cfg = BenchConfig(bench="table", space="macro", table=str(paths[p["target"]]),
                      target="top:10", **base)
    return replace(cfg, source_table=str(paths[p["source"]])) if row != "scratch" else cfg


def rows_of(pair: str) -> tuple[str, ...]:
    return (*(() if "scratch_of" in PAIRS[pair] else ("scratch",)), *PAIRS[pair]["rows"])


def _file(work: Path, pair: str, row: str) -> Path:
    return work / f"{PAIRS[pair].get('scratch_of', pair) if row == 'scratch' else pair}-{row}.json"


def carry(work: Path, out: Path, pairs: list[str], rows: set[str]) -> list[str]:
    """Write into ``work`` the runs of every row not in ``rows`` that ``work`` lacks, from the
    committed ``out/knowledge_shift.json``, marked ``carried_from`` with the date they ran;
    the ``pair:row`` names carried."""
    committed = out / "knowledge_shift.json"
    if not committed.is_file():
        return []
    old = json.loads(committed.read_text())
    date = old["meta"].get("date")
    done = []
    for pair in pairs:
        for row in rows_of(pair):
            path = _file(work, pair, row)
            r = old["pairs"].get(pair, {}).get("rows", {}).get(row)
            if row in rows or path.is_file() or r is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({
                "summary": {k: r[k] for k in ("per_seed", "median", "q25", "q75")},
                "trust": r.get("trust_curves") or [],
                "carried_from": r.get("carried_from") or date}))
            done.append(f"{pair}:{row}")
    return done


def summarise(work: Path, out: Path, a: argparse.Namespace) -> dict:
    res: dict = {}
    for pair in PAIRS:
        got = {}
        for row in ("scratch", *PAIRS[pair]["rows"]):
            path = _file(work, pair, row)
            if path.is_file():
                got[row] = json.loads(path.read_text())
        if "scratch" not in got:
            continue
        q0 = got["scratch"]["summary"]["per_seed"]
        entry = {"rows": {}}
        for row, r in got.items():
            q = r["summary"]["per_seed"]
            qs = np.array([v if v is not None else np.inf for v in q], dtype=float)
            e = {"per_seed": q, "median": float(np.percentile(qs, 50, method="nearest")),
                 "q25": float(np.percentile(qs, 25, method="nearest")),
                 "q75": float(np.percentile(qs, 75, method="nearest")),
                 "hits": int(np.isfinite(qs).sum()), "seeds": len(q)}
            if row != "scratch":
                m0 = float(np.percentile(np.array([v if v is not None else np.inf for v in q0],
                                                  dtype=float), 50, method="nearest"))
                e["ratio_of_medians"] = e["median"] / m0 if math.isfinite(m0) and m0 else None
                worse = [s for s, (v, v0) in enumerate(zip(q, q0, strict=True))
                         if (v if v is not None else math.inf) >
                         1.5 * (v0 if v0 is not None else a.budget) + 8]
                e["seeds_worse_than_1.5x_plus_8"] = worse
                e["trust_curves"] = r["trust"]
            if "carried_from" in r:  # a row the change since did not touch, kept from then
                e["carried_from"] = r["carried_from"]
            entry["rows"][row] = e
        res[pair] = entry
    meta = {"command": "python benchmarks/knowledge_shift.py " + " ".join(
                os.path.relpath(v) if os.path.isabs(v) else v for v in sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M"), "budget": a.budget,
            "source_budget": a.source_budget, "seeds": a.seeds,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "pairs": {k: {kk: vv for kk, vv in v.items() if kk != "rows"} for k, v in
                      PAIRS.items()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "knowledge_shift.json").write_text(json.dumps({"meta": meta, "pairs": res},
                                                         indent=1, default=str))
    lines = ["| pair | scratch: median [IQR] (hits) | weigh (issue 35) | ratio | seeds > 1.5x+8 "
             "| judge (before) | ratio | hedge 0.5 | ratio | seeds > 1.5x+8 "
             "| hedge 0.5, trust on screened picks | ratio | seeds > 1.5x+8 "
             "| hedge 0.5, the lower trust of both | ratio | seeds > 1.5x+8 |",
             "|---|---|---|---:|---|---|---:|---|---:|---|---|---:|---|---|---:|---|"]
    for pair, e in res.items():
        cells = []
        for row in ("scratch", "weigh", "judge", *HEDGES):
            r = e["rows"].get(row)
            if r is None:
                cells += ["", ""] if row != "scratch" else [""]
                if row in ("weigh", *HEDGES):
                    cells.append("")
                continue
            cells.append(f"{_f(r['median'])} [{_f(r['q25'])}, {_f(r['q75'])}] "
                         f"({r['hits']}/{r['seeds']})")
            if row != "scratch":
                ratio = r["ratio_of_medians"]
                cells.append("" if ratio is None else f"{ratio:.2f}")
            if row in ("weigh", *HEDGES):
                cells.append(str(len(r["seeds_worse_than_1.5x_plus_8"])))
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    (out / "knowledge_shift.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(res, out)
    return res


def _f(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.0f}"


def _plot(res: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, pair in enumerate(p for p in ("friendly-seed", "flops-tradeoff", "moved-optimum")
                             if p in res and "weigh" in res[p]["rows"]):
        curves = res[pair]["rows"]["weigh"]["trust_curves"]
        if not curves:
            continue
        c = curves[0]  # seed 0
        xs = c["n_trained"][: len(c["trust"])]
        ax[0].plot(xs, c["trust"], label=f"{pair}, seed 0", color=f"C{i}")
        ax[1].plot(xs, c["share"], label=f"{pair}, seed 0", color=f"C{i}")
    ax[0].set_ylabel("knowledge/trust")
    ax[1].set_ylabel("knowledge/share of the critic's fit")
    for x in ax:
        x.set_xlabel("real queries")
        x.set_ylim(-0.02, 1.02)
        if x.get_legend_handles_labels()[0]:
            x.legend()
    fig.suptitle("knowledge weighed per round (issue 35): a friendly and shifted sources")
    fig.tight_layout()
    fig.savefig(out / "knowledge_shift.png", dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.relpath(DATA), help="nas-bench-macro_cifar10.json")
    ap.add_argument("--only", default=None, help="comma-separated pairs (default: all)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=int, default=200, help="queries per run")
    ap.add_argument("--source-budget", type=int, default=100, help="queries per source search")
    ap.add_argument("--jobs", type=int, default=1, help="parallel runs (0: one per core)")
    ap.add_argument("--work", default=str(HERE / "results" / "knowledge_shift_work"))
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--rows", default=None,
                    help="comma-separated rows to run (default: all); the others are carried "
                    "from the committed knowledge_shift.json")
    ap.add_argument("--summarise", action="store_true", help="only the table and plot")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, budget 40")
    a = ap.parse_args()
    if a.quick:
        a.seeds, a.budget, a.source_budget = 2, 40, 24
        a.work, a.out = str(Path(a.work) / "quick"), str(Path(a.out) / "quick")
    if not Path(a.data).is_file():
        print(f"knowledge_shift: NAS-Bench-Macro table not found at {a.data} (see "
              "shared/data/README.md)", file=sys.stderr)
        return 2
    pairs = a.only.split(",") if a.only else list(PAIRS)
    unknown = [p for p in pairs if p not in PAIRS]
    if unknown:
        print(f"knowledge_shift: unknown pair {unknown[0]!r}: expected some of "
              f"{', '.join(PAIRS)}", file=sys.stderr)
        return 2
    known_rows = {r for p in PAIRS for r in rows_of(p)}
    rows = set(a.rows.split(",")) if a.rows else known_rows
    if rows - known_rows:
        print(f"knowledge_shift: unknown row {sorted(rows - known_rows)[0]!r}: expected some "
              f"of {', '.join(sorted(known_rows))}", file=sys.stderr)
        return 2
    work = Path(a.work)
    paths = tables(a.data, work / "tables")
    if a.rows and not a.summarise:
        carried = carry(work, Path(a.out), list(PAIRS), rows)  # every pair: the summary's
        if carried:
            print(f"carried from the committed JSON: {', '.join(carried)}", flush=True)
    if not a.summarise:
        from fnas.benchmark.harness import run_bench

        # the rows the figures need first (from scratch, weighed), the legacy rule after
        todo = [(p, r) for p in pairs for r in rows_of(p)
                if r not in ("judge", *HEDGES)] + \
            [(p, r) for p in pairs for r in rows_of(p) if r == "judge"] + \
            [(p, r) for p in pairs for r in rows_of(p) if r in HEDGES]
        for pair, row in todo:
            path = _file(work, pair, row)
            if path.is_file() or row not in rows:
                continue
            t0 = time.time()
            r = run_bench(config(pair, row, a, paths), progress=False)
            name = f"{pair}:{row}"
            keep = ("n_trained", "knowledge/trust", "knowledge/weight", "knowledge/share")
            trust = [{k.split("/")[-1]: run["updates"].get(k, []) for k in keep}
                     for run in r["runs"] if run["updates"].get("knowledge/trust")]
            summary = r["summary"][name]["queries_to_target"]
            path.write_text(json.dumps({"summary": summary, "trust": trust,
                                        "seconds": round(time.time() - t0, 1)}))
            print(f"{name}: median {summary['median']} [{summary['q25']}, "
                  f"{summary['q75']}], {time.time() - t0:.0f} s", flush=True)
    summarise(work, Path(a.out), a)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
