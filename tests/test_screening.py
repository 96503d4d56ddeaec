"""The fnas strategy's screening (the default): the critic screens candidates and picks what is
trained; acquisition maths, knowledge judged from the first batch, the entropy floor, fallbacks
when candidates run out, the record, and exact resume."""

from types import SimpleNamespace

import numpy as np
import pytest
from tests.fast import FAST_PPO, Toy

from fnas.agent.acquisition import RankGauss, acquire, mutants, rank_gauss
from fnas.agent.ppo import PPOConfig, ppo_update
from fnas.errors import ConfigError
from fnas.execution.evaluators import Evaluator
from fnas.knowledge import Store
from fnas.search import SearchConfig, SyntheticEvaluator, run_search
from fnas.search.loop import resume_search
from fnas.space import macro_space
from fnas.space.factorized import Decision, FactorizedSpace
from fnas.strategies.fnas.screening import ScreenConfig
from fnas.tasks.rollout import RolloutResult

SPACE = macro_space()
TARGET = (2, 2, 2, 1, 2, 2, 2, 0)


def _search(store, name, budget=48, strategy="fnas", knowledge="none", fnas=None, seed=0,
            target=TARGET, noise=0.0, batch=8, space=SPACE, evaluator=None, **kw):
    ev = evaluator or SyntheticEvaluator(space, target, noise=noise)
    cfg = SearchConfig(space="macro", strategy=strategy, budget=budget, batch=batch, seed=seed,
                       budget_counts="trained", max_samples=5 * budget, knowledge=knowledge,
                       fnas=fnas or {}, **kw)
    return run_search(store, cfg, name=name, evaluator=ev, space=space, progress=False)


# ---- the maths ------------------------------------------------------------------------------
def test_rank_gauss_is_rank_based_and_its_map_is_monotone():
    y = np.array([0.1, 0.93, 0.92, 0.94, -50.0])  # a heavy low tail squashes a z-score
    z = rank_gauss(y)
    assert np.argsort(z).tolist() == np.argsort(y).tolist()
    assert z.sum() == pytest.approx(0.0, abs=1e-12)
    assert np.sort(z)[-1] - np.sort(z)[-2] == pytest.approx(np.sort(z)[1] - np.sort(z)[0])
    g = RankGauss(y)
    assert g(y) == pytest.approx(z)
    grid = np.linspace(-60, 2, 200)
    assert np.all(np.diff(g(grid)) > 0)  # extrapolates beyond the set, monotone
    assert g.inverse(g(np.array([0.5, 0.925]))) == pytest.approx([0.5, 0.925])
    assert rank_gauss([1.0, 1.0]).tolist() == [0.0, 0.0] and not RankGauss([1.0, 1.0]).ok


def test_acquisitions_pick_distinct_candidates_by_their_rule():
    rng = np.random.default_rng(0)
    mean = np.array([0.0, 1.0, 0.5, 0.9])
    spread = np.array([2.0, 0.0, 0.1, 0.5])
    idx, score = acquire("ucb", mean, spread, None, 2, rng, kappa=1.0)
    assert idx.tolist() == [0, 3] and score.tolist() == [2.0, 1.4]
    idx, _ = acquire("ucb", mean, spread, None, 2, rng, kappa=0.0)
    assert idx.tolist() == [1, 3]  # kappa 0: the mean alone
    idx, _ = acquire("ei", mean, spread, None, 4, rng, best=1.0)
    assert idx[0] == 0 and idx[-1] == 1  # no spread and no improvement: nothing to expect
    members = np.array([[0, 5, 1, 2], [9, 0, 1, 2.0]])
    idx, score = acquire("ts", mean, spread, members, 4, rng)
    assert sorted(idx.tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="members"):
        acquire("ts", mean, spread, None, 1, rng)



