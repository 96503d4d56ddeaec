"""The loop as an object (issue 19): one executor path for every executor. A parallel executor
that completes rollouts out of order records what the local one records; a repeat of an
architecture in its own batch waits for its twin and is served from the cache; a batch
interrupted with rollouts in flight is completed on resume, every evaluation counted once; the
loop's counters and timers checkpoint as they always have."""

from dataclasses import replace

import numpy as np
import pytest

from fnas.errors import ConfigError
from fnas.execution.executors import Executor, run_job
from fnas.knowledge import Store
from fnas.search import SearchConfig, SyntheticEvaluator, resume_search, run_search
from fnas.search.config import STRATEGIES
from fnas.search.loop_state import LoopState, Timers
from fnas.space import macro_space
from fnas.strategies.base import Proposal, Strategy
from fnas.tasks.rollout import Rollout

SPACE = macro_space()
TARGET = (2, 2, 2, 1, 2, 2, 2, 0)


class Repeats(Strategy):
    """Random proposals in which slot 2 repeats slot 0: a batch with a repeat in it."""

    name = "repeats"

    def __init__(self, space, cfg):
        super().__init__(space, cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)

    def ask(self, n):
        ds = [tuple(int(x) for x in self.space.sample(self.rng)) for _ in range(n)]
        ds[2] = ds[0]
        return [Proposal(self.space.decode(d), d) for d in ds]

    def tell(self, proposals, rewards):
        return {"mean": float(np.mean(rewards))}

    def state(self):
        return {}, {"rng": self.rng.bit_generator.state}

    def load_state(self, tensors, meta):
        self.rng.bit_generator.state = meta["rng"]


class LastFirst(Executor):
    """In this process, ``parallel`` rollouts pending at once, the last submitted completing
    first (as a parallel executor may)."""

    name = "last-first"

    def __init__(self, parallel=3):
        self.parallel, self.jobs, self.most, self.calls = parallel, [], 0, 0

    def submit(self, evaluator, job):
        self.jobs.append((evaluator, job))
        self.most = max(self.most, len(self.jobs))

    def wait(self):
        evaluator, job = self.jobs.pop()
        self.calls += 1
        return job, run_job(evaluator, job)

    @property
    def pending(self):
        return len(self.jobs)

    def abandon(self):
        self.jobs.clear()


@pytest.fixture
def repeats(monkeypatch):
    monkeypatch.setitem(STRATEGIES, "repeats", Repeats)
    return SearchConfig(space="macro", strategy="repeats", budget=24, batch=6, seed=3)


class Seen:
    """A callback: the (iteration, slot) of each evaluation, in the order reported."""

    def __init__(self, stop_at=None):
        self.order, self.stop_at = [], stop_at

    def on_evaluation(self, run, ev):
        self.order.append((ev.iteration, ev.slot))
        if self.stop_at == len(self.order):
            raise KeyboardInterrupt  # a Ctrl-C with rollouts in flight


def _rows(store, out):
    return sorted((e.iteration, e.slot, e.arch_key, e.reward, e.trained, e.cached)
                  for e in store.evaluations(out.experiment.id))


def _search(store, cfg, executor=None, callbacks=()):
    ev = SyntheticEvaluator(SPACE, TARGET, noise=0.05)
    return run_search(store, cfg, name="r", evaluator=ev, space=SPACE, progress=False,
                      executor=executor, callbacks=callbacks)


def test_a_parallel_executor_records_what_the_local_one_records(tmp_path, repeats):
    here, seen_here = Store(tmp_path / "here"), Seen()
    a = _search(here, repeats, callbacks=[seen_here])
    ex, seen_par = LastFirst(), Seen()
    par = Store(tmp_path / "par")
    b = _search(par, repeats, ex, callbacks=[seen_par])
    assert _rows(here, a) == _rows(par, b)
    assert ex.most == 3 and ex.calls == a.stats["n_trained"] == b.stats["n_trained"] == 20
    # each batch's slot 2 repeats slot 0: trained once, served from the cache
    assert all(r[5] == (r[1] == 2) for r in _rows(par, b))
    # here: reported slot by slot; there: as the rollouts complete (and the repeat last)
    assert seen_here.order == [(i, s) for i in range(4) for s in range(6)]
    assert seen_par.order[:6] == [(0, 3), (0, 4), (0, 5), (0, 1), (0, 0), (0, 2)]


