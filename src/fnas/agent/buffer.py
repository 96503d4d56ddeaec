"""The experience buffer: real results replayed in later PPO updates, with an off-policy weight.

FNAS's third saving (docs/DESIGN.md, "The experience buffer"). Real results are expensive, so
each one feeds more than one policy update: a share of every PPO batch (default one half) is
replayed from a buffer of earlier *real* results (trained, or served from the cache; never
predicted). Each entry keeps what the correction needs:

- the decision vector and its real reward;
- ``log mu_b(a)``, the log-probability of the whole architecture under the policy that first
  sampled it (the behaviour policy);
- the iteration it came from (its age: only the newest ``max_age`` updates' entries are
  replayed).

A replayed sample's PPO loss is multiplied by the truncated importance weight

    c = min(c_max, pi_old(a) / mu_b(a)),   computed as exp(min(log c_max, log pi_old - log mu_b))

where ``pi_old`` is the policy before this update (the one the PPO ratio is taken against).
A sample the policy has moved away from gets a small weight; truncation at ``c_max`` (1 by
default, as Retrace) bounds the variance. With ``correction=False``, c = 1: replay without the
correction, for the ablation.

The buffer keeps its entries as tensors, so that it is saved in the resumable checkpoint
(safetensors) and a resumed search replays exactly what an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from fnas._limits import check_int
from fnas.errors import ConfigError

__all__ = ["ReplayConfig", "ExperienceBuffer", "correction_weights", "decision_weights"]

SAMPLING = ("uniform", "prioritized")


@dataclass(frozen=True)
class ReplayConfig:
    """Experience replay settings (each switchable on its own for ablations)."""

    share: float = 0.5
    """Share of every PPO batch replayed from the buffer; the rest is freshly sampled (and
    evaluated). 0.5 with batch 8: 4 new architectures and 4 replayed ones per update."""
    capacity: int = 1024
    """Entries kept; the oldest go first."""
    max_age: int | None = 4
    """Replay only entries from the last ``max_age`` updates, counted back from the newest
    entry's (None: every entry kept, as runs recorded before this setting do). The importance
    weight of an entry falls as the policy moves away from the one that drew it; a window of
    recent policies keeps the weights informative (as GePPO's reuse of the last M policies'
    samples, Queeney et al. 2021). PPO's clip (0.2) bounds how far one update moves a
    decision's ratio on its batch, so 4 updates keep the weights where the policy moved
    against an entry near 0.8 ** 4 = 0.41 or above. In updates, not entries, so that it
    means the same at any batch size."""
    sampling: str = "uniform"
    """``uniform``, or ``prioritized``: rank-based, P(i) proportional to rank(i) ** -alpha, the
    best reward ranked 1 (Schaul et al. 2016's rank variant: insensitive to reward scale)."""
    alpha: float = 0.7
    """Prioritisation exponent (``prioritized`` only; 0 is uniform)."""
    correction: bool = True
    """Weight replayed samples by c = min(c_max, pi_old / mu_b); off: c = 1."""
    c_max: float = 1.0
    """Truncation of the importance weight."""
    per_decision: bool = True
    """Truncate per decision: decision t of a replayed sample gets c_t = min(c_max,
    pi_old(a_t | a_<t) / mu_b(a_t | a_<t)) (Retrace / V-trace style; the PPO ratio is per
    decision already). Off: one weight per sample from the whole-architecture ratio, a
    product of T ratios that collapses in a large space (median 1e-29 over the MnasNet
    space's 42 decisions). Runs recorded before this setting existed keep the whole ratio."""

    def __post_init__(self) -> None:
        checks = [(0 <= self.share < 1, "share (in [0, 1))"), (self.capacity >= 1, "capacity"),
                  (self.sampling in SAMPLING, f"sampling (one of {SAMPLING})"),
                  (self.alpha >= 0, "alpha"), (self.c_max > 0, "c_max")]
        for ok, what in checks:
            if not ok:
                name = what.split(" ")[0]
                raise ConfigError(f"replay {name}={getattr(self, name)!r} is out of range: "
                                  f"{what}")
        if self.max_age is not None:  # None: every entry may be replayed
            object.__setattr__(self, "max_age", check_int(self.max_age, "replay max_age", 1))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReplayConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown replay settings {sorted(unknown)}: expected some of "
                              f"{sorted(cls.__dataclass_fields__)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decision_weights(logp_old: torch.Tensor, logp_behaviour: torch.Tensor,
                     logp_whole: torch.Tensor, c_max: float, enabled: bool = True
                     ) -> torch.Tensor:
    """(n, T) per-decision truncated weights c_t = min(c_max, pi_old(a_t) / mu_b(a_t)) from
    per-decision log-probs. A row whose behaviour log-probs are unknown (NaN: an entry stored
    before they were kept) gets its whole-architecture weight on every decision.

    NOTE: unlike the product, per-decision truncation is biased for a reward that depends on
    every decision; it trades that bias for weights that stay informative (issue 34)."""
    if not enabled:
        return torch.ones_like(logp_old)
    c = torch.exp(torch.clamp(logp_old - logp_behaviour, max=math.log(c_max)))
    unknown = torch.isnan(logp_behaviour).any(1)
    if unknown.any():
        whole = correction_weights(logp_old[unknown].sum(1), logp_whole[unknown], c_max)
        c[unknown] = whole.unsqueeze(1).expand(-1, c.shape[1]).to(c.dtype)
    return c


