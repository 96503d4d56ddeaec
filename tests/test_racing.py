"""Racing (``SearchConfig.confirm``): a result that beats the best is trained again with new
seeds before it becomes what the run returns, and the run returns the best mean among the
confirmed architectures. The rule (:class:`fnas.knowledge.racing.Race`) on plain values, then
in searches of a synthetic noisy evaluator: repeats are recorded as replicates that the cache
never answers, count in the budget, resume exactly, and ``search.best`` is the confirmed
incumbent with its mean."""

import numpy as np
import pytest
from tests.fast import FAST_PPO

from fnas.errors import ConfigError
from fnas.execution.evaluators import Evaluator
from fnas.knowledge import Store
from fnas.knowledge.racing import Race, pooled, replicate_of, replicate_signature
from fnas.search import SearchConfig, run_search
from fnas.search.loop import resume_search
from fnas.space import macro_space
from fnas.tasks.rollout import RolloutResult

SPACE = macro_space()
TARGET = np.array((2, 2, 2, 1, 2, 2, 2, 0))


class Noisy(Evaluator):
    """Instant: the share of decisions equal to ``TARGET`` plus Gaussian noise drawn by the
    evaluation's seed (a short training's seed-to-seed spread)."""

    instant = True

    def __init__(self, noise=0.15):
        self.noise = noise
        self.signature = f"noisy|{SPACE.signature}|{noise}"
        self.seeds = []

    def evaluate(self, spec, seed):
        self.seeds.append(seed)
        r = float((np.asarray(SPACE.encode(spec)) == TARGET).mean())
        r += self.noise * float(np.random.default_rng(seed).normal())
        return RolloutResult(spec.to_str(), spec.key, "ok", "", r, r, seed=seed)


def _cfg(confirm=2, budget=40, strategy="rea", **kw):
    return SearchConfig(space="macro", strategy=strategy, budget=budget, batch=8, seed=3,
                        knowledge="none", confirm=confirm, **kw)


def test_the_rule_confirms_before_it_trusts():
    race = Race(confirm=2)
    race.add("a", 0, 0.5, "A")
    assert race.incumbent().key == "a"
    assert [(r.key, rep) for r, rep in race.challengers(4)] == [("a", 1)]  # none confirmed
    race.add("a", 1, 0.7, "A")  # confirmed at a mean of 0.6
    race.add("b", 0, 0.9, "B")  # one lucky result does not take over...
    race.add("c", 0, 0.55, "C")  # ...nor does one below the incumbent's mean ask a repeat
    assert race.incumbent().key == "a" and race.incumbent().mean == pytest.approx(0.6)
    assert [(r.key, rep) for r, rep in race.challengers(4)] == [("b", 1)]
    race.add("b", 1, 0.1, "B")  # its repeat says it was luck: mean 0.5
    assert race.incumbent().key == "a" and race.challengers(4) == []
    race.add("d", 0, 0.8, "D")
    race.add("d", 1, None, "D")  # a failed repeat: tried, never confirmed, not asked again
    assert race.challengers(4) == [] and race.incumbent().key == "a"
    race.add("a", 1, 0.0, "A")  # a replicate keeps its first value
    assert race.incumbent().mean == pytest.approx(0.6)


def test_a_pool_initialised_result_only_nominates():
    """Once an architecture has a result trained from scratch, its mean is theirs: a warm
    start from the pool's weights can make a network look better than it is."""
    race = Race(confirm=2)
    race.add("a", 0, 0.96, "A", pooled=True)
    assert race.incumbent().mean == pytest.approx(0.96)  # nothing else known yet
    race.add("a", 1, 0.89, "A")
    race.add("b", 0, 0.93, "B")
    race.add("b", 1, 0.92, "B")
    assert race.incumbent().key == "b" and race.ranking()[1].mean == pytest.approx(0.89)


def test_without_racing_the_best_single_result_wins_and_nothing_repeats():
    race = Race(confirm=1).extend([("a", 0, 0.5, 1), ("b", 0, 0.9, 2), ("c", 0, 0.9, 3)])
    assert race.incumbent().key == "b" and race.challengers(5) == []  # a tie: the earlier
    assert [r.key for r in race.ranking()] == ["b", "c", "a"]


def test_replicates_are_marked_in_the_signature():
    assert replicate_signature("task|x", 0) == "task|x"
    assert replicate_of(replicate_signature("task|x", 3)) == 3
    assert replicate_of("task|x") == 0 and replicate_of("task|replicate=z") == 0


