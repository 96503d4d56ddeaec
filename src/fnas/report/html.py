"""``fnas report``: one self-contained HTML file per run (or a comparison of runs).

Everything is read from the store; nothing is recomputed or trained. Each ``plot_*``
function returns a matplotlib ``Figure`` (or None when the run recorded nothing to plot),
drawn outside pyplot (no global state, no GUI backend); the report turns each one into PNG
bytes (:func:`figure_png`) embedded as base64, so the file opens offline, alone, anywhere.

A single run's report shows, where the run recorded it:

- best-so-far real reward against real trainings and against training compute (the
  rollouts' cumulative training seconds);
- every real evaluation as accuracy against latency (or multiply-adds), with the Pareto front
  and the target T;
- the policy entropy per update;
- the critic's predictions against the real reward of the samples it was asked about and that
  were trained anyway (audits marked);
- the knowledge pool's hit ratio and coverage per pool-initialised training;
- the replay buffer's importance weights c (all of them, and their quantiles per update);
- a table of the top architectures, and the experiment's config.

``--compare`` puts several runs' best-so-far curves and Pareto fronts on the same axes, with a
summary table and each run's config.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fnas.errors import ConfigError
from fnas.knowledge.store import Evaluation, Experiment, Store

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RunData", "load_run", "render_report", "render_compare", "write_report",
           "pareto_front", "best_so_far", "figure_png", "plot_best", "plot_pareto",
           "plot_entropy", "plot_critic", "plot_screening", "plot_pool", "plot_replay"]


@dataclass
class RunData:
    """What a report needs from one run."""

    exp: Experiment
    evals: list[Evaluation]
    updates: list[dict[str, Any]]
    summary: dict[str, Any]
    top: list[Evaluation]

    @property
    def real(self) -> list[Evaluation]:
        """Real results (trained or reused from the cache), status ok, in recording order."""
        return [e for e in self.evals if not e.predicted and e.status == "ok"]

    @property
    def metric(self) -> str:
        return str(self.exp.config.get("reward", {}).get("metric", "latency"))

    @property
    def target(self) -> float | None:
        t = self.exp.config.get("reward", {}).get("target")
        return float(t) if t is not None else None


def load_run(store: Store, ref: int | str, top: int = 10) -> RunData:
    """Read one run. Raises :class:`~fnas.errors.StoreError` for an unknown run."""
    exp = store.get_experiment(ref)
    return RunData(exp, store.evaluations(exp.id), store.updates(exp.id),
                   store.summary(exp.id), store.top(exp.id, top))


# ---- series -------------------------------------------------------------------------------
def best_so_far(run: RunData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(real trainings so far, training seconds so far, best real reward so far)`` after
    every evaluation that set a new best (a step function's corners, the first one included)."""
    n = secs = 0.0
    best = -math.inf
    xs, ss, ys = [], [], []
    for e in run.evals:
        n += e.trained
        secs += e.train_seconds if e.trained else 0.0
        if e.status == "ok" and not e.predicted and e.reward > best:
            best = e.reward
            xs.append(n)
            ss.append(secs)
            ys.append(best)
    if ys:  # carry the last best to the end of the run
        xs.append(n)
        ss.append(secs)
        ys.append(best)
    return np.array(xs), np.array(ss), np.array(ys)


