"""``fnas pool stats``: what the knowledge pool holds and how much of it the trainings use."""

from __future__ import annotations

import argparse

from fnas.cli._common import json_text, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("pool", help="the knowledge pool of trained block weights",
                   populate=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["stats"], help="stats: entries, hit ratio, coverage, disk")
    p.add_argument("--store", default="fnas-store")
    p.add_argument("--recent", type=positive_int, default=100,
                   help="rollouts the hit ratio and coverage are averaged over (100)")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from fnas.knowledge.pool import pool_stats
    from fnas.knowledge.store import Store

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
