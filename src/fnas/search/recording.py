"""One batch's proposals evaluated and recorded: a stored result reused (``cached``), a
prediction recorded, or a training run here or through a parallel executor; each evaluation
is committed to the store as it completes (the driver is the only writer)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fnas.knowledge.store import Evaluation, Experiment, Store
from fnas.search.evaluators import Evaluator
from fnas.search.strategy import Verdict

__all__ = ["evaluate", "evaluate_parallel", "rollout_seed"]


def rollout_seed(seed: int, iteration: int, slot: int) -> int:
    return int(np.random.SeedSequence([seed, iteration, slot]).generate_state(1)[0])


def evaluate_parallel(store: Store, exp: Experiment, evaluator: Evaluator, proposals: list,
                       verdicts: list, existing: dict[int, Evaluation], iteration: int,
                       seed: int, timers: dict[str, float], runner: Any, executor: Any,
                       done: Any) -> list[Evaluation]:
    """One batch through a parallel executor: cached and predicted results first, then every
    training in flight at once, each recorded as it completes (the driver is the only
    writer); a repeat of an architecture trained in this same batch waits for it and is
    then served from the cache, as in the sequential path."""
    from fnas.search.executors import RolloutJob

    evals: list[Evaluation | None] = [None] * len(proposals)
    jobs, later, meta = [], [], {}
    first_of: dict[str, int] = {}
    for slot, p in enumerate(proposals):
        ev = existing.get(slot)
        if ev is None:
            ev = _settle(store, exp, evaluator, p, iteration, slot, timers, verdicts[slot])
            if ev is not None:
                done(ev)
        if ev is not None:
            evals[slot] = ev
            continue
        if p.spec.key in first_of:
            later.append(slot)
            continue
        first_of[p.spec.key] = slot
        rs = rollout_seed(seed, iteration, slot)
        if runner is not None:
            pool_s = runner.seconds
            init, epochs, fields, stats = runner.prepare(evaluator, p.spec, rs)
            timers["pool"] += runner.seconds - pool_s
            jobs.append(RolloutJob(slot, p.spec, rs, init, epochs, train=True))
        else:
            fields, stats = {}, None
            jobs.append(RolloutJob(slot, p.spec, rs))
        meta[slot] = (fields, stats)
    t = time.perf_counter()
    for job, rollout in executor.run(evaluator, jobs):
        slot = job.slot
        fields, stats = meta[slot]
        then = None
        if runner is not None:
            pool_s = runner.seconds
            then = runner.stage(proposals[slot].spec, rollout, stats)
            timers["pool"] += runner.seconds - pool_s
        ev = _record_trained(store, exp, proposals[slot], iteration, slot, job.seed,
                             rollout.result, verdicts[slot], fields, timers, then)
        evals[slot] = ev
        timers["train"] += rollout.result.train_seconds
        done(ev)
    timers["evaluate"] += time.perf_counter() - t
    for slot in later:  # now a cached result (or retrained if its twin failed transiently)
        evals[slot] = evaluate(store, exp, evaluator, proposals[slot], iteration, slot, seed,
                                timers, verdicts[slot], runner)
        done(evals[slot])
    return evals  # type: ignore[return-value]


def _base(exp: Experiment, p, iteration: int, slot: int,
          verdict: Verdict | None = None) -> dict[str, Any]:
    v = verdict or Verdict()
    return dict(experiment_id=exp.id, iteration=iteration, slot=slot, arch_key=p.spec.key,
                arch=p.spec.to_str(), decisions=p.decisions, task_signature=exp.task_signature,
                behaviour_logp=p.logp, predicted_reward=v.mean, predicted_spread=v.spread)


def _settle(store: Store, exp: Experiment, evaluator: Evaluator, p, iteration: int, slot: int,
            timers: dict[str, float], verdict: Verdict) -> Evaluation | None:
    """Record a cached or predicted result; None if ``p`` must be trained."""
    base = _base(exp, p, iteration, slot, verdict)
    t = time.perf_counter()
    prior = store.lookup_trained(exp.task_signature, p.spec.key)
    timers["store"] += time.perf_counter() - t
    if prior is None and verdict.action == "predict":
        ev = Evaluation(**base, reward=float(verdict.mean), status="ok",
                        message=f"predicted by the critic (spread {verdict.spread:.4f})",
                        predicted=True)
    elif prior is not None:
        if prior.accuracy is None and prior.status == "ok":
            reward = prior.reward  # nothing to re-score from: keep the recorded reward
        else:
            reward = evaluator.rescore(prior.accuracy, prior.latency_ms, prior.macs)
        ev = Evaluation(**base, reward=reward, status=prior.status, message=prior.message,
                        accuracy=prior.accuracy, latency_ms=prior.latency_ms, macs=prior.macs,
                        params=prior.params, seed=prior.seed, cached=True, epochs=prior.epochs)
    else:
        return None
    t = time.perf_counter()
    ev = store.add_evaluation(ev)
    timers["store"] += time.perf_counter() - t
    return ev


def _record_trained(store: Store, exp: Experiment, p, iteration: int, slot: int, rs: int,
                    r: Any, verdict: Verdict, extra: dict[str, Any],
                    timers: dict[str, float], then: Any = None) -> Evaluation:
    """Record a training's evaluation (and, through ``then``, its pool entries with it)."""
    ev = Evaluation(**_base(exp, p, iteration, slot, verdict), reward=r.reward, status=r.status,
                    message=r.message, accuracy=r.accuracy, latency_ms=r.latency_ms,
                    macs=r.macs, params=r.params, train_seconds=r.train_seconds, seed=rs,
                    trained=True, audited=verdict.action == "audit", epochs=r.epochs or None,
                    **extra)
    t = time.perf_counter()
    ev = store.add_evaluation(ev, then)
    timers["store"] += time.perf_counter() - t
    return ev


def evaluate(store: Store, exp: Experiment, evaluator: Evaluator, p, iteration: int, slot: int,
              seed: int, timers: dict[str, float], verdict: Verdict | None = None,
              runner: Any = None) -> Evaluation:
    """Reuse a stored result for this task, predict, or train here; record the evaluation."""
    verdict = verdict or Verdict()
    ev = _settle(store, exp, evaluator, p, iteration, slot, timers, verdict)
    if ev is not None:
        return ev
    rs = rollout_seed(seed, iteration, slot)
    t = time.perf_counter()
    extra: dict[str, Any] = {}
    then = None
    if runner is not None:
        pool_s = runner.seconds
        rollout, extra, stats = runner.train(evaluator, p.spec, rs)
        r = rollout.result
        t += runner.seconds - pool_s  # the pool's share is not the rollout's
        timers["evaluate"] += time.perf_counter() - t
        then = runner.stage(p.spec, rollout, stats)
        timers["pool"] += runner.seconds - pool_s
    else:
        r = evaluator.evaluate(p.spec, rs)
        timers["evaluate"] += time.perf_counter() - t
    timers["train"] += r.train_seconds
    return _record_trained(store, exp, p, iteration, slot, rs, r, verdict, extra, timers, then)
