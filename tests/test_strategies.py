"""Random search and regularized evolution: seeding, exact resume, mutation, sample efficiency."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from fnas.errors import ConfigError
from fnas.execution.evaluators import MacroTableEvaluator, SyntheticEvaluator
from fnas.space.factorized import Decision, FactorizedSpace
from fnas.space.macro import macro_space
from fnas.strategies.random_search import RandomSearch
from fnas.strategies.rea import REAConfig, REAStrategy

SPACE = macro_space()
MACRO_TABLE = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nas-bench-macro"
               / "nas-bench-macro_cifar10.json")
SMALL_REA = REAConfig(population=6, sample=3)  # small, so that a few rounds reach the children

# name -> factory(space, seed); every strategy here runs every contract test.
STRATEGIES = {
    "random": lambda space, seed: RandomSearch(space, seed),
    "rea": lambda space, seed: REAStrategy(space, seed, SMALL_REA),
}


def _run(strategy, evaluator, rounds, batch=4):
    """Alternate ask/tell for ``rounds`` rounds; returns every proposal's decisions and logp."""
    out = []
    for _ in range(rounds):
        proposals = strategy.ask(batch)
        strategy.tell(proposals, [evaluator.evaluate(p.spec, 0).reward for p in proposals])
        out += [(p.decisions, p.logp) for p in proposals]
    return out


def queries_to_target(strategy, evaluator, target, cap):
    """Distinct architectures evaluated until the first one in ``target`` (``cap`` if none).

    Sequential ask(1)/tell; a repeated architecture is told its cached reward and costs no query.
    """
    cache = {}
    for _ in range(100 * cap):  # bounds a strategy stuck on repeats
        (p,) = strategy.ask(1)
        key = p.spec.key
        if key not in cache:
            if len(cache) == cap:
                return cap
            if key in target:
                return len(cache) + 1
            cache[key] = evaluator.evaluate(p.spec, 0).reward
        strategy.tell([p], [cache[key]])
    return cap


@pytest.fixture
def synthetic():
    return SyntheticEvaluator(SPACE, (2, 2, 2, 1, 2, 2, 2, 0))


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_seed_same_search_other_seed_other_search(name, synthetic):
    make = STRATEGIES[name]
    a = _run(make(SPACE, 3), synthetic, rounds=6)
    b = _run(make(SPACE, 3), synthetic, rounds=6)
    c = _run(make(SPACE, 4), synthetic, rounds=6)
    assert a == b
    assert a != c


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("k", [1, 3])  # k=1: mid initial population for REA; k=3: evolving
def test_state_round_trip_continues_identically(name, k, synthetic):
    make = STRATEGIES[name]
    s = make(SPACE, 11)
    _run(s, synthetic, rounds=k)
    tensors, meta = s.state()
    assert tensors == {}
    meta = json.loads(json.dumps(meta))
    restored = make(SPACE, 11)
    restored.load_state(tensors, meta)
    assert _run(s, synthetic, rounds=5) == _run(restored, synthetic, rounds=5)


def test_random_search_is_uniform():
    s = RandomSearch(SPACE, 0)
    props = s.ask(3000)
    assert all(p.logp == pytest.approx(-8 * math.log(3)) for p in props)
    assert all(p.spec == SPACE.decode(p.decisions) for p in props)
    counts = np.bincount(np.array([p.decisions for p in props]).ravel(), minlength=3)
    assert np.all(np.abs(counts / counts.sum() - 1 / 3) < 0.02)


