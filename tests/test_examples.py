"""The examples run as a user runs them, and the own-objective example resumes after kill -9."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def _run(script, *args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _evaluations(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store / 'fnas.db'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_own_objective_example_is_short_and_resumes_after_kill(tmp_path):
    assert len((EXAMPLES / "own_objective.py").read_text().splitlines()) < 40
    store = tmp_path / "store"
    p = _run("own_objective.py", str(store), cwd=tmp_path)
    deadline = time.time() + 300
    while _evaluations(store) < 6 and p.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert p.poll() is None, p.communicate()[1][-2000:]  # still running: kill it mid-search
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = _evaluations(store)
    assert 6 <= killed_at < 24
    p = _run("own_objective.py", str(store), cwd=tmp_path)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    assert "best: width=" in out
    assert _evaluations(store) == 24  # nothing lost, nothing repeated


def test_custom_strategy_example_runs_and_resumes(tmp_path):
    store = tmp_path / "store"
    outs = []
    for _ in range(2):  # the second run finds the finished run and reports it again
        p = _run("custom_strategy.py", str(store), cwd=tmp_path)
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        outs.append(out)
    assert outs[0] == outs[1] and outs[0].startswith("best: x0=")
    assert _evaluations(store) == 60
    reward = float(outs[0].split("reward ")[1])
    assert reward >= -1  # near x = 3 everywhere (the best of 60 random samples: -3, median)
