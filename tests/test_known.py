"""What the fnas critic knows before training (issue 34): analytic features, zero-cost proxies,
the reward's known factor composed exactly, the value nets' own targets, and exact resume
with all of it on."""

import math

import numpy as np
import pytest
import torch
from tests.fast import TINY_TASK

from fnas.agent.acquisition import RankGauss, rank_gauss
from fnas.agent.critic import EnsembleCritic
from fnas.errors import StoreError
from fnas.execution.evaluators import Evaluator, ProxyEvaluator
from fnas.knowledge import Store
from fnas.nn.builder import build_model
from fnas.nn.zero_cost import PROXIES, zero_cost
from fnas.search import SearchConfig, run_search
from fnas.search.loop import resume_search
from fnas.space import macro_space
from fnas.space.features import FeatureMap, arch_features, feature_names
from fnas.space.mnas import mnas_default, mnas_space
from fnas.strategies.fnas.known import Known
from fnas.tasks import TaskConfig
from fnas.tasks.reward import RewardConfig, mnas_reward
from fnas.tasks.rollout import RolloutResult

SPACE = macro_space()
TARGET = (2, 2, 2, 1, 2, 2, 2, 0)


class SizedEvaluator(Evaluator):
    """Accuracy: the share of decisions equal to TARGET; cost: a size that grows with the
    choice indices; reward: MnasNet's soft reward on that cost (known before training)."""

    instant = True

    def __init__(self, target_cost=12.0, with_known=True):
        self.reward = RewardConfig("macs", target_cost)
        self.with_known = with_known
        self.signature = f"sized|{target_cost}|{with_known}"

    def _cost(self, spec):
        return 4.0 + sum(int(c) for c in spec.code)

    def evaluate(self, spec, seed):
        d = np.asarray(SPACE.encode(spec))
        acc = float((d == np.asarray(TARGET)).mean())
        cost = self._cost(spec)
        r = mnas_reward(acc, cost, self.reward)
        return RolloutResult(spec.code, spec.key, "ok", "", r, acc, None, int(cost), 1, 0.0,
                             0, seed)

    def known_factor(self, spec):
        return mnas_reward(1.0, self._cost(spec), self.reward) if self.with_known else None

    def features(self, spec):
        return [math.log(self._cost(spec)), float(spec.code.count("0"))]


# ---- features and proxies -------------------------------------------------------------------
def test_arch_features_name_every_value_and_grow_with_the_network():
    space = mnas_space(28)
    spec = mnas_default(28)
    f = arch_features(spec, 28, 1, 10)
    assert len(f) == len(feature_names(len(spec.blocks)))
    wide = space.values(space.encode(spec))
    wide.update({f"b{i}_filters": 1.25 for i in range(7)})
    g = arch_features(space.decode(space.indices(wide)), 28, 1, 10)
    assert g[0] > f[0] and g[1] > f[1]  # more MACs and params


def test_the_feature_map_is_standardised_once_and_deterministic():
    ev = SizedEvaluator()
    a, b = FeatureMap(SPACE, ev.features, seed=3), FeatureMap(SPACE, ev.features, seed=3)
    x = np.stack([SPACE.sample(np.random.default_rng(i)) for i in range(200)])
    fa = a(x)
    assert fa.shape == (200, 2) and np.array_equal(fa, b(x))
    assert abs(fa[:, 0].mean()) < 0.3 and 0.7 < fa[:, 0].std() < 1.3
    assert np.array_equal(a(x[:5]), fa[:5])  # a point's input never changes


def test_zero_cost_proxies_are_finite_and_differ_between_networks():
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    space = mnas_space(28)
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        spec = space.decode(space.sample(np.random.default_rng(seed)))
        out.append(zero_cost(build_model(spec, 1, 10), x, y))
    assert all(set(o) == set(PROXIES) for o in out)
    assert all(v > 0 and math.isfinite(v) for o in out for v in o.values())
    assert out[0]["grad_norm"] != out[1]["grad_norm"]
    with pytest.raises(ValueError, match="unknown zero-cost proxy 'synflow'"):
        zero_cost(build_model(mnas_default(28), 1, 10), x, y, ("synflow",))


