"""Fidelity as a dimension of an evaluation (issue 34, part 3): records carry it, only
full-fidelity results count (best, incumbent, knowledge), the cache keeps fidelities apart, the
screening strategy's rungs promote by the critic's full-fidelity prediction, and a stopped
multi-fidelity search resumes to the same decisions. A synthetic evaluator whose low-fidelity
reward is the full one plus a bias and noise that shrink with the fidelity stands in for
training; one tiny real training checks that the proxy's low fidelity trains fewer steps."""


import numpy as np
import pytest
from tests.fast import FAST_PPO, Toy

from fnas.errors import ConfigError
from fnas.execution.evaluators import Evaluator
from fnas.knowledge import Store
from fnas.search import SearchConfig, run_search
from fnas.search.loop import resume_search
from fnas.search.recording import cache_signature
from fnas.space import macro_space
from fnas.space.factorized import Decision, FactorizedSpace
from fnas.strategies.fnas.screening import ScreenConfig
from fnas.tasks.rollout import RolloutResult

SPACE = macro_space()
TARGET = (2, 2, 2, 1, 2, 2, 2, 0)
RUNGS = {"screen": {"rungs": [1 / 3, 1.0], "eta": 3}}


class MultiFidelity(Evaluator):
    """Instant: the full reward is the share of decisions equal to ``target``; at fidelity f
    it is that plus ``bias x (1 - f)`` (a low fidelity always *looks* better, so a result
    that wrongly counted would show) plus noise of scale ``noise x (1 - f)``."""

    instant = True
    fidelities = True

    def __init__(self, space, target, bias=0.5, noise=0.1, tag=""):
        self.space, self.target = space, np.asarray(target)
        self.bias, self.noise = bias, noise
        self.signature = f"multifid|{space.signature}|{list(target)}|{tag}"

    def full(self, spec):
        d = spec.bits if isinstance(spec, Toy) else self.space.encode(spec)
        return float((np.asarray(d) == self.target).mean())

    def evaluate(self, spec, seed):
        return self.evaluate_at(spec, seed, 1.0)

    def evaluate_at(self, spec, seed, fidelity=1.0):
        r = self.full(spec)
        if fidelity < 1:
            g = np.random.default_rng([seed, int(fidelity * 1e6)])
            r += (1 - fidelity) * (self.bias + self.noise * float(g.normal()))
        return RolloutResult(spec.to_str(), spec.key, "ok", "", r, r, seed=seed,
                             steps=int(round(90 * fidelity)), fidelity=fidelity)


def _cfg(budget=24, batch=6, seed=0, fnas=None, strategy="fnas", **kw):
    kw.setdefault("ppo", FAST_PPO)  # fidelity is the subject
    return SearchConfig(space="macro", strategy=strategy, budget=budget, batch=batch, seed=seed,
                        budget_counts="trained", max_samples=6 * budget, knowledge="none",
                        fnas=RUNGS if fnas is None else fnas, **kw)


def _run(store, name, cfg, ev=None, space=SPACE, **kw):
    return run_search(store, cfg, name=name, evaluator=ev or MultiFidelity(space, TARGET),
                      space=space, progress=False, **kw)


def test_a_multi_fidelity_search_records_fidelities_and_counts_only_full_results(tmp_path):
    """Budget 24 trainings counted by fidelity, batch 6: enough rounds for rung 0 to fill
    and promote several times."""
    store = Store(tmp_path)
    out = _run(store, "m", _cfg())
    rows = store.evaluations(out.experiment.id)
    low = [e for e in rows if e.fidelity < 1]
    full = [e for e in rows if e.fidelity == 1]
    assert {e.fidelity for e in rows} == {1 / 3, 1.0}
    assert len(low) > 2 * len(full) > 0  # most evaluations are cheap
    assert all(e.steps == 30 for e in low) and all(e.steps == 90 for e in full)
    assert all("fidelity=0.333333" in e.task_signature for e in low)
    assert all(e.task_signature == out.experiment.task_signature for e in full)
    # promotion: every full evaluation is a promoted rung-0 result, at most 1/eta of them
    first_low = {}
    for e in low:
        first_low.setdefault(e.arch_key, e.iteration)
    for e in full:
        assert e.arch_key in first_low and first_low[e.arch_key] < e.iteration
    assert len(full) <= len(low) // 3
    # only full results count: the best, the summary, the stats, the knowledge
    best_full = max(e.reward for e in full)
    assert max(e.reward for e in low) > best_full  # a low result looks better, by design
    assert out.best[0].fidelity == 1.0 and out.best[0].reward == best_full
    assert all(e.fidelity == 1.0 for e in out.best)
    assert store.summary(out.experiment.id)["best_reward"] == best_full
    assert out.stats["best_reward"] == best_full
    # a budget in trainings counts each by its fidelity (checked between batches of 6)
    assert out.stats["n_trained"] == len(rows)
    spent = sum(e.fidelity for e in rows)
    assert 24 - 1e-9 <= spent < 24 + 6 and spent - sum(e.fidelity for e in rows
                                                        if e.iteration < rows[-1].iteration) < 24
    ups = store.updates(out.experiment.id)
    assert sum(u.get("screen/promoted", 0) for u in ups) == len(full)
    assert ups[-1]["screen/rung0_promoted"] == len(full)
    assert ups[-1]["screen/rung0_results"] == len({e.arch_key for e in low})
    from fnas.search.knowledge import gather_knowledge

    knowledge, _ = gather_knowledge(store, -1, SPACE.decision_signature)
    assert len(knowledge) == len({e.arch_key for e in full})  # low results teach nothing


