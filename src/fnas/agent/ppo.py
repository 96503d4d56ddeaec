"""PPO's clipped-surrogate update of the controller (CleanRL ``ppo.py`` layout).

The return of an architecture is its reward at the last decision (gamma = 1), so every
decision of a sample shares the sample's advantage; ratios and clipping are per decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fnas.agent.policy import LSTMPolicy
from fnas.errors import ConfigError

__all__ = ["PPOConfig", "ppo_update"]


@dataclass(frozen=True)
class PPOConfig:
    """Controller optimisation (defaults: MnasNet's Adam lr, CleanRL's PPO constants)."""

    lr: float = 3.5e-4
    """Adam learning rate of the controller."""
    hidden: int = 100
    """LSTM hidden units."""
    clip_coef: float = 0.2
    """PPO ratio clipping epsilon."""
    ent_coef: float = 1e-3
    """Entropy bonus coefficient."""
    update_epochs: int = 10
    """Passes over each batch per update. NOTE: 10, not CleanRL's 4: with one minibatch of
    B = 8 architectures, 4 Adam steps at lr 3.5e-4 leave the policy almost uniform after 200
    samples (179 median queries on NAS-Bench-Macro, about random search's 164); 10 reproduce
    a reference MnasNet PPO's pace (benchmarks/README.md)."""
    num_minibatches: int = 1
    """Minibatches per pass."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    baseline_decay: float = 0.95
    """EMA decay of the reward baseline (vanilla MnasNet PPO)."""
    normalize_advantages: bool = True
    """Divide advantages by the batch's std, as most PPO implementations do.
    NOTE: MnasNet does not say; without it the step size depends on the reward's scale."""

    def __post_init__(self) -> None:
        checks = [(self.lr > 0, "lr"), (self.hidden >= 1, "hidden"),
                  (0 < self.clip_coef < 1, "clip_coef"), (self.ent_coef >= 0, "ent_coef"),
                  (self.update_epochs >= 1, "update_epochs"),
                  (self.num_minibatches >= 1, "num_minibatches"),
                  (0 <= self.baseline_decay < 1, "baseline_decay")]
        for ok, name in checks:
            if not ok:
                raise ConfigError(f"ppo {name}={getattr(self, name)!r} is out of range")


def ppo_update(
    policy: LSTMPolicy,
    optimizer: torch.optim.Optimizer,
    b_actions: torch.Tensor,
    b_logprobs: torch.Tensor,
    b_advantages: torch.Tensor,
    cfg: PPOConfig,
    generator: torch.Generator,
    b_weights: torch.Tensor | None = None,
    min_entropy: float | None = None,
) -> dict[str, float]:
    """One PPO update on a batch: actions (B, T), old log-probs (B, T), advantages (B,) (one
    per sample, shared by its decisions) or (B, T) (per decision, from a critic's baseline).

    ``b_weights`` (B,) or (B, T) multiplies each sample's (or each decision's) loss (the
    truncated importance weight of a replayed sample; 1 for fresh ones). ``min_entropy``
    (nats per decision) is an entropy floor: an epoch that finds the batch's mean entropy
    below it takes a step of pure entropy ascent instead of the clipped surrogate, so the
    policy can keep moving its mass but never collapses below the floor.
    """
    n = b_actions.shape[0]
    if not torch.isfinite(b_advantages).all():  # a step on NaN would ruin the policy for good
        return {"losses/skipped_nonfinite": 1.0}
    if b_weights is None:
        b_weights = torch.ones(n)
    if cfg.normalize_advantages and n > 1:
        b_advantages = b_advantages / (b_advantages.std() + 1e-8)
    mb_size = max(1, n // cfg.num_minibatches)
    clipfracs, stats = [], {}
    for _epoch in range(cfg.update_epochs):
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n, mb_size):
            mb = perm[start:start + mb_size]
            newlogprob, entropy = policy.evaluate(b_actions[mb])  # (mb, T)
            logratio = newlogprob - b_logprobs[mb]
            ratio = logratio.exp()
            mb_adv = b_advantages[mb]
            if mb_adv.dim() == 1:
                mb_adv = mb_adv.unsqueeze(1)  # (mb, 1): one return per sample
            mb_w = b_weights[mb]
            if mb_w.dim() == 1:
                mb_w = mb_w.unsqueeze(1)  # (mb, 1): one weight per sample
            pg_loss1 = -mb_adv * ratio
            pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - cfg.clip_coef, 1 + cfg.clip_coef)
            pg_loss = (torch.max(pg_loss1, pg_loss2) * mb_w).mean()
            entropy_loss = entropy.mean()
            loss = pg_loss - cfg.ent_coef * entropy_loss
            if min_entropy is not None and entropy_loss.item() < min_entropy:
                loss = -entropy_loss  # below the floor: restore entropy first
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm, foreach=True)
            optimizer.step()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfracs.append(((ratio - 1.0).abs() > cfg.clip_coef).float().mean().item())
            stats = {"losses/policy_loss": pg_loss.item(), "losses/entropy": entropy_loss.item(),
                     "losses/approx_kl": approx_kl.item()}
    stats["losses/clipfrac"] = sum(clipfracs) / len(clipfracs)
    return stats