# ---- the critic -----------------------------------------------------------------------------
def _points(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([SPACE.sample(rng) for _ in range(n)])


def test_a_critic_with_features_resumes_exactly_and_refuses_another_width(tmp_path):
    ev = SizedEvaluator()
    fmap = FeatureMap(SPACE, ev.features, seed=0)
    x = _points()
    y = rank_gauss([ev.evaluate(SPACE.decode(r), 0).reward for r in x.tolist()])
    c = EnsembleCritic(SPACE.sizes, seed=1, features=fmap, n_features=fmap.size)
    c.add(x, y)
    c.fit()
    tensors, meta = c.state()
    d = EnsembleCritic(SPACE.sizes, seed=1, features=fmap, n_features=fmap.size)
    d.load_state(tensors, meta)
    assert np.array_equal(c.predict(x)[0], d.predict(x)[0])
    c.fit(), d.fit()  # and trains on identically
    assert np.array_equal(c.predict(x)[0], d.predict(x)[0])
    with pytest.raises(StoreError, match="features"):
        EnsembleCritic(SPACE.sizes, seed=1).load_state(tensors, meta)


def test_features_let_the_critic_rank_a_size_driven_reward_from_few_points():
    ev = SizedEvaluator(with_known=False)
    test = _points(300, seed=9)
    truth = np.asarray([ev._cost(SPACE.decode(r)) for r in test.tolist()])
    x = _points(12, seed=2)
    y = rank_gauss([-ev._cost(SPACE.decode(r)) for r in x.tolist()])  # smaller is better
    fmap = FeatureMap(SPACE, ev.features, seed=0)
    taus = []
    for fn in (None, fmap):
        c = EnsembleCritic(SPACE.sizes, seed=0, features=fn, n_features=fmap.size if fn else 0)
        c.add(x, y)
        for _ in range(5):
            c.fit()
        from scipy.stats import spearmanr
        taus.append(spearmanr(c.predict(test)[0], -truth)[0])
    assert taus[1] > taus[0] + 0.1 and taus[1] > 0.9  # measured: 0.95 against 0.77


def test_the_value_nets_learn_their_own_targets():
    x = _points(60)
    y = rank_gauss(np.arange(60.0))
    c = EnsembleCritic(SPACE.sizes, seed=0)
    c.add(x, y)
    c.retarget(y, y + 5.0)
    for _ in range(5):
        c.fit()
    assert abs(c.predict(x)[0].mean() - y.mean()) < 1.0  # reward nets: y
    assert abs(c.prefix_values(x[:4])[:, 0].mean() - (y.mean() + 5.0)) < 1.0  # values: y + 5
    tensors, meta = c.state()
    d = EnsembleCritic(SPACE.sizes, seed=0)
    d.load_state(tensors, meta)
    assert np.array_equal(d.prefix_values(x), c.prefix_values(x))


# ---- decomposition --------------------------------------------------------------------------
def test_the_known_part_is_exact_and_the_composition_inverts_it():
    ev = SizedEvaluator()
    k = Known(SPACE, ev, decompose=True, features="on", seed=0)
    assert k.decomposed and k.features is not None
    x = _points(30)
    res = [ev.evaluate(SPACE.decode(r), 0) for r in x.tolist()]
    own = [(list(r), e.reward) for r, e in zip(x.tolist(), res, strict=True)]
    assert np.allclose(k.own_unknown(own), [e.accuracy for e in res])
    ref = RankGauss([r for _, r in own])
    z_acc = rank_gauss([e.accuracy for e in res])[None]  # a "critic" that is exactly right
    z = k.compose(z_acc, x, own, ref)
    assert np.allclose(z[0], ref([e.reward for e in res]))
    assert not Known(SPACE, SizedEvaluator(with_known=False), decompose=True, features="off",
                     seed=0).active


def test_auto_features_go_to_a_critic_that_learns_the_whole_reward_only():
    with_factor = Known(SPACE, SizedEvaluator(), decompose=True, features="auto", seed=0)
    assert with_factor.decomposed and with_factor.features is None
    without = Known(SPACE, SizedEvaluator(with_known=False), decompose=True, features="auto",
                    seed=0)
    assert not without.decomposed and without.features is not None
    assert Known(SPACE, SizedEvaluator(), decompose=False, features="auto", seed=0).features \
        is not None


def test_the_proxy_tasks_known_factor_is_what_its_training_applies():
    ev = ProxyEvaluator(TaskConfig(**TINY_TASK, epochs=1), RewardConfig("macs", 2e6))
    spec = mnas_space(8).decode(mnas_space(8).sample(np.random.default_rng(0)))
    res = ev.evaluate(spec, 0)
    assert res.status == "ok"
    assert res.reward == pytest.approx(res.accuracy * ev.known_factor(spec), rel=1e-12)
    assert ev.features(spec) == arch_features(spec, ev.input_size, ev.in_chans,
                                              ev.num_classes)
    latency = ProxyEvaluator(TaskConfig(**TINY_TASK, epochs=1), RewardConfig("latency", 5.0))
    assert latency.known_factor(spec) is None  # measured during the evaluation


def _run(store, stop_after=None, **screen):
    cfg = SearchConfig(space="macro", strategy="fnas", budget=32, batch=8, seed=0,
                       budget_counts="trained", max_samples=160,
                       fnas={"screen": {"decompose": True, "features": "on", **screen}})
    return run_search(store, cfg, name="r", evaluator=SizedEvaluator(), space=SPACE,
                      progress=False, stop_after=stop_after)


@pytest.mark.slow
def test_a_decomposed_search_with_features_resumes_exactly(tmp_path):
    """Budget 32 at batch 8: 8 warm-up results, then 3 screened rounds, stopped after 2 (two
    searches and a resume: about 10 s idle)."""
    a = Store(tmp_path / "a")
    full = _run(a)
    b = Store(tmp_path / "b")
    _run(b, stop_after=2)
    resumed = resume_search(b, "r", evaluator=SizedEvaluator(), space=SPACE, progress=False)
    key = lambda e: (e.iteration, e.slot, e.arch_key, e.reward, e.predicted_reward)  # noqa: E731
    rows = [key(e) for e in a.evaluations(full.experiment.id)]
    assert rows == [key(e) for e in b.evaluations(resumed.experiment.id)]
    assert len(rows) == 32 and not math.isnan(rows[-1][4])  # screened picks carry predictions
