"""``fnas search``, ``fnas runs`` and ``fnas show``: the search commands of the CLI."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime

from fnas.cli import _human, fnas_from_args, replay_from_args, reward_from_args
from fnas.errors import ConfigError
from fnas.knowledge.store import Evaluation, Store, check_run_name

__all__ = ["cmd_search", "cmd_runs", "cmd_show", "cmd_bench"]

_NEW_RUN_ONLY = ("config", "space", "task", "strategy", "batch", "epochs", "device",
                 "target_latency", "target_macs", "hard", "seed", "name", "knowledge",
                 "knowledge_as",
                 "no_critic", "imagined", "acquisition", "candidates", "mutants", "policy",
                 "pool", "pool_epochs", "replay", "replay_share",
                 "replay_capacity", "replay_sampling", "correction", "c_max")


def _config_from_args(args: argparse.Namespace):
    from fnas.search import SearchConfig

    if args.config is not None:
        from fnas.search.config_io import load_config

        cfg = load_config(args.config)  # flags given as well override the file
    else:
        cfg = SearchConfig()
    task = cfg.task
    if args.task is not None:
        task = replace(task, dataset=args.task)
    if args.epochs is not None:
        task = replace(task, epochs=args.epochs)
    if args.device is not None:
        task = replace(task, device=args.device)
    given = args.target_latency or args.target_macs or args.hard
    reward = reward_from_args(args) if given or args.config is None else cfg.reward
    overrides = {k: getattr(args, k) for k in ("space", "strategy", "budget", "batch", "seed",
                                               "knowledge", "knowledge_as", "pool",
                                               "pool_epochs", "replay")
                 if getattr(args, k) is not None}
    replay = replay_from_args(args)
    if replay:
        overrides["replay_cfg"] = {**cfg.replay_cfg, **replay}
    fnas = fnas_from_args(args, cfg.fnas)
    if fnas != cfg.fnas:
        overrides["fnas"] = fnas
    return replace(cfg, task=task, reward=reward, **overrides)


def _print_top(best: list[Evaluation], file=None) -> None:
    file = file or sys.stdout  # looked up now: sys.stdout may have been replaced since import
    if not best:
        print("no successful evaluation yet", file=file)
        return
    print(f"{'rank':>4}  {'reward':>7}  {'acc':>6}  {'lat ms':>6}  {'MACs':>7}  arch", file=file)
    for i, e in enumerate(best, 1):
        lat = f"{e.latency_ms:6.2f}" if e.latency_ms is not None else f"{'-':>6}"
        macs = _human(e.macs) if e.macs is not None else "-"
        acc = f"{e.accuracy:6.4f}" if e.accuracy is not None else f"{'-':>6}"
        print(f"{i:>4}  {e.reward:7.4f}  {acc}  {lat}  {macs:>7}  {e.arch}", file=file)


def cmd_search(args: argparse.Namespace) -> int:
    from fnas.search import resume_search, run_search
    from fnas.search.executors import make_executor
    from fnas.tasks.trainer import check_device

    # Validate everything before touching the store; resuming never creates one.
    cfg = _config_from_args(args) if args.resume is None else None
    if args.name is not None:
        check_run_name(args.name)
    if args.executor == "local" and (args.ray_address or args.parallel != 2):
        raise ConfigError("--ray-address and --parallel apply to --executor ray")
    if cfg is not None and args.executor == "local":
        check_device(cfg.task.device)
    evaluator = None
    if cfg is not None:  # the task's data too (a bad path, a minibatch larger than the data)
        from fnas.search.evaluators import ProxyEvaluator

        evaluator = ProxyEvaluator(cfg.task, cfg.reward)
    executor = make_executor(args.executor, args.ray_address, args.parallel, args.retries)
    try:
        if cfg is not None:
            executor_check = getattr(executor, "check_device", None)
            if executor_check is not None:
                executor_check(cfg.task.device)
        store = Store(args.store, create=args.resume is None)
    except BaseException:
        executor.close()
        raise
    old_sigterm = _sigterm_as_interrupt()
    try:
        if args.resume is not None:
            given = [k for k in _NEW_RUN_ONLY if getattr(args, k) not in (None, False)]
            if given:
                raise ConfigError(
                    f"--resume continues a run with its recorded settings; drop "
                    f"--{given[0].replace('_', '-')} (only --budget and --store apply)")
            try:
                out = resume_search(store, args.resume, budget=args.budget,
                                    progress=not args.no_progress, executor=executor)
            except KeyboardInterrupt:
                print(f"fnas search: interrupted; continue with: fnas search --store {args.store}"
                      f" --resume {args.resume}", file=sys.stderr)
                return 130
        else:
            name = args.name or (f"{cfg.strategy}-{cfg.task.dataset.split(':', 1)[0]}"
                                 f"-s{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S}")
            try:
                out = run_search(store, cfg, name=name, progress=not args.no_progress,
                                 executor=executor, evaluator=evaluator)
            except KeyboardInterrupt:
                print(f"fnas search: interrupted; continue with: fnas search --store {args.store}"
                      f" --resume {name}", file=sys.stderr)
                return 130
        exp = out.experiment
        s = store.summary(exp.id)
        screened = out.stats.get("last/screen/total_screened")
        print(f"run {exp.name} ({exp.status}): {s['evaluated']} architectures, "
              f"{s['trained']} trained, {s['cached']} cached, {s['failed']} failed, "
              f"{s['train_seconds']:.0f} s training"
              + (f"; the critic screened out {screened:.0f} more" if screened else ""))
        if out.stats.get("stop_reason") == "max_samples":
            print(f"note: stopped at the sample cap before the budget was spent "
                  f"({out.stats['n_done']} samples)")
        _print_top(out.best)
        print(f"details: fnas show {exp.name} --store {args.store}")
    finally:
        executor.close()
        store.close()
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


def _shown(name: str) -> str:
    """A run name as printed in a table: control characters (from a damaged row) escaped."""
    return name if name.isprintable() else repr(name)


def cmd_runs(args: argparse.Namespace) -> int:
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
            print(f"{e.id:>3}  {_shown(e.name):<36}  {_shown(e.status):<11}  "
                  f"{s['evaluated']:>4}/{e.budget:<4}  "
                  f"{s['trained']:>7}  {best:>7}  {created}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with Store(args.store, create=False, readonly=True) as store:
        exp = store.get_experiment(args.run)
        s = store.summary(exp.id)
        best = store.top(exp.id, args.top)
        st = exp.stats
        overhead = sum(st.get(k, 0.0) for k in ("sample", "update", "pool", "store", "checkpoint"))
        if args.json:
            print(json.dumps({"id": exp.id, "name": exp.name, "status": exp.status,
                              "strategy": exp.strategy, "seed": exp.seed, "budget": exp.budget,
                              "config": exp.config, "summary": s, "stats": st,
                              "updates": store.updates(exp.id),
                              "top": [e.__dict__ for e in best]}, indent=2, default=list))
            return 0
        cfg = exp.config
        task, rew = cfg.get("task", {}), cfg.get("reward", {})
        print(f"run       {_shown(exp.name)} (id {exp.id}, {_shown(exp.status)})")
        print(f"strategy  {_shown(exp.strategy)}, seed {exp.seed}, batch "
              f"{cfg.get('batch', '?')}, budget {exp.budget}")
        print(f"task      {task.get('dataset', '?')}, {task.get('epochs', '?')} epochs, "
              f"reward {rew.get('metric', '?')} target {rew.get('target', '?')} "
              f"({rew.get('mode', '?')})")
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
            why = {"budget": "budget spent", "max_samples": "sample cap reached (max_samples) "
                   "before the budget was spent", "stopped": "stopped before its budget"}
            print(f"stopped   {why.get(st['stop_reason'], st['stop_reason'])}")
        if st.get("wall"):
            print(f"time      {st['wall']:.1f} s wall, {st.get('train', 0):.1f} s training, "
                  f"search overhead {overhead:.2f} s ({100 * overhead / st['wall']:.2f}%)")
        _print_top(best)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from fnas.search.bench import BenchConfig, format_summary, run_bench, save_bench
    from fnas.tasks import TaskConfig

    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    if not strategies:
        raise ConfigError(f"--strategies {args.strategies!r:.40} names no strategy: give some "
                          "of random,rea,ppo,fnas, comma-separated")
    if args.jobs < 0:
        raise ConfigError(f"--jobs {args.jobs}: expected 0 (one per core) or more")
    cfg = BenchConfig(bench=args.bench, strategies=strategies, seeds=args.seeds,
                      budget=args.budget, batch=args.batch, noisy=args.noisy, data=args.data,
                      task=TaskConfig(dataset=args.task, epochs=args.epochs), jobs=args.jobs,
                      source_flops=args.source_flops * 1e6 if args.source_flops else None,
                      source_budget=args.source_budget, knowledge_as=args.knowledge_as,
                      fnas=fnas_from_args(args), source_invert=args.source_invert,
                      replay=args.replay or "auto",
                      replay_cfg=replay_from_args(args), label=args.label)
    result = run_bench(cfg, progress=not args.no_progress)
    stem = args.name or (f"bench-{cfg.bench}{'-noisy' if cfg.noisy else ''}"
                         f"{'-transfer' if cfg.source_flops else ''}")
    js, png = save_bench(result, args.out, stem)
    print(format_summary(cfg, result["summary"]))
    print(f"wrote {js} and {png} ({result['seconds']:.0f} s)")
    return 0
