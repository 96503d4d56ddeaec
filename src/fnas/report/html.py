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
- the earlier runs' knowledge weighed per round: its trust and its share of the critic's fit;
- the knowledge pool's hit ratio and coverage per pool-initialised training;
- the replay buffer's importance weights c (all of them, and their quantiles per update);
- a table of the top architectures, and the experiment's config.

``--compare`` puts several runs' best-so-far curves and Pareto fronts on the same axes, with a
summary table and each run's config.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fnas.errors import ConfigError
from fnas.knowledge.describe import buildable, describe_run
from fnas.knowledge.store import Evaluation, Store
from fnas.report.plots import (
    figure_png,
    plot_best,
    plot_critic,
    plot_entropy,
    plot_knowledge,
    plot_pareto,
    plot_pool,
    plot_replay,
    plot_screening,
)
from fnas.report.run_data import (
    RunData,
    best_so_far,
    critic_pairs,
    load_run,
    pareto_front,
    screened,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RunData", "load_run", "render_report", "render_compare", "write_report",
           "pareto_front", "best_so_far", "figure_png", "plot_best", "plot_pareto",
           "plot_entropy", "plot_critic", "plot_screening", "plot_knowledge", "plot_pool",
           "plot_replay"]


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


# the top table's optional columns: (heading, value of an evaluation); one that no ranked
# evaluation has (an objective that returns the accuracy alone) is left out
_COLUMNS = (("latency ms", lambda e: _fmt(e.latency_ms, 2)),
            ("MACs (M)", lambda e: _fmt(e.macs / 1e6 if e.macs else None, 2)),
            ("params (M)", lambda e: _fmt(e.params / 1e6 if e.params else None, 3)),
            ("epochs", lambda e: _fmt(e.epochs)))


def _top_table(store: Store, run: RunData) -> str:
    if not run.top:
        return '<p class="note">No successful real evaluation recorded yet.</p>'
    cols = [(h, f) for h, f in _COLUMNS if any(f(e) != "-" for e in run.top)]
    networks = buildable(run.top[0].arch)
    rows = []
    for i, e in enumerate(run.top, 1):
        rows.append(
            f"<tr><td>{i}</td><td>{_fmt(e.reward)}</td><td>{_fmt(e.accuracy)}</td>"
            + "".join(f"<td>{f(e)}</td>" for _, f in cols)
            + f"<td>{_e(_flags(e))}</td><td>{e.iteration}:{e.slot}</td>"
            f'<td class="arch">{_e(e.arch)}</td></tr>')
    return ("<table><tr><th>rank</th><th>reward</th><th>accuracy</th>"
            + "".join(f"<th>{_e(h)}</th>" for h, _ in cols)
            + "<th>flags</th><th>iter:slot</th><th>architecture"
            + (" (block string)" if networks else "") + "</th></tr>"
            + "".join(rows) + "</table>" + _use_hint(store, run, networks))


def _use_hint(store: Store, run: RunData, networks: bool) -> str:
    """How to use the best: ``fnas train`` / ``fnas export`` where its architectures are
    networks fnas builds (block strings), else its values from Python (a space of your own)."""
    name = _e(run.exp.name)
    if networks:
        return (f'<p class="muted">Use one: <code>fnas train {name}:1 --task ...</code> or '
                f"<code>fnas export {name}:1 --format onnx</code>.</p>")
    space = _e(run.exp.config.get("space", "..."))
    return ('<p class="muted">The best from Python: <code>search = fnas.create_search('
            f"{_e(json.dumps(str(store.root)))}, {_e(json.dumps(run.exp.name))}, "
            "space=your_space, load_if_exists=True)</code>, then "
            "<code>search.best_params</code> (its values; "
            f"<code>your_space</code>: the space <code>{space}</code> the run searched).</p>")


def _summary_rows(run: RunData) -> list[tuple[str, ...]]:
    """``(key, value)`` pairs, or ``(key, value, title)``: a short value whose long form is
    the cell's tooltip (and a details row)."""
    s, st, exp = run.summary, run.exp.stats, run.exp
    d = describe_run(exp)
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
    rows += [(d.label, d.text, d.signature), ("space", d.space),
             *([("reward", d.reward)] if d.reward else []),
             ("created", time.strftime("%Y-%m-%d %H:%M", time.localtime(exp.created))),
             ("updated", time.strftime("%Y-%m-%d %H:%M", time.localtime(exp.updated)))]
    return rows


def _kv(rows: list[tuple[str, ...]], per_row: int = 3) -> str:
    """Key-value pairs, ``per_row`` pairs to a table row; long values get a row of their own.
    A pair with a third item (its long form) shows it as the cell's tooltip, and in a closed
    ``<details>`` under the table."""
    short = [r for r in rows if len(r[1]) <= 40]
    long = [r for r in rows if len(r[1]) > 40]

    def cell(r: tuple[str, ...]) -> str:
        title = f' title="{_e(r[2])}"' if len(r) > 2 and r[2] != r[1] else ""
        return f"<th>{_e(r[0])}</th><td{title}>{_e(r[1])}</td>"

    cells = ["".join(cell(r) for r in short[i:i + per_row])
             for i in range(0, len(short), per_row)]
    cells += [cell(r).replace("<td", f'<td class="arch" colspan="{2 * per_row - 1}"', 1)
              for r in long]
    details = "".join(f'<details><summary class="muted">{_e(r[0])}: the full signature'
                      f'</summary><pre>{_e(r[2])}</pre></details>'
                      for r in rows if len(r) > 2 and r[2] != r[1])
    return ('<table class="kv">' + "".join(f"<tr>{c}</tr>" for c in cells) + "</table>"
            + details)


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
    d = describe_run(exp)
    pairs = critic_pairs(run)
    body = [f"<h1>fnas run <code>{_e(exp.name)}</code></h1>",
            f'<p class="muted">{_e(exp.strategy)} search of {_e(d.label)} {_e(d.text)}; '
            f"{len(run.evals)} evaluations, status {_e(exp.status)}.</p>",
            _kv(_summary_rows(run)), "<h2>Best-so-far reward</h2>",
            _img(plot_best([run]), "best so far", "No successful real evaluation yet.")]
    pareto = plot_pareto([run])  # left out where no evaluation has a cost
    if pareto is not None:
        body += ["<h2>Accuracy against cost</h2>", _img(pareto, "pareto", "")]
    body += ["<h2>Top architectures</h2>", _top_table(store, run),
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
    knowledge = plot_knowledge(run)
    if knowledge is not None:  # issue 35: earlier runs' knowledge weighed per round
        body += ["<h2>Knowledge from earlier runs</h2><p class=\"muted\">the critic's trust in "
                 "it (how well it predicted this run's results against the run's own) and its "
                 "share of the critic's fit, per round.</p>", _img(knowledge, "knowledge", "")]
    pooled = [e for e in run.evals if e.trained and e.pool_hit_ratio is not None]
    if pooled or d.kind == "proxy":  # the pool initialises fnas's own trainings only
        body += ["<h2>Knowledge pool</h2>",
                 _img(plot_pool(run), "pool", "The knowledge pool was off in this run.")]
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
            "<h2>Best-so-far reward</h2>",
            _img(plot_best(runs), "best so far", "No successful real evaluation yet.")]
    pareto = plot_pareto(runs) if len(metrics) == 1 else None
    if pareto is not None:
        body += ["<h2>Accuracy against cost</h2>", _img(pareto, "pareto", "")]
    elif len(metrics) > 1:
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
