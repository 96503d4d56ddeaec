"""A benchmark's summary: per strategy, queries to target, success rate and final regret.

Where the measures come from is :mod:`fnas.benchmark.truth` (:func:`bench_truth` builds a
config's :class:`~fnas.benchmark.truth.Truth`); this module turns runs into numbers, the
printed table and the result files.
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from fnas.benchmark.truth import Truth
from fnas.execution.evaluators import MacroTableEvaluator
from fnas.tasks.score_table import load_score_table

if TYPE_CHECKING:
    from fnas.benchmark.config import BenchConfig

__all__ = ["bench_truth", "target_of", "queries_to_target", "summarize", "format_summary",
           "save_bench"]


def target_of(cfg: BenchConfig) -> str:
    """The config's target spec: its own, else ``within:target_delta`` on NAS-Bench-Macro
    (the committed figures' target) and ``within:0`` (the best only) elsewhere."""
    if cfg.target is not None:
        return cfg.target
    return f"within:{cfg.target_delta}" if cfg.bench == "macro" else "within:0"


def bench_truth(cfg: BenchConfig, runs: list[dict[str, Any]] = ()) -> Truth | None:
    """The ground truth of ``cfg``'s benchmark (None for ``real``: no target set). For an
    objective without a given ``optimum``, the best is the best score any of ``runs`` found.

    Raises:
        ConfigError: a target the benchmark cannot have. TaskError: an unreadable table.
    """
    target = target_of(cfg)
    if cfg.bench == "macro":
        t = MacroTableEvaluator(cfg.data).table
        return Truth.of(target, {k: e.mean_acc for k, e in t.entries.items()}, t.best_acc,
                        "table")
    if cfg.bench == "table":
        s = load_score_table(cfg.table, cfg.metric, cfg.cost)
        return Truth.of(target, s.scores, s.best, "table")
    if cfg.bench == "objective":
        if cfg.optimum is not None:
            return Truth.of(target, None, float(cfg.optimum), "optimum")
        found = [r for run in runs for r, a in zip(run["history"]["reward"],
                                                   run["history"]["accuracy"], strict=True)
                 if a is not None]
        return Truth.of(target, None, max(found, default=math.nan), "best found by any run")
    return None


def queries_to_target(history: dict[str, list], targets: set[str]) -> int | None:
    """1-based query index of the first hit of ``targets``, or ``None`` within the budget."""
    for q, arch in zip(history["query"], history["arch"], strict=True):
        if arch in targets:
            return q
    return None


def summarize(cfg: BenchConfig, runs: list[dict[str, Any]],
              names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Per strategy: queries to target (median, IQR, success rate) and final regret (macro,
    table, objective), or final best reward (real)."""
    truth = bench_truth(cfg, runs)
    out: dict[str, Any] = {}
    for s in names or cfg.strategies:  # names: labels of merged results (combine_macro.py)
        rs = [r for r in runs if r["strategy"] == s]
        made = [len(r["history"]["query"]) for r in rs]
        entry: dict[str, Any] = {"runs": len(rs), "queries_made": _stats(made),
                                 "samples": _stats([r["samples"] for r in rs]),
                                 "final_best_reward": _stats([r["history"]["best"][-1]
                                                              for r in rs if r["history"]["best"]])}
        audit = [r.get("final_stats", {}).get("critic/audit_error") for r in rs]
        audit = [a for a in audit if a is not None and not math.isnan(a)]
        if audit:  # the decision module's audited error (units: reward std), end of run
            entry["audit_error"] = _stats(audit)
        if truth is not None:
            q = [truth.queries_to_target(r["history"]) for r in rs]
            hits = [v for v in q if v is not None]
            # A run that never hits counts as +inf, so medians stay honest about failures; the
            # percentiles use the nearest rank (no interpolation across an infinity).
            qs = np.array([v if v is not None else np.inf for v in q], dtype=float)
            pct = {p: float(np.percentile(qs, p, method="nearest")) for p in (25, 50, 75)}
            entry["queries_to_target"] = {
                "median": pct[50], "q25": pct[25], "q75": pct[75],
                "success_rate": len(hits) / len(rs), "per_seed": q,
            }
            regrets = [truth.regret(r["history"]) for r in rs]
            entry["final_regret"] = _stats([g for g in regrets if g is not None])
        out[s] = entry
    return out


def _stats(v: list[float]) -> dict[str, float]:
    a = np.asarray(v, dtype=float)
    if a.size == 0:
        return {}
    return {"median": float(np.median(a)), "q25": float(np.percentile(a, 25)),
            "q75": float(np.percentile(a, 75)), "mean": float(a.mean())}


def format_summary(cfg: BenchConfig, summary: dict[str, Any],
                   truth: dict[str, Any] | None = None) -> str:
    """The printed table; with ``truth`` (a result's ``truth``) off NAS-Bench-Macro, also a
    line saying what the target set is and what regret is against."""
    lines = []
    if cfg.bench != "real":
        target = target_of(cfg)
        label = f"within {cfg.target_delta}" if target == f"within:{cfg.target_delta}" \
            and cfg.bench == "macro" else target
        lines.append(f"{'strategy':<10} {'queries to ' + label:>24}  "
                     f"{'success':>7}  {'final regret (median [IQR])':>28}  {'queries made':>12}")
        for s, e in summary.items():
            q, r = e["queries_to_target"], e["final_regret"]
            regret = f"{r['median']:>12.3f} [{r['q25']:.3f}, {r['q75']:.3f}]" if r else \
                f"{'n/a':>12}{'':>16}"
            lines.append(f"{s:<10} {_fmt(q['median']):>9} [{_fmt(q['q25'])}, {_fmt(q['q75'])}]"
                         f"{'':>5}  {100 * q['success_rate']:6.0f}%  {regret}"
                         f"  {e['queries_made']['median']:>12.0f}")
        if truth and cfg.bench != "macro":
            lines.append(_truth_line(truth))
    else:
        lines.append(f"{'strategy':<10} {'final best reward (median [IQR])':>34}")
        for s, e in summary.items():
            b = e["final_best_reward"]
            lines.append(f"{s:<10} {b['median']:>16.4f} [{b['q25']:.4f}, {b['q75']:.4f}]")
    return "\n".join(lines)


def _truth_line(t: dict[str, Any]) -> str:
    where = {"table": "the table's best", "optimum": "the given optimum",
             "best found by any run": "the best found by any run"}[t["best_from"]]
    n = f", {t['n_targets']} architecture(s)" if t["n_targets"] is not None else ""
    return (f"target {t['target']}: score >= {t['threshold']:.6g}{n}; regret is against "
            f"{where} ({t['best']:.6g})")


def _fmt(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.0f}"


def save_bench(result: dict[str, Any], out_dir: str, stem: str) -> tuple[str, str]:
    """Write ``stem.json`` and ``stem.png`` into ``out_dir``; returns their paths."""
    from fnas.benchmark.plot import plot_bench

    os.makedirs(out_dir, exist_ok=True)
    js = os.path.join(out_dir, stem + ".json")
    with open(js, "w") as f:
        json.dump(result, f, separators=(",", ":"))
    png = os.path.join(out_dir, stem + ".png")
    plot_bench(result, png)
    return js, png