def test_a_batch_interrupted_in_flight_is_completed_on_resume(tmp_path, repeats):
    ref_store = Store(tmp_path / "ref")
    ref = _search(ref_store, repeats)
    store, ex = Store(tmp_path / "s"), LastFirst()
    try:  # in batch 1, with rollouts pending
        _search(store, repeats, ex, callbacks=[Seen(stop_at=8)])
        raise AssertionError("not interrupted")
    except KeyboardInterrupt as e:
        interrupt = e  # its traceback keeps the interrupted frames alive, as a caller's may
    assert ex.pending == 0  # the interrupted batch left nothing behind in the executor
    assert interrupt.__traceback__ is not None
    assert store.get_experiment("r").status == "interrupted"
    ev = SyntheticEvaluator(SPACE, TARGET, noise=0.05)
    done = resume_search(store, "r", evaluator=ev, space=SPACE, progress=False, executor=ex)
    assert _rows(store, done) == _rows(ref_store, ref)  # nothing lost, nothing twice
    # the slots recorded before the resume are counted too
    assert done.stats["n_trained"] == ref.stats["n_trained"] == 20
    assert done.stats["n_done"] == 24 and done.experiment.status == "done"


def test_each_trained_slot_counts_its_training_seconds_once(tmp_path, repeats):
    """A trained slot's seconds reach the loop's timers once, from its commit's result: the
    rollouts' own training seconds sum to the ``train`` timer, and a repeat served from the
    cache adds none (rollouts complete out of order here)."""

    class Quarter(LastFirst):
        def wait(self):
            job, rollout = super().wait()
            return job, Rollout(replace(rollout.result, train_seconds=0.25), rollout.weights)

    store = Store(tmp_path)
    out = _search(store, repeats, Quarter())
    rows = store.evaluations(out.experiment.id)
    assert out.stats["n_trained"] == sum(e.trained for e in rows) == 20
    assert out.stats["train"] == 0.25 * 20  # quarters add up exactly
    assert all(e.train_seconds == 0.25 for e in rows if e.trained)


def test_an_executor_must_be_an_executor(tmp_path, repeats):
    store = Store(tmp_path)
    with pytest.raises(ConfigError, match=r"expected a fnas.execution.executors.Executor, got "
                                          r"object$"):
        _search(store, repeats, executor=object())
    assert store.list_experiments() == []  # refused before the run is recorded


def test_loop_state_reads_every_checkpoint_it_wrote():
    assert LoopState.from_dict({}) == LoopState()  # a run's start
    t = Timers.from_dict({"sample": 1, "wall": 2.5, "gone": 9.0})  # a part missing, one unknown
    assert t.sample == 1.0 and t.wall == 2.5 and t.store == 0.0 and "gone" not in t.to_dict()
    assert list(t.to_dict()) == ["sample", "evaluate", "train", "pool", "store", "update",
                                 "checkpoint", "wall"]  # the stats' order, as before
    st = LoopState(3, 24, 20, t)
    assert st.to_dict(7) == {"iteration": 3, "n_done": 24, "n_trained": 20,
                             "timers": t.to_dict(), "experiment": 7}
    assert LoopState.from_dict(st.to_dict(7)) == st
    with t.measure("store"):
        pass
    assert t.store > 0.0


