"""Evaluations in a worker process that can be stopped: per-evaluation timeouts and a search's
compute limit (``budget_seconds``) that holds within a batch.

An evaluation that runs in the search's own process cannot be stopped: an objective that never
returns holds the search. :class:`WorkerExecutor` runs each evaluation in a long-lived worker
process instead (started on its first evaluation, reused for the next ones; ``parallel``
workers run that many evaluations at once, ``optimize(n_workers=N)`` without Ray), and waits
for each with a limit:

- past the job's ``timeout`` (``create_search(timeout=)``, ``--eval-timeout``) the worker is
  killed and the evaluation is recorded as failed (status ``error``, the message says it
  timed out); the next evaluation starts a fresh worker;
- past the search's deadline (``budget_seconds``) the worker is killed, the evaluation is not
  recorded (it was cut short by the search, not failed by the architecture) and
  :class:`~fnas.execution.executors.SearchDeadline` ends the batch; a resume with more seconds
  evaluates it again;
- a worker that dies (a crash in native code, the kernel's OOM killer) is a failed evaluation,
  and the search goes on.

The evaluator travels to the worker with ``cloudpickle`` once per worker start, so an objective
may be a closure or a lambda; the worker adds the driver's ``sys.path``, so an objective
imported from the user's own module is found there. Results come back from our own worker
(pickled by it; nothing a user wrote is unpickled that was not already running). An
objective's exception that fnas does not ``catch`` is raised again in the driver, as it would
be in-process. What the objective keeps in globals lives in the worker, not in the driver.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as connection_wait
from pathlib import Path
from typing import Any

from fnas.errors import ConfigError
from fnas.execution.executors import Executor, RolloutJob, SearchDeadline, _failed
from fnas.tasks.rollout import Rollout

__all__ = ["WorkerExecutor", "can_ship"]

_GRACE = 2.0
"""Seconds a worker asked to stop (SIGTERM) gets before it is killed (SIGKILL)."""
_START_LIMIT = 300.0
"""Seconds a worker may take to start an evaluation (import torch, load the objective)."""


def _dumps(obj: Any) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def can_ship(evaluator: Any) -> str | None:
    """None if ``evaluator`` can be sent to a worker process; else why not, in one line."""
    try:
        _dumps(evaluator)
    except Exception as e:  # noqa: BLE001 - pickling raises many types
        return f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
    return None


class _Worker:
    """One worker process, its pipes, and the evaluation it runs (None: free)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.to: Connection | None = None
        self.inbox: Connection | None = None
        self.shipped: int | None = None  # id() of the evaluator the worker holds
        self.job: tuple[Any, RolloutJob] | None = None
        self.start_by = 0.0  # the evaluation must have started by then (monotonic)
        self.limit: float | None = None  # its timeout, once started (monotonic)


