"""``fnas bench``: compare strategies over seeds on a benchmark (``BenchConfig``).

``--bench`` and ``--strategies`` take the registries' names (``fnas.benchmark.BENCHMARKS``,
``fnas.search.STRATEGIES``); defaults and help texts are ``BenchConfig``'s. Without
``--bench``, ``--table`` means the table benchmark, ``--objective`` the objective one, and
otherwise NAS-Bench-Macro.
"""

from __future__ import annotations

import argparse

from fnas.cli._common import positive_float, positive_int
from fnas.cli._config import (
    add_field,
    dataset_forms,
    field_default,
    field_help,
    fnas_from_args,
    replay_args,
    replay_from_args,
    screen_args,
)

__all__ = ["add_parser", "run"]

REAL_EPOCHS = 3
"""NOTE: ``fnas bench --bench real`` trains 3 proxy epochs unless told, shorter than
``TaskConfig``'s 5: a comparison runs strategies x seeds x budget trainings."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("bench", help="compare strategies over seeds on a benchmark",
                   description="Compare strategies over seeds: queries to a target set, "
                               "regret, knowledge transfer.", epilog=EXAMPLES,
                   formatter_class=argparse.RawDescriptionHelpFormatter, populate=_arguments)


EXAMPLES = """examples:
  fnas bench --data nas-bench-macro_cifar10.json                  # NAS-Bench-Macro
  fnas bench --space tiny:space --table scores.csv --metric acc --target top:5
  fnas bench --space tiny:space --objective tiny:score --target within:0.01 --optimum 0.97
  fnas bench --space tiny:space --table cifar.json --metric acc --strategies fnas \\
      --source-table svhn.json                                    # knowledge transfer

A table maps the space's architecture keys (space.decode(indices).key: '22212220' for
macro, 'depth=2,width=16' for a fnas.make_space space) to scores, higher is better."""


def _arguments(b: argparse.ArgumentParser) -> None:
    from fnas.benchmark.config import BENCHMARKS, BenchConfig
    from fnas.benchmark.truth import MISSING
    from fnas.search import STRATEGIES
    from fnas.tasks import TaskConfig

    c = BenchConfig
    add_field(b, "--bench", c, "bench", choices=sorted(BENCHMARKS), default=None,
              help="macro, table, objective or real (default: table with --table, objective "
                   "with --objective, else macro)")
    add_field(b, "--data", c, "data")
    add_field(b, "--space", c, "space")
    add_field(b, "--table", c, "table", metavar="FILE")
    add_field(b, "--metric", c, "metric", metavar="FIELD")
    add_field(b, "--cost", c, "cost", metavar="FIELD")
    add_field(b, "--missing", c, "missing", choices=list(MISSING))
    add_field(b, "--objective", c, "objective", metavar="MODULE:FUNCTION")
    add_field(b, "--optimum", c, "optimum", type=float)
    add_field(b, "--target", c, "target", metavar="top:K|within:D|score:X")
    add_field(b, "--task", TaskConfig, "dataset",
              help=f"real: {dataset_forms()} (default: {field_default(TaskConfig, 'dataset')})")
    b.add_argument("--epochs", type=positive_int, default=REAL_EPOCHS,
                   help=f"real: proxy epochs ({REAL_EPOCHS})")
    add_field(b, "--strategies", c, "strategies",
              default=",".join(field_default(c, "strategies")),
              help=f"comma-separated, of {','.join(sorted(STRATEGIES))} "
                   f"(default: {','.join(field_default(c, 'strategies'))})")
    add_field(b, "--seeds", c, "seeds", type=positive_int)
    add_field(b, "--budget", c, "budget", type=positive_int)
    add_field(b, "--batch", c, "batch", type=positive_int)
    b.add_argument("--noisy", action="store_true", help=field_help(c, "noisy", default=False))
    add_field(b, "--jobs", c, "jobs", type=int)
    add_field(b, "--source-flops", c, "source_flops", type=positive_float, metavar="M",
              help="macro: pre-train fnas on a source search with this FLOPs target (M)")
    add_field(b, "--source-table", c, "source_table", metavar="FILE")
    add_field(b, "--source-metric", c, "source_metric", metavar="FIELD")
    add_field(b, "--source-objective", c, "source_objective", metavar="MODULE:FUNCTION")
    add_field(b, "--source-budget", c, "source_budget", type=positive_int)
    add_field(b, "--knowledge-as", c, "knowledge_as", choices=["measurements", "rewards"])
    screen_args(b)
    b.add_argument("--source-invert", action="store_true",
                   help=field_help(c, "source_invert", default=False))
    replay_args(b)
    add_field(b, "--label", c, "label")
    b.add_argument("--out", default="bench-results", help="output folder (./bench-results)")
    b.add_argument("--name", default=None,
                   help="file stem (default bench-BENCH[-noisy][-transfer])")
    b.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    """The benchmark through :func:`fnas.api.bench.bench_config` and :func:`fnas.bench`, as
    from Python; this adds the flags' units and defaults, and the lines printed."""
    import fnas
    from fnas.api.bench import bench_config
    from fnas.benchmark.config import BenchConfig
    from fnas.benchmark.summary import format_summary
    from fnas.tasks import TaskConfig

    cfg = bench_config(
        args.space, table=args.table, metric=args.metric, objective=args.objective,
        target=args.target,
        bench=args.bench or (None if args.table or args.objective else "macro"),  # the default
        cost=args.cost, missing=args.missing, optimum=args.optimum,
        source_table=args.source_table, source_metric=args.source_metric,
        source_objective=args.source_objective, strategies=args.strategies, seeds=args.seeds,
        budget=args.budget, batch=args.batch, noisy=args.noisy, data=args.data,
        task=TaskConfig(dataset=args.task, epochs=args.epochs), jobs=args.jobs,
        source_flops=args.source_flops * 1e6 if args.source_flops else None,  # millions
        source_budget=args.source_budget, knowledge_as=args.knowledge_as,
        fnas=fnas_from_args(args), source_invert=args.source_invert,
        replay=args.replay or field_default(BenchConfig, "replay"),
        replay_cfg=replay_from_args(args), label=args.label)
    result = fnas.bench(config=cfg, out=args.out, name=args.name,
                        progress=not args.no_progress)
    js, png = result["files"]
    print(format_summary(cfg, result["summary"], result.get("truth")))
    print(f"wrote {js} and {png} ({result['seconds']:.0f} s)")
    return 0