TOY = FactorizedSpace("toy3", [Decision(f"d{i}", (0, 1, 2)) for i in range(3)],
                      lambda c: Toy(tuple(c[f"d{i}"] for i in range(3))))


def test_the_cache_keeps_fidelities_apart(tmp_path):
    """27 architectures: a random full-fidelity run covers most of them; a multi-fidelity
    run then trains its low-fidelity evaluations afresh and takes its promotions from the
    full-fidelity cache; a second full run is never served a low-fidelity result."""
    store = Store(tmp_path)
    ev = MultiFidelity(TOY, (2, 2, 2))
    kw = dict(space="macro", budget=20, batch=4, budget_counts="trained", max_samples=200,
              knowledge="none")
    a = run_search(store, SearchConfig(strategy="random", seed=0, **kw), name="a",
                   evaluator=ev, space=TOY, progress=False)
    full_keys = {e.arch_key for e in store.evaluations(a.experiment.id) if e.trained}
    b = run_search(store, SearchConfig(strategy="fnas", seed=1, fnas={
        "screen": {"rungs": [0.5, 1.0], "eta": 2, "n_init": 4, "candidates": 16,
                   "mutants": 4}}, **kw), name="b", evaluator=ev, space=TOY, progress=False)
    rows = store.evaluations(b.experiment.id)
    low = [e for e in rows if e.fidelity < 1]
    assert low and all(not e.cached for e in low if e.iteration == 0)  # none served by full
    assert all(e.reward != ev.full(TOY.decode(e.decisions)) for e in low)
    promoted = [e for e in rows if e.fidelity == 1]
    assert promoted and all(e.cached == (e.arch_key in full_keys) for e in promoted)
    assert all(e.reward == ev.full(TOY.decode(e.decisions)) for e in promoted)
    c = run_search(store, SearchConfig(strategy="random", seed=2, **kw), name="c",
                   evaluator=ev, space=TOY, progress=False)
    assert all(e.fidelity == 1 and e.reward == ev.full(TOY.decode(e.decisions))
               for e in store.evaluations(c.experiment.id))
    assert cache_signature("sig", 1.0) == "sig"  # old identities unchanged
    assert cache_signature("sig", 0.25) == "sig|fidelity=0.25"