class WorkerExecutor(Executor):
    """Evaluations in ``parallel`` worker processes (one by default), each stopped at its
    job's ``timeout`` and at the search's deadline (see the module's docstring).

    Args:
        parallel: worker processes, each running one evaluation at a time (the search keeps
            this many in flight: ``optimize(n_workers=N)`` without Ray).
    """

    name = "worker"
    stops = True

    def __init__(self, parallel: int = 1) -> None:
        if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
            raise ConfigError(f"worker processes: parallel={parallel!r}, expected an "
                              "integer >= 1")
        self.parallel = parallel
        self._queue: deque[tuple[Any, RolloutJob]] = deque()
        self._workers = [_Worker() for _ in range(parallel)]
        self.started = 0
        """Workers started (one per worker, plus one after each kill)."""

    # ---- the Executor contract ----------------------------------------------------------
    def submit(self, evaluator: Any, job: RolloutJob) -> None:
        self._queue.append((evaluator, job))  # sent to a free worker at the next wait

    @property
    def pending(self) -> int:
        return len(self._queue) + sum(w.job is not None for w in self._workers)

    def abandon(self) -> None:
        self._queue.clear()
        for w in self._workers:
            if w.job is not None:  # an evaluation no one will wait for: stopped
                self._stop(w)

    def wait(self) -> tuple[RolloutJob, Rollout]:
        return self.wait_until(None)

    def wait_until(self, deadline: float | None) -> tuple[RolloutJob, Rollout]:
        assert self.pending, "wait() without a pending job"
        try:
            return self._next(deadline)
        except BaseException:  # Ctrl-C, the deadline, the objective's exception: the
            self.abandon()     # evaluations in flight are not recorded
            raise

    def close(self) -> None:
        self._queue.clear()
        for w in self._workers:
            self._stop(w)

    # ---- the workers ----------------------------------------------------------------------
    def _start(self, w: _Worker) -> None:
        r_job, w_job = os.pipe()
        r_res, w_res = os.pipe()
        cmd = [sys.executable, "-m", "fnas.execution.worker_main", str(r_job), str(w_res),
               str(os.getpid())]
        # the worker imports this fnas, even one the driver found by editing sys.path
        env = dict(os.environ)
        here = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in env.get(
            "PYTHONPATH", "").split(os.pathsep) if p])
        try:
            w.proc = subprocess.Popen(cmd, pass_fds=(r_job, w_res), stdin=subprocess.DEVNULL,
                                      env=env)
        finally:
            os.close(r_job)
            os.close(w_res)
        w.to = Connection(w_job, readable=False)
        w.inbox = Connection(r_res, writable=False)
        w.shipped = None
        self.started += 1
        w.to.send_bytes(_dumps(("path", list(sys.path))))

    def _stop(self, w: _Worker) -> None:
        """Stop a worker (SIGTERM, then SIGKILL), close its pipes, forget its job."""
        proc, w.proc, w.job = w.proc, None, None
        for conn in (w.to, w.inbox):
            if conn is not None:
                conn.close()
        w.to = w.inbox = None
        w.shipped = None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _send(self, w: _Worker, evaluator: Any, job: RolloutJob) -> None:
        if w.proc is None or w.proc.poll() is not None:
            self._stop(w)
            self._start(w)
        assert w.to is not None
        if w.shipped != id(evaluator):
            try:
                data = _dumps(evaluator)
            except Exception as e:  # noqa: BLE001
                raise ConfigError(f"the objective cannot be sent to a worker process "
                                  f"({type(e).__name__}: {' '.join(str(e).split())[:160]}): "
                                  "define it at module level, or drop eval_timeout and "
                                  "n_workers") from None
            w.to.send_bytes(_dumps(("evaluator", data)))
            w.shipped = id(evaluator)
        w.to.send_bytes(_dumps(("job", job)))

    def _fill(self) -> None:
        """Hand the queued jobs to the free workers."""
        for w in self._workers:
            if not self._queue:
                return
            if w.job is not None:
                continue
            evaluator, job = self._queue.popleft()
            try:
                self._send(w, evaluator, job)
            except (BrokenPipeError, OSError):  # the worker died between evaluations
                self._stop(w)
                self._send(w, evaluator, job)
            # the timeout counts from the evaluation's start in the worker (not the worker's
            # own start: importing torch and loading the objective are fnas's overhead)
            w.job, w.start_by, w.limit = (evaluator, job), time.monotonic() + _START_LIMIT, None

    def _next(self, deadline: float | None) -> tuple[RolloutJob, Rollout]:
        """The next evaluation to end, as it ends: a result, a failure (timed out, its worker
        died or never started it), the objective's exception raised, or the deadline."""
        while True:
            self._fill()
            busy = [w for w in self._workers if w.job is not None]
            ends = [t for w in busy for t in (w.limit or w.start_by,)] + (
                [deadline] if deadline is not None else [])
            wait = min(ends) - time.monotonic()
            ready = connection_wait([w.inbox for w in busy if w.inbox is not None],
                                    max(0.0, min(wait, 1.0)))
            for w in busy:
                if w.inbox in ready:
                    done = self._message(w)
                    if done is not None:
                        return done
            now = time.monotonic()
            for w in busy:
                if w.job is None:
                    continue
                (evaluator, job), limit = w.job, w.limit
                if limit is not None and now >= limit and (deadline is None
                                                           or limit < deadline):
                    self._stop(w)
                    return job, _failed(evaluator, job, f"timed out after {job.timeout:g} s "
                                        "(eval_timeout): the worker was stopped")
                if limit is None and now >= w.start_by:
                    self._stop(w)
                    return job, _failed(evaluator, job, "the evaluation's worker process did "
                                        f"not start it within {_START_LIMIT:g} s")
                if w.proc is not None and w.proc.poll() is not None and w.inbox is not None \
                        and not w.inbox.poll(0):
                    return job, self._died(w)
            if deadline is not None and now >= deadline:
                raise SearchDeadline("the search's compute limit was reached")

    def _message(self, w: _Worker) -> tuple[RolloutJob, Rollout] | None:
        """Read one message of a busy worker: its result (the worker is free again), None
        (the evaluation started), or raise what the objective raised."""
        assert w.job is not None and w.inbox is not None
        evaluator, job = w.job
        try:
            kind, *rest = pickle.loads(w.inbox.recv_bytes())
        except (EOFError, OSError):
            return job, self._died(w)
        if kind == "started":
            w.limit = time.monotonic() + (job.timeout if job.timeout is not None
                                          else float("inf"))
            return None
        w.job = None
        if kind == "ok":
            return job, rest[0]
        if kind == "load_failed":
            self._stop(w)
            raise ConfigError(f"the worker process cannot load the objective "
                              f"({rest[0]}): define it in an importable module")
        raise rest[0]  # the objective's exception, as in-process

    def _died(self, w: _Worker) -> Rollout:
        assert w.job is not None
        evaluator, job = w.job
        code = None
        if w.proc is not None:
            try:
                code = w.proc.wait(_GRACE)  # the pipe closes just before it exits
            except subprocess.TimeoutExpired:
                pass
        self._stop(w)
        if code is None:
            how = "unknown"
        elif code >= 0:
            how = f"exit status {code}"
        else:
            try:
                how = f"signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"signal {-code}"
        return _failed(evaluator, job, f"the evaluation's worker process died ({how})")
