"""``fnas show``: one run, its settings, progress and best architectures."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from fnas.cli._common import STOP_REASONS, json_text, one_line, positive_int, print_top, shown

__all__ = ["add_parser", "non_default_settings", "run"]

# printed on their own lines by ``fnas show``
_SHOWN = {"strategy", "seed", "batch", "budget", "task.dataset", "task.epochs",
          "reward.metric", "reward.target", "reward.mode", "space", "objective"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("show", help="show one run and its best architectures", populate=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run name or id (see 'fnas runs')")
    p.add_argument("--top", type=positive_int, default=5)
    p.add_argument("--store", default="fnas-store")
    p.add_argument("--json", action="store_true")


def _read(store: Any, exp: Any, k: int) -> tuple[dict[str, Any], list[Any], list[Any], int]:
    """The run's summary, best ``k`` and updates, past its damaged evaluation and update rows
    (said on stderr, one line each; the number of evaluations skipped is returned): a reader
    skips them, a resume refuses them."""
    from fnas.knowledge.readers import (
        readable_evaluations,
        readable_updates,
        skipped,
        summary_of,
        top_of,
    )

    ups, bad_ups = readable_updates(store, exp.id)
    if bad_ups:
        _warn(skipped(exp.name, bad_ups, "update"))
    evals, bad = readable_evaluations(store, exp.id)
    if not bad:
        return store.summary(exp.id), store.top(exp.id, k), ups, 0
    _warn(skipped(exp.name, bad))
    return summary_of(evals), top_of(evals, k), ups, len(bad)


def _warn(text: str) -> None:
    print(f"fnas show: warning: {one_line(text)}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from fnas.knowledge.store import Store

    with Store(args.store, create=False, readonly=True) as store:
        exp = store.get_experiment(args.run)
        s, best, ups, damaged = _read(store, exp, args.top)
    if args.json:
        print(json_text({"id": exp.id, "name": exp.name, "status": exp.status,
                         "strategy": exp.strategy, "seed": exp.seed, "budget": exp.budget,
                         "description": _description(exp),
                         "config": exp.config, "summary": s, "stats": exp.stats,
                         "damaged_evaluations": damaged, "updates": ups,
                         "top": [e.__dict__ for e in best]}))
        return 0
    cfg = exp.config
    print(f"run       {shown(exp.name)} (id {exp.id}, {shown(exp.status)})")
    for label, line in (("strategy", _strategy), ("task", _task), ("settings", _settings),
                        ("progress", _progress), ("pool", _pool), ("replay", _replay),
                        ("screening", _screening), ("knowledge", _knowledge),
                        ("stopped", _stopped), ("time", _time)):
        try:
            text = line(exp, cfg, s, ups)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
            # a stored value of the wrong kind (a damaged row that is still valid JSON)
            _warn(f"run {exp.name!r}: its {label} line is unreadable ({type(e).__name__}: "
                  f"{str(e)[:80]}): the store is damaged")
            continue
        if text:
            print(text)
    print_top(best)
    return 0


def _strategy(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    return (f"strategy  {shown(exp.strategy)}, seed {exp.seed}, batch {cfg.get('batch', '?')}, "
            f"budget {exp.budget}")


def _description(exp: Any) -> dict[str, Any] | None:
    """What the run is (:func:`fnas.knowledge.describe.describe_run`), for ``--json``."""
    from dataclasses import asdict

    from fnas.knowledge.describe import describe_run

    try:
        return asdict(describe_run(exp))
    except (TypeError, ValueError, KeyError, AttributeError):  # a damaged row
        return None


def _task(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    """What scored the run: the proxy task (dataset, epochs), your objective or an evaluator,
    then its space and the reward's cost target where it has one."""
    from fnas.knowledge.describe import describe_run

    d = describe_run(exp)
    return (f"{d.label:<9} {one_line(d.text)}\nspace     {one_line(d.space)}"
            + (f"\nreward    {d.reward}" if d.reward else ""))


