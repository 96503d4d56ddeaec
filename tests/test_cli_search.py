"""``fnas search/runs/show`` as a user runs them, with real training on digits and a kill -9.

The smoke test trains at full size; the others train for real on 100 digits images
(``tests/fast.py``), since their subject is the bookkeeping around the trainings."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from fast import FAST_PPO, TINY_SET, cli_in_process, count_evaluations

pytestmark = pytest.mark.slow  # real searches in subprocesses

FULL = ["search", "--epochs", "1", "--batch", "2", "--no-progress"]
SEARCH = [*FULL, *TINY_SET]


def fnas(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fnas.cli", *args], capture_output=True,
                          text=True, timeout=600, **kw)


def test_search_smoke_with_runs_and_show_while_it_writes_and_after(tmp_path):
    """Over 20 s when the machine is busy: the one CLI search that trains at full size (4
    digits trainings, 1 epoch). Once it has recorded its first result, three readers (runs,
    show, show --json) read the store at once while it writes; then three more read it
    done. (A search stopped by SIGTERM is test_hardening_cli's.)"""
    store = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "fnas.cli", *FULL, "--budget", "4",
                             "--store", str(store), "--name", "smoke", "--target-macs", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    db = store / "fnas.db"
    while time.time() < deadline and proc.poll() is None and count_evaluations(db) < 1:
        time.sleep(0.1)
    assert proc.poll() is None, "the search finished before it could be read"
    readers = [subprocess.Popen([sys.executable, "-m", "fnas.cli", *args], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for args in (("runs", "--store", str(store)),
                            ("show", "smoke", "--store", str(store)),
                            ("show", "smoke", "--json", "--store", str(store)))]
    for r in readers:  # three readers at once, while the search writes
        out, err = r.communicate(timeout=300)
        assert r.returncode == 0 and "smoke" in out, err
    assert proc.poll() is None, "the search stopped before the readers were done"
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "run smoke (done): 4 architectures" in out and "rank" in out
    p = fnas("runs", "--store", str(store))
    assert p.returncode == 0 and "smoke" in p.stdout and "4/4" in p.stdout
    p = fnas("show", "smoke", "--store", str(store), "--json", "--top", "2")
    out = json.loads(p.stdout)
    assert out["status"] == "done" and out["summary"]["evaluated"] == 4
    assert len(out["top"]) <= 2 and out["config"]["reward"]["target"] == 1e6
    assert out["stats"]["wall"] > out["stats"]["train"] > 0
    # fnas screens (after 8 warm-up results) and replays by default: batch 2 = 2 trained
    # picks, and from the second update on 1 replayed result joins them
    assert [u["n_done"] for u in out["updates"]] == [2, 4]
    assert [u.get("replay/n") for u in out["updates"]] == [None, 1.0]
    p = fnas("show", "smoke", "--store", str(store))
    assert "search overhead" in p.stdout and "1 replayed samples" in p.stdout
    assert "stopped   budget spent" in p.stdout


def test_kill_minus_nine_then_resume_matches_an_uninterrupted_run(tmp_path):
    """Over 20 s: three searches in subprocesses (killed, resumed, uninterrupted), each paying
    the start of a process that imports torch, on real trainings of 100 images. The
    uninterrupted one runs beside the killed one (as in test_ray_resume.py), so the test
    waits for two searches' time instead of three."""
    store = tmp_path / "k"
    # The default fnas search: critic, pool and replay buffer all on. An evaluation and its
    # pool entries are committed together, so the resumed run starts every batch from the
    # same pool as the uninterrupted one.
    # Screening from the second batch on (n_init 2), so the kill lands in a screening round.
    conf = tmp_path / "screen.json"
    # A MACs target makes every reward distinct, whatever 100 images teach (tests/fast.py).
    # Two PPO epochs an update, not 10: the same updates, recorded and checkpointed, in a
    # fifth of their time (most of a search's own time here).
    conf.write_text(json.dumps({"fnas": {"screen": {"n_init": 2, "candidates": 64},
                                         "ppo": FAST_PPO},
                                "reward": {"metric": "macs", "target": 1e6}}))
    # the same search uninterrupted, at the same time (its own store: no shared cache)
    whole_proc = subprocess.Popen(
        [sys.executable, "-m", "fnas.cli", *SEARCH, "--budget", "6", "--store",
         str(tmp_path / "u"), "--name", "whole", "--config", str(conf)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cmd = [sys.executable, "-m", "fnas.cli", *SEARCH, "--budget", "6", "--store", str(store),
           "--name", "killed", "--config", str(conf)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = store / "fnas.db"
    deadline = time.time() + 300
    n = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                con = sqlite3.connect(db)
                n = con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
                con.close()
            except sqlite3.OperationalError:
                n = 0
            if n >= 3:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the search finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    p = fnas("search", "--resume", "killed", "--store", str(store), "--no-progress")
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(db)
    rows = con.execute("SELECT iteration, slot FROM evaluations").fetchall()
    status = con.execute("SELECT status FROM experiments").fetchone()[0]
    con.close()
    assert len(rows) == 6 and len(set(rows)) == 6 and status == "done"
    # the uninterrupted search records the same results
    _, err = whole_proc.communicate(timeout=600)
    assert whole_proc.returncode == 0, err

    def results(path):
        con = sqlite3.connect(path / "fnas.db")
        out = con.execute("SELECT iteration, slot, arch_key, reward, trained, cached, "
                          "predicted, pool_snapshot, pool_hit_ratio, predicted_reward "
                          "FROM evaluations ORDER BY iteration, slot").fetchall()
        pool = con.execute("SELECT e.iteration, e.slot, p.stage, p.sha256 FROM pool_entries p "
                           "JOIN evaluations e ON e.id = p.source_eval ORDER BY p.id").fetchall()
        con.close()
        return out, pool

    killed, whole = results(store), results(tmp_path / "u")
    assert killed[1], "no weights were pooled"
    assert any(r[8] for r in whole[0]), "no training started from the pool"
    assert all(r[9] is not None for r in whole[0][2:]), "the critic picked the later batches"
    assert killed == whole


def test_search_bad_input_is_one_line(tmp_path, capsys):
    store = str(tmp_path / "e")
    from fnas.knowledge import Store

    Store(store).close()  # an empty store (a refused search creates none: issue 18)
    cases = [
        (["search", "--task", "nope", "--store", store], "nope"),
        (["search", "--batch", "1", "--store", store], "batch"),
        (["search", "--hard", "--store", store], "--hard"),
        (["search", "--acquisition", "greedy", "--store", store], "acquisition"),
        (["search", "--resume", "ghost", "--acquisition", "ts", "--store", store],
         "--acquisition"),
        (["search", "--resume", "ghost", "--store", store], "ghost"),
        (["search", "--resume", "ghost", "--task", "digits", "--store", store], "--task"),
        (["show", "ghost", "--store", store], "ghost"),
        (["runs", "--store", str(tmp_path / "none")], "no fnas store"),
    ]
    # three as the program (one per kind: argparse's, a config's, a store's refusal), the
    # three processes at once: each spends most of its time importing torch; the others
    # through the same main() in this process
    programs = (0, 3, 5)
    procs = {i: subprocess.Popen([sys.executable, "-m", "fnas.cli", *cases[i][0]], text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in programs}
    for i, (args, needle) in enumerate(cases):
        if i in procs:
            _, err = procs[i].communicate(timeout=600)
            code = procs[i].returncode
        else:
            code, _, err = cli_in_process(capsys, *args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, args


def test_budget_seconds_stops_a_search_and_resume_gets_more(tmp_path):
    # in this process (eval_isolation none), so that the first evaluation of each call starts
    # whatever the machine's load: the limit is then checked before each evaluation (the
    # worker process that stops a running one is tested in test_timeouts)
    store = str(tmp_path / "s")
    p = fnas(*SEARCH, "--strategy", "random", "--budget", "200", "--budget-seconds", "1",
             "--set", "eval_isolation=none", "--store", store, "--name", "timed")
    assert p.returncode == 0, p.stderr
    assert "note: compute budget spent (--budget-seconds)" in p.stdout
    out = json.loads(fnas("show", "timed", "--store", store, "--json").stdout)
    n = out["summary"]["evaluated"]
    assert out["stats"]["stop_reason"] == "seconds" and 1 <= n < 200
    wall = out["stats"]["wall"]
    assert wall >= 1
    p = fnas("search", "--store", store, "--resume", "timed", "--budget-seconds",
             str(wall + 1), "--no-progress")  # a new limit: 1 s more
    assert p.returncode == 0, p.stderr
    out = json.loads(fnas("show", "timed", "--store", store, "--json").stdout)
    assert out["summary"]["evaluated"] > n and out["stats"]["wall"] >= wall + 1
    assert "stopped   compute budget spent" in fnas("show", "timed", "--store", store).stdout


def test_a_space_in_the_users_module_is_searched_and_resumed(tmp_path):
    (tmp_path / "myspaces.py").write_text(
        "from fnas.space import ArchSpec, Decision, FactorizedSpace\n"
        "def _decode(c):\n"
        "    return ArchSpec.parse(f\"cn_r1_k3_s1_c{c['stem']} | "
        "ir_r{c['depth']}_k{c['kernel']}_s2_e3_c16\")\n"
        "tiny = FactorizedSpace('tiny', [Decision('stem', (8, 16)), Decision('kernel', (3, 5)),"
        " Decision('depth', (1, 2))], _decode)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    store = str(tmp_path / "s")
    p = fnas(*SEARCH, "--space", "myspaces:tiny", "--strategy", "random", "--budget", "2",
             "--store", store, "--name", "mine", env=env)
    assert p.returncode == 0, p.stderr
    p = fnas("search", "--store", store, "--resume", "mine", "--budget", "4", "--no-progress",
             env=env)
    assert p.returncode == 0, p.stderr
    out = json.loads(fnas("show", "mine", "--store", store, "--json", env=env).stdout)
    assert out["config"]["space"] == "myspaces:tiny" and out["summary"]["evaluated"] == 4
    p = fnas(*SEARCH, "--space", "nomodule:tiny", "--store", store)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert "cannot be imported" in p.stderr
