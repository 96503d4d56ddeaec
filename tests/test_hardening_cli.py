"""Issue 18, the command-line side: every bad input is one line on stderr and exit 2, no
traceback, nothing recorded lost. Real processes, real files; a little real training."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from fnas.knowledge import Store
from fnas.search import SearchConfig, SyntheticEvaluator, run_search
from fnas.space import mnas_space

from fast import cli_in_process

SPACE = mnas_space(8)
TARGET = SPACE.encode(SPACE.decode(SPACE.sample(np.random.default_rng(5))))


def in_process_one_line_exit_2(capsys, *args, needle=""):
    code, _, err = cli_in_process(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, (args, err)


def fnas(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fnas.cli", *args], capture_output=True,
                          text=True, timeout=300, **kw)


def one_line_exit_2(p, needle=""):
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one stopped synthetic run ``r`` (checkpointed)."""
    root = tmp_path_factory.mktemp("hc") / "s"
    with Store(root) as s:
        run_search(s, SearchConfig(strategy="ppo", budget=6, batch=2, knowledge="none"),
                   name="r", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                   progress=False, stop_after=1)
    return root


BAD_FLAGS = [
    (["search", "--name", "../../escaped"], "run name"),
    (["search", "--name", "/abs/path"], "run name"),
    (["search", "--name", "x" * 5000], "at most 100"),
    (["search", "--name", "1"], "all digits"),
    (["search", "--name", "two\nlines"], "run name"),
    (["search", "--seed", "-1"], "seed"),
    (["search", "--seed", str(2**70)], "seed"),
    (["train", "mnas_default", "--seed", "-5"], "seed"),
    (["search", "--device", "cuda"], "no CUDA device"),
    (["train", "mnas_default", "--device", "cuda"], "no CUDA device"),
    (["train", "mnas_default", "--batch", "1000000000", "--task", "digits"], "exceeds"),
    (["search", "--task", "cifar10:/nonexistent"], "not found"),
    (["search", "--task", "bogus"], "bad dataset spec"),
    (["bench", "--strategies", ","], "names no strategy"),
    (["inspect", "ir_r999999999_k3_s1_e6_c24"], "layers must be 1..32"),
    (["inspect", "ir_r1_k3_s1_e6_c\u0662\u0664"], "unknown option"),
    (["inspect", "mnasnet_a1", "--input-size", "1000000"], "input_size"),
]


def test_bad_flags_are_one_line_and_write_nothing(tmp_path, capsys):
    """In this process (fast); ``main`` returns the exit status, an escaping exception would
    be a traceback. One of them again as a real process below."""
    import torch

    from fnas.cli import main

    for args, needle in BAD_FLAGS:
        if "cuda" in args and torch.cuda.is_available():
            continue
        t = time.perf_counter()
        where = ["--store", str(tmp_path / "s")] if args[0] in ("search", "train") else []
        try:
            code = main([*args, *where])
        except SystemExit as e:  # argparse's own refusals exit through its error()
            code = e.code
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and needle in err, (args, err)
        assert time.perf_counter() - t < 30, args
        assert not (tmp_path / "s").exists() and not (tmp_path.parent / "escaped").exists()
    p = fnas("search", "--name", "../../escaped", "--store", str(tmp_path / "s"))
    one_line_exit_2(p, "run name")
    assert not (tmp_path / "s").exists()


def test_bad_configs_are_refused_like_the_flags(tmp_path, capsys):
    for cfg, needle in (({"fnas": {"imagined": -1}}, "imagined"),
                        ({"task": {"image_size": 1000000}}, "image_size"),
                        ({"seed": -1}, "seed")):
        f = tmp_path / "c.json"
        f.write_text(json.dumps(cfg))
        in_process_one_line_exit_2(capsys, "search", "--config", str(f), "--store",
                                   str(tmp_path / "s"), needle=needle)
    assert not (tmp_path / "s").exists()


def test_a_refused_search_leaves_no_phantom_run(store, capsys):
    in_process_one_line_exit_2(capsys, "search", "--knowledge", "nosuchrun", "--name", "ph",
                               "--store", str(store), needle="nosuchrun")
    code, out, _ = cli_in_process(capsys, "runs", "--store", str(store))
    assert code == 0 and "ph" not in out


