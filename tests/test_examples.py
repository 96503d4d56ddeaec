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


def _kill_then_resume(script: str, store: Path, cwd: Path, at_least: int,
                      *args: str) -> tuple[int, str]:
    """Run ``script`` (on ``store``, then ``args``), kill -9 it once ``store`` holds
    ``at_least`` evaluations, run it again to the end; the evaluations at the kill and the
    second run's stdout."""
    p = _run(script, str(store), *args, cwd=cwd)
    deadline = time.time() + 300
    while _evaluations(store) < at_least and p.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert p.poll() is None, p.communicate()[1][-2000:]  # still running: kill it mid-search
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = _evaluations(store)
    p = _run(script, str(store), *args, cwd=cwd)  # a new process (registers its data again)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    return killed_at, out


@pytest.mark.slow
def test_own_objective_example_is_short_and_resumes_after_kill(tmp_path):
    """Over 20 s when the machine is busy: the example as a user runs it, twice (killed, then
    resumed), with its own training."""
    assert len((EXAMPLES / "own_objective.py").read_text().splitlines()) < 40
    store = tmp_path / "store"
    killed_at, out = _kill_then_resume("own_objective.py", store, tmp_path, 6)
    assert 6 <= killed_at < 24
    assert "best: width=" in out
    assert float(out.split(" accuracy ")[1].split()[0]) > 0.9  # sensible, as it says
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
    reward = float(outs[0].split("reward ")[1].split()[0])
    assert reward >= -1  # near x = 3 everywhere (the best of 60 random samples: -3, median)


@pytest.mark.slow
def test_own_data_example_trains_resumes_after_kill_and_loads_the_best(tmp_path):
    """Over 20 s: the example as a user runs it, twice (killed mid-batch, then resumed),
    training at full size (a budget of 2: one batch of 2, killed once the first result is
    recorded, so the resume finishes an interrupted batch) and retraining its best."""
    assert len((EXAMPLES / "own_data.py").read_text().splitlines()) < 40
    store = tmp_path / "store"
    killed_at, out = _kill_then_resume("own_data.py", store, tmp_path, 1, "2")
    assert killed_at == 1
    assert _evaluations(store) == 2  # nothing lost, nothing repeated
    best, trained = out.splitlines()
    assert best.startswith("best: accuracy ") and " | " in best  # a MnasNet block string
    assert float(best.split("best: accuracy ")[1].split()[0]) > 0.5  # not near chance (0.1)
    assert 0.5 < float(trained.split("held-out accuracy ")[1].split()[0]) <= 1.0
    assert int(trained.split(": ")[-1].split("/")[0]) >= 50  # the loaded model predicts
    assert (store / "my-digits-best.safetensors").is_file()


@pytest.mark.slow
def test_custom_space_example_trades_accuracy_for_macs_and_resumes(tmp_path):
    """Over 20 s: the example as a user runs it, twice, with its 12 real trainings."""
    store = tmp_path / "store"
    outs = []
    for _ in range(2):  # the second run finds the finished run and reports it again
        p = _run("custom_space.py", str(store), cwd=tmp_path)
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        outs.append(out)
    assert outs[0] == outs[1] and outs[0].startswith("best: conv")
    assert _evaluations(store) == 12
    fields = outs[0].split()
    acc, macs, reward = (float(fields[i]) for i in (3, 5, 7))
    assert acc > 0.8 and macs > 0  # sensible (a global average pool gave 0.57)
    assert reward == pytest.approx(acc * (macs / 50_000) ** -0.07, abs=1e-3)  # MnasNet's


@pytest.mark.slow
def test_gpu_search_example_falls_back_to_the_cpu(tmp_path):
    """The example as a user runs it, with a budget of 1 real training on the CPU (its 8
    trainings are own_data's, tested there at full size; a budget under the batch of 2 once
    stopped it with a traceback)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: this test checks the CPU fallback")
    p = _run("gpu_search.py", str(tmp_path / "store"), "1", cwd=tmp_path)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    note, best = out.splitlines()
    assert note.startswith("note: no CUDA device visible") and "training on CPU" in note
    assert best.startswith("best on cpu: accuracy ") and " ms cn_r1" in best
    assert float(best.split("accuracy ")[1].split()[0]) > 0.5  # not near chance (0.1)
    assert _evaluations(tmp_path / "store") == 1


def test_examples_readme_lists_every_example():
    readme = (EXAMPLES / "README.md").read_text()
    for script in sorted(EXAMPLES.glob("*.py")):
        assert f"python examples/{script.name}" in readme, script.name
