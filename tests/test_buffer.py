"""The experience buffer and its off-policy correction (issue 7)."""

import math
import sqlite3

import numpy as np
import pytest
import torch

from fnas.agent.buffer import ExperienceBuffer, ReplayConfig, correction_weights, decision_weights
from fnas.agent.ppo import PPOConfig, ppo_update
from fnas.errors import ConfigError
from fnas.knowledge import Store
from fnas.search import SearchConfig, SyntheticEvaluator, run_search
from fnas.search.checkpoint import load_checkpoint
from fnas.search.loop import resume_search
from fnas.space import macro_space
from fnas.strategies.base import Proposal
from fnas.strategies.ppo import PPOStrategy

from fast import cli_in_process

SPACE = macro_space()
TARGET = (2, 2, 2, 1, 2, 2, 2, 0)


def _t(*v):
    return torch.tensor(v, dtype=torch.float64)


def test_correction_weight_matches_the_formula_on_hand_computed_cases():
    log = math.log
    # pi_old / mu_b = 0.2 / 0.4 = 0.5: under c_max, kept as is
    # 0.3 / 0.1 = 3: truncated at c_max = 1, or at 2 with c_max = 2
    # 0.25 / 0.25 = 1
    old, beh = _t(log(0.2), log(0.3), log(0.25)), _t(log(0.4), log(0.1), log(0.25))
    assert torch.allclose(correction_weights(old, beh, 1.0), _t(0.5, 1.0, 1.0))
    assert torch.allclose(correction_weights(old, beh, 2.0), _t(0.5, 2.0, 1.0))
    assert torch.equal(correction_weights(old, beh, 1.0, enabled=False), _t(1, 1, 1))
    # Whole architectures: products of ~50 probabilities. Computed in log space, a ratio of
    # e^-700 / e^-705 is e^5 (truncated to 1) and e^-705 / e^-700 is e^-5, not 0/0.
    c = correction_weights(_t(-700.0, -705.0), _t(-705.0, -700.0), 1.0)
    assert torch.allclose(c, _t(1.0, math.exp(-5)))


def _strategy(seed=0, **replay):
    return PPOStrategy(SPACE, seed, PPOConfig(), ReplayConfig(**replay))


class _Ev:  # what observe() reads of an evaluation
    def __init__(self, predicted=False, status="ok"):
        self.predicted, self.status = predicted, status


def _reward(decisions):
    return float(sum(int(d == t) for d, t in zip(decisions, TARGET, strict=True)))


def _step(s, n=8, predicted=()):
    props = s.ask(n)
    s.observe([_Ev(predicted=i in predicted) for i in range(len(props))])
    return props, s.tell(props, [_reward(p.decisions) for p in props])


def test_stale_samples_get_smaller_weights():
    s = _strategy(capacity=512)
    first = s.ask(8)
    mu_b = torch.tensor([p.logp for p in first], dtype=torch.float64)
    acts = torch.tensor([list(p.decisions) for p in first])

    def weights():
        with torch.no_grad():
            lp, _ = s.policy.evaluate(acts)
        return correction_weights(lp.sum(1).double(), mu_b, 1.0)

    c0 = weights()
    assert torch.allclose(c0, torch.ones(8, dtype=torch.float64), atol=1e-5)  # not moved yet
    s.observe([_Ev()] * 8)
    s.tell(first, [_reward(p.decisions) for p in first])  # they enter the buffer
    for _ in range(25):  # the policy moves towards TARGET
        _step(s)
    c_late = weights()
    assert float(c_late.mean()) < 0.5 * float(c0.mean())
    # the ones the policy moved away from the most (worst rewards) are weighted least
    worst = min(range(8), key=lambda i: _reward(first[i].decisions))
    best = max(range(8), key=lambda i: _reward(first[i].decisions))
    assert c_late[worst] <= c_late[best]


