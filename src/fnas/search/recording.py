"""One batch's proposals evaluated and recorded, slot by slot: an evaluation recorded before a
resume reused, a stored result reused (``cached``), a prediction recorded, or a training run
through the search's executor (``fnas.execution.executors``: in this process or on Ray). Each
evaluation is committed to the store as it completes; the driver is the only writer."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fnas.errors import StoreError
from fnas.execution.evaluators import Evaluator
from fnas.execution.executors import Executor, RolloutJob, SearchDeadline
from fnas.knowledge.store import Evaluation, Experiment, Store
from fnas.search.loop_state import Timers
from fnas.strategies.base import Proposal, Verdict

__all__ = ["Recorder", "rollout_seed"]


def rollout_seed(seed: int, iteration: int, slot: int) -> int:
    """The training seed of a batch slot: a function of the run's seed and the slot only, so
    a slot trained again after a resume (or on another worker) trains the same way."""
    return int(np.random.SeedSequence([seed, iteration, slot]).generate_state(1)[0])


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
        runner: the knowledge pool's runner, or None without the pool.
        timeout: seconds each training may take, or None.
    """

    def __init__(self, store: Store, exp: Experiment, evaluator: Evaluator, seed: int,
                 executor: Executor, timers: Timers, runner: Any = None,
                 timeout: float | None = None) -> None:
        self.store, self.exp, self.evaluator, self.seed = store, exp, evaluator, seed
        self.executor, self.timers, self.runner = executor, timers, runner
        self.timeout = timeout
        """Seconds each training may take (``eval_timeout``; the executor stops it)."""
        self.deadline: float | None = None
        self._in_flight: dict[int, tuple[str, dict[str, Any], Any]] = {}
        """slot -> (architecture key, pool fields, pool InitStats) of each pending training"""

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
        with self.timers.measure("store"):
            recorded = {e.slot: e for e in self.store.evaluations(self.exp.id, iteration)}
        if self.runner is not None:
            self.runner.begin_batch(recorded.values())
        for slot, p in enumerate(proposals):
            ev = recorded.get(slot)
            if ev is not None and ev.arch_key != p.spec.key:
                raise StoreError(f"run {self.exp.name!r}: recorded slot {slot} of iteration "
                                 f"{iteration} holds another architecture; cannot resume")
        self._in_flight.clear()
        later: list[int] = []  # repeats of a key in flight: settled once it is recorded
        try:
            for slot, p in enumerate(proposals):
                while self.executor.pending >= self.executor.parallel:
                    yield self._collect(iteration, proposals, verdicts), False
                if slot in recorded:
                    yield recorded[slot], True
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    raise SearchDeadline("the search's compute limit was reached")
                if any(k == p.spec.key for k, _, _ in self._in_flight.values()):
                    later.append(slot)
                else:
                    ev = self._settle(p, iteration, slot, verdicts[slot])
                    if ev is not None:
                        yield ev, False
                    else:
                        self._submit(p, iteration, slot)
            while self.executor.pending:
                yield self._collect(iteration, proposals, verdicts), False
            for slot in later:
                ev = self._settle(proposals[slot], iteration, slot, verdicts[slot])
                if ev is not None:  # its twin's result, from the cache
                    yield ev, False
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    raise SearchDeadline("the search's compute limit was reached")
                self._submit(proposals[slot], iteration, slot)  # its twin failed transiently
                yield self._collect(iteration, proposals, verdicts), False
        finally:
            self.executor.abandon()  # an interrupted batch: a resume trains them again
            self._in_flight.clear()

    def _submit(self, p: Proposal, iteration: int, slot: int) -> None:
        """Hand the training of ``p`` to the executor (pool-initialised with the pool on)."""
        rs = rollout_seed(self.seed, iteration, slot)
        if self.runner is not None:
            pool_s = self.runner.seconds
            init, epochs, fields, stats = self.runner.prepare(self.evaluator, p.spec, rs)
            self.timers.add("pool", self.runner.seconds - pool_s)
            job = RolloutJob(slot, p.spec, rs, init, epochs, train=True, timeout=self.timeout)
        else:
            job, fields, stats = RolloutJob(slot, p.spec, rs, timeout=self.timeout), {}, None
        self._in_flight[slot] = (p.spec.key, fields, stats)
        self.executor.submit(self.evaluator, job)

    def _collect(self, iteration: int, proposals: Sequence[Proposal],
                 verdicts: Sequence[Verdict]) -> Evaluation:
        """Wait for the next training to complete and record it (with its pool entries)."""
        with self.timers.measure("evaluate"):
            job, rollout = self.executor.wait_until(self.deadline)
        p = proposals[job.slot]
        _, fields, stats = self._in_flight.pop(job.slot)
        then = None
        if self.runner is not None:
            pool_s = self.runner.seconds
            then = self.runner.stage(p.spec, rollout, stats)
            self.timers.add("pool", self.runner.seconds - pool_s)
        self.timers.add("train", rollout.result.train_seconds)
        return self._record_trained(p, iteration, job.slot, job.seed, rollout.result,
                                    verdicts[job.slot], fields, then)

    def _base(self, p: Proposal, iteration: int, slot: int, verdict: Verdict
              ) -> dict[str, Any]:
        """The fields every evaluation of ``p`` in this slot has, however it is obtained."""
        return dict(experiment_id=self.exp.id, iteration=iteration, slot=slot,
                    arch_key=p.spec.key, arch=p.spec.to_str(), decisions=p.decisions,
                    task_signature=self.exp.task_signature, behaviour_logp=p.logp,
                    predicted_reward=verdict.mean, predicted_spread=verdict.spread)

    def _settle(self, p: Proposal, iteration: int, slot: int, verdict: Verdict
                ) -> Evaluation | None:
        """Record a cached or predicted result; None if ``p`` must be trained."""
        base = self._base(p, iteration, slot, verdict)
        with self.timers.measure("store"):
            prior = self.store.lookup_trained(self.exp.task_signature, p.spec.key)
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
                            epochs=prior.epochs)
        else:
            return None
        with self.timers.measure("store"):
            return self.store.add_evaluation(ev)

    def _record_trained(self, p: Proposal, iteration: int, slot: int, rs: int, r: Any,
                        verdict: Verdict, extra: dict[str, Any], then: Any) -> Evaluation:
        """Record a training's evaluation (and, through ``then``, its pool entries with it)."""
        ev = Evaluation(**self._base(p, iteration, slot, verdict), reward=r.reward,
                        status=r.status, message=r.message, accuracy=r.accuracy,
                        latency_ms=r.latency_ms, macs=r.macs, params=r.params,
                        train_seconds=r.train_seconds, seed=rs, trained=True,
                        audited=verdict.action == "audit", epochs=r.epochs or None, **extra)
        with self.timers.measure("store"):
            return self.store.add_evaluation(ev, then)
