"""A search on Ray killed with SIGKILL mid-run, resumed on Ray, compared with an uninterrupted
search: nothing recorded is lost or duplicated, the rollouts in flight run again, and the
results (pool entries included) are those of the uninterrupted run.

The uninterrupted run uses the local executor, at the same time as the killed one: a rollout
on a Ray worker and one in this machine's process give the same result bit for bit (one
thread each, the same seeds), so the test also checks that Ray changes nothing, and it waits
for two searches' time instead of three."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from fast import TINY_SET

pytestmark = pytest.mark.slow  # a Ray search killed and resumed in subprocesses

pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9')")

# real trainings on 100 digits images (tests/fast.py); this test starts and stops its own Ray
SEARCH = ["search", "--epochs", "1", "--batch", "4", "--budget", "10", "--no-progress",
          *TINY_SET]
RAY = [*SEARCH, "--executor", "ray", "--parallel", "2"]


def _count(db) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # never creates the file
        n = con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        con.close()
        return n
    except sqlite3.OperationalError:
        return 0


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


def test_ray_search_killed_then_resumed_matches_an_uninterrupted_one(tmp_path):
    """Over 20 s: it starts Ray twice (the killed search, its resume), as a user's searches
    do, with a local search beside the first."""
    store = tmp_path / "k"
    # the uninterrupted search, local, at the same time (its own store: no shared cache)
    whole_cmd = [sys.executable, "-m", "fnas.cli", *SEARCH, "--store", str(tmp_path / "u"),
                 "--name", "whole"]
    whole_proc = subprocess.Popen(whole_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
    cmd = [sys.executable, "-m", "fnas.cli", *RAY, "--store", str(store), "--name", "killed"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and _count(store / "fnas.db") < 5:
        time.sleep(0.2)
    assert proc.poll() is None, "the search finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # mid second batch: its rollouts are in flight
    proc.wait()
    before = _results(store)[0]
    p = subprocess.run([sys.executable, "-m", "fnas.cli", "search", "--resume", "killed",
                        "--store", str(store), "--no-progress", "--executor", "ray",
                        "--parallel", "2"], capture_output=True, text=True, timeout=600)
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
