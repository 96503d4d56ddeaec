"""A rollout job, what runs it in a process, and how the loop is told that its compute limit
has come (the contract every executor shares, :mod:`fnas.execution.executors`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from fnas.tasks.rollout import Rollout, RolloutResult
from fnas.tasks.threads import torch_threads

__all__ = ["RolloutJob", "SearchDeadline", "run_job"]


@dataclass(frozen=True)
class RolloutJob:
    """One rollout to run: ``train`` (weights in and out) or a plain ``evaluate``."""

    slot: int
    spec: Any
    seed: int
    init_weights: dict | None = field(default=None, repr=False)
    epochs: int | None = None
    train: bool = False
    timeout: float | None = None
    """Seconds the evaluation may take (``eval_timeout``); past them an executor that
    ``stops`` evaluations records it as failed. None: no limit."""
    fidelity: float = 1.0
    """The fraction in (0, 1] of the full evaluation to run (``Evaluator.evaluate_at``)."""
    threads: int = 0
    """Torch threads the evaluation runs on (the run's ``threads`` setting), the caller's
    setting restored after it; 0: the process's setting as it is."""


class SearchDeadline(Exception):  # noqa: N818 - a signal to the loop, not an error
    """The search's compute limit (``budget_seconds``) was reached while evaluations were
    pending: they are stopped and not recorded, and the batch ends (a resume with more
    seconds evaluates them again)."""


def run_job(evaluator: Any, job: RolloutJob) -> Rollout:
    """Run one job with ``evaluator`` (in this process), at the job's fidelity and on its
    ``threads``: a result that does not record its fidelity gets the job's."""
    with torch_threads(getattr(job, "threads", 0)):  # a job pickled by an older fnas: none
        return _run_job(evaluator, job)


def _run_job(evaluator: Any, job: RolloutJob) -> Rollout:
    f = getattr(job, "fidelity", 1.0)  # a job pickled by an older fnas has none
    if f == 1.0:  # the full protocol, exactly as before fidelities existed
        if job.train:
            return evaluator.train(job.spec, job.seed, job.init_weights, job.epochs)
        return Rollout(evaluator.evaluate(job.spec, job.seed))
    if job.train:
        out = evaluator.train(job.spec, job.seed, job.init_weights, job.epochs, fidelity=f)
    else:
        out = Rollout(evaluator.evaluate_at(job.spec, job.seed, f))
    if getattr(out.result, "fidelity", 1.0) != f:
        out = Rollout(replace(out.result, fidelity=f), out.weights)
    return out


def _failed(evaluator: Any, job: RolloutJob, message: str) -> Rollout:
    """A failed rollout: status ``error``, the penalty reward, a one-line message."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", message).split())[:300]
    return Rollout(RolloutResult(arch=job.spec.to_str(), key=job.spec.key, status="error",
                                 message=text, reward=evaluator.reward.failure_reward,
                                 seed=job.seed, fidelity=getattr(job, "fidelity", 1.0)))