@pytest.mark.parametrize("sql, needle", [
    ("UPDATE experiments SET config='{x'", "'config'"),
    ("UPDATE experiments SET config='{\"task\": []}'", "config.task"),
    ("UPDATE evaluations SET decisions='oops'", "'decisions'"),
    ("UPDATE experiments SET created=1e300", "'created'"),
])
def test_damaged_rows_give_one_line_in_every_reader(tmp_path, store, sql, needle, capsys):
    import shutil

    s = tmp_path / "s"
    shutil.copytree(store, s)
    db = sqlite3.connect(s / "fnas.db")
    db.execute(sql)
    db.commit()
    db.close()
    for args in (["runs"], ["show", "r"], ["show", "r", "--json"], ["report", "r", "--out",
                 str(tmp_path / "r.html")], ["train", "r:1", "--epochs", "1"],
                 ["search", "--resume", "r", "--no-progress"], ["pool", "stats"]):
        code, _, err = cli_in_process(capsys, *args, "--store", str(s))
        if code == 0:  # a reader that does not need the damaged field
            continue
        # (a resume meets the synthetic run's task first: any one line will do there)
        want = needle if args[0] in ("runs", "show", "report") else ""
        assert code == 2 and len(err.strip().splitlines()) == 1 and want in err, (args, err)


def test_a_newline_in_a_stored_name_cannot_fake_rows(tmp_path, store):
    import shutil

    s = tmp_path / "s"
    shutil.copytree(store, s)
    db = sqlite3.connect(s / "fnas.db")
    db.execute("UPDATE experiments SET name='r\n  9  fake  done' WHERE name='r'")
    db.commit()
    db.close()
    p = fnas("runs", "--store", str(s))
    assert p.returncode == 0 and len(p.stdout.strip().splitlines()) == 2  # header + 1 run


@pytest.mark.slow
def test_empty_and_newer_databases_are_one_line(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "fnas.db").write_bytes(b"")
    for args in (["runs"], ["show", "x"], ["search", "--budget", "2", "--name", "x"]):
        one_line_exit_2(fnas(*args, "--store", str(tmp_path / "e")), "empty")
    assert (tmp_path / "e" / "fnas.db").stat().st_size == 0


@pytest.mark.slow
def test_a_read_only_store_can_be_read(store, tmp_path):
    """A store this process cannot write: chmod for a user, a read-only bind mount for root
    (root writes through any mode bits)."""
    import shutil

    src = tmp_path / "copy"
    shutil.copytree(store, src)
    before = {p.name: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    ro = tmp_path / "ro"
    if os.geteuid() == 0:
        ro.mkdir()
        if subprocess.run(["mount", "--bind", str(src), str(ro)]).returncode != 0:
            pytest.skip("root, and no bind mount here: cannot make a read-only store")
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
    else:
        ro = src
        for p in [src, *src.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        with pytest.raises(OSError):
            (ro / "probe").write_text("x")  # really read-only
        for args in (["runs"], ["show", "r"], ["show", "r", "--json"], ["pool", "stats"],
                     ["report", "r", "--out", str(tmp_path / "r.html")],
                     ["export", "r:1", "--format", "spec", "--out", str(tmp_path / "a.json"),
                      "--input-size", "8", "--classes", "10", "--in-chans", "1"]):
            p = fnas(*args, "--store", str(ro))
            assert p.returncode == 0, (args, p.stderr[-1500:])
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)])
        else:
            for p in [src, *src.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
    assert {p.name: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before


def test_show_into_a_closed_pipe_is_quiet(store):
    proc = subprocess.Popen([sys.executable, "-m", "fnas.cli", "show", "r", "--json",
                             "--store", str(store)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # as 'head' does once it has its lines
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err and err == "", err
    assert proc.returncode in (0, 141)


def test_report_without_matplotlib_is_one_line(store, tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None  # as if not installed\n"
            "from fnas.cli import main\n"
            f"sys.exit(main(['report', 'r', '--store', {str(store)!r}, '--out', "
            f"{str(tmp_path / 'r.html')!r}]))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    one_line_exit_2(p, "pip install matplotlib")


@pytest.mark.slow
def test_sigterm_marks_the_run_interrupted_and_resume_finishes(tmp_path):
    s = tmp_path / "s"
    cfg = tmp_path / "c.json"  # small trainings: 200 images, no latency measurement
    cfg.write_text(json.dumps({"strategy": "random", "budget": 6, "batch": 2, "task": {
        "dataset": "digits", "epochs": 1, "max_samples": 200, "batch_size": 32,
        "latency_repeats": 0}, "reward": {"metric": "macs", "target": 1e6}}))
    cmd = [sys.executable, "-m", "fnas.cli", "search", "--config", str(cfg), "--no-progress",
           "--store", str(s), "--name", "t"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            con = sqlite3.connect(f"file:{s / 'fnas.db'}?mode=ro", uri=True)  # creates none
            n = con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
            con.close()
        except sqlite3.Error:
            n = 0
        if n >= 1:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "--resume t" in err
    with Store(s, readonly=True) as st:
        assert st.get_experiment("t").status == "interrupted"
    p = fnas("search", "--resume", "t", "--store", str(s), "--no-progress")
    assert p.returncode == 0, p.stderr
    with Store(s, readonly=True) as st:
        evs = st.evaluations(st.get_experiment("t").id)
        assert len(evs) == 6 and len({(e.iteration, e.slot) for e in evs}) == 6
