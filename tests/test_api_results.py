"""A search's results as Optuna shows them (``best_params``, ``best_value``, a trials table
with one column per decision), ``direction="minimize"``, and the typed top level (mypy sees
``fnas.create_search``'s real signature). Searches here are instant: a toy objective, budgets
of 8 to 16 (two to four batches of 4, enough for the critic's first fits)."""

import dataclasses
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import fnas
from fnas.errors import ConfigError, StoreError
from fnas.search import SearchConfig
from fnas.tasks import RewardConfig

SPACE = {"width": (8, 16, 32, 64), "depth": (1, 2, 3)}


def score(arch):
    """An accuracy whose best is width 32, depth 3 (0.93)."""
    return 0.9 + 0.01 * arch["depth"] - abs(arch["width"] - 32) / 1000


def loss(arch):
    """A loss whose least is at the same place (0.07)."""
    return 1.0 - score(arch)


def _search(tmp_path, name, objective=score, **kw):
    space = fnas.make_space("results-mlp", SPACE)
    kw = {"batch": 4, "fnas": {"screen": {"n_init": 4}}, **kw}
    return fnas.create_search(store=tmp_path, name=name, space=space, objective=objective,
                              **kw)


def test_best_params_and_best_value_read_as_optunas(tmp_path):
    search = _search(tmp_path, "max")
    assert "not started" in repr(search)
    search.optimize(budget=8, progress=False)
    best = search.best
    assert type(search.best_params) is dict
    assert search.best_params == dict(fnas.make_space("results-mlp", SPACE).values(
        best.decisions))
    assert search.best_value == best.reward == max(e.reward for e in search.trials())
    assert search.direction == "maximize"
    assert "done, 8/8 evaluations" in repr(search)
    assert f"best value {search.best_value:.6g}" in repr(search)


def test_trials_dataframe_has_a_column_per_decision_values_and_datetimes(tmp_path):
    pd = pytest.importorskip("pandas")
    search = _search(tmp_path, "frame")
    search.optimize(budget=8, progress=False)
    df = search.trials_dataframe()
    assert list(df.columns[:7]) == ["run", "value", "datetime_start", "datetime_complete",
                                    "duration", "params_width", "params_depth"]
    trials = search.trials()
    assert df["params_width"].tolist() == [score_args(e)["width"] for e in trials]
    assert df["value"].tolist() == pytest.approx([e.reward for e in trials])
    assert pd.api.types.is_datetime64_any_dtype(df["datetime_complete"])
    assert (df["datetime_start"] <= df["datetime_complete"]).all()
    assert df["params_depth"].dtype.kind == "i"  # decoded values, not indices or text


def score_args(ev):
    return fnas.make_space("results-mlp", SPACE).values(ev.decisions)


def test_best_params_of_the_mnasnet_space_are_its_decisions_values(tmp_path):
    from fnas.execution import SyntheticEvaluator
    from fnas.search.config import SPACES

    space = SPACES["mnas"](SyntheticEvaluator.input_size)
    target = [d.size - 1 for d in space.decisions]
    search = fnas.create_search(store=tmp_path, name="mnas", space="mnas",
                                objective=SyntheticEvaluator(space, target), strategy="random",
                                batch=4)
    search.optimize(budget=4, progress=False)
    params = search.best_params
    assert type(params) is dict and list(params) == [d.name for d in space.decisions]
    assert params["b0_op"] in space.decisions[0].choices
    assert search.best_value == search.best.reward  # the evaluator's reward


def test_no_best_before_a_result_is_one_line(tmp_path):
    search = _search(tmp_path, "empty")
    with pytest.raises(StoreError):
        search.best_value  # noqa: B018  (not started: no run to read)


def test_minimize_keeps_the_least_value_in_the_objectives_units(tmp_path):
    search = _search(tmp_path, "min", objective=loss, direction="minimize")
    search.optimize(budget=8, progress=False)
    values = [loss(score_args(e)) for e in search.trials()]
    assert search.best_value == pytest.approx(min(values))
    assert search.best.reward == pytest.approx(-min(values))  # fnas maximises the negation
    assert search.direction == "minimize" and "minimize" in repr(search)
    df = search.trials_dataframe()
    assert df["value"].tolist() == pytest.approx(values)
    # resumed without saying it, the run still minimises; said otherwise, it is refused
    again = _search(tmp_path, "min", objective=loss, load_if_exists=True)
    again.optimize(budget=12, progress=False)
    assert again.best_value == pytest.approx(min(loss(score_args(e)) for e in again.trials()))
    other = _search(tmp_path, "min", objective=loss, load_if_exists=True, direction="maximize")
    db = tmp_path / "fnas.db"
    before = db.read_bytes(), Path(f"{db}-wal").read_bytes()
    with pytest.raises(ConfigError, match="recorded to minimize"):
        other.optimize(budget=16, progress=False)
    assert (db.read_bytes(), Path(f"{db}-wal").read_bytes()) == before  # refused: unchanged