def test_a_registered_acquisition_is_accepted_by_name_and_sees_one_context(tmp_path):
    from fnas.agent import acquisition as acq

    seen = []

    def lowest_spread(ctx):  # a user's acquisition: the most certain candidates first
        seen.append((ctx.k, ctx.members is not None, ctx.kappa))
        return acq.top_k(ctx, -ctx.spread)

    acq.register_acquisition("certain", lowest_spread, members=True)
    try:
        assert list(acq.ACQUISITIONS)[:3] == ["ucb", "ts", "ei"] and acq.needs_members("certain")
        out = _search(Store(tmp_path), "c", budget=16, fnas={"acquisition": "certain"},
                      replay="off")
        assert out.stats["n_trained"] == 16
        assert seen and all(k == 32 and members for k, members, _ in seen)  # 4 x batch
        assert SearchConfig(fnas={"acquisition": "certain"}).fnas.acquisition == "certain"
    finally:
        del acq.ACQUISITIONS["certain"]
        acq._NEEDS_MEMBERS.discard("certain")
    with pytest.raises(ConfigError, match="acquisition='certain'"):
        SearchConfig(fnas={"acquisition": "certain"})
    for bad_name, fn in (("off", lowest_spread), ("", lowest_spread), ("x", 3)):
        with pytest.raises(ConfigError):
            acq.register_acquisition(bad_name, fn)
    with pytest.raises(ValueError, match="unknown acquisition 'certain'"):
        acquire("certain", np.zeros(2), np.ones(2), None, 1, np.random.default_rng(0))

def test_mutants_change_one_or_two_decisions_within_range():
    rng = np.random.default_rng(0)
    parents = np.array([[0, 1, 2, 0], [2, 2, 2, 1]])
    sizes = (3, 3, 3, 2)
    m = mutants(parents, sizes, 500, rng, two_share=0.3)
    assert m.shape == (500, 4) and (m >= 0).all() and (m < np.array(sizes)).all()
    diffs = np.array([min((row != p).sum() for p in parents) for row in m])
    assert set(diffs.tolist()) <= {1, 2} and 0.2 < (diffs == 2).mean() < 0.4


@pytest.mark.slow
def test_the_entropy_floor_holds_the_policy_open():
    import torch

    from fnas.agent.policy import LSTMPolicy

    torch.manual_seed(0)
    pol = LSTMPolicy((3,) * 8)
    opt = torch.optim.Adam(pol.parameters(), lr=3e-2)
    gen = torch.Generator().manual_seed(0)
    cfg = PPOConfig(update_epochs=10)
    target = torch.tensor([2, 2, 2, 1, 2, 2, 2, 0])
    ents = {}
    for floor in (None, 0.6):
        pol.load_state_dict(LSTMPolicy((3,) * 8).state_dict()) if floor else None
        for _ in range(30):
            a, lp = pol.sample(32, gen)
            adv = (a == target).float().mean(1)
            ppo_update(pol, opt, a, lp, adv - adv.mean(), cfg, gen, min_entropy=floor)
        with torch.no_grad():
            ents[floor] = float(pol.evaluate(pol.sample(256, gen)[0])[1].mean())
    assert ents[None] < 0.3  # without a floor the policy collapses onto its favourite
    assert 0.5 < ents[0.6] < 0.8  # with it, it stays near the floor