def test_per_decision_weights_are_truncated_ratios_and_old_entries_keep_the_whole_one():
    old = torch.log(torch.tensor([[0.5, 0.2, 0.9], [0.5, 0.2, 0.9]], dtype=torch.float64))
    beh = torch.log(torch.tensor([[0.25, 0.4, 0.9], [math.nan] * 3], dtype=torch.float64))
    whole = torch.tensor([0.0, math.log(0.5 * 0.4 * 0.9)], dtype=torch.float64)
    c = decision_weights(old, beh, whole, c_max=1.0)
    assert torch.allclose(c[0], _t(1.0, 0.5, 1.0))  # min(1, 2), 0.5, 1
    # a row stored before per-decision log-probs: its whole ratio 0.09 / 0.18 on every one
    assert torch.allclose(c[1], _t(0.5, 0.5, 0.5))
    assert torch.equal(decision_weights(old, beh, whole, 1.0, enabled=False), torch.ones(2, 3))
    buf = ExperienceBuffer(3)
    buf.add([[0, 1, 2]], [0.5], [-1.0], 0, old[:1])
    state = {k: v for k, v in buf.state().items() if k != "buffer.logp_t"}  # an old checkpoint
    back = ExperienceBuffer(3)
    back.load_state(state)
    assert back.logp_t.shape == (1, 3) and torch.isnan(back.logp_t).all()
    back.load_state(buf.state())
    assert torch.equal(back.logp_t, buf.logp_t)


def test_per_decision_weights_stay_informative_where_the_whole_ratio_collapses():
    """The MnasNet-28 space's 42 decisions; a vanilla-PPO search with replay, 48 samples."""
    from fnas.space.mnas import mnas_space

    space = mnas_space(28)
    target = space.sample(np.random.default_rng(5))
    meds = {}
    for per in (True, False):
        s = PPOStrategy(space, 0, PPOConfig(), ReplayConfig(per_decision=per))
        for _ in range(6):
            props = s.ask(8)
            s.observe([_Ev()] * len(props))
            stats = s.tell(props, [float(np.mean(np.asarray(p.decisions) == target))
                                   for p in props])
        meds[per] = stats
    assert meds[True]["replay/c_decision_p10"] > 0.5  # issue 34's figure: > 0.1 (0.71 here)
    assert meds[True]["replay/c_decision_p50"] > 0.9
    # the whole-architecture ratio has already collapsed for some samples (0.0075 here)
    assert meds[False]["replay/c_min"] < 0.1 < meds[True]["replay/c_min"]


def test_ask_samples_only_the_fresh_share_and_predictions_never_enter():
    s = _strategy(share=0.5)
    props, stats = _step(s, predicted=(0, 1, 2))
    assert len(props) == 8 and "replay/n" not in stats  # empty buffer: all fresh
    assert len(s.buffer) == 5  # 3 predictions stayed out
    logged = {tuple(d) for d in s.buffer.decisions.tolist()}
    assert logged == {props[i].decisions for i in range(3, 8)}
    props, stats = _step(s)
    assert len(props) == 4 and stats["replay/n"] == 4  # 8 = 4 fresh + 4 replayed
    assert len(stats["replay/c"]) == 4 and 0 < stats["replay/c_min"] <= 1
    props, _ = _step(s, n=3)  # floor(3 * 0.5) = 1 replayed
    assert len(props) == 2


def test_buffer_capacity_drops_the_oldest_and_prioritised_sampling_favours_the_best():
    b = ExperienceBuffer(2, ReplayConfig(capacity=4))
    for it in range(3):
        b.add([[it, it], [it, 0]], [float(it), float(it) + 0.5], [-1.0, -2.0], it)
    assert len(b) == 4 and b.iterations.tolist() == [1, 1, 2, 2]
    b = ExperienceBuffer(1, ReplayConfig(capacity=100, sampling="prioritized", alpha=1.0))
    b.add([[i] for i in range(10)], [float(i) for i in range(10)], [0.0] * 10, 0)
    g = torch.Generator().manual_seed(0)
    counts = np.zeros(10)
    for _ in range(400):
        idx = b.sample(3, g)
        assert len(set(idx.tolist())) == 3  # distinct entries within one batch
        counts[idx.numpy()] += 1
    assert counts[9] > 2 * counts[0]  # rank 1 (reward 9) is drawn far more than rank 10
    u = ExperienceBuffer(1, ReplayConfig(capacity=100))
    u.add([[i] for i in range(10)], [float(i) for i in range(10)], [0.0] * 10, 0)
    cu = np.bincount(torch.cat([u.sample(3, g) for _ in range(400)]).numpy(), minlength=10)
    assert cu.min() > 60  # uniform: each about 120


