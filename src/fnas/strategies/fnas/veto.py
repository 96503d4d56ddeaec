"""The ``fnas`` strategy's veto rule (``FNASConfig.decision_rule='veto'``, the paper's literal
"skip training" decision, kept as an ablation), and its PPO controller alone (critic off).

With the critic on (docs/DESIGN.md, "The veto rule"; the knowledge path is
:mod:`~fnas.strategies.fnas.knowledge`, the screening's too):

- **Decide.** Until the critic is *trusted* every sample is trained. Trusted means: at least
  ``min_real`` real results in this experiment, or a critic pre-trained on earlier experiments
  that passes its *judgement* on this experiment's first ``judge_after`` real results (those
  after the normalisation is fixed). The judgement first calibrates: earlier experiments are
  normalised by their own statistics, which differ from this one's when they sampled another
  region or measured another task, so a Theil-Sen line ``z = a * pred + b`` maps the
  pre-trained predictions onto this experiment's normalised rewards. The critic passes if
  it ranks them (Kendall tau >= ``judge_min_rank`` and a > 0). This experiment is then
  expressed in the knowledge's units (its normalisation becomes ``(mu + b sd, a sd)``, its
  own targets move with it): a scale estimated from hundreds of earlier results instead of
  ``norm_after`` fresh ones, which on heavy-tailed accuracies can be off by 3x. The
  calibrated errors seed the audit window, so tau starts from measured evidence. A critic
  that fails *forgets* its knowledge (``forget_failed_knowledge``): it is rebuilt from this
  experiment's own results and trusted like a critic from scratch.
  Knowledge that misleads therefore costs a few trainings, not the search. Once trusted, a
  sample whose spread is <= tau takes the predicted reward, except that (a) a confident
  sample whose mean + spread beats the best real reward is trained anyway (it may be the
  answer, and a prediction never counts as a result), (b) a fraction
  ``audit_fraction`` of the confident samples is trained anyway (an audit), and (c) after
  ``max_predicted_streak`` predictions in a row the next sample is trained (stall guard).
- **Audit.** The absolute error between prediction and real reward of every audited sample
  (and, before trust, of every trained one) is tracked over a window; tau shrinks (x0.7) when
  the error exceeds ``error_bound`` and grows (x1.1, up to ``tau_max``) when it stays under.
- **Update.** Advantages are per decision: the normalised reward minus the critic's value of
  the prefix before that decision (gamma = 1), replacing the EMA baseline.
- **Learn.** Every real result of this experiment trains the critic (predictions never do);
  earlier experiments' real results pre-train it, each normalised by its own mean and std.

With the experience buffer (``replay``; see ``PPOStrategy``), the update's batch also holds
replayed real results, normalised with the current normalisation and given the critic's
prefix values as baseline like the fresh ones, each weighted by its truncated importance
weight; imagined updates are scaled by the share of new results (``_n_imagined``).

Errors, spreads and tau are in units of this experiment's reward standard deviation,
estimated from its first ``norm_after`` real results and then frozen so that the critic's
targets do not drift. With the critic off this is exactly the vanilla PPO strategy.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fnas.agent.buffer import ReplayConfig
from fnas.agent.critic import EnsembleCritic
from fnas.agent.ppo import PPOConfig, ppo_update
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Proposal, Verdict
from fnas.strategies.fnas.config import DecisionConfig, FNASConfig
from fnas.strategies.fnas.knowledge import (
    FORGET_FITS,
    forget_knowledge,
    judge_knowledge,
    pretrain_critic,
)
from fnas.strategies.fnas.state import FNASState
from fnas.strategies.ppo import PPOStrategy, single_thread

__all__ = ["DecisionConfig", "FNASConfig", "VetoStrategy", "FNASStrategy"]


class VetoStrategy(PPOStrategy):
    """The ``fnas`` strategy with the veto rule: PPO whose decision step can replace trainings
    by confident critic predictions (with the critic off: vanilla PPO)."""

    name = "fnas"

    def __init__(self, space: FactorizedSpace, seed: int, ppo: PPOConfig | None = None,
                 cfg: FNASConfig | None = None, replay: ReplayConfig | None = None) -> None:
        super().__init__(space, seed, ppo, replay)
        self.fcfg = cfg or FNASConfig()
        self.dcfg = self.fcfg.decision
        self.critic = EnsembleCritic(space.sizes, self.fcfg.critic_cfg, seed + 7919)
        self._rng = np.random.default_rng([seed, 7919])
        self.st = FNASState(self.dcfg.tau, deque(maxlen=self.dcfg.error_window))
        """What the decision module has learned (checkpointed as JSON)."""
        self._verdicts: list[Verdict] = []

    # ---- knowledge --------------------------------------------------------------------------
    def pretrain(self, knowledge: Sequence[tuple[Sequence[int], float]]) -> int:
        if not self.fcfg.critic or not knowledge:
            return 0
        pretrain_critic(self.critic, knowledge)
        self.st.pretrained = len(knowledge)
        self.st.knowledge = "pending"
        return self.st.pretrained

    # ---- decision step ----------------------------------------------------------------------
    @property
    def trusted(self) -> bool:
        if not self.fcfg.critic or self.st.norm is None:
            return False
        if self.st.n_real >= self.dcfg.min_real:
            return True
        return self.st.knowledge == "kept" and self.st.n_real >= self.dcfg.min_real_pretrained

    def _to_norm(self, r: float) -> float:
        mu, sd = self.st.norm or (0.0, 1.0)
        return (r - mu) / sd

    def _from_norm(self, z: float) -> float:
        mu, sd = self.st.norm or (0.0, 1.0)
        return z * sd + mu

    def decide(self, proposals: Sequence[Proposal]) -> list[Verdict]:
        if not self.fcfg.critic or self.critic.n_points == 0:
            self._verdicts = [Verdict() for _ in proposals]
            return self._verdicts
        mean, spread = self.critic.predict([list(p.decisions) for p in proposals])
        trusted, st = self.trusted, self.st
        out = []
        sd = (st.norm or (0.0, 1.0))[1]  # verdicts carry reward units (tau is normalised)
        for m, s in zip(mean, spread, strict=True):
            m, s = float(m), float(s)
            shadow = Verdict("train", self._from_norm(m), s * sd)  # its error counts
            if not trusted or s > st.tau:
                out.append(shadow)
                continue
            promising = st.best_real > -math.inf and self._from_norm(m + s) > st.best_real
            if promising or st.streak >= self.dcfg.max_predicted_streak:
                out.append(shadow)
            elif self._rng.random() < self.dcfg.audit_fraction:
                out.append(Verdict("audit", self._from_norm(m), s * sd))
            else:
                out.append(Verdict("predict", self._from_norm(m), s * sd))
            st.streak = st.streak + 1 if out[-1].action == "predict" else 0
        self._verdicts = out
        return out

    def _replay_rewards(self, raw: torch.Tensor) -> torch.Tensor:
        if not self.fcfg.critic or self.critic.n_points == 0 or self.st.norm is None:
            return raw  # the update's fresh rewards are raw too (vanilla PPO's tell)
        mu, sd = self.st.norm  # normalised now: the calibration may have moved it
        return (raw - mu) / sd

    def observe(self, evaluations: Sequence[Any]) -> None:
        super().observe(evaluations)
        st = self.st
        for ev, v in zip(evaluations, self._verdicts or [Verdict()] * len(evaluations),
                         strict=False):
            if ev.predicted:
                st.counts["predicted"] += 1
                continue
            if ev.status != "ok":
                continue
            st.counts["trained"] += int(ev.trained)
            st.counts["audited"] += int(ev.audited)
            st.best_real = max(st.best_real, ev.reward)
            key = tuple(int(d) for d in ev.decisions)
            if key in st.seen:  # a repeat of this run's own result teaches nothing new
                continue
            st.seen.add(key)
            st.n_real += 1
            if v.mean is not None and st.norm is not None and (ev.audited or not self.trusted):
                st.errors.append(abs(self._to_norm(ev.reward) - self._to_norm(v.mean)))
                if st.knowledge == "pending":
                    st.judge_pairs.append((self._to_norm(v.mean), self._to_norm(ev.reward)))
                if ev.audited:
                    self._adapt_tau()
            st.pending_real.append((list(ev.decisions), float(ev.reward)))
        if st.knowledge == "pending" and len(st.judge_pairs) >= self.dcfg.judge_after:
            self._judge_knowledge()
        if st.norm is None and len(st.pending_real) >= self.dcfg.norm_after:
            r = np.array([x for _, x in st.pending_real])
            st.norm = (float(r.mean()), float(max(r.std(), 1e-6)))
        if st.norm is not None and st.pending_real and self.fcfg.critic:
            self.critic.add([d for d, _ in st.pending_real],
                            [self._to_norm(x) for _, x in st.pending_real])
            st.pending_real = []
            with single_thread():
                self.critic.fit()

    def _judge_knowledge(self) -> None:
        """Calibrate a pre-trained critic on this experiment's first real results; keep its
        knowledge if it ranks them, else forget it (see the module docstring)."""
        verdict = judge_knowledge(self.st.judge_pairs, self.dcfg.judge_min_rank, calibrate=True)
        m, z = np.asarray(self.st.judge_pairs, dtype=np.float64).T
        self.st.judge_pairs = []
        if verdict.keep:
            # Express this experiment in the knowledge's units: z = a * m + b, so the new
            # normalisation is (mu + b * sd, a * sd). The pre-trained critic is kept as it is;
            # this experiment's own targets and errors move to the new units.
            slope, intercept = verdict.slope, verdict.intercept
            x, y = self.critic.points()
            mu, sd = self.st.norm
            self.st.norm = (mu + intercept * sd, slope * sd)
            y[self.st.pretrained:] = (y[self.st.pretrained:] - intercept) / slope
            self.critic.retarget(y)
            err = np.abs(slope * m + intercept - z) / slope
            self.st.errors = deque(err.tolist(), maxlen=self.dcfg.error_window)
            self.st.knowledge, self.st.calibration = "kept", (slope, intercept)
            with single_thread():
                self.critic.fit()
            return
        if not self.dcfg.forget_failed_knowledge:
            self.st.knowledge = "failed"  # its points stay in the data; not trusted early
            return
        self.st.knowledge = "forgotten"
        self.critic = forget_knowledge(self.critic, self.st.pretrained)
        self.st.pretrained = 0
        self.st.errors.clear()
        if self.critic.n_points:
            with single_thread():
                for _ in range(FORGET_FITS):
                    self.critic.fit()
        self.st.tau = self.dcfg.tau

    def _adapt_tau(self) -> None:
        err = float(np.mean(self.st.errors))
        if err > self.dcfg.error_bound:
            self.st.tau = max(self.dcfg.tau_min, self.st.tau * 0.7)
        else:
            self.st.tau = min(self.dcfg.tau_max, self.st.tau * 1.1)

    # ---- update -----------------------------------------------------------------------------
    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        if not self.fcfg.critic or self.critic.n_points == 0 or self.st.norm is None:
            stats = super().tell(proposals, rewards)
        else:
            assert self._pending is not None, "tell() without a matching ask()"
            actions, logp = self._pending
            z = torch.tensor([self._to_norm(r) for r in rewards], dtype=torch.float32)
            with single_thread():
                b_actions, b_logp, b_z, b_w, stats = self._with_replay(actions, logp, z)
                values = torch.as_tensor(self.critic.prefix_values(b_actions.numpy()),
                                         dtype=torch.float32)  # (B, T): V(a_<t)
                advantages = b_z.unsqueeze(1) - values
                stats.update(ppo_update(self.policy, self.optimizer, b_actions, b_logp,
                                        advantages, self.cfg, self._gen, b_w))
                for _ in range(self._n_imagined(len(rewards), len(b_z))):
                    self._imagined_update(len(b_z))
            self._end_batch(actions, logp, rewards)
            stats["controller/mean_reward"] = float(np.mean(rewards))
        err = float(np.mean(self.st.errors)) if self.st.errors else float("nan")
        stats.update({"critic/tau": self.st.tau, "critic/audit_error": err,
                      "critic/trusted": float(self.trusted),
                      "critic/knowledge_kept": float(self.st.knowledge == "kept"),
                      "critic/knowledge_forgotten": float(self.st.knowledge == "forgotten"),
                      "critic/points":
                      float(self.critic.n_points), **{f"decide/{k}": float(v)
                                                      for k, v in self.st.counts.items()}})
        return stats

    def _n_imagined(self, n_fresh: int, n_batch: int) -> int:
        """Imagined updates after this real one: ``imagined`` per batch of real queries. With
        replay a batch holds only ``n_fresh`` new results, so there are more updates per real
        query; scaling keeps the imagined updates per real query as configured (unscaled,
        replay + imagined updates collapsed the policy early: benchmarks/README.md)."""
        if not self.trusted or self.fcfg.n_imagined == 0:
            return 0
        return int(round(self.fcfg.n_imagined * n_fresh / n_batch))

    def _imagined_update(self, n: int) -> None:
        """One PPO update on n fresh samples that the critic scores with confidence."""
        actions, logp = self.policy.sample(n, self._gen)
        mean, spread = self.critic.predict(actions.numpy())
        keep = torch.as_tensor(spread <= self.st.tau)
        if int(keep.sum()) < 2:
            return
        actions, logp = actions[keep], logp[keep]
        values = torch.as_tensor(self.critic.prefix_values(actions.numpy()), dtype=torch.float32)
        z = torch.as_tensor(mean[keep.numpy()], dtype=torch.float32)
        ppo_update(self.policy, self.optimizer, actions, logp, z.unsqueeze(1) - values,
                   self.cfg, self._gen)

    # ---- persistence ------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, meta = super().state()
        c_t, c_meta = self.critic.state()
        tensors.update(c_t)  # the critic's own keys all start with "critic."
        meta["fnas"] = {"critic": c_meta, "rng": self._rng.bit_generator.state,
                        **self.st.to_dict()}
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        super().load_state(tensors, meta)
        f = meta["fnas"]
        self.critic.load_state({k: v for k, v in tensors.items() if k.startswith("critic.")},
                               f["critic"])
        self._rng.bit_generator.state = f["rng"]
        self.st = FNASState.from_dict(f, self.dcfg.error_window)


FNASStrategy = VetoStrategy
"""The veto rule's class under its name before issue 33 (when it was called ``fnas``'s)."""
