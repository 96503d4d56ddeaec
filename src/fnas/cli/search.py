"""``fnas search``: run (or resume) an architecture search.

Its flags are ``SearchConfig``'s fields (and the task's, the reward's, fnas's), with their
choices from the registries (``fnas.search.STRATEGIES``, ``SPACES``): a registered strategy or
space is a valid ``--strategy`` or ``--space``. A flag left out keeps the config file's value
(``--config``), else the field's default.
"""

from __future__ import annotations

import argparse
import sys

from fnas.cli._common import (
    STOP_REASONS,
    nonneg_int,
    positive_float,
    positive_int,
    print_top,
    reward_args,
    reward_from_args,
    seed,
)
from fnas.cli._config import (
    add_field,
    dataset_forms,
    field_default,
    field_help,
    fnas_from_args,
    replay_args,
    replay_from_args,
    screen_args,
    set_args,
    settings_from_args,
)
from fnas.errors import ConfigError

__all__ = ["add_parser", "run"]

_NEW_RUN_ONLY = ("config", "space", "task", "strategy", "batch", "epochs", "image_size", "device",
                 "target_latency", "target_macs", "hard", "seed", "name", "knowledge",
                 "knowledge_as", "no_critic", "imagined", "decision_rule", "acquisition",
                 "candidates", "mutants", "policy",
                 "pool", "pool_epochs", "replay", "replay_share",
                 "replay_capacity", "replay_max_age", "replay_sampling", "correction", "c_max",
                 "budget_counts", "max_samples", "set")


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("search", help="run (or resume) an architecture search", populate=_arguments)


def _arguments(s: argparse.ArgumentParser) -> None:
    from fnas.execution.executors import EXECUTORS
    from fnas.search import SPACES, STRATEGIES, SearchConfig
    from fnas.tasks import TaskConfig

    c = SearchConfig
    s.add_argument("--config", default=None, metavar="FILE",
                   help="search settings from a JSON or TOML file (flags override it)")
    add_field(s, "--space", c, "space", given_only=True, metavar="|".join(sorted(SPACES))
              + "|MODULE:ATTR", help=field_help(c, "space") + "; or MODULE:ATTR, a "
              "FactorizedSpace (or a factory) in an importable module")
    add_field(s, "--task", TaskConfig, "dataset", given_only=True, metavar="TASK",
              help=f"{dataset_forms()} (default: {field_default(TaskConfig, 'dataset')})")
    add_field(s, "--strategy", c, "strategy", given_only=True, choices=sorted(STRATEGIES))
    add_field(s, "--knowledge", c, "knowledge", given_only=True, metavar="none|all|RUN,RUN")
    add_field(s, "--knowledge-as", c, "knowledge_as", given_only=True,
              choices=["measurements", "rewards"])
    s.add_argument("--no-critic", action="store_true", default=None,
                   help="fnas without its critic (an ablation: vanilla PPO)")
    add_field(s, "--pool", c, "pool", given_only=True, choices=["auto", "on", "off"])
    add_field(s, "--pool-epochs", c, "pool_epochs", given_only=True, type=positive_int,
              metavar="E")
    screen_args(s)
    replay_args(s)
    add_field(s, "--budget", c, "budget", given_only=True, type=positive_int,
              help=field_help(c, "budget") + "; with --resume, a new total")
    add_field(s, "--budget-seconds", c, "budget_seconds", given_only=True, type=positive_float,
              metavar="S", help=field_help(c, "budget_seconds") + "; with --resume, a new "
              "limit")
    add_field(s, "--eval-timeout", c, "eval_timeout", given_only=True, type=positive_float,
              metavar="S")
    add_field(s, "--threads", c, "threads", given_only=True, type=nonneg_int, metavar="N",
              help=field_help(c, "threads") + "; with --resume, for this call")
    add_field(s, "--confirm", c, "confirm", given_only=True, type=positive_int, metavar="N")
    add_field(s, "--budget-counts", c, "budget_counts", given_only=True,
              choices=["samples", "trained"])
    add_field(s, "--max-samples", c, "max_samples", given_only=True, type=positive_int,
              metavar="N")
    add_field(s, "--batch", c, "batch", given_only=True, type=positive_int)
    add_field(s, "--epochs", TaskConfig, "epochs", given_only=True, type=positive_int)
    add_field(s, "--image-size", TaskConfig, "image_size", given_only=True, type=positive_int,
              metavar="PX", help="resize the task's images to PX x PX (default: the dataset's "
              "own; folders 32); the space follows, e.g. a 14x14 search first (docs/GUIDE.md)")
    add_field(s, "--device", TaskConfig, "device", given_only=True)
    reward_args(s, default_none=True)
    add_field(s, "--seed", c, "seed", given_only=True, type=seed)
    set_args(s)
    s.add_argument("--name", default=None, help="run name (default: strategy-task-seed-time)")
    s.add_argument("--store", default="fnas-store", help="store folder (./fnas-store)")
    s.add_argument("--resume", metavar="RUN", default=None, help="continue a stopped run")
    s.add_argument("--executor", choices=list(EXECUTORS), default="local",
                   help="where rollouts run: here (local) or as Ray tasks (ray)")
    s.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="ray: an existing cluster (default: start a local Ray)")
    s.add_argument("--parallel", type=positive_int, default=None, metavar="N",
                   help="rollouts at once: local, in N worker processes (1: here); ray, "
                   "as Ray tasks (2)")
    s.add_argument("--retries", type=nonneg_int, default=1, metavar="N",
                   help="ray: re-runs of a rollout whose worker died (1)")
    s.add_argument("--no-progress", action="store_true",
                   help="no progress bar; log each evaluation and update instead")