def test_the_novelty_objective_steers_the_policy_off_what_it_has_seen():
    """Imagined updates reward unseen candidates by their UCB score and give evaluated ones the
    batch's lowest: the policy moves its mass off an evaluated favourite, which the first
    objective (critic mean, unseen candidates only) never does."""
    import torch

    from fnas.agent.critic import CriticConfig
    from fnas.strategies.fnas.screening import ScreeningStrategy

    space = FactorizedSpace("toy4", [Decision(f"d{i}", (0, 1, 2)) for i in range(4)],
                            lambda c: Toy(tuple(c[f"d{i}"] for i in range(4))))
    best = (2, 2, 2, 2)
    grid = np.array(np.meshgrid(*[range(3)] * 4, indexing="ij")).reshape(4, -1).T
    y = (grid == 2).sum(1) + 0.1 * grid.sum(1)  # the critic's favourite: best
    logp_best = {}
    for novelty in (False, True):
        s = ScreeningStrategy(space, 0, PPOConfig(update_epochs=4), CriticConfig(steps=300),
                              ScreenConfig(novelty=novelty, entropy_floor=0.0), "ucb", 2)
        s.critic.add(grid.tolist(), y.tolist())
        s.critic.fit()
        s.observe([SimpleNamespace(decisions=best, arch_key="best", status="ok",
                                   predicted=False)])  # best is now an evaluated architecture
        r = s.imagined_reward(np.array([best, (0, 0, 0, 0), (2, 2, 2, 1)]))
        if novelty:
            assert r[0] == pytest.approx(min(r[1:]))  # seen: the batch's lowest score
        else:
            assert r[0] > r[2] > r[1]  # the critic's mean, seen or not
        gen = torch.Generator().manual_seed(0)
        for _ in range(40):
            a, _ = s.policy.sample(64, gen)
            with torch.no_grad():
                lp, _ = s.policy.evaluate(a)
            m = torch.as_tensor(s.imagined_reward(a.numpy()), dtype=torch.float32)
            ppo_update(s.policy, s.optimizer, a, lp, m - m.mean(), s.cfg, gen)
        with torch.no_grad():
            lp, _ = s.policy.evaluate(torch.tensor([best]))
        logp_best[novelty] = float(lp.sum())
    assert logp_best[False] > np.log(0.3)  # the first objective piles onto the seen favourite
    assert logp_best[True] < logp_best[False] - 1.0  # the novelty objective leaves it


# ---- a search ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_screening_trains_only_unseen_picks_and_records_the_rounds(tmp_path):
    store = Store(tmp_path)
    out = _search(store, "s", budget=48)
    rows = store.evaluations(out.experiment.id)
    assert len(rows) == 48 and all(e.trained for e in rows)  # every sample is a new query
    assert len({e.arch_key for e in rows}) == 48
    ups = store.updates(out.experiment.id)
    assert ups[0]["screen/warmup"] == 1.0 and ups[0]["screen/screened"] == 0
    assert all(u["screen/warmup"] == 0.0 for u in ups[1:])  # n_init = 8 = one batch
    for u in ups[1:]:
        assert u["screen/screened"] > 100  # hundreds scored, eight trained
        assert len(u["screen/pick_mean"]) == 8 and None not in u["screen/pick_mean"]
        scores = u["screen/pick_score"]
        assert scores == sorted(scores, reverse=True)  # UCB order
        kappa = ScreenConfig().kappa
        assert np.allclose(scores, np.array(u["screen/pick_mean"])
                           + kappa * np.array(u["screen/pick_spread"]), atol=1e-4)
        assert set(u["screen/pick_origin"]) <= {"policy", "mutant"}
        assert {"time/fit_ms", "time/score_ms", "time/update_ms", "critic/pick_tau",
                "controller/entropy"} <= set(u)
    screened = sum(u["screen/screened"] for u in ups)
    assert out.stats["last/screen/total_screened"] == screened
    # the picks carry the critic's prediction in reward units, for the record
    assert all(e.predicted_reward is None for e in rows[:8])
    assert all(e.predicted_reward is not None for e in rows[8:])
    assert out.stats["stop_reason"] == "budget"
    assert max(e.reward for e in rows) == 1.0  # the synthetic optimum is found


