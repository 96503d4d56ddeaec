"""Issue 32, integrity under hostile use: values are validated and typed before anything is
written, a refused call leaves a store's bytes as they were, and an objective's mistakes are
one-line ``ObjectiveError`` or ``ConfigError``s, never a raw ``TypeError``."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnas
from fnas.errors import ConfigError, StoreError
from fnas.knowledge import Store
from fnas.search import SearchConfig
from fnas.tasks import TaskConfig

from fast import cli_in_process

SPACE = {"width": (8, 16, 32), "depth": (1, 2, 3)}


def score(arch):
    return arch["width"] / 32 - 0.1 * arch["depth"]


def _space():
    return fnas.make_space("integrity-mlp", SPACE)


def _bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def store_with_a_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity") / "runs"
    s = fnas.create_search(store=root, name="kept", space=_space(), objective=score,
                           strategy="random", batch=4)
    s.optimize(budget=8, progress=False)
    s.store.close()
    return root


BAD_INTS = [1.5, True, False, 2**63, 10**30, "8", None, [4], 0, -3, np.float64(4.0)]


@pytest.mark.parametrize("budget", BAD_INTS)
def test_a_bad_budget_is_refused_before_anything_is_written(tmp_path, budget):
    root = tmp_path / "fresh"
    with pytest.raises(ConfigError, match="budget") as e:
        fnas.create_search(store=root, space=_space(), objective=score, budget=budget)
    assert "\n" not in str(e.value)
    assert not root.exists()  # no store was created


def test_numpy_integers_are_integers_and_stored_as_ints(tmp_path):
    s = fnas.create_search(store=tmp_path, space=_space(), objective=score, strategy="random",
                           budget=np.int64(4), batch=np.int32(2), seed=np.uint32(3))
    assert type(s.config.budget) is int and type(s.config.batch) is int
    s.optimize(progress=False)
    assert s.experiment.budget == 4 and len(s.trials()) == 4
    assert type(TaskConfig(epochs=np.int64(2)).epochs) is int


@pytest.mark.parametrize("field,value", [
    ("batch", 2.0), ("seed", 1.0), ("max_samples", 1e3), ("pool_epochs", True),
    ("budget", 10**12)])
def test_search_config_integers_are_integers_in_range(field, value):
    with pytest.raises(ConfigError, match=field):
        SearchConfig(**{field: value})


@pytest.mark.parametrize("field,value", [
    ("epochs", 1.5), ("batch_size", True), ("max_samples", 2**63), ("latency_repeats", "3"),
    ("image_size", 8.0), ("split_seed", -1)])
def test_task_config_integers_are_integers_in_range(field, value):
    with pytest.raises(ConfigError, match=f"task {field}"):
        TaskConfig(**{field: value})


@pytest.mark.parametrize("out,kept", [
    (np.float32(0.5), {"accuracy": 0.5}),
    (np.float64(0.25), {"accuracy": 0.25}),
    ({"accuracy": 0.5, "macs": 6.4, "params": np.int64(7)}, {"macs": 6, "params": 7}),
    ({"accuracy": 0.5, "macs": 6_400_000.0}, {"macs": 6_400_000}),
    ({"accuracy": 0.9, "reward": None}, {"reward": 0.9}),
    ({"reward": 0.3}, {"accuracy": 0.3}),
])
def test_numbers_of_any_kind_are_recorded_typed_and_read_back(tmp_path, out, kept):
    s = fnas.create_search(store=tmp_path, space=_space(), objective=lambda arch: out,
                           strategy="random", batch=2)
    s.optimize(budget=2, progress=False)
    s.store.close()
    with Store(tmp_path, readonly=True) as st:  # read back as another process would
        [exp] = st.list_experiments()
        for e in st.evaluations(exp.id):
            for k, v in kept.items():
                assert getattr(e, k) == pytest.approx(v) and type(getattr(e, k)) is type(v)
    p = subprocess.run([sys.executable, "-m", "fnas.cli", "runs", "--store", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "2/2" in p.stdout, p.stderr


@pytest.mark.parametrize("out,needle", [
    (None, "accuracy=None"), ({"reward": None}, "reward=None"), (10**400, "accuracy=1000"),
    (True, "accuracy=True"), ("0.5", "accuracy='0.5'"), (float("nan"), "accuracy=nan"),
    ({"accuracy": 0.5, "macs": 1e40}, "macs=1e+40"), ({"accuracy": 0.5, "macs": 10**30}, "macs"),
    ({"accuracy": 0.5, "params": -2}, "params=-2"), ([0.5], "accuracy=[0.5]"),
])
def test_an_objectives_bad_result_is_one_objective_error(tmp_path, out, needle):
    s = fnas.create_search(store=tmp_path, space=_space(), objective=lambda arch: out,
                           strategy="random", batch=2)
    with pytest.raises(fnas.ObjectiveError) as e:
        s.optimize(budget=2, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and needle in msg and "<lambda>" in msg  # names the objective
    assert s.trials() == [] and s.experiment.status == "interrupted"  # nothing half-written


def three(arch, seed, extra):
    return 0.5


def keyword_seed(arch, *, seed):
    return 0.5


@pytest.mark.parametrize("objective,needle", [(three, "'extra'"), (keyword_seed, "'seed'")])
def test_an_objective_fnas_cannot_call_is_refused_when_the_search_is_made(tmp_path, objective,
                                                                          needle):
    with pytest.raises(ConfigError, match="objective\\(arch\\), objective\\(arch, seed\\)") as e:
        fnas.create_search(store=tmp_path / "s", space=_space(), objective=objective)
    assert needle in str(e.value) and not (tmp_path / "s").exists()


settings_of = st.fixed_dictionaries({}, optional={
    "budget": st.one_of(st.floats(allow_nan=True), st.booleans(), st.integers(2**40, 2**70),
                        st.text(max_size=4), st.integers(-5, 0)),
    "batch": st.one_of(st.floats(), st.integers(-3, 1), st.none()),
    "seed": st.one_of(st.integers(-10, -1), st.integers(2**32, 2**64), st.floats()),
    "strategy": st.sampled_from(["bayes", "", "FNAS"]),
    "max_samples": st.one_of(st.floats(), st.integers(-9, 0), st.just(True)),
})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kw=settings_of.filter(bool))
def test_a_refused_call_leaves_the_stores_bytes_unchanged(store_with_a_run, kw):
    before = _bytes(store_with_a_run)
    with pytest.raises(ConfigError):
        fnas.create_search(store=store_with_a_run, name="kept", space=_space(),
                           objective=score, load_if_exists=True, **kw)
    assert _bytes(store_with_a_run) == before


@pytest.mark.parametrize("args", [["--budget", "99999999999999999999"], ["--set", "budget=1e23"],
                                  ["--set", "budget=1.5"], ["--epochs", "100000000000"],
                                  ["--set", "task.batch_size=true"]])
def test_the_cli_refuses_out_of_range_counts_before_making_a_store(tmp_path, capsys, args):
    from fnas.cli import main

    assert main(["search", *args, "--store", str(tmp_path / "s"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fnas search: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "s").exists()


def _strict(text):
    def refuse(name):
        raise ValueError(f"not standard JSON: {name}")
    return __import__("json").loads(text, parse_constant=refuse)


def test_json_output_is_standard_json_with_null_for_non_finite_numbers(tmp_path, capsys):
    from fnas.cli import main
    from fnas.cli._common import json_text

    assert _strict(json_text({"a": float("nan"), "b": [float("-inf"), 1.5], "c": (1, {2})})) \
        == {"a": None, "b": [None, 1.5], "c": [1, [2]]}
    # a run where nothing succeeded: its best reward is -inf inside, null outside
    s = fnas.create_search(store=tmp_path, name="nothing", space=_space(), strategy="random",
                           objective=lambda arch: 1 / 0, catch=(ZeroDivisionError,), batch=2)
    s.optimize(budget=2, progress=False)
    s.store.close()
    assert main(["show", "nothing", "--json", "--store", str(tmp_path)]) == 0
    out = _strict(capsys.readouterr().out)
    assert out["stats"]["best_reward"] is None and out["summary"]["evaluated"] == 2


# ---- the result cache never serves one objective's results to another -------------------------
def _factory(k):
    return lambda arch: {"accuracy": 0.5, "reward": float(k)}


def _scaled(arch, k=1.0):
    return {"accuracy": 0.5, "reward": float(k)}


class _Scorer:
    def __init__(self, k):
        self.k = k

    def __call__(self, arch):
        return {"accuracy": 0.5, "reward": float(self.k)}


_LAMBDAS = (lambda arch: {"accuracy": 0.5, "reward": 1.0},
            lambda arch: {"accuracy": 0.5, "reward": 100.0})


@pytest.mark.parametrize("kind", ["closures", "partials", "instances", "lambdas"])
def test_two_objectives_of_one_name_never_share_cached_results(tmp_path, kind):
    import functools

    one, other = {"closures": (_factory(1), _factory(100)),
                  "partials": (functools.partial(_scaled, k=1), functools.partial(_scaled, k=100)),
                  "instances": (_Scorer(1), _Scorer(100)),
                  "lambdas": _LAMBDAS}[kind]
    for name, objective in (("one", one), ("other", other)):
        s = fnas.create_search(store=tmp_path, name=name, space=_space(), objective=objective,
                               strategy="random", batch=3, seed=0)  # the same 6 architectures
        s.optimize(budget=6, progress=False)
    rows = s.trials()
    assert {e.reward for e in rows} == {100.0}  # none of `one`'s rewards of 1.0
    first = {}
    for e in rows:  # a cached row repeats an architecture of this run, never one of `one`'s
        assert not e.cached or e.arch_key in first
        first.setdefault(e.arch_key, e)
    assert s.best.reward == 100.0
    # the same objective again does share: a third run of `other` is served from the cache
    again = fnas.create_search(store=tmp_path, name="again", space=_space(), objective=other,
                               strategy="random", batch=3, seed=0)
    again.optimize(budget=6, progress=False)
    assert all(e.cached for e in again.trials())


def test_an_objective_holding_what_cannot_be_hashed_needs_a_version(tmp_path):
    with open(__file__) as fh:
        objective = _factory(fh)
        with pytest.raises(ConfigError, match="closure variable 'k' is a TextIOWrapper.*version="):
            fnas.create_search(store=tmp_path / "s", space=_space(), objective=objective)
        assert not (tmp_path / "s").exists()
        s = fnas.create_search(store=tmp_path / "s", space=_space(), objective=objective,
                               version="v1")
        assert s.evaluator.signature.endswith(".<lambda>@v1")


@pytest.mark.slow  # Python processes that import torch
def test_the_fingerprint_is_the_same_in_a_new_process(tmp_path):
    (tmp_path / "myobjective.py").write_text(
        "import functools\n"
        "def score(arch, seed, k=2.5):\n    return {'accuracy': 0.5, 'reward': k * seed}\n"
        "objective = functools.partial(score, k=[1, 2.5, 'x', {3: (4,)}])\n")
    code = ("from fnas.execution.identity import fingerprint; import myobjective; "
            "print(fingerprint(myobjective.objective), fingerprint(myobjective.score))")
    os = __import__("os")  # the fnas this process imports (a PYTHONPATH source tree) as well
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": os.pathsep.join(
        p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}
    outs = set()
    for seed in ("1", "2"):  # string hashing differs between the two processes
        env["PYTHONHASHSEED"] = seed
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=120)
        assert p.returncode == 0, p.stderr
        outs.add(p.stdout)
    assert len(outs) == 1 and len(outs.pop().split()) == 2


# ---- concurrency ------------------------------------------------------------------------------
def test_processes_opening_a_fresh_store_at_once_all_succeed(tmp_path):
    """Six processes open one new store at the same moment (they wait on a start file) and
    each records a run: all succeed, none is told the store is empty or damaged."""
    root, go = tmp_path / "fresh", tmp_path / "go"
    code = ("import os, sys, time\n"
            "from fnas.knowledge import Store\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n"
            f"s = Store({str(root)!r})\n"
            "s.create_experiment(f'run{sys.argv[1]}', 'random', 0, 's', 't', {}, 1)\n"
            "print(len(s.list_experiments()) >= 1)\n"
            "s.close()\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(6)]
    __import__("time").sleep(3)  # every process imported fnas and waits
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and out.strip() == "True", err[-500:]
    with Store(root, readonly=True) as st:
        assert sorted(e.name for e in st.list_experiments()) == [f"run{i}" for i in range(6)]
    assert [p.name for p in root.iterdir() if p.name.endswith(".new")] == []  # no leftovers


def test_an_empty_database_is_refused_without_advice_to_delete_it(tmp_path):
    (tmp_path / "fnas.db").write_bytes(b"")
    with pytest.raises(StoreError, match="empty") as e:
        Store(tmp_path)
    assert "remove" not in str(e.value) and (tmp_path / "fnas.db").stat().st_size == 0


# ---- stable identity of spaces ------------------------------------------------------------------
@pytest.mark.slow  # Python processes that import torch
def test_function_choices_are_keyed_by_name_and_resume_in_a_new_process(tmp_path):
    (tmp_path / "fnspace.py").write_text(
        "import torch.nn.functional as F\nimport fnas\n"
        "space = fnas.make_space('acts', {'act': (F.relu, F.gelu), 'w': (1, 2)})\n"
        "def score(arch):\n    return 0.9 if arch['act'] is F.gelu else 0.5\n")
    code = ("import sys, fnas, fnspace\n"
            "s = fnas.create_search(store=sys.argv[1], name='acts', space=fnspace.space,\n"
            "    objective=fnspace.score, strategy='random', batch=2, load_if_exists=True)\n"
            "s.optimize(budget=int(sys.argv[2]), progress=False)\n"
            "print(fnspace.space.signature, s.best.arch)\n")
    os = __import__("os")  # the fnas this process imports (a PYTHONPATH source tree) as well
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}
    outs = []
    for budget in ("4", "8"):  # the second process resumes the first one's run
        p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s"), budget],
                           capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stderr[-800:]
        outs.append(p.stdout.split())
    assert outs[0][0] == outs[1][0]  # the same space signature in both processes
    assert " at 0x" not in " ".join(outs[1]) and outs[1][1].startswith("act=fn:torch.")
    assert "gelu" in outs[1][1]  # keyed by the function's qualified name


@pytest.mark.parametrize("choices,needle", [
    ((lambda x: x, lambda x: 2 * x), "lambda"),
    ((object(), object()), "memory address"),
    (7, "must be a sequence"),
    ("abc", "must be a sequence"),
])
def test_choices_without_a_stable_identity_are_refused(choices, needle):
    with pytest.raises(fnas.errors.FnasError, match=needle):
        fnas.make_space("bad", {"d": choices})


def test_space_sizes_and_shapes_are_bounded():
    from fnas.space.factorized import MAX_CHOICES, MAX_DECISIONS

    with pytest.raises(ConfigError, match=f"at most {MAX_DECISIONS}"):
        fnas.make_space("wide", {f"d{i}": (0, 1) for i in range(MAX_DECISIONS + 1)})
    with pytest.raises(fnas.errors.FnasError, match=f"more than {MAX_CHOICES}"):
        fnas.make_space("deep", {"d": range(100_000)})
    with pytest.raises(ConfigError, match="must be a dict"):
        fnas.make_space("listed", [("d", (1, 2))])


# ---- nothing outside the run is touched -------------------------------------------------------
def _special_files(tmp_path):
    import os
    import stat

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = [fifo, tmp_path]  # a FIFO, a folder
    if os.geteuid() == 0:  # a character device like /dev/null, made here
        dev = tmp_path / "null"
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        out.append(dev)
    return out


def test_outputs_never_replace_a_device_fifo_or_folder(tmp_path, capsys):
    import os

    from fnas._io import atomic_write_bytes
    from fnas.cli import main

    for target in _special_files(tmp_path):
        kind = os.stat(target).st_mode
        with pytest.raises(OSError, match="not a regular file"):
            atomic_write_bytes(target, b"x")
        code = main(["export", "mnasnet_a1", "--format", "spec", "--out", str(target)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert "not a regular file" in err or "is a directory" in err, err
        assert os.stat(target).st_mode == kind  # still what it was


def test_a_symlinked_output_is_written_through(tmp_path):
    from fnas._io import atomic_write_bytes

    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


@pytest.mark.parametrize("kw,needle", [
    ({"store": None}, "store=None"), ({"store": 3}, "store=3"),
    ({"catch": "RuntimeError"}, "catch='RuntimeError'"), ({"catch": (ValueError, 3)}, "catch="),
    ({"version": ["a"]}, "version=['a']"), ({"version": True}, "version=True"),
])
def test_bad_create_search_arguments_are_one_line_config_errors(tmp_path, kw, needle):
    args = {"store": tmp_path / "s", **kw}
    with pytest.raises(ConfigError, match=__import__("re").escape(needle)) as e:
        fnas.create_search(space=_space(), objective=score, **args)
    assert "\n" not in str(e.value) and not (tmp_path / "s").exists()


def test_catch_may_be_one_exception_class(tmp_path):
    s = fnas.create_search(store=tmp_path, space=_space(), objective=lambda a: 1 / 0,
                           strategy="random", batch=2, catch=ZeroDivisionError)
    s.optimize(budget=2, progress=False)
    assert {e.status for e in s.trials()} == {"error"}


def test_a_budget_beyond_the_space_ends_exhausted(tmp_path):
    s = fnas.create_search(store=tmp_path, space=_space(), objective=score, strategy="random",
                           batch=4, budget_counts="trained")
    out = s.optimize(budget=1_000_000, progress=False)  # 9 architectures in the space
    assert out.stats["stop_reason"] == "exhausted"
    assert sum(e.trained for e in s.trials()) == 9


# ---- damage is detected, never silently absorbed ----------------------------------------------
def _run_to(root, batches, budget=12):
    s = fnas.create_search(store=root, name="r", space=_space(), objective=score,
                           strategy="random", batch=2, load_if_exists=True)
    s.optimize(budget=budget, progress=False, stop_after=batches)
    s.store.close()


def _copy(src: Path, dst: Path):
    import shutil

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)


@pytest.mark.parametrize("damage", ["rows deleted", "database from an older backup",
                                    "checkpoint from an older backup"])
def test_a_store_that_disagrees_with_its_checkpoint_is_refused_and_left_as_is(tmp_path, damage):
    import sqlite3

    root = tmp_path / "s"
    _run_to(root, 2)  # batches 0 and 1 recorded, checkpoint after batch 1
    _copy(root, tmp_path / "backup")
    _run_to(root, 2)  # batches 2 and 3 recorded, checkpoint after batch 3
    if damage == "rows deleted":
        with sqlite3.connect(root / "fnas.db") as db:
            db.execute("DELETE FROM evaluations WHERE iteration = 1 AND slot = 0")
    elif damage == "database from an older backup":
        for p in root.glob("fnas.db*"):
            p.unlink()
        for p in (tmp_path / "backup").glob("fnas.db*"):
            (root / p.name).write_bytes(p.read_bytes())
    else:
        for p in (tmp_path / "backup" / "runs" / "r").glob("checkpoint.*"):
            (root / "runs" / "r" / p.name).write_bytes(p.read_bytes())
    before = _bytes(root)
    with pytest.raises(StoreError, match="missing from the store" if damage != "checkpoint "
                       "from an older backup" else "checkpoint is older") as e:
        _run_to(root, None)
    assert "\n" not in str(e.value) and "nothing was changed" in str(e.value)
    after = _bytes(root)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {"fnas.db", "fnas.db-wal", "fnas.db-shm"}  # the status and lease only
    with Store(root, readonly=True) as st:
        exp = st.get_experiment("r")
        assert exp.status != "done" and len(st.evaluations(exp.id)) < 12


def test_an_intact_store_resumes_to_the_end(tmp_path):
    root = tmp_path / "s"
    _run_to(root, 2)
    _run_to(root, None)
    with Store(root, readonly=True) as st:
        exp = st.get_experiment("r")
        assert exp.status == "done" and len(st.evaluations(exp.id)) == 12


@pytest.mark.parametrize("flag,value", [("--input-size", "1000000000"), ("--classes", "10000000"),
                                        ("--in-chans", "99999")])
def test_export_refuses_sizes_out_of_range_and_writes_nothing(tmp_path, capsys, flag, value):
    from fnas.cli import main

    out = tmp_path / "m.json"
    assert main(["export", "mnasnet_a1", "--format", "spec", flag, value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert flag in err and err.count("\n") == 1 and not out.exists()


@pytest.mark.slow  # six searches in subprocesses
def test_searches_sharing_a_store_at_once_differ_only_in_what_the_cache_served(tmp_path):
    """Issue 32's question: several API searches at once on one fresh store recorded rows
    unlike their uninterrupted runs. The cause is the shared result cache (one objective, one
    store: a result another run trained is served as ``cached``), not a divergence: every
    run samples the same architectures and gets the same rewards as alone."""
    import sqlite3

    (tmp_path / "concobj.py").write_text(
        "import sys, fnas\n"
        "SPACE = fnas.make_space('conc', {'w': (8, 16, 32, 64), 'd': (1, 2, 3), 'k': (3, 5)})\n"
        "def score(arch, seed):\n"
        "    return arch['w'] / 64 - 0.05 * arch['d'] + 0.01 * arch['k']\n"
        "s = fnas.create_search(store=sys.argv[1], name=sys.argv[2], space=SPACE,\n"
        "    objective=score, strategy='rea', batch=4, seed=int(sys.argv[3]))\n"
        "s.optimize(budget=16, progress=False)\n")
    os = __import__("os")  # the fnas this process imports (a PYTHONPATH source tree) as well
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}

    def run(store, i):
        return subprocess.Popen([sys.executable, "-m", "concobj", str(tmp_path / store),
                                 f"r{i}", str(i)], env=env, stderr=subprocess.PIPE, text=True)

    def rows(store, name):
        with sqlite3.connect(tmp_path / store / "fnas.db") as db:
            return db.execute("SELECT e.iteration, e.slot, e.arch_key, e.reward, e.cached FROM "
                              "evaluations e JOIN experiments x ON x.id = e.experiment_id "
                              "WHERE x.name = ? ORDER BY 1, 2", (name,)).fetchall()

    together = [run("shared", i) for i in range(3)]  # one fresh store, three runs at once
    for p in together:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-800:]
    for i in range(3):
        assert run(f"alone{i}", i).wait(timeout=300) == 0
    served = 0
    for i in range(3):
        shared, alone = rows("shared", f"r{i}"), rows(f"alone{i}", f"r{i}")
        assert [r[:4] for r in shared] == [r[:4] for r in alone] and len(shared) == 16
        served += sum(r[4] for r in shared) - sum(r[4] for r in alone)
    assert served > 0  # the runs did serve each other's results


# ---- one damaged row never stops the readers or the other runs --------------------------------
def _measured(arch):
    return {"accuracy": score(arch), "macs": 1000 * arch["width"] * arch["depth"]}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("two") / "s"
    for name in ("r1", "r2"):
        s = fnas.create_search(store=root, name=name, space=_space(), objective=_measured,
                               strategy="random", batch=2, budget=6, version="1")
        s.optimize(progress=False)
        s.store.close()
    return root


def _sql(root: Path, *statements):
    import sqlite3

    with sqlite3.connect(root / "fnas.db") as db:
        out = [db.execute(q).fetchall() for q in statements]
    db.close()
    return out


def test_a_damaged_run_row_is_listed_as_damaged_and_never_hides_the_others(two_runs, tmp_path,
                                                                           capsys, caplog):
    import json

    root = tmp_path / "s"
    _copy(two_runs, root)
    _sql(root, "UPDATE experiments SET budget='x1.5' WHERE name='r1'")
    code, out, err = cli_in_process(capsys, "runs", "--store", str(root))
    assert code == 0 and err.count("\n") == 1 and "field 'budget' holds 'x1.5'" in err, err
    lines = {ln.split()[1]: ln.split() for ln in out.splitlines()[1:]}
    assert lines["r1"][2] == "damaged" and lines["r2"][2:4] == ["done", "6/6"], out
    code, out, _ = cli_in_process(capsys, "runs", "--json", "--store", str(root))
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and "'budget'" in rows["r1"]["damaged"] and rows["r1"]["status"] == "damaged"
    assert rows["r2"]["damaged"] is None and rows["r2"]["evaluated"] == 6
    code, out, err = cli_in_process(capsys, "show", "r2", "--store", str(root))
    assert code == 0 and err == "" and "6 evaluated" in out
    code, _, err = cli_in_process(capsys, "show", "r1", "--store", str(root))
    assert code == 2 and err.count("\n") == 1 and "'budget'" in err
    with Store(root, readonly=True) as st:  # the Python listing leaves it out, and says so
        assert [e.name for e in st.list_experiments()] == ["r2"]
        assert "'budget'" in caplog.text
        with pytest.raises(StoreError, match="'budget'"):
            st.get_experiment("r1")
    with pytest.raises(StoreError, match="field 'budget' holds") as e:  # not 'already exists'
        fnas.create_search(store=root, name="r1", space=_space(), objective=_measured,
                           strategy="random", batch=2, budget=8, version="1",
                           load_if_exists=True).optimize(progress=False)
    assert "\n" not in str(e.value)
    assert _sql(root, "SELECT budget FROM experiments WHERE name='r1'",
                "SELECT COUNT(*) FROM evaluations")[0:2] == [[("x1.5",)], [(12,)]]


def test_damaged_evaluation_rows_are_skipped_by_readers_and_refused_by_a_resume(
        two_runs, tmp_path, capsys):
    import json

    root = tmp_path / "s"
    _copy(two_runs, root)
    [[(best_id,)], [(other_id,)]] = _sql(  # the best row (reward damaged) and another one
        root, "SELECT id FROM evaluations WHERE experiment_id=1 ORDER BY reward DESC LIMIT 1",
        "SELECT id FROM evaluations WHERE experiment_id=1 ORDER BY reward ASC LIMIT 1")
    seen, want = set(), []  # the best distinct architectures among the intact rows
    for key, reward in _sql(root, f"SELECT arch_key, reward FROM evaluations WHERE "
                            f"experiment_id=1 AND id NOT IN ({best_id}, {other_id}) AND "
                            "status='ok' ORDER BY reward DESC, id")[0]:
        if key not in seen:
            seen.add(key)
            want.append((key, reward))
    _sql(root, f"UPDATE evaluations SET reward='junk' WHERE id={best_id}",
         f"UPDATE evaluations SET macs='lots' WHERE id={other_id}")
    code, out, err = cli_in_process(capsys, "show", "r1", "--json", "--store", str(root))
    assert code == 0 and err.count("\n") == 1 and "2 damaged evaluation rows skipped" in err
    shown = json.loads(out)
    assert shown["summary"]["evaluated"] == 4 and shown["damaged_evaluations"] == 2
    assert [(e["arch_key"], e["reward"]) for e in shown["top"]] == want[:5]
    code, out, err = cli_in_process(capsys, "show", "r1", "--store", str(root))
    assert code == 0 and "4 evaluated" in out and err.count("\n") == 1
    # the reward broke its sums
    code, out, err = cli_in_process(capsys, "runs", "--store", str(root))
    assert code == 0 and "damaged evaluation row" in err and " 4/6 " in out and " 6/6 " in out
    code, out, err = cli_in_process(capsys, "show", "r2", "--store", str(root))
    assert code == 0 and err == "" and "6 evaluated" in out
    assert cli_in_process(capsys, "report", "r1", "--store", str(root), "--out",
                str(tmp_path / "r.html"))[0] == 0 and (tmp_path / "r.html").is_file()
    before = _sql(root, "SELECT * FROM evaluations ORDER BY id")
    with pytest.raises(StoreError, match="'reward' holds 'junk'") as e:  # a resume never skips
        fnas.create_search(store=root, name="r1", space=_space(), objective=_measured,
                           strategy="random", batch=2, budget=8, version="1",
                           load_if_exists=True).optimize(progress=False)
    assert "\n" not in str(e.value) and _sql(root, "SELECT * FROM evaluations ORDER BY id") \
        == before


@pytest.mark.parametrize("sql,line", [
    ("UPDATE experiments SET stats='{\"wall\": \"x\"}' WHERE name='r1'", "time"),
    ("UPDATE experiments SET stats='{\"stop_reason\": [1]}' WHERE name='r1'", "stopped"),
    ("UPDATE updates SET metrics='{\"screen/screened\": \"x\"}'", "screening"),
    ("UPDATE updates SET metrics='{' WHERE experiment_id=1", "damaged update row"),
])
def test_show_says_which_line_is_damaged_and_shows_the_rest(two_runs, tmp_path, capsys, sql,
                                                            line):
    root = tmp_path / "s"
    _copy(two_runs, root)
    _sql(root, sql)
    code, out, err = cli_in_process(capsys, "show", "r1", "--store", str(root))
    assert code == 0 and err.count("\n") == 1 and line in err, err
    assert "6 evaluated" in out and "rank" in out


# ---- a FIFO given as an input file never hangs a command ------------------------------------
def test_input_files_that_are_fifos_devices_or_folders_are_refused_without_reading(tmp_path):
    """Run in a subprocess with a timeout: reading a FIFO would wait for a writer forever."""
    import json
    import os

    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    cases = [["search", "--config", str(fifo), "--store", str(tmp_path / "s")],
             ["search", "--config", str(tmp_path), "--store", str(tmp_path / "s")],
             ["bench", "--table", str(fifo), "--space", "macro"],
             ["bench", "--bench", "table", "--space", "macro", "--table", str(tmp_path / "t.csv"),
              "--source-table", str(fifo)],
             ["export", "mnasnet_a1", "--weights", str(fifo), "--format", "spec", "--out",
              str(tmp_path / "m.json")]]
    if os.path.exists("/dev/zero"):  # a device that never ends
        cases.append(["search", "--config", "/dev/zero", "--store", str(tmp_path / "s")])
    script = ("import contextlib, io, json, sys\nfrom fnas.cli import main\nout = []\n"
              "for argv in json.loads(sys.argv[1]):\n    err = io.StringIO()\n"
              "    with contextlib.redirect_stderr(err):\n        code = main(argv)\n"
              "    out.append((code, err.getvalue()))\nprint(json.dumps(out))\n")
    p = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-800:]
    for argv, (code, err) in zip(cases, json.loads(p.stdout), strict=True):
        assert code == 2 and err.count("\n") == 1 and "not a regular file" in err, (argv, err)
    assert not (tmp_path / "s").exists() and not (tmp_path / "m.json").exists()


# ---- choices that cannot be hashed are keyed, searched, and keyed alike in every process ------
def test_unhashable_choices_are_searched_and_keyed_alike_in_every_process(tmp_path):
    """Sets print their members in an order that changes with the process's hash seed: a
    choice's key sorts them, so a space's signature (and a resume) does not depend on it."""
    import os

    decisions = {"d": ({1}, {2}), "w": ([1], [2]), "s": ({"x", "y", "z"}, {"q"}),
                 "n": (({"b", "a"},), {"k": {"m", "n"}})}
    sp = fnas.make_space("unhashable", decisions)
    assert sp.size == 16 and sp.decisions[2].keys == ["{'x', 'y', 'z'}", "{'q'}"]
    s = fnas.create_search(store=tmp_path, space=sp, objective=lambda a: len(a["s"]) / 3,
                           strategy="random", batch=4, budget=8, version="1")
    s.optimize(progress=False)
    assert len(s.trials()) == 8 and max(e.reward for e in s.trials()) == 1.0
    code = ("import fnas\nprint(fnas.make_space('unhashable', {'d': ({1}, {2}), 'w': ([1], "
            "[2]), 's': ({'x', 'y', 'z'}, {'q'}), 'n': (({'b', 'a'},), {'k': {'m', 'n'}})})"
            ".signature)")
    sigs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "PYTHONHASHSEED": str(seed)},
                           check=True).stdout.strip() for seed in (1, 2, 3, 4)}
    assert sigs == {sp.signature}


def test_choices_nested_too_deep_or_without_a_repr_are_one_line():
    class NoRepr:
        def __repr__(self):
            raise ValueError("no repr")

    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    for choices, needle in (((deep, 1), "nested too deep"), ((NoRepr(), 1), "no usable repr")):
        with pytest.raises(fnas.errors.FnasError, match=needle) as e:
            fnas.make_space("bad", {"d": choices})
        assert "\n" not in str(e.value)


# ---- threads of one process -------------------------------------------------------------------
def _rows(root: Path, name: str, cols: str = "iteration, slot, arch_key, reward, status, cached"):
    return _sql(root, f"SELECT {cols} FROM evaluations WHERE experiment_id = (SELECT id FROM "
                f"experiments WHERE name = '{name}') ORDER BY iteration, slot")[0]


def test_a_second_thread_opening_a_running_run_is_refused_and_the_first_finishes(tmp_path):
    """Deterministic: the first thread's objective waits until the second has tried."""
    import os
    import threading

    started, tried = threading.Event(), threading.Event()

    def held(arch):
        started.set()
        tried.wait(60)
        return score(arch)

    def search(root):
        return fnas.create_search(store=root, name="same", space=_space(), objective=held,
                                  strategy="random", batch=2, budget=6, version="1",
                                  load_if_exists=True)

    started.set(), tried.set()
    search(tmp_path / "alone").optimize(progress=False)  # the reference, made alone
    started.clear(), tried.clear()
    out: dict = {}

    def first():
        try:
            out["first"] = search(tmp_path / "s").optimize(progress=False).stats["stop_reason"]
        finally:
            tried.set()

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(60)
    with pytest.raises(StoreError) as e:
        search(tmp_path / "s").optimize(progress=False)
    tried.set()
    t.join(120)
    msg = str(e.value)
    assert "\n" not in msg and "run 'same' is being run by another thread of this process" \
        in msg and f"pid {os.getpid()}" in msg
    assert out["first"] == "budget"
    assert _rows(tmp_path / "s", "same") == _rows(tmp_path / "alone", "same")
    with Store(tmp_path / "s", readonly=True) as st:
        assert st.get_experiment("same").status == "done"
    s = search(tmp_path / "s")  # once the first thread is done, this one may open it
    assert s.optimize(budget=8, progress=False).experiment.status == "done"


