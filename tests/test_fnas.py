"""The fnas strategy's veto rule (``decision_rule="veto"``, old spelling ``acquisition="off"``):
critic-driven decisions, flags, ablation, lifelong knowledge; the knowledge path both decision
rules share. Screening (the default) is tested in ``test_screening.py``."""

import numpy as np
import pytest
from tests.fast import FAST_PPO

from fnas.errors import StoreError
from fnas.knowledge import Store
from fnas.search import SearchConfig, SyntheticEvaluator, run_search
from fnas.space import macro_space
from fnas.strategies.fnas.veto import DecisionConfig, FNASConfig, FNASStrategy

SPACE = macro_space()
TARGET = (2, 2, 2, 1, 2, 2, 2, 0)


def _search(store, name, budget=96, noise=0.02, strategy="fnas", knowledge="none", fnas=None,
            seed=0, replay="auto", cap=None):
    ev = SyntheticEvaluator(SPACE, TARGET, noise=noise)
    # the veto rule's bookkeeping is the subject here, not the controller (FAST_PPO)
    cfg = SearchConfig(space="macro", strategy=strategy, budget=budget, batch=8, seed=seed,
                       budget_counts="trained", max_samples=cap or 6 * budget,
                       knowledge=knowledge, ppo=FAST_PPO,
                       fnas={"acquisition": "off", **(fnas or {})}, replay=replay)
    return run_search(store, cfg, name=name, evaluator=ev, space=SPACE, progress=False)


@pytest.mark.slow
def test_decisions_are_flagged_and_predictions_never_count(tmp_path):
    """The veto rule's decisions over up to 48 trained samples, the fewest that leave 24 to
    decide after min_real. Its imagined updates are off (their own test is below: they change
    none of the flags checked here), and the sample cap is 96, not 6 x 48: the controller
    settles on a few architectures whose repeats are served from the cache, and every flag
    (8 predicted, 6 audited) is set within 96 samples (the cap of 288 took 2.3x the time)."""
    store = Store(tmp_path)
    # trusted after min_real = 24: 24 more to decide
    out = _search(store, "f", budget=48, fnas={"imagined": 0}, cap=96)
    rows = store.evaluations(out.experiment.id)
    predicted = [e for e in rows if e.predicted]
    audited = [e for e in rows if e.audited]
    assert predicted and audited, "a trusted critic must predict some and audit some"
    assert all(not e.trained and e.accuracy is None for e in predicted)
    assert all(e.trained for e in audited)
    real_keys = {e.arch_key for e in rows if e.trained}
    assert all(e.arch_key in real_keys for e in store.top(out.experiment.id, 10))
    # Not trusted before min_real real results: the first 24 real ones hold no prediction.
    first = rows[:24]
    assert not any(e.predicted for e in first)
    trained = sum(e.trained for e in rows)
    # the budget is reached (the last batch completes), or the sample cap first
    assert 48 <= trained < 48 + 8 or (trained < 48 and len(rows) >= 96)
    last = out.stats
    distinct_real = {e.arch_key for e in rows if not e.predicted and e.status == "ok"}
    assert last["last/critic/trusted"] == 1.0
    assert last["last/critic/points"] == len(distinct_real)  # repeats are not new points


@pytest.mark.parametrize("replay", ["off", "on"])
@pytest.mark.slow
def test_critic_off_is_vanilla_ppo(tmp_path, replay):
    a = _search(Store(tmp_path / "a"), "a", budget=32, fnas={"critic": False}, replay=replay)
    b = _search(Store(tmp_path / "b"), "b", budget=32, strategy="ppo", replay=replay)
    ka = [e.arch_key for e in Store(tmp_path / "a").evaluations(a.experiment.id)]
    kb = [e.arch_key for e in Store(tmp_path / "b").evaluations(b.experiment.id)]
    assert ka == kb


@pytest.mark.slow
def test_knowledge_pretrains_the_critic_and_earns_trust_sooner(tmp_path):
    """A source search (REA's) and a target search of the veto rule."""
    store = Store(tmp_path)
    # the source only has to leave a search's results: REA's, in a fraction of fnas's time
    src = _search(store, "source", budget=48, noise=0.03, seed=1, strategy="rea")
    # the target's imagined updates change nothing it checks (points, trust): off, as above
    out = _search(store, "target", budget=32, noise=0.02, knowledge="all", fnas={"imagined": 0})
    distinct = {e.arch_key for e in store.evaluations(src.experiment.id)
                if e.status == "ok" and not e.predicted}
    assert out.experiment.stats["knowledge/points"] == len(distinct)  # each architecture once
    assert out.experiment.stats["knowledge/experiments"] == ["source"]
    rows = store.evaluations(out.experiment.id)
    first_pred = next(i for i, e in enumerate(rows) if e.predicted)
    assert sum(e.trained for e in rows[:first_pred]) < 24  # trusted before min_real
    cold = _search(store, "cold", budget=8, noise=0.01, knowledge="none")
    assert cold.experiment.stats["knowledge/points"] == 0
    with pytest.raises(StoreError, match="ghost"):
        _search(store, "bad", budget=16, noise=0.04, knowledge="ghost")


