"""Vanilla MnasNet PPO: the LSTM controller, an EMA reward baseline, clipped PPO updates; with
an optional experience buffer (``fnas.agent.buffer``) that replays earlier real results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fnas.agent.buffer import ExperienceBuffer, ReplayConfig, correction_weights, decision_weights
from fnas.agent.optim_state import load_optimizer_state, optimizer_state
from fnas.agent.policy import LSTMPolicy
from fnas.agent.ppo import PPOConfig, ppo_update
from fnas.agent.threads import single_thread
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Proposal, Strategy

__all__ = ["PPOStrategy", "PPOStrategyConfig", "single_thread"]


@dataclass(frozen=True)
class PPOStrategyConfig:
    """The ``ppo`` strategy's settings (``SearchConfig.strategy_config``; in a config file and
    a stored run, the ``[ppo]`` and ``[replay_cfg]`` tables)."""

    ppo: PPOConfig = PPOConfig()
    """The controller's optimisation."""
    replay_cfg: ReplayConfig = ReplayConfig()
    """The experience buffer's settings, used with ``SearchConfig.replay='on'``."""


class PPOStrategy(Strategy):
    """MnasNet's controller: sample B architectures, then one PPO update on their rewards.

    The advantage of a sample is its reward minus an exponential moving average of past batch
    rewards (decay 0.95); the first batch's mean initialises the average.

    With ``replay`` (an experience buffer), ``ask(n)`` samples only the fresh part of a batch of
    n; the rest of the update's batch is replayed from the buffer of earlier real results, each
    weighted by the truncated importance weight c (see ``fnas.agent.buffer``). The EMA
    baseline follows the fresh samples only (it estimates the current policy's reward).
    """

    name = "ppo"

    def __init__(self, space: FactorizedSpace, seed: int, cfg: PPOConfig | None = None,
                 replay: ReplayConfig | None = None) -> None:
        super().__init__(space, seed)
        self.cfg = cfg or PPOConfig()
        self.buffer = ExperienceBuffer(len(space.sizes), replay) if replay is not None else None
        self.iteration = 0
        self._replay_idx: torch.Tensor | None = None
        self._real: list[bool] | None = None
        self._gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the controller's own init, the caller's RNG untouched
            self.policy = LSTMPolicy(space.sizes, self.cfg.hidden)
        # foreach: one call per operation over the policy's 86 tensors (MnasNet space), not a
        # Python loop; the same values bit for bit on the CPU (agent/optim_state.py)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.cfg.lr,
                                          foreach=True)
        self.baseline: float | None = None
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    def fresh_count(self, n: int) -> int:
        return n - (self.buffer.replay_count(n) if self.buffer is not None else 0)

    def ask(self, n: int) -> list[Proposal]:
        """The fresh part of a batch of ``n``: all of it without a buffer, else ``n`` minus
        the replayed share (chosen here, so that a resumed search replays the same ones)."""
        k = self.buffer.replay_count(n) if self.buffer is not None else 0
        self._replay_idx = self.buffer.sample(k, self._gen) if k else None
        with single_thread():
            actions, logp = self.policy.sample(n - k, self._gen)  # (n - k, T) each
        self._pending = (actions, logp)
        self._real = None
        return [Proposal(self.space.decode(a.tolist()), tuple(a.tolist()), float(lp.sum()))
                for a, lp in zip(actions, logp, strict=True)]

    def observe(self, evaluations: Sequence[Any]) -> None:
        """Remember which of the batch are real full-fidelity results: only those enter the
        buffer."""
        self._real = [ev.status == "ok" and not ev.predicted
                      and getattr(ev, "fidelity", 1.0) >= 1.0 for ev in evaluations]

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        assert self._pending is not None, "tell() without a matching ask()"
        actions, logp = self._pending
        assert len(rewards) == actions.shape[0], "one reward per asked proposal"
        r = torch.tensor(list(rewards), dtype=torch.float32)
        if self.baseline is None:
            self.baseline = float(r.mean())
        baseline = self.baseline
        d = self.cfg.baseline_decay
        self.baseline = d * self.baseline + (1 - d) * float(r.mean())
        with single_thread():
            b_actions, b_logp, b_r, b_w, stats = self._with_replay(actions, logp, r)
            stats.update(ppo_update(self.policy, self.optimizer, b_actions, b_logp,
                                    b_r - baseline, self.cfg, self._gen, b_w))
        self._end_batch(actions, logp, rewards)
        stats["controller/baseline"] = self.baseline
        stats["controller/mean_reward"] = float(r.mean())
        return stats

    # ---- experience replay ------------------------------------------------------------------
    def _with_replay(self, actions: torch.Tensor, logp: torch.Tensor, rewards: torch.Tensor,
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                dict[str, Any]]:
        """The update's batch: the fresh samples (weight 1) followed by the replayed ones,
        whose old log-probs are the current policy's (the PPO ratio's reference) and whose
        weights are the truncated importance weights. ``rewards`` are in the caller's units;
        replayed rewards come back raw (``_replay_rewards`` maps them)."""
        n = actions.shape[0]
        w = torch.ones(n)
        if self._replay_idx is None or self.buffer is None:
            return actions, logp, rewards, w, {}
        buf, idx = self.buffer, self._replay_idx
        r_actions = buf.decisions[idx]
        with torch.no_grad():
            r_logp, _ = self.policy.evaluate(r_actions)  # pi_old: the policy before this update
        if buf.cfg.per_decision:  # (k, T): one truncated weight per decision
            c_t = decision_weights(r_logp.double(), buf.logp_t[idx], buf.logp[idx],
                                   buf.cfg.c_max, buf.cfg.correction).float()
            c, w = c_t.mean(1), w.unsqueeze(1).expand(-1, c_t.shape[1])
        else:
            c = correction_weights(r_logp.sum(1).double(), buf.logp[idx], buf.cfg.c_max,
                                   buf.cfg.correction).float()
            c_t = c
        r_rewards = self._replay_rewards(buf.rewards[idx].float())
        age = (self.iteration - buf.iterations[idx]).float()
        qs = torch.quantile(c, torch.tensor([0.1, 0.5, 0.9])).tolist()
        stats: dict[str, Any] = {
            "replay/n": float(len(idx)), "replay/size": float(len(buf)),
            "replay/c_mean": float(c.mean()), "replay/c_min": float(c.min()),
            "replay/c_p10": qs[0], "replay/c_p50": qs[1], "replay/c_p90": qs[2],
            "replay/c_truncated": float((c >= buf.cfg.c_max * (1 - 1e-6)).float().mean()),
            "replay/age_mean": float(age.mean()),
            "replay/c": [round(float(x), 6) for x in c],  # the whole distribution, per update
        }
        if buf.cfg.per_decision:  # c above: each sample's mean over its decisions
            dq = torch.quantile(c_t.reshape(-1), torch.tensor([0.1, 0.5])).tolist()
            stats.update({"replay/c_decision_p10": dq[0], "replay/c_decision_p50": dq[1]})
        return (torch.cat([actions, r_actions]), torch.cat([logp, r_logp]),
                torch.cat([rewards, r_rewards]), torch.cat([w, c_t]), stats)

    def _replay_rewards(self, raw: torch.Tensor) -> torch.Tensor:
        """Replayed rewards in the units the update uses (raw for vanilla PPO)."""
        return raw

    def _end_batch(self, actions: torch.Tensor, logp: torch.Tensor,
                   rewards: Sequence[float]) -> None:
        """After the update: the batch's real results enter the buffer."""
        if self.buffer is not None:
            real = self._real if self._real is not None else [True] * len(rewards)
            keep = [i for i, ok in enumerate(real) if ok]
            self.buffer.add(actions[keep].tolist(), [float(rewards[i]) for i in keep],
                            logp[keep].sum(1).double().tolist(), self.iteration,
                            logp[keep].double())
        self.iteration += 1
        self._pending = None
        self._replay_idx = None
        self._real = None

    def log_prob(self, decisions: Sequence[int]) -> float:
        """log pi(decisions) under the current policy."""
        with torch.no_grad(), single_thread():
            logp, _ = self.policy.evaluate(torch.tensor([list(decisions)]))
        return float(logp.sum())

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"policy.{k}": v for k, v in self.policy.state_dict().items()}
        opt_t, opt_meta = optimizer_state(self.optimizer, "optim")
        tensors.update(opt_t)
        tensors["rng.torch"] = self._gen.get_state()
        if self.buffer is not None:
            tensors.update(self.buffer.state())
        return tensors, {"baseline": self.baseline, "optim": opt_meta,
                         "iteration": self.iteration}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.policy.load_state_dict({k[len("policy."):]: v for k, v in tensors.items()
                                     if k.startswith("policy.")})
        load_optimizer_state(self.optimizer, "optim", tensors, meta["optim"])
        self._gen.set_state(tensors["rng.torch"])
        self.baseline = meta["baseline"]
        self.iteration = int(meta.get("iteration", 0))
        if self.buffer is not None and "buffer.rewards" in tensors:
            self.buffer.load_state(tensors)