def test_a_lease_held_by_a_live_thread_is_refused_and_a_finished_threads_is_taken(tmp_path):
    import threading

    s = fnas.create_search(store=tmp_path, name="r", space=_space(), objective=score,
                           strategy="random", batch=2, budget=4)
    s.optimize(progress=False, stop_after=1)
    exp_id = s.experiment.id
    s.store.close()
    hold, release = threading.Event(), threading.Event()

    def holder():  # takes the lease and ends without giving it back
        Store(tmp_path).acquire_lease(exp_id, "r")
        hold.set()
        release.wait(60)

    t = threading.Thread(target=holder, name="holder")
    t.start()
    assert hold.wait(60)
    mine = Store(tmp_path)
    with pytest.raises(StoreError, match="another thread of this process .* thread 'holder'"):
        mine.acquire_lease(exp_id, "r")
    release.set()
    t.join(60)
    mine.acquire_lease(exp_id, "r")  # its thread ended: taken over
    assert _sql(tmp_path, "SELECT COUNT(*) FROM leases")[0] == [(1,)]
    mine.close()
    assert _sql(tmp_path, "SELECT COUNT(*) FROM leases")[0] == [(0,)]
    first, second = Store(tmp_path), Store(tmp_path)  # one thread, two stores: the later one
    first.acquire_lease(exp_id, "r")  # takes the lease over, and the earlier one's close
    second.acquire_lease(exp_id, "r")  # leaves it alone
    first.close()
    assert _sql(tmp_path, "SELECT COUNT(*) FROM leases")[0] == [(1,)]
    second.close()
    assert _sql(tmp_path, "SELECT COUNT(*) FROM leases")[0] == [(0,)]


