"""``fnas show``: one run, its settings, progress and best architectures."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from fnas.cli._common import STOP_REASONS, json_text, positive_int, print_top, shown

__all__ = ["add_parser", "non_default_settings", "run"]

# printed on their own lines by ``fnas show``
_SHOWN = {"strategy", "seed", "batch", "budget", "task.dataset", "task.epochs",
          "reward.metric", "reward.target", "reward.mode"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("show", help="show one run and its best architectures", populate=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run name or id (see 'fnas runs')")
    p.add_argument("--top", type=positive_int, default=5)
    p.add_argument("--store", default="fnas-store")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from fnas.knowledge.store import Store

    with Store(args.store, create=False, readonly=True) as store:
        exp = store.get_experiment(args.run)
        s = store.summary(exp.id)
        best = store.top(exp.id, args.top)
        st = exp.stats
        overhead = sum(st.get(k, 0.0) for k in ("sample", "update", "pool", "store", "checkpoint"))
        if args.json:
            print(json_text({"id": exp.id, "name": exp.name, "status": exp.status,
                             "strategy": exp.strategy, "seed": exp.seed, "budget": exp.budget,
                             "config": exp.config, "summary": s, "stats": st,
                             "updates": store.updates(exp.id),
                             "top": [e.__dict__ for e in best]}))
            return 0
        cfg = exp.config
        task, rew = cfg.get("task", {}), cfg.get("reward", {})
        print(f"run       {shown(exp.name)} (id {exp.id}, {shown(exp.status)})")
        print(f"strategy  {shown(exp.strategy)}, seed {exp.seed}, batch "
              f"{cfg.get('batch', '?')}, budget {exp.budget}")
        print(f"task      {task.get('dataset', '?')}, {task.get('epochs', '?')} epochs, "
              f"reward {rew.get('metric', '?')} target {rew.get('target', '?')} "
              f"({rew.get('mode', '?')})")
        changed = non_default_settings(cfg)
        if changed:
            print(textwrap.fill(", ".join(changed), width=96, initial_indent="settings  ",
                                subsequent_indent=" " * 10, break_on_hyphens=False))
        print(f"progress  {s['evaluated']} evaluated, {s['trained']} trained, "
              f"{s['cached']} cached, {s['failed']} failed")
        if st.get("pool/rollouts"):
            print(f"pool      {st['pool/rollouts']} trainings from the pool, hit ratio "
                  f"{st['pool/hit_ratio']:.3f}, coverage {st['pool/coverage']:.3f}")
        ups = store.updates(exp.id)
        rep = [u for u in ups if "replay/n" in u]
        if rep:
            import numpy as np

            c = np.array([x for u in rep for x in u.get("replay/c", [])])
            print(f"replay    {len(ups)} updates, {sum(int(u['replay/n']) for u in rep)} "
                  f"replayed samples, weight c median {np.median(c):.3f} "
                  f"[p10 {np.percentile(c, 10):.3f}, p90 {np.percentile(c, 90):.3f}]")
        scr = [u for u in ups if "screen/screened" in u]
        if scr:
            print(f"screening {sum(int(u['screen/screened']) for u in scr)} screened by the "
                  f"critic, {s['trained']} trained "
                  f"({cfg.get('fnas', {}).get('acquisition', 'ucb')}; "
                  f"{sum(int(u['screen/warmup']) for u in scr)} warm-up rounds), policy "
                  f"entropy {scr[-1].get('controller/entropy', float('nan')):.3f} per decision")
        if st.get("stop_reason"):
            print(f"stopped   {STOP_REASONS.get(st['stop_reason'], st['stop_reason'])}"
                  + (f": {st['stop_message']}" if st.get("stop_message") else ""))
        if st.get("wall"):
            print(f"time      {st['wall']:.1f} s wall, {st.get('train', 0):.1f} s training, "
                  f"search overhead {overhead:.2f} s ({100 * overhead / st['wall']:.2f}%)")
        print_top(best)
    return 0


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

    default = _flat(SearchConfig().to_dict())
    stored = _flat(config)
    return [f"{k}={json.dumps(v, default=str)}" for k, v in stored.items()
            if k in default and k not in _SHOWN and v != default[k]]
