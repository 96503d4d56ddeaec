"""Candidate generation for the screening strategy: the proposing policy's samples, mutants of
the top real results (this run's and the knowledge's), and the fallbacks (more policy samples,
more mutants, uniform samples) when too few unseen candidates are left."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fnas.agent.acquisition import mutants
from fnas.strategies.fnas.knowledge import DISTRUST
from fnas.strategies.ppo import single_thread

if TYPE_CHECKING:
    from fnas.space.factorized import FactorizedSpace
    from fnas.strategies.fnas.screen_config import ScreenConfig, ScreenState

__all__ = ["Candidates"]


class Candidates:
    """The candidate methods of :class:`~fnas.strategies.fnas.screening.ScreeningStrategy` (a mixin:
    they use its space, policy, generators, settings ``scfg``, state ``st`` and the decision
    vectors and architecture keys already evaluated)."""

    space: FactorizedSpace
    scfg: ScreenConfig
    st: ScreenState
    _rng: np.random.Generator
    _gen: torch.Generator
    _seen: set[tuple[int, ...]]
    _seen_keys: set[str]

    def _rung_parents(self) -> list[list[int]]:
        raise NotImplementedError  # .rungs

    def _knowledge_parents(self) -> list[list[int]]:
        raise NotImplementedError  # .knowledge (Weighing)

    @property
    def _stagnating(self) -> bool:
        raise NotImplementedError  # .knowledge (Weighing)

    @property
    def _weighing(self) -> bool:
        raise NotImplementedError  # .knowledge (Weighing)

    def _policy_samples(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n samples (n, T) and their log-probabilities (n,) under the proposing policy."""
        if self.scfg.policy == "frozen":
            sizes = torch.tensor(self.space.sizes)
            a = (torch.rand(n, len(self.space.sizes), generator=self._gen) * sizes).long()
            return a.numpy(), self._logp(a.numpy())
        with single_thread():
            a, lp = self.policy.sample(n, self._gen)
        return a.numpy(), lp.sum(1).double().numpy()

    def _logp(self, x: np.ndarray) -> np.ndarray:
        if self.scfg.policy == "frozen":
            return np.full(len(x), -float(np.log(np.asarray(self.space.sizes, float)).sum()))
        with torch.no_grad(), single_thread():
            lp, _ = self.policy.evaluate(torch.as_tensor(x, dtype=torch.long))
        return lp.sum(1).double().numpy()

    def _unseen(self, x: np.ndarray) -> np.ndarray:
        """Rows of x not yet evaluated, first occurrence of each, in order."""
        keep, here = [], set()
        for i, row in enumerate(map(tuple, x.tolist())):
            if row not in self._seen and row not in here:
                here.add(row)
                keep.append(i)
        return np.asarray(keep, dtype=np.int64)

    def _uniform_rows(self, x: np.ndarray, origin: np.ndarray, k: int
                      ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, tuple]]]:
        """``x`` and ``origin`` with up to ``k`` uniform samples appended (unseen, distinct,
        not in ``x``), and those rows as unscreened candidates (NaN mean, spread, score)."""
        ux = np.stack([self._rng.integers(s, size=k) for s in self.space.sizes], 1)
        have = set(map(tuple, x.tolist()))
        ux = ux[[i for i in self._unseen(ux) if tuple(ux[i].tolist()) not in have]]
        n0 = len(x)
        x = np.concatenate([x, ux.astype(x.dtype)])
        origin = np.concatenate([origin, np.full(len(ux), 2, dtype=origin.dtype)])
        nan = (float("nan"),) * 3
        return x, origin, [(n0 + i, nan) for i in range(len(ux))]

    def _parents(self) -> np.ndarray:
        own = sorted(self.st.own, key=lambda o: -o[1])[: self.scfg.parents]
        p = self._rung_parents() if self.scfg.rungs else [d for d, _ in own]
        kp = self._knowledge_parents()
        self._n_kparents = len(kp)  # for the round's record
        return np.asarray(p + kp, dtype=np.int64).reshape(-1, len(self.space.sizes))

    def _candidates(self, n_pick: int) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """Unseen candidates (m, T), their origin codes (m,), and the round's counts."""
        c = self.scfg
        warm = self._warm
        counts: dict[str, int] = {}
        x, _ = self._policy_samples(c.candidates)
        self._drawn = x  # the policy's own samples, seen ones included: imagined updates
        origin = np.zeros(len(x), dtype=np.int64)  # 0 policy, 1 mutant, 2 uniform
        counts["candidates_policy"] = len(x)
        if not warm and c.mutants:
            mx = mutants(self._parents(), self.space.sizes, c.mutants, self._rng, c.mutant_two)
            if self.st.n_knowledge:  # how many of the parents were the knowledge's (issue 35)
                counts["knowledge_parents"] = self._n_kparents
            x, origin = np.concatenate([x, mx]), np.concatenate([origin, np.ones(len(mx), int)])
            counts["candidates_mutant"] = len(mx)
        if not warm and self._stagnating:  # knowledge holds the search: explore (issue 35)
            ux = np.stack([self._rng.integers(s, size=max(c.mutants, 1))
                           for s in self.space.sizes], 1)
            x, origin = np.concatenate([x, ux]), np.concatenate([origin, np.full(len(ux), 2)])
            counts["candidates_uniform"] = len(ux)
        keep = self._unseen(x)
        steps = [("fallback_more", lambda: (self._policy_samples(4 * c.candidates)[0], 0)),
                 ("fallback_mutants", lambda: (mutants(self._parents(), self.space.sizes,
                                                       max(c.mutants, 4 * n_pick), self._rng,
                                                       c.mutant_two), 1)),
                 ("fallback_uniform", lambda: (np.stack([self._rng.integers(s, size=4 * c.
                                                         candidates) for s in self.space.sizes],
                                                        1), 2))]
        for name, more in steps:
            if len(keep) >= n_pick:
                break
            mx, code = more()
            counts[name] = 1
            x = np.concatenate([x, mx])
            origin = np.concatenate([origin, np.full(len(mx), code)])
            keep = self._unseen(x)
        if len(keep) < n_pick:
            counts["exhausted"] = 1  # (almost) every architecture has been evaluated
        self.st.exhausted = len(keep) == 0 and len(self._seen_keys) > 0
        return x[keep], origin[keep], counts

    def _take(self, x: np.ndarray, cand: Sequence[tuple[int, tuple[float, float, float]]],
              n: int, rows: list[int], specs: list[Any],
              info: list[tuple[float, float, float]]) -> None:
        """Picks from ``cand`` in order into ``rows`` (and their specs and info) until there
        are ``n``, skipping rows taken and networks evaluated (while others remain)."""
        taken = set(rows)
        for i, inf in cand:
            if len(rows) >= n:
                break
            if i in taken:
                continue
            spec = self.space.decode(x[i].tolist())
            if spec.key in self._seen_keys and len(x) - len(rows) > n:
                continue  # another decision vector of a network already evaluated
            rows.append(i)
            taken.add(i)
            specs.append(spec)
            info.append(inf)

    def _hedge(self, n: int) -> int:
        """Picks of this round drawn uniformly, unscreened (``screen.hedge``, with weighed
        knowledge): before the knowledge's trust is measured (no own result yet), a share
        ``hedge`` of the batch; while it is distrusted (trust < ``DISTRUST``), what the run
        lacks of the ``n_init`` warm-up results a search from scratch starts with; else
        none. The rest of the round is screened."""
        st, c = self.st, self.scfg
        if not self._weighing or c.hedge <= 0:
            return 0
        if st.trust is None:
            return min(n, max(1, round(c.hedge * n)))
        return min(n, max(0, c.n_init - st.n_warm)) if st.trust < DISTRUST else 0

    @property
    def _warm(self) -> bool:
        """A warm-up round: no knowledge to screen with, and fewer than ``n_init`` results
        from warm-up rounds (knowledge that was forgotten leaves results from one region
        only, so the warm-up then runs too)."""
        return self.st.knowledge in ("none", "forgotten") and self.st.n_warm < self.scfg.n_init
