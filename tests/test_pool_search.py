"""The knowledge pool inside a search: snapshots per batch, shorter trainings, flags, CLI."""

import contextlib
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from fnas.errors import ConfigError
from fnas.knowledge import Pool, PoolWarning, Store
from fnas.search import MacroTableEvaluator, SearchConfig, run_search
from fnas.search.loop import task_signature
from fnas.search.pooling import PoolRunner
from fnas.tasks import TaskConfig

from fast import FAST_PPO, TINY_TASK


def _sql(store, sql, *args):
    """Run ``sql`` on the store's database file from outside, as another program (or damage)
    would, through the store's public ``path``."""
    with contextlib.closing(sqlite3.connect(store.path, timeout=30, isolation_level=None)) as db:
        return db.execute(sql, args).fetchall()


TABLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nas-bench-macro" / \
    "nas-bench-macro_cifar10.json"
TASK = TaskConfig(**TINY_TASK, epochs=2)  # real trainings on 100 images (tests/fast.py)


def _search(store, name, **kw):
    # replay off: each batch of 4 is 4 new trainings (with it, later batches are 2 + 2 replays);
    # the pool is the subject, not the controller (FAST_PPO)
    cfg = SearchConfig(**{"budget": 8, "batch": 4, "task": TASK, "checkpoint": False,
                          "replay": "off", "ppo": FAST_PPO, **kw})
    return run_search(store, cfg, name=name, progress=False)


@pytest.mark.slow
def test_batches_read_one_snapshot_and_pool_initialised_trainings_are_shorter(tmp_path):
    store = Store(tmp_path)
    out = _search(store, "a")  # strategy fnas: the pool is on by default
    rows = store.evaluations(out.experiment.id)
    first, second = rows[:4], rows[4:]
    assert {e.pool_snapshot for e in first} == {0}  # the empty pool before the first batch
    assert all(e.pool_hit_ratio == 0.0 and e.epochs == 2 for e in first)
    snaps = {e.pool_snapshot for e in second}
    assert len(snaps) == 1 and snaps.pop() > 0  # one snapshot for the whole batch
    ok_first = sum(e.status == "ok" for e in first)
    # the snapshot holds exactly the first batch's trained blocks, nothing of its own batch
    pool = Pool(store, out.experiment.config["decision_signature"])
    n_stages = len(pool.entries()) // (ok_first + sum(e.status == "ok" for e in second))
    assert second[0].pool_snapshot == pool.entries()[ok_first * n_stages - 1].id
    for e in second:
        assert e.pool_hit_ratio == 1.0 and 0.0 < e.pool_coverage <= 1.0
        assert e.epochs == 1  # E_pool = E / 2
    assert out.stats["pool/rollouts"] == 8 and out.stats["pool/hit_ratio"] == 0.5
    assert out.experiment.task_signature.endswith("|pool:e1")
    pool.close()


@pytest.mark.slow
def test_pool_is_off_for_vanilla_strategies_and_needs_a_training_evaluator(tmp_path):
    store = Store(tmp_path)
    out = _search(store, "ppo", strategy="ppo", budget=4, batch=2)
    assert all(e.pool_snapshot is None for e in store.evaluations(out.experiment.id))
    assert "|pool" not in out.experiment.task_signature
    on = _search(store, "ppo-pool", strategy="ppo", pool="on", pool_epochs=2, budget=4, batch=2)
    rows = store.evaluations(on.experiment.id)
    assert all(e.pool_snapshot is not None for e in rows if e.trained)
    assert [e.epochs for e in rows if e.trained and e.pool_hit_ratio] == [2] * 2
    if not TABLE.is_file():
        pytest.skip(f"NAS-Bench-Macro table not found at {TABLE} (see README.md, Benchmarks)")
    ev = MacroTableEvaluator(str(TABLE))
    with pytest.raises(ConfigError, match="evaluator that trains"):
        task_signature(SearchConfig(space="macro", pool="on"), ev)
    assert task_signature(SearchConfig(space="macro"), ev) == ev.signature  # auto: off


@pytest.mark.slow
def test_a_resumed_batch_rebuilds_its_snapshot(tmp_path):
    store = Store(tmp_path)
    out = _search(store, "a")
    rows = store.evaluations(out.experiment.id)
    runner = PoolRunner(store, out.experiment.config["decision_signature"], "t", 1)
    assert runner.begin_batch([]).id > rows[-1].pool_snapshot  # now: the second batch's too
    assert runner.begin_batch(rows[4:6]).id == rows[4].pool_snapshot  # as recorded
    runner.close()


@pytest.mark.slow
def test_corrupted_pool_file_warns_and_the_search_goes_on(tmp_path):
    store = Store(tmp_path)
    _search(store, "a", budget=4)
    files = sorted((tmp_path / "pool").rglob("*.safetensors"))
    for i, f in enumerate(files):  # every file broken: half corrupted, half missing
        if i % 2:
            f.unlink()
        else:
            f.write_bytes(f.read_bytes()[:-7] + b"garbage")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _search(store, "b", budget=4, seed=1)  # other archs: no cached result
    msgs = [str(w.message) for w in caught if issubclass(w.category, PoolWarning)]
    assert any("missing" in m for m in msgs) and any("corrupted" in m for m in msgs)
    assert all("\n" not in m for m in msgs)  # one line each
    rows = store.evaluations(out.experiment.id)
    # nothing usable: fresh initialisation and full epochs, and the search finished
    assert all(e.status == "ok" and e.pool_hit_ratio == 0.0 and e.epochs == 2 for e in rows)
    assert len(rows) == 4 and out.experiment.status == "done"


@pytest.mark.slow
def test_pool_stats_cli(tmp_path):
    store = Store(tmp_path)
    _search(store, "a", budget=4, batch=2)  # the second batch of 2 starts from the pool
    store.close()
    run = subprocess.run([sys.executable, "-m", "fnas.cli", "pool", "stats", "--store",
                          str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "hit ratio 0.500" in run.stdout and "MiB on disk" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "fnas.cli", "pool", "stats", "--store",
                          str(tmp_path / "none")], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_a_v1_store_gains_the_pool_columns_and_keeps_its_rows(tmp_path):
    db = sqlite3.connect(tmp_path / "fnas.db")
    from fnas.knowledge.store import _ADDED, _SCHEMA, SCHEMA_VERSION

    v1 = _SCHEMA
    for name, kind in _ADDED:
        v1 = v1.replace(f"    {name} {kind},\n", "")
    db.executescript(v1)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute("INSERT INTO experiments (name, strategy, seed, space_signature, task_signature,"
               " config, status, budget, created, updated) VALUES ('old', 'ppo', 0, 's', 't',"
               " '{}', 'done', 1, 0, 0)")
    db.execute("INSERT INTO evaluations (experiment_id, iteration, slot, arch_key, arch, "
               "decisions, task_signature, reward, status, message, train_seconds, seed, "
               "trained, created) VALUES (1, 0, 0, 'k', 'a', '[0]', 't', 0.5, 'ok', '', 1.0, "
               "0, 1, 0)")
    db.commit()
    db.close()
    store = Store(tmp_path)
    [ev] = store.evaluations(1)
    assert ev.reward == 0.5 and ev.pool_snapshot is None and ev.epochs is None
    assert ev.predicted_reward is None and ev.predicted_spread is None
    version = _sql(store, "SELECT value FROM meta WHERE key='schema_version'")
    assert version == [(str(SCHEMA_VERSION),)]  # v1 -> the current schema in one step