def test_promotion_takes_the_critics_top_third_once_best_first():
    from fnas.search.config import STRATEGIES

    s = STRATEGIES["fnas"](SPACE, _cfg())
    s._promote(0)  # makes the rung lists
    done = [([i % 3, i // 3] + [0] * 6, 0.1 * i) for i in range(9)]
    s.st.rung_done[0] = list(done[:7])
    scores = np.array([0.0, 5.0, 1.0, 4.0, 2.0, 3.0, 6.0])  # the critic's, not the rewards
    s._score = lambda x: (scores[: len(x)], np.zeros(len(x)), None)
    s.critic.add([[0] * 8], [0.0])  # a critic with data
    got = s._promote(8)  # floor(7 / 3) = 2: the critic's best two, best first
    assert [d for d, _, _ in got] == [done[6][0], done[1][0]]
    assert [f for _, f, _ in got] == [1.0, 1.0] and got[0][2][0] == 6.0
    assert s._promote(8) == []  # promoted once only
    s.st.rung_done[0] += done[7:]
    scores = np.array([0.0, 5.0, 1.0, 4.0, 2.0, 3.0, 6.0, -1.0, -2.0])
    assert [d for d, _, _ in s._promote(1)] == [done[3][0]]  # 9 // 3 = 3: the third
    assert s._promote(8) == []


def test_rungs_are_checked_and_need_an_evaluator_with_fidelities(tmp_path):
    for bad in ([1.0], [0.5, 0.25, 1.0], [0.5, 0.9], [0, 1], "0.5"):
        with pytest.raises(ConfigError, match="rungs"):
            ScreenConfig(rungs=bad)
    with pytest.raises(ConfigError, match="eta"):
        ScreenConfig(eta=1)
    with pytest.raises(ConfigError, match="decision_rule='screen'"):
        SearchConfig(fnas={"decision_rule": "veto", "screen": {"rungs": [0.5, 1.0]}})
    assert SearchConfig.from_dict({"fnas": {"screen": {"rungs": [0.25, 1]}}}).fnas \
        .screen.rungs == (0.25, 1.0)
    from fnas.search import SyntheticEvaluator

    with pytest.raises(ConfigError, match="full fidelity only"):
        _run(Store(tmp_path), "x", _cfg(), ev=SyntheticEvaluator(SPACE, TARGET))


@pytest.mark.slow
def test_a_stopped_multi_fidelity_search_resumes_to_the_same_decisions(tmp_path):
    """Budget 18 trainings, stopped after 2 batches of 6: promotions happen before and after
    the stop, so the rung bookkeeping must survive the checkpoint."""
    cfg = _cfg(budget=18)
    a = Store(tmp_path / "a")
    full = _run(a, "r", cfg)
    b = Store(tmp_path / "b")
    _run(b, "r", cfg, stop_after=2)
    resumed = resume_search(b, "r", evaluator=MultiFidelity(SPACE, TARGET), space=SPACE,
                            progress=False)
    key = lambda e: (e.iteration, e.slot, e.arch_key, e.fidelity, e.reward,  # noqa: E731
                     e.predicted_reward)
    want = [key(e) for e in a.evaluations(full.experiment.id)]
    assert want == [key(e) for e in b.evaluations(resumed.experiment.id)]
    assert any(k[3] == 1.0 and k[0] >= 2 for k in want)  # promotions after the stop


def test_old_checkpoint_states_load_at_full_fidelity():
    from fnas.agent.critic import CriticConfig, EnsembleCritic
    from fnas.strategies.fnas.screen_config import ScreenState

    st = ScreenState.from_meta({"own": [[[0, 1], 0.5]], "n_warm": 3})  # before rungs
    assert (st.points, st.rung_done, st.promoted) == ([], [], [])
    c = EnsembleCritic((3, 3), CriticConfig(steps=5), fidelity=True)
    c.add([[0, 1], [1, 2]], [0.0, 1.0], [0.5, 1.0])
    c.fit()
    t, meta = c.state()
    again = EnsembleCritic((3, 3), CriticConfig(steps=5), fidelity=True)
    again.load_state(t, meta)
    assert again.fidelities().tolist() == [0.5, 1.0]
    assert again.predict([[0, 1]])[0] == pytest.approx(c.predict([[0, 1]])[0])
    del t["critic.fidelity"]  # a state without the column: every point at full fidelity
    again.load_state(t, meta)
    assert again.fidelities().tolist() == [1.0, 1.0]
    plain = EnsembleCritic((3, 3), CriticConfig(steps=5))
    with pytest.raises(ValueError, match="fidelit"):
        plain.add([[0, 1]], [0.0], [0.5])
    from fnas.errors import StoreError

    with pytest.raises(StoreError, match="fidelity"):
        plain.load_state(*c.state())


def test_an_old_store_reads_full_fidelity(tmp_path):
    import sqlite3

    store = Store(tmp_path)
    out = _run(store, "old", _cfg(budget=6, fnas={}))  # rungs off: all at full fidelity
    store.close()
    db = sqlite3.connect(tmp_path / "fnas.db")
    db.execute("UPDATE evaluations SET fidelity=NULL, steps=NULL")  # as a v4 row reads
    db.commit()
    db.close()
    again = Store(tmp_path, readonly=True)
    rows = again.evaluations(out.experiment.id)
    assert rows and all(e.fidelity == 1.0 and e.counts for e in rows)
    assert again.summary(out.experiment.id)["best_reward"] == max(e.reward for e in rows)


def test_the_proxy_trains_a_fraction_of_its_steps_at_a_low_fidelity():
    """One tiny real training at each of three fidelities (digits, 100 images, 2 epochs)."""
    from fnas.execution.evaluators import ProxyEvaluator
    from fnas.space import mnas_space
    from fnas.tasks.reward import RewardConfig
    from fnas.tasks.trainer import TaskConfig

    from fast import TINY_TASK

    ev = ProxyEvaluator(TaskConfig(**TINY_TASK, epochs=2), RewardConfig())
    space = mnas_space(ev.input_size)
    spec = space.decode(space.sample(np.random.default_rng(0)))
    full, half, quarter = (ev.evaluate_at(spec, 0, f) for f in (1.0, 0.5, 0.25))
    assert full.status == half.status == quarter.status == "ok"
    # 80 training images in minibatches of 32: 2 steps an epoch, 4 in all
    assert (full.steps, half.steps, quarter.steps) == (4, 2, 1)
    assert (full.epochs, half.epochs, quarter.epochs) == (2, 1, 1)
    assert (full.fidelity, half.fidelity, quarter.fidelity) == (1.0, 0.5, 0.25)
    assert len(quarter.train_losses) == 1
    assert ev.evaluate(spec, 0).accuracy == full.accuracy  # fidelity 1 is evaluate


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_a_multi_fidelity_search_on_ray_makes_the_local_decisions(tmp_path, local_ray):
    """Ray runs each batch's evaluations in parallel, but the loop decides once per batch
    (promotions included), so the records are the local run's."""
    import sys

    from fnas.execution.executors import LocalExecutor, RayExecutor

    local_ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        cfg = _cfg(budget=8)
        ex = RayExecutor(parallel=2)
        on_ray = _run(Store(tmp_path / "ray"), "r", cfg, executor=ex)
        ex.close()
        here = _run(Store(tmp_path / "here"), "h", cfg, executor=LocalExecutor())
    finally:
        local_ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    key = lambda e: (e.iteration, e.slot, e.arch_key, e.fidelity, e.reward)  # noqa: E731
    rows = [key(e) for e in Store(tmp_path / "ray").evaluations(on_ray.experiment.id)]
    assert sorted(rows) == sorted(key(e) for e in Store(tmp_path / "here").evaluations(
        here.experiment.id))
    assert {k[3] for k in rows} == {1 / 3, 1.0}


def test_an_objective_with_a_fidelity_parameter_is_searched_at_its_fidelities(tmp_path):
    """A user objective offers lower fidelities by a parameter named ``fidelity`` (issue 36:
    ASHA-style early stopping from Python); a low-fidelity result, here one that looks
    better than any full one, never counts."""
    import fnas

    calls = []

    def objective(arch, seed, fidelity=1.0):
        calls.append(fidelity)
        full = sum(arch.values()) / (2 * len(arch))
        return full + 0.5 * (1 - fidelity)

    space = fnas.make_space("fid-toy", {f"d{i}": (0, 1, 2) for i in range(6)})
    search = fnas.create_search(tmp_path, "f", space=space, objective=objective, version=1,
                                budget=24, batch=6, fnas=RUNGS, budget_counts="trained")
    search.optimize(progress=False)
    fids = sorted({e.fidelity for e in search.trials()})
    assert fids == pytest.approx([1 / 3, 1.0]) and sorted(set(calls)) == fids
    assert search.best.fidelity == 1.0 and search.best_value <= 1.0
    full = [e.reward for e in search.trials() if e.fidelity == 1.0]
    assert search.best_value == max(full)


def test_an_objective_without_the_parameter_is_full_fidelity_only(tmp_path):
    from fnas.execution.objective import ObjectiveEvaluator

    space = macro_space()
    spec = space.decode((0,) * 8)
    seen = []
    ev = ObjectiveEvaluator(lambda arch, fidelity: seen.append(fidelity) or 0.5, version=1)
    assert ev.fidelities and ev.evaluate_at(spec, 0, 0.25).fidelity == 0.25 and seen == [0.25]
    plain = ObjectiveEvaluator(lambda arch, seed: 0.5, version=1)
    assert not plain.fidelities and plain.evaluate(spec, 0).fidelity == 1.0
    with pytest.raises(ConfigError, match="full fidelity only .* parameter named fidelity"):
        plain.evaluate_at(spec, 0, 0.5)
    with pytest.raises(ConfigError, match="fidelity"):
        run_search(Store(tmp_path), _cfg(fnas=RUNGS), name="x", evaluator=plain, space=SPACE,
                   progress=False)
