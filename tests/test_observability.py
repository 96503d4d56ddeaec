"""What a user sees of a search besides the store: the ``fnas`` logger and ``to_dataframe``."""

import logging
import sys

import numpy as np
import pytest

import fnas
from fnas.errors import StoreError
from fnas.knowledge import EVAL_FLAGS, Store
from fnas.knowledge.frame import COLUMNS
from fnas.search import SearchConfig, SyntheticEvaluator, resume_search, run_search
from fnas.space import mnas_space

SPACE = mnas_space(8)
TARGET = SPACE.encode(SPACE.decode(SPACE.sample(np.random.default_rng(5))))


def _run(store, name, strategy="ppo", budget=16, stop_after=None):
    cfg = SearchConfig(strategy=strategy, budget=budget, batch=8, seed=0)
    return run_search(store, cfg, name=name, evaluator=SyntheticEvaluator(SPACE, TARGET),
                      space=SPACE, progress=False, stop_after=stop_after)


def _lines(caplog, word):
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("fnas") and f" {word} " in r.getMessage()]


def test_the_library_adds_only_a_null_handler():
    handlers = logging.getLogger(fnas.__name__).handlers
    assert handlers and all(isinstance(h, logging.NullHandler) for h in handlers)


def test_search_logs_one_line_per_evaluation_and_per_update(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="fnas")
    store = Store(tmp_path)
    out = _run(store, "first")
    evals, updates = _lines(caplog, "eval"), _lines(caplog, "update")
    assert len(evals) == 16 and len(updates) == 2
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name.startswith("fnas"))
    # each evaluation: the run, where, how, the reward, the time and the architecture
    first = store.evaluations(out.experiment.id)[0]
    assert evals[0].startswith("run first eval 0.0 trained: reward ")
    assert f"reward {first.reward:.4f} (ok)" in evals[0] and evals[0].endswith(first.arch)
    assert " s, " in evals[0]
    # each update: its index, progress, the best so far and the policy's key statistics
    assert updates[1].startswith("run first update 1: 16 samples, 16 trained, best ")
    assert "losses/entropy" in updates[1] and "losses/approx_kl" in updates[1]
    assert any("run first done (budget)" in m for m in _lines(caplog, "done"))

    caplog.clear()  # the same search again: every result comes from the cache, and says so
    _run(store, "again")
    evals = _lines(caplog, "eval")
    assert len(evals) == 16 and all(" cached: " in m for m in evals)


def test_a_resumed_batch_says_what_was_recorded_before(tmp_path, caplog):
    store = Store(tmp_path)
    _run(store, "r", stop_after=1)
    caplog.set_level(logging.INFO, logger="fnas")
    resume_search(store, "r", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                  progress=False)
    assert len(_lines(caplog, "eval")) == 8 and len(_lines(caplog, "update")) == 1


def test_silent_without_configuration(tmp_path, capsys):
    _run(Store(tmp_path), "quiet", budget=8)
    assert capsys.readouterr() == ("", "")


def test_to_dataframe_has_one_row_per_evaluation(tmp_path):
    pytest.importorskip("pandas")
    store = Store(tmp_path)
    a = _run(store, "a", strategy="random")
    b = _run(store, "b", strategy="rea", budget=8)
    df = store.to_dataframe("a")
    evals = store.evaluations(a.experiment.id)
    assert list(df.columns) == list(COLUMNS) and len(df) == len(evals) == 16
    assert (df["run"] == "a").all() and list(df["id"]) == [e.id for e in evals]
    assert list(df["reward"]) == [e.reward for e in evals]
    assert list(df["decisions"]) == [e.decisions for e in evals]
    assert all(df[f].dtype == bool for f in EVAL_FLAGS) and df["trained"].sum() == 16
    assert df["macs"].isna().all() and str(df["macs"].dtype) == "Int64"  # nothing measured
    assert store.to_dataframe(a.experiment.id).equals(df)  # by id as by name
    both = store.to_dataframe()
    assert list(both["run"].unique()) == ["a", "b"] and len(both) == 16 + 8
    assert both[both["run"] == "b"]["experiment_id"].eq(b.experiment.id).all()
    empty = Store(tmp_path / "empty").to_dataframe()
    assert list(empty.columns) == list(COLUMNS) and len(empty) == 0
    with pytest.raises(StoreError, match="nope"):
        store.to_dataframe("nope")


def test_to_dataframe_without_pandas_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(ImportError, match=r"pip install pandas"):
        Store(tmp_path).to_dataframe()