def cost_of(e: Evaluation, metric: str) -> float | None:
    """The evaluation's cost on the reward's metric: latency (ms) or multiply-adds (M)."""
    if metric == "macs":
        return e.macs / 1e6 if e.macs else None
    return e.latency_ms if e.latency_ms else (e.macs / 1e6 if e.macs else None)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, accuracy) points no other point beats on both (lower cost, higher
    accuracy), by increasing cost."""
    front: list[tuple[float, float]] = []
    for c, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or a > front[-1][1]:
            front.append((c, a))
    return front


# ---- plots --------------------------------------------------------------------------------
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
        return "multiply-adds (M)"
    return "latency (ms)"


def plot_best(runs: Sequence[RunData]) -> Figure:
    """Best-so-far real reward against real trainings and against training seconds."""
    fig, axes = _figure((10, 3.8), 2)
    for run in runs:
        n, s, y = best_so_far(run)
        if len(y):
            axes[0].step(n, y, where="post", label=run.exp.name)
            axes[1].step(s, y, where="post", label=run.exp.name)
    axes[0].set_xlabel("real trainings")
    axes[1].set_xlabel("training compute (cumulative rollout seconds)")
    for ax in axes:
        ax.set_ylabel("best real reward so far")
        ax.grid(alpha=0.3)
    if axes[0].lines:  # a run with no real result draws no line, and needs no legend
        axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Best-so-far reward")
    return fig


def plot_pareto(runs: Sequence[RunData]) -> Figure:
    """Every real evaluation as accuracy against cost, each run's Pareto front, the target."""
    fig, ax = _figure((7, 4.5))
    metric = runs[0].metric
    for i, run in enumerate(runs):
        pts = [(cost_of(e, metric), e.accuracy) for e in run.real
               if e.accuracy is not None and cost_of(e, metric) is not None]
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
    ax.set_xlabel(_cost_label(runs[0]))
    ax.set_ylabel("held-out accuracy")
    ax.grid(alpha=0.3)
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
    ax.set_ylabel("mean entropy per decision (nats)")
    ax.grid(alpha=0.3)
    ax.set_title("Policy entropy per update")
    return fig


def critic_pairs(run: RunData) -> list[tuple[float, float, float, bool]]:
    """``(predicted, real, spread, audited)`` of every sample the critic predicted and that
    was trained anyway (audits, promising ones, a distrusted critic's)."""
    return [(e.predicted_reward, e.reward, e.predicted_spread or 0.0, e.audited)
            for e in run.evals if e.trained and e.status == "ok"
            and e.predicted_reward is not None]


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


def screened(run: RunData) -> int | None:
    """Candidates the critic scored and did not train, over the run (None: no screening)."""
    ups = [u for u in run.updates if "screen/screened" in u]
    return int(sum(u["screen/screened"] for u in ups)) if ups else None


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
    axes[1].set_ylabel("c")
    axes[1].set_title("Quantiles of c per update")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


