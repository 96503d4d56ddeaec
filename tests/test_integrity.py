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
from fnas.errors import ConfigError
from fnas.knowledge import Store
from fnas.search import SearchConfig
from fnas.tasks import TaskConfig

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
    with pytest.raises(ConfigError, match="objective\\(arch\\) or objective\\(arch, seed\\)") as e:
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


def test_the_fingerprint_is_the_same_in_a_new_process(tmp_path):
    (tmp_path / "myobjective.py").write_text(
        "import functools\n"
        "def score(arch, seed, k=2.5):\n    return {'accuracy': 0.5, 'reward': k * seed}\n"
        "objective = functools.partial(score, k=[1, 2.5, 'x', {3: (4,)}])\n")
    code = ("from fnas.search.identity import fingerprint; import myobjective; "
            "print(fingerprint(myobjective.objective), fingerprint(myobjective.score))")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path), "PYTHONHASHSEED": "0"}
    outs = set()
    for seed in ("1", "2"):  # string hashing differs between the two processes
        env["PYTHONHASHSEED"] = seed
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=120)
        assert p.returncode == 0, p.stderr
        outs.add(p.stdout)
    assert len(outs) == 1 and len(outs.pop().split()) == 2