def test_a_racing_search_repeats_challengers_and_returns_a_confirmed_mean(tmp_path):
    """Repeats are trainings with their own seeds (the cache never answers them), count in
    the budget, and stay out of the strategy's batch; the best is confirmed, its reward the
    mean of its replicates."""
    store, ev = Store(tmp_path / "s"), Noisy()
    out = run_search(store, _cfg(), name="r", evaluator=ev, space=SPACE, progress=False)
    rows = store.evaluations(out.experiment.id)
    assert len(rows) == 40  # the budget, repeats included
    reps = [e for e in rows if replicate_of(e.task_signature) > 0]
    assert reps and all(e.trained and not e.cached and e.slot >= 8 for e in reps)
    assert len(set(ev.seeds)) == len(ev.seeds)  # every training its own seed
    best = out.best[0]
    same = [e.reward for e in rows if e.arch_key == best.arch_key and e.status == "ok"]
    assert len(same) >= 2 and best.reward == pytest.approx(np.mean(same))
    assert store.summary(out.experiment.id)["best_reward"] == pytest.approx(best.reward)
    lucky = max(rows, key=lambda e: e.reward)  # the luckiest single number is not returned
    assert best.reward < lucky.reward


def test_without_racing_a_search_records_no_replicate(tmp_path):
    store = Store(tmp_path / "s")
    out = run_search(store, _cfg(confirm=1), name="r", evaluator=Noisy(), space=SPACE,
                     progress=False)
    rows = store.evaluations(out.experiment.id)
    assert all(replicate_of(e.task_signature) == 0 for e in rows)
    assert out.best[0].reward == max(e.reward for e in rows)


@pytest.mark.parametrize("strategy", ["rea", "fnas"])
def test_a_stopped_racing_search_resumes_to_the_same_records(tmp_path, strategy):
    """Stopped after 2 batches: the repeats of later batches depend on what the earlier ones
    recorded, and a resume asks for the same ones."""
    cfg = _cfg(strategy=strategy, budget=48, ppo=FAST_PPO,
               fnas={"screen": {"candidates": 64}} if strategy == "fnas" else None)
    a = Store(tmp_path / "a")
    full = run_search(a, cfg, name="r", evaluator=Noisy(), space=SPACE, progress=False)
    b = Store(tmp_path / "b")
    run_search(b, cfg, name="r", evaluator=Noisy(), space=SPACE, progress=False, stop_after=2)
    resumed = resume_search(b, "r", evaluator=Noisy(), space=SPACE, progress=False)
    key = lambda e: (e.iteration, e.slot, e.arch_key, e.task_signature, e.reward)  # noqa: E731
    want = [key(e) for e in a.evaluations(full.experiment.id)]
    assert want == [key(e) for e in b.evaluations(resumed.experiment.id)]
    assert any(replicate_of(k[3]) > 0 and k[0] >= 2 for k in want)  # repeats after the stop


def test_confirm_is_checked_and_offered_everywhere(tmp_path):
    import fnas
    from fnas.cli import main

    with pytest.raises(ConfigError, match="confirm"):
        _cfg(confirm=0)
    with pytest.raises(ConfigError, match="confirm"):
        _cfg(confirm=1.5)
    s = fnas.create_search(store=tmp_path / "s", space="macro", objective=lambda a, seed: 0.5,
                           confirm=3, budget=4)
    assert s.config.confirm == 3
    with pytest.raises(SystemExit) as e:
        main(["search", "--confirm", "0", "--store", str(tmp_path / "c")])
    assert e.value.code == 2


@pytest.mark.slow
def test_repeats_train_from_scratch_when_the_pool_is_on(tmp_path):
    """Real tiny trainings (tests/fast.py) with the pool: the strategy's trainings start
    from the pool's weights (half the epochs), a repeat from scratch at the full epochs, and
    the returned mean is the repeats' alone."""
    from fnas.tasks import RewardConfig, TaskConfig

    from fast import TINY_TASK

    cfg = SearchConfig(space="mnas", strategy="rea", budget=12, batch=4, seed=1, pool="on",
                       confirm=2, knowledge="none", checkpoint=False,
                       task=TaskConfig(**TINY_TASK, epochs=2),
                       reward=RewardConfig("macs", 2e6))
    store = Store(tmp_path)
    out = run_search(store, cfg, name="p", progress=False)
    rows = store.evaluations(out.experiment.id)
    reps = [e for e in rows if replicate_of(e.task_signature)]
    assert reps and all(e.pool_snapshot is None and e.epochs == 2 for e in reps)
    assert any(e.pool_coverage for e in rows if not replicate_of(e.task_signature))
    best = out.best[0]
    # the returned mean is its results trained from scratch: the repeats, and the first
    # training too where the pool had nothing to give it (the first batch's empty pool);
    # which architecture wins, and so which case this is, depends on the CPU's float kernels
    own = [e for e in rows if e.arch_key == best.arch_key and e.status == "ok"]
    mine = [e.reward for e in own if not pooled(e)]
    assert any(replicate_of(e.task_signature) for e in own)
    assert mine and best.reward == pytest.approx(np.mean(mine))
