"""PPO search: learning on a known optimum, the cache, exact resume, checkpoints."""

import numpy as np
import pytest
from tests.fast import FAST_PPO

from fnas.errors import ConfigError, StoreError
from fnas.knowledge import Store
from fnas.search import (
    PPOStrategy,
    SearchConfig,
    SyntheticEvaluator,
    load_checkpoint,
    resume_search,
    run_search,
)
from fnas.search.checkpoint import CHECKPOINT_NAME
from fnas.space import mnas_space

SPACE = mnas_space(8)


def _target(seed=5):
    return SPACE.encode(SPACE.decode(SPACE.sample(np.random.default_rng(seed))))


class CountingEvaluator(SyntheticEvaluator):
    """The synthetic evaluator, counting how many times it really evaluates."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.calls = 0

    def evaluate(self, spec, seed):
        self.calls += 1
        return super().evaluate(spec, seed)


@pytest.mark.parametrize("sizes", [tuple(SPACE.sizes), (3,), (2, 5, 1, 4)])
def test_the_policys_evaluation_at_once_is_its_step_loop(sizes):
    """``evaluate`` (one LSTM call and one product for all heads) gives the step loop's
    log-probabilities, entropies and gradients within float rounding, for decisions of
    unequal sizes (a missing choice's -inf reaches neither value nor gradient)."""
    import torch

    from fnas.agent.policy import LSTMPolicy

    torch.manual_seed(0)
    policy = LSTMPolicy(sizes)
    actions, logp = policy.sample(32, torch.Generator().manual_seed(1))
    grads = []
    for how in ("loop", "at once"):
        policy.zero_grad()
        if how == "loop":
            _, lp, ent = policy._steps(32, actions, None)
        else:
            lp, ent = policy.evaluate(actions)
        (lp.sum() + 0.1 * ent.sum()).backward()
        grads.append([p.grad.clone() for p in policy.parameters() if p.grad is not None])
        torch.testing.assert_close(lp, logp, rtol=0, atol=1e-5)  # sample()'s own
        assert ent.shape == lp.shape == actions.shape and (ent >= 0).all()
        if how == "loop":
            loop_ent = ent.detach()
        else:
            torch.testing.assert_close(ent.detach(), loop_ent, rtol=0, atol=1e-5)
    assert len(grads[0]) == len(grads[1])
    for a, b in zip(*grads, strict=True):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_foreach_optimisers_step_as_the_loop_does():
    """fnas's optimisers run ``foreach`` (one call over all tensors) because it changes how,
    not what, they compute: PPO updates with either give the same policy bit for bit."""
    import torch

    from fnas.agent.policy import LSTMPolicy
    from fnas.agent.ppo import PPOConfig, ppo_update

    params = []
    for foreach in (False, True):
        torch.manual_seed(0)
        policy = LSTMPolicy(SPACE.sizes)
        opt = torch.optim.Adam(policy.parameters(), lr=1e-2, foreach=foreach)
        actions, logp = policy.sample(8, torch.Generator().manual_seed(1))
        adv = torch.linspace(-1, 1, 8)
        ppo_update(policy, opt, actions, logp, adv, PPOConfig(update_epochs=3),
                   torch.Generator().manual_seed(2))
        params.append([p.detach().clone() for p in policy.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*params, strict=True))
    torch.manual_seed(0)  # and the update did move the policy from its initialisation
    start = LSTMPolicy(SPACE.sizes).parameters()
    assert not all(torch.equal(a, b) for a, b in zip(params[0], start, strict=True))


@pytest.mark.slow
def test_ppo_raises_probability_of_known_best():
    target = _target()
    ev = SyntheticEvaluator(SPACE, target)
    strat = PPOStrategy(SPACE, seed=0)
    before = strat.log_prob(target)
    first_mean = None
    for _ in range(30):
        props = strat.ask(8)
        rewards = [ev.evaluate(p.spec, 0).reward for p in props]
        first_mean = first_mean if first_mean is not None else np.mean(rewards)
        strat.tell(props, rewards)
    import torch

    with torch.no_grad():
        a, _ = strat.policy.sample(256, torch.Generator().manual_seed(1))
    # the policy now samples architectures much closer to the optimum than at first
    assert float((a == torch.tensor(target)).float().mean()) > first_mean + 0.2
    assert np.mean(rewards) > first_mean + 0.1
    assert strat.log_prob(max(a.tolist(), key=lambda d: ev.evaluate(SPACE.decode(d), 0)
                              .reward)) > before  # its best sample is likelier than at first


def test_ppo_is_seeded():
    a, b, c = PPOStrategy(SPACE, 1), PPOStrategy(SPACE, 1), PPOStrategy(SPACE, 2)
    assert [p.decisions for p in a.ask(4)] == [p.decisions for p in b.ask(4)]
    assert [p.decisions for p in a.ask(4)] != [p.decisions for p in c.ask(4)]


def _run(store, name, budget=48, stop_after=None, seed=0, ev=None, strategy="ppo",
         replay="auto", **kw):
    ev = ev or CountingEvaluator(SPACE, _target(), noise=0.05)
    cfg = SearchConfig(budget=budget, batch=8, seed=seed, strategy=strategy, replay=replay, **kw)
    out = run_search(store, cfg, name=name, evaluator=ev, space=SPACE, progress=False,
                     stop_after=stop_after)
    return out, ev


@pytest.mark.parametrize("strategy,replay", [("fnas", "auto"), ("fnas", "off"), ("ppo", "off"),
                                             ("ppo", "on"), ("rea", "auto"),
                                             ("random", "auto")])
@pytest.mark.slow
def test_resume_completes_budget_and_matches_uninterrupted(tmp_path, strategy, replay):
    # 4 batches of 8, stopped after 2: fnas screens from its second batch (8 warm-up samples)
    ppo = FAST_PPO
    full, _ = _run(Store(tmp_path / "a"), "full", budget=32, strategy=strategy, replay=replay,
                   ppo=ppo)
    store = Store(tmp_path / "b")
    part, _ = _run(store, "part", budget=32, stop_after=2, strategy=strategy, replay=replay,
                   ppo=ppo)
    # With the experience buffer PPO's second batch is half replayed: 8 + 4; fnas screens and
    # trains a full batch, the replayed results join its update on top.
    replaying = replay == "on" and strategy == "ppo"
    assert part.experiment.status == "stopped"
    assert part.stats["n_done"] == (12 if replaying else 16)
    store.close()
    store = Store(tmp_path / "b")  # a new process would reopen the store like this
    ev = CountingEvaluator(SPACE, _target(), noise=0.05)
    done = resume_search(store, "part", evaluator=ev, space=SPACE, progress=False)
    assert done.experiment.status == "done" and done.stats["n_done"] == 32
    a = [(e.arch_key, e.reward) for e in Store(tmp_path / "a").evaluations(full.experiment.id)]
    b = [(e.arch_key, e.reward) for e in store.evaluations(done.experiment.id)]
    assert a == b  # the resumed search made exactly the decisions of the uninterrupted one


def test_resume_reuses_evaluations_of_the_interrupted_batch(tmp_path):
    store = Store(tmp_path)
    out, _ = _run(store, "r", budget=24, stop_after=1)
    exp = out.experiment
    # Simulate a kill in the middle of iteration 1: record its first 3 slots only.
    strat = PPOStrategy(SPACE, 0)
    tensors, meta = load_checkpoint(store.run_dir("r"))
    strat.load_state(tensors, meta["strategy"])
    props = strat.ask(8)
    ev = CountingEvaluator(SPACE, _target(), noise=0.05)
    from fnas.execution.executors import LocalExecutor
    from fnas.search.loop_state import Timers
    from fnas.search.recording import Recorder
    from fnas.strategies.base import Verdict

    batch = Recorder(store, exp, ev, 0, LocalExecutor(), Timers()).batch(1, props,
                                                                         [Verdict()] * 8)
    assert [next(batch)[0].slot for _ in range(3)] == [0, 1, 2]
    batch.close()  # the kill: slots 3-7 are neither trained nor recorded
    assert ev.calls == 3 and len(store.evaluations(exp.id, 1)) == 3
    ev2 = CountingEvaluator(SPACE, _target(), noise=0.05)
    done = resume_search(store, "r", evaluator=ev2, space=SPACE, progress=False)
    rows = store.evaluations(exp.id)
    assert len(rows) == 24 and done.stats["n_done"] == 24
    assert len({(e.iteration, e.slot) for e in rows}) == 24  # nothing recorded twice
    assert [e.arch_key for e in rows if e.iteration == 1][:3] == [p.spec.key for p in props[:3]]


def test_cache_avoids_retraining(tmp_path):
    store = Store(tmp_path)
    first, ev1 = _run(store, "one", budget=16)
    assert ev1.calls == sum(e.trained for e in store.evaluations(first.experiment.id))
    second, ev2 = _run(store, "two", budget=16)  # same seed: the same 16 architectures
    assert ev2.calls == 0
    rows = store.evaluations(second.experiment.id)
    assert all(e.cached and not e.trained for e in rows)
    firsts = {e.arch_key: e.reward for e in store.evaluations(first.experiment.id)}
    assert all(e.reward == firsts[e.arch_key] for e in rows)


def test_store_reopens_with_all_data(tmp_path):
    out, _ = _run(Store(tmp_path), "keep", budget=16)
    again = Store(tmp_path)
    exp = again.get_experiment("keep")
    assert exp.status == "done" and exp.config["budget"] == 16
    assert again.get_experiment(str(exp.id)).name == "keep"
    rows = again.evaluations(exp.id)
    assert len(rows) == 16 and all(len(e.decisions) == len(SPACE) for e in rows)
    assert rows[0].behaviour_logp is not None and rows[0].created > 0
    assert again.top(exp.id, 3)[0].reward == max(e.reward for e in rows)
    s = again.summary(exp.id)
    assert s["evaluated"] == 16 and s["trained"] + s["cached"] == 16


@pytest.mark.parametrize("content", [b"garbage" * 100, b""])
def test_corrupted_checkpoint_is_one_line_store_error(tmp_path, content):
    store = Store(tmp_path)
    _run(store, "c", budget=16, stop_after=1)
    (store.run_dir("c") / CHECKPOINT_NAME).write_bytes(content)
    with pytest.raises(StoreError) as e:
        resume_search(store, "c", evaluator=CountingEvaluator(SPACE, _target(), noise=0.05),
                      space=SPACE, progress=False)
    assert "corrupted" in str(e.value) and "\n" not in str(e.value)
    assert len(store.evaluations(store.get_experiment("c").id)) == 8  # nothing lost


def test_corrupted_or_foreign_database(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "fnas.db").write_bytes(b"this is not sqlite" * 50)
    with pytest.raises(StoreError, match="unreadable"):
        Store(tmp_path / "bad")
    import sqlite3

    (tmp_path / "other").mkdir()
    con = sqlite3.connect(tmp_path / "other" / "fnas.db")
    con.execute("CREATE TABLE users (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not an fnas store"):
        Store(tmp_path / "other")
    with pytest.raises(StoreError, match="no fnas store"):
        Store(tmp_path / "missing", create=False)


def test_duplicate_run_name_and_changed_task(tmp_path):
    store = Store(tmp_path)
    _run(store, "dup", budget=8)
    with pytest.raises(StoreError, match="already exists"):
        _run(store, "dup", budget=8)
    other = CountingEvaluator(SPACE, _target(seed=6))  # a different task signature
    with pytest.raises(StoreError, match="another space or task"):
        resume_search(store, "dup", budget=16, evaluator=other, space=SPACE, progress=False)


def test_a_search_stops_when_its_seconds_are_spent_and_says_so(tmp_path):
    import time

    from fnas.execution.evaluators import Evaluator
    from fnas.space import macro_space

    space = macro_space()

    class Slow(Evaluator):
        signature = "slow-synthetic"

        def evaluate(self, spec, seed):
            time.sleep(0.05)
            return SyntheticEvaluator(space, (0,) * 8).evaluate(spec, seed)

    store = Store(tmp_path)
    # in this process (eval_isolation 'none'): the limit is checked before each evaluation,
    # so the last batch is cut between two of them (test_timeouts: cut in the middle of one)
    cfg = SearchConfig(space="macro", strategy="random", budget=1000, batch=4,
                       budget_seconds=0.5, eval_isolation="none")
    out = run_search(store, cfg, name="timed", evaluator=Slow(), space=space, progress=False)
    assert out.stats["stop_reason"] == "seconds"
    assert 4 <= len(store.evaluations(out.experiment.id)) < 1000
    assert out.stats["n_done"] <= len(store.evaluations(out.experiment.id))
    assert out.experiment.status == "done"
    with pytest.raises(ConfigError, match="budget_seconds"):
        SearchConfig(budget_seconds=0)


def test_a_space_the_proxy_task_cannot_train_is_refused_before_anything_is_recorded(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ConfigError, match="MacroArch architectures.*fnas bench"):
        run_search(store, SearchConfig(space="macro", budget=2), name="m", progress=False)
    assert store.list_experiments() == []