def _settings(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    changed = non_default_settings(cfg)
    return textwrap.fill(", ".join(changed), width=96, initial_indent="settings  ",
                         subsequent_indent=" " * 10, break_on_hyphens=False) if changed else ""


def _progress(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    return (f"progress  {s['evaluated']} evaluated, {s['trained']} trained, "
            f"{s['cached']} cached, {s['failed']} failed")


def _pool(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    st = exp.stats
    if not st.get("pool/rollouts"):
        return ""
    return (f"pool      {st['pool/rollouts']} trainings from the pool, hit ratio "
            f"{st['pool/hit_ratio']:.3f}, coverage {st['pool/coverage']:.3f}")


def _replay(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    rep = [u for u in ups if "replay/n" in u]
    if not rep:
        return ""
    import numpy as np

    c = np.array([float(x) for u in rep for x in u.get("replay/c", [])])
    return (f"replay    {len(ups)} updates, {sum(int(u['replay/n']) for u in rep)} "
            f"replayed samples, weight c median {np.median(c):.3f} "
            f"[p10 {np.percentile(c, 10):.3f}, p90 {np.percentile(c, 90):.3f}]")


def _screening(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    scr = [u for u in ups if "screen/screened" in u]
    if not scr:
        return ""
    return (f"screening {sum(int(u['screen/screened']) for u in scr)} screened by the "
            f"critic, {s['trained']} trained "
            f"({cfg.get('fnas', {}).get('acquisition', 'ucb')}; "
            f"{sum(int(u['screen/warmup']) for u in scr)} warm-up rounds), policy "
            f"entropy {scr[-1].get('controller/entropy', float('nan')):.3f} per decision")


def _knowledge(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    """The earlier runs' knowledge weighed per round (issue 35): trust and share, first and
    last, and its lowest trust."""
    k = [u for u in ups if "knowledge/trust" in u]
    if not k:
        return ""
    trust = [float(u["knowledge/trust"]) for u in k]
    return (f"knowledge {exp.stats.get('knowledge/points', '?')} points weighed over {len(k)} "
            f"rounds: trust {trust[0]:.2f} -> {trust[-1]:.2f} (lowest {min(trust):.2f}), "
            f"share of the critic's fit {float(k[0]['knowledge/share']):.2f} -> "
            f"{float(k[-1]['knowledge/share']):.2f}")


def _stopped(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    st = exp.stats
    if not st.get("stop_reason"):
        return ""
    return (f"stopped   {STOP_REASONS.get(st['stop_reason'], st['stop_reason'])}"
            + (f": {st['stop_message']}" if st.get("stop_message") else ""))


def _time(exp: Any, cfg: dict, s: dict, ups: list) -> str:
    st = exp.stats
    if not st.get("wall"):
        return ""
    overhead = sum(st.get(k, 0.0) for k in ("sample", "update", "pool", "store", "checkpoint"))
    return (f"time      {st['wall']:.1f} s wall, {st.get('train', 0):.1f} s training, "
            f"search overhead {overhead:.2f} s ({100 * overhead / st['wall']:.2f}%)")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def non_default_settings(config: dict[str, Any]) -> list[str]:
    """``key=value`` for each setting of a stored run's ``config`` that differs from
    ``SearchConfig()``'s, nested ones by their dotted key (``fnas.screen.kappa=1.0``), as
    ``fnas search --set`` takes them; keys the defaults lack (a stored run's extras) are
    left out, and so are those ``fnas show`` prints on their own lines."""
    from fnas.search.config import SearchConfig

    def as_stored(d: dict[str, Any]) -> dict[str, Any]:  # JSON's lists where tuples were
        return _flat(json.loads(json.dumps(d, default=str)))

    default, stored = as_stored(SearchConfig().to_dict()), as_stored(config)
    return [f"{k}={json.dumps(v, default=str)}" for k, v in stored.items()
            if k in default and k not in _SHOWN and v != default[k]]
