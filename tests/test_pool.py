"""The knowledge pool (fnas.knowledge.pool): files, metadata, snapshots, skips, a real rollout."""

import contextlib
import json
import pickle
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from fnas.errors import ConfigError
from fnas.knowledge import Pool, PoolWarning, Store, pool_stats
from fnas.nn import build_model, fresh_state_dict
from fnas.space import ArchSpec, mnas_space
from fnas.tasks import RewardConfig, TaskConfig, run_rollout


def _sql(store, sql, *args):
    """Run ``sql`` on the store's database file from outside, as another program (or damage)
    would, through the store's public ``path``."""
    with contextlib.closing(sqlite3.connect(store.path, timeout=30, isolation_level=None)) as db:
        return db.execute(sql, args).fetchall()


SPACE = mnas_space(8)
IN, NC = 1, 10


def sample(seed: int) -> ArchSpec:
    return SPACE.decode(SPACE.sample(np.random.default_rng(seed)))


def trained(spec: ArchSpec, seed: int) -> dict[str, torch.Tensor]:
    """A state dict as if trained: weights and BN statistics perturbed, distinct per seed."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in fresh_state_dict(spec, IN, NC, seed).items():
        if v.dtype == torch.long:
            out[k] = torch.tensor(7 + seed)
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = v + 0.1 * torch.randn(v.shape, generator=g)
    return out


@pytest.fixture
def pool(tmp_path):
    with Store(tmp_path / "store") as store, Pool(store, SPACE.signature) as p:
        yield p


def file_of(pool: Pool, entry) -> Path:
    return pool.root / "pool" / entry.sha256[:2] / f"{entry.sha256}.safetensors"


def loaded(spec: ArchSpec, weights: dict[str, torch.Tensor], seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(spec, IN, NC)
    own = model.state_dict()
    assert all(own[k].shape == v.shape for k, v in weights.items())
    model.load_state_dict(weights, strict=False)
    return model.eval()


def test_add_writes_content_addressed_files_and_metadata(pool):
    spec = sample(0)
    entries = pool.add(spec, trained(spec, 0), task="digits;e=5", epochs=5, source_eval=42)
    assert [e.stage for e in entries] == list(range(len(spec.blocks)))
    for e, b in zip(entries, spec.blocks, strict=True):
        assert e.block == b.to_str() and e.space == SPACE.signature and e.source_eval == 42
        assert e.arch_key == spec.key and e.epochs == e.total_epochs == 5 and e.created > 0
        path = file_of(pool, e)
        assert path.stat().st_size == e.nbytes
        with safe_open(str(path), "pt") as f:  # safetensors, never a pickle
            assert json.loads(f.metadata()["fnas"])["block"] == b.to_str()
            assert all(k.split(".")[0].isdigit() for k in f.keys())  # block-relative names
    # Adding the same weights again is a no-op returning the same entries.
    again = pool.add(spec, trained(spec, 0), task="digits;e=5", epochs=5)
    assert [e.id for e in again] == [e.id for e in entries]
    stats = pool.stats()
    assert stats.entries == len(spec.blocks) and stats.missing == 0
    assert stats.disk_bytes == sum(e.nbytes for e in entries)
    assert stats.per_config[(SPACE.signature, 3, spec.blocks[3].to_str())] == 1
    # The store still opens and works with the pool table in its database.
    with Store(pool.root, create=False) as s:
        assert s.list_experiments() == []
        assert pool_stats(s).entries == stats.entries


def test_add_rejects_bad_weights(pool):
    spec, other = sample(0), sample(1)
    with pytest.raises(ConfigError, match="no weights"):
        pool.add(spec, None, task="t", epochs=1)
    with pytest.raises(ConfigError, match="blocks\\."):
        pool.add(spec, trained(other, 0), task="t", epochs=1)
    w = trained(spec, 0)
    w["blocks.2.0.bn1.running_mean"][0] = float("nan")
    with pytest.raises(ConfigError, match="blocks.2.0.bn1.running_mean' is not finite"):
        pool.add(spec, w, task="t", epochs=1)
    del w["blocks.2.0.bn1.running_mean"]
    with pytest.raises(ConfigError, match="lack 'blocks.2.0.bn1.running_mean"):
        pool.add(spec, w, task="t", epochs=1)
    assert pool.stats().entries == 0


def test_identical_arch_reproduces_outputs_exactly(pool):
    spec = sample(2)
    w = trained(spec, 1)
    pool.add(spec, w, task="t", epochs=3)
    init, stats = pool.snapshot().init_weights(spec, in_chans=IN, num_classes=NC, seed=9)
    assert stats.hit_ratio == 1.0 and stats.coverage == 1.0 and stats.skipped == ()
    assert all(b.distance == 0.0 and b.source_epochs == 3 for b in stats.blocks)
    assert set(init) == {k for k in w if k.startswith("blocks.")}
    src, dst = loaded(spec, w), loaded(spec, init, seed=123)
    x = torch.randn(4, IN, 8, 8)
    with torch.no_grad():
        assert torch.equal(src.forward_features(x), dst.forward_features(x))


def test_closest_wins_ties_go_to_freshest(pool):
    target, far = sample(3), sample(4)
    old = pool.add(target, trained(target, 1), task="t", epochs=1)  # exact match
    new = pool.add(target, trained(target, 2), task="t", epochs=1)  # exact match, fresher
    late = pool.add(far, trained(far, 0), task="t", epochs=1)  # freshest, but farther
    _, stats = pool.snapshot().init_weights(target, in_chans=IN, num_classes=NC)
    # The stem (and any block far shares with target) ties at distance 0: the freshest wins.
    ins = [IN] + [b.out_chs for b in target.blocks[:-1]]
    far_ins = [IN] + [b.out_chs for b in far.blocks[:-1]]
    same = [(a, i) == (b, j) for a, i, b, j in zip(target.blocks, ins, far.blocks, far_ins,
                                                      strict=True)]
    assert same[0] and not all(same)
    want = [lt.id if s else nw.id for s, lt, nw in zip(same, late, new, strict=True)]
    assert [b.entry_id for b in stats.blocks] == want
    assert {e.id for e in old}.isdisjoint(b.entry_id for b in stats.blocks)
    assert all(b.distance == 0.0 for b in stats.blocks)


def test_hit_ratio_is_full_when_every_stage_has_an_entry(pool):
    for s in (10, 11):
        pool.add(sample(s), trained(sample(s), s), task="t", epochs=1)
    snap = pool.snapshot()
    for s in range(20, 25):
        init, stats = snap.init_weights(sample(s), in_chans=IN, num_classes=NC, seed=s)
        assert stats.hit_ratio == 1.0 and 0 < stats.coverage <= 1
        assert stats.to_metrics()["pool/hit_ratio"] == 1.0
        model = loaded(sample(s), init)
        with torch.no_grad():
            assert torch.isfinite(model(torch.randn(2, IN, 8, 8))).all()
    # An empty pool: no hits, no error.
    with Store(pool.root / "empty") as s, Pool(s, SPACE.signature) as empty:
        init, stats = empty.snapshot().init_weights(sample(20), in_chans=IN, num_classes=NC)
        assert init == {} and stats.hit_ratio == 0.0 and stats.coverage == 0.0


def test_snapshot_is_fixed(pool):
    target, other = sample(5), sample(6)
    pool.add(other, trained(other, 0), task="t", epochs=1)
    snap = pool.snapshot()
    before, s1 = snap.init_weights(target, in_chans=IN, num_classes=NC, seed=1)
    pool.add(target, trained(target, 0), task="t", epochs=1)  # a perfect match, added later
    after, s2 = snap.init_weights(target, in_chans=IN, num_classes=NC, seed=1)
    assert snap.id == s1.snapshot_id == s2.snapshot_id and s1 == s2
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # A new snapshot sees the match; an old id rebuilds the old view exactly.
    newer = pool.snapshot()
    assert newer.id > snap.id
    assert newer.init_weights(target, in_chans=IN, num_classes=NC)[1].coverage == 1.0
    again, s3 = pool.snapshot(upto=snap.id).init_weights(target, in_chans=IN, num_classes=NC,
                                                         seed=1)
    assert s3 == s1 and all(torch.equal(again[k], before[k]) for k in before)
    # The view ships (pickled, as to a worker) without its cache and answers the same.
    shipped = pickle.loads(pickle.dumps(snap))
    assert shipped._cache == {} and shipped.id == snap.id
    w, s4 = shipped.init_weights(target, in_chans=IN, num_classes=NC, seed=1)
    assert s4 == s1 and all(torch.equal(w[k], before[k]) for k in before)


def test_corrupted_and_missing_files_are_skipped_with_a_warning(pool):
    spec = sample(7)
    a = pool.add(spec, trained(spec, 0), task="t", epochs=1)  # older exact match
    b = pool.add(spec, trained(spec, 1), task="t", epochs=1)  # fresher exact match
    lone = sample(8)
    # Corrupt b's stage-3 file (flip bytes) and delete b's stage-5 file.
    path = file_of(pool, b[3])
    data = bytearray(path.read_bytes())
    data[-8:] = bytes(x ^ 0xFF for x in data[-8:])
    path.write_bytes(bytes(data))
    file_of(pool, b[5]).unlink()
    snap = pool.snapshot()
    with pytest.warns(PoolWarning) as rec:
        init, stats = snap.init_weights(spec, in_chans=IN, num_classes=NC)
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 2 and all("\n" not in m for m in msgs)
    assert any("corrupted" in m for m in msgs) and any("missing" in m for m in msgs)
    assert set(stats.skipped) == {b[3].id, b[5].id}
    # Those stages fall back to the next closest entry (a's); the rest still load from b.
    ids = [blk.entry_id for blk in stats.blocks]
    assert ids[3] == a[3].id and ids[5] == a[5].id
    assert all(ids[i] == b[i].id for i in range(len(ids)) if i not in (3, 5))
    assert stats.hit_ratio == 1.0 and stats.coverage == 1.0
    # Each bad file warns once per snapshot; the next architecture still reports the skips.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert snap.init_weights(spec, in_chans=IN, num_classes=NC)[1].skipped == stats.skipped
    assert pool.stats().missing == 1
    with pytest.warns(PoolWarning):
        assert {e.id for e in pool.verify()} == {b[3].id, b[5].id}
    # A stage whose only entry is broken gets no init, and the search goes on.
    with Store(pool.root / "other") as s, Pool(s, SPACE.signature) as p2:
        e = p2.add(lone, trained(lone, 0), task="t", epochs=1)
        file_of(p2, e[4]).unlink()
        with pytest.warns(PoolWarning, match="missing"):
            _, st = p2.snapshot().init_weights(lone, in_chans=IN, num_classes=NC)
        assert st.blocks[4].entry_id is None and st.hit_ratio == pytest.approx(8 / 9)


@pytest.mark.slow
def test_real_rollouts_through_the_pool(pool):
    """A trained rollout's weights go in; another architecture starts from them and trains."""
    task = TaskConfig(epochs=1, latency_repeats=0, max_samples=300, batch_size=32)
    first, second = sample(12), sample(13)
    r1 = run_rollout(first, task, RewardConfig(), seed=0)
    assert r1.result.ok, r1.result.message
    pool.add(first, r1.weights, task=task.signature, epochs=task.epochs)
    init, stats = pool.snapshot().init_weights(second, in_chans=IN, num_classes=NC, seed=1)
    assert stats.hit_ratio == 1.0 and stats.coverage > 0
    r2 = run_rollout(second, task, RewardConfig(), seed=1, init_weights=init)
    assert r2.result.ok, r2.result.message
    entries = pool.add(second, r2.weights, task=task.signature, epochs=1, init=stats)
    for e, blk in zip(entries, stats.blocks, strict=True):
        assert e.total_epochs == (2 if blk.copied else 1)
    # What is not copied is the rollout's own fresh init for the same seed: loading the
    # whole fresh dict changes nothing in training.
    r3 = run_rollout(second, task, RewardConfig(), seed=1,
                     init_weights=fresh_state_dict(second, IN, NC, seed=1))
    r4 = run_rollout(second, task, RewardConfig(), seed=1)
    assert r3.result.train_losses == r4.result.train_losses


