"""A search in progress, run one batch at a time (docs/DESIGN.md, "The loop").

One :meth:`SearchRun.step` = one batch of B architectures:

1. **Sample**: ``strategy.ask(B)``: B fresh proposals, or fewer when the strategy replays
   the rest of its update's batch from its experience buffer (replays are no evaluations).
2. **Decide**: ``strategy.decide``: train each, or (the fnas critic) record a confident
   prediction (``predicted``), or train a confident one anyway (``audited``). An architecture
   already trained on this task signature (in any experiment) reuses its stored result,
   flagged ``cached``.
3. **Evaluate**: the executor trains the rest (``fnas.search.recording``); each evaluation is
   committed as it completes, and the callbacks see it.
4. **Update**: ``strategy.observe`` and ``strategy.tell`` (PPO); the update's metrics
   (entropy, loss, the replay weights) are recorded (``Store.updates``), the callbacks see
   them.
5. **Persist**: the strategy's state and the loop's (:class:`~fnas.search.loop_state.
   LoopState`: counters and timers), atomically, then the run's stats.

:meth:`SearchRun.run` steps until the budget, the sample cap, the compute limit, an exhausted
strategy or a callback's ``StopSearch`` ends the search (or ``stop_after`` batches pause it),
and records why it stopped. Resume is exact: the checkpoint restores every generator, and
evaluations already recorded for the interrupted batch are reused slot by slot, so a resumed
search makes the same decisions as an uninterrupted one and nothing recorded is lost or
duplicated.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import numpy as np

from fnas.errors import ConfigError, StoreError
from fnas.execution.evaluators import Evaluator
from fnas.execution.executors import Executor, LocalExecutor, SearchDeadline
from fnas.knowledge.racing import Race, pooled, replicate_of
from fnas.knowledge.store import Evaluation, Experiment, Store
from fnas.search.callbacks import dispatch
from fnas.search.checkpoint import save_checkpoint
from fnas.search.config import SearchConfig
from fnas.search.loop_state import LoopState
from fnas.search.progress import Progress
from fnas.search.recording import Recorder
from fnas.search.resources import pool_epochs, worker_needed
from fnas.strategies.base import Proposal, Strategy, Verdict

__all__ = ["SearchOutcome", "SearchRun", "pool_epochs", "worker_needed"]

logger = logging.getLogger("fnas.search.loop")  # the loop's logger, as before the split

FINISHED = ("budget", "seconds", "exhausted", "max_samples")
"""Stop reasons that end a run (``done``); any other leaves it ``stopped`` and resumable."""


@dataclass
class SearchOutcome:
    """What a finished (or stopped) search returns."""

    experiment: Experiment
    best: list[Evaluation]
    stats: dict[str, float]


class SearchRun:
    """One recorded search, from its start or its last checkpoint, one batch per :meth:`step`.

    Creating it marks the run ``running`` and opens its pool and progress bar; :meth:`run`
    steps it and closes them (and the run's lease, which the caller acquired).

    Args:
        store, exp: the run's store and record.
        cfg: the run's configuration.
        evaluator: what trains (or looks up) an architecture.
        strategy: the run's strategy, fresh or restored from the checkpoint.
        state: the loop's counters and timers (``LoopState()`` at a run's start).
        progress: show a progress bar.
        executor: where rollouts run (``fnas.execution.executors``); None runs them here.
        callbacks: called after each evaluation and each update (``fnas.search.callbacks``).
    """

    def __init__(self, store: Store, exp: Experiment, cfg: SearchConfig, evaluator: Evaluator,
                 strategy: Strategy, state: LoopState, *, progress: bool = True,
                 executor: Executor | None = None, callbacks: Sequence[Any] = ()) -> None:
        self.store, self.exp, self.cfg = store, exp, cfg
        self.strategy, self.state, self.timers = strategy, state, state.timers
        self.callbacks = tuple(callbacks)
        self.by_trained = cfg.budget_counts == "trained"
        e_pool = pool_epochs(cfg, evaluator)
        self.runner = None
        if e_pool is not None:
            from fnas.search.pooling import PoolRunner

            self.runner = PoolRunner(store, exp.config.get("decision_signature",
                                                           exp.space_signature),
                                     exp.task_signature, e_pool)
        self._own_executor: Executor | None = None
        self.recorder = Recorder(store, exp, evaluator, cfg.seed,
                                 self._executor(evaluator, executor), self.timers, self.runner,
                                 timeout=cfg.eval_timeout, threads=cfg.threads,
                                 timed=(state.iteration, state.timed))
        self._deadline_hit = False
        rows = store.evaluations(exp.id)
        self.race = Race(cfg.confirm)
        """The run's results by architecture and replicate (:mod:`fnas.knowledge.racing`),
        those of earlier batches only: a batch's repeats depend on what came before it, so a
        resumed batch asks for the same ones."""
        for e in rows:
            if e.iteration < state.iteration:
                self._race(e)
        self.best = self._incumbent_value()
        """The incumbent's reward (its mean over replicates when racing; predictions and
        low-fidelity results never count)."""
        self.keep = {k: v for k, v in store.get_experiment(exp.id).stats.items()
                     if k.startswith("knowledge/")}
        """Stats recorded before the loop (the pre-training's), kept in every update."""
        self.metrics: dict[str, float] = {}
        """The last update's metrics."""
        self.stop_message: str | None = None
        """The message of the first ``StopSearch`` a callback raised."""
        store.update_experiment(exp.id, status="running")
        self.progress = Progress(exp, strategy, cfg.budget, self._spent(), self.by_trained,
                                 progress)
        if rows:  # a recorded run continues: say where it stands ("resuming ... at 6/32")
            later = [e for e in rows if e.iteration >= state.iteration]
            done = self._spent() + (sum(e.fidelity for e in later if e.trained)
                                    if self.by_trained else len(later))
            if done < cfg.budget:  # (a finished run asked again has nothing to resume)
                self.progress.resumed(done, len(later))
        self._t_wall = time.perf_counter()

    # ---- the loop ------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> SearchOutcome:
        """Step until the search ends or ``stop_after`` batches have run, close, and record
        the run's status and stop reason.

        Raises:
            KeyboardInterrupt: Ctrl-C (or SIGTERM, which the CLI turns into it).
            StoreError, OSError, ConfigError: a full disk, a damaged file. In these cases
                the run is marked ``interrupted`` and can be resumed.
        """
        steps = 0
        try:
            go = self.stop_reason() is None
            while go and (stop_after is None or steps < stop_after):
                go = self.step()
                steps += 1
        except KeyboardInterrupt:
            self.store.update_experiment(self.exp.id, status="interrupted")
            raise
        except (StoreError, OSError, ConfigError):  # a full disk, a damaged file: resumable
            try:
                self.store.update_experiment(self.exp.id, status="interrupted")
            except StoreError:
                pass  # the disk may be too full even for that; resume works all the same
            raise
        finally:
            self.close()
        return self.finish()

    def step(self) -> bool:
        """Run one batch (sample, decide, evaluate, update, persist); whether the search
        should go on (:meth:`stop_reason` is None)."""
        st, exp, strategy, timers = self.state, self.exp, self.strategy, self.timers
        n = self._batch_size()
        # with a compute limit, the batch may end early: keep where it started, so that the
        # checkpoint can record the seconds spent (a resume then starts from the same place)
        before = strategy.state() if self.cfg.budget_seconds and self.cfg.checkpoint else None
        n_trained, trained_cost = st.n_trained, st.trained_cost
        with timers.measure("sample"):
            proposals = strategy.ask(n)  # fewer than n if the rest is replayed from memory
            verdicts = strategy.decide(proposals)
            repeats = self._repeats(n)  # racing: results to confirm, after the strategy's
        evals = []
        deadline = None
        if self.cfg.budget_seconds is not None:  # the compute limit, as a monotonic time
            spent = self.timers.wall + time.perf_counter() - self._t_wall
            deadline = time.monotonic() + self.cfg.budget_seconds - spent
        try:
            # closed at once on an interruption (not when the traceback goes): the executor
            # forgets the batch's pending rollouts before anything else uses it
            with closing(self.recorder.batch(st.iteration, proposals + repeats,
                                             verdicts + [Verdict()] * len(repeats),
                                             deadline)) as batch:
                for ev, resumed in batch:
                    evals.append(ev)
                    self._evaluated(ev, resumed)
        except SearchDeadline:  # budget_seconds ran out within the batch: it ends here
            self._deadline_hit = True
            t = time.perf_counter()
            timers.wall += t - self._t_wall
            self._t_wall = t
            if before is not None:
                loop = {**st.to_dict(exp.id), "n_trained": n_trained,
                        "timed": sorted(self.recorder.timed)}  # their seconds are counted
                loop.pop("trained_cost", None)
                if trained_cost is not None:
                    loop["trained_cost"] = trained_cost
                save_checkpoint(self.store.run_dir(exp.name), before[0],
                                {"strategy": before[1], "loop": loop})
            with timers.measure("store"):
                self.store.update_experiment(exp.id, stats=self._stats())
            return False
        evals.sort(key=lambda e: e.slot)  # a parallel executor records in completion order
        evals = evals[:len(proposals)]  # the strategy learns from its own proposals only
        with timers.measure("update"):
            strategy.observe(evals)
            self.metrics = strategy.tell(proposals, [e.reward for e in evals])
        st.n_done += len(proposals) + len(repeats)
        with timers.measure("store"):
            self.store.add_update(exp.id, st.iteration, self.metrics, n_done=st.n_done,
                                  n_trained=st.n_trained)
        self.progress.update(st.iteration, st.n_done, st.n_trained, self.best, self.metrics)
        self._ask_stop(dispatch(self.callbacks, "on_update", exp, st.iteration, self.metrics))
        st.iteration += 1
        st.timed = []  # a batch that completed: the next one's slots are not yet counted
        t = time.perf_counter()
        timers.wall += t - self._t_wall
        self._t_wall = t
        if self.cfg.checkpoint:
            tensors, meta = strategy.state()
            save_checkpoint(self.store.run_dir(exp.name), tensors,
                            {"strategy": meta, "loop": st.to_dict(exp.id)})
        timers.add("checkpoint", time.perf_counter() - t)
        with timers.measure("store"):
            self.store.update_experiment(exp.id, stats=self._stats())
        return self.stop_reason() is None

    def stop_reason(self) -> str | None:
        """Why the search is over: ``budget`` (spent), ``seconds`` (the compute limit),
        ``exhausted`` (the strategy has nothing left to propose), ``max_samples`` (the
        sample cap), ``callback`` (a ``StopSearch``); None while it should go on."""
        cfg = self.cfg
        if self._spent() >= cfg.budget - 1e-9:  # (fidelities summed: 3 x 1/3 is 1)
            return "budget"
        if cfg.budget_seconds is not None and (self.timers.wall >= cfg.budget_seconds
                                               or self._deadline_hit):
            return "seconds"
        if getattr(self.strategy, "exhausted", False):
            return "exhausted"
        space = getattr(self.strategy, "space", None)
        if cfg.budget_counts == "trained" and space is not None and not hasattr(
                self.strategy, "exhausted") and self.state.n_trained >= space.size:
            # every architecture is known (a strategy that tracks this says so itself)
            return "exhausted"
        if self.state.n_done >= cfg.sample_cap:  # a budget in trainings can end here instead
            return "max_samples"  # (a policy that only resamples known architectures)
        if self.stop_message:
            return "callback"
        return None

    def close(self) -> None:
        """Close the progress bar, the pool and a worker this run started, and release the
        run's lease."""
        self.progress.close()
        if self._own_executor is not None:
            self._own_executor.close()
        if self.runner is not None:
            self.runner.close()
        self.store.release_lease(self.exp.id)

    def finish(self) -> SearchOutcome:
        """Record the run's status (``done``, or ``stopped`` and resumable), its stop reason
        and final stats; the outcome."""
        exp, st = self.exp, self.state
        self.timers.wall += time.perf_counter() - self._t_wall
        self._t_wall = time.perf_counter()
        if self.runner is not None:
            pooled = [e for e in self.store.evaluations(exp.id) if e.pool_snapshot is not None]
            self.keep.update({
                "pool/rollouts": len(pooled),
                "pool/hit_ratio": float(np.mean([e.pool_hit_ratio for e in pooled]))
                if pooled else 0.0,
                "pool/coverage": float(np.mean([e.pool_coverage for e in pooled]))
                if pooled else 0.0})
        reason = self.stop_reason() or "stopped"
        done = reason in FINISHED
        stats = self._stats(reason)
        self.store.update_experiment(exp.id, status="done" if done else "stopped", stats=stats)
        logger.info("run %s %s (%s): %d samples, %d trained, best reward %.4f", exp.name,
                    "done" if done else "stopped", reason, st.n_done, st.n_trained, self.best)
        return SearchOutcome(self.store.get_experiment(exp.id), self.store.top(exp.id, 5),
                             stats)

    # ---- helpers -------------------------------------------------------------------------
    def _executor(self, evaluator: Evaluator, executor: Executor | None) -> Executor:
        """The executor the run's evaluations go through (:func:`worker_needed`): the
        caller's, here, or a worker process this run starts (and closes)."""
        if not worker_needed(self.cfg, evaluator, executor):
            return executor or LocalExecutor()
        from fnas.execution.workers import WorkerExecutor

        self._own_executor = WorkerExecutor()
        return self._own_executor

    def _race(self, ev: Evaluation) -> None:
        """Enter a real full-fidelity result (or failure) into the race; without racing, only
        keep the best (as before racing: no per-evaluation ranking on the default path)."""
        if self.race.confirm <= 1:
            if ev.counts:
                self.best = max(getattr(self, "best", -math.inf), ev.reward)
            return
        if not ev.predicted and ev.fidelity >= 1.0:
            self.race.add(ev.arch_key, replicate_of(ev.task_signature),
                          ev.reward if ev.status == "ok" else None, ev, pooled(ev))

    def _incumbent_value(self) -> float:
        """The incumbent's reward (-inf before any result)."""
        if self.race.confirm <= 1:
            return getattr(self, "best", -math.inf)
        inc = self.race.incumbent()
        return -math.inf if inc is None else inc.mean

    def _repeats(self, n: int) -> list[Proposal]:
        """The batch's racing repeats (``SearchConfig.confirm``): the challengers to train
        again, up to a quarter of the batch (at least one), never past the budget."""
        if self.race.confirm <= 1:
            return []
        room = int(self.cfg.budget - self._spent() - n)
        out = []
        for rec, replicate in self.race.challengers(min(max(1, n // 4), room)):
            ev = rec.first
            spec = self.strategy.space.decode(ev.decisions)
            out.append(Proposal(spec, tuple(ev.decisions), None, 1.0, replicate))
        return out

    def _batch_size(self) -> int:
        """B, or fewer for the last batch under the sample cap, which never leaves a lone
        last sample (it is folded into this batch)."""
        strategy = self.strategy
        n, left = self.cfg.batch, self.cfg.sample_cap - self.state.n_done
        while n > 1 and strategy.fresh_count(n) > left:
            n -= 1
        fresh = strategy.fresh_count(n)
        if left - fresh == 1 and fresh == n:
            n += 1  # (a strategy that replays gives a lone sample company from memory)
        return n

    def _evaluated(self, ev: Evaluation, resumed: bool) -> None:
        """Count one recorded evaluation, report it, and show it to the callbacks."""
        self.state.count(ev.trained, ev.fidelity)
        self._race(ev)
        self.best = self._incumbent_value()
        self.progress.evaluation(ev, self.best, self.state.n_trained, resumed)
        self._ask_stop(dispatch(self.callbacks, "on_evaluation", self.exp, ev))

    def _ask_stop(self, message: str | None) -> None:
        """Remember the first ``StopSearch`` message: the search ends after this batch."""
        self.stop_message = self.stop_message or message

    def _spent(self) -> int:
        """The budget spent: trainings (each counted by its fidelity: a training at 0.25
        counts 0.25) or evaluations (each counts 1, whatever its fidelity), as the budget
        counts."""
        return self.state.trained_spent if self.by_trained else self.state.n_done

    def _stats(self, reason: str | None = None) -> dict[str, Any]:
        """The run's stats: pre-training stats, timers, counters, best reward, the last
        update's metrics (under ``last/``) and, at the end, the stop reason."""
        st = self.state
        out: dict[str, Any] = {**self.keep, **self.timers.to_dict(), "iteration": st.iteration,
                               "n_done": st.n_done, "n_trained": st.n_trained,
                               "best_reward": self.best}
        if reason is not None:
            out["stop_reason"] = reason
            if reason == "callback":
                out["stop_message"] = self.stop_message
        return {**out, **{f"last/{k}": v for k, v in self.metrics.items()}}
