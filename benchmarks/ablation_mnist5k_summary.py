"""The metric, table and plot of ``ablation_mnist5k.py`` (issues 20 and 34), from finished runs.

A run is ``{"variant", "seed", "curve": [{"compute", "reward", "accuracy", "arch", "status",
"flags", "fidelity"}, ...]}``: one row per evaluation, ``compute`` the run's CPU seconds so
far, ``flags`` letters of trained / cached / predicted / audited / replayed, ``fidelity`` (rows
before issue 34 have none: 1.0).

Two metrics of compute to a target (a target missed within the budget C counts as infinite
compute, so a median over seeds can be "> C"):

- ``incumbent`` (issue 34, the primary one when ``summarise`` is given a ``score``): the
  first compute at which the run's incumbent (its best full-fidelity real result so far, by
  its own reward) has a reference-protocol score that reaches the target (``incumbent.py``);
- ``own_best`` (issue 20): the first compute at which the run's own best real reward
  (``status == "ok"`` and not predicted) reaches the target. Without a ``score`` it is the
  primary metric; with one it is kept beside it, under ``own_best`` / ``reach_own_best``.

``summary["metric"]`` names which one ``reach``, the target cells of ``table`` and
``ratios`` hold.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from incumbent import final_incumbent, full_fidelity, reach_incumbent  # noqa: E402
from mnist5k_reference import QUANTILES, reaches  # noqa: E402

RATIOS = (("ppo", "fnas"), ("rea", "fnas"), ("random", "fnas"), ("fnas-scratch", "fnas"),
          ("fnas-scratch", "fnas-digits"), ("ppo", "fnas-scratch"), ("rea", "fnas-scratch"),
          ("ppo", "fnas-acc"), ("rea", "fnas-acc"), ("fnas-scratch", "fnas-acc"),
          ("ppo", "fnas-res14"), ("rea", "fnas-res14"), ("fnas-scratch", "fnas-res14"),
          ("ppo", "fnas-res14q"), ("rea", "fnas-res14q"), ("fnas-scratch", "fnas-res14q"),
          ("tpe", "fnas"), ("tpe", "fnas-scratch"), ("ppo", "fnas-known"), ("rea", "fnas-known"),
          ("tpe", "fnas-known"), ("ppo", "fnas-decompose"), ("rea", "fnas-decompose"),
          ("tpe", "fnas-decompose"), ("ppo", "fnas-default"), ("rea", "fnas-default"),
          ("tpe", "fnas-default"), ("fnas-decompose", "fnas-default"),
          ("ppo", "fnas-nofeat"), ("rea", "fnas-nofeat"), ("tpe", "fnas-nofeat"),
          ("fnas-nofeat", "fnas-default"), ("rea-default", "fnas-default"),
          ("tpe-default", "fnas-default"), ("ppo-default", "fnas-default"),
          ("rea-default", "fnas-default-cal"), ("tpe-default", "fnas-default-cal"),
          ("ppo-default", "fnas-default-cal"), ("fnas-default", "fnas-default-cal"),
          # issue 35: transfer (another resolution, another task) against fnas from scratch
          # (fnas-decompose, the default), with either knowledge rule, and rule against rule
          ("fnas-decompose", "fnas-res14"), ("fnas-decompose", "fnas-res14-judge"),
          ("fnas-decompose", "fnas-from-mnist5k"), ("fnas-decompose", "fnas-from-mnist5k-judge"),
          ("fnas-res14-judge", "fnas-res14"), ("fnas-from-mnist5k-judge", "fnas-from-mnist5k"))
"""(baseline, variant): compute to target of the baseline / of the variant, medians."""
BOOT = 2000


def _real(row: dict[str, Any]) -> bool:
    return row["status"] == "ok" and "p" not in row["flags"]


def reach(curve: list[dict[str, Any]], target: float, budget: float) -> float:
    """Compute at which the best real reward first reaches ``target``; inf if not within
    ``budget``."""
    for row in curve:
        if row["compute"] > budget:
            break
        if _real(row) and reaches(row["reward"], target):
            return row["compute"]
    return math.inf


def best_within(curve: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """The best real result within ``budget``: reward, architecture, its cost factor
    (reward / accuracy: MnasNet's (MACs / T)^w, which does not depend on training)."""
    best = None
    for row in curve:
        if row["compute"] > budget:
            break
        if _real(row) and (best is None or row["reward"] > best["reward"]):
            best = row
    if best is None:
        return {"reward": None, "arch": None, "cost_factor": None, "macs": None}
    factor = best["reward"] / best["accuracy"] if best["accuracy"] else None
    return {"reward": best["reward"], "arch": best["arch"], "cost_factor": factor,
            "macs": best.get("macs")}


def bootstrap_median(values: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Median and its bootstrap 95% interval (percentiles of resampled medians; an infinite
    value, a miss, sorts above every finite one)."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(v, size=(BOOT, len(v)), replace=True), axis=1)
    return (float(np.median(v)), float(np.percentile(meds, 2.5, method="lower")),
            float(np.percentile(meds, 97.5, method="higher")))


def _stat(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    return {"median": float(np.median(values)), "min": float(np.min(values)),
            "max": float(np.max(values)), "n": len(values)}


def targets_for(reference: dict[str, Any], objective: str = "mnas") -> dict[str, float]:
    """The targets of ``objective``: the reference's top-1% and top-0.2% quantiles of the
    reward (``mnas``, its ``summary.targets``) or of the held-out accuracy (``accuracy``, from
    its trainings, the same quantiles of the same 300 first trainings)."""
    if objective == "mnas":
        return {k: t["reward"] for k, t in reference["summary"]["targets"].items()}
    if objective != "accuracy":
        raise ValueError(f"objective {objective!r}: expected 'mnas' or 'accuracy'")
    acc = np.array([r["accuracy"] for r in reference["first"] if r["status"] == "ok"])
    return {k: float(np.quantile(acc, q)) for k, q in QUANTILES.items()}


def summarise(runs: list[dict[str, Any]], reference: dict[str, Any], budget: float,
              retrained: dict[str, dict], score: Callable[[str], float] | None = None,
              objective: str = "mnas") -> dict[str, Any]:
    """The table, ratios and per-run figures. ``score(arch)`` (the reference protocol's score
    under ``objective``) makes the incumbent metric the primary one; without it the primary
    metric is the run's own best (``own_best``)."""
    targets = targets_for(reference, objective)
    metric = "incumbent" if score is not None else "own_best"

    def reach_of(curve: list[dict[str, Any]], t: float, confirm: int = 1) -> float:
        if score is None:
            return reach(curve, t, budget)
        return reach_incumbent(curve, t, budget, score, confirm)

    per_run: dict[str, Any] = {}
    for r in runs:
        c = r["curve"]
        inside = [x for x in c if x["compute"] <= budget]
        b = best_within(c, budget)
        re = retrained.get(b["arch"]) if b["arch"] else None
        confirm = _confirm(r)
        inc = final_incumbent(c, budget, confirm) if score is not None else None
        per_run[f"{r['variant']}-s{r['seed']}"] = {
            "variant": r["variant"], "seed": r["seed"],
            "reach": {k: reach_of(c, t, confirm) for k, t in targets.items()},
            "reach_own_best": {k: reach(c, t, budget) for k, t in targets.items()},
            "incumbent": None if inc is None else {
                "arch": inc["arch"], "own_reward": inc["reward"],
                "reference_score": score(inc["arch"])},
            **b, "retrained_accuracy": re["accuracy"] if re else None,
            "retrained_reward": (re["accuracy"] * b["cost_factor"]
                                 if re and re["accuracy"] and b["cost_factor"] else None),
            "trainings": sum("t" in x["flags"] for x in inside),
            "cached": sum("c" in x["flags"] for x in inside),
            "predicted": sum("p" in x["flags"] for x in inside),
            "replayed": sum("r" in x["flags"] for x in inside),
            "low_fidelity": sum(not full_fidelity(x) for x in inside),
            "macs_trained": _median([x.get("macs") for x in inside
                                     if "t" in x["flags"] and _real(x)]),
            "compute_total": c[-1]["compute"] if c else 0.0,
            "learning": _learning(inside)}
        p = per_run[f"{r['variant']}-s{r['seed']}"]
        # trainings up to each target's compute (the trainings a run needed, whatever their
        # CPU-s), the CPU-s per training of the whole run, and its machine against the
        # reference's (ablation_mnist5k.calibrate; runs made before it have none)
        p["trainings_to"] = {k: sum("t" in x["flags"] for x in c if x["compute"] <= p["reach"][k])
                             if math.isfinite(p["reach"][k]) else None for k in targets}
        n_trained = sum("t" in x["flags"] for x in c)
        p["cpu_s_per_training"] = p["compute_total"] / n_trained if n_trained else None
        p["calibration"] = f = (r.get("calibration") or {}).get("factor")
        if f:  # the same in the reference machine's CPU-s (a miss: > C / f there)
            p["reach_calibrated"] = {k: x / f for k, x in p["reach"].items()}
            p["budget_calibrated"] = budget / f
    table: dict[str, Any] = {}
    for v in dict.fromkeys(r["variant"] for r in runs):
        rows = [p for p in per_run.values() if p["variant"] == v]
        row: dict[str, Any] = {"runs": len(rows)}
        for k in targets:
            row[k] = _reach_cell([p["reach"][k] for p in rows])
        if score is not None:
            row["own_best"] = {k: _reach_cell([p["reach_own_best"][k] for p in rows])
                               for k in targets}
        row["incumbent_score"] = _stat([p["incumbent"]["reference_score"] for p in rows
                                        if p["incumbent"] is not None])
        for key in ("reward", "retrained_accuracy", "retrained_reward", "trainings",
                    "cached", "predicted", "macs", "macs_trained"):
            row[key] = _stat([p[key] for p in rows if p[key] is not None])
        row["learning"] = _stat([p["learning"]["gain"] for p in rows
                                 if p["learning"]["gain"] is not None])
        row["trainings_to"] = {k: _stat([p["trainings_to"][k] for p in rows
                                         if p["trainings_to"][k] is not None]) for k in targets}
        for key in ("cpu_s_per_training", "calibration"):
            row[key] = _stat([p[key] for p in rows if p[key] is not None])
        if all("reach_calibrated" in p for p in rows):
            row["calibrated"] = {k: _reach_cell([p["reach_calibrated"][k] for p in rows])
                                 for k in targets}
            row["calibrated"]["budget"] = min(p["budget_calibrated"] for p in rows)
        table[v] = row

    def ratios_of(cells: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        return {f"{base}/{var}": {k: _ratio(cells(base)[k]["median"], cells(var)[k]["median"],
                                            budget) for k in targets}
                for base, var in RATIOS if base in table and var in table}

    out = {"metric": metric, "objective": objective, "budget": budget, "targets": targets,
           "table": table, "ratios": ratios_of(lambda v: table[v]), "per_run": per_run}
    if score is not None:
        out["ratios_own_best"] = ratios_of(lambda v: table[v]["own_best"])
    out["ratios_calibrated"] = calibrated_ratios(table, targets)
    out["post_hoc"] = stricter(runs, out, reference, reach_of)
    out["with_source"] = with_source(runs, out, reach_of)
    return out


def with_source(runs: list[dict[str, Any]], summary: dict[str, Any],
                reach_of: Callable[..., float] | None = None
                ) -> dict[str, Any]:
    """Compute to every target (pre-registered and post hoc) counting what the run's knowledge
    source cost, ``source_cpu_s`` (recorded by runs since 2026-12-01): is a source built for
    the purpose cheaper in total than fnas from scratch? Variants without a recorded source
    cost are left out; ``vs_scratch`` is fnas-scratch's median / this median. ``reach_of``:
    the summary's metric (default: the run's own best)."""
    if reach_of is None:
        def reach_of(curve: list[dict[str, Any]], t: float, confirm: int = 1) -> float:
            return reach(curve, t, summary["budget"])
    targets = {**summary["targets"], **(summary.get("post_hoc") or {}).get("targets", {})}
    scratch = [r for r in runs if r["variant"] == "fnas-scratch"]
    base = {k: float(np.median([reach_of(r["curve"], t, _confirm(r)) for r in scratch]))
            for k, t in targets.items()} if scratch else {}
    table: dict[str, Any] = {}
    for v in summary["table"]:
        rs = [r for r in runs if r["variant"] == v and r.get("source_cpu_s") is not None]
        if not rs or len(rs) < summary["table"][v]["runs"]:
            continue
        row: dict[str, Any] = {"source_cpu_s": float(np.median([r["source_cpu_s"] for r in rs]))}
        for k, t in targets.items():
            cell = _reach_cell([r["source_cpu_s"] + reach_of(r["curve"], t, _confirm(r))
                                for r in rs])
            if k in base:
                cell["vs_scratch"] = _ratio(base[k], cell["median"], summary["budget"])
            row[k] = cell
        table[v] = row
    return {"targets": targets, "table": table}


def _confirm(run: dict[str, Any]) -> int:
    """The run's ``confirm`` (racing, issue 34's robust incumbent; 1 for runs before it)."""
    return int(run.get("confirm") or 1)


def _reach_cell(vals: list[float]) -> dict[str, Any]:
    med, lo, hi = bootstrap_median(vals)
    return {"reached": sum(math.isfinite(x) for x in vals), "median": med, "ci95": [lo, hi],
            "values": vals}


def stricter(runs: list[dict[str, Any]], summary: dict[str, Any], reference: dict[str, Any],
             reach_of: Callable[..., float] | None = None
             ) -> dict[str, Any]:
    """Post hoc (chosen after the runs, not the issue's targets): the compute to two targets
    that a search cannot reach by size alone: ``reference_max``, the best score of the
    reference's uniform samples (reward, or accuracy under the accuracy objective), and
    ``rea_final``, REA's median final quality within C (what the strongest baseline ends
    with: its incumbent's reference score under the incumbent metric, its own best reward
    otherwise). ``reach_of``: the summary's metric (default: the run's own best)."""
    if reach_of is None:
        def reach_of(curve: list[dict[str, Any]], t: float, confirm: int = 1) -> float:
            return reach(curve, t, summary["budget"])
    targets = {}
    if summary.get("objective", "mnas") == "accuracy":
        acc = [r["accuracy"] for r in reference.get("first", []) if r["status"] == "ok"]
        if acc:
            targets["reference_max"] = float(max(acc))
    elif (reference["summary"].get("reward") or {}).get("max") is not None:
        targets["reference_max"] = reference["summary"]["reward"]["max"]
    rea = summary["table"].get("rea") or {}
    final = rea.get("incumbent_score") if summary.get("metric") == "incumbent" else \
        rea.get("reward")
    if final:
        targets["rea_final"] = final["median"]
    table = {v: {k: _reach_cell([reach_of(r["curve"], t, _confirm(r)) for r in runs
                                 if r["variant"] == v]) for k, t in targets.items()}
             for v in summary["table"]}
    return {"targets": targets, "table": table}


def _median(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else None


def _learning(rows: list[dict[str, Any]], k: int = 16) -> dict[str, Any]:
    """Mean reward of a run's first k and last k trainings within C: a policy that learns
    trains better architectures late than early (random search: no gain expected)."""
    rewards = [x["reward"] for x in rows if "t" in x["flags"] and x["status"] == "ok"]
    if len(rewards) < 2 * k:
        return {"first": None, "last": None, "gain": None}
    first, last = float(np.mean(rewards[:k])), float(np.mean(rewards[-k:]))
    return {"first": first, "last": last, "gain": last - first}


def calibrated_ratios(table: dict[str, Any], targets: dict[str, float]) -> dict[str, Any]:
    """The ratios of :data:`RATIOS` whose two variants have every run calibrated, in the
    reference machine's CPU-s (each run's CPU-s over its calibration factor): a machine that
    was slower during one variant's runs than another's does not count as the search's. A miss
    is > C / f, f the largest factor of the variant's runs (its smallest budget there)."""
    out = {}
    for base, var in RATIOS:
        a, b = table.get(base, {}).get("calibrated"), table.get(var, {}).get("calibrated")
        if a is None or b is None:
            continue
        out[f"{base}/{var}"] = {k: _ratio(a[k]["median"], b[k]["median"], a["budget"],
                                          b["budget"]) for k in targets}
    return out


def _ratio(base: float, var: float, budget: float,
           var_budget: float | None = None) -> dict[str, Any]:
    """base / var with what is known when one of them missed (a miss is > C: ``budget`` for
    the baseline, ``var_budget``, by default the same, for the variant)."""
    if math.isfinite(base) and math.isfinite(var):
        return {"ratio": base / var, "kind": "="}
    if math.isfinite(var):  # the baseline missed: at least C / var
        return {"ratio": budget / var, "kind": ">"}
    if math.isfinite(base):  # the variant missed: at most base / C
        return {"ratio": base / (budget if var_budget is None else var_budget), "kind": "<"}
    return {"ratio": None, "kind": "both missed"}


METRIC_LINES = {
    "incumbent": "CPU-s until the run's incumbent (its best full-fidelity real result so far, "
                 "by its own reward) scores the target under the reference protocol (trained "
                 "from scratch at the reference's proxy settings, mean of its seeds).",
    "own_best": "CPU-s until the run's own best real reward reaches the target (the issue-20 "
                "metric; no reference scores were asked for).",
}


def _fmt_reach(cell: dict[str, Any], budget: float) -> str:
    def f(x: float) -> str:
        return f"{x:.0f}" if math.isfinite(x) else f"> {budget:.0f}"

    lo, hi = cell["ci95"]
    return f"{f(cell['median'])} [{f(lo)}, {f(hi)}]"


def table_md(summary: dict[str, Any]) -> str:
    b, t = summary["budget"], summary["targets"]
    keys = list(t)
    head = " | ".join(f"reached {k} | CPU-s to {k} (target {t[k]:.4f}): median [95% CI]"
                      for k in keys)
    incumbent = summary.get("metric") == "incumbent"
    what = ("accuracy" if summary.get("objective") == "accuracy" else "reward")
    lines = [f"Compute budget C = {b:.0f} CPU-seconds per run; objective "
             f"{summary.get('objective', 'mnas')}; targets: the reference's {what} quantiles "
             + ", ".join(f"{k} = {v:.4f}" for k, v in t.items()) + ".", "",
             "Metric: " + (METRIC_LINES["incumbent"] if incumbent
                           else METRIC_LINES["own_best"]), "",
             f"| variant | runs | {head} | incumbent's reference score at C | "
             "best own reward within C | retrained accuracy | "
             "retrained reward | best's MACs (M) | median MACs trained (M) | trainings within C | "
             "late - early reward |",
             "|---|---:|" + "---:|---:|" * len(keys) + "---:|---:|---:|---:|---:|---:|---:|---:|"]

    def s(x: dict[str, Any] | None, fmt: str = "{:.4f}") -> str:
        if x is None:
            return "-"
        return f"{fmt.format(x['median'])} [{fmt.format(x['min'])}, {fmt.format(x['max'])}]"

    for v, row in summary["table"].items():
        cells = " | ".join(f"{row[k]['reached']}/{row['runs']} | {_fmt_reach(row[k], b)}"
                           for k in keys)
        lines.append(f"| {v} | {row['runs']} | {cells} | {s(row.get('incumbent_score'))} | "
                     f"{s(row['reward'])} | "
                     f"{s(row['retrained_accuracy'])} | {s(row['retrained_reward'])} | "
                     f"{s(_millions(row['macs']), '{:.2f}')} | "
                     f"{s(_millions(row['macs_trained']), '{:.2f}')} | "
                     f"{s(row['trainings'], '{:.0f}')} | {s(row['learning'], '{:+.4f}')} |")
    if summary["ratios"]:
        sources = (summary.get("with_source") or {}).get("table", {})
        lines += ["", "Ratios of median compute to target (baseline / variant; '>' where the "
                  "baseline missed within C, '<' where the variant did; the variant's "
                  "knowledge source's own CPU-s beside, not counted here: see 'source + run' "
                  "below):", "",
                  "| baseline / variant | " + " | ".join(keys) + " | variant's source CPU-s |",
                  "|---|" + "---:|" * (len(keys) + 1)]
        for name, r in summary["ratios"].items():
            cells = []
            for k in keys:
                x = r[k]
                cells.append("both missed" if x["ratio"] is None else
                             f"{'' if x['kind'] == '=' else x['kind'] + ' '}{x['ratio']:.2f}x")
            cost = sources.get(name.split("/", 1)[1], {}).get("source_cpu_s")
            cells.append("-" if cost is None else f"{cost:.0f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if incumbent:
        lines += ["", "For comparison, the old metric (issue 20): CPU-s until the run's own best "
                  "real reward reaches each target (`own_best`; fidelity and seed luck count):",
                  "", "| variant | " + " | ".join(f"reached {k} | CPU-s to {k}" for k in keys)
                  + " |", "|---|" + "---:|---:|" * len(keys)]
        for v, row in summary["table"].items():
            lines.append(f"| {v} | " + " | ".join(
                f"{row['own_best'][k]['reached']}/{row['runs']} | "
                f"{_fmt_reach(row['own_best'][k], b)}" for k in keys) + " |")
    post = summary.get("post_hoc") or {}
    if post.get("targets"):
        pk = list(post["targets"])
        lines += ["", "Post hoc, stricter targets (chosen after the runs): "
                  + ", ".join(f"{k} = {v:.4f}" for k, v in post["targets"].items()), "",
                  "| variant | " + " | ".join(f"reached {k} | CPU-s to {k}" for k in pk) + " |",
                  "|---|" + "---:|---:|" * len(pk)]
        for v, row in post["table"].items():
            lines.append(f"| {v} | " + " | ".join(
                f"{row[k]['reached']}/{len(row[k]['values'])} | {_fmt_reach(row[k], b)}"
                for k in pk) + " |")
    lines += _machine_md(summary)
    lines += _with_source_md(summary)
    return "\n".join(lines) + "\n"


def _machine_md(summary: dict[str, Any]) -> list[str]:
    """Trainings to each target and the CPU-s a training cost: whether a difference in CPU-s
    comes from the search or from the machine."""
    keys = list(summary["targets"])

    def s(x: dict[str, Any] | None, fmt: str) -> str:
        return "-" if x is None else (f"{fmt.format(x['median'])} [{fmt.format(x['min'])}, "
                                      f"{fmt.format(x['max'])}]")

    lines = ["", "Trainings and the machine: the trainings a run made up to each target "
             "(median [min, max] over the runs that reached it), the CPU-s per training of the "
             "whole run, and the machine's calibration factor (the run's CPU-s for two "
             "reference trainings over the reference's own; '-': a run made before "
             "calibration):", "",
             "| variant | " + " | ".join(f"trainings to {k}" for k in keys)
             + " | CPU-s per training | calibration factor |",
             "|---|" + "---:|" * (len(keys) + 2)]
    for v, row in summary["table"].items():
        if "trainings_to" not in row:
            continue
        lines.append(f"| {v} | " + " | ".join(s(row["trainings_to"][k], "{:.0f}") for k in keys)
                     + f" | {s(row['cpu_s_per_training'], '{:.2f}')} | "
                     f"{s(row['calibration'], '{:.2f}')} |")
    cal = {v: row["calibrated"] for v, row in summary["table"].items() if "calibrated" in row}
    if cal:
        lines += ["", "Calibrated: CPU-s to each target in the reference machine's seconds (each "
                  "run's CPU-s over its calibration factor; variants whose every run has one; "
                  "a miss is > C / the largest factor):", "",
                  "| variant | " + " | ".join(f"reached {k} | calibrated CPU-s to {k}"
                                              for k in keys) + " |",
                  "|---|" + "---:|---:|" * len(keys)]
        for v, c in cal.items():
            lines.append(f"| {v} | " + " | ".join(
                f"{c[k]['reached']}/{len(c[k]['values'])} | {_fmt_reach(c[k], c['budget'])}"
                for k in keys) + " |")
        if summary.get("ratios_calibrated"):
            lines += ["", "| baseline / variant, calibrated | " + " | ".join(keys) + " |",
                      "|---|" + "---:|" * len(keys)]
            for name, r in summary["ratios_calibrated"].items():
                lines.append(f"| {name} | " + " | ".join(
                    "both missed" if r[k]["ratio"] is None else
                    f"{'' if r[k]['kind'] == '=' else r[k]['kind'] + ' '}{r[k]['ratio']:.2f}x"
                    for k in keys) + " |")
    return lines


def _with_source_md(summary: dict[str, Any]) -> list[str]:
    ws = summary.get("with_source") or {}
    if not ws.get("table"):
        return []
    keys, b = list(ws["targets"]), summary["budget"]

    def vs(c: dict[str, Any]) -> str:
        x = c.get("vs_scratch")
        if x is None or x["ratio"] is None:
            return "-"
        return f"{'' if x['kind'] == '=' else x['kind'] + ' '}{x['ratio']:.2f}x"

    lines = ["", "Counting the knowledge source's own compute (source + run; a miss within the "
             "run's C is > C; fnas-scratch / this, medians):", "",
             "| variant | source CPU-s | " + " | ".join(
                 f"source + run to {k} | fnas-scratch / it" for k in keys) + " |",
             "|---|---:|" + "---:|---:|" * len(keys)]
    for v, row in ws["table"].items():
        lines.append(f"| {v} | {row['source_cpu_s']:.0f} | " + " | ".join(
            f"{_fmt_reach(row[k], b)} | {vs(row[k])}" for k in keys) + " |")
    return lines


def _millions(x: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if x is None else {k: (v / 1e6 if k != "n" else v) for k, v in x.items()}


def plot(runs: list[dict[str, Any]], summary: dict[str, Any], path: Path, task: str = "mnist5k"
         ) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, summary["budget"], 200)
    fig, ax = plt.subplots(figsize=(8, 5))
    names = list(summary["table"])
    palette = [f"C{i}" for i in range(10)] + ["black", "lime", "navy", "gold", "teal"]
    colours = [palette[i % len(palette)] for i in range(len(names))]  # 15 distinct ones
    for i, v in enumerate(names):
        rs = [r for r in runs if r["variant"] == v]
        m = np.full((len(rs), len(grid)), np.nan)
        for j, r in enumerate(rs):
            best, xs, ys = -np.inf, [], []
            for row in r["curve"]:
                if _real(row):
                    best = max(best, row["reward"])
                xs.append(row["compute"])
                ys.append(best if best > -np.inf else np.nan)
            idx = np.searchsorted(np.array(xs), grid, side="right") - 1
            ok = idx >= 0
            m[j, ok] = np.array(ys)[idx[ok]]
        with warnings.catch_warnings():  # before a run's first result its best is undefined
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(m, 0)
            lo, hi = np.nanpercentile(m, 25, 0), np.nanpercentile(m, 75, 0)
        ax.plot(grid, med, color=colours[i], label=f"{v} (n={len(rs)})",
                ls="-" if v.startswith("fnas") else "--")
        if len(rs) > 1:
            ax.fill_between(grid, lo, hi, color=colours[i], alpha=0.12, linewidth=0)
    for (k, t), ls in zip(summary["targets"].items(), (":", "-."), strict=False):
        ax.axhline(t, color="k", lw=0.8, ls=ls, label=f"target {k} of the reference")
    ax.set_xlabel("search compute (CPU-seconds: trainings + search overhead)")
    ax.set_ylabel("best real reward so far (the run's own)")
    ax.set_title(f"{task}, MnasNet space: median over seeds, IQR band")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the curves
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_outputs(out: Path, meta: dict[str, Any], summary: dict[str, Any],
                  runs: list[dict[str, Any]], retrained: dict[str, dict], task: str = "mnist5k"
                  ) -> str:
    """``ablation_TASK.{json,md,png}`` in ``out``; returns the table."""
    md = table_md(summary)
    (out / f"ablation_{task}.json").write_text(json.dumps(
        {**meta, "summary": summary, "retrained": retrained}, indent=1, default=_inf))
    (out / f"ablation_{task}.md").write_text(md)
    plot(runs, summary, out / f"ablation_{task}.png", task)
    return md


def _inf(x: Any) -> Any:
    raise TypeError(f"not JSON-able: {type(x).__name__}")