def correction_weights(logp_old: torch.Tensor, logp_behaviour: torch.Tensor, c_max: float,
                       enabled: bool = True) -> torch.Tensor:
    """c = min(c_max, pi_old(a) / mu_b(a)) per sample, from whole-architecture log-probs,
    in log space (the ratio of two products of ~50 probabilities under- or overflows)."""
    if not enabled:
        return torch.ones_like(logp_old)
    return torch.exp(torch.clamp(logp_old - logp_behaviour, max=math.log(c_max)))


class ExperienceBuffer:
    """A FIFO of real results: decisions (N, T), reward, log mu_b and iteration per entry."""

    def __init__(self, num_decisions: int, cfg: ReplayConfig | None = None) -> None:
        self.cfg = cfg or ReplayConfig()
        self.T = int(num_decisions)
        self.decisions = torch.zeros(0, self.T, dtype=torch.long)
        self.rewards = torch.zeros(0, dtype=torch.float64)
        self.logp = torch.zeros(0, dtype=torch.float64)
        self.logp_t = torch.zeros(0, self.T, dtype=torch.float64)  # per decision (NaN: unknown)
        self.iterations = torch.zeros(0, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def add(self, decisions: Sequence[Sequence[int]], rewards: Sequence[float],
            logp_behaviour: Sequence[float], iteration: int,
            logp_decisions: Any = None) -> None:
        """Append real results (oldest entries are dropped beyond the capacity), with their
        whole-architecture behaviour log-probs and, if given, the per-decision ones (n, T)."""
        if not len(rewards):
            return
        d = torch.as_tensor([list(x) for x in decisions], dtype=torch.long).reshape(-1, self.T)
        n = d.shape[0]
        lt = torch.full((n, self.T), math.nan, dtype=torch.float64) if logp_decisions is None \
            else torch.as_tensor(logp_decisions, dtype=torch.float64).reshape(n, self.T)
        self.logp_t = torch.cat([self.logp_t, lt])[-self.cfg.capacity:]
        self.decisions = torch.cat([self.decisions, d])[-self.cfg.capacity:]
        self.rewards = torch.cat([self.rewards, torch.as_tensor(rewards, dtype=torch.float64)]
                                 )[-self.cfg.capacity:]
        self.logp = torch.cat([self.logp, torch.as_tensor(logp_behaviour, dtype=torch.float64)]
                              )[-self.cfg.capacity:]
        self.iterations = torch.cat([self.iterations, torch.full((n,), int(iteration))]
                                    )[-self.cfg.capacity:]

    def replayable(self) -> int:
        """How many entries may be replayed: the newest ones, from the last ``max_age``
        updates counted back from the newest entry's (entries are kept in the order they
        came)."""
        if self.cfg.max_age is None or not len(self):
            return len(self)
        newest = int(self.iterations[-1])
        return int((self.iterations > newest - self.cfg.max_age).sum())

    def replay_count(self, n: int) -> int:
        """How many of a PPO batch of ``n`` to replay: the configured share, at most what may
        be replayed, and never all of it (at least one fresh sample per batch)."""
        return max(0, min(int(math.floor(n * self.cfg.share)), self.replayable(), n - 1))

    def sample(self, k: int, generator: torch.Generator) -> torch.Tensor:
        """``k`` distinct entry indices (uniform or rank-prioritised) among the replayable
        ones, drawn with ``generator``."""
        if k <= 0:
            return torch.zeros(0, dtype=torch.long)
        m = self.replayable()
        first = len(self) - m  # the replayable entries are the newest m
        if self.cfg.sampling == "uniform" or self.cfg.alpha == 0:
            return first + torch.randperm(m, generator=generator)[:k]
        # rank 1 = best reward; ties broken by recency (later entries rank first)
        rewards = self.rewards[first:]
        order = torch.argsort(rewards + 1e-12 * torch.arange(m), descending=True)
        ranks = torch.empty(m, dtype=torch.float64)
        ranks[order] = torch.arange(1, m + 1, dtype=torch.float64)
        p = ranks.pow(-self.cfg.alpha)
        return first + torch.multinomial(p / p.sum(), k, replacement=False, generator=generator)

    # ---- persistence (tensors for the safetensors checkpoint) -------------------------------
    def state(self, prefix: str = "buffer.") -> dict[str, torch.Tensor]:
        return {f"{prefix}decisions": self.decisions, f"{prefix}rewards": self.rewards,
                f"{prefix}logp": self.logp, f"{prefix}iterations": self.iterations,
                f"{prefix}logp_t": self.logp_t}

    def load_state(self, tensors: dict[str, torch.Tensor], prefix: str = "buffer.") -> None:
        self.decisions = tensors[f"{prefix}decisions"].to(torch.long).reshape(-1, self.T)
        self.rewards = tensors[f"{prefix}rewards"].to(torch.float64)
        self.logp = tensors[f"{prefix}logp"].to(torch.float64)
        self.iterations = tensors[f"{prefix}iterations"].to(torch.long)
        lt = tensors.get(f"{prefix}logp_t")  # absent before issue 34: unknown per decision
        self.logp_t = torch.full((len(self.rewards), self.T), math.nan, dtype=torch.float64) \
            if lt is None else lt.to(torch.float64).reshape(-1, self.T)
