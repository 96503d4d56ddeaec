"""The search loop (DESIGN.md's numbered loop) with the vanilla parts; later parts plug in here.

One iteration = one batch of B architectures:

1. **Sample**: ``strategy.ask(B)``: B fresh proposals, or fewer when the strategy replays
   the rest of its update's batch from its experience buffer (replays are no evaluations).
2. **Decide**: an architecture already evaluated on this task signature (in any experiment)
   reuses its stored result, flagged ``cached``; otherwise it is trained. (The critic's
   decision module will add ``predicted`` and ``audited`` here.)
3. **Evaluate**: the evaluator trains it; each evaluation is committed as it completes.
4. **Update**: ``strategy.tell(...)`` (PPO); its metrics (entropy, loss, the replay weights)
   are recorded per update (``Store.updates``).
5. **Persist**: the strategy's state, the loop's counters and timers, atomically.

Resume is exact: the checkpoint restores every generator, and evaluations already recorded for
the interrupted batch are reused slot by slot, so a resumed search makes the same decisions as
an uninterrupted one and nothing recorded is lost or duplicated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from fnas.errors import ConfigError, StoreError
from fnas.knowledge.store import Evaluation, Experiment, Store
from fnas.search.callbacks import dispatch
from fnas.search.checkpoint import save_checkpoint
from fnas.search.config import (
    SPACES,
    STRATEGIES,
    SearchConfig,
    replay_config,
)
from fnas.search.evaluators import Evaluator, ProxyEvaluator
from fnas.search.knowledge import gather_knowledge, pretrain
from fnas.search.progress import log_evaluation, log_update, postfix
from fnas.search.recording import evaluate, evaluate_parallel
from fnas.search.restore import restore
from fnas.search.strategy import Strategy
from fnas.space.factorized import FactorizedSpace

__all__ = ["SearchConfig", "SearchOutcome", "run_search", "resume_search", "STRATEGIES",
           "SPACES", "replay_config", "gather_knowledge", "task_signature", "pool_epochs"]

logger = logging.getLogger(__name__)


@dataclass
class SearchOutcome:
    """What a finished (or stopped) search returns."""

    experiment: Experiment
    best: list[Evaluation]
    stats: dict[str, float]


_TIMERS = ("sample", "evaluate", "train", "pool", "store", "update", "checkpoint", "wall")


def pool_epochs(cfg: SearchConfig, evaluator: Evaluator) -> int | None:
    """Epochs of a pool-initialised training in this search, or None if the pool is off.

    Raises:
        ConfigError: the pool is ``on`` but the evaluator trains no weights (a table).
    """
    if cfg.pool == "off" or (cfg.pool == "auto" and (cfg.strategy != "fnas"
                                                     or not evaluator.trains)):
        return None
    if not evaluator.trains:
        raise ConfigError("the knowledge pool needs an evaluator that trains weights (a "
                          "benchmark table has none): use pool 'off' or 'auto'")
    return cfg.pool_epochs or max(1, evaluator.epochs // 2)


def task_signature(cfg: SearchConfig, evaluator: Evaluator) -> str:
    """The evaluator's signature, marked when the pool shortens trainings: pool-initialised
    results share the cache only with runs that use the pool the same way."""
    if not isinstance(evaluator.signature, str) or not evaluator.signature.strip():
        raise ConfigError(f"evaluator {type(evaluator).__name__} has an empty signature: set "
                          "its .signature to name everything that determines its results "
                          "(runs with equal signatures share cached results)")
    e = pool_epochs(cfg, evaluator)
    return evaluator.signature + ("" if e is None else f"|pool:e{e}")


def _make(cfg: SearchConfig, evaluator: Evaluator | None,
          space: FactorizedSpace | None) -> tuple[Evaluator, FactorizedSpace, Strategy]:
    evaluator = evaluator or ProxyEvaluator(cfg.task, cfg.reward)
    if space is None:
        space = SPACES[cfg.space](getattr(evaluator, "input_size", 224))
    if isinstance(evaluator, ProxyEvaluator):  # it trains block-string networks only
        from fnas.space.spec import ArchSpec

        arch = space.decode(space.sample(np.random.default_rng(0)))
        if not isinstance(arch, ArchSpec):
            raise ConfigError(f"space {cfg.space!r} gives {type(arch).__name__} architectures, "
                              "which the proxy task cannot train (it builds block strings): "
                              "search NAS-Bench-Macro with fnas bench, or pass an evaluator")
    strategy = STRATEGIES[cfg.strategy](space, cfg)
    return evaluator, space, strategy


def run_search(store: Store, cfg: SearchConfig, *, name: str | None = None,
               evaluator: Evaluator | None = None, space: FactorizedSpace | None = None,
               progress: bool = True, stop_after: int | None = None,
               executor: Any = None, callbacks: Sequence[Any] = ()) -> SearchOutcome:
    """Start a new search recorded in ``store``.

    ``stop_after`` stops after that many iterations (as a kill would, minus the kill), leaving
    the experiment resumable. ``callbacks`` (``fnas.search.callbacks``) run after each
    evaluation and each update; one that raises ``StopSearch`` stops the search.
    ``executor`` (``fnas.search.executors``) runs the rollouts; None runs them here, one
    after the other.

    Raises:
        ConfigError: bad configuration. StoreError: the name is taken, or the store fails.
    """
    evaluator, space, strategy = _make(cfg, evaluator, space)
    kind = cfg.task.dataset.split(":", 1)[0]
    name = name or f"{cfg.strategy}-{kind}-s{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S}"
    config = {**cfg.to_dict(), "decision_signature": space.decision_signature}
    _check_new_run(store, cfg, space, name, executor)  # nothing is written before this
    exp = store.create_experiment(name, cfg.strategy, cfg.seed, space.signature,
                                  task_signature(cfg, evaluator), config, cfg.budget)
    store.acquire_lease(exp.id, exp.name)
    pretrain(store, exp, cfg, space, strategy, evaluator)
    return _loop(store, exp, cfg, evaluator, strategy, {}, progress, stop_after, executor,
                 callbacks)


def _check_device(device: str, executor: Any) -> None:
    """The task's device is usable where the rollouts run (here, or on the Ray cluster)."""
    if executor is not None and hasattr(executor, "check_device"):
        executor.check_device(device)
    else:
        from fnas.tasks.trainer import check_device

        check_device(device)


