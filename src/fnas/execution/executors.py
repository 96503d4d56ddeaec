"""Where rollouts run: in this process (``local``, the default) or as Ray tasks (``ray``).

A rollout is pure: an evaluator (its task and reward settings), an architecture, a seed, and
for a pool-initialised training its initial weights and epochs go in; a ``RolloutResult`` and,
if it trained, the trained weights come out. The driver (the search loop) alone writes the
store and the pool.

The search loop uses every executor the same way (:class:`Executor`'s contract): it submits
one job at a time while fewer than ``parallel`` are pending, and waits for one to complete
before it settles the next slot of its batch. ``LocalExecutor`` (``parallel`` 1) runs a job
when it is waited for, so a local search trains, records and reports its batch slot by slot,
in order; ``RayExecutor`` keeps up to ``parallel`` rollouts in flight and hands results back
as they complete. A rollout that raises, diverges or runs out of memory on Ray is reported by
the rollout itself (status ``error``, ``nan``, ``oom``, with the penalty reward). A rollout
whose Ray worker (or node) dies is submitted again, up to ``retries`` times, then reported as
failed (status ``error``); each retry is counted in the rollout's message, so it shows in the
store. The search goes on in every case.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from fnas.errors import ConfigError
from fnas.execution.jobs import RolloutJob, SearchDeadline, _failed, run_job
from fnas.execution.ray_net import (
    _is_loopback,
    _local_token,
    _loopback_only,
    _probe,
    _ray_rollout,
)
from fnas.tasks.rollout import Rollout

__all__ = ["RolloutJob", "SearchDeadline", "Executor", "LocalExecutor", "RayExecutor",
           "make_executor", "run_job", "EXECUTORS"]

EXECUTORS = ("local", "ray")


RAY_START = 60.0
"""Seconds a Ray task may take to start (a worker importing torch, a busy cluster): a task
interrupts itself at its job's ``timeout``; the driver cancels one still running this much
later (native code that never returns to Python)."""


class Executor(ABC):
    """Runs rollout jobs for the search loop: ``submit`` them, ``wait`` for them.

    Contract:
        - ``submit(evaluator, job)`` hands a job over; the caller keeps at most ``parallel``
          jobs pending (submitted, not yet returned by ``wait``).
        - ``wait()`` blocks until a pending job completes and returns ``(job, rollout)``;
          jobs may complete in any order. A rollout that fails is reported in its result
          where the executor can catch it (a remote worker); ``LocalExecutor`` lets the
          evaluator's exception through, as a call in this process would.
        - ``abandon()`` forgets the pending jobs (a batch that was interrupted): ``wait``
          never returns them. A resumed search submits them again.
        - The executor never touches the store or the pool: the driver records every result.
    """

    name = "base"
    parallel = 1
    """Jobs the loop keeps pending at once."""
    stops = False
    """Whether a running evaluation can be stopped: a job's ``timeout`` and the search's
    deadline (:meth:`wait_until`) are honoured. The in-process executor cannot stop one."""

    @abstractmethod
    def submit(self, evaluator: Any, job: RolloutJob) -> None:
        """Start ``job`` with ``evaluator`` (or queue it until :meth:`wait`)."""

    @abstractmethod
    def wait(self) -> tuple[RolloutJob, Rollout]:
        """The next pending job to complete, with its rollout (blocks until there is one)."""

    def wait_until(self, deadline: float | None) -> tuple[RolloutJob, Rollout]:
        """:meth:`wait`, but an executor that ``stops`` evaluations stops the pending ones at
        ``deadline`` (a ``time.monotonic()`` time) and raises :class:`SearchDeadline`. By
        default the deadline is not watched: a running evaluation is waited for."""
        return self.wait()

    @property
    @abstractmethod
    def pending(self) -> int:
        """Jobs submitted and not yet returned by :meth:`wait`."""

    @abstractmethod
    def abandon(self) -> None:
        """Forget the pending jobs; :meth:`wait` will not return them."""

    def run(self, evaluator: Any, jobs: Iterable[RolloutJob]
            ) -> Iterator[tuple[RolloutJob, Rollout]]:
        """Every job of ``jobs``, ``parallel`` at a time; yields ``(job, rollout)`` as each
        completes."""
        try:
            for job in jobs:
                if self.pending >= self.parallel:
                    yield self.wait()
                self.submit(evaluator, job)
            while self.pending:
                yield self.wait()
        finally:
            self.abandon()  # a consumer that stops early leaves nothing behind

    def check_device(self, device: str) -> None:
        """Refuse, in one line (``ConfigError``), a device this executor cannot run on."""
        from fnas.tasks.trainer import check_device

        check_device(device)

    def close(self) -> None:  # noqa: B027
        """Release what the executor holds."""


class LocalExecutor(Executor):
    """In this process, one job at a time: a job runs when it is waited for, so the loop
    records (and reports) each evaluation before it settles the next slot of its batch."""

    name = "local"

    def __init__(self) -> None:
        self._queue: deque[tuple[Any, RolloutJob]] = deque()

    def submit(self, evaluator: Any, job: RolloutJob) -> None:
        self._queue.append((evaluator, job))

    def wait(self) -> tuple[RolloutJob, Rollout]:
        assert self._queue, "wait() without a pending job"
        evaluator, job = self._queue.popleft()
        return job, run_job(evaluator, job)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def abandon(self) -> None:
        self._queue.clear()


class RayExecutor(Executor):
    """Rollouts as Ray tasks on a local Ray (started here) or an existing cluster.

    Args:
        address: a cluster's address (``ray://host:10001`` or ``host:6379``); None starts a
            local Ray with ``parallel`` CPUs (or joins one already running in this process).
        parallel: rollouts in flight at once.
        retries: times a rollout whose worker died is run again before it is reported failed.
        cpus_per_rollout: CPUs each rollout reserves (and torch threads it uses).
    """

    name = "ray"
    stops = True

    def __init__(self, address: str | None = None, parallel: int = 2, retries: int = 1,
                 cpus_per_rollout: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'ray>=2.9' "
                              "(fnas's ray extra)") from None
        if parallel < 1 or retries < 0 or cpus_per_rollout < 1:
            raise ConfigError(f"ray executor: parallel={parallel}, retries={retries}, "
                              f"cpus_per_rollout={cpus_per_rollout} out of range")
        self.ray = ray
        self.parallel, self.retries, self.cpus = int(parallel), int(retries), cpus_per_rollout
        self._owns = False
        if address and address != "auto":
            _probe(address)
        if not ray.is_initialized():
            try:
                # A local Ray listens on the loopback interface only: a Ray without token
                # authentication (older Ray, or turned off) runs anyone's code, so it must not
                # be reachable from the network. Joining a
                # cluster is explicit (``address``); securing that cluster is the user's.
                kw: dict[str, Any] = {"address": address} if address else {
                    "num_cpus": self.parallel * cpus_per_rollout,
                    "_node_ip_address": "127.0.0.1"}
                # A Ray at a loopback address is this machine's: join it as a local one
                # (its address kept, its token used) rather than hang on a routable address
                loopback = _is_loopback(address)
                if loopback:
                    _local_token()
                with _loopback_only(ray, enabled=not address or loopback):
                    ray.init(include_dashboard=False, logging_level=logging.ERROR,
                             log_to_driver=False, **kw)
            except Exception as e:  # noqa: BLE001 - Ray raises many types; one line for all
                raise ConfigError(f"cannot start or reach Ray"
                                  f"{' at ' + address if address else ''}: "
                                  f"{' '.join(str(e).split())[:200]}") from None
            self._owns = True
            from fnas.execution.ray_guard import start_guard  # a local Ray started here ends

            self._guard = None if address else start_guard(ray)  # with this process (#32)
        self._local = self._owns and not address
        """A one-node Ray started here: when its node dies there is nothing to retry on."""
        # fnas re-submits after a worker death itself (not Ray's max_retries), so that every
        # retry is counted and shows in the evaluation's message
        self._task = ray.remote(num_cpus=cpus_per_rollout, max_retries=0)(_ray_rollout)
        self._evaluator_ref: tuple[int, Any, Any] | None = None
        self._inflight: dict[Any, tuple[Any, RolloutJob]] = {}  # Ray ref -> (evaluator, job)
        self._started: dict[Any, float] = {}  # Ray ref -> when it was submitted (monotonic)
        self._deaths: dict[int, list[str]] = {}  # slot -> why each attempt's worker died

    def gpus_per_rollout(self, device: str) -> float:
        """GPUs each rollout requests: 0 on CPU; on CUDA the cluster's GPUs shared by the
        rollouts in flight (at most 1 each), so that Ray gives every task a visible GPU.

        Raises:
            ConfigError: the device is CUDA and the cluster has no GPU.
        """
        if not str(device).startswith("cuda"):
            return 0.0
        gpus = float(self.ray.cluster_resources().get("GPU", 0.0))
        if gpus <= 0:
            raise ConfigError(f"device {device!r}: the Ray cluster has no GPU "
                              "(ray.cluster_resources() lists none); use --device cpu")
        return min(1.0, gpus / self.parallel)

    def check_device(self, device: str) -> None:
        """Refuse, in one line, a device the cluster cannot provide."""
        self.gpus_per_rollout(device)

    def _ref(self, evaluator: Any) -> tuple[Any, Any]:
        """The evaluator in Ray's object store and the task to run it with (its GPUs), made
        once per evaluator."""
        if self._evaluator_ref is None or self._evaluator_ref[0] != id(evaluator):
            device = evaluator.device
            gpus = self.gpus_per_rollout(device)
            task = self._task.options(num_gpus=gpus) if gpus else self._task
            self._evaluator_ref = (id(evaluator), self.ray.put(evaluator), task)
        return self._evaluator_ref[1], self._evaluator_ref[2]

    def submit(self, evaluator: Any, job: RolloutJob) -> None:
        ev_ref, task = self._ref(evaluator)
        ref = task.remote(ev_ref, job, self.cpus)
        self._inflight[ref] = (evaluator, job)
        self._started[ref] = time.monotonic()

    @property
    def pending(self) -> int:
        return len(self._inflight)

    def abandon(self) -> None:
        self._inflight.clear()  # their results are never read; the tasks finish on their own
        self._started.clear()
        self._deaths.clear()

    def wait(self) -> tuple[RolloutJob, Rollout]:
        return self.wait_until(None)

    def _next_ready(self, deadline: float | None) -> Any:
        """The next completed task's ref, or None once one has run past its job's timeout or
        ``deadline`` is reached (whichever comes first)."""
        ends = [self._started[r] + j.timeout + RAY_START for r, (_, j) in self._inflight.items()
                if j.timeout is not None] + ([deadline] if deadline is not None else [])
        wait = max(0.0, min(ends) - time.monotonic()) if ends else None
        ready, _ = self.ray.wait(list(self._inflight), num_returns=1, timeout=wait)
        return ready[0] if ready else None

    def _overdue(self, deadline: float | None) -> tuple[RolloutJob, Rollout] | None:
        """At ``deadline``: every pending task cancelled, :class:`SearchDeadline` raised. A
        task past its job's timeout: cancelled, and its failed rollout. Else None."""
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            for ref in self._inflight:
                self.ray.cancel(ref, force=True)
            self.abandon()
            raise SearchDeadline("the search's compute limit was reached")
        for ref, (evaluator, job) in list(self._inflight.items()):
            if job.timeout is not None and now >= self._started[ref] + job.timeout + RAY_START:
                self.ray.cancel(ref, force=True)
                del self._inflight[ref], self._started[ref]
                self._deaths.pop(job.slot, None)
                return job, _failed(evaluator, job, f"timed out after {job.timeout:g} s "
                                    f"(eval_timeout): the Ray task was still out "
                                    f"{job.timeout + RAY_START:g} s after its submission and "
                                    "was cancelled")
        return None

    def wait_until(self, deadline: float | None) -> tuple[RolloutJob, Rollout]:
        ray = self.ray
        assert self._inflight, "wait() without a pending job"
        while True:
            ref = self._next_ready(deadline)
            if ref is None:
                late = self._overdue(deadline)
                if late is not None:
                    return late
                continue
            evaluator, job = self._inflight.pop(ref)
            self._started.pop(ref, None)
            died = self._deaths.get(job.slot, [])
            try:
                rollout = ray.get(ref)
            except ray.exceptions.RayTaskError as e:  # the rollout itself raised
                cause = e.cause if getattr(e, "cause", None) is not None else e
                rollout = _failed(evaluator, job, f"{type(cause).__name__}: {cause}")
            except ray.exceptions.RayError as e:  # the worker (or its node) died
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                dead = tuple(getattr(ray.exceptions, n) for n in (
                    "LocalRayletDiedError", "NodeDiedError") if hasattr(ray.exceptions, n))
                if self._local and isinstance(e, dead):  # the whole local Ray is gone
                    self.abandon()
                    raise ConfigError(f"the local Ray died ({type(e).__name__}: "
                                      f"{first[:150]}): resume the run with --resume") from None
                died = self._deaths.setdefault(job.slot, [])
                died.append(f"{type(e).__name__}: {first}")
                if len(died) <= self.retries:
                    self.submit(evaluator, job)  # run it again, in the place it freed
                    continue
                rollout = _failed(evaluator, job, f"ray worker failed {len(died)} "
                                  f"time(s), no retry left: {died[-1]}")
            else:
                if died:  # succeeded on a later attempt: say so in the record
                    n = len(died)
                    note = (f"ok after {n} {'retry' if n == 1 else 'retries'}: worker died "
                            f"({died[-1][:120]})")
                    msg = f"{rollout.result.message}; {note}" if rollout.result.message \
                        else note
                    rollout = Rollout(replace(rollout.result, message=msg), rollout.weights)
            self._deaths.pop(job.slot, None)
            return job, rollout

    def close(self) -> None:
        from fnas.execution.ray_guard import ending  # the guard ends what the shutdown left

        with ending(getattr(self, "_guard", None)):
            if self._owns and self.ray.is_initialized():
                self.ray.shutdown()


def make_executor(name: str, address: str | None = None, parallel: int = 2,
                  retries: int = 1, threads: int = 1) -> Executor:
    """``local`` or ``ray`` (see :class:`RayExecutor`); on Ray each rollout reserves
    ``threads`` CPUs (the run's ``threads`` setting; 0: one), the torch threads it runs on.
    (Local worker processes, several at once: :class:`~fnas.execution.workers.WorkerExecutor`.)

    Raises:
        ConfigError: unknown name, Ray missing or unreachable.
    """
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, parallel, retries, cpus_per_rollout=max(1, int(threads)))
    raise ConfigError(f"unknown executor {name!r}: expected one of {list(EXECUTORS)}")
