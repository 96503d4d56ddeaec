"""``fnas pool stats``: what the knowledge pool holds and how much of it the trainings use;
``fnas pool prune``: give back the disk space of what no search will read again
(:func:`fnas.knowledge.prune_store`), and with ``--runs`` or ``--all`` of pool weights a later
search could still reuse."""

from __future__ import annotations

import argparse

from fnas.cli._common import json_text, positive_int
from fnas.errors import ConfigError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("pool", help="the knowledge pool of trained block weights",
                   populate=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["stats", "prune"],
                   help="stats: entries, hit ratio, coverage, disk; prune: remove pool "
                        "entries no search would pick again (a fresher one of the same block "
                        "exists), orphan and temporary files; evaluations and checkpoints "
                        "are kept")
    p.add_argument("--store", default="fnas-store")
    p.add_argument("--recent", type=positive_int, default=None,
                   help="stats: rollouts the hit ratio and coverage are averaged over (100)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--runs", default=None, metavar="RUN,RUN",
                   help="prune: also remove the pool entries these runs' trainings added "
                        "(weights a later search could reuse)")
    g.add_argument("--all", action="store_true",
                   help="prune: remove the whole pool (later searches start from scratch)")
    p.add_argument("--dry-run", action="store_true", help="prune: say what would go; remove "
                   "nothing")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from fnas.knowledge.pool import pool_stats
    from fnas.knowledge.store import Store

    if args.action == "prune":
        if args.recent is not None:
            raise ConfigError("--recent applies to 'fnas pool stats'")
        return _prune(args)
    given = [f for f, v in (("--runs", args.runs), ("--all", args.all),
                            ("--dry-run", args.dry_run)) if v]
    if given:
        raise ConfigError(f"{given[0]} applies to 'fnas pool prune'")
    args.recent = args.recent or 100

    with Store(args.store, create=False, readonly=True) as store:
        st = pool_stats(store)
        recent = store.recent_pooled(args.recent)
    hit = sum(e.pool_hit_ratio or 0.0 for e in recent) / len(recent) if recent else None
    cov = sum(e.pool_coverage or 0.0 for e in recent) / len(recent) if recent else None
    if args.json:
        print(json_text({**st.to_dict(), "recent_rollouts": len(recent),
                         "recent_hit_ratio": hit, "recent_coverage": cov}))
        return 0
    print(f"pool of {args.store}: {st.entries} entries in {st.files} files, "
          f"{st.disk_bytes / 2**20:.1f} MiB on disk"
          + (f", {st.missing} files MISSING" if st.missing else "")
          + (f", {st.corrupted} files CORRUPTED (skipped by searches)" if st.corrupted else ""))
    if recent:
        print(f"last {len(recent)} pool-initialised rollouts: hit ratio {hit:.3f}, "
              f"coverage {cov:.3f} (share of block parameters copied)")
    else:
        print("no pool-initialised rollout yet")
    for space in sorted(st.per_space):
        print(f"\nspace {space[:16]}: {st.per_space[space]} entries")
        print(f"{'stage':>5}  {'entries':>7}  {'configs':>7}  most frequent config")
        stages = sorted(i for (s, i) in st.per_stage if s == space)
        for i in stages:
            configs = {b: n for (s, j, b), n in st.per_config.items() if s == space and j == i}
            top = max(configs, key=configs.get)
            print(f"{i:>5}  {st.per_stage[(space, i)]:>7}  {len(configs):>7}  {top} "
                  f"(x{configs[top]})")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from fnas.knowledge.prune import prune_store
    from fnas.knowledge.store import Store

    runs = [r.strip() for r in (args.runs or "").split(",") if r.strip()]
    if args.runs is not None and not runs:
        raise ConfigError("--runs: expected run names or ids, separated by commas")
    with Store(args.store, create=False, readonly=args.dry_run) as store:
        rep = prune_store(store, runs=runs, everything=args.all, dry_run=args.dry_run)
    if args.json:
        print(json_text(rep.to_dict()))
        return 0
    verb = "would remove" if rep.dry_run else "removed"
    print(f"pool of {args.store}: {verb} {rep.entries} entries and {rep.files} files "
          f"({rep.bytes / 2**20:.1f} MiB); {rep.kept_entries} entries left "
          f"({rep.kept_bytes / 2**20:.1f} MiB); the runs' checkpoints hold "
          f"{rep.checkpoint_bytes / 2**20:.1f} MiB (kept)")
    return 0