# ---- HTML ---------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em} .muted{color:#666;font-size:.92em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0} th,td{border:1px solid #ddd;
padding:.25em .5em;text-align:right;vertical-align:top} th{background:#f4f4f4}
td.arch{text-align:left;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;
word-break:break-all;max-width:480px} img{max-width:100%;height:auto;display:block;
margin:.5em 0} pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.82em}
.kv td{text-align:left;min-width:6em} .kv th{text-align:left;font-weight:600}
.note{background:#fff8e1;border-left:3px solid #f0b400;padding:.4em .7em;font-size:.92em}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: Any, nd: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "-"
        return f"{x:.{nd}f}"
    return _e(x)


def _img(fig: Figure | None, alt: str, missing: str) -> str:
    if fig is None:
        return f'<p class="note">{_e(missing)}</p>'
    b64 = base64.b64encode(figure_png(fig)).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _flags(e: Evaluation) -> str:
    return ", ".join(f for f in ("trained", "cached", "predicted", "audited") if getattr(e, f))


def _top_table(run: RunData) -> str:
    if not run.top:
        return '<p class="note">No successful real evaluation recorded yet.</p>'
    rows = []
    for i, e in enumerate(run.top, 1):
        rows.append(
            f"<tr><td>{i}</td><td>{_fmt(e.reward)}</td><td>{_fmt(e.accuracy)}</td>"
            f"<td>{_fmt(e.latency_ms, 2)}</td><td>{_fmt(e.macs / 1e6 if e.macs else None, 2)}"
            f"</td><td>{_fmt(e.params / 1e6 if e.params else None, 3)}</td>"
            f"<td>{_fmt(e.epochs)}</td><td>{_e(_flags(e))}</td><td>{e.iteration}:{e.slot}</td>"
            f'<td class="arch">{_e(e.arch)}</td></tr>')
    return ("<table><tr><th>rank</th><th>reward</th><th>accuracy</th><th>latency ms</th>"
            "<th>MACs (M)</th><th>params (M)</th><th>epochs</th><th>flags</th>"
            "<th>iter:slot</th><th>architecture (block string)</th></tr>"
            + "".join(rows) + "</table>"
            f'<p class="muted">Use one: <code>fnas train {_e(run.exp.name)}:1 --task ...</code>'
            f" or <code>fnas export {_e(run.exp.name)}:1 --format onnx</code>.</p>")


def _summary_rows(run: RunData) -> list[tuple[str, str]]:
    s, st, exp = run.summary, run.exp.stats, run.exp
    n_pred = sum(e.predicted for e in run.evals)
    n_aud = sum(e.audited for e in run.evals)
    rows = [("strategy", exp.strategy), ("status", exp.status), ("seed", str(exp.seed)),
            ("budget", f"{exp.budget} ({exp.config.get('budget_counts', 'samples')})"),
            ("evaluations", str(s["evaluated"])),
            ("real trainings", str(s["trained"])), ("cached", str(s["cached"])),
            ("predicted by the critic", str(n_pred)), ("audits", str(n_aud)),
            ("failed", str(s["failed"])), ("best real reward", _fmt(s["best_reward"])),
            *([("screened out by the critic", str(screened(run)))]
              if screened(run) is not None else []),
            ("training seconds", _fmt(s["train_seconds"], 1))]
    if st.get("wall"):
        rows.append(("wall seconds (search)", _fmt(float(st["wall"]), 1)))
    rows += [("task", exp.task_signature), ("space", exp.space_signature),
             ("created", time.strftime("%Y-%m-%d %H:%M", time.localtime(exp.created))),
             ("updated", time.strftime("%Y-%m-%d %H:%M", time.localtime(exp.updated)))]
    return rows


def _kv(rows: list[tuple[str, str]], per_row: int = 3) -> str:
    """Key-value pairs, ``per_row`` pairs to a table row; long values get a row of their own."""
    short = [r for r in rows if len(r[1]) <= 40]
    long = [r for r in rows if len(r[1]) > 40]
    cells = ["".join(f"<th>{_e(k)}</th><td>{_e(v)}</td>" for k, v in short[i:i + per_row])
             for i in range(0, len(short), per_row)]
    cells += [f'<th>{_e(k)}</th><td class="arch" colspan="{2 * per_row - 1}">{_e(v)}</td>'
              for k, v in long]
    return '<table class="kv">' + "".join(f"<tr>{c}</tr>" for c in cells) + "</table>"


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _footer(store: Store) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("fnas")
    except PackageNotFoundError:
        v = "(not installed)"
    return (f'<p class="muted">Written by fnas {_e(v)} on '
            f"{time.strftime('%Y-%m-%d %H:%M')} from {_e(store.path)}.</p>")


def render_report(store: Store, run: RunData) -> str:
    """The HTML of one run's report."""
    exp = run.exp
    pairs = critic_pairs(run)
    body = [f"<h1>fnas run <code>{_e(exp.name)}</code></h1>",
            f'<p class="muted">{_e(exp.strategy)} search, {len(run.evals)} evaluations, '
            f"status {_e(exp.status)}.</p>", _kv(_summary_rows(run)),
            "<h2>Best-so-far reward</h2>", _img(plot_best([run]), "best so far", ""),
            "<h2>Accuracy against cost</h2>",
            _img(plot_pareto([run]), "pareto", ""),
            "<h2>Top architectures</h2>", _top_table(run),
            "<h2>Policy entropy</h2>",
            _img(plot_entropy(run), "entropy", "This strategy keeps no policy (no updates)."),
            "<h2>Critic</h2>"]
    n_scr = screened(run)
    if n_scr is not None:
        acq = exp.config.get("fnas", {}).get("acquisition", "ucb")
        body.insert(-1, f'<h2>Screening</h2><p class="muted">screened {n_scr}, trained '
                        f"{run.summary['trained']}: the critic scored every candidate and "
                        f"the acquisition ({_e(acq)}) picked what was trained.</p>"
                    + _img(plot_screening(run), "screening", ""))
    if pairs:
        err = float(np.mean([abs(p - r) for p, r, _, _ in pairs]))
        aud = [abs(p - r) for p, r, _, a in pairs if a]
        body.append(f'<p class="muted">{len(pairs)} predicted samples were trained; mean '
                    f"absolute error {err:.4f}"
                    + (f", on the {len(aud)} audits {float(np.mean(aud)):.4f}" if aud else "")
                    + f"; {sum(e.predicted for e in run.evals)} rewards were predicted "
                    "instead of trained.</p>")
    body.append(_img(plot_critic(run), "critic",
                     "No critic prediction was checked against a training in this run (critic "
                     "off, or no prediction recorded: stores before schema v4 did not keep "
                     "them)."))
    body += ["<h2>Knowledge pool</h2>",
             _img(plot_pool(run), "pool", "The knowledge pool was off in this run.")]
    pooled = [e for e in run.evals if e.trained and e.pool_hit_ratio is not None]
    if pooled:
        body.append(f'<p class="muted">{len(pooled)} pool-initialised trainings: mean hit '
                    f"ratio {np.mean([e.pool_hit_ratio for e in pooled]):.2f}, mean coverage "
                    f"{np.mean([e.pool_coverage or 0 for e in pooled]):.2f}.</p>")
    body += ["<h2>Replay buffer</h2>",
             _img(plot_replay(run), "replay", "Replay was off in this run (no replayed "
                  "sample).")]
    body += ["<h2>Config</h2>",
             f"<pre>{_e(json.dumps(exp.config, indent=2, sort_keys=True))}</pre>",
             _footer(store)]
    return _page(f"fnas report: {exp.name}", body)


def render_compare(store: Store, runs: Sequence[RunData]) -> str:
    """The HTML of several runs on the same axes."""
    head = ("<table><tr><th>run</th><th>strategy</th><th>status</th><th>evaluations</th>"
            "<th>real trainings</th><th>predicted</th><th>training s</th><th>best reward</th>"
            "<th>best architecture</th></tr>")
    rows = []
    for r in runs:
        s = r.summary
        rows.append(f"<tr><td>{_e(r.exp.name)}</td><td>{_e(r.exp.strategy)}</td>"
                    f"<td>{_e(r.exp.status)}</td><td>{s['evaluated']}</td><td>{s['trained']}"
                    f"</td><td>{sum(e.predicted for e in r.evals)}</td>"
                    f"<td>{_fmt(s['train_seconds'], 1)}</td><td>{_fmt(s['best_reward'])}</td>"
                    f'<td class="arch">{_e(r.top[0].arch) if r.top else "-"}</td></tr>')
    metrics = {r.metric for r in runs}
    body = [f"<h1>fnas: {len(runs)} runs compared</h1>", head + "".join(rows) + "</table>",
            "<h2>Best-so-far reward</h2>", _img(plot_best(runs), "best so far", "")]
    if len(metrics) == 1:
        body += ["<h2>Accuracy against cost</h2>", _img(plot_pareto(runs), "pareto", "")]
    else:
        body.append('<p class="note">The runs target different metrics: no shared Pareto '
                    "plot.</p>")
    body.append("<h2>Configs</h2>")
    for r in runs:
        body.append(f"<details><summary>{_e(r.exp.name)}</summary><pre>"
                    f"{_e(json.dumps(r.exp.config, indent=2, sort_keys=True))}</pre></details>")
    body.append(_footer(store))
    return _page("fnas report: " + ", ".join(r.exp.name for r in runs), body)


def write_report(store: Store, refs: Sequence[int | str], out: str | Path | None = None
                 ) -> Path:
    """Write the report of one run (or the comparison of several) and return its path
    (default ``./fnas-report-<run>.html``, or ``./fnas-compare.html``).

    Raises:
        StoreError: a run is unknown.
        ConfigError: the output file cannot be written, or no run is given.
    """
    if not refs:
        raise ConfigError("fnas report: name at least one run")
    runs = [load_run(store, r) for r in refs]
    if len(runs) == 1:
        text = render_report(store, runs[0])
        default = f"fnas-report-{runs[0].exp.name}.html"
    else:
        text = render_compare(store, runs)
        default = "fnas-compare.html"
    path = Path(out) if out is not None else Path(default)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write the report to {path}: {e.strerror or e}") from None
    return path