@pytest.mark.slow
def test_screening_beats_training_the_policys_own_samples(tmp_path):
    """Same seeds: with the critic choosing, the optimum comes in fewer queries than when the
    controller trains what it samples (vanilla PPO): 6 searches of 48 trainings (the critic
    must hit within them; a miss counts as never), 3 seeds each, since one seed could be
    luck."""
    def first_hit(strategy, seed):
        store = Store(tmp_path / f"{strategy}{seed}")
        out = _search(store, "r", budget=48, strategy=strategy, seed=seed)
        rewards = [e.reward for e in store.evaluations(out.experiment.id) if e.trained]
        return next((i for i, r in enumerate(rewards) if r == 1.0), 10 ** 6)

    fnas = [first_hit("fnas", s) for s in range(3)]
    ppo = [first_hit("ppo", s) for s in range(3)]
    assert max(fnas) < 48 and np.median(fnas) < np.median(ppo)


class _ToyEvaluator(Evaluator):
    signature = "toy"

    def evaluate(self, spec, seed):
        acc = sum(spec.bits) / len(spec.bits)
        return RolloutResult(spec.key, spec.key, "ok", "", acc, acc)


@pytest.mark.slow
def test_a_tiny_space_runs_out_of_candidates_gracefully(tmp_path):
    space = FactorizedSpace("toy", [Decision(f"b{i}", (0, 1)) for i in range(3)],
                            lambda c: Toy(tuple(c[f"b{i}"] for i in range(3))))
    store = Store(tmp_path)
    out = _search(store, "t", budget=12, batch=2, space=space, evaluator=_ToyEvaluator(),
                  fnas={"screen": {"n_init": 2, "candidates": 4, "mutants": 0}})
    rows = store.evaluations(out.experiment.id)
    assert len({e.arch_key for e in rows if e.trained}) == 8  # the whole space, once each
    ups = store.updates(out.experiment.id)
    assert any(u.get("screen/fallback_more") for u in ups)  # more samples, then on
    assert ups[-1]["screen/exhausted"] == 1.0  # recorded, and the search stopped, said why
    assert out.stats["stop_reason"] == "exhausted"
    assert out.stats["n_done"] < 5 * 12  # not at its sample cap: nothing new was left


@pytest.mark.slow
def test_frozen_policy_does_not_learn_and_other_acquisitions_run(tmp_path):
    store = Store(tmp_path)
    out = _search(store, "f", budget=24, fnas={"screen": {"policy": "frozen", "mutants": 0}})
    ups = store.updates(out.experiment.id)
    assert all("losses/entropy" not in u for u in ups)
    assert all(o == "policy" for u in ups[1:] for o in u["screen/pick_origin"])
    for acq in ("ts", "ei"):
        out = _search(Store(tmp_path / acq), acq, budget=24, fnas={"acquisition": acq})
        assert out.stats["n_trained"] == 24
    with pytest.raises(ConfigError, match="acquisition"):
        SearchConfig.from_dict({"fnas": {"acquisition": "greedy"}})
    with pytest.raises(ConfigError, match="candidates"):
        SearchConfig.from_dict({"fnas": {"screen": {"candidates": 0}}})
    with pytest.raises(ConfigError, match="candidatez"):
        SearchConfig.from_dict({"fnas": {"screen": {"candidatez": 3}}}, strict=True)


@pytest.mark.slow
def test_a_stopped_screening_search_resumes_exactly(tmp_path):
    ppo = FAST_PPO
    a = Store(tmp_path / "a")
    full = _search(a, "r", budget=32, knowledge="none", noise=0.02, ppo=ppo)
    b = Store(tmp_path / "b")
    cfg = SearchConfig(space="macro", strategy="fnas", budget=32, batch=8, seed=0,
                       budget_counts="trained", max_samples=160, knowledge="none", ppo=ppo)
    ev = SyntheticEvaluator(SPACE, TARGET, noise=0.02)
    run_search(b, cfg, name="r", evaluator=ev, space=SPACE, progress=False, stop_after=2)
    resumed = resume_search(b, "r", evaluator=ev, space=SPACE, progress=False)
    key = lambda e: (e.iteration, e.slot, e.arch_key, e.reward, e.predicted_reward)  # noqa: E731
    assert [key(e) for e in a.evaluations(full.experiment.id)] == \
        [key(e) for e in b.evaluations(resumed.experiment.id)]
