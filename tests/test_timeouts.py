"""Evaluations that can be stopped (issue 32, item 5): ``eval_timeout`` records an evaluation
that runs too long as failed, ``budget_seconds`` holds within a batch, a worker that dies is a
failed evaluation, and the worker changes no result.

The objectives here hang on purpose (``time.sleep(10**6)`` on chosen architectures): each test
passes only if fnas stops them. They run in fnas's worker process (``fnas.execution.workers``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import fnas
from fnas.errors import ConfigError
from fnas.search.config import SearchConfig

from fast import FAST_PPO, TINY_TASK

SPACE = fnas.make_space("timeouts", {"a": (1, 2, 3), "b": (4, 5)})
HANG = 10**6


class Boom(Exception):
    """An objective's own exception type."""


def hangs_on_a2(arch, seed):
    if arch["a"] == 2:
        time.sleep(HANG)
    return 0.1 * arch["a"] + 0.01 * arch["b"]


def dies_on_a2(arch):
    if arch["a"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # a crash in native code, the OOM killer
    return 0.1 * arch["a"]


def raises(arch):
    raise Boom(f"no {arch['a']}")


def hangs_if(marker: str, keep: str):
    """An objective that hangs on every architecture but ``keep`` while ``marker`` exists."""
    def objective(arch, seed):
        if os.path.exists(marker) and arch.key != keep:
            time.sleep(HANG)
        return 0.1 * arch["a"] + 0.01 * arch["b"]
    return objective


def _search(store, name, objective, **kw):
    kw = {"budget": 6, "batch": 2, "strategy": "random", "version": "1", **kw}
    return fnas.create_search(store=store, name=name, space=SPACE, objective=objective, **kw)


def test_two_worker_processes_stop_a_hung_evaluation_while_the_other_goes_on(tmp_path):
    """``n_workers=2``: each hung evaluation is stopped at its own timeout and recorded
    failed, and the other worker's evaluations are recorded as they end."""
    s = _search(tmp_path, "t2", hangs_on_a2, timeout=1.5, budget=8, batch=4)
    out = s.optimize(progress=False, n_workers=2)
    assert out.stats["stop_reason"] == "budget"
    trials = s.trials()
    assert sorted(e.slot for e in trials) == [0, 0, 1, 1, 2, 2, 3, 3]
    hung = [e for e in trials if e.arch.startswith("a=2") and not e.cached]
    assert hung, "the seed must sample a=2 at least once"
    assert all(e.status == "error" and "timed out after 1.5 s" in e.message for e in hung)
    assert all(e.status == "ok" for e in trials if not e.arch.startswith("a=2"))


@pytest.mark.slow
def test_an_evaluation_past_its_timeout_is_recorded_failed_and_the_search_goes_on(tmp_path):
    s = _search(tmp_path, "t", hangs_on_a2, timeout=1.5, budget=8)
    out = s.optimize(progress=False)
    assert out.stats["stop_reason"] == "budget" and out.experiment.status == "done"
    trials = s.trials()
    assert len(trials) == 8
    hung = [e for e in trials if e.arch.startswith("a=2") and not e.cached]
    assert hung, "the seed must sample a=2 at least once"
    for e in hung:
        assert e.status == "error" and "timed out after 1.5 s" in e.message
        assert e.reward == 0.0
    assert all(e.status == "ok" for e in trials if not e.arch.startswith("a=2"))
    assert out.experiment.config["eval_timeout"] == 1.5


@pytest.mark.slow
def test_budget_seconds_stops_a_running_evaluation_and_the_resume_is_exact(tmp_path):
    """budget_seconds ends the batch at its limit, mid-evaluation; the cut evaluation is not
    recorded, and a resume with more seconds ends with the rows of an uninterrupted run."""
    ref = _search(tmp_path / "ref", "r", hangs_if(str(tmp_path / "none"), ""))
    ref.optimize(progress=False)
    want = [(e.iteration, e.slot, e.arch_key, e.reward, e.cached) for e in ref.trials()]
    first = want[0][2]
    assert want[1][2] != first
    marker = tmp_path / "hang"
    marker.touch()
    s = _search(tmp_path / "s", "r", hangs_if(str(marker), first))
    t0 = time.monotonic()
    out = s.optimize(progress=False, budget_seconds=6)
    assert time.monotonic() - t0 < 60  # (generous: only a hang fails it)
    assert out.stats["stop_reason"] == "seconds" and out.experiment.status == "done"
    got = [(e.iteration, e.slot, e.arch_key, e.reward, e.cached) for e in s.trials()]
    assert got == want[:1]  # slot 1 hung and was cut: not recorded
    marker.unlink()
    out = s.optimize(progress=False, budget_seconds=600)
    assert out.stats["stop_reason"] == "budget"
    assert [(e.iteration, e.slot, e.arch_key, e.reward, e.cached) for e in s.trials()] == want
    assert out.stats["wall"] >= 6  # the seconds of the cut batch were kept


@pytest.mark.slow
def test_a_worker_that_dies_is_a_failed_evaluation(tmp_path):
    s = _search(tmp_path, "d", dies_on_a2, timeout=60, budget=8)
    s.optimize(progress=False)
    died = [e for e in s.trials() if e.arch.startswith("a=2") and not e.cached]
    assert died and all(e.status == "error" and "worker process died (signal SIGKILL)"
                        in e.message for e in died)
    assert all(e.status == "ok" for e in s.trials() if not e.arch.startswith("a=2"))


@pytest.mark.slow
def test_the_objectives_exception_comes_back_as_itself_and_catch_still_applies(tmp_path):
    s = _search(tmp_path, "x", raises, timeout=30)
    with pytest.raises(Boom, match="no "):
        s.optimize(progress=False)
    assert s.experiment.status == "interrupted"
    c = _search(tmp_path, "c", raises, timeout=30, catch=(Boom,), budget=2)
    c.optimize(progress=False)
    assert [e.status for e in c.trials()] == ["error", "error"]
    assert all(e.message.startswith("Boom: no ") for e in c.trials())


@pytest.mark.slow
def test_a_lambda_objective_runs_in_the_worker(tmp_path):
    s = _search(tmp_path, "l", lambda arch: 0.5 + 0.1 * arch["a"], timeout=30, budget=4)
    s.optimize(progress=False)
    assert [e.reward for e in s.trials()] == [
        pytest.approx(0.5 + 0.1 * int(e.arch[2])) for e in s.trials()]


def test_an_objective_that_cannot_be_sent_to_a_worker_is_refused_before_any_record(tmp_path):
    lock = threading.Lock()

    def holds_a_lock(arch):
        with lock:
            return 0.5

    s = _search(tmp_path, "u", holds_a_lock, timeout=5)
    with pytest.raises(ConfigError, match="cannot be sent there .*define it at module level"):
        s.optimize(progress=False)
    assert not s.exists  # refused before the run was recorded (issue 36: no phantom run)


def test_timeout_settings_are_checked():
    for bad in ({"eval_timeout": 0}, {"eval_timeout": "5"}, {"eval_timeout": float("inf")},
                {"eval_isolation": "thread"}, {"eval_timeout": 5, "eval_isolation": "none"}):
        with pytest.raises(ConfigError, match="eval_"):
            SearchConfig.from_dict(bad, strict=True)
    with pytest.raises(ConfigError, match="not both"):
        _search("unused", "n", hangs_on_a2, timeout=1, eval_timeout=2)


@pytest.mark.slow
def test_the_worker_changes_no_result(tmp_path):
    """The proxy task in the worker process (fnas, with its pool, so trained weights cross the
    pipe too) records what it records in the search's own process, row for row."""
    rows = {}
    for iso in ("process", "none"):
        s = fnas.create_search(store=tmp_path / iso, name="w", space="mnas", budget=4, batch=2,
                               task={**TINY_TASK, "epochs": 1}, eval_isolation=iso,
                               ppo=FAST_PPO)  # the controller is not the subject
        s.optimize(progress=False)
        rows[iso] = [(e.arch_key, e.reward, e.accuracy, e.macs, e.pool_snapshot is None)
                     for e in s.trials()]
    assert rows["process"] == rows["none"]
    assert len(rows["none"]) == 4


@pytest.mark.slow
def test_the_worker_ends_with_its_driver(tmp_path):
    """kill -9 of the search's process leaves no worker behind (it watches its parent)."""
    script = tmp_path / "drive.py"
    script.write_text(
        "import sys, time, fnas\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_timeouts import SPACE, hangs_on_a2\n"
        "s = fnas.create_search(store=sys.argv[1], name='k', space=SPACE, "
        "objective=lambda a, seed: hangs_on_a2({'a': 2, 'b': 4}, seed), version='1', "
        "budget=4, batch=2, strategy='random', timeout=600)\n"
        "s.optimize(progress=False)\n")
    p = subprocess.Popen([sys.executable, str(script), str(tmp_path / "st")])
    try:
        worker = None
        deadline = time.monotonic() + 60
        while worker is None and time.monotonic() < deadline:
            time.sleep(0.2)
            worker = _child_worker(p.pid)
        assert worker is not None, "the driver never started its worker"
    finally:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker), "the worker outlived its driver"


