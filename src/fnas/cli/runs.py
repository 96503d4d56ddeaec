"""``fnas runs``: the runs in a store, one line each.

A run whose row is damaged is listed as ``damaged`` (its reason on stderr, and in ``--json``
as ``damaged``); a run with damaged evaluation rows is summed up from the others. One damaged
row never hides the other runs (:mod:`fnas.knowledge.readers`)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from fnas.cli._common import json_text, one_line, shown
from fnas.errors import StoreError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("runs", help="list the runs in a store", populate=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default="fnas-store")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per run (a damaged one has its reason in 'damaged')")


def _row(store: Any, e: Any) -> dict[str, Any]:
    """What the listing shows of one run (``damaged``: why it is, or None)."""
    from fnas.knowledge.readers import DamagedRun, readable_evaluations, skipped, summary_of

    out = {"id": e.id, "name": e.name, "status": e.status, "strategy": None, "budget": None,
           "evaluated": None, "trained": None, "best_reward": None, "created": None,
           "damaged": None}
    if isinstance(e, DamagedRun):
        return {**out, "damaged": e.reason}
    try:
        s = store.summary(e.id)
    except StoreError:  # a damaged evaluation row: sum up the others
        evals, bad = readable_evaluations(store, e.id)
        s = summary_of(evals)
        out["damaged"] = skipped(e.name, bad)
    return {**out, "strategy": e.strategy, "budget": e.budget, "evaluated": s["evaluated"],
            "trained": s["trained"], "best_reward": s["best_reward"], "created": e.created}


def run(args: argparse.Namespace) -> int:
    from fnas.knowledge.readers import scan_experiments
    from fnas.knowledge.store import Store

    with Store(args.store, create=False, readonly=True) as store:
        rows = [_row(store, e) for e in scan_experiments(store)]
    for r in rows:
        if r["damaged"]:
            print(f"fnas runs: warning: {one_line(r['damaged'])}", file=sys.stderr)
    if args.json:
        print(json_text(rows))
        return 0
    if not rows:
        print(f"no runs in {args.store}")
        return 0
    print(f"{'id':>3}  {'name':<36}  {'status':<11}  {'done':>9}  {'trained':>7}  "
          f"{'best':>7}  created")
    for r in rows:
        best = f"{r['best_reward']:.4f}" if r["best_reward"] is not None else "-"
        try:
            created = datetime.fromtimestamp(r["created"]).strftime("%Y-%m-%d %H:%M")
        except (OverflowError, OSError, ValueError, TypeError):  # a damaged row
            created = "?"
        done = (f"{r['evaluated']:>4}/{r['budget']:<4}" if r["budget"] is not None
                else f"{'-':>4}/{'-':<4}")
        trained = r["trained"] if r["trained"] is not None else "-"
        print(f"{r['id']:>3}  {shown(r['name']):<36}  {shown(r['status']):<11}  {done}  "
              f"{trained:>7}  {best:>7}  {created}")
    return 0
