"""One batch's proposals evaluated and recorded, slot by slot: an evaluation recorded before a
resume reused, a stored result reused (``cached``), a prediction recorded, or a training run
through the search's executor (``fnas.execution.executors``: in this process or on Ray). Each
evaluation is committed to the store as it completes; the driver is the only writer.

A slot that is trained takes one path, three named steps of :class:`Recorder`, each once:
**prepare** (:meth:`Recorder._prepare`: its seed and, with the knowledge pool, its
initialisation from the batch's snapshot, a :class:`SlotPlan`), **train**
(:meth:`Recorder._train`: the executor runs it) and **commit** (:meth:`Recorder._commit`: its
evaluation recorded, with its pool entries in the same transaction, a :class:`SlotResult`).
Each step measures its own seconds, carried in the plan and the result and counted in the
loop's timers once per slot (docs/DESIGN.md, "The loop")."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fnas.errors import StoreError
from fnas.execution.evaluators import Evaluator
from fnas.execution.executors import Executor, RolloutJob, SearchDeadline
from fnas.knowledge.racing import replicate_of, replicate_signature
from fnas.knowledge.store import Evaluation, Experiment, Store
from fnas.search.loop_state import Timers
from fnas.strategies.base import Proposal, Verdict
from fnas.tasks.rollout import Rollout

if TYPE_CHECKING:
    from fnas.search.pooling import PoolInit, PoolRunner

__all__ = ["Recorder", "SlotPlan", "SlotResult", "rollout_seed", "cache_signature"]


def cache_signature(task_signature: str, fidelity: float, replicate: int = 0) -> str:
    """The cache identity of a result at ``fidelity``: the task's signature at full fidelity
    (as before fidelities existed, so old stores keep their cache hits), marked with the
    fidelity below it, so that a low-fidelity result never serves, nor is served by, a full
    one (nor one at another fidelity); and a racing repeat's with its replicate
    (:func:`~fnas.knowledge.racing.replicate_signature`), so that the cache never answers a
    repeat with the result it repeats."""
    sig = task_signature if fidelity >= 1.0 else f"{task_signature}|fidelity={fidelity:.6g}"
    return replicate_signature(sig, replicate)


def rollout_seed(seed: int, iteration: int, slot: int) -> int:
    """The training seed of a batch slot: a function of the run's seed and the slot only, so
    a slot trained again after a resume (or on another worker) trains the same way."""
    return int(np.random.SeedSequence([seed, iteration, slot]).generate_state(1)[0])


@dataclass(frozen=True)
class SlotPlan:
    """What the prepare step decided for one slot to be trained (:meth:`Recorder._prepare`)."""

    iteration: int
    """The batch (policy update) the slot belongs to."""
    slot: int
    """The slot's place in its batch."""
    proposal: Proposal
    """The architecture to train, its decisions and behaviour log-probability."""
    verdict: Verdict
    """The decision step's verdict (``train`` or ``audit``) and the critic's prediction."""
    seed: int
    """The training seed (:func:`rollout_seed` of the run's seed, the iteration and the slot)."""
    pool: PoolInit | None
    """The initialisation from the batch's pool snapshot (weights, epochs, hit ratio,
    coverage, seconds spent); None without the pool."""

    @property
    def spec(self) -> Any:
        """The architecture to train."""
        return self.proposal.spec


@dataclass(frozen=True)
class SlotResult:
    """What the commit step recorded for one trained slot, and the seconds of its path by the
    loop's timer parts (:meth:`Recorder._commit`)."""

    evaluation: Evaluation
    """The evaluation as the store recorded it (with its pool fields when the pool is on)."""
    pool_seconds: float
    """Initialising from the pool's snapshot (prepare) and writing the weights' files
    (commit)."""
    evaluate_seconds: float
    """Waiting for the rollout (in this process: running it)."""
    train_seconds: float
    """The rollout's own training seconds (on a remote worker: the worker's)."""
    store_seconds: float
    """The transaction that recorded the evaluation (and its pool entries)."""