def test_minimize_never_shares_cached_rewards_with_maximize(tmp_path):
    _search(tmp_path, "up", objective=loss, strategy="random").optimize(budget=4,
                                                                         progress=False)
    down = _search(tmp_path, "down", objective=loss, direction="minimize", strategy="random")
    down.optimize(budget=4, progress=False)
    assert all(e.reward <= 0 for e in down.trials())
    assert not any(e.cached for e in down.trials())  # the same seed: the same 4 samples


@pytest.mark.parametrize("kw, match", [
    ({"direction": "down"}, "expected 'maximize' or 'minimize'"),
    ({"direction": "minimize", "reward": RewardConfig("macs", 1e6)}, "cost target"),
    ({"direction": "minimize", "catch": (RuntimeError,)}, "failure_reward"),
    ({"direction": "minimize", "timeout": 5.0}, "failure_reward"),
    ({"direction": "minimize", "objective": None}, "needs an objective function"),
])
def test_a_direction_that_cannot_apply_is_refused_in_one_line(tmp_path, kw, match):
    kw = {"objective": loss, **kw}
    with pytest.raises(ConfigError, match=match) as e:
        _search(tmp_path, "bad", **kw)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "fnas.db").exists()


def test_an_unknown_setting_lists_every_keyword_create_search_takes(tmp_path):
    with pytest.raises(ConfigError) as e:
        _search(tmp_path, "typo", budgett=3)
    for word in ("'budget'", "'batch'", "'seed'", "'timeout'", "'budget_counts'", "'task'"):
        assert word in str(e.value)


def test_the_typed_settings_cover_every_searchconfig_field():
    from fnas.api.search import SearchSettings
    from fnas.search.config import STORED_TABLES

    own = set(inspect.signature(fnas.create_search).parameters) - {"settings"}
    typed = set(SearchSettings.__annotations__)
    assert not own & typed  # PEP 692: a keyword is one or the other
    fields = {f.name for f in dataclasses.fields(SearchConfig)} | set(STORED_TABLES)
    assert fields <= own | typed, sorted(fields - own - typed)


README_EXAMPLE = '''\
import fnas

def train_and_score(arch, seed):
    return 0.9 + 0.01 * arch["depth"] - abs(arch["width"] - 32) / 1000

space = fnas.make_space("my-mlp", {{"width": (16, 32, 64), "depth": (1, 2, 3)}})
search = fnas.create_search(store="runs/", name="my-search", space=space,
                            objective=train_and_score, load_if_exists=True{extra})
search.optimize(budget=64)
value: float = search.best_value
params: dict = search.best_params
arch: str = search.best.arch if search.best else ""
'''