def config_from_args(args: argparse.Namespace):
    """The search's config: the file's (``--config``) or the defaults, then ``--set``, then the
    flags given, applied at once and checked together (:func:`fnas.api.runs.search_config`)."""
    from fnas.api.runs import search_config
    from fnas.strategies.settings import merged

    flags = {k: getattr(args, k) for k in ("space", "strategy", "budget", "batch", "seed",
                                           "knowledge", "knowledge_as", "pool", "pool_epochs",
                                           "replay", "budget_seconds", "budget_counts",
                                           "max_samples", "eval_timeout", "threads",
                                           "confirm")
             if getattr(args, k) is not None}
    task = {k: v for k, v in (("dataset", args.task), ("epochs", args.epochs),
                              ("image_size", args.image_size), ("device", args.device))
            if v is not None}
    for name, table in (("task", task), ("replay_cfg", replay_from_args(args)),
                        ("fnas", fnas_from_args(args))):
        if table:
            flags[name] = table
    if args.target_latency or args.target_macs or args.hard:
        flags["reward"] = reward_from_args(args)  # a whole reward, as the flags describe one
    return search_config(args.config, merged(settings_from_args(args), flags))


def run(args: argparse.Namespace) -> int:
    """The search through :func:`fnas.api.runs.open_search` (or ``load_search`` for
    ``--resume``) and :meth:`~fnas.api.runs.Search.optimize`, as from Python: everything is
    checked before a store is made or touched; this adds Ctrl-C and SIGTERM, and the lines
    printed."""
    from fnas.api.runs import load_search, open_search
    from fnas.execution.executors import Executor, make_executor

    cfg = config_from_args(args) if args.resume is None else None
    if args.executor == "local" and args.ray_address:
        raise ConfigError("--ray-address applies to --executor ray")
    if args.resume is not None:
        given = [k for k in _NEW_RUN_ONLY if getattr(args, k) not in (None, False)]
        if given:
            raise ConfigError(
                f"--resume continues a run with its recorded settings; drop "
                f"--{given[0].replace('_', '-')} (only --budget, --budget-seconds, --threads "
                "and --store apply)")
    threads = cfg.threads if cfg is not None else args.threads
    if args.executor == "local" and args.parallel not in (None, 1):  # worker processes
        from fnas.execution.workers import WorkerExecutor

        executor: Executor = WorkerExecutor(parallel=args.parallel)
    else:
        executor = make_executor(args.executor, args.ray_address, args.parallel or 2,
                                 args.retries, threads=threads if threads is not None else 1)
    try:
        if cfg is None:
            search = load_search(args.store, args.resume, executor=executor)
        else:
            search = open_search(args.store, cfg, args.name, executor=executor)
    except BaseException:
        executor.close()
        raise
    old_sigterm = _sigterm_as_interrupt()
    try:
        try:  # a resume's --budget and --budget-seconds; a new run's are in its config
            out = search.optimize(args.budget if cfg is None else None,
                                  budget_seconds=args.budget_seconds if cfg is None else None,
                                  progress=not args.no_progress,
                                  threads=args.threads if cfg is None else None)
        except KeyboardInterrupt:
            recorded = search.name is not None and search.exists
            print("fnas search: interrupted; " + (
                f"continue with: fnas search --store {args.store} --resume {search.name}"
                if recorded else "no run was recorded"), file=sys.stderr)
            return 130
        exp = out.experiment
        s = search.store.summary(exp.id)
        screened = out.stats.get("last/screen/total_screened")
        print(f"run {exp.name} ({exp.status}): {s['evaluated']} architectures, "
              f"{s['trained']} trained, {s['cached']} cached, {s['failed']} failed, "
              f"{s['train_seconds']:.0f} s training"
              + (f"; the critic screened out {screened:.0f} more" if screened else ""))
        reason = out.stats.get("stop_reason")
        if reason not in (None, "budget"):
            print(f"note: {STOP_REASONS.get(reason, reason)} ({out.stats['n_done']} samples, "
                  f"{out.stats.get('wall', 0):.0f} s)")
        print_top(out.best)
        print(f"details: fnas show {exp.name} --store {args.store}")
    finally:
        executor.close()
        search.store.close()
        _restore_sigterm(old_sigterm)
    return 0


def _sigterm_as_interrupt():
    """SIGTERM stops a search as Ctrl-C does: the run is marked ``interrupted``, resumable.
    Returns the handler it replaced (None off the main thread, where none is installed)."""
    import signal
    import threading

    def handler(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(old) -> None:
    import signal

    if old is not None:
        signal.signal(signal.SIGTERM, old)
