"""Optuna's TPE as the ``tpe`` strategy (issue 34): it searches, it resumes exactly from its
finished trials, its settings are checked, and without Optuna it is a one-line error."""

import sys

import pytest

from fnas.errors import ConfigError
from fnas.knowledge import Store
from fnas.search import SearchConfig, SyntheticEvaluator, run_search
from fnas.search.loop import resume_search
from fnas.space import macro_space
from fnas.strategies import STRATEGIES
from fnas.strategies.tpe import TPEConfig, TPEStrategy

pytest.importorskip("optuna", reason="the tpe strategy needs optuna (the optuna extra)")

SPACE = macro_space()
TARGET = (2, 2, 2, 1, 2, 2, 2, 0)


def _cfg(budget=48, **kw):
    return SearchConfig(space="macro", strategy="tpe", budget=budget, batch=8, seed=0, **kw)


def _run(store, stop_after=None, **kw):
    return run_search(store, _cfg(**kw), name="t", evaluator=SyntheticEvaluator(SPACE, TARGET),
                      space=SPACE, progress=False, stop_after=stop_after)


def test_tpe_is_registered_and_learns_beyond_its_random_start(tmp_path):
    assert "tpe" in STRATEGIES
    store = Store(tmp_path)
    out = _run(store, budget=64)
    rows = store.evaluations(out.experiment.id)
    first, last = [e.reward for e in rows[:10]], [e.reward for e in rows[-16:]]
    assert sum(last) / len(last) > sum(first) / len(first) + 0.1  # the model, not chance
    # the constant liar spreads a batch: most of the 8 asked together differ
    batches = {}
    for e in rows:
        batches.setdefault(e.iteration, set()).add(e.arch_key)
    assert sum(len(b) for b in batches.values()) > 0.6 * len(rows)
    assert store.get_experiment(out.experiment.id).config["strategy"] == "tpe"


def test_a_stopped_tpe_search_resumes_exactly(tmp_path):
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    full = _run(a)
    _run(b, stop_after=3)
    done = resume_search(b, "t", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                         progress=False)
    key = lambda e: (e.iteration, e.slot, e.arch_key, e.reward, e.cached)  # noqa: E731
    assert [key(e) for e in a.evaluations(full.experiment.id)] == \
        [key(e) for e in b.evaluations(done.experiment.id)]


def test_tpe_settings_are_checked_and_stored():
    cfg = SearchConfig.from_dict({"strategy": "tpe",
                                  "strategy_config": {"n_startup_trials": 4}})
    assert cfg.strategy_config == TPEConfig(n_startup_trials=4)
    back = SearchConfig.from_dict(cfg.to_dict())
    assert back.strategy_config == cfg.strategy_config
    with pytest.raises(ConfigError, match="n_startup_trials"):
        TPEConfig(n_startup_trials=-1)


def test_without_optuna_the_tpe_strategy_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'optuna>=3\.4'"):
        TPEStrategy(SPACE, 0)
