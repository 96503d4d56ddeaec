"""The learned cost model (issue 34, part 1): a reward whose cost is measured with the result
(a user objective's ``macs`` or ``latency_ms``, a latency target) is decomposed like one whose
cost is known before training, once the run has measured a few costs."""

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from fnas.execution.objective import ObjectiveEvaluator
from fnas.knowledge import Store
from fnas.search import SearchConfig, run_search
from fnas.search.loop import resume_search
from fnas.space import macro_space
from fnas.space.cost import arch_cost
from fnas.space.mnas import mnas_space
from fnas.strategies.fnas.cost_model import MIN_POINTS, CostModel
from fnas.strategies.fnas.known import Known
from fnas.strategies.settings import with_legacy_defaults
from fnas.tasks.reward import RewardConfig, mnas_reward

MACRO = macro_space()
TARGET = (2, 2, 2, 1, 2, 2, 2, 0)
REWARD = RewardConfig("macs", 12.0)


def _cost(decisions):
    return 4 + 3 * sum(int(d) for d in decisions)


def sized(arch):
    """A user objective on NAS-Bench-Macro's space: accuracy from the decisions, MACs that
    grow with them (known to the objective only, as a training would measure them)."""
    d = np.asarray(MACRO.encode(arch))
    return {"accuracy": float((d == np.asarray(TARGET)).mean()), "macs": _cost(d)}


def own_reward(arch):
    """The same, but the objective returns a reward of its own (not accuracy x cost factor)."""
    return {**sized(arch), "reward": 0.5}


def _results(fn, n, seed=0):
    ev = ObjectiveEvaluator(fn, reward=REWARD)
    rng = np.random.default_rng(seed)
    x = [MACRO.sample(rng) for _ in range(n)]
    return ev, x, [ev.evaluate(MACRO.decode(d), 0) for d in x]


def test_the_cost_model_ranks_the_mnas_spaces_macs_from_a_few_measured_costs():
    space = mnas_space(28)
    model = CostModel(space, ObjectiveEvaluator(lambda arch: 0.5))
    assert model.kind == "size"  # block strings: log MACs and params at 224 x 224
    rng = np.random.default_rng(0)
    x = np.asarray([space.sample(rng) for _ in range(208)])
    macs = np.asarray([arch_cost(space.decode(r), 28, 1, 10).macs for r in x.tolist()])
    model.fit([(r, float(c)) for r, c in zip(x[:8].tolist(), macs[:8], strict=True)])
    assert model.ready
    rho = spearmanr(model.predict(x[8:]), macs[8:])[0]
    assert rho > 0.9, rho  # one-hots alone reach about 0.2 from 8 results


def test_a_dict_objective_is_decomposed_once_costs_are_measured():
    ev, x, res = _results(sized, 12)
    known = Known(MACRO, ev, decompose=True, features="off", seed=0, learn_cost=True)
    assert known.active and known.cost is not None and not known.decomposed
    costs: list = []
    for d, r in zip(x[: MIN_POINTS - 1], res, strict=False):
        assert known.note(r, d, costs)
    assert not known.fit_cost(costs, broken=False)  # too few measured costs yet
    for d, r in zip(x[MIN_POINTS - 1:], res[MIN_POINTS - 1:], strict=True):
        assert known.note(r, d, costs)
    assert known.fit_cost(costs, broken=False)
    own = [(list(d), r.reward) for d, r in zip(x, res, strict=True)]
    assert np.allclose(known.own_unknown(own), [r.accuracy for r in res])  # exact for own
    assert np.allclose(known.factor(np.asarray(x)),
                       [mnas_reward(1.0, _cost(d), REWARD) for d in x])
    fresh = np.asarray([MACRO.sample(np.random.default_rng(9)) for _ in range(3)])
    assert np.isfinite(known.factor(fresh)).all() and (known.factor(fresh) > 0).all()
    # off without a cost target, or without decomposition, or for an old run's setting
    assert Known(MACRO, ObjectiveEvaluator(sized), decompose=True, features="off", seed=0,
                 learn_cost=True).cost is None
    assert Known(MACRO, ev, decompose=False, features="off", seed=0,
                 learn_cost=True).cost is None
    stored = with_legacy_defaults({"fnas": {"screen": {"decompose": True}}})
    assert stored["fnas"]["screen"]["learn_cost"] is False


def test_an_objective_that_returns_its_own_reward_is_never_decomposed():
    ev, x, res = _results(own_reward, 8)
    known = Known(MACRO, ev, decompose=True, features="off", seed=0, learn_cost=True)
    costs: list = []
    assert not known.note(res[0], x[0], costs) and costs == []
    assert not known.fit_cost(costs, broken=True)
    assert known.cost is None and not known.decomposed


def _run(store, stop_after=None):
    cfg = SearchConfig(space="macro", strategy="fnas", budget=32, batch=8, seed=0,
                       budget_counts="trained", max_samples=160, reward=REWARD)
    return run_search(store, cfg, name="r", evaluator=ObjectiveEvaluator(sized, reward=REWARD),
                      space=MACRO, progress=False, stop_after=stop_after)


@pytest.mark.slow
def test_a_search_of_a_dict_objective_decomposes_and_resumes_exactly(tmp_path):
    """Two searches of 32 results and a resume (about 10 s idle)."""
    a = Store(tmp_path / "a")
    full = _run(a)
    assert full.stats["last/critic/decomposed"] == 1.0
    b = Store(tmp_path / "b")
    _run(b, stop_after=2)
    resumed = resume_search(b, "r", evaluator=ObjectiveEvaluator(sized, reward=REWARD),
                            space=MACRO, progress=False)
    key = lambda e: (e.iteration, e.slot, e.arch_key, e.reward, e.predicted_reward)  # noqa: E731
    rows = [key(e) for e in a.evaluations(full.experiment.id)]
    assert rows == [key(e) for e in b.evaluations(resumed.experiment.id)]
    assert len(rows) == 32 and not math.isnan(rows[-1][4])
