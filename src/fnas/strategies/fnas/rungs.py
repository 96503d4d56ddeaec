"""Fidelity rungs for the screening strategy (``ScreenConfig.rungs``, ``eta``): most trainings
run cheap, and the critic promotes the best to full fidelity (ASHA-style successive halving;
docs/DESIGN.md, "Fidelity").

**Promotion rule.** Each round of B slots, promotions come first, the rest go to new
candidates, screened as without rungs and trained at the lowest rung. A successful result at
rung k (below the top) is promotable to rung k+1 when it ranks in the top
``floor(n_k / eta)`` of the n_k successful results at rung k, ranked by the critic's
prediction of its *full-fidelity* reward (the critic has seen its low-fidelity result, as a
point at that fidelity), and it has not been promoted from rung k before; and the rung's
quota is kept: at most ``floor(n_k / eta)`` promotions from rung k in all. (ASHA ranks by
fixed results, so its top set only grows; the critic re-ranks every round, and without the
quota a result that left the top set would leave room for one more, beyond 1/eta.)
Promotions are taken from the highest rung down, best first within a rung, at most B per
round; no rung waits to fill (asynchronous in ASHA's sense, but decided once per round: the
loop is batch-synchronous).

**What the critic learns.** Each (architecture, fidelity) result is one critic point with its
fidelity as an input (``EnsembleCritic(fidelity=True)``). Targets are rank-Gaussian scores
computed *per fidelity* (each rung's results among themselves): a short training's rewards sit
far below a full one's, and separate normalisation leaves the critic to learn how the
rankings relate rather than the level shift. Screening and promotion ask the prediction at
f = 1, in the full-fidelity results' units (before any full result exists, the highest rung's
map stands in for them).

**What the controller learns.** Each trained pick's reward in the PPO update is its real
reward when it ran at full fidelity, and the critic's full-fidelity estimate (after this
round's refit) when it ran lower. The experience buffer takes full-fidelity results only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fnas.agent.acquisition import RankGauss, rank_gauss

if TYPE_CHECKING:
    from fnas.agent.critic import EnsembleCritic
    from fnas.space.factorized import FactorizedSpace
    from fnas.strategies.fnas.known import Known
    from fnas.strategies.fnas.screen_config import ScreenConfig, ScreenState

__all__ = ["Rungs", "rung_of"]


def rung_of(rungs: Sequence[float], fidelity: float) -> int | None:
    """The index of ``fidelity`` among ``rungs`` (None: none of them)."""
    for k, f in enumerate(rungs):
        if abs(f - fidelity) <= 1e-9:
            return k
    return None


class Rungs:
    """The rung methods of :class:`~fnas.strategies.fnas.screening.ScreeningStrategy` (a
    mixin: they use its settings ``scfg``, state ``st``, critic, known factor and scores)."""

    space: FactorizedSpace
    scfg: ScreenConfig
    st: ScreenState
    critic: EnsembleCritic
    known: Known | None

    def _score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        raise NotImplementedError  # ScreeningStrategy's

    @property
    def _laddered(self) -> bool:
        """Whether this search runs at several fidelities."""
        return bool(self.scfg.rungs)

    def _promote(self, n: int) -> list[tuple[list[int], float, tuple[float, float, float]]]:
        """Up to ``n`` promotions by the rule above: (decisions, the fidelity to train at,
        (critic mean, spread, score) at full fidelity), recorded as promoted."""
        rungs, st = self.scfg.rungs, self.st
        while len(st.rung_done) < len(rungs) - 1:
            st.rung_done.append([])
            st.promoted.append([])
        out: list[tuple[list[int], float, tuple[float, float, float]]] = []
        if not n or self.critic.n_points == 0:
            return out
        for k in range(len(rungs) - 2, -1, -1):
            done = st.rung_done[k]
            top = len(done) // self.scfg.eta
            quota = top - len(st.promoted[k])
            if quota <= 0:
                continue
            x = np.asarray([d for d, _ in done], dtype=np.int64)
            mean, spread, _ = self._score(x)
            order = np.argsort(-mean, kind="stable")[:top]
            gone = {tuple(d) for d in st.promoted[k]}
            for i in order.tolist():
                d = done[i][0]
                if tuple(d) in gone:
                    continue
                st.promoted[k].append(list(d))
                m, s = float(mean[i]), float(spread[i])
                out.append((list(d), rungs[k + 1], (m, s, m)))
                quota -= 1
                if len(out) == n:
                    return out
                if not quota:
                    break
        return out

    def _note_results(self, batch: Sequence[Any]) -> list[tuple[list[int], float]]:
        """Record the batch's successful real results at their rungs; returns the new critic
        points (decisions, fidelity), in order, each (decisions, fidelity) once."""
        have = {(tuple(d), f) for d, _, f in self.st.points}
        new = []
        for ev in batch:
            if ev.status != "ok" or ev.predicted:
                continue
            d, f = [int(v) for v in ev.decisions], float(ev.fidelity)
            if (tuple(d), f) in have:
                continue
            have.add((tuple(d), f))
            self.st.points.append((d, float(ev.reward), f))
            new.append((d, f))
            k = rung_of(self.scfg.rungs, f)
            if k is not None and k < len(self.scfg.rungs) - 1:
                self.st.rung_done[k].append((d, float(ev.reward)))
        return new

    def _rung_targets(self, rewards: bool) -> np.ndarray:
        """This run's critic targets (in point order): rank-Gaussian scores per fidelity, of
        the rewards (``rewards``) or of their unknown part (the decomposition)."""
        pts = self.st.points
        out = np.zeros(len(pts))
        fid = np.asarray([f for _, _, f in pts])
        for f in np.unique(fid):
            idx = np.flatnonzero(fid == f)
            x = np.asarray([pts[i][0] for i in idx], dtype=np.int64)
            r = np.asarray([pts[i][1] for i in idx])
            out[idx] = rank_gauss(r if rewards or self.known is None else
                                  self.known.unknown(x, r))
        return out

    def _ref_pairs(self) -> list[tuple[list[int], float]]:
        """The results whose rewards define the run's reward map: the full-fidelity ones
        (``own``); with rungs, before two distinct full rewards exist, the highest rung's."""
        own = self.st.own
        if not self._laddered or RankGauss([r for _, r in own]).ok:
            return own
        for done in reversed(self.st.rung_done):
            if RankGauss([r for _, r in done]).ok:
                return done
        return own

    def _rung_parents(self) -> list[list[int]]:
        """Mutant parents with rungs: the top full results, then the top of each lower rung
        (highest first), ``parents`` in all."""
        p = [d for d, _ in sorted(self.st.own, key=lambda o: -o[1])]
        for done in reversed(self.st.rung_done):
            p += [d for d, _ in sorted(done, key=lambda o: -o[1])]
        out, seen = [], set()
        for d in p:
            if tuple(d) not in seen:
                seen.add(tuple(d))
                out.append(list(d))
        return out[: self.scfg.parents]

    def _controller_z(self, batch: Sequence[Any], picks: np.ndarray, ref: Any) -> np.ndarray:
        """The PPO rewards of the batch's picks with rungs: the real reward (through the run's
        map ``ref``) at full fidelity or on failure, else the critic's full-fidelity estimate
        (the module's docstring)."""
        z = np.asarray(ref([ev.reward for ev in batch]), dtype=np.float64)
        low = [i for i, ev in enumerate(batch) if ev.status == "ok" and not ev.predicted
               and ev.fidelity < 1.0]
        if low:
            mean, _, _ = self._score(picks[low])
            z[low] = mean
        return np.where(np.isfinite(z), z, 0.0)

    def _rung_stats(self, fidelity: Sequence[float]) -> dict[str, float]:
        """Per round: picks per rung and promotions; totals: results per rung."""
        out: dict[str, float] = {}
        for k, f in enumerate(self.scfg.rungs):
            out[f"screen/rung{k}_picks"] = float(sum(abs(g - f) <= 1e-9 for g in fidelity))
        for k, done in enumerate(self.st.rung_done):
            out[f"screen/rung{k}_results"] = float(len(done))
            out[f"screen/rung{k}_promoted"] = float(len(self.st.promoted[k]))
        out["screen/full_results"] = float(len(self.st.own))
        return {k: v for k, v in out.items() if not math.isnan(v)}
