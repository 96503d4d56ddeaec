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

import contextlib
import logging
import os
import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from fnas.errors import ConfigError
from fnas.tasks.rollout import Rollout, RolloutResult

__all__ = ["RolloutJob", "Executor", "LocalExecutor", "RayExecutor", "make_executor", "run_job",
           "EXECUTORS"]

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class RolloutJob:
    """One rollout to run: ``train`` (weights in and out) or a plain ``evaluate``."""

    slot: int
    spec: Any
    seed: int
    init_weights: dict | None = field(default=None, repr=False)
    epochs: int | None = None
    train: bool = False


def run_job(evaluator: Any, job: RolloutJob) -> Rollout:
    """Run one job with ``evaluator`` (in this process)."""
    if job.train:
        return evaluator.train(job.spec, job.seed, job.init_weights, job.epochs)
    return Rollout(evaluator.evaluate(job.spec, job.seed))


def _failed(evaluator: Any, job: RolloutJob, message: str) -> Rollout:
    """A failed rollout: status ``error``, the penalty reward, a one-line message."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", message).split())[:300]
    return Rollout(RolloutResult(arch=job.spec.to_str(), key=job.spec.key, status="error",
                                 message=text, reward=evaluator.reward.failure_reward,
                                 seed=job.seed))


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

    @abstractmethod
    def submit(self, evaluator: Any, job: RolloutJob) -> None:
        """Start ``job`` with ``evaluator`` (or queue it until :meth:`wait`)."""

    @abstractmethod
    def wait(self) -> tuple[RolloutJob, Rollout]:
        """The next pending job to complete, with its rollout (blocks until there is one)."""

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


def _ray_rollout(evaluator: Any, job: RolloutJob, threads: int) -> Rollout:
    import torch

    torch.set_num_threads(threads)  # one core per task: no oversubscription
    return run_job(evaluator, job)


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an unreachable cluster (``ray.init`` would wait minutes)."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot reach Ray at {address}: "
                          f"{getattr(e, 'strerror', None) or e}") from None


@contextlib.contextmanager
def _loopback_only(ray: Any, enabled: bool = True) -> Iterator[None]:
    """Make a local ``ray.init`` bind every Ray server (GCS, raylet, workers) to 127.0.0.1.

    ``_node_ip_address="127.0.0.1"`` alone is not enough: on Linux Ray swaps a loopback node
    address for the machine's routable one, and its gRPC servers then listen on all
    interfaces. Ray keeps the loopback address when its ``ENABLE_RAY_CLUSTER`` switch is off
    (its default on macOS and Windows, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), so it is
    turned off for the duration of the start, then restored.
    """
    if not enabled:
        yield
        return
    var = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    old_env = os.environ.get(var)
    os.environ[var] = "0"
    try:
        from ray._private import ray_constants
    except ImportError:  # a Ray without the switch: the address argument is all there is
        ray_constants = None
    old_flag = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    if ray_constants is not None and old_flag is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old_env
        if ray_constants is not None and old_flag is not None:
            ray_constants.ENABLE_RAY_CLUSTER = old_flag


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

    def __init__(self, address: str | None = None, parallel: int = 2, retries: int = 1,
                 cpus_per_rollout: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'fnas[ray]' "
                              "(or pip install 'ray>=2.9')") from None
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
                # A local Ray listens on the loopback interface only: Ray has no
                # authentication, so it must not be reachable from the network. Joining a
                # cluster is explicit (``address``); securing that cluster is the user's.
                kw: dict[str, Any] = {"address": address} if address else {
                    "num_cpus": self.parallel * cpus_per_rollout,
                    "_node_ip_address": "127.0.0.1"}
                with _loopback_only(ray, enabled=not address):
                    ray.init(include_dashboard=False, logging_level=logging.ERROR,
                             log_to_driver=False, **kw)
            except Exception as e:  # noqa: BLE001 - Ray raises many types; one line for all
                raise ConfigError(f"cannot start or reach Ray"
                                  f"{' at ' + address if address else ''}: "
                                  f"{' '.join(str(e).split())[:200]}") from None
            self._owns = True
            from fnas.search.ray_guard import start_guard  # a local Ray started here ends

            self._guard = None if address else start_guard(ray)  # with this process (#32)
        # fnas re-submits after a worker death itself (not Ray's max_retries), so that every
        # retry is counted and shows in the evaluation's message
        self._task = ray.remote(num_cpus=cpus_per_rollout, max_retries=0)(_ray_rollout)
        self._evaluator_ref: tuple[int, Any, Any] | None = None
        self._inflight: dict[Any, tuple[Any, RolloutJob]] = {}  # Ray ref -> (evaluator, job)
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
            device = getattr(getattr(evaluator, "task", None), "device", "cpu")
            gpus = self.gpus_per_rollout(device)
            task = self._task.options(num_gpus=gpus) if gpus else self._task
            self._evaluator_ref = (id(evaluator), self.ray.put(evaluator), task)
        return self._evaluator_ref[1], self._evaluator_ref[2]

    def submit(self, evaluator: Any, job: RolloutJob) -> None:
        ev_ref, task = self._ref(evaluator)
        self._inflight[task.remote(ev_ref, job, self.cpus)] = (evaluator, job)

    @property
    def pending(self) -> int:
        return len(self._inflight)

    def abandon(self) -> None:
        self._inflight.clear()  # their results are never read; the tasks finish on their own
        self._deaths.clear()

    def wait(self) -> tuple[RolloutJob, Rollout]:
        ray = self.ray
        assert self._inflight, "wait() without a pending job"
        while True:
            (ref,), _ = ray.wait(list(self._inflight), num_returns=1)
            evaluator, job = self._inflight.pop(ref)
            died = self._deaths.get(job.slot, [])
            try:
                rollout = ray.get(ref)
            except ray.exceptions.RayTaskError as e:  # the rollout itself raised
                cause = e.cause if getattr(e, "cause", None) is not None else e
                rollout = _failed(evaluator, job, f"{type(cause).__name__}: {cause}")
            except ray.exceptions.RayError as e:  # the worker (or its node) died
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
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
        from fnas.search.ray_guard import ending  # the guard ends what the shutdown left

        with ending(getattr(self, "_guard", None)):
            if self._owns and self.ray.is_initialized():
                self.ray.shutdown()


def make_executor(name: str, address: str | None = None, parallel: int = 2,
                  retries: int = 1) -> Executor:
    """``local`` or ``ray`` (see :class:`RayExecutor`).

    Raises:
        ConfigError: unknown name, Ray missing or unreachable.
    """
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, parallel, retries)
    raise ConfigError(f"unknown executor {name!r}: expected one of {list(EXECUTORS)}")