@pytest.mark.slow
def test_misleading_knowledge_is_judged_and_forgotten(tmp_path):
    """A 96-sample source (judgement needs most of the source's architectures) and a
    48-sample target, capped at 96 samples: the judgement comes after 8 of its own results,
    and the cap of 288 served repeats from the cache for twice the time."""
    store = Store(tmp_path)
    # the source optimised the opposite architecture: its ranking is wrong for the target
    ev = SyntheticEvaluator(SPACE, (0,) * 8, noise=0.02)
    cfg = SearchConfig(space="macro", strategy="random", budget=96, batch=8, seed=3,
                       budget_counts="trained", knowledge="none")
    run_search(store, cfg, name="wrong", evaluator=ev, space=SPACE, progress=False)
    out = _search(store, "target", budget=48, knowledge="all", fnas={"imagined": 0}, cap=96)
    assert out.experiment.stats["knowledge/points"] >= 80  # distinct architectures of 96
    assert out.stats["last/critic/knowledge_forgotten"] == 1.0
    assert out.stats["last/critic/knowledge_kept"] == 0.0
    assert out.stats["last/critic/points"] <= 48 + 8  # only this run's own results remain
    rows = store.evaluations(out.experiment.id)
    assert not any(e.predicted for e in rows[:24])  # then trusted only like a cold critic


@pytest.mark.slow
def test_good_knowledge_is_kept_and_recalibrates_the_normalisation(tmp_path):
    """A source search (REA's) and a target search."""
    store = Store(tmp_path)
    _search(store, "source", budget=48, noise=0.03, seed=1, strategy="rea")  # its results
    out = _search(store, "target", budget=32, noise=0.02, knowledge="all", fnas={"imagined": 0})
    assert out.stats["last/critic/knowledge_kept"] == 1.0
    assert out.stats["last/critic/knowledge_forgotten"] == 0.0


def test_knowledge_is_rescored_with_this_searchs_reward(tmp_path):
    from fnas.knowledge.store import Evaluation
    from fnas.search.knowledge import gather_knowledge
    from fnas.tasks.reward import RewardConfig, mnas_reward

    store = Store(tmp_path)
    exp = store.create_experiment("src", "fnas", 0, "s", "t", {"decision_signature": "d"}, 3)
    # the source optimised a FLOPs-penalised reward; its accuracies say something else
    metrics = [(0.90, 10_000_000), (0.93, 80_000_000), (0.91, 40_000_000)]
    flops = RewardConfig("macs", 40e6)
    for i, (acc, macs) in enumerate(metrics):
        store.add_evaluation(Evaluation(
            experiment_id=exp.id, iteration=0, slot=i, arch_key=f"k{i}", arch=f"a{i}",
            decisions=(i,), task_signature="t", reward=mnas_reward(acc, macs, flops),
            status="ok", message="", accuracy=acc, macs=macs, seed=0, trained=True))
    as_rewards, _ = gather_knowledge(store, -1, "d", "all")
    as_acc, names = gather_knowledge(store, -1, "d", "all",
                                     lambda a, lat, m: mnas_reward(a, m, RewardConfig()))
    assert names == ["src"]
    best = lambda kn: max(kn, key=lambda x: x[1])[0]  # noqa: E731
    assert best(as_rewards) == (0,) and best(as_acc) == (1,)
    z = np.array([x for _, x in as_acc])
    # rank-Gaussian scores within the experiment: Phi^-1((rank - 0.5) / n)
    assert z == pytest.approx([-0.9674216, 0.9674216, 0.0], abs=1e-6)
    # a reward needing a metric the run never recorded falls back to its own rewards
    lat = RewardConfig("latency", 5.0)
    kn, _ = gather_knowledge(store, -1, "d", "all", lambda a, la, m: mnas_reward(a, la, lat))
    assert kn == as_rewards


@pytest.mark.slow
def test_imagined_updates_start_only_once_the_critic_is_trusted(tmp_path):
    runs = {}
    for imagined in (0, 4):
        store = Store(tmp_path / str(imagined))
        out = _search(store, "r", budget=32, fnas={"imagined": imagined})  # trusted at 24
        runs[imagined] = [e.arch_key for e in store.evaluations(out.experiment.id)]
    assert runs[0][:24] == runs[4][:24]  # untrusted: the same search, sample for sample
    assert runs[0] != runs[4]  # trusted: the critic's imagined batches moved the policy


