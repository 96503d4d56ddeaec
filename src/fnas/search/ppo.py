"""Vanilla MnasNet PPO: the LSTM controller, an EMA reward baseline, clipped PPO updates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fnas.agent.policy import LSTMPolicy
from fnas.agent.ppo import PPOConfig, ppo_update
from fnas.agent.threads import single_thread
from fnas.search.checkpoint import load_optimizer_state, optimizer_state
from fnas.search.strategy import Proposal, Strategy
from fnas.space.factorized import FactorizedSpace

__all__ = ["PPOStrategy", "single_thread"]


class PPOStrategy(Strategy):
    """MnasNet's controller: sample B architectures, then one PPO update on their rewards.

    The advantage of a sample is its reward minus an exponential moving average of past batch
    rewards (decay 0.95); the first batch's mean initialises the average.
    """

    name = "ppo"

    def __init__(self, space: FactorizedSpace, seed: int, cfg: PPOConfig | None = None) -> None:
        super().__init__(space, seed)
        self.cfg = cfg or PPOConfig()
        self._gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the controller's own init, the caller's RNG untouched
            self.policy = LSTMPolicy(space.sizes, self.cfg.hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.cfg.lr)
        self.baseline: float | None = None
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    def ask(self, n: int) -> list[Proposal]:
        with single_thread():
            actions, logp = self.policy.sample(n, self._gen)  # (n, T) each
        self._pending = (actions, logp)
        return [Proposal(self.space.decode(a.tolist()), tuple(a.tolist()), float(lp.sum()))
                for a, lp in zip(actions, logp, strict=True)]

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        assert self._pending is not None, "tell() without a matching ask()"
        actions, logp = self._pending
        assert len(rewards) == actions.shape[0], "one reward per asked proposal"
        r = torch.tensor(list(rewards), dtype=torch.float32)
        if self.baseline is None:
            self.baseline = float(r.mean())
        advantages = r - self.baseline
        d = self.cfg.baseline_decay
        self.baseline = d * self.baseline + (1 - d) * float(r.mean())
        with single_thread():
            stats = ppo_update(self.policy, self.optimizer, actions, logp, advantages, self.cfg,
                               self._gen)
        self._pending = None
        stats["controller/baseline"] = self.baseline
        stats["controller/mean_reward"] = float(r.mean())
        return stats

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
        return tensors, {"baseline": self.baseline, "optim": opt_meta}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.policy.load_state_dict({k[len("policy."):]: v for k, v in tensors.items()
                                     if k.startswith("policy.")})
        load_optimizer_state(self.optimizer, "optim", tensors, meta["optim"])
        self._gen.set_state(tensors["rng.torch"])
        self.baseline = meta["baseline"]
