"""The worker process of :class:`fnas.execution.workers.WorkerExecutor`: ``python -m
fnas.execution.worker_main JOB_FD RESULT_FD DRIVER_PID``.

It reads messages from the driver's pipe (``path``: the driver's ``sys.path``; ``evaluator``:
the cloudpickled evaluator; ``job``: a :class:`~fnas.execution.executors.RolloutJob`) and answers
each job on the result pipe with ``("ok", rollout)``, ``("raised", exception)`` or
``("load_failed", why)``. It ignores Ctrl-C (the driver decides), and it ends when the driver
closes the pipe or dies (it checks its parent every second).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any


def _watch_parent(parent: int) -> None:
    """End this process once the driver is gone (``kill -9`` of the driver included, and
    before this process got this far)."""
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(1.0)


def _answer(out: Connection, message: tuple) -> None:
    import cloudpickle

    try:
        data = cloudpickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an exception (or result) that cannot be pickled
        if message[0] == "raised":
            e = message[1]
            data = cloudpickle.dumps(("raised", RuntimeError(f"{type(e).__name__}: {e}")))
        else:
            raise
    out.send_bytes(data)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = Connection(int(argv[0]), writable=False)
    out = Connection(int(argv[1]), readable=False)
    threading.Thread(target=_watch_parent, args=(int(argv[2]),), daemon=True).start()
    from fnas.execution.executors import run_job

    evaluator: Any = None
    shipped: bytes | None = None
    while True:
        try:
            kind, payload = pickle.loads(inbox.recv_bytes())
        except (EOFError, OSError):
            return 0
        if kind == "path":
            sys.path[:0] = [p for p in payload if p not in sys.path]
        elif kind == "evaluator":
            evaluator, shipped = None, payload
        elif kind == "job":
            if evaluator is None:
                try:
                    evaluator = pickle.loads(shipped)
                except Exception as e:  # noqa: BLE001 - a module the worker cannot import
                    _answer(out, ("load_failed", f"{type(e).__name__}: "
                                  f"{' '.join(str(e).split())[:160]}"))
                    continue
            _answer(out, ("started",))
            try:
                message: tuple = ("ok", run_job(evaluator, payload))
            except BaseException as e:  # noqa: BLE001 - raised again in the driver
                import traceback

                note = "in fnas's evaluation worker:\n" + "".join(traceback.format_exc())
                if hasattr(e, "add_note"):  # Python 3.11+: shown under the driver's traceback
                    e.add_note(note)
                message = ("raised", e)
            _answer(out, message)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
