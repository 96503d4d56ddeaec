"""A guard that ends the local Ray fnas started once its driver ends, however it ends.

Why: the processes of a local Ray are the driver's children (GCS, raylet, monitor, log
monitor, dashboard head), which Ray ends with the driver (``PR_SET_PDEATHSIG``), and the
raylet's children (workers, the dashboard and runtime-env agents). After ``kill -9`` of the
driver the agents see their raylet gone at once, but before they exit they report its death
to the GCS, which died too: they wait for it about 60 s (Ray 2.60) and outlive the driver
by a minute (issue 32).

How: :func:`start_guard`, called right after a local ``ray.init``, starts a small process
(this file run by ``python -I``: the standard library only, about 15 MB, no CPU while it
waits) that holds the read end of a pipe whose write end only the driver holds. At EOF (the
driver ended, or :meth:`RayGuard.stop` closed it) it sends SIGTERM to every process of that
Ray session still there, SIGKILL after ``GRACE_S`` seconds to any that stays, and exits. The
session's processes are found in ``/proc`` by what names them: a Ray program whose command
line names the session's directory, or a Ray process (``ray::...``, its title) that holds a
file of that directory open. Linux only; elsewhere, and for a Ray this process did not start
itself (a cluster joined by address), there is no guard.

When the local Ray dies under a search (an agent killed: the raylet fate-shares with it; the
raylet killed or out of memory), Ray's core worker ends the driver from C++ (exit 1, Ray's
log lines; no Python runs there). The guard then writes one fnas line on the driver's
stderr, when it can tell that end from a kill of the driver: the raylet wrote why it shut
down (``reason_message`` in ``raylet.out``; a raylet killed with its driver says nothing), or
it died (``pidfd``) while the driver was not ending. A driver that ends through Python
(``ending``, ``stop``, ``atexit``) tells the guard first, which then writes nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

__all__ = ["RayGuard", "start_guard", "ending", "session_processes", "sweep", "GRACE_S"]

GRACE_S = 3.0
"""Seconds between the SIGTERM and the SIGKILL of the processes that are still there."""

_GUARDS: list[RayGuard] = []  # the live guards, held here so that no GC closes their pipes
_CLEAN = b"c"  # "the driver ends through Python": no message for a dead raylet


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, ppid, starttime)`` of a live process, or None (gone or a zombie)."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    fields = raw.rsplit(b")", 1)[-1].split()
    state = fields[0].decode()
    return None if state in ("Z", "X") else (state, int(fields[1]), int(fields[19]))


def _pids() -> list[int]:
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


def _argv(pid: int) -> list[str]:
    return [a.decode(errors="replace") for a in _read(f"/proc/{pid}/cmdline").split(b"\0") if a]


def _holds_file_in(pid: int, folder: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(folder):
                return True
        except OSError:
            continue
    return False


def session_processes(session: str, ray_dirs: list[str],
                      exclude: frozenset[int] | set[int] = frozenset()) -> dict[int, int]:
    """The live processes of the Ray session whose directory is ``session``: pid ->
    starttime (so that a reused pid is never taken for one of them).

    A process is one of them when a Ray program (one of its first three arguments lies in
    ``ray_dirs``) names ``session`` on its command line (GCS, raylet, monitor, dashboard,
    log monitor, a worker starting), or when a process titled ``ray::...`` (agents and
    workers rename themselves so, and their environment is then gone) holds a file under
    ``session`` open (its logs).
    """
    folder = session.rstrip("/") + "/"
    found = {}
    for pid in _pids():
        if pid in exclude or pid == os.getpid():
            continue
        argv = _argv(pid)
        if not argv:
            continue
        ray_program = any(a.startswith(d) for a in argv[:3] for d in ray_dirs)
        if (ray_program and any(a.endswith(session) or folder in a for a in argv)) or (
                argv[0].startswith("ray::") and _holds_file_in(pid, folder)):
            st = _stat(pid)
            if st is not None:
                found[pid] = st[2]
    return found


def _alive(procs: dict[int, int]) -> dict[int, int]:
    out = {}
    for pid, start in procs.items():
        st = _stat(pid)
        if st is not None and st[2] == start:
            out[pid] = start
    return out


def _signal(procs: dict[int, int], sig: int) -> None:
    for pid in procs:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def sweep(session: str, ray_dirs: list[str], exclude: set[int],
          grace: float = GRACE_S) -> list[int]:
    """SIGTERM every process of the session, SIGKILL those still there after ``grace``
    seconds (and any that appeared meanwhile); returns the pids signalled."""
    procs = session_processes(session, ray_dirs, exclude)
    _signal(procs, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while procs and time.monotonic() < deadline:
        time.sleep(0.05)
        procs = _alive(procs)
    late = session_processes(session, ray_dirs, exclude)
    _signal({**procs, **late}, signal.SIGKILL)
    return sorted(set(procs) | set(late))


def _dying(pid: int) -> bool:
    """Whether ``pid`` is gone or ending: a thread of it is a zombie or exiting
    (``PF_EXITING``). A driver killed with SIGKILL is, by the time its raylet dies of it
    (Ray's ``PR_SET_PDEATHSIG``), since that signal is sent when the thread that started the
    raylet exits."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for tid in tids:
        raw = _read(f"/proc/{pid}/task/{tid}/stat")
        fields = raw.rsplit(b")", 1)[-1].split()
        if len(fields) > 6 and (fields[0] in (b"Z", b"X") or int(fields[6]) & 0x4):
            return True
    return not tids


def _raylet_reason(session: str) -> str | None:
    """Why the raylet ended on its own, from its log (``reason_message``, which it writes
    when it shuts down: an agent failed, SIGTERM...); None when it did not say (a raylet
    killed with SIGKILL, as after ``kill -9`` of the driver, says nothing)."""
    raw = _read(os.path.join(session, "logs", "raylet.out"))[-65536:].decode(errors="replace")
    reasons = re.findall(r'reason_message: "([^"]{1,200})"', raw)
    return reasons[-1].strip().rstrip(".") if reasons else None


def _watch(driver: int, raylet: int, grace: float, session: str, ray_dirs: list[str]) -> int:
    """The guard: wait for the driver's end (EOF on stdin), then sweep the session."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pidfd = None
    if raylet > 0 and hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(raylet)
        except OSError:
            pidfd = None
    watched = [0] if pidfd is None else [0, pidfd]
    clean = raylet_first = False
    while True:
        try:
            ready, _, _ = select.select(watched, [], [])
        except InterruptedError:
            continue
        if pidfd in ready:  # the raylet ended; first, if the driver is not ending too
            raylet_first = not _dying(driver)  # (then Ray's C++ will end the driver)
            watched = [0]
        if 0 in ready:  # the driver: a word, or EOF (its end, or stop())
            data = os.read(0, 64)
            if not data:
                break
            clean = clean or _CLEAN in data
    reason = None if clean else _raylet_reason(session)
    if not clean and (raylet_first or reason):  # the driver ended by Ray, not by a kill
        why = f"raylet: {reason}" if reason else f"its raylet, pid {raylet}, exited"
        try:
            print(f"fnas: error: the local Ray died mid-run ({why}) and Ray ended fnas with "
                  "it; resume the run with --resume", file=sys.stderr, flush=True)
        except OSError:
            pass
    sweep(session, ray_dirs, {driver}, grace)
    return 0


class RayGuard:
    """The driver's side of a guard: the write end of its pipe and its process."""

    def __init__(self, session: str, raylet: int, ray_dirs: list[str],
                 grace: float = GRACE_S) -> None:
        self.session, self.raylet = session, raylet
        r, self._w = os.pipe()  # both ends close-on-exec: no other program inherits them
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", os.path.abspath(__file__), str(os.getpid()), str(raylet),
                 str(grace), session, *ray_dirs],
                stdin=r, stdout=subprocess.DEVNULL, start_new_session=True)
        except BaseException:
            os.close(self._w)
            raise
        finally:
            os.close(r)
        _GUARDS.append(self)

    def _say(self, word: bytes) -> None:
        if self._w is not None:
            try:
                os.write(self._w, word)
            except OSError:
                pass

    def stop(self, wait: float = GRACE_S + 5) -> None:
        """Close the pipe (the guard sweeps the session and exits) and wait up to ``wait``
        seconds for the guard, so that what Ray left behind is gone when this returns."""
        if self._w is None:
            return
        self._say(_CLEAN)
        os.close(self._w)
        self._w = None
        if self in _GUARDS:
            _GUARDS.remove(self)
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            pass


@contextlib.contextmanager
def ending(guard: RayGuard | None) -> Iterator[None]:
    """``with ending(guard): ray.shutdown()``: the driver ends its Ray itself (the guard
    says nothing of the raylet's end), then the guard sweeps what is left and exits. A
    ``None`` guard (a joined cluster, not Linux) does nothing."""
    if guard is not None:
        guard._say(_CLEAN)
    try:
        yield
    finally:
        if guard is not None:
            guard.stop()


def _our_raylet(session: str | None) -> tuple[int, str] | None:
    """This process's raylet child (a Ray it started): its pid and session directory."""
    best = None
    me = os.getpid()
    for pid in _pids():
        st = _stat(pid)
        if st is None or st[1] != me:
            continue
        argv = _argv(pid)
        if not argv or not argv[0].endswith("/raylet"):
            continue
        sess = next((a.split("=", 1)[1] for a in argv if a.startswith("--session_dir=")), None)
        if sess and (session is None or os.path.realpath(sess) == os.path.realpath(session)):
            if best is None or st[2] > best[0]:
                best = (st[2], pid, sess)
    return None if best is None else (best[1], best[2])


def start_guard(ray, grace: float = GRACE_S) -> RayGuard | None:
    """A guard for the local Ray this process has just started; None where there is none to
    guard (not Linux, no raylet child of this process: a cluster joined by address) or the
    guard cannot start. Never raises."""
    try:
        if not sys.platform.startswith("linux") or not os.path.isdir("/proc") \
                or not sys.executable:
            return None
        node = getattr(getattr(getattr(ray, "_private", None), "worker", None), "_global_node",
                       None)
        session = None
        try:
            session = node.get_session_dir_path() if node is not None else None
        except Exception:  # noqa: BLE001 - a private API: the raylet's arguments suffice
            session = None
        found = _our_raylet(session)
        if found is None:
            return None
        raylet, session = found
        ray_dir = os.path.dirname(os.path.abspath(ray.__file__))
        dirs = sorted({ray_dir + "/", os.path.realpath(ray_dir) + "/"})
        return RayGuard(session, raylet, dirs, grace)
    except Exception:  # noqa: BLE001 - a guard is a courtesy: Ray runs without one
        return None


def _at_exit() -> None:
    for g in list(_GUARDS):
        g._say(_CLEAN)  # the driver ends through Python: its own messages say why


def _in_forked_child() -> None:
    for g in list(_GUARDS):  # a fork must not keep the driver's end open after the driver
        if g._w is not None:
            os.close(g._w)
            g._w = None
    _GUARDS.clear()


if __name__ == "__main__":
    sys.exit(_watch(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4],
                    sys.argv[5:]))
else:
    import atexit

    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_in_forked_child)
