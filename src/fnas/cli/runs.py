"""``fnas runs``: the runs in a store, one line each."""

from __future__ import annotations

import argparse
from datetime import datetime

from fnas.cli._common import shown

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("runs", help="list the runs in a store", populate=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default="fnas-store")


def run(args: argparse.Namespace) -> int:
    from fnas.knowledge.store import Store

    with Store(args.store, create=False, readonly=True) as store:
        exps = store.list_experiments()
        if not exps:
            print(f"no runs in {args.store}")
            return 0
        print(f"{'id':>3}  {'name':<36}  {'status':<11}  {'done':>9}  {'trained':>7}  "
              f"{'best':>7}  created")
        for e in exps:
            s = store.summary(e.id)
            best = f"{s['best_reward']:.4f}" if s["best_reward"] is not None else "-"
            try:
                created = datetime.fromtimestamp(e.created).strftime("%Y-%m-%d %H:%M")
            except (OverflowError, OSError, ValueError):  # a damaged row
                created = "?"
            print(f"{e.id:>3}  {shown(e.name):<36}  {shown(e.status):<11}  "
                  f"{s['evaluated']:>4}/{e.budget:<4}  "
                  f"{s['trained']:>7}  {best:>7}  {created}")
    return 0