def _check_new_run(store: Store, cfg: SearchConfig, space: FactorizedSpace, name: str,
                   executor: Any) -> None:
    """Everything a new run needs, checked before its row is created (no phantom run)."""
    from fnas.knowledge.store import check_run_name

    check_run_name(name)
    _check_device(cfg.task.device, executor)
    if cfg.knowledge not in ("none", "all"):
        for r in (r.strip() for r in cfg.knowledge.split(",") if r.strip()):
            e = store.get_experiment(r)
            if e.config.get("decision_signature") != space.decision_signature:
                raise ConfigError(f"run {e.name!r} searched other decisions: it cannot teach "
                                  "this search")


def resume_search(store: Store, ref: int | str, *, budget: int | None = None,
                  budget_seconds: float | None = None,
                  evaluator: Evaluator | None = None, space: FactorizedSpace | None = None,
                  progress: bool = True, stop_after: int | None = None,
                  executor: Any = None, callbacks: Sequence[Any] = ()) -> SearchOutcome:
    """Continue a stopped search from its last checkpoint; ``budget`` may extend it (any
    executor: rollouts that were in flight when it stopped run again); ``budget_seconds``
    sets the run's compute limit (total wall seconds over resumes) for this call.

    Raises:
        StoreError: unknown run, corrupted checkpoint, or a task/space that changed since.
    """
    exp = store.get_experiment(ref)
    try:
        cfg = SearchConfig.from_dict(exp.config)
    except ConfigError as e:
        raise StoreError(f"run {exp.name!r}: field 'config' is unusable: {e}") from None
    _check_device(cfg.task.device, executor)
    store.acquire_lease(exp.id, exp.name)
    if budget is not None:
        cfg = replace(cfg, budget=budget)
        store.update_experiment(exp.id, budget=budget)
    if budget_seconds is not None:
        cfg = replace(cfg, budget_seconds=budget_seconds)
    evaluator, space, strategy = _make(cfg, evaluator, space)
    if space.signature != exp.space_signature or \
            task_signature(cfg, evaluator) != exp.task_signature:
        raise StoreError(f"run {exp.name!r} was recorded with another space or task "
                         "(data or training settings changed); start a new run instead")
    loop_state = restore(store, exp, strategy)
    if loop_state is None:  # killed before its first update: pre-train again, as at the start
        loop_state = {}
        pretrain(store, exp, cfg, space, strategy, evaluator)
    return _loop(store, exp, cfg, evaluator, strategy, loop_state, progress, stop_after,
                 executor, callbacks)


