"""The screening strategy's controller updates (a mixin of
:class:`~fnas.strategies.fnas.screening.ScreeningStrategy`): one PPO update on the round's
trained picks (+ replay), with the critic's prefix values as the per-decision baseline, then
the imagined updates on the round's policy samples (docs/DESIGN.md, "Screening")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fnas.agent.ppo import ppo_update
from fnas.strategies.ppo import single_thread

if TYPE_CHECKING:
    from fnas.agent.critic import EnsembleCritic
    from fnas.strategies.fnas.screen_config import Round, ScreenConfig

__all__ = ["Controller"]


class Controller:
    """The controller methods of the screening strategy (they use its policy, optimiser,
    critic, settings, scores and run's reward map)."""

    scfg: ScreenConfig
    critic: EnsembleCritic
    imagined: int
    _batch: list[Any]
    _seen: set[tuple[int, ...]]
    _h_uniform: float

    def _values(self, x: Any) -> Any:
        raise NotImplementedError  # .knowledge (Weighing): the critics' prefix values

    def _update(self, actions: torch.Tensor, logp: torch.Tensor, rewards: Sequence[float],
                rnd: Round) -> dict[str, Any]:
        """PPO on the trained picks (+ replay), then imagined updates; entropy held."""
        if self.scfg.policy == "frozen":
            return {}
        ref = self._ref()
        z = torch.as_tensor(np.zeros(len(rewards)) if ref is None else self._controller_z(
            self._batch, actions.numpy(), ref) if self._laddered else ref(np.asarray(rewards)),
                            dtype=torch.float32)
        cfg = self.cfg
        with single_thread():
            b_actions, b_logp, b_z, b_w, stats = self._with_replay(actions, logp, z)
            values = torch.as_tensor(self._values(b_actions.numpy()),
                                     dtype=torch.float32)  # (B, T): V(a_<t)
            adv = b_z.unsqueeze(1) - values
            floor = self.scfg.entropy_floor * self._h_uniform
            stats.update(ppo_update(self.policy, self.optimizer, b_actions, b_logp,
                                    adv - adv.mean(), cfg, self._gen, b_w, floor))
            px = rnd.policy_x
            # imagined batches are fresh and 8x larger: 4 epochs each (CleanRL's default)
            icfg = replace(cfg, update_epochs=min(cfg.update_epochs, 4))
            for _ in range(self.imagined if len(px) >= 2 else 0):
                pick = torch.randperm(len(px), generator=self._gen)[: self.scfg.imagined_batch]
                a = torch.as_tensor(px[pick.numpy()], dtype=torch.long)
                with torch.no_grad():
                    lp, _ = self.policy.evaluate(a)
                m = torch.as_tensor(self.imagined_reward(a.numpy()), dtype=torch.float32)
                if not torch.isfinite(m).all():  # no critic yet (every result failed, say)
                    break
                ppo_update(self.policy, self.optimizer, a, lp, m - m.mean(), icfg, self._gen,
                           min_entropy=floor)
            with torch.no_grad():
                _, ent = self.policy.evaluate(actions)
        stats["controller/entropy"] = float(ent.mean())
        stats["controller/entropy_floor"] = floor
        return stats

    def imagined_reward(self, x: np.ndarray) -> np.ndarray:
        """What an imagined update rewards each row of decisions ``x`` with
        (``ScreenConfig.novelty``): the critic's mean, or, with novelty, the UCB score of an
        unseen architecture and the batch's lowest score for one already evaluated."""
        mean, spread, _ = self._score(x)
        if not self.scfg.novelty:
            return mean
        score = mean + self.scfg.kappa * spread
        seen = np.fromiter((tuple(r) in self._seen for r in x.tolist()), bool, len(x))
        if seen.all():
            return np.zeros(len(x))
        score[seen] = score[~seen].min()
        return score

    def _replay_rewards(self, raw: torch.Tensor) -> torch.Tensor:
        ref = self._ref()
        if ref is None:
            return torch.zeros_like(raw)
        return torch.as_tensor(ref(raw.numpy()), dtype=torch.float32)