def _child_worker(pid: int) -> int | None:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"worker_main" in cmd:
                return int(d.name)
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_tasks_past_their_timeout_or_the_deadline_are_cancelled(tmp_path, local_ray,
                                                                   monkeypatch):
    from fnas.execution import executors
    from fnas.execution.executors import RayExecutor

    # The driver cancels a task still out RAY_START after its timeout, counted from its
    # submission: on a machine loaded 3x over, Ray workers took over 60 s to start and quick
    # evaluations were cancelled before they ran. The tasks here interrupt themselves at the
    # timeout; the driver's cancel is not this test's subject.
    monkeypatch.setattr(executors, "RAY_START", 600.0)
    from fnas.execution.objective import ObjectiveEvaluator
    from fnas.knowledge import Store
    from fnas.search.loop import run_search

    fnas.register_space(SPACE.name, SPACE)
    local_ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        store = Store(tmp_path)
        ex = RayExecutor(parallel=2)
        cfg = SearchConfig(space=SPACE.name, strategy="random", budget=6, batch=2,
                           eval_timeout=3)
        out = run_search(store, cfg, name="t", evaluator=ObjectiveEvaluator(hangs_on_a2, "1"),
                         space=SPACE, progress=False, executor=ex)
        trials = store.evaluations(out.experiment.id)
        assert out.stats["stop_reason"] == "budget" and len(trials) == 6
        hung = [e for e in trials if e.arch.startswith("a=2") and not e.cached]
        assert hung and all(e.status == "error" and "timed out after 3 s" in e.message
                            for e in hung)
        assert all(e.status == "ok" for e in trials if not e.arch.startswith("a=2")), \
            [(e.arch, e.status, e.message) for e in trials]

        always = ObjectiveEvaluator(hangs_if(str(tmp_path), ""), "2")  # tmp_path exists
        cfg = SearchConfig(space=SPACE.name, strategy="random", budget=6, batch=2,
                           budget_seconds=5)
        t0 = time.monotonic()
        out = run_search(store, cfg, name="d", evaluator=always, space=SPACE, progress=False,
                         executor=ex)
        assert time.monotonic() - t0 < 120  # (generous: only a hang fails it)
        assert out.stats["stop_reason"] == "seconds"
        assert store.evaluations(out.experiment.id) == []
        ex.close()
    finally:
        local_ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
