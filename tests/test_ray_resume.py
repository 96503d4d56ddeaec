"""A search on Ray killed with SIGKILL mid-run, resumed on Ray, compared with an uninterrupted
search: nothing recorded is lost or duplicated, the rollouts in flight run again, and the
results (pool entries included) are those of the uninterrupted run.

The uninterrupted run uses the local executor, at the same time as the killed one: a rollout
on a Ray worker and one in this machine's process give the same result bit for bit (one
thread each, the same seeds), so the test also checks that Ray changes nothing, and it waits
for two searches' time instead of three.

The killed search and its resume join the session's Ray (conftest's ``local_ray``, by
``--ray-address``) instead of starting one each: a Ray start is most of a driver's time here,
and that a driver killed with SIGKILL takes the Ray it started with it is
``test_ray_guard.py``'s subject. Its rollouts in flight die with their driver's job either
way."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from fast import FAST_PPO_SET, TINY_SET, count_evaluations

# a Ray search killed and resumed in subprocesses, on the session's Ray (its worker's)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9')")

# real trainings on 100 digits images, and 2 PPO epochs an update: the controller is not the
# subject (tests/fast.py)
SEARCH = ["search", "--epochs", "1", "--batch", "2", "--budget", "4", "--no-progress",
          *TINY_SET, *FAST_PPO_SET]
RAY = ["--executor", "ray", "--parallel", "2"]


def _results(store):
    con = sqlite3.connect(store / "fnas.db")
    evals = con.execute("SELECT iteration, slot, arch_key, reward, status, trained, cached, "
                        "predicted, pool_snapshot IS NOT NULL, pool_hit_ratio, epochs "
                        "FROM evaluations ORDER BY iteration, slot").fetchall()
    pool = sorted(con.execute("SELECT e.iteration, e.slot, p.stage, p.sha256 FROM pool_entries "
                              "p JOIN evaluations e ON e.id = p.source_eval").fetchall())
    status = con.execute("SELECT status FROM experiments").fetchone()[0]
    con.close()
    return evals, pool, status


def test_ray_search_killed_then_resumed_matches_an_uninterrupted_one(tmp_path, local_ray):
    """Over 20 s: three drivers that import torch and Ray (the killed search, its resume, and
    a local search beside the first), each on real trainings."""
    ray = [*RAY, "--ray-address", local_ray.get_runtime_context().gcs_address]
    # The session's Ray listens on 127.0.0.1 only, with Ray's token authentication. The
    # drivers join it as a user's would, from a clean environment: fnas itself keeps the
    # loopback address (Ray would swap it for the routable one and wait there for minutes)
    # and uses the local token (Ray sends it to an explicit address only with RAY_AUTH_MODE)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE")}
    store = tmp_path / "k"
    # the uninterrupted search, local, at the same time (its own store: no shared cache)
    whole_cmd = [sys.executable, "-m", "fnas.cli", *SEARCH, "--store", str(tmp_path / "u"),
                 "--name", "whole"]
    whole_proc = subprocess.Popen(whole_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
    cmd = [sys.executable, "-m", "fnas.cli", *SEARCH, *ray, "--store", str(store), "--name",
           "killed"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    db = store / "fnas.db"
    while time.time() < deadline and proc.poll() is None and count_evaluations(db) < 3:
        time.sleep(0.2)
    assert proc.poll() is None, "the search finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # mid second batch: its rollouts are in flight
    proc.wait()
    before = _results(store)[0]
    p = subprocess.run([sys.executable, "-m", "fnas.cli", "search", "--resume", "killed",
                        "--store", str(store), "--no-progress", *ray],
                       capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr
    killed = _results(store)
    assert killed[2] == "done" and killed[1], "finished, with pooled weights"
    assert set(before) <= set(killed[0])  # nothing recorded was lost or changed
    slots = [(r[0], r[1]) for r in killed[0]]
    assert len(slots) == len(set(slots))  # nor duplicated
    _, err = whole_proc.communicate(timeout=600)
    assert whole_proc.returncode == 0, err
    whole = _results(tmp_path / "u")
    assert any(r[9] for r in whole[0]), "no training started from the pool"
    assert killed == whole
