"""Issue 36, item 2: no refused operation changes the store. Each refused command-line and
Python call below runs against a fresh copy of one small store, and every file of the copy
(the SQLite database, its ``-wal`` and ``-shm`` if any, checkpoints) must keep its bytes,
with no file added or removed. A refused command is exit status 2 and one line on stderr; a
refused call raises an ``FnasError``.

The store is made once: ``obj``, a finished run of a Python objective on a space made in
Python (the issue's case: a resume with another objective raised, yet raised the budget from
4 to 10), and ``syn``, a synthetic run stopped after its first batch (resumable, with a
checkpoint). Nothing trains: the bookkeeping is the subject.
"""

import gc
import hashlib
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import fnas
from fnas.api.runs import load_search
from fnas.errors import FnasError
from fnas.knowledge import Store, prune_store
from fnas.search import SearchConfig, SyntheticEvaluator, resume_search, run_search
from fnas.space import mnas_space

from fast import TINY_SET, TINY_TASK, cli_in_process

SPACE = fnas.make_space("refused-writes", {"width": [16, 32, 64], "depth": [1, 2, 3]})
MNAS = mnas_space(8)
TARGET = MNAS.encode(MNAS.decode(MNAS.sample(np.random.default_rng(5))))


def f(arch):
    return arch["width"] / 64 + arch["depth"] / 10


def g(arch):  # another objective: a run scored by f refuses it
    return arch["width"] / 64


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    root = tmp_path_factory.mktemp("refused") / "store"
    with Store(root) as s:
        fnas.create_search(s, "obj", SPACE, f, budget=4, batch=2).optimize(progress=False)
        run_search(s, SearchConfig(strategy="random", budget=8, batch=2, knowledge="none",
                                   task=TINY_TASK),
                   name="syn", evaluator=SyntheticEvaluator(MNAS, TARGET), space=MNAS,
                   progress=False, stop_after=1)
    assert not Path(f"{root}/fnas.db-wal").exists()  # closed: nothing pending
    return root


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def copy(original, tmp_path):
    """A fresh copy of the store, and a check that it ends with the bytes it started with."""
    root = tmp_path / "store"
    shutil.copytree(original, root)
    return root


def unchanged(root: Path, before: dict[str, str]) -> None:
    gc.collect()  # a refused call's Store, unreachable now, closes its connection
    after = files(root)
    assert after == before, {k: (before.get(k, "-")[:8], after.get(k, "-")[:8])
                             for k in set(before) | set(after) if before.get(k) != after.get(k)}


REFUSED_CLI = [
    (["search", "--resume", "syn", "--epochs", "3"], "drop --epochs"),
    (["search", "--resume", "syn", "--device", "cpu"], "drop --device"),
    (["search", "--resume", "syn", "--budget", "10"], "another space or task"),
    (["search", "--resume", "obj", "--budget", "10"], "scored by your objective"),
    (["search", "--resume", "nosuch", "--budget", "10"], "no experiment 'nosuch'"),
    (["search", "--resume", "syn", "--ray-address", "127.0.0.1:1"], "--executor ray"),
    (["search", "--resume", "syn", "--budget-seconds", "-1"], "positive number"),
    (["search", "--name", "syn", *TINY_SET], "already exists"),
    (["search", "--name", "bad/name"], "run name"),
    (["search", "--name", "new", "--knowledge", "nosuch", *TINY_SET],
     "no experiment 'nosuch'"),
    (["search", "--name", "new", "--set", "nosuch.key=1"], "nosuch"),
    (["show", "nosuch"], "no experiment 'nosuch'"),
    (["report", "nosuch", "--out", "{tmp}/r.html"], "no experiment 'nosuch'"),
    (["export", "nosuch:1", "--format", "spec", "--out", "{tmp}/a.json"], "nosuch"),
    (["train", "nosuch:1", "--out", "{tmp}/m.safetensors"], "nosuch"),
    (["pool", "prune", "--runs", "nosuch"], "no experiment 'nosuch'"),
    (["pool", "prune", "--recent", "3"], "--recent applies"),
    (["pool", "stats", "--all"], "--all applies"),
]


@pytest.mark.parametrize("args,needle", REFUSED_CLI, ids=[" ".join(a[:3]) for a, _ in REFUSED_CLI])
def test_a_refused_command_changes_no_byte_of_the_store(copy, tmp_path, capsys, args, needle):
    before = files(copy)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args] + ["--store", str(copy)]
    code, _, err = cli_in_process(capsys, *argv)
    err = err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, (argv, err)
    unchanged(copy, before)


def _resume_syn(store, **kw):
    return load_search(store, "syn", evaluator=SyntheticEvaluator(MNAS, TARGET),
                       space=MNAS).optimize(progress=False, **kw)


def _damage_checkpoint(root):
    p = root / "runs" / "syn" / "checkpoint.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))


def _lose_a_row(root):
    import sqlite3

    db = sqlite3.connect(root / "fnas.db")
    db.execute("DELETE FROM evaluations WHERE id = (SELECT MAX(id) FROM evaluations "
               "WHERE experiment_id = (SELECT id FROM experiments WHERE name='syn'))")
    db.commit()
    db.close()


