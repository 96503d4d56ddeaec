"""The report's plots: each ``plot_*`` function returns a matplotlib ``Figure`` (or None when
the run recorded nothing to plot), drawn outside pyplot (no global state, no GUI backend);
:func:`figure_png` turns one into the PNG bytes the report embeds."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fnas.knowledge.describe import describe_run
from fnas.report.run_data import RunData, best_so_far, cost_of, critic_pairs, pareto_front, screened

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["figure_png", "plot_best", "plot_pareto", "plot_entropy", "plot_critic",
           "plot_screening", "plot_knowledge", "plot_pool", "plot_replay"]


def _figure(figsize: tuple[float, float], ncols: int = 1) -> tuple[Figure, Any]:
    """A new Figure and its axes (one, or an array of ``ncols``), not registered with pyplot:
    nothing to close, and no display needed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(1, ncols)


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes, cropped to its content, as the report embeds it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _cost_label(run: RunData) -> str:
    if run.metric == "macs" or not any(e.latency_ms for e in run.real):
        return "multiply-adds (M, log scale)"
    return "latency (ms, log scale)"


def _counted(ax: Any) -> None:
    """Integer ticks on ``ax``'s x axis, which counts (updates, trainings): never 1.5."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_best(runs: Sequence[RunData]) -> Figure | None:
    """Best-so-far real reward against real trainings and against training seconds (None: no
    run has a real result yet)."""
    if not any(len(best_so_far(run)[2]) for run in runs):
        return None
    fig, axes = _figure((10, 3.8), 2)
    for run in runs:
        n, s, y = best_so_far(run)
        if len(y):
            axes[0].step(n, y, where="post", label=run.exp.name)
            axes[1].step(s, y, where="post", label=run.exp.name)
    axes[0].set_xlabel("real trainings")
    _counted(axes[0])
    axes[1].set_xlabel("training compute (cumulative rollout seconds)")
    for ax in axes:
        ax.set_ylabel("best real reward so far")
        ax.grid(alpha=0.3)
    if axes[0].lines:  # a run with no real result draws no line, and needs no legend
        axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Best-so-far reward")
    return fig


def _points(run: RunData, metric: str) -> list[tuple[float, float]]:
    """``(cost, accuracy)`` of the run's real evaluations that have both (a cost above 0)."""
    return [(c, e.accuracy) for e in run.real if e.accuracy is not None
            and (c := cost_of(e, metric)) is not None and c > 0]


def plot_pareto(runs: Sequence[RunData]) -> Figure | None:
    """Every real evaluation as accuracy against cost on a log axis (one slow architecture
    does not flatten the front), each run's Pareto front, the target (None: no evaluation
    recorded a cost, as an objective that returns the accuracy alone)."""
    metric = runs[0].metric
    if not any(_points(run, metric) for run in runs):
        return None
    fig, ax = _figure((7, 4.5))
    for i, run in enumerate(runs):
        pts = _points(run, metric)
        if not pts:
            continue
        c, a = zip(*pts, strict=True)
        color = f"C{i}"
        label = run.exp.name if len(runs) > 1 else "evaluations"
        ax.scatter(c, a, s=14, alpha=0.5, color=color, label=label)
        fc, fa = zip(*pareto_front(pts), strict=True)
        ax.step(fc, fa, where="post", color=color, lw=1.6,
                label="Pareto front" if len(runs) == 1 else None)
    t = runs[0].target
    if t is not None:
        t_plot = t / 1e6 if metric == "macs" else t
        ax.axvline(t_plot, color="k", ls="--", lw=1, label=f"target T = {t_plot:g}")
    from matplotlib.ticker import LogFormatter

    ax.set_xscale("log")
    for set_formatter in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
        set_formatter(LogFormatter())  # 0.5, 2, 10: plain numbers, not 10^0
    ax.set_xlabel(_cost_label(runs[0]))
    # the proxy task's accuracy is measured on held-out images; an objective's is its own
    proxy = all(describe_run(run.exp).kind == "proxy" for run in runs)
    ax.set_ylabel("held-out accuracy" if proxy else "accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Every real evaluation: accuracy against cost")
    return fig


def plot_entropy(run: RunData) -> Figure | None:
    """The policy's entropy per update (None: no policy)."""
    key = "controller/entropy" if any("controller/entropy" in u for u in run.updates) \
        else "losses/entropy"  # screening measures it after its updates
    ups = [u for u in run.updates if key in u]
    if not ups:
        return None
    fig, ax = _figure((7, 3.2))
    ax.plot([u["iteration"] + 1 for u in ups], [u[key] for u in ups], marker=".")
    floor = ups[-1].get("controller/entropy_floor")
    if floor is not None:
        ax.axhline(floor, c="k", ls=":", lw=1, label="entropy floor")
        ax.legend(fontsize=8)
    ax.set_xlabel("policy update")
    _counted(ax)
    ax.set_ylabel("mean entropy per decision (nats)")
    ax.grid(alpha=0.3)
    ax.set_title("Policy entropy per update")
    return fig



