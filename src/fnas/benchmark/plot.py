"""Benchmark plot: median best-so-far reward with its interquartile band, per strategy; the
benchmark's best and target threshold as lines where it has them (NAS-Bench-Macro, a table,
an objective)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["best_so_far_matrix", "plot_bench"]

_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "x")


def best_so_far_matrix(runs: list[dict[str, Any]], budget: int) -> np.ndarray:
    """(runs, budget) best-so-far rewards; a run that stopped early keeps its last value."""
    m = np.full((len(runs), budget), np.nan)
    for i, r in enumerate(runs):
        best = r["history"]["best"][:budget]
        if best:
            m[i, :len(best)] = best
            m[i, len(best):] = best[-1]
    return m


def plot_bench(result: dict[str, Any], path: str | None = None) -> Figure:
    """The figure of a benchmark result: x = queries (log), y = best reward so far; median
    line and IQR band per strategy. With ``path``, also written there as a PNG.

    The figure is not registered with pyplot (nothing to close, no display needed).
    """
    from matplotlib.figure import Figure

    cfg = result["config"]
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.subplots()
    x = np.arange(1, cfg["budget"] + 1)
    strategies = list(dict.fromkeys(r["strategy"] for r in result["runs"]))  # labels, as run
    for i, s in enumerate(strategies):
        runs = [r for r in result["runs"] if r["strategy"] == s]
        m = best_so_far_matrix(runs, cfg["budget"])
        scale = 100.0 if cfg["bench"] == "macro" else 1.0
        med = np.nanmedian(m, 0) * scale
        lo, hi = np.nanpercentile(m, 25, 0) * scale, np.nanpercentile(m, 75, 0) * scale
        # two strategies whose medians coincide (random and REA early on) stay both visible:
        # each its own dashes and markers, the first drawn widest and lowest, the last on top
        (line,) = ax.plot(x, med, label=f"{s} (n={len(runs)})", ls=_STYLES[i % len(_STYLES)],
                          marker=_MARKERS[i % len(_MARKERS)], markevery=(0.02 * i, 0.12),
                          ms=4, lw=2.4 - 1.4 * i / max(1, len(strategies) - 1), alpha=0.85,
                          zorder=2 + i)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0, zorder=1)
    if cfg["bench"] == "macro":
        from fnas.execution.evaluators import MacroTableEvaluator

        table = MacroTableEvaluator(cfg["data"]).table
        ax.axhline(table.best_acc, color="k", lw=0.8, ls="--", label="table best (mean acc)")
        t = result.get("truth") if cfg.get("target") else None  # a target --target chose
        if t:
            threshold, label = t["threshold"], f"target: {t['target']}"
        else:
            threshold = table.best_acc - cfg["target_delta"]
            label = f"target: within {cfg['target_delta']}"
        ax.axhline(threshold, color="gray", lw=0.8, ls=":", label=label)
        ax.set_ylim(table.best_acc - 3, table.best_acc + (1.0 if cfg["noisy"] else 0.5))
        ax.set_ylabel("best accuracy so far (%)" + (", observed (noisy)" if cfg["noisy"] else ""))
        title = f"NAS-Bench-Macro, {'noisy' if cfg['noisy'] else 'noiseless'}"
    elif result.get("truth"):  # a user's table or objective: its best and its target set
        t = result["truth"]
        ax.axhline(t["best"], color="k", lw=0.8, ls="--", label=f"best ({t['best_from']})")
        if t["threshold"] < t["best"]:
            ax.axhline(t["threshold"], color="gray", lw=0.8, ls=":",
                       label=f"target: {t['target']}")
        ax.set_ylabel("best score so far")
        source = cfg.get("table") or cfg.get("objective") or ""
        title = f"{cfg.get('space')}, {os.path.basename(str(source))}"
    else:
        ax.set_ylabel("best reward so far")
        title = f"proxy task {cfg['task']['dataset']}, {cfg['task']['epochs']} epochs"
    ax.set_xscale("log")
    ax.set_xlabel("queries (real evaluations)")
    ax.set_title(f"{title}: median and IQR over seeds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
