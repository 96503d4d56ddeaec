"""Ray's side of the Ray executor: starting or joining Ray safely (fail fast on an unreachable
cluster, keep a local Ray on the loopback interface: Ray has no authentication) and the task
each rollout runs as (with its timeout)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from fnas.errors import ConfigError
from fnas.execution.jobs import RolloutJob, _failed, run_job
from fnas.tasks.rollout import Rollout

__all__ = ["_probe", "_is_loopback", "_local_token", "_loopback_only", "_ray_rollout",
           "EvaluationTimeout"]


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


def _is_loopback(address: str | None) -> bool:
    """Whether a cluster ``address`` (``host:port`` or ``ray://host:port``) names this
    machine's loopback interface: a local Ray that fnas (or a user) bound there."""
    if not address or address == "auto":
        return False
    host = address.split("://", 1)[-1].rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_token() -> None:
    """Let a driver that joins a Ray on this machine's loopback interface authenticate as
    ``ray.init(address="auto")`` would: Ray (2.5x on) starts a local cluster with token
    authentication and keeps the token in ``~/.ray/auth_token``, but sends it to an
    *explicit* address only when ``RAY_AUTH_MODE=token`` is set. For a loopback address the
    cluster is this machine's, so the token is used where one exists (``RAY_AUTH_MODE`` set by
    the user is respected). A Ray without token authentication: nothing to do."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:
        return
    with contextlib.suppress(Exception):  # Ray's own check; a failure leaves Ray's default
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


@contextlib.contextmanager
def _loopback_only(ray: Any, enabled: bool = True) -> Iterator[None]:
    """Make a local ``ray.init`` bind every Ray server (GCS, raylet, workers) to 127.0.0.1.

    ``_node_ip_address="127.0.0.1"`` alone is not enough: on Linux Ray swaps a loopback node
    address for the machine's routable one, and its gRPC servers then listen on all
    interfaces. Ray keeps the loopback address when its ``ENABLE_RAY_CLUSTER`` switch is off
    (its default on macOS and Windows, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), so it is
    turned off for the duration of the start, then restored. A driver that joins a Ray at a
    loopback address needs the same: otherwise it swaps the address it was given for the
    routable one, where nothing listens, and waits there for minutes (:func:`_is_loopback`).
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


class EvaluationTimeout(BaseException):  # noqa: N818 - like KeyboardInterrupt: not caught
    """Raised in a Ray task at its job's ``timeout`` (an ``except Exception`` in the
    objective does not swallow it)."""


def _ray_rollout(evaluator: Any, job: RolloutJob, threads: int) -> Rollout:
    """A job in a Ray worker; past the job's ``timeout`` (counted from the task's start) it
    is interrupted (SIGALRM) and reported failed."""
    import signal

    import torch

    torch.set_num_threads(threads)  # one core per task: no oversubscription
    if job.timeout is None or not hasattr(signal, "setitimer"):
        return run_job(evaluator, job)

    def alarm(*_: Any) -> None:
        raise EvaluationTimeout()

    try:
        old = signal.signal(signal.SIGALRM, alarm)
    except ValueError:  # not the worker's main thread: the driver's cancel stops it
        return run_job(evaluator, job)
    signal.setitimer(signal.ITIMER_REAL, job.timeout)
    try:
        return run_job(evaluator, job)
    except EvaluationTimeout:
        return _failed(evaluator, job, f"timed out after {job.timeout:g} s (eval_timeout)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