def _loop(store: Store, exp: Experiment, cfg: SearchConfig, evaluator: Evaluator,
          strategy: Strategy, loop_state: dict[str, Any], progress: bool,
          stop_after: int | None, executor: Any = None,
          callbacks: Sequence[Any] = ()) -> SearchOutcome:
    from tqdm.auto import tqdm

    e_pool = pool_epochs(cfg, evaluator)
    runner = None
    if e_pool is not None:
        from fnas.search.pooling import PoolRunner

        runner = PoolRunner(store, exp.config.get("decision_signature", exp.space_signature),
                            exp.task_signature, e_pool)
    iteration = int(loop_state.get("iteration", 0))
    n_done = int(loop_state.get("n_done", 0))
    n_trained = int(loop_state.get("n_trained", 0))
    by_trained = cfg.budget_counts == "trained"
    timers = {k: float(loop_state.get("timers", {}).get(k, 0.0)) for k in _TIMERS}
    real = [e.reward for e in store.evaluations(exp.id) if not e.predicted and e.status == "ok"]
    best = max(real, default=float("-inf"))
    keep = {k: v for k, v in store.get_experiment(exp.id).stats.items()
            if k.startswith("knowledge/")}
    store.update_experiment(exp.id, status="running")
    progress_now = n_trained if by_trained else n_done
    bar = tqdm(total=cfg.budget, initial=min(progress_now, cfg.budget), desc=exp.name,
               disable=not progress, unit="arch", dynamic_ncols=True)
    t_wall = time.perf_counter()
    iters_this_call = 0
    stop_asked: str | None = None  # a callback's StopSearch message

    def ask(message: str | None) -> None:
        nonlocal stop_asked
        stop_asked = stop_asked or message
    metrics: dict[str, float] = {}
    try:
        while (n_trained if by_trained else n_done) < cfg.budget and n_done < cfg.sample_cap \
                and (stop_after is None or iters_this_call < stop_after) and not stop_asked \
                and not _out_of_time(cfg, timers) and not getattr(strategy, "exhausted", False):
            n, left = cfg.batch, cfg.sample_cap - n_done
            while n > 1 and strategy.fresh_count(n) > left:  # the last batch may be smaller
                n -= 1
            fresh = strategy.fresh_count(n)
            if left - fresh == 1 and fresh == n:  # never leave a lone last sample: fold it in
                n += 1  # (a strategy that replays gives a lone sample company from memory)
            t = time.perf_counter()
            proposals = strategy.ask(n)  # fewer than n if the rest is replayed from memory
            n = len(proposals)
            verdicts = strategy.decide(proposals)
            timers["sample"] += time.perf_counter() - t
            t = time.perf_counter()
            existing = {e.slot: e for e in store.evaluations(exp.id, iteration)}
            timers["store"] += time.perf_counter() - t
            if runner is not None:
                runner.begin_batch(existing.values())
            for slot, p in enumerate(proposals):
                ev = existing.get(slot)
                if ev is not None and ev.arch_key != p.spec.key:
                    raise StoreError(f"run {exp.name!r}: recorded slot {slot} of iteration "
                                     f"{iteration} holds another architecture; cannot resume")

            def done(ev: Evaluation, existing: dict[int, Evaluation] = existing) -> None:
                nonlocal n_trained, best
                n_trained += ev.trained
                if ev.status == "ok" and not ev.predicted:
                    best = max(best, ev.reward)
                if ev.trained or not by_trained:
                    bar.update(1)
                bar.set_postfix(postfix(best, strategy, n_trained))
                log_evaluation(exp, ev, best, resumed=existing.get(ev.slot) is ev)
                ask(dispatch(callbacks, "on_evaluation", exp, ev))

            if executor is None or executor.name == "local":  # in order, here
                evals = []
                for slot, p in enumerate(proposals):
                    ev = existing.get(slot)
                    if ev is None:
                        ev = evaluate(store, exp, evaluator, p, iteration, slot, cfg.seed,
                                       timers, verdicts[slot], runner)
                    evals.append(ev)
                    done(ev)
            else:
                evals = evaluate_parallel(store, exp, evaluator, proposals, verdicts, existing,
                                           iteration, cfg.seed, timers, runner, executor, done)
            t = time.perf_counter()
            strategy.observe(evals)
            metrics = strategy.tell(proposals, [e.reward for e in evals])
            timers["update"] += time.perf_counter() - t
            bar.set_postfix(postfix(best, strategy, n_trained))  # this round's screening too
            n_done += n
            t = time.perf_counter()
            store.add_update(exp.id, iteration, metrics, n_done=n_done, n_trained=n_trained)
            timers["store"] += time.perf_counter() - t
            log_update(exp, iteration, n_done, n_trained, best, metrics)
            ask(dispatch(callbacks, "on_update", exp, iteration, metrics))
            iteration += 1
            iters_this_call += 1
            t = time.perf_counter()
            timers["wall"] += t - t_wall
            t_wall = t
            if cfg.checkpoint:
                tensors, meta = strategy.state()
                loop = {"iteration": iteration, "n_done": n_done, "n_trained": n_trained,
                        "timers": timers, "experiment": exp.id}
                save_checkpoint(store.run_dir(exp.name), tensors,
                                {"strategy": meta, "loop": loop})
            timers["checkpoint"] += time.perf_counter() - t
            t = time.perf_counter()
            stats = {**keep, **timers, "iteration": iteration, "n_done": n_done,
                     "n_trained": n_trained, "best_reward": best,
                     **{f"last/{k}": v for k, v in metrics.items()}}
            store.update_experiment(exp.id, stats=stats)
            timers["store"] += time.perf_counter() - t
    except KeyboardInterrupt:  # Ctrl-C, and SIGTERM (the CLI turns it into this)
        store.update_experiment(exp.id, status="interrupted")
        raise
    except (StoreError, OSError, ConfigError):  # a full disk, a damaged file: resumable
        try:
            store.update_experiment(exp.id, status="interrupted")
        except StoreError:
            pass  # the disk may be too full even for that; resume works all the same
        raise
    finally:
        bar.close()
        if runner is not None:
            runner.close()
        store.release_lease(exp.id)
    timers["wall"] += time.perf_counter() - t_wall
    if runner is not None:
        pooled = [e for e in store.evaluations(exp.id) if e.pool_snapshot is not None]
        keep.update({"pool/rollouts": len(pooled), "pool/hit_ratio": float(np.mean(
            [e.pool_hit_ratio for e in pooled])) if pooled else 0.0, "pool/coverage": float(
            np.mean([e.pool_coverage for e in pooled])) if pooled else 0.0})
    spent = (n_trained if by_trained else n_done) >= cfg.budget
    seconds = not spent and _out_of_time(cfg, timers)
    exhausted = not spent and not seconds and getattr(strategy, "exhausted", False)
    done = spent or seconds or exhausted or n_done >= cfg.sample_cap
    # why it stopped: a budget counted in trainings can end at the sample cap instead (a
    # policy that only resamples known architectures), which the user must be told
    reason = "budget" if spent else "seconds" if seconds else "exhausted" if exhausted \
        else "max_samples" if done else "callback" if stop_asked else "stopped"
    stats = {**keep, **timers, "iteration": iteration, "n_done": n_done, "n_trained": n_trained,
             "best_reward": best, "stop_reason": reason,
             **({"stop_message": stop_asked} if reason == "callback" else {}),
             **{f"last/{k}": v for k, v in metrics.items()}}
    store.update_experiment(exp.id, status="done" if done else "stopped", stats=stats)
    logger.info("run %s %s (%s): %d samples, %d trained, best reward %.4f", exp.name,
                "done" if done else "stopped", reason, n_done, n_trained, best)
    return SearchOutcome(store.get_experiment(exp.id), store.top(exp.id, 5), stats)


def _out_of_time(cfg: SearchConfig, timers: dict[str, float]) -> bool:
    return cfg.budget_seconds is not None and timers["wall"] >= cfg.budget_seconds
