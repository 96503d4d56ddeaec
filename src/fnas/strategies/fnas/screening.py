"""The ``fnas`` strategy's default decision rule (``decision_rule='screen'``): the
uncertainty-aware critic screens candidates and picks what is trained.

One round (docs/DESIGN.md, "Screening"), with B the batch:

1. **Warm-up**: until ``n_init`` real results, B unseen policy samples; with knowledge, none
   (with ``hedge``, uniform picks: a share of the first round, and after a distrust).
2. **Candidates**: policy samples plus mutants of the top own (and knowledge) results, the
   unseen kept; fallbacks (more samples, mutants, uniform) are counted.
3. **Screen**: the critic's mean and spread per candidate, composed with the reward's known
   factor when there is one (:mod:`.known`); the acquisition picks B to train.
4. **Learn**: rank-Gaussian targets of this run's results, recomputed, a warm-started refit.
5. **Controller**: one PPO update on the picks (+ replay), then ``imagined`` updates on the
   round's policy samples rewarded for high, unseen scores (``novelty``); an entropy floor.
6. **Knowledge is weighed** every round (:mod:`.knowledge`, issue 35).

With fidelity rungs (``ScreenConfig.rungs``), promotions take the first slots of a round and
new candidates are trained at the lowest rung (:mod:`.rungs`: the rule, the targets, the
controller's rewards). With zero-cost probes (``ScreenConfig.zero_cost`` = K), a second
critic that also reads the probes of the screen's top K picks the B among them (:mod:`.probes`).

NOTE: the picks are chosen by the critic from the policy's samples, so the PPO update on
them is off-policy in a way no importance weight corrects (their selection probability is
unknown); their log-probabilities at pick time are the ratio's reference and the buffer's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fnas.agent.acquisition import ACQUISITIONS, RankGauss, acquire, needs_members, rank_gauss
from fnas.agent.buffer import ReplayConfig
from fnas.agent.critic import CriticConfig, EnsembleCritic
from fnas.agent.ppo import PPOConfig
from fnas.errors import ConfigError
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Proposal, Verdict
from fnas.strategies.fnas.candidates import Candidates
from fnas.strategies.fnas.controller import Controller
from fnas.strategies.fnas.knowledge import (
    DISTRUST,
    FORGET_FITS,
    Weighing,
    forget_knowledge,
    judge_knowledge,
    kendall,
    pretrain_critic,
)
from fnas.strategies.fnas.known import Known
from fnas.strategies.fnas.probes import Probes
from fnas.strategies.fnas.rungs import Rungs
from fnas.strategies.fnas.screen_config import Round, ScreenConfig, ScreenState
from fnas.strategies.ppo import PPOStrategy, single_thread

__all__ = ["ScreenConfig", "ScreenState", "ScreeningStrategy"]


class ScreeningStrategy(Probes, Rungs, Weighing, Controller, Candidates, PPOStrategy):
    """PPO controller proposes, the ensemble critic screens, the acquisition picks B to train."""

    name = "fnas"

    def __init__(self, space: FactorizedSpace, seed: int, ppo: PPOConfig | None,
                 critic_cfg: CriticConfig, screen: ScreenConfig, acquisition: str,
                 imagined: int, replay: ReplayConfig | None = None) -> None:
        super().__init__(space, seed, ppo, replay)
        if acquisition not in ACQUISITIONS:
            raise ConfigError(f"acquisition {acquisition!r}: expected one of "
                              f"{(*ACQUISITIONS, 'off')}")
        self.scfg, self.acquisition, self.imagined = screen, acquisition, imagined
        self.critic_cfg = critic_cfg
        self.known: Known | None = None  # set by attach(evaluator): what is known
        self.critic = self._new_critic(0)
        self._rng = np.random.default_rng([seed, 7920])
        self.st = ScreenState()
        self._seen: set[tuple[int, ...]] = set()
        self._seen_keys: set[str] = set()
        self._round: Round | None = None
        self._batch: list[Any] = []
        self._refits = 1  # critic fits after this round's results (more after forgetting)
        self._h_uniform = float(np.mean(np.log(np.asarray(space.sizes, dtype=np.float64))))
        self._init_probes()  # zero-cost probes of a shortlist (.probes; off by default)

    def attach(self, evaluator: Any) -> None:
        """Learn what the evaluator knows before training (:mod:`.known`); before any data."""
        if self.scfg.rungs and not getattr(evaluator, "fidelities", False):
            raise ConfigError(f"screen rungs={list(self.scfg.rungs)}: evaluator "
                              f"{type(evaluator).__name__} evaluates at full fidelity only")
        known = Known(self.space, evaluator, decompose=self.scfg.decompose,
                      features=self.scfg.features, seed=self.seed,
                      learn_cost=self.scfg.learn_cost)
        if known.active:  # else the critic stays as before issue 34
            self.known = known
            self.critic = self._new_critic(0)
        self._attach_probes(evaluator)

    def _new_critic(self, generation: int) -> EnsembleCritic:
        fmap = self.known.features if self.known is not None else None
        return EnsembleCritic(self.space.sizes, self.critic_cfg, self.seed + 7919 + generation,
                              features=fmap, n_features=fmap.size if fmap is not None else 0,
                              fidelity=bool(self.scfg.rungs))

    def _score(self, x: np.ndarray, critic: EnsembleCritic | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Mean, spread and member predictions (None unless needed) of candidates ``x`` by
        ``critic`` (None: the main one), in this run's reward scores (composed from the
        accuracy when decomposed: .known)."""
        ref = self._ref()
        mixed = self._mixed(x) if critic is None else None  # weighing knowledge (issue 35)
        critic = critic or self.critic
        if self.known is None or ref is None \
                or not self.known.fit_cost(self.st.costs, self.st.cost_broken):
            if mixed is not None:
                return mixed.mean(0), mixed.std(0, ddof=1), mixed
            mean, spread = critic.predict(x)
            members = critic.predict_members(x) if needs_members(self.acquisition) else None
            return mean, spread, members
        z = self.known.compose(critic.predict_members(x) if mixed is None else mixed, x,
                               self._ref_pairs(), ref)
        return z.mean(0), z.std(0, ddof=1), z

    # ---- knowledge --------------------------------------------------------------------------
    def pretrain(self, knowledge: Sequence[tuple[Sequence[int], float]]) -> int:
        if not knowledge:
            return 0
        x, y = pretrain_critic(self.critic, knowledge)
        top = np.argsort(-np.asarray(y), kind="stable")[: self.scfg.parents]
        self.st.knowledge_parents = [x[int(i)] for i in top]
        self.st.n_knowledge, self.st.knowledge = len(y), "pending"
        return len(y)

    # ---- sampling ---------------------------------------------------------------------------
    @property
    def exhausted(self) -> bool:
        """Every architecture of the space has been evaluated: the last round found no unseen
        candidate even among uniform samples (the search then stops: reason ``exhausted``)."""
        return self.st.exhausted

    @property
    def screened_total(self) -> int:
        return int(self.st.totals.get("screened", 0))

    def fresh_count(self, n: int) -> int:
        return n  # replayed results join the update on top of the B trained picks

    def ask(self, n: int) -> list[Proposal]:
        t0 = time.perf_counter()
        self._pround = {}  # the round's probe records (.probes)
        promos = self._promote(n) if self._laddered else []  # (.rungs) first, then new ones
        n_all, n = n, n - len(promos)
        k = self.buffer.replay_count(n_all) if self.buffer is not None else 0
        self._replay_idx = self.buffer.sample(k, self._gen) if k else None
        x, origin, counts = self._candidates(n)
        warm = self._warm
        ref = self._ref()
        rows: list[int] = []
        info: list[tuple[float, float, float]] = []
        if len(x) and not warm and n:
            mean, spread, members = self._score(x)
            best = float(max(ref(np.asarray([r for _, r in self._ref_pairs()])))) \
                if ref is not None else None
            k = min(len(x), 4 * n)  # room for picks skipped as another vector's network
            order, score = acquire(self.acquisition, mean, spread, members, k, self._rng,
                                   kappa=self.scfg.kappa, best=best)
            cand = [(int(i), (float(mean[i]), float(spread[i]), float(s)))
                    for i, s in zip(order, score, strict=True)]
            taken = set(order.tolist())  # then the rest by mean, should all of those be taken
            cand += [(int(i), (float(mean[i]), float(spread[i]), float(mean[i])))
                     for i in np.argsort(-mean, kind="stable") if int(i) not in taken]
            cand = self._shortlist(x, cand, n, best)  # the probe critic's picks first
        else:  # warm-up: the policy's own order
            cand = [(i, (math.nan, math.nan, math.nan)) for i in range(len(x))]
        specs: list[Any] = []
        hedge = self._hedge(n) if len(x) and not warm and n else 0
        unscreened: list[int] = []  # the hedge's picks (issue 35): warm-up results
        if hedge:  # uniform: the policy has learned from the knowledge's critic already
            x, origin, uni = self._uniform_rows(x, origin, 4 * n)
            self._take(x, cand, n - hedge, rows, specs, info)  # the screened picks first
            k0 = len(rows)
            self._take(x, uni, n, rows, specs, info)
            unscreened = list(range(k0, len(rows)))
        self._take(x, cand, n, rows, specs, info)
        while len(rows) < n:  # the space is exhausted: repeat (served from the cache)
            d = self.st.seen[int(self._rng.integers(len(self.st.seen)))] if self.st.seen \
                else list(self.space.sample(self._rng))
            x = np.concatenate([x, np.asarray([d])])
            origin = np.concatenate([origin, [3]])
            rows.append(len(x) - 1)
            specs.append(self.space.decode(d))
            info.append((math.nan, math.nan, math.nan))
        picks = x[rows]
        fid = [self.scfg.rungs[0] if self._laddered else 1.0] * len(rows)
        if promos:
            picks = np.concatenate([np.asarray([d for d, _, _ in promos], dtype=picks.dtype)
                                    .reshape(-1, picks.shape[1]), picks])
            specs = [self.space.decode(d) for d, _, _ in promos] + specs
            info = [i for _, _, i in promos] + info
            fid = [f for _, f, _ in promos] + fid
        actions = torch.as_tensor(picks, dtype=torch.long)
        with torch.no_grad(), single_thread():
            lp_t, _ = self.policy.evaluate(actions)  # per decision: PPO's ratio reference
        logp = self._logp(picks) if self.scfg.policy == "frozen" else \
            lp_t.sum(1).double().numpy()
        self._pending = (actions, lp_t)
        self._real = None
        counts["screened"] = max(0, len(x) - n) if not warm and n else 0
        if promos:
            counts["promoted"] = len(promos)
        self._round = Round(counts, info, [4] * len(promos) + origin[rows].tolist(),
                            self._drawn[: 4 * self.scfg.imagined_batch] if self.scfg.novelty
                            else x[origin == 0][: 4 * self.scfg.imagined_batch],
                            ref, warm, 1e3 * (time.perf_counter() - t0), fid,
                            [len(promos) + i for i in unscreened])
        return [Proposal(s, tuple(int(v) for v in d), float(lp), f)
                for s, d, lp, f in zip(specs, picks.tolist(), logp, fid, strict=True)]

    def _ref(self) -> RankGauss | None:
        g = RankGauss([r for _, r in self._ref_pairs()])
        return g if g.ok else None

    def decide(self, proposals: Sequence[Proposal]) -> list[Verdict]:
        """Every pick is trained; its verdict carries the critic's mean and spread in reward
        units (through this run's rank-Gaussian map), for the record."""
        rnd = self._round
        ref = rnd.ref if rnd is not None else None
        out = []
        for m, s, _ in rnd.info if rnd is not None else [(math.nan,) * 3] * len(proposals):
            if ref is None or math.isnan(m):
                out.append(Verdict("train"))
                continue
            lo, mid, hi = ref.inverse([m - s, m, m + s])
            out.append(Verdict("train", float(mid), float(max(hi - lo, 0.0) / 2)))
        return out

    # ---- learning ---------------------------------------------------------------------------
    def observe(self, evaluations: Sequence[Any]) -> None:
        super().observe(evaluations)
        for ev in evaluations:
            key = tuple(int(d) for d in ev.decisions)
            if key not in self._seen:
                self._seen.add(key)
                self.st.seen.append(list(key))
            if ev.arch_key not in self._seen_keys:
                self._seen_keys.add(ev.arch_key)
                self.st.seen_keys.append(ev.arch_key)
        self._batch = list(evaluations)

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        assert self._pending is not None, "tell() without a matching ask()"
        actions, logp = self._pending
        rnd, st = self._round, self.st
        assert rnd is not None, "tell() without a matching ask()"
        t0 = time.perf_counter()
        errs: list[float] = []  # per pick: |its target under the round's map - the mean|
        new_x, known = [], {tuple(d) for d, _ in st.own}
        best_before = max((r for _, r in st.own), default=None)
        n_before = self.critic.n_points
        fresh = self._note_results(self._batch) if self._laddered else []
        hedged = []  # per new own result: a hedge's uniform pick (not the knowledge's)
        for j, (ev, (m, _, _)) in enumerate(zip(self._batch, rnd.info, strict=True)):
            errs.append(math.nan)
            if ev.status != "ok" or ev.predicted or getattr(ev, "fidelity", 1.0) < 1.0:
                continue  # a low-fidelity result is no result (its rung's: .rungs)
            if not math.isnan(m):
                st.picks.append((m, float(ev.reward)))
                if st.knowledge == "pending":
                    st.judge.append((m, float(ev.reward)))
                if rnd.ref is not None:
                    errs[-1] = abs(float(rnd.ref(ev.reward)) - m)
            key = tuple(int(d) for d in ev.decisions)
            if key not in known:
                known.add(key)
                st.own.append((list(key), float(ev.reward)))
                new_x.append(list(key))
                hedged.append(j in rnd.unscreened)
                if self.known is not None and not self.known.note(ev, key, st.costs):
                    st.cost_broken = True  # a reward of the objective's own: no cost model
        stats: dict[str, Any] = {}
        if st.knowledge == "pending" and len(st.judge) >= self.scfg.judge_after \
                and self.scfg.knowledge_rule == "judge":
            self._judge(stats)
        if fresh:  # with rungs: every (architecture, fidelity) result is a point
            self.critic.add([d for d, _ in fresh], np.zeros(len(fresh)), [f for _, f in fresh])
        elif new_x and not self._laddered:  # placeholder targets; all own ones recomputed
            self.critic.add(new_x, np.zeros(len(new_x)))
        with single_thread():
            if st.own or st.points:
                x, y = self.critic.points()
                y[st.n_knowledge:] = self._rung_targets(True) if self._laddered else \
                    rank_gauss([r for _, r in st.own])
                vals = None  # the value nets' own targets, when they differ
                if self.known is not None and self.known.fit_cost(st.costs, st.cost_broken):
                    # the critic learns the unknown (the accuracy); the value nets: all
                    yu, vals = y.copy(), y
                    yu[st.n_knowledge:] = self._rung_targets(False) if self._laddered else \
                        rank_gauss(self.known.own_unknown(st.own))
                    self.critic.retarget(yu, y)
                else:
                    self.critic.retarget(y)
                best = max((r for _, r in st.own), default=None)
                # knowledge_rule 'weigh' (issue 35): trust, the points' weights, stagnation
                self._weigh(n_before, best is not None and (best_before is None
                                                            or best > best_before), stats,
                            None if self._laddered else hedged)
                for _ in range(self._refits):
                    stats.update(self.critic.fit())
                stats.update(self._fit_own(vals))
            stats.update(self._probe_learn())
        self._refits = 1
        fit_ms = 1e3 * (time.perf_counter() - t0)
        t0 = time.perf_counter()
        stats.update(self._update(actions, logp, rewards, rnd))
        if self._laddered:
            stats.update(self._rung_stats(rnd.fidelity))
        self._end_batch(actions, logp, rewards)
        upd_ms = 1e3 * (time.perf_counter() - t0)
        if rnd.warm or rnd.unscreened:
            st.n_warm += sum(int(ev.status == "ok") for j, ev in enumerate(self._batch)
                             if rnd.warm or j in rnd.unscreened)
        for k, v in rnd.counts.items():
            st.totals[k] = st.totals.get(k, 0) + int(v)
        st.totals["trained"] = st.totals.get("trained", 0) + sum(
            int(ev.trained) for ev in self._batch)
        tau = kendall(st.picks[-64:])
        stats.update({f"screen/{k}": float(v) for k, v in rnd.counts.items()})
        stats.update({f"screen/total_{k}": float(v) for k, v in st.totals.items()})
        stats.update({
            "screen/pick_mean": [_r(m) for m, _, _ in rnd.info],
            "screen/pick_spread": [_r(s) for _, s, _ in rnd.info],
            "screen/pick_score": [_r(a) for _, _, a in rnd.info],
            "screen/pick_origin": [("policy", "mutant", "uniform", "repeat", "promotion")[o]
                                   for o in rnd.origin],
            "screen/pick_reward": [_r(float(r)) for r in rewards],
            "screen/warmup": float(rnd.warm),
            **({"screen/unscreened": float(len(rnd.unscreened))} if self.scfg.hedge else {}),
            "screen/pick_error": [_r(e) for e in errs],
            "critic/pick_error": float(np.nanmean(errs)) if not np.isnan(errs).all()
            else math.nan,
            "critic/pick_tau": tau, "critic/points": float(self.critic.n_points),
            **({"critic/decomposed": float(self.known.decomposed)} if self.known else {}),
            # knowledge_rule 'weigh': kept while trusted at 0.5 or more (knowledge/trust)
            "critic/knowledge_kept": float(st.knowledge == "kept" or (
                st.knowledge == "weighed" and (st.trust or 0.0) >= DISTRUST)),
            "critic/knowledge_forgotten": float(st.knowledge == "forgotten" or (
                st.knowledge == "weighed" and (st.trust or 0.0) < DISTRUST)),
            "controller/mean_reward": float(np.mean(rewards)),
            "time/score_ms": rnd.score_ms, "time/fit_ms": fit_ms, "time/update_ms": upd_ms})
        self._round, self._batch = None, []
        return stats

    def _judge(self, stats: dict[str, Any]) -> None:
        """Keep a pre-trained critic's knowledge if it ranked its picks, else forget it (the
        caller retargets this run's points and refits the new critic ``FORGET_FITS`` times)."""
        st = self.st
        verdict = judge_knowledge(st.judge, self.scfg.judge_min_rank)
        stats["critic/judge_tau"] = verdict.tau
        st.judge = []
        if verdict.keep:
            st.knowledge = "kept"
            return
        st.knowledge = "forgotten"
        self.critic = forget_knowledge(self.critic, st.n_knowledge,
                                       lambda: self._new_critic(1))
        st.n_knowledge = 0
        self._refits = FORGET_FITS

    # ---- persistence ------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, meta = super().state()
        c_t, c_meta = self.critic.state()
        tensors.update(c_t)
        meta["screen"] = {"critic": c_meta, "rng": self._rng.bit_generator.state,
                          "state": self.st.to_meta()}
        self._probe_state(tensors, meta["screen"])
        self._own_state(tensors, meta["screen"])
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        super().load_state(tensors, meta)
        s = meta["screen"]
        self.critic.load_state({k: v for k, v in tensors.items() if k.startswith("critic.")},
                               s["critic"])
        self._rng.bit_generator.state = s["rng"]
        self.st = ScreenState.from_meta(s["state"])
        self._seen = {tuple(d) for d in self.st.seen}
        self._seen_keys = set(self.st.seen_keys)
        self._load_probe_state(tensors, s)
        self._load_own_state(tensors, s)


def _r(v: float) -> float | None:
    return None if math.isnan(v) else round(float(v), 5)