def _hamming(a, b):
    return sum(x != y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("space", [
    SPACE,
    # A decision with one choice must never be picked for mutation.
    FactorizedSpace("odd", [Decision("a", (0,)), Decision("b", (0, 1, 2)), Decision("c", (0, 1))],
                    lambda c: tuple(c.values())),
], ids=["macro", "with-fixed-decision"])
def test_rea_child_is_one_mutation_of_a_population_member(space):
    s = REAStrategy(space, 7, SMALL_REA)
    rng = np.random.default_rng(0)
    asked, children = 0, 0
    for _ in range(30):
        population = [d for d, _ in s.population]
        proposals = s.ask(4)  # 4 does not divide 6: one batch mixes random and children
        for p in proposals:
            assert p.spec == space.decode(p.decisions)
            if asked >= SMALL_REA.population:
                children += 1
                assert p.logp is None
                assert any(_hamming(p.decisions, d) == 1 for d in population), p.decisions
            asked += 1
        s.tell(proposals, rng.random(len(proposals)).tolist())
        assert len(s.population) == min(asked, SMALL_REA.population)
    assert children == 30 * 4 - SMALL_REA.population


def test_rea_population_ages_in_order():
    s = REAStrategy(SPACE, 0, SMALL_REA)
    told = []
    for i in range(4):
        proposals = s.ask(3)
        s.tell(proposals, [float(i * 3 + j) for j in range(3)])
        told += [(p.decisions, float(i * 3 + j)) for j, p in enumerate(proposals)]
    assert s.population == told[-SMALL_REA.population:]


def test_rea_falls_back_to_random_while_population_is_empty():
    s = REAStrategy(SPACE, 0, SMALL_REA)
    proposals = s.ask(10)  # more than the initial population, nothing told yet
    assert len(proposals) == 10
    assert all(p.logp == pytest.approx(-8 * math.log(3)) for p in proposals)


def test_rea_tell_rejects_mismatched_rewards():
    s = REAStrategy(SPACE, 0)
    proposals = s.ask(2)
    with pytest.raises(ValueError, match="2 proposals but 1 rewards"):
        s.tell(proposals, [0.5])


@pytest.mark.parametrize("kwargs, field", [
    ({"population": 10, "sample": 1}, "sample"),
    ({"population": 3, "sample": 5}, "sample"),
    ({"population": 10.0, "sample": 3}, "population"),
    ({"population": 10, "sample": True}, "sample"),
])
def test_rea_config_validation(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        REAConfig(**kwargs)


def test_rea_config_defaults_are_valid():
    cfg = REAConfig()
    assert 2 <= cfg.sample <= cfg.population


def test_rea_beats_random_search_on_nas_bench_macro():
    if not MACRO_TABLE.is_file():
        pytest.skip(f"NAS-Bench-Macro table not found at {MACRO_TABLE}; "
                    "see ../shared/data/README.md")
    ev = MacroTableEvaluator(str(MACRO_TABLE))
    target = ev.table.within(0.2)
    assert len(target) == 25
    seeds, cap = range(25), 600
    rea = [queries_to_target(REAStrategy(SPACE, s), ev, target, cap) for s in seeds]
    rnd = [queries_to_target(RandomSearch(SPACE, s), ev, target, cap) for s in seeds]
    p = mannwhitneyu(rea, rnd, alternative="less").pvalue
    assert np.median(rea) < np.median(rnd), (np.median(rea), np.median(rnd))
    assert p < 0.05, (p, np.median(rea), np.median(rnd))


def test_capabilities_not_names_switch_the_buffer_and_the_pool():
    """A strategy opts into replay and the pool by declaring it (issue 33): the config and
    the loop ask its capabilities, never its name."""
    from fnas.search.config import SearchConfig
    from fnas.search.search_run import pool_epochs
    from fnas.strategies import (
        CAPABILITIES,
        STRATEGIES,
        Capabilities,
        capabilities,
        register_strategy,
        replay_config,
    )
    from fnas.strategies.ppo import PPOStrategy

    class Trains:  # what pool_epochs reads of an evaluator
        trains, epochs = True, 4

    def factory(space, cfg):
        return PPOStrategy(space, cfg.seed, cfg.ppo, replay_config(cfg))

    try:
        register_strategy("plain-policy", factory, Capabilities(policy=True))
        register_strategy("lifelong", factory, Capabilities(policy=True, replay=True,
                                                            pool=True))
        register_strategy("no-policy", factory)
        assert capabilities("no-policy") == Capabilities()
        with pytest.raises(ConfigError, match="no policy to replay"):
            SearchConfig(strategy="no-policy", replay="on")
        plain, life = SearchConfig(strategy="plain-policy"), SearchConfig(strategy="lifelong")
        assert replay_config(plain) is None and replay_config(life) is not None
        assert replay_config(SearchConfig(strategy="plain-policy", replay="on")) is not None
        assert pool_epochs(plain, Trains()) is None and pool_epochs(life, Trains()) == 2
        with pytest.raises(ConfigError, match="callable"):
            register_strategy("bad", 3)
    finally:
        for name in ("plain-policy", "lifelong", "no-policy"):
            STRATEGIES.pop(name, None)
            CAPABILITIES.pop(name, None)
