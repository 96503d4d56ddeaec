"""The Python API (``fnas.create_search``): a user's own space and objective, resume, the
result cache keyed by the objective, and one-line errors."""

import pytest

import fnas
from fnas.errors import ConfigError, StoreError

SPACE = {"width": (8, 16, 32, 64), "depth": (1, 2, 3), "act": ("relu", "gelu")}
BEST = {"width": 32, "depth": 2, "act": "gelu"}


def score(arch):
    """A made-up accuracy with one best architecture."""
    return 0.5 + 0.1 * sum(arch[k] == v for k, v in BEST.items()) + 0.001 * arch["width"] / 64


def other_score(arch):
    return 1.0 - score(arch)


def _search(tmp_path, name="s", objective=score, **kw):
    space = fnas.make_space("toy-mlp", SPACE)
    kw = {"batch": 4, "seed": 0, "fnas": {"screen": {"n_init": 4}}, **kw}
    return fnas.create_search(store=tmp_path / "runs", name=name, space=space,
                              objective=objective, **kw)


def test_a_search_on_a_custom_space_and_objective_finds_the_best(tmp_path):
    search = _search(tmp_path)
    out = search.optimize(budget=20, progress=False)
    assert out.stats["stop_reason"] == "budget"
    best = search.best
    assert best.reward == pytest.approx(0.8 + 0.0005)  # width 32, depth 2, gelu: the optimum
    assert dict(fnas.make_space("toy-mlp", SPACE).decode(best.decisions)) == BEST
    df = search.trials_dataframe()
    assert len(df) == 20 and {"arch", "reward", "accuracy", "trained"} <= set(df.columns)
    exp = search.experiment
    assert exp.config["space"] == "toy-mlp"  # the run records its real space and objective
    assert exp.config["objective"].startswith("objective:test_api.score#")  # + fingerprint


def test_a_stopped_search_resumes_to_the_same_result(tmp_path):
    whole = _search(tmp_path / "a").optimize(budget=16, progress=False)
    part = _search(tmp_path / "b")
    part.optimize(budget=16, progress=False, stop_after=2)
    assert part.experiment.status == "stopped"
    with pytest.raises(StoreError, match="load_if_exists"):
        _search(tmp_path / "b")
    again = _search(tmp_path / "b", load_if_exists=True)
    out = again.optimize(progress=False)
    arch = [e.arch for e in again.trials()]
    assert arch == [e.arch for e in _search(tmp_path / "a", load_if_exists=True).trials()]
    assert out.stats["best_reward"] == whole.stats["best_reward"]
    bigger = again.optimize(budget=24, progress=False)  # a larger budget extends it
    assert bigger.stats["n_done"] == 24


def _served_by_other_runs(trials):
    """Whether a result came from the cache although this run had not evaluated it."""
    seen = set()
    for e in trials:
        if e.cached and e.arch_key not in seen:
            return True
        seen.add(e.arch_key)
    return False


def test_two_objectives_never_share_cached_results(tmp_path):
    _search(tmp_path, "first").optimize(budget=8, progress=False)
    second = _search(tmp_path, "second", objective=other_score, strategy="random")
    second.optimize(budget=8, progress=False)
    assert not _served_by_other_runs(second.trials())
    same = _search(tmp_path, "third", strategy="random")  # same function: the cache serves
    same.optimize(budget=8, progress=False)
    tagged = _search(tmp_path, "fourth", strategy="random", version="v2")
    tagged.optimize(budget=8, progress=False)
    assert _served_by_other_runs(same.trials())
    assert not _served_by_other_runs(tagged.trials())


def test_an_objective_may_return_metrics_and_take_a_seed(tmp_path):
    seeds = []

    def metrics(arch, seed):
        seeds.append(seed)
        return {"accuracy": score(arch), "latency_ms": 1.0 + arch["depth"]}

    search = _search(tmp_path, objective=metrics, strategy="rea", budget=8)
    search.optimize(progress=False)
    assert len(set(seeds)) == len(seeds) == sum(e.trained for e in search.trials())
    space = fnas.make_space("toy-mlp", SPACE)
    rows = search.trials()
    assert [e.latency_ms for e in rows] == [1.0 + space.decode(e.decisions)["depth"]
                                             for e in rows]
    assert [e.reward for e in rows] == [e.accuracy for e in rows]  # no cost target set


