"""Evaluations in a worker process that can be stopped: per-evaluation timeouts and a search's
compute limit (``budget_seconds``) that holds within a batch.

An evaluation that runs in the search's own process cannot be stopped: an objective that never
returns holds the search. :class:`WorkerExecutor` runs each evaluation in one long-lived
worker process instead (started on the first evaluation, reused for the next ones), and
waits for it with a limit:

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


class WorkerExecutor(Executor):
    """Evaluations one at a time in a worker process, each stopped at its job's ``timeout``
    and at the search's deadline (see the module's docstring)."""

    name = "worker"
    stops = True

    def __init__(self) -> None:
        self._queue: deque[tuple[Any, RolloutJob]] = deque()
        self._proc: subprocess.Popen | None = None
        self._to: Connection | None = None
        self._from: Connection | None = None
        self._shipped: int | None = None  # id() of the evaluator the worker holds
        self.started = 0
        """Workers started (one, plus one after each kill)."""

    # ---- the Executor contract ----------------------------------------------------------
    def submit(self, evaluator: Any, job: RolloutJob) -> None:
        self._queue.append((evaluator, job))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def abandon(self) -> None:
        self._queue.clear()

    def wait(self) -> tuple[RolloutJob, Rollout]:
        return self.wait_until(None)

    def wait_until(self, deadline: float | None) -> tuple[RolloutJob, Rollout]:
        assert self._queue, "wait() without a pending job"
        evaluator, job = self._queue.popleft()
        try:
            return job, self._run(evaluator, job, deadline)
        except BaseException:  # Ctrl-C, the deadline: the evaluation is not recorded
            self._stop()
            raise

    def close(self) -> None:
        self._stop()

    # ---- the worker -----------------------------------------------------------------------
    def _start(self) -> None:
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
            self._proc = subprocess.Popen(cmd, pass_fds=(r_job, w_res), stdin=subprocess.DEVNULL,
                                          env=env)
        finally:
            os.close(r_job)
            os.close(w_res)
        self._to = Connection(w_job, readable=False)
        self._from = Connection(r_res, writable=False)
        self._shipped = None
        self.started += 1
        self._to.send_bytes(_dumps(("path", list(sys.path))))

    def _stop(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL) and close its pipes."""
        proc, self._proc = self._proc, None
        for conn in (self._to, self._from):
            if conn is not None:
                conn.close()
        self._to = self._from = None
        self._shipped = None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _send(self, evaluator: Any, job: RolloutJob) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            self._start()
        assert self._to is not None
        if self._shipped != id(evaluator):
            try:
                data = _dumps(evaluator)
            except Exception as e:  # noqa: BLE001
                raise ConfigError(f"the objective cannot be sent to a worker process "
                                  f"({type(e).__name__}: {' '.join(str(e).split())[:160]}): "
                                  "define it at module level, or drop eval_timeout") from None
            self._to.send_bytes(_dumps(("evaluator", data)))
            self._shipped = id(evaluator)
        self._to.send_bytes(_dumps(("job", job)))

    def _run(self, evaluator: Any, job: RolloutJob, deadline: float | None) -> Rollout:
        try:
            self._send(evaluator, job)
        except (BrokenPipeError, OSError):  # the worker died between evaluations
            self._stop()
            self._send(evaluator, job)
        # the timeout counts from the evaluation's start in the worker (not the worker's own
        # start: importing torch and loading the objective are fnas's overhead)
        start_by = time.monotonic() + _START_LIMIT
        limit = None
        assert self._from is not None
        while True:
            ends = [t for t in (limit or start_by, deadline) if t is not None]
            wait = min(ends) - time.monotonic()
            if self._from.poll(max(0.0, min(wait, 1.0))):
                try:
                    kind, *rest = pickle.loads(self._from.recv_bytes())
                except (EOFError, OSError):
                    return self._died(evaluator, job)
                if kind == "started":
                    limit = time.monotonic() + (job.timeout if job.timeout is not None
                                                else float("inf"))
                    continue
                if kind == "ok":
                    return rest[0]
                if kind == "load_failed":
                    self._stop()
                    raise ConfigError(f"the worker process cannot load the objective "
                                      f"({rest[0]}): define it in an importable module")
                raise rest[0]  # the objective's exception, as in-process
            now = time.monotonic()
            if deadline is not None and now >= deadline and (limit is None or deadline <= limit):
                raise SearchDeadline("the search's compute limit was reached")
            if limit is not None and now >= limit:
                self._stop()
                return _failed(evaluator, job, f"timed out after {job.timeout:g} s "
                               "(eval_timeout): the worker was stopped")
            if limit is None and now >= start_by:
                self._stop()
                return _failed(evaluator, job, f"the evaluation's worker process did not "
                               f"start it within {_START_LIMIT:g} s")
            if self._proc is not None and self._proc.poll() is not None \
                    and not self._from.poll(0):
                return self._died(evaluator, job)

    def _died(self, evaluator: Any, job: RolloutJob) -> Rollout:
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(_GRACE)  # the pipe closes just before it exits
            except subprocess.TimeoutExpired:
                pass
        self._stop()
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