def test_the_evaluator_contract_names_what_the_loop_reads(tmp_path):
    """input_size, in_chans, num_classes, device, cost() and evaluate_at(fidelity) are on the
    base class (the loop, the pool, the executors and the harness read them), with defaults
    an evaluator of one's own inherits."""
    from fnas.errors import ConfigError
    from fnas.execution.evaluators import Evaluator, ProxyEvaluator
    from fnas.space import mnas_space
    from fnas.tasks.reward import RewardConfig
    from fnas.tasks.trainer import TaskConfig

    from fast import TINY_TASK

    class Mine(Evaluator):
        signature = "mine"

        def evaluate(self, spec, seed):
            raise AssertionError("not called")

    mine = Mine()
    assert (mine.input_size, mine.in_chans, mine.num_classes, mine.device) == (224, 3, 10, "cpu")
    assert mine.cost("any") is None
    with pytest.raises(ConfigError, match="full fidelity only"):
        mine.evaluate_at(None, 0, 0.5)
    for bad in (0, 1.5, True, "1"):
        with pytest.raises(ConfigError, match="fidelity"):
            mine.evaluate_at(None, 0, bad)
    mine.device = "cuda"
    assert mine.device == "cuda"
    ev = ProxyEvaluator(TaskConfig(**TINY_TASK, epochs=4), RewardConfig())
    assert (ev.in_chans, ev.num_classes, ev.input_size, ev.device) == (1, 10, 8, "cpu")
    spec = mnas_space(ev.input_size).decode(mnas_space(ev.input_size).sample(
        np.random.default_rng(0)))
    low, full = ev.evaluate_at(spec, 0, 0.25), ev.evaluate_at(spec, 0, 1.0)
    assert low.status == full.status == "ok"
    assert (low.epochs, full.epochs) == (1, 4)
    assert ev.evaluate(spec, 0).accuracy == full.accuracy  # fidelity 1 is evaluate


class Quarters(LastFirst):
    """``LastFirst``, each rollout's training seconds set to exactly 0.25."""

    def wait(self):
        job, rollout = super().wait()
        return job, Rollout(replace(rollout.result, train_seconds=0.25), rollout.weights)


def test_a_resumed_run_counts_the_seconds_of_slots_recorded_before_it(tmp_path, repeats):
    """After an interruption in a batch (Ctrl-C here; kill -9 alike), the slots recorded
    before it are in no checkpoint's timers: the resume counts them, so ``fnas show``'s
    training seconds (the timers) are the end-of-run summary's (the recorded rows' sum), not
    313 s against 2611 s (issue 36)."""
    store = Store(tmp_path)
    with pytest.raises(KeyboardInterrupt):  # in batch 1, two of its slots recorded
        _search(store, repeats, Quarters(), callbacks=[Seen(stop_at=8)])
    ev = SyntheticEvaluator(SPACE, TARGET, noise=0.05)
    done = resume_search(store, "r", evaluator=ev, space=SPACE, progress=False,
                         executor=Quarters())
    assert store.summary(done.experiment.id)["train_seconds"] == 0.25 * 20
    assert done.stats["train"] == 0.25 * 20  # each training once, the interrupted ones too


def test_a_checkpoint_at_the_compute_limit_is_not_counted_twice(tmp_path, repeats):
    """The checkpoint written within a batch at ``budget_seconds`` names the slots whose
    seconds its timers hold; the resume that reuses them does not count them again."""
    import time

    class Slow(Quarters):  # the limit passes in batch 1's second training
        def wait(self):
            if self.calls == 6:
                time.sleep(0.5)
            return super().wait()

    store = Store(tmp_path)
    ev = SyntheticEvaluator(SPACE, TARGET, noise=0.05)
    cfg = replace(repeats, budget_seconds=0.4, eval_isolation="none")
    first = run_search(store, cfg, name="r", evaluator=ev, space=SPACE, progress=False,
                       executor=Slow())
    assert first.stats["stop_reason"] == "seconds" and first.stats["n_done"] == 6
    assert len(store.evaluations(first.experiment.id)) > 6  # a part of batch 1 recorded
    done = resume_search(store, "r", evaluator=ev, space=SPACE, progress=False,
                         executor=Quarters(), budget_seconds=1e6)
    assert done.stats["n_done"] == 24
    assert done.stats["train"] == store.summary(done.experiment.id)["train_seconds"] \
        == 0.25 * done.stats["n_trained"]