def _held_elsewhere(root):
    """Another live process (this one's parent) holds ``syn``'s lease: it is running it."""
    import os
    import socket
    import sqlite3
    import time

    db = sqlite3.connect(root / "fnas.db")
    db.execute("INSERT OR REPLACE INTO leases VALUES ((SELECT id FROM experiments WHERE "
               "name='syn'), 'elsewhere', ?, ?, ?)",
               (socket.gethostname(), os.getppid(), time.time() + 3600))
    db.commit()
    db.close()


REFUSED_API = [
    # the case: another objective, and a larger budget
    ("another objective", None, lambda s: fnas.create_search(
        s, "obj", SPACE, g, load_if_exists=True).optimize(budget=10, progress=False),
     "not 'objective:"),
    ("name taken", None, lambda s: fnas.create_search(s, "obj", SPACE, f), "already exists"),
    ("unknown run", None, lambda s: load_search(s, "nosuch").optimize(budget=10),
     "no experiment"),
    ("misspelt setting", None, lambda s: fnas.create_search(s, "x", SPACE, f, budgett=3),
     "budgett"),
    ("unknown strategy", None, lambda s: fnas.create_search(s, "x", SPACE, f, strategy="zz"),
     "unknown strategy"),
    ("bad name", None, lambda s: fnas.create_search(s, "a/b", SPACE, f), "run name"),
    ("unknown knowledge run", None, lambda s: fnas.create_search(
        s, "new", SPACE, f, knowledge="nosuch").optimize(progress=False), "no experiment"),
    ("budget 0", None, lambda s: _resume_syn(s, budget=0), "budget"),
    ("no objective again", None, lambda s: load_search(s, "obj", space=SPACE).optimize(
        budget=10, progress=False), "scored by your objective"),
    ("another space", None, lambda s: load_search(
        s, "syn", evaluator=SyntheticEvaluator(MNAS, TARGET), space=mnas_space(14)).optimize(
        budget=10, progress=False), "another space"),
    ("damaged checkpoint", _damage_checkpoint, lambda s: _resume_syn(s, budget=10),
     "corrupted"),
    ("a lost row", _lose_a_row, lambda s: _resume_syn(s, budget=10), "missing from the store"),
    ("run elsewhere", _held_elsewhere, lambda s: _resume_syn(s, budget=10),
     "being run or resumed by pid"),
    ("prune an unknown run", None, lambda s: prune_store(s, runs=["nosuch"]), "no experiment"),
]


FOLDER = ("another objective", "name taken", "unknown run", "misspelt setting")
"""Cases also run with the store given as a folder (the Store is then fnas's own)."""
CASES = [(opened, *c) for c in REFUSED_API for opened in (True, False)
         if opened or c[0] in FOLDER]


@pytest.mark.parametrize("opened,damage,call,needle", [c[:1] + c[2:] for c in CASES],
                         ids=[f"{c[1]}{'' if c[0] else ' (folder)'}" for c in CASES])
def test_a_refused_call_changes_no_byte_of_the_store(copy, opened, damage, call, needle):
    if damage is not None:
        damage(copy)
    before = files(copy)
    store = Store(copy) if opened else copy
    try:
        with pytest.raises(FnasError, match=needle) as info:
            call(store)
        info.value.__traceback__ = None  # so that the frames holding a Store go
        del info
    finally:
        if opened:
            store.close()
    unchanged(copy, before)


def test_the_refused_resume_kept_the_budget_and_a_good_one_still_runs(copy):
    """The issue's case end to end: refused (another objective), the budget stays 4; the same
    objective then extends the run to 6."""
    with Store(copy) as s:
        with pytest.raises(FnasError):
            fnas.create_search(s, "obj", SPACE, g, load_if_exists=True).optimize(
                budget=10, progress=False)
        assert s.get_experiment("obj").budget == 4
        out = fnas.create_search(s, "obj", SPACE, f, load_if_exists=True).optimize(
            budget=6, progress=False)
        assert out.experiment.budget == 6 and out.experiment.status == "done"
        assert len(s.evaluations(out.experiment.id)) == 6


def test_a_resume_that_another_process_overtook_is_refused_and_gives_the_lease_back(copy):
    """Between a resume's checks and its lease another process ran the run (simulated: it
    records stats the moment the lease is asked for): the resume, whose checks read the
    older state, is refused and holds no lease; a new resume then runs."""
    with Store(copy) as s:
        take = s.acquire_lease

        def overtaken(exp_id, name=""):
            s.update_experiment(exp_id, stats={"elsewhere": 1})
            take(exp_id, name)

        s.acquire_lease = overtaken
        with pytest.raises(FnasError, match="run by another process while this resume"):
            resume_search(s, "syn", evaluator=SyntheticEvaluator(MNAS, TARGET), space=MNAS,
                          budget=8, progress=False)  # (Search.optimize would release too)
        del s.acquire_lease
        errors = []

        def another_thread():  # would be refused while this thread held the lease
            try:
                with Store(copy) as o:
                    o.check_lease(o.get_experiment("syn").id, "syn")
            except FnasError as e:
                errors.append(e)

        t = threading.Thread(target=another_thread)
        t.start()
        t.join(60)
        assert errors == []
        assert _resume_syn(s, budget=8).experiment.status == "done"