class Recorder:
    """Evaluates one run's batches through ``executor`` and records every evaluation.

    The batch's slots are settled in order, each once fewer than ``executor.parallel``
    trainings are pending, so the local executor (one at a time) trains, records and reports
    slot by slot, and a parallel one keeps its workers busy. A repeat of an architecture
    whose training is still in flight waits for it and is then served from the cache.

    Args:
        store, exp: where the evaluations go.
        evaluator: what trains (or looks up) an architecture.
        seed: the run's seed (training seeds derive from it, per slot).
        executor: where trainings run.
        timers: the loop's timers; the recorder adds its store, pool, evaluate, train seconds.
        runner: the knowledge pool's runner (``fnas.search.pooling``), or None without it.
        timeout: seconds each training may take, or None.
        threads: torch threads each training runs on (``SearchConfig.threads``; 0: as set).
        timed: ``(iteration, slots)``: the slots of that batch whose seconds ``timers``
            already count (a checkpoint written within the batch, at the compute limit).
    """

    def __init__(self, store: Store, exp: Experiment, evaluator: Evaluator, seed: int,
                 executor: Executor, timers: Timers, runner: PoolRunner | None = None,
                 timeout: float | None = None, threads: int = 0,
                 timed: tuple[int, Sequence[int]] = (0, ())) -> None:
        self.store, self.exp, self.evaluator, self.seed = store, exp, evaluator, seed
        self.executor, self.timers, self.runner = executor, timers, runner
        self.timeout = timeout
        """Seconds each training may take (``eval_timeout``; the executor stops it)."""
        self.threads = threads
        """Torch threads each training runs on (0: the process's setting)."""
        self.timed_iteration, self.timed = timed[0], set(timed[1])
        """The slots of batch ``timed_iteration`` whose seconds the timers count."""
        self.deadline: float | None = None
        self._in_flight: dict[int, SlotPlan] = {}
        """slot -> the plan of each pending training"""

    def batch(self, iteration: int, proposals: Sequence[Proposal], verdicts: Sequence[Verdict],
              deadline: float | None = None) -> Iterator[tuple[Evaluation, bool]]:
        """Evaluate and record one batch; yields each evaluation as it is recorded, with True
        for one recorded before a resume (an interrupted batch is completed, not redone).

        ``deadline`` (a ``time.monotonic()`` time, the search's compute limit): no slot is
        started after it, and an executor that ``stops`` evaluations stops the pending ones
        at it. The batch then ends with :class:`SearchDeadline`, its recorded slots kept.

        Raises:
            StoreError: a slot recorded before the resume holds another architecture.
            SearchDeadline: ``deadline`` was reached before the batch was complete.
        """
        self.deadline = deadline
        if iteration != self.timed_iteration:
            self.timed_iteration, self.timed = iteration, set()
        with self.timers.measure("store"):
            recorded = {e.slot: e for e in self.store.evaluations(self.exp.id, iteration)}
        if self.runner is not None:
            with self.timers.measure("pool"):
                self.runner.begin_batch(recorded.values())
        for slot, p in enumerate(proposals):
            ev = recorded.get(slot)
            if ev is not None and (ev.arch_key != p.spec.key or ev.fidelity != p.fidelity
                                   or replicate_of(ev.task_signature) != p.replicate):
                raise StoreError(f"run {self.exp.name!r}: recorded slot {slot} of iteration "
                                 f"{iteration} holds another architecture or fidelity; "
                                 "cannot resume")
        self._in_flight.clear()
        later: list[int] = []  # repeats of a key in flight: settled once it is recorded
        try:
            for slot, p in enumerate(proposals):
                while self.executor.pending >= self.executor.parallel:
                    yield self._collect(), False
                if slot in recorded:
                    self._count_recorded(recorded[slot])
                    yield recorded[slot], True
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    raise SearchDeadline("the search's compute limit was reached")
                if any(plan.spec.key == p.spec.key and plan.proposal.fidelity == p.fidelity
                       and plan.proposal.replicate == p.replicate
                       for plan in self._in_flight.values()):
                    later.append(slot)
                else:
                    ev = self._settle(p, iteration, slot, verdicts[slot])
                    if ev is not None:
                        yield ev, False
                    else:
                        self._train(self._prepare(p, iteration, slot, verdicts[slot]))
            while self.executor.pending:
                yield self._collect(), False
            for slot in later:
                ev = self._settle(proposals[slot], iteration, slot, verdicts[slot])
                if ev is not None:  # its twin's result, from the cache
                    yield ev, False
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    raise SearchDeadline("the search's compute limit was reached")
                # its twin failed transiently: train it
                self._train(self._prepare(proposals[slot], iteration, slot, verdicts[slot]))
                yield self._collect(), False
        finally:
            self.executor.abandon()  # an interrupted batch: a resume trains them again
            for plan in self._in_flight.values():  # prepared, never committed: the time the
                if plan.pool is not None:  # pool took still counts
                    self.timers.add("pool", plan.pool.seconds)
            self._in_flight.clear()

    def _prepare(self, p: Proposal, iteration: int, slot: int, verdict: Verdict) -> SlotPlan:
        """Prepare a slot's training: its seed and, with the pool, its initialisation from the
        batch's snapshot."""
        seed = rollout_seed(self.seed, iteration, slot)
        # a racing repeat trains from scratch, the run's full protocol (fnas.knowledge.racing)
        init = None if self.runner is None or p.replicate else self.runner.prepare(
            self.evaluator, p.spec, seed)
        return SlotPlan(iteration, slot, p, verdict, seed, init)

    def _train(self, plan: SlotPlan) -> None:
        """Hand a prepared slot's training to the executor (pool-initialised with the pool on;
        the local executor runs it when :meth:`_collect` waits for it)."""
        f = plan.proposal.fidelity
        if plan.pool is None:
            job = RolloutJob(plan.slot, plan.spec, plan.seed, timeout=self.timeout, fidelity=f,
                             threads=self.threads)
        else:
            job = RolloutJob(plan.slot, plan.spec, plan.seed, plan.pool.weights,
                             plan.pool.epochs, train=True, timeout=self.timeout, fidelity=f,
                             threads=self.threads)
        self._in_flight[plan.slot] = plan
        self.executor.submit(self.evaluator, job)

    def _collect(self) -> Evaluation:
        """Wait for the next training to complete, commit it and count its path's seconds."""
        t = time.perf_counter()
        try:
            job, rollout = self.executor.wait_until(self.deadline)
        except BaseException:  # the deadline, Ctrl-C: the time waited counts all the same
            self.timers.add("evaluate", time.perf_counter() - t)
            raise
        done = self._commit(self._in_flight.pop(job.slot), rollout, time.perf_counter() - t)
        for part, seconds in (("pool", done.pool_seconds), ("evaluate", done.evaluate_seconds),
                              ("train", done.train_seconds), ("store", done.store_seconds)):
            self.timers.add(part, seconds)
        self.timed.add(job.slot)
        return done.evaluation

    def _count_recorded(self, ev: Evaluation) -> None:
        """Count the training seconds of a slot recorded before a resume, once: the checkpoint
        was written before it (after the previous batch), so its time is in no timer. Without
        this a run killed mid-batch said "313 s training" in ``fnas show`` and "2611 s" in the
        end-of-run summary, which sums the recorded trainings (issue 36). The wall clock it
        took is not known: its training seconds stand for it."""
        if ev.slot in self.timed:
            return
        self.timed.add(ev.slot)
        if ev.trained and ev.train_seconds:
            for part in ("train", "evaluate", "wall"):
                self.timers.add(part, ev.train_seconds)

    def _base(self, p: Proposal, iteration: int, slot: int, verdict: Verdict
              ) -> dict[str, Any]:
        """The fields every evaluation of ``p`` in this slot has, however it is obtained."""
        return dict(experiment_id=self.exp.id, iteration=iteration, slot=slot,
                    arch_key=p.spec.key, arch=p.spec.to_str(), decisions=p.decisions,
                    task_signature=cache_signature(self.exp.task_signature, p.fidelity,
                                                   p.replicate),
                    behaviour_logp=p.logp, predicted_reward=verdict.mean,
                    predicted_spread=verdict.spread, fidelity=p.fidelity)

    def _settle(self, p: Proposal, iteration: int, slot: int, verdict: Verdict
                ) -> Evaluation | None:
        """Record a cached or predicted result; None if ``p`` must be trained."""
        base = self._base(p, iteration, slot, verdict)
        with self.timers.measure("store"):
            prior = self.store.lookup_trained(base["task_signature"], p.spec.key)
        if prior is None and verdict.action == "predict":
            ev = Evaluation(**base, reward=float(verdict.mean), status="ok",
                            message=f"predicted by the critic (spread {verdict.spread:.4f})",
                            predicted=True)
        elif prior is not None:
            if prior.status == "ok" and not self.evaluator.rescorable(prior):
                reward = prior.reward  # nothing to re-score from: keep the recorded reward
            else:
                reward = self.evaluator.rescore(prior.accuracy, prior.latency_ms, prior.macs)
            ev = Evaluation(**base, reward=reward, status=prior.status, message=prior.message,
                            accuracy=prior.accuracy, latency_ms=prior.latency_ms,
                            macs=prior.macs, params=prior.params, seed=prior.seed, cached=True,
                            epochs=prior.epochs, steps=prior.steps)
        else:
            return None
        with self.timers.measure("store"):
            return self.store.add_evaluation(ev)

    def _commit(self, plan: SlotPlan, rollout: Rollout, waited: float) -> SlotResult:
        """Commit a slot's training: record its evaluation and, with the pool, put its trained
        weights into the pool in the same transaction (``PoolRunner.commit``)."""
        r = rollout.result
        ev = Evaluation(**self._base(plan.proposal, plan.iteration, plan.slot, plan.verdict),
                        reward=r.reward, status=r.status, message=r.message,
                        accuracy=r.accuracy, latency_ms=r.latency_ms, macs=r.macs,
                        params=r.params, train_seconds=r.train_seconds, seed=plan.seed,
                        trained=True, audited=plan.verdict.action == "audit",
                        epochs=r.epochs or None, steps=getattr(r, "steps", 0) or None,
                        **(plan.pool.fields() if plan.pool is not None else {}))
        prepared = plan.pool.seconds if plan.pool is not None else 0.0
        if self.runner is None:
            t = time.perf_counter()
            ev = self.store.add_evaluation(ev)
            return SlotResult(ev, prepared, waited, r.train_seconds, time.perf_counter() - t)
        done = self.runner.commit(plan.spec, ev, rollout, plan.pool)
        return SlotResult(done.evaluation, prepared + done.pool_seconds, waited,
                          r.train_seconds, done.store_seconds)