def test_two_threads_running_two_runs_of_one_store_both_finish(tmp_path):
    import threading

    def search(root, name, store=None):
        return fnas.create_search(store=store or root, name=name, space=_space(),
                                  objective=score, strategy="random", batch=2, budget=6,
                                  seed=len(name), version="1")

    for name in ("a", "bb"):
        search(tmp_path / f"alone-{name}", name).optimize(progress=False)
    out: dict = {}

    def run(name, store=None):
        try:
            out[name] = search(tmp_path / "s", name, store).optimize(progress=False).stats[
                "stop_reason"]
        except StoreError as e:
            out[name] = str(e)

    ts = [threading.Thread(target=run, args=(n,)) for n in ("a", "bb")]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert out == {"a": "budget", "bb": "budget"}
    cols = "iteration, slot, arch_key, reward, status"  # 'cached' depends on who was first
    for name in ("a", "bb"):
        assert _rows(tmp_path / "s", name, cols) == _rows(tmp_path / f"alone-{name}", name, cols)
    shared = Store(tmp_path / "shared")  # one Store object shared by threads: refused
    t = threading.Thread(target=run, args=("ccc", shared))
    t.start()
    t.join(120)
    assert "opened in another thread" in out["ccc"] and "\n" not in out["ccc"]


# ---- a library that cannot load (ulimit -v) is one line ---------------------------------------
@pytest.mark.parametrize("top_level,needle", [
    ("raise ImportError('libfake.so: failed to map segment from shared object')",
     "cannot load fakelib (out of memory? check ulimit -v and free memory): libfake.so: "
     "failed to map segment from shared object"),
    ("raise RuntimeError('std::bad_alloc')", "cannot load fakelib (out of memory? check "
     "ulimit -v and free memory): std::bad_alloc"),
    ("raise MemoryError()", "cannot load fakelib (out of memory? check ulimit -v"),
    ("try:\n    raise ImportError('libq.so: failed to map segment from shared object')\n"
     "except ImportError as e:\n    raise ImportError('\\n\\nIMPORTANT: PLEASE READ THIS\\n"
     "Original error was: libq.so: failed to map segment from shared object\\n') from e",
     "cannot load fakelib (out of memory? check ulimit -v and free memory): libq.so: failed"),
    ("raise ImportError('No module named backend')", "cannot load fakelib: No module named"),
])
def test_a_library_that_cannot_load_is_one_line_in_every_command(tmp_path, monkeypatch, capsys,
                                                                  top_level, needle):
    """In process: a module whose top level fails as torch or numpy do under ``ulimit -v``
    (the real limit is the subprocess test below)."""
    import importlib

    import fnas.cli.runs

    (tmp_path / "fakelib.py").write_text(top_level + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(fnas.cli.runs, "run", lambda args: importlib.import_module("fakelib"))
    code, out, err = cli_in_process(capsys, "runs")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"fnas runs: error: {needle}"), err