def test_prefix_advantages_and_state_round_trip():
    s = FNASStrategy(SPACE, 0, cfg=FNASConfig(decision=DecisionConfig(min_real=8)))
    ev = SyntheticEvaluator(SPACE, TARGET)

    class Row:  # what the loop hands to observe(): the stored evaluation's fields
        def __init__(self, p, r):
            self.decisions, self.reward, self.status = p.decisions, r, "ok"
            self.trained, self.predicted, self.audited = True, False, False

    for _ in range(3):
        props = s.ask(8)
        s.decide(props)
        rewards = [ev.evaluate(p.spec, 0).reward for p in props]
        s.observe([Row(p, r) for p, r in zip(props, rewards, strict=True)])
        stats = s.tell(props, rewards)
    assert stats["critic/points"] == 24 and s.st.norm is not None
    tensors, meta = s.state()
    t = FNASStrategy(SPACE, 0, cfg=FNASConfig(decision=DecisionConfig(min_real=8)))
    t.load_state(tensors, meta)
    pa, pb = s.ask(8), t.ask(8)
    assert [p.decisions for p in pa] == [p.decisions for p in pb]
    va, vb = s.decide(pa), t.decide(pb)
    assert va == vb
    mean, spread = s.critic.predict(np.array([TARGET, (0,) * 8]))
    assert mean[0] > mean[1]  # the critic ranks the known optimum above a poor architecture
    assert t.st == s.st  # the decision state, field by field
    # the checkpoint's JSON is the state's to_dict, beside the critic's and the generator's
    assert set(meta["fnas"]) == {"critic", "rng", *s.st.to_dict()}


def test_decision_state_loads_an_older_checkpoint():
    from fnas.strategies.fnas.state import FNASState

    # a checkpoint written before knowledge judgement existed: four fields missing
    old = {"tau": 0.5, "errors": [0.1, 0.2, 0.3], "pretrained": 12, "n_real": 9,
           "best_real": None, "streak": 2, "norm": [0.5, 0.1], "pending_real": [[[0, 1], 0.4]],
           "counts": {"trained": 9, "predicted": 3, "audited": 1}}
    st = FNASState.from_dict(old, error_window=2)
    assert st.knowledge == "pending" and st.seen == set() and st.judge_pairs == []
    assert st.calibration is None and st.best_real == float("-inf") and st.norm == (0.5, 0.1)
    assert list(st.errors) == [0.2, 0.3] and st.pending_real == [([0, 1], 0.4)]
    assert FNASState.from_dict({**old, "pretrained": 0}, 16).knowledge == "none"
    again = FNASState.from_dict(st.to_dict(), 2)
    assert again == st and again.to_dict()["best_real"] is None
    with pytest.raises(KeyError):
        FNASState.from_dict({k: v for k, v in old.items() if k != "tau"}, 16)


def test_one_fnas_strategy_whose_decision_rule_picks_the_class():
    from fnas.search import STRATEGIES
    from fnas.strategies.fnas import ScreeningStrategy, VetoStrategy

    def built(**fnas):
        return STRATEGIES["fnas"](SPACE, SearchConfig(space="macro", fnas=fnas))

    assert type(built()) is ScreeningStrategy
    assert type(built(decision_rule="veto")) is VetoStrategy is FNASStrategy
    assert type(built(acquisition="off")) is VetoStrategy
    assert type(built(critic=False)) is VetoStrategy  # the controller alone
    assert built(decision_rule="veto").fcfg.n_imagined == 4 and built().imagined == 2


def test_the_shared_knowledge_path_judges_and_forgets():
    from fnas.agent.critic import CriticConfig, EnsembleCritic
    from fnas.strategies.fnas.knowledge import (
        PRETRAIN_FITS,
        forget_knowledge,
        judge_knowledge,
        kendall,
        pretrain_critic,
    )

    ranked = [(0.1 * i, 0.2 * i + 1.0) for i in range(8)]
    backwards = [(a, -b) for a, b in ranked]
    assert judge_knowledge(ranked, 0.0).keep and not judge_knowledge(backwards, 0.0).keep
    calibrated = judge_knowledge(ranked, 0.4, calibrate=True)
    assert calibrated.keep and (calibrated.slope, calibrated.intercept) == \
        pytest.approx((2.0, 1.0))
    assert np.isnan(judge_knowledge(ranked, 0.0).slope)  # no calibration asked
    flat = [(1.0, float(i)) for i in range(8)]
    assert np.isnan(kendall(flat)) and not judge_knowledge(flat, -1.0).keep
    assert np.isnan(kendall(ranked[:2]))

    critic = EnsembleCritic(SPACE.sizes, CriticConfig(members=2, steps=5), seed=11)
    rng = np.random.default_rng(0)
    earlier = [(SPACE.sample(rng), float(i)) for i in range(6)]
    x, y = pretrain_critic(critic, earlier)
    assert critic.n_points == 6 and y == [float(i) for i in range(6)] and PRETRAIN_FITS == 5
    critic.add([SPACE.sample(rng) for _ in range(3)], [0.5, 0.6, 0.7])  # this run's points
    new = forget_knowledge(critic, n_knowledge=6)
    assert new.seed == 12 and new.n_points == 3
    assert new.points()[1].tolist() == pytest.approx([0.5, 0.6, 0.7])
    assert forget_knowledge(critic, n_knowledge=9).n_points == 0