def test_max_age_replays_only_the_newest_updates_entries():
    b = ExperienceBuffer(1, ReplayConfig(max_age=2))
    for it in (0, 1, 2, 4):  # iteration 3 added nothing (all predicted, say): it still counts
        b.add([[it], [it]], [float(it)] * 2, [0.0, 0.0], it)
    assert len(b) == 8 and b.replayable() == 2  # iteration 4's: updates 3 and 4 are the last 2
    assert b.replay_count(16) == 2  # at most what may be replayed
    b.add([[5]] * 2, [5.0] * 2, [0.0] * 2, 5)
    assert b.replayable() == 4 and b.replay_count(16) == 4  # iterations 4 and 5
    g = torch.Generator().manual_seed(0)
    drawn = torch.cat([b.sample(3, g) for _ in range(50)])
    assert set(b.iterations[drawn].tolist()) == {4, 5}
    p = ExperienceBuffer(1, ReplayConfig(max_age=1, sampling="prioritized"))
    p.add([[0]], [9.0], [0.0], 0)  # the best reward, but too old
    p.add([[1], [2]], [1.0, 2.0], [0.0, 0.0], 1)
    assert p.replayable() == 2 and set(p.sample(2, g).tolist()) == {1, 2}
    # None (runs recorded before the setting), every entry may be replayed, drawn as before
    assert ReplayConfig().max_age == 4
    a, old = ExperienceBuffer(1, ReplayConfig(max_age=None)), \
        ExperienceBuffer(1, ReplayConfig(max_age=100))
    for buf in (a, old):
        for it in range(5):
            buf.add([[it]], [float(it)], [0.0], it)
    assert a.replayable() == old.replayable() == 5
    ga, gb = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert a.sample(3, ga).tolist() == old.sample(3, gb).tolist()
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ConfigError, match="max_age"):
            ReplayConfig(max_age=bad)


def test_update_with_replay_lowers_the_weighted_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    s = _strategy()
    for _ in range(3):
        _step(s)
    buf = s.buffer
    idx = torch.arange(len(buf))
    actions = buf.decisions[idx]
    with torch.no_grad():
        old, _ = s.policy.evaluate(actions)
    c = correction_weights(old.sum(1).double(), buf.logp[idx], 1.0).float()
    adv = (buf.rewards[idx] - buf.rewards.mean()).float()

    def loss():
        with torch.no_grad():
            new, _ = s.policy.evaluate(actions)
        ratio = (new - old).exp()
        return float((-(adv.unsqueeze(1) * ratio) * c.unsqueeze(1)).mean())

    before = loss()
    ppo_update(s.policy, s.optimizer, actions, old, adv, PPOConfig(ent_coef=0.0),
               torch.Generator().manual_seed(0), c)
    assert loss() < before - 1e-4


def _search(store, name, budget=40, stop_after=None, replay="on", **replay_cfg):
    ev = SyntheticEvaluator(SPACE, TARGET, noise=0.02)
    cfg = SearchConfig(space="macro", strategy="ppo", budget=budget, batch=8, seed=3,
                       replay=replay, replay_cfg=replay_cfg)
    return run_search(store, cfg, name=name, evaluator=ev, space=SPACE, progress=False,
                      stop_after=stop_after)