def _mypy(tmp_path, extra):
    """mypy's errors on the README's example, following imports into fnas only (silently: its
    own modules are not what is checked) and skipping the rest (torch...), with a fresh cache
    in ``tmp_path``."""
    (tmp_path / "example.py").write_text(README_EXAMPLE.format(extra=extra))
    (tmp_path / "mypy.ini").write_text("[mypy]\nfollow_imports = skip\nignore_missing_imports = "
                                       "True\n[mypy-fnas,fnas.*]\nfollow_imports = silent\n")
    env = {**os.environ, "MYPYPATH": str(Path(fnas.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "mypy.ini",
                          "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
                          "example.py"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    return out.stdout + out.stderr


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install mypy, or the dev extra)")
def test_mypy_sees_create_searchs_signature(tmp_path):
    assert _mypy(tmp_path, "").strip() == ""
    errors = _mypy(tmp_path, ", budgett=3")
    assert 'example.py:7: error: Unexpected keyword argument "budgett"' in errors, errors


@pytest.mark.skipif(shutil.which("pyright") is None,
                    reason="pyright is not on PATH (npm install pyright; not in CI)")
def test_pyright_sees_create_searchs_signature(tmp_path):
    """The same for pyright (issue 36: typed for mypy and pyright), in its basic mode."""
    for name, extra in (("ok.py", ""), ("bad.py", ", budgett=3")):
        (tmp_path / name).write_text(README_EXAMPLE.format(extra=extra))
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({
        "extraPaths": [str(Path(fnas.__file__).resolve().parents[1])],
        "typeCheckingMode": "basic", "reportMissingImports": False}))
    out = subprocess.run([shutil.which("pyright"), "ok.py", "bad.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    errors = [line for line in out.stdout.splitlines() if " - error: " in line]
    assert len(errors) == 1 and 'bad.py:8:77 - error: No parameter named "budgett"' in \
        errors[0], out.stdout


def tagged(arch):
    """``score``, with the evaluating process's id recorded as the ``params`` count."""
    return {"accuracy": score(arch), "params": os.getpid()}


def together(arch):
    """``score``, evaluated once a second worker process evaluates too: each evaluation leaves
    its process id in the folder ``$FNAS_TEST_TOGETHER`` and waits (60 s at most) until two
    are there. Returns the process id as ``params`` and the ids it saw as ``macs``."""
    folder = Path(os.environ["FNAS_TEST_TOGETHER"])
    (folder / str(os.getpid())).touch()
    for _ in range(600):
        if len(list(folder.iterdir())) >= 2:
            break
        time.sleep(0.1)
    return {"accuracy": score(arch), "params": os.getpid(),
            "macs": len(list(folder.iterdir()))}


def test_n_workers_evaluates_in_worker_processes_at_once_without_ray(tmp_path, monkeypatch):
    """One batch of 4 in 2 worker processes on this machine: the first evaluation of each
    waits for the other's (so one worker at a time would fail), every slot once, none in
    this process; Ray is not needed."""
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    (tmp_path / "ids").mkdir()
    monkeypatch.setenv("FNAS_TEST_TOGETHER", str(tmp_path / "ids"))
    search = _search(tmp_path, "procs", objective=together, strategy="random")
    search.optimize(budget=4, progress=False, n_workers=2)
    trials = search.trials()
    assert sorted(e.slot for e in trials) == [0, 1, 2, 3] and all(e.status == "ok" for e in trials)
    pids = {e.params for e in trials}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(e.macs == 2 for e in trials)  # each saw both workers


def test_an_objective_that_cannot_reach_worker_processes_is_refused_before_writing(tmp_path):
    lock = threading.Lock()

    def locked(arch):
        with lock:
            return score(arch)

    search = _search(tmp_path, "w", objective=locked, version=1)
    with pytest.raises(ConfigError, match="n_workers=2 runs evaluations in worker processes"):
        search.optimize(budget=4, progress=False, n_workers=2)
    assert not search.exists


@pytest.mark.slow  # Ray's workers import fnas and torch for their first tasks: ~10 s
@pytest.mark.xdist_group("ray")
def test_n_workers_runs_a_batch_on_ray_in_parallel(tmp_path, local_ray):
    """Recorded in completion order, every slot once, none evaluated in this process."""
    local_ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:  # one batch of 4 on the session's Ray (2 CPUs): 2 in flight
        search = _search(tmp_path, "par", objective=tagged, strategy="random")
        search.optimize(budget=4, progress=False, n_workers=2, executor="ray")
    finally:
        local_ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    trials = search.trials()
    assert sorted(e.slot for e in trials) == [0, 1, 2, 3] and all(e.status == "ok" for e in trials)
    assert os.getpid() not in {e.params for e in trials}  # evaluated in Ray's workers
    assert local_ray.is_initialized()  # the session's Ray, joined, is left running


@pytest.mark.parametrize("kw, match", [
    ({"n_workers": 0}, "n_workers"),
    ({"executor": "dask"}, "expected 'local', 'ray'"),
    ({"executor": "ray", "n_workers": -1}, "n_workers"),
])
def test_bad_workers_or_executor_are_refused_before_anything_runs(tmp_path, kw, match):
    search = _search(tmp_path, "w")
    with pytest.raises(ConfigError, match=match):
        search.optimize(budget=4, progress=False, **kw)
    assert not search.exists


def test_the_ray_executor_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r"pip install 'ray>=2.9'.* n_workers=3 alone"):
        _search(tmp_path, "w").optimize(budget=4, progress=False, n_workers=3,
                                        executor="ray")
