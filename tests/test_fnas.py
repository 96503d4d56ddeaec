"""The fnas strategy: critic-driven decisions, flags, ablation, lifelong knowledge."""

import numpy as np
import pytest

from fnas.errors import StoreError
from fnas.knowledge import Store
from fnas.search import SearchConfig, SyntheticEvaluator, run_search
from fnas.search.fnas_strategy import DecisionConfig, FNASConfig, FNASStrategy
from fnas.space import macro_space

SPACE = macro_space()
TARGET = (2, 2, 2, 1, 2, 2, 2, 0)


def _search(store, name, budget=96, noise=0.02, strategy="fnas", knowledge="none", fnas=None,
            seed=0):
    ev = SyntheticEvaluator(SPACE, TARGET, noise=noise)
    cfg = SearchConfig(space="macro", strategy=strategy, budget=budget, batch=8, seed=seed,
                       budget_counts="trained", max_samples=6 * budget, knowledge=knowledge,
                       fnas=fnas or {})
    return run_search(store, cfg, name=name, evaluator=ev, space=SPACE, progress=False)


def test_decisions_are_flagged_and_predictions_never_count(tmp_path):
    store = Store(tmp_path)
    out = _search(store, "f")
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
    assert 96 <= sum(e.trained for e in rows) < 96 + 8  # the last batch completes
    last = out.stats
    assert last["last/critic/trusted"] == 1.0 and last["last/critic/points"] >= 90


def test_critic_off_is_vanilla_ppo(tmp_path):
    a = _search(Store(tmp_path / "a"), "a", budget=32, fnas={"critic": False})
    b = _search(Store(tmp_path / "b"), "b", budget=32, strategy="ppo")
    ka = [e.arch_key for e in Store(tmp_path / "a").evaluations(a.experiment.id)]
    kb = [e.arch_key for e in Store(tmp_path / "b").evaluations(b.experiment.id)]
    assert ka == kb


def test_knowledge_pretrains_the_critic_and_earns_trust_sooner(tmp_path):
    store = Store(tmp_path)
    _search(store, "source", budget=96, noise=0.03, seed=1)
    out = _search(store, "target", budget=48, noise=0.02, knowledge="all")
    assert out.experiment.stats["knowledge/points"] >= 96
    assert out.experiment.stats["knowledge/experiments"] == ["source"]
    rows = store.evaluations(out.experiment.id)
    first_pred = next(i for i, e in enumerate(rows) if e.predicted)
    assert sum(e.trained for e in rows[:first_pred]) < 24  # trusted before min_real
    cold = _search(store, "cold", budget=48, noise=0.01, knowledge="none")
    assert cold.experiment.stats["knowledge/points"] == 0
    with pytest.raises(StoreError, match="ghost"):
        _search(store, "bad", budget=16, noise=0.04, knowledge="ghost")


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
    assert stats["critic/points"] == 24 and s.norm is not None
    tensors, meta = s.state()
    t = FNASStrategy(SPACE, 0, cfg=FNASConfig(decision=DecisionConfig(min_real=8)))
    t.load_state(tensors, meta)
    pa, pb = s.ask(8), t.ask(8)
    assert [p.decisions for p in pa] == [p.decisions for p in pb]
    va, vb = s.decide(pa), t.decide(pb)
    assert va == vb
    mean, spread = s.critic.predict(np.array([TARGET, (0,) * 8]))
    assert mean[0] > mean[1]  # the critic ranks the known optimum above a poor architecture