def test_buffer_survives_a_resume(tmp_path):
    # prioritised, from the newest 2 updates' entries: both read what the checkpoint holds
    full = _search(Store(tmp_path / "a"), "full", sampling="prioritized", max_age=2)
    store = Store(tmp_path / "b")
    _search(store, "part", stop_after=3, sampling="prioritized", max_age=2)
    tensors, meta = load_checkpoint(store.run_dir("part"))
    assert tensors["buffer.rewards"].numel() == 8 + 4 + 4  # every real result so far
    store.close()
    store = Store(tmp_path / "b")
    ev = SyntheticEvaluator(SPACE, TARGET, noise=0.02)
    done = resume_search(store, "part", evaluator=ev, space=SPACE, progress=False)
    a = [(e.arch_key, e.reward) for e in Store(tmp_path / "a").evaluations(full.experiment.id)]
    b = [(e.arch_key, e.reward) for e in store.evaluations(done.experiment.id)]
    assert a == b  # the same replays, hence the same policy and samples, after the resume
    ua, ub = Store(tmp_path / "a").updates(full.experiment.id), store.updates(done.experiment.id)
    assert len(ua) == len(ub) and all("replay/c" in u for u in ua[1:])
    assert [u["replay/c"] for u in ua[1:]] == [u["replay/c"] for u in ub[1:]]


def test_each_update_is_logged_with_its_replay_weights(tmp_path):
    store = Store(tmp_path)
    out = _search(store, "r", budget=24)
    ups = store.updates(out.experiment.id)
    # 8 fresh, then 4 fresh + 4 replayed per update until 24 samples: 8 + 4 * 4
    assert [u["n_done"] for u in ups] == [8, 12, 16, 20, 24]
    assert "replay/n" not in ups[0] and all(u["replay/n"] == 4 for u in ups[1:])
    assert all("losses/entropy" in u for u in ups)
    assert len(store.evaluations(out.experiment.id)) == 24  # replays are not evaluations
    off = _search(store, "nc", budget=24, correction=False)
    assert all(c == 1.0 for u in store.updates(off.experiment.id)[1:] for c in u["replay/c"])
    vanilla = _search(store, "v", budget=24, replay="off")
    assert [u["n_done"] for u in store.updates(vanilla.experiment.id)] == [8, 16, 24]


def test_bad_replay_settings_are_one_line_errors(tmp_path, capsys):
    for bad in ({"share": 1.0}, {"capacity": 0}, {"sampling": "greedy"}, {"c_max": 0},
                {"shares": 0.5}):
        with pytest.raises(ConfigError):
            SearchConfig(strategy="ppo", replay="on", replay_cfg=bad)
    with pytest.raises(ConfigError, match="no policy"):
        SearchConfig(strategy="rea", replay="on")
    for argv in (["--replay-share", "1.5"], ["--replay", "maybe"], ["--c-max", "-1"],
                 ["--replay-capacity", "0"], ["--replay-max-age", "0"],
                 ["--strategy", "rea", "--replay", "on"]):
        code, _, err = cli_in_process(capsys, "search", "--store", tmp_path / "s", "--task",
                                      "digits", *argv)
        assert code == 2
        assert err.count("\n") == 1 and "Traceback" not in err


def test_a_v2_store_gains_the_updates_table(tmp_path):
    store = Store(tmp_path)
    store.close()
    db = sqlite3.connect(tmp_path / "fnas.db")
    db.execute("DROP TABLE updates")
    db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    db.commit()
    db.close()
    store = Store(tmp_path)
    exp = store.create_experiment("x", "ppo", 0, "s", "t", {}, 8)
    store.add_update(exp.id, 0, {"losses/entropy": 1.5}, n_done=8, n_trained=8)
    assert store.updates(exp.id) == [{"iteration": 0, "n_done": 8, "n_trained": 8,
                                      "losses/entropy": 1.5}]


def test_proposals_carry_the_behaviour_log_prob():
    s = _strategy()
    props = s.ask(4)
    assert all(isinstance(p, Proposal) and p.logp is not None and p.logp < 0 for p in props)
