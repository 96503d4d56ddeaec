"""Issue 36: the store grew to 64 MB after 32 digits trainings, with no way to give space back.
``fnas pool prune`` (:func:`fnas.knowledge.prune_store`) removes pool entries no search would
pick again, orphan and temporary files, and, when asked, a run's pool weights or the whole
pool; it keeps every evaluation, and the run resumes as before.

Nothing trains: the pool's entries are the weights of freshly built networks, added as a
search adds them (with the evaluation that trained them), to a synthetic run stopped after its
first batch.
"""

import numpy as np
import pytest
import torch

import fnas
from fnas.errors import ConfigError, StoreError
from fnas.knowledge import Evaluation, Pool, Store, prune_store
from fnas.search import SearchConfig, SyntheticEvaluator, resume_search, run_search
from fnas.space import mnas_space

SPACE = mnas_space(8)
TARGET = SPACE.encode(SPACE.decode(SPACE.sample(np.random.default_rng(5))))
CFG = SearchConfig(strategy="random", budget=6, batch=2, knowledge="none")


def weights(arch: str, seed: int):
    torch.manual_seed(seed)
    return fnas.build(arch, num_classes=10, input_size=8, in_chans=1).state_dict()


@pytest.fixture
def store(tmp_path):
    """Run ``r`` stopped after one batch (2 evaluations, a checkpoint); its first evaluation's
    network pooled twice (two trainings of one architecture: the second supersedes the first
    in every stage), its second's once; an orphan pool file and a temporary file."""
    s = Store(tmp_path / "s")
    run_search(s, CFG, name="r", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
               progress=False, stop_after=1)
    e1, e2 = s.evaluations(s.get_experiment("r").id)
    with Pool(s, "sp") as pool:
        first = pool.add(e1.arch, weights(e1.arch, 0), task="t", epochs=1, source_eval=e1.id)
        second = pool.add(e1.arch, weights(e1.arch, 1), task="t", epochs=1, source_eval=e1.id)
        third = pool.add(e2.arch, weights(e2.arch, 2), task="t", epochs=1, source_eval=e2.id)
    (tmp_path / "s" / "pool" / "ab").mkdir(exist_ok=True)
    (tmp_path / "s" / "pool" / "ab" / ("ab" * 32 + ".safetensors")).write_bytes(b"orphan")
    (tmp_path / "s" / "runs" / "r" / "checkpoint.safetensors.tmp").write_bytes(b"half")
    s.first = first  # superseded by the second copy
    # and the second copy's blocks that the other network repeats (the stem, at least)
    s.repeated = [e for e in second if (e.stage, e.block, e.in_chs) in
                  {(t.stage, t.block, t.in_chs) for t in third}]
    assert s.repeated
    yield s
    s.close()


def rows(s):
    return [(e.id, e.arch_key, e.reward) for e in s.evaluations(s.get_experiment("r").id)]


def test_prune_removes_the_superseded_entries_and_leftovers_and_the_run_resumes(store):
    stages, gone = len(store.first), store.first + store.repeated
    before = rows(store)
    dry = prune_store(store, dry_run=True)
    assert (dry.entries, dry.files, dry.dry_run) == (len(gone), len(gone) + 2, True)
    assert fnas.knowledge.pool_stats(store).entries == 3 * stages  # nothing removed yet
    rep = prune_store(store)
    assert (rep.entries, rep.files) == (len(gone), len(gone) + 2)
    assert rep.kept_entries == 3 * stages - len(gone)
    assert rep.bytes > 0 and rep.kept_bytes > 0 and rep.checkpoint_bytes > 0
    with Pool(store, "sp") as pool:
        left = {e.id for e in pool.entries()}
        assert len(left) == rep.kept_entries and not left & {e.id for e in gone}
        assert pool.verify() == []  # every entry left has its file
    assert not list(store.root.rglob("*.tmp")) and not (store.root / "pool" / "ab").exists()
    assert rows(store) == before  # every evaluation kept
    assert prune_store(store).entries == 0  # nothing more to do
    out = resume_search(store, "r", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                        progress=False)
    assert out.experiment.status == "done" and rows(store)[:2] == before
    assert len(rows(store)) == CFG.budget


def test_an_entry_a_resumable_batch_may_pick_is_kept(store):
    """Run ``q``'s last batch used the snapshot taken after the first copy only: a resume of
    that batch rebuilds it, where the first copy is the freshest, so it stays."""
    exp = store.create_experiment("q", "random", 0, "sig", "t", {}, 4)
    snap = max(e.id for e in store.first)
    store.add_evaluation(Evaluation(exp.id, 0, 0, "k", "k", (0,), "t", 0.5, "ok",
                                    pool_snapshot=snap))
    store.update_experiment(exp.id, status="stopped")
    assert prune_store(store).entries == len(store.repeated)  # the first copy is kept


def test_runs_and_everything_remove_reusable_weights_only_when_asked(store):
    stages = len(store.first)
    assert prune_store(store, runs=["r"]).kept_entries == 0  # every entry came from r
    assert fnas.knowledge.pool_stats(store).files == 0
    assert not list((store.root / "pool").rglob("*.safetensors"))
    assert len(rows(store)) == 2 and stages > 0
    assert prune_store(store, everything=True).entries == 0


def test_refusals(store):
    with pytest.raises(StoreError, match="no experiment 'nosuch'"):
        prune_store(store, runs=["nosuch"])
    with pytest.raises(ConfigError, match="not both"):
        prune_store(store, runs=["r"], everything=True)
    exp = store.get_experiment("r")
    store.acquire_lease(exp.id, exp.name)  # a search runs it
    store.update_experiment(exp.id, status="running")
    try:
        with pytest.raises(StoreError, match="'r' is running"):
            prune_store(store)
    finally:
        store.release_lease(exp.id)
    with Store(store.root, readonly=True) as ro:
        with pytest.raises(StoreError, match="read-only"):
            prune_store(ro)
        assert prune_store(ro, dry_run=True).entries == len(store.first + store.repeated)


def test_the_command(store, capsys):
    from fnas.cli import main

    n = 3 * len(store.first)
    store.close()
    root = str(store.root)
    assert main(["pool", "prune", "--store", root, "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out
    assert main(["pool", "prune", "--store", root, "--runs", "r"]) == 0
    out = capsys.readouterr().out
    assert f"removed {n} entries" in out and "0 entries left" in out