def test_running_out_of_memory_is_one_line_and_other_errors_are_not_hidden(monkeypatch,
                                                                          capsys):
    import fnas.cli.runs

    def no_memory(args):
        raise MemoryError

    monkeypatch.setattr(fnas.cli.runs, "run", no_memory)
    assert cli_in_process(capsys, "runs")[2] == \
        "fnas runs: error: out of memory (check ulimit -v and free memory)\n"

    def a_bug(args):
        raise RuntimeError("a bug, not a library that cannot load")

    monkeypatch.setattr(fnas.cli.runs, "run", a_bug)
    with pytest.raises(RuntimeError, match="a bug"):  # not dressed up as a loading problem
        cli_in_process(capsys, "runs")


def test_show_under_an_address_space_limit_too_small_for_torch_is_one_line(two_runs):
    """A real ``ulimit -v``: the limit is set between what numpy needs and what torch needs
    (measured here, so it holds on another machine), where torch's shared library cannot be
    mapped (here: ``cannot load torch (...): libtorch_cpu.so: failed to map segment``)."""
    import os
    import resource

    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to measure the address space")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    probe = ("import numpy, sqlite3, fnas.cli\nprint([l.split()[1] for l in "
             "open('/proc/self/status') if l.startswith('VmPeak')][0])")
    peak_kb = int(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                                 text=True, timeout=120, check=True).stdout)
    import torch

    lib = max((p.stat().st_size for p in (Path(torch.__file__).parent / "lib").glob("*.so*")),
              default=0)  # the shared library torch maps first, whole
    if lib < 256 << 20:
        pytest.skip("torch's largest library is small enough to map under a tight limit")
    limit = (peak_kb << 10) + (128 << 20)  # numpy loads, torch's library cannot be mapped

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    p = subprocess.run([sys.executable, "-m", "fnas.cli", "show", "r1", "--store",
                        str(two_runs)], env=env, preexec_fn=cap, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2, p.stderr[-1500:]
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("fnas show: error: cannot load ")
    assert "(out of memory? check ulimit -v and free memory): " in p.stderr, p.stderr


# ---- names fnas chooses are unique without a race ---------------------------------------------
def test_a_name_fnas_chooses_that_is_taken_gets_a_number_and_a_given_one_is_refused(tmp_path):
    from fnas.knowledge.schema import MAX_NAME_LENGTH

    with Store(tmp_path) as st:
        args = ("random", 0, "s", "t", {}, 1)
        assert st.create_experiment("auto", *args, unique=True).name == "auto"
        assert st.create_experiment("auto", *args, unique=True).name == "auto-2"
        assert st.create_experiment("auto", *args, unique=True).name == "auto-3"
        with pytest.raises(StoreError, match="'auto' already exists") as e:  # a given name
            st.create_experiment("auto", *args)
        assert "\n" not in str(e.value)
        long = "x" * MAX_NAME_LENGTH  # a suffix still fits the longest name
        st.create_experiment(long, *args, unique=True)
        assert st.create_experiment(long, *args, unique=True).name == "x" * 98 + "-2"
        assert [e.name for e in st.list_experiments()][:3] == ["auto", "auto-2", "auto-3"]


@pytest.mark.slow  # two Python processes that import torch and search
def test_two_searches_started_in_the_same_second_without_a_name_both_run(tmp_path):
    """Two real ``fnas search`` processes on one store, no ``--name``, released at the same
    moment (they wait on a start file), with the clock stopped at one second in both: each
    names its run from the same second, so the names collide for sure; the second takes
    ``-2`` (one INSERT each, no check-then-insert race), and both finish."""
    import os

    root, go = tmp_path / "s", tmp_path / "go"
    code = ("import datetime, os, sys, time\nimport fnas.knowledge.schema as names\n"
            "from fnas.cli import main\n"
            "class Stopped(datetime.datetime):\n    @classmethod\n"
            "    def now(cls, tz=None):\n        return cls(2024, 5, 6, 7, 8, 9)\n"
            "names.datetime = Stopped\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.002)\n"
            "sys.exit(main(sys.argv[1:]))\n")
    argv = ["search", "--strategy", "random", "--budget", "2", "--batch", "2", "--set",
            "task.max_samples=100", "--set", "task.batch_size=32", "--set", "task.epochs=1",
            "--set", "task.latency_repeats=0", "--no-progress", "--store", str(root)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code, *argv], text=True, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    __import__("time").sleep(3)  # both imported fnas and wait (a late one only waits less)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-800:]
    names = sorted(o.split()[1] for o, _ in outs if o.startswith("run "))
    assert names == ["random-digits-s0-20240506-070809", "random-digits-s0-20240506-070809-2"]
    with Store(root, readonly=True) as st:
        runs = st.list_experiments()
        assert sorted(e.name for e in runs) == names and {e.status for e in runs} == {"done"}
        assert all(len(st.evaluations(e.id)) == 2 for e in runs)


def test_a_new_search_learns_past_other_runs_damaged_rows(two_runs, tmp_path, caplog):
    """knowledge='all' reads every other run: a damaged evaluation row of one is skipped with
    a warning naming the run, a run whose own row is damaged is left out, and the new search
    runs to its end."""
    root = tmp_path / "s"
    _copy(two_runs, root)
    _sql(root, "UPDATE evaluations SET macs='junk' WHERE id = (SELECT MIN(id) FROM evaluations"
         " WHERE experiment_id=1)")
    s = fnas.create_search(store=root, name="r3", space=_space(), objective=_measured,
                           strategy="fnas", batch=2, budget=4, version="1", knowledge="all")
    out = s.optimize(progress=False)
    assert len(s.trials()) == 4 and out.stats["knowledge/experiments"] == ["r1", "r2"]
    assert "run 'r1': 1 damaged evaluation row skipped" in caplog.text
    _sql(root, "UPDATE experiments SET budget='x1.5' WHERE name='r2'")  # the run row itself
    s.store.close()
    s = fnas.create_search(store=root, name="r4", space=_space(), objective=_measured,
                           strategy="fnas", batch=2, budget=4, version="1", knowledge="all")
    out = s.optimize(progress=False)
    assert len(s.trials()) == 4 and out.stats["knowledge/experiments"] == ["r1", "r3"]
    s.store.close()


# ---- the Python loaders refuse a FIFO too (one check, fnas._io.regular_source) -----------------
def test_every_loader_of_a_named_file_refuses_a_fifo_device_or_folder_unread(tmp_path):
    """Each loader is called on a FIFO (and the checks on a folder and /dev/zero) in a
    subprocess with a timeout: a loader that opened the FIFO would wait for a writer forever,
    so a regression fails here instead of hanging the suite."""
    import json
    import os

    fifo = tmp_path / "input.json"
    os.mkfifo(fifo)
    os.mkfifo(tmp_path / "input.toml")
    idx = tmp_path / "idx"
    idx.mkdir()
    os.mkfifo(idx / "train-images-idx3-ubyte")
    (idx / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x02\x00\x01")
    script = (
        "import json, sys\nfrom pathlib import Path\n"
        "from fnas._io import read_source, regular_source\n"
        "from fnas.nn.weights import load, read_info\n"
        "from fnas.search.config_io import load_config\n"
        "from fnas.tasks import load_dataset, load_score_table\n"
        "from fnas.tasks.macro_table import load_macro_table\n"
        "fifo, idx, folder = sys.argv[1:4]\n"
        "calls = {'load_config': lambda: load_config(fifo),\n"
        "    'load_config(toml)': lambda: load_config(Path(fifo).with_suffix('.toml')),\n"
        "    'load_score_table': lambda: load_score_table(fifo),\n"
        "    'load_macro_table': lambda: load_macro_table(fifo),\n"
        "    'fnas.load': lambda: load(fifo),\n"
        "    'read_info': lambda: read_info(fifo),\n"
        "    'idx dataset': lambda: load_dataset('idx:' + idx),\n"
        "    'read_source(folder)': lambda: read_source(folder, 'x'),\n"
        "    'regular_source(/dev/zero)': lambda: regular_source('/dev/zero', 'x')}\n"
        "out = {}\n"
        "for name, call in calls.items():\n"
        "    try:\n        call()\n        out[name] = ['no error', '']\n"
        "    except Exception as e:\n        out[name] = [type(e).__name__, str(e)]\n"
        "print(json.dumps(out))\n")
    p = subprocess.run([sys.executable, "-c", script, str(fifo), str(idx), str(tmp_path)],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-800:]
    out = json.loads(p.stdout)
    assert len(out) == 9
    for name, (kind, msg) in out.items():
        if name == "regular_source(/dev/zero)" and not os.path.exists("/dev/zero"):
            continue
        assert kind == "ConfigError" and "not a regular file (" in msg, (name, kind, msg)
        assert "\n" not in msg and msg.endswith("; give a file"), (name, msg)
    assert "(a FIFO)" in out["load_macro_table"][1] and "(a directory)" in \
        out["read_source(folder)"][1] and "idx file" in out["idx dataset"][1]
    assert out["regular_source(/dev/zero)"][1].endswith("(a device); give a file")


# ---- keys stay short: one choice's, and one architecture's -------------------------------------
def test_choice_keys_and_architecture_keys_have_a_length_limit():
    from fnas.search import SPACES
    from fnas.space.factorized import MAX_ARCH_KEY, MAX_CHOICE_KEY

    with pytest.raises(fnas.errors.InvalidArchitecture, match=f"at most {MAX_CHOICE_KEY}") as e:
        fnas.make_space("huge", {"d": ("x" * 10_000, "y")})  # its repr went into every key
    assert "\n" not in str(e.value) and len(str(e.value)) < 300
    fnas.make_space("fits", {"d": ("x" * (MAX_CHOICE_KEY - 2), "y")})  # repr adds the quotes
    wide = {f"decision{i:03d}": ("a" * 150, "b") for i in range(60)}  # 60 x 164 characters
    with pytest.raises(fnas.errors.InvalidArchitecture, match=f"at most {MAX_ARCH_KEY}") as e:
        fnas.make_space("wide-keys", wide)
    assert "\n" not in str(e.value)
    sp = fnas.make_space("fits-too", dict(list(wide.items())[:40]))
    arch = sp.decode(sp.sample(np.random.default_rng(0)))
    assert len(arch.key) <= MAX_ARCH_KEY
    for name in ("mnas", "macro"):  # the built-in spaces are far inside the limits
        assert SPACES[name](32).decisions


def test_to_dataframe_leaves_out_damaged_rows_and_says_how_many(two_runs, tmp_path, caplog):
    pytest.importorskip("pandas")
    root = tmp_path / "s"
    _copy(two_runs, root)
    _sql(root, "UPDATE evaluations SET macs='junk' WHERE id = (SELECT MIN(id) FROM evaluations"
         " WHERE experiment_id=1)")
    with Store(root, readonly=True) as st:
        df = st.to_dataframe()
        assert list(df.groupby("run").size().items()) == [("r1", 5), ("r2", 6)]
        assert "run 'r1': 1 damaged evaluation row skipped" in caplog.text
        assert len(st.to_dataframe("r1")) == 5 and len(st.to_dataframe("r2")) == 6
    _sql(root, "UPDATE experiments SET budget='x1.5' WHERE name='r2'")  # the run row itself
    with Store(root, readonly=True) as st:
        assert set(st.to_dataframe()["run"]) == {"r1"}
        with pytest.raises(StoreError, match="'budget'"):  # a run named: its row is refused
            st.to_dataframe("r2")


def test_a_refusal_quoting_a_huge_value_stays_one_short_line(tmp_path):
    from fnas.cli import main

    big = "x" * 1_000_000
    with pytest.raises(ConfigError) as e:
        SearchConfig(space=big)
    assert len(str(e.value)) <= fnas.errors.MAX_MESSAGE and "characters left out" in str(e.value)
    cfg = tmp_path / "c.json"
    cfg.write_text('{"budget": ' + "9" * 1_000_000 + "}")  # int() refuses > 4,300 digits
    from fnas.search.config_io import load_config

    with pytest.raises(ConfigError, match="not valid JSON: Exceeds the limit"):
        load_config(cfg)
    assert main(["search", "--config", str(cfg), "--store", str(tmp_path / "s")]) == 2
    assert not (tmp_path / "s").exists()


def test_fnas_survives_batches_whose_every_evaluation_failed(tmp_path):
    """Every result a failure: no critic can be fitted, the imagined updates are skipped, and
    no step is taken on NaN advantages (it crashed the policy update)."""
    def fails(arch):
        raise ZeroDivisionError("always")

    sp = fnas.make_space("all-fail", {"a": (1, 2, 3, 4), "b": (4, 5, 6)})
    s = fnas.create_search(store=tmp_path, name="f", space=sp, objective=fails, budget=8,
                           batch=4, version="1", catch=(ZeroDivisionError,))
    out = s.optimize(progress=False)
    assert out.experiment.status == "done"
    assert [e.status for e in s.trials()] == ["error"] * 8
    import torch

    from fnas.agent.policy import LSTMPolicy
    from fnas.agent.ppo import PPOConfig, ppo_update

    policy = LSTMPolicy([len(d.choices) for d in sp.decisions])
    before = [p.detach().clone() for p in policy.parameters()]
    a = torch.zeros(4, 2, dtype=torch.long)
    stats = ppo_update(policy, torch.optim.Adam(policy.parameters()), a, torch.zeros(4, 2),
                       torch.tensor([0.0, float("nan"), 1.0, 2.0]), PPOConfig(),
                       torch.Generator().manual_seed(0))
    assert stats == {"losses/skipped_nonfinite": 1.0}
    assert all(torch.equal(x, y) for x, y in zip(before, policy.parameters(), strict=True))


def test_a_run_the_database_lost_is_said_so_on_resume(tmp_path, caplog):
    s = fnas.create_search(store=tmp_path, name="lost", space=_space(), objective=score,
                           budget=4, batch=2, strategy="random", version="1")
    s.optimize(progress=False, stop_after=1)
    _sql(tmp_path, "DELETE FROM evaluations", "DELETE FROM updates", "DELETE FROM leases",
         "DELETE FROM experiments")  # what a damaged WAL leaves: the run's files, no rows
    from fnas.search import resume_search

    with Store(tmp_path) as st, pytest.raises(StoreError, match="database lost it"):
        resume_search(st, "lost", progress=False)
    again = fnas.create_search(store=tmp_path, name="lost", space=_space(), objective=score,
                               budget=4, batch=2, strategy="random", version="1",
                               load_if_exists=True)
    again.optimize(progress=False)
    assert "database lost it" in caplog.text and "starts again" in caplog.text
    assert len(again.trials()) == 4


def test_create_search_gives_its_reward_to_the_proxy_task(tmp_path):
    from fnas.tasks.reward import RewardConfig

    s = fnas.create_search(store=tmp_path, name="r", reward=RewardConfig("macs", 1e6))
    assert s.config.reward == RewardConfig("macs", 1e6)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.one_of(st.text(max_size=60), st.integers(), st.none()), max_size=5),
       stamp=st.booleans())
def test_the_one_run_name_builder_always_gives_a_safe_name(parts, stamp):
    """fnas names runs through one builder (issue 33): whatever the strategy, space, objective
    or dataset is called, the name passes check_run_name."""
    from fnas.knowledge.schema import check_run_name, default_run_name

    assert check_run_name(default_run_name(*parts, stamp=stamp))
