"""Starting and resuming searches: the public facade over :class:`~fnas.search.search_run.
SearchRun`, which runs the loop (docs/DESIGN.md, "The loop") one batch at a time.

``run_search`` checks a new run, records it, pre-trains its strategy on earlier runs and runs
it; ``resume_search`` restores a stopped run's strategy and loop state from its checkpoint
(``fnas.search.restore``) and runs it on. Both return a :class:`SearchOutcome`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from fnas.errors import ConfigError, StoreError
from fnas.execution.evaluators import Evaluator, ProxyEvaluator
from fnas.execution.executors import Executor, LocalExecutor
from fnas.execution.objective import ObjectiveEvaluator
from fnas.knowledge.schema import default_run_name
from fnas.knowledge.store import Experiment, Store
from fnas.search.config import (
    SPACES,
    STRATEGIES,
    SearchConfig,
    replay_config,
)
from fnas.search.knowledge import gather_knowledge, pretrain
from fnas.search.loop_state import LoopState
from fnas.search.restore import checkpoint_stamp, recorded_config, restore
from fnas.search.search_run import SearchOutcome, SearchRun, pool_epochs, worker_needed
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Strategy

logger = logging.getLogger("fnas.search.loop")

__all__ = ["SearchConfig", "SearchOutcome", "run_search", "resume_search", "STRATEGIES",
           "SPACES", "replay_config", "gather_knowledge", "task_signature", "pool_epochs"]


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
    if isinstance(evaluator, ObjectiveEvaluator):  # a resumed run minimises as it recorded
        evaluator = evaluator.directed(cfg.direction)
    elif cfg.direction != "maximize":
        raise ConfigError(f"direction={cfg.direction!r} needs an objective function "
                          f"(fnas.create_search(objective=...)): {type(evaluator).__name__}'s "
                          "reward is maximised")
    if space is None:
        space = SPACES[cfg.space](evaluator.input_size)
    if isinstance(evaluator, ProxyEvaluator):  # it trains block-string networks only
        from fnas.space.spec import ArchSpec

        arch = space.decode(space.sample(np.random.default_rng(0)))
        if not isinstance(arch, ArchSpec):
            raise ConfigError(f"space {cfg.space!r} gives {type(arch).__name__} architectures, "
                              "which the proxy task cannot train (it builds block strings): "
                              "search NAS-Bench-Macro with fnas bench, or pass an evaluator")
    strategy = STRATEGIES[cfg.strategy](space, cfg)
    strategy.attach(evaluator)
    return evaluator, space, strategy


def run_search(store: Store, cfg: SearchConfig, *, name: str | None = None,
               evaluator: Evaluator | None = None, space: FactorizedSpace | None = None,
               progress: bool = True, stop_after: int | None = None,
               executor: Executor | None = None, callbacks: Sequence[Any] = (),
               unique_name: bool = False,
               on_created: Callable[[Experiment], None] | None = None) -> SearchOutcome:
    """Start a new search recorded in ``store``.

    ``name`` None names the run ``strategy-task-sSEED-YYYYmmdd-HHMMSS``, made unique in the
    store (``-2``, ``-3``, ... if taken, atomically: two searches started in the same second
    both run); ``unique_name=True`` does the same for a given name (else a taken name is
    refused). ``on_created(experiment)``, if given, is called as soon as the run is
    recorded: the caller learns its name even if the search is interrupted later.
    ``stop_after`` stops after that many iterations (as a kill would, minus the kill), leaving
    the experiment resumable. ``callbacks`` (``fnas.search.callbacks``) run after each
    evaluation and each update; one that raises ``StopSearch`` stops the search.
    ``executor`` (``fnas.execution.executors``) runs the rollouts; None runs them here, one
    after the other.

    Raises:
        ConfigError: bad configuration. StoreError: the name is taken, or the store fails.
    """
    evaluator, space, strategy = _make(cfg, evaluator, space)
    if name is None:  # unique in the store: two searches may start in the same second
        name = default_run_name(cfg.strategy, cfg.task.dataset.split(":", 1)[0],
                                f"s{cfg.seed}", stamp=True)
        unique_name = True
    config = {**cfg.to_dict(), "decision_signature": space.decision_signature}
    _check_new_run(store, cfg, space, name, executor)  # nothing is written before this
    worker_needed(cfg, evaluator, executor, warn=False)
    try:
        _lost_run(store, name)
    except StoreError as e:  # a new run of that name: its old files are replaced
        logger.warning("%s; it starts again from scratch", e)
    exp = store.create_experiment(name, cfg.strategy, cfg.seed, space.signature,
                                  task_signature(cfg, evaluator), config, cfg.budget,
                                  unique=unique_name)
    if on_created is not None:
        on_created(exp)
    store.acquire_lease(exp.id, exp.name)
    pretrain(store, exp, cfg, space, strategy, evaluator)
    return SearchRun(store, exp, cfg, evaluator, strategy, LoopState(), progress=progress,
                     executor=executor, callbacks=callbacks).run(stop_after)


def _check_device(device: str, executor: Executor | None) -> None:
    """The task's device is usable where the rollouts run (here, or on the Ray cluster).

    Raises:
        ConfigError: it is not, or ``executor`` is no ``Executor``.
    """
    if executor is not None and not isinstance(executor, Executor):
        raise ConfigError(f"executor: expected a fnas.execution.executors.Executor, got "
                          f"{type(executor).__name__}")
    (executor or LocalExecutor()).check_device(device)


def _check_new_run(store: Store, cfg: SearchConfig, space: FactorizedSpace, name: str,
                   executor: Executor | None) -> None:
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


def _lost_run(store: Store, ref: int | str) -> None:
    """A run the store does not hold but whose folder (checkpoint) exists: the database lost
    its rows (a damaged or deleted ``fnas.db-wal``, an older ``fnas.db``), which is said.

    Raises:
        StoreError: so it is.
    """
    from fnas.knowledge.store import check_run_name

    if not isinstance(ref, str):
        return
    try:
        check_run_name(ref)
    except (StoreError, ConfigError):
        return
    folder = store.root / "runs" / ref
    if folder.is_dir() and any(folder.iterdir()):
        raise StoreError(f"run {ref!r} has files in {folder} but no record in {store.path}: "
                         "the database lost it (a damaged or deleted fnas.db-wal, or an older "
                         "fnas.db); its results cannot be recovered: start it again")


def _check_same_run(exp: Experiment, cfg: SearchConfig, space: FactorizedSpace,
                    evaluator: Evaluator) -> None:
    """The space and the objective (or task) given are those the run recorded.

    Raises:
        StoreError: they are not; the line says which.
    """
    if space.signature != exp.space_signature:
        raise StoreError(f"run {exp.name!r} was recorded with another space or task (the "
                         "space's decisions or choices changed); start a new run instead")
    sig = task_signature(cfg, evaluator)
    if sig == exp.task_signature:
        return
    if exp.config.get("objective") and sig.startswith("objective:"):
        raise StoreError(f"run {exp.name!r} was recorded with another space or task: it was "
                         f"scored by {exp.task_signature[:80]!r}, not {sig[:80]!r} (the "
                         "objective's code or captured values, or its version= tag, changed); "
                         "pass the same objective, or start a new run")
    raise StoreError(f"run {exp.name!r} was recorded with another space or task (data or "
                     "training settings changed, or the objective's code or captured values, "
                     "or its version= tag); start a new run instead")


def resume_search(store: Store, ref: int | str, *, budget: int | None = None,
                  budget_seconds: float | None = None,
                  evaluator: Evaluator | None = None, space: FactorizedSpace | None = None,
                  progress: bool = True, stop_after: int | None = None,
                  executor: Executor | None = None, callbacks: Sequence[Any] = (),
                  threads: int | None = None) -> SearchOutcome:
    """Continue a stopped search from its last checkpoint; ``budget`` may extend it (any
    executor: rollouts that were in flight when it stopped run again); ``budget_seconds``
    sets the run's compute limit (total wall seconds over resumes) and ``threads`` the torch
    threads of its trainings (``SearchConfig.threads``), for this call.

    Raises:
        StoreError: unknown run, corrupted checkpoint, or a task/space that changed since.
    """
    try:
        exp = store.get_experiment(ref)
    except StoreError:
        _lost_run(store, ref)
        raise
    store.check_lease(exp.id, exp.name)  # one running it is named first (reads only)
    cfg = recorded_config(exp, space, evaluator)
    _check_device(cfg.task.device, executor)
    if budget is not None:
        cfg = replace(cfg, budget=budget)
    if budget_seconds is not None:
        cfg = replace(cfg, budget_seconds=budget_seconds)
    if threads is not None:
        cfg = replace(cfg, threads=threads)
    evaluator, space, strategy = _make(cfg, evaluator, space)
    _check_same_run(exp, cfg, space, evaluator)
    # everything is checked before anything is written (a refused resume leaves the store's
    # bytes as they were): the checkpoint too, then the lease, then a look that nobody ran
    # the run between the two
    worker_needed(cfg, evaluator, executor, warn=False)
    seen = checkpoint_stamp(store, exp)
    loop_state = restore(store, exp, strategy)
    store.acquire_lease(exp.id, exp.name)
    if store.get_experiment(exp.id).updated != exp.updated or \
            checkpoint_stamp(store, exp) != seen:
        store.release_lease(exp.id)
        raise StoreError(f"run {exp.name!r} was run by another process while this resume "
                         "started; resume it again")
    if budget is not None:
        store.update_experiment(exp.id, budget=budget)
    if loop_state is None:  # killed before its first update: pre-train again, as at the start
        loop_state = {}
        pretrain(store, exp, cfg, space, strategy, evaluator)
    return SearchRun(store, exp, cfg, evaluator, strategy, LoopState.from_dict(loop_state),
                     progress=progress, executor=executor, callbacks=callbacks).run(stop_after)