def plot_critic(run: RunData) -> Figure | None:
    """The critic's predictions against the real rewards (None: nothing to check)."""
    pairs = critic_pairs(run)
    if not pairs:
        return None
    fig, ax = _figure((5.5, 5))
    p, r, s, a = (np.array(x) for x in zip(*pairs, strict=True))
    picked = "picked by the acquisition" if screened(run) is not None \
        else "trained (uncertain or promising)"
    for mask, label, marker in ((a, "audited (confident, trained anyway)", "o"),
                                (~a, picked, "x")):
        if mask.any():
            ax.errorbar(p[mask], r[mask], xerr=s[mask], fmt=marker, ms=5, alpha=0.7,
                        elinewidth=0.8, label=label)
    lo, hi = float(min(p.min(), r.min())), float(max(p.max(), r.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="prediction = truth")
    ax.set_xlabel("critic's prediction (error bar: ensemble spread)")
    ax.set_ylabel("real reward")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Critic against the truth")
    return fig



def plot_screening(run: RunData) -> Figure | None:
    """What the critic screened out per round, and its Kendall tau (None: no screening)."""
    ups = [u for u in run.updates if "screen/screened" in u]
    if not ups:
        return None
    fig, ax = _figure((11, 3.4), 2)
    x = [u["n_trained"] for u in ups]
    ax[0].bar(x, [u["screen/screened"] for u in ups], width=max(1.0, 0.8 * (x[0] or 1)),
              label="screened out")
    ax[0].set_xlabel("real trainings so far")
    ax[0].set_ylabel("candidates per round")
    _counted(ax[0])
    _counted(ax[1])
    ax[0].set_title("What the critic screened out per round")
    ax[0].grid(alpha=0.3)
    tau = [(u["n_trained"], u.get("critic/pick_tau")) for u in ups]
    tau = [(n, t) for n, t in tau if t is not None and not np.isnan(t)]
    if tau:
        ax[1].plot(*zip(*tau, strict=True), marker=".")
    ax[1].axhline(0, c="k", lw=0.8)
    ax[1].set_xlabel("real trainings so far")
    ax[1].set_ylabel("Kendall tau")
    ax[1].set_title("Critic's ranking of its own picks (last 64)")
    ax[1].grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_knowledge(run: RunData) -> Figure | None:
    """The earlier runs' knowledge per round: its trust and its share of the critic's fit
    (issue 35; None: no knowledge weighed)."""
    ups = [u for u in run.updates if "knowledge/trust" in u]
    if not ups:
        return None
    fig, ax = _figure((6, 3.4))
    x = [u["n_trained"] for u in ups]
    ax.plot(x, [u["knowledge/trust"] for u in ups], marker=".", label="trust")
    ax.plot(x, [u["knowledge/share"] for u in ups], marker=".", label="share of the fit")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("real trainings so far")
    _counted(ax)
    ax.set_title("Knowledge weighed per round")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_pool(run: RunData) -> Figure | None:
    """The knowledge pool's hit ratio and coverage per training (None: pool off)."""
    pooled = [e for e in run.evals if e.trained and e.pool_hit_ratio is not None]
    if not pooled:
        return None
    fig, ax = _figure((7, 3.2))
    x = np.arange(1, len(pooled) + 1)
    ax.plot(x, [e.pool_hit_ratio for e in pooled], ".-", label="hit ratio (blocks initialised)")
    ax.plot(x, [e.pool_coverage or 0.0 for e in pooled], ".-",
            label="coverage (parameters copied)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("pool-initialised training")
    _counted(ax)
    ax.set_ylabel("share")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Knowledge pool: hit ratio and coverage")
    return fig


def plot_replay(run: RunData) -> Figure | None:
    """The replay buffer's importance weights, all and per update (None: no replay)."""
    ups = [u for u in run.updates if u.get("replay/c")]
    if not ups:
        return None
    fig, axes = _figure((10, 3.5), 2)
    allc = np.concatenate([np.asarray(u["replay/c"], dtype=float) for u in ups])
    axes[0].hist(allc, bins=30, color="C2")
    axes[0].set_xlabel("importance weight c = min(c_max, pi / mu_b)")
    axes[0].set_ylabel("replayed samples")
    axes[0].set_title(f"All replayed samples (n = {len(allc)})")
    it = [u["iteration"] + 1 for u in ups]
    for q in ("p10", "p50", "p90"):
        axes[1].plot(it, [u.get(f"replay/c_{q}", np.nan) for u in ups], ".-", label=q)
    axes[1].set_xlabel("policy update")
    _counted(axes[1])
    axes[1].set_ylabel("c")
    axes[1].set_title("Quantiles of c per update")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig
