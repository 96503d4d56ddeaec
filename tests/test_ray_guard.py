"""The guard that ends a local Ray with its driver (issue 32): after ``kill -9`` of the driver
no process of its Ray is left (Ray's agents used to outlive it by a minute), a normal close
leaves none either, a Ray agent killed mid-run gives one fnas line, and the guard never
touches a process that is not of its session.

The Ray tests start their own Ray in a subprocess driver (never the session's ``local_ray``),
and kill whatever of it is left when they end; the others use stand-in processes."""

import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fnas.execution import ray_guard
from fnas.execution.ray_guard import RayGuard, session_processes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray"),
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="the guard reads /proc (Linux only)")]

DEADLINE = 30.0  # seconds for every process of a Ray to be gone (the guard takes about 3)

# A driver: a local Ray started by fnas, a task run on it (so that workers exist), its session
# and guard printed; then it waits (``hold``), closes (``close``) or keeps Ray busy (``busy``).
DRIVER = textwrap.dedent("""
    import os, sys, time
    from fnas.execution.executors import RayExecutor
    import ray
    ex = RayExecutor(parallel=1)
    @ray.remote(num_cpus=1, max_retries=0)
    def nap(s, blob=None):
        time.sleep(s)
        return os.getpid()
    ray.get(nap.remote(0))
    print("SESSION", ex._guard.session, ex._guard.raylet, ex._guard.proc.pid, flush=True)
    mode = sys.argv[1]
    if mode == "close":
        ex.close()
        print("CLOSED", flush=True)
        time.sleep(0.2)
    elif mode == "busy":  # as a search does: its evaluator in Ray's object store
        blob = ray.put(b"x" * 2_000_000)
        end = time.time() + 20
        while time.time() < end:  # a failed task is run again, as RayExecutor retries
            try:
                ref = nap.remote(0.05, blob)
                ray.wait([ref])
                ray.get(ref)
            except ray.exceptions.RayError as e:
                print("CAUGHT", type(e).__name__, flush=True)
        sys.exit(3)
    else:
        time.sleep(120)
""")


def _members(session: str) -> dict[int, str]:
    """The live processes of a Ray session, found independently of the guard: a command line
    that names the session, or a ``ray::`` process holding a file of the session open."""
    out = {}
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X"):
                    continue
            if session in argv:
                out[pid] = argv[:80]
            elif argv.startswith("ray::") and any(
                    os.readlink(f"/proc/{pid}/fd/{fd}").startswith(session)
                    for fd in os.listdir(f"/proc/{pid}/fd")):
                out[pid] = argv[:80]
        except OSError:
            continue
    return out


def _gone_within(session: str, seconds: float) -> dict[int, str]:
    """Poll until no process of ``session`` is left or ``seconds`` pass; what is left."""
    deadline = time.monotonic() + seconds
    left = _members(session)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _members(session)
    return left


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """The driver's next line, or "" after ``timeout`` seconds (a driver that hangs)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def _start_driver(mode: str) -> tuple[subprocess.Popen, str, int, int]:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9')")
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = _readline(proc, 120)
    if not line.startswith("SESSION"):
        proc.kill()
        pytest.fail(f"the driver did not start Ray: {line!r} {proc.communicate()[1][-2000:]}")
    _, session, raylet, guard = line.split()
    return proc, session, int(raylet), int(guard)


def _cleanup(proc: subprocess.Popen, session: str) -> None:
    """Whatever happened, leave nothing behind."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()
    for pid in _members(session):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_driver_killed_leaves_no_ray_process():
    proc, session, raylet, guard = _start_driver("hold")
    try:
        before = _members(session)
        assert raylet in before and guard in before, before
        # the processes that used to outlive the driver by a minute are among those checked
        assert any(a.startswith("ray::") for a in before.values()), before
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = _gone_within(session, DEADLINE)
        assert not left, f"still there {DEADLINE:.0f} s after kill -9 of the driver: {left}"
        assert "fnas: error" not in proc.communicate()[1]  # a killed driver: no Ray message
    finally:
        _cleanup(proc, session)


def test_close_leaves_no_ray_process_and_no_guard():
    proc, session, _, guard = _start_driver("close")
    try:
        assert _readline(proc, DEADLINE).strip() == "CLOSED"
        # close() waits for the guard, which sweeps and exits: nothing is left when it returns
        assert not _members(session)
        assert proc.wait(DEADLINE) == 0
        assert guard not in _members(session)
    finally:
        _cleanup(proc, session)


def test_ray_agent_killed_mid_run_says_so_in_one_fnas_line():
    """When its raylet dies (here of a killed agent), the driver's Python may see a
    ``RayError`` first (``NodeDiedError``), but a driver that goes on (RayExecutor retries)
    is soon ended by Ray from C++ (its object store connection broke), where no Python runs:
    the guard then writes the fnas line on the driver's stderr."""
    proc, session, raylet, _ = _start_driver("busy")
    try:
        agents = [pid for pid, argv in _members(session).items()
                  if argv.startswith("ray::DashboardAgent")]
        if not agents:
            pytest.skip("this Ray runs no dashboard agent")
        os.kill(agents[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=DEADLINE + 20)
        lines = [x for x in err.splitlines() if x.startswith("fnas: error: the local Ray died")]
        if proc.returncode == 3:  # Ray let it live: it ended through Python, the guard is mute
            assert not lines, err[-3000:]
        else:  # ended by Ray's C++ (exit 1): the guard's line, once
            assert len(lines) == 1, f"{out[-1000:]}\n{err[-3000:]}"
            assert "dashboard_agent failed" in lines[0] and "--resume" in lines[0]
        assert not _gone_within(session, DEADLINE)
    finally:
        _cleanup(proc, session)


def test_executor_joining_a_running_ray_starts_no_guard(local_ray):
    from fnas.execution.executors import RayExecutor

    ex = RayExecutor(parallel=2)  # joins the session's Ray: not its to end
    try:
        assert getattr(ex, "_guard", None) is None
    finally:
        ex.close()
    assert local_ray.is_initialized()


# --- stand-ins: a fake Ray install and session, no Ray needed -----------------------------

PROG = "import signal, sys, time\n" \
       "if 'stubborn' in sys.argv: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" \
       "print('up', flush=True)\n" \
       "time.sleep(60)\n"


@pytest.fixture
def fake_ray(tmp_path):
    """A fake Ray install (``ray/prog.py``), a session folder, and a way to start processes
    (killed at the end): ``spawn(argv0, *args, log=None)``."""
    ray_dir = tmp_path / "ray"
    ray_dir.mkdir()
    (ray_dir / "prog.py").write_text(PROG)
    session = tmp_path / "session_x"
    (session / "logs").mkdir(parents=True)
    procs = []

    def spawn(*args, argv0=None, log=None):
        out = open(session / "logs" / log, "w") if log else subprocess.PIPE
        p = subprocess.Popen([argv0 or sys.executable, "-c", PROG, *args] if argv0 else
                             [sys.executable, *args], executable=sys.executable, stdout=out,
                             text=True)
        procs.append(p)
        if log:
            out.close()
            deadline = time.monotonic() + 10
            while os.path.getsize(session / "logs" / log) == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
        else:
            assert p.stdout.readline().strip() == "up"
        return p

    yield str(ray_dir) + "/", str(session), spawn
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _alive(p: subprocess.Popen) -> bool:
    try:
        with open(f"/proc/{p.pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def test_guard_ends_its_session_only(fake_ray, capfd):
    ray_dir, session, spawn = fake_ray
    raylet = spawn(ray_dir + "prog.py", f"--session_dir={session}")
    stubborn = spawn(ray_dir + "prog.py", f"--log-dir={session}/logs", "stubborn")
    agent = spawn(argv0="ray::FakeAgent", log="agent.out")  # titled ray::, holds a log open
    # not of the session: a program that only names it, a ray:: process holding none of it
    bystander = spawn("-c", PROG, session)
    other = spawn(argv0="ray::Other")
    found = session_processes(session, [ray_dir])
    assert set(found) == {raylet.pid, stubborn.pid, agent.pid}
    guard = RayGuard(session, raylet.pid, [ray_dir], grace=0.5)
    try:
        assert _alive(raylet) and guard.proc.poll() is None  # it waits for the driver's end
    finally:
        guard.stop()
    assert guard.proc.returncode == 0
    for p in (raylet, stubborn, agent):  # SIGTERM, then SIGKILL for the one that ignores it
        assert p.wait(5) in (-signal.SIGTERM, -signal.SIGKILL)
    assert stubborn.returncode == -signal.SIGKILL
    assert _alive(bystander) and _alive(other)
    assert "fnas: error" not in capfd.readouterr().err  # a clean stop says nothing


def _holds_pidfd(pid: int) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[pidfd]"
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_guard_says_when_the_raylet_died_before_the_driver(fake_ray, capfd):
    ray_dir, session, spawn = fake_ray
    with open(os.path.join(session, "logs", "raylet.out"), "w") as f:
        f.write('reason_message: "dashboard_agent failed and raylet fate-shares with it."\n')
    raylet = spawn(ray_dir + "prog.py", f"--session_dir={session}")
    guard = RayGuard(session, raylet.pid, [ray_dir], grace=0.5)
    deadline = time.monotonic() + 10  # the guard watches the raylet once it holds its pidfd
    while not _holds_pidfd(guard.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    raylet.kill()
    raylet.wait()
    # the driver ends without a word (as Ray's C++ exit does): close the pipe, say nothing
    os.close(guard._w)
    guard._w = None
    ray_guard._GUARDS.remove(guard)
    assert guard.proc.wait(10) == 0
    err = capfd.readouterr().err
    assert ("fnas: error: the local Ray died mid-run (raylet: dashboard_agent failed and raylet "
            "fate-shares with it) and Ray ended fnas with it; resume the run with --resume"
            ) in err


def test_no_guard_without_a_raylet_of_this_process(fake_ray):
    """A Ray this process did not start (a cluster joined by address) has no guard. In a
    fresh process: this one may hold the session's ``local_ray``."""
    ray_dir, _, _ = fake_ray
    code = ("import runpy, sys, types; m = runpy.run_path(sys.argv[1]); "
            "print(m['start_guard'](types.SimpleNamespace(__file__=sys.argv[2])))")
    out = subprocess.run([sys.executable, "-I", "-c", code, ray_guard.__file__,
                          ray_dir + "__init__.py"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "None", out.stderr