def _eval_of(store: Store, spec: ArchSpec, slot: int):
    from fnas.knowledge import Evaluation

    exp = store.get_experiment("x") if any(e.name == "x" for e in store.list_experiments()) \
        else store.create_experiment("x", "fnas", 0, "s", "t", {}, 8)
    return Evaluation(experiment_id=exp.id, iteration=0, slot=slot, arch_key=spec.key,
                      arch=spec.to_str(), decisions=(), task_signature="t", reward=0.5,
                      status="ok", trained=True)


def test_an_evaluation_and_its_pool_entries_are_committed_together(pool, monkeypatch):
    from fnas.search.pooling import PoolRunner
    from fnas.tasks.rollout import Rollout, RolloutResult

    store, spec = pool.store, sample(9)
    runner = PoolRunner(store, SPACE.signature, "t", 1)
    ok = RolloutResult(arch=spec.to_str(), key=spec.key, status="ok", message="", reward=0.5,
                       epochs=1)
    insert = Pool.insert

    def killed(db, staged, eval_id):  # dies after inserting the rows, before the commit
        insert(db, staged, eval_id)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Pool, "insert", staticmethod(killed))
        with pytest.raises(KeyboardInterrupt):
            runner.commit(spec, _eval_of(store, spec, 0), Rollout(ok, trained(spec, 9)), None)
    assert store.evaluations(1) == [] and pool.entries() == []  # neither row, not one alone
    assert len(list((store.root / "pool").rglob("*.safetensors"))) == len(spec.blocks)
    done = runner.commit(spec, _eval_of(store, spec, 0), Rollout(ok, trained(spec, 9)), None)
    ev = done.evaluation
    assert ev.id is not None and [e.id for e in store.evaluations(1)] == [ev.id]
    entries = pool.entries()
    assert len(entries) == len(spec.blocks) and {e.source_eval for e in entries} == {ev.id}
    # pool trouble inside the transaction keeps the evaluation, without entries, and warns
    other = sample(10)
    _sql(store, "CREATE TRIGGER full BEFORE INSERT ON pool_entries "
         "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    with pytest.warns(PoolWarning, match="disk trouble"):
        ev2 = runner.commit(other, _eval_of(store, other, 1), Rollout(ok, trained(other, 10)),
                            None).evaluation
    assert [e.id for e in store.evaluations(1)] == [ev.id, ev2.id]
    assert len(pool.entries()) == len(spec.blocks)
    _sql(store, "DROP TRIGGER full")
    # a failed rollout has nothing to pool: recorded, and no pool write tried (none warns)
    bad = RolloutResult(arch=spec.to_str(), key=spec.key, status="nan", message="", reward=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev3 = runner.commit(spec, _eval_of(store, spec, 2), Rollout(bad, None), None).evaluation
    assert [e.id for e in store.evaluations(1)] == [ev.id, ev2.id, ev3.id]
    assert len(pool.entries()) == len(spec.blocks)
    runner.close()


def test_prepare_initialises_from_the_batch_snapshot_only(pool):
    """A slot's plan comes from the snapshot taken when the batch began: weights committed
    during the batch do not change the plans of its later slots (the fairness rule)."""
    from fnas.execution.evaluators import ProxyEvaluator
    from fnas.search.pooling import PoolRunner
    from fnas.tasks.rollout import Rollout, RolloutResult

    from fast import TINY_TASK

    store, evaluator = pool.store, ProxyEvaluator(TaskConfig(**TINY_TASK, epochs=4),
                                                  RewardConfig())
    runner = PoolRunner(store, SPACE.signature, "t", 2)
    spec = sample(14)
    runner.begin_batch([])
    empty = runner.prepare(evaluator, spec, seed=5)
    assert (empty.snapshot, empty.epochs, empty.stats.hits) == (0, 4, 0)  # nothing to hit
    assert empty.fields() == {"pool_snapshot": 0, "pool_hit_ratio": 0.0, "pool_coverage": 0.0}
    ok = RolloutResult(arch=spec.to_str(), key=spec.key, status="ok", message="", reward=0.5,
                       epochs=4)
    runner.commit(spec, _eval_of(store, spec, 0), Rollout(ok, trained(spec, 14)), empty)
    assert runner.prepare(evaluator, spec, seed=5).stats.hits == 0  # the same batch
    runner.begin_batch([])  # the next batch sees the entries
    hit = runner.prepare(evaluator, spec, seed=5)
    assert hit.snapshot == len(spec.blocks) and hit.epochs == 2
    assert hit.fields()["pool_hit_ratio"] == 1.0 and hit.fields()["pool_snapshot"] == hit.snapshot
    assert hit.weights and all(e.total_epochs == 4 for e in pool.entries())
    runner.close()


def test_entries_are_ordered_by_batch_and_slot_not_by_completion(pool):
    """Parallel rollouts finish in any order; ties go to the freshest entry, so the order must
    be the batch's slot order for a search to be reproducible under Ray."""
    from dataclasses import replace

    from fnas.search.pooling import PoolRunner
    from fnas.tasks.rollout import Rollout, RolloutResult

    store = pool.store
    runner = PoolRunner(store, SPACE.signature, "t", 1)
    specs = [sample(11), sample(12), sample(13)]
    ok = RolloutResult(arch="", key="", status="ok", message="", reward=0.5, epochs=1)
    for slot in (1, 0):  # batch 1 (empty snapshot 0): slot 1 finishes first
        ev = replace(_eval_of(store, specs[slot], slot), pool_snapshot=0)
        runner.commit(specs[slot], ev, Rollout(ok, trained(specs[slot], slot)), None)
    snap_id = pool.snapshot().id
    ev = replace(_eval_of(store, specs[2], 0), iteration=1, pool_snapshot=snap_id)
    runner.commit(specs[2], ev, Rollout(ok, trained(specs[2], 2)), None)
    keys = [e.arch_key for e in pool.entries(stage=0)]
    assert keys == [specs[0].key, specs[1].key, specs[2].key]
    ids = [e.id for e in pool.entries(stage=0)]
    assert ids[0] > ids[1]  # recorded in the other order
    runner.close()