def test_bad_objectives_and_settings_fail_in_one_line_and_lose_nothing(tmp_path):
    with pytest.raises(fnas.ObjectiveError, match="expected a finite number"):
        _search(tmp_path, "a", objective=lambda arch: "high").optimize(budget=4, progress=False)
    with pytest.raises(fnas.ObjectiveError, match="keys"):
        _search(tmp_path, "b", objective=lambda a: {"acc": 1}).optimize(budget=4, progress=False)
    with pytest.raises(ConfigError, match="unknown setting"):
        _search(tmp_path, "c", budgett=4)
    with pytest.raises(ConfigError, match="unknown space"):
        fnas.create_search(store=tmp_path / "runs", space="nope", objective=score)
    with pytest.raises(ConfigError, match="unknown strategy"):
        _search(tmp_path, "d", strategy="bayes")
    calls = {"n": 0}

    def flaky(arch):
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("CUDA out of memory")
        return score(arch)

    search = _search(tmp_path, "e", objective=flaky, strategy="random")
    with pytest.raises(RuntimeError, match="out of memory"):
        search.optimize(budget=12, progress=False)
    assert search.experiment.status == "interrupted"
    assert sum(e.trained for e in search.trials()) == 5  # the results before it are kept
    out = _search(tmp_path, "e", objective=flaky, strategy="random",
                  load_if_exists=True).optimize(progress=False)
    assert out.stats["n_done"] == 12
    caught = _search(tmp_path, "f", objective=lambda a: 1 / 0, strategy="random",
                     catch=(ZeroDivisionError,))
    caught.optimize(budget=4, progress=False)
    assert {e.status for e in caught.trials()} == {"error"}
    assert "ZeroDivisionError" in caught.trials()[0].message


def test_a_registered_space_is_reached_by_name(tmp_path):
    fnas.register_space("toy-by-name", fnas.make_space("toy-by-name", SPACE))
    with pytest.raises(ConfigError, match="taken"):
        fnas.register_space("toy-by-name", fnas.make_space("toy-by-name", {"x": (1, 2)}))
    search = fnas.create_search(store=tmp_path, space="toy-by-name", objective=score,
                                strategy="random", batch=4)
    assert search.name == "random-toy-by-name-score-s0"
    search.optimize(budget=4, progress=False)
    assert len(search.trials()) == 4


# ---- the ways in that fnas search shares (fnas.api.runs) ---------------------------------------

def test_open_search_names_a_new_run_as_it_records_it_and_load_search_continues_it(tmp_path):
    """What ``fnas search`` runs: a config, no name (fnas picks a unique one when the run is
    recorded, as for two searches started in the same second), then ``--resume``."""
    from fnas.api.runs import load_search, open_search, search_config

    fnas.register_space("toy-mlp", fnas.make_space("toy-mlp", SPACE))
    cfg = search_config(None, {"space": "toy-mlp", "strategy": "random", "batch": 4,
                               "budget": 8, "objective": "toy"})
    evaluator = fnas.ObjectiveEvaluator(score)
    names = []
    for _ in range(2):
        s = open_search(tmp_path / "runs", cfg, evaluator=evaluator)
        assert s.name is None and not s.exists
        s.optimize(progress=False, stop_after=1)
        names.append(s.name)
        assert s.experiment.status == "stopped" and len(s.trials()) == 4
    assert names[0] != names[1] and all(n.startswith("random-digits-s0-") for n in names)
    again = load_search(tmp_path / "runs", names[0], evaluator=evaluator)
    assert again.config is None  # the run's recorded settings apply
    assert again.optimize(budget=12, progress=False).stats["n_done"] == 12
    with pytest.raises(StoreError, match="no experiment 'ghost'"):
        load_search(tmp_path / "runs", "ghost").optimize(progress=False)
    with pytest.raises(StoreError, match="no fnas store"):
        load_search(tmp_path / "none", names[0])
    assert not (tmp_path / "none").exists()
    with pytest.raises(StoreError, match="already exists.*--resume"):
        open_search(tmp_path / "runs", cfg, names[0], evaluator=evaluator)


def test_a_search_on_unreadable_data_is_refused_before_a_store_is_made(tmp_path):
    """The proxy task's data is read when the search is made, as ``fnas search`` always did:
    a refused search leaves no store behind."""
    from fnas.errors import TaskError

    with pytest.raises(TaskError, match="not found"):
        fnas.create_search(store=tmp_path / "s", name="r",
                           task={"dataset": f"cifar10:{tmp_path / 'absent'}"})
    with pytest.raises(ConfigError, match="batch_size=512 exceeds"):
        fnas.create_search(store=tmp_path / "s", name="r",
                           task={"max_samples": 100, "batch_size": 512})
    assert not (tmp_path / "s").exists()
    s = fnas.create_search(store=tmp_path / "s", name="r", task={"max_samples": 100})
    assert s.evaluator.signature.startswith("proxy|digits|")  # the data read serves the run
