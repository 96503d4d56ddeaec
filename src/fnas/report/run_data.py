"""What a report reads from one run (:class:`RunData`, :func:`load_run`) and the series
derived from it: best-so-far curves, costs, the Pareto front, the critic's checked
predictions and the count of candidates screened out."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fnas.knowledge.readers import readable_evaluations, skipped, summary_of, top_of
from fnas.knowledge.store import Evaluation, Experiment, Store

__all__ = ["RunData", "load_run", "best_so_far", "cost_of", "pareto_front", "critic_pairs",
           "screened"]

logger = logging.getLogger(__name__)


@dataclass
class RunData:
    """What a report needs from one run."""

    exp: Experiment
    evals: list[Evaluation]
    updates: list[dict[str, Any]]
    summary: dict[str, Any]
    top: list[Evaluation]

    @property
    def real(self) -> list[Evaluation]:
        """Real full-fidelity results (trained or reused from the cache), status ok, in
        recording order (a low-fidelity result is no result: :attr:`Evaluation.counts`)."""
        return [e for e in self.evals if e.counts]

    @property
    def metric(self) -> str:
        return str(self.exp.config.get("reward", {}).get("metric", "latency"))

    @property
    def target(self) -> float | None:
        t = self.exp.config.get("reward", {}).get("target")
        return float(t) if t is not None else None


def load_run(store: Store, ref: int | str, top: int = 10) -> RunData:
    """Read one run; its damaged evaluation rows are left out, with a warning on the ``fnas``
    logger (:mod:`fnas.knowledge.readers`). Raises :class:`~fnas.errors.StoreError` for an
    unknown run, or one whose own row is damaged."""
    exp = store.get_experiment(ref)
    evals, bad = readable_evaluations(store, exp.id)
    if bad:
        logger.warning(skipped(exp.name, bad))
        return RunData(exp, evals, store.updates(exp.id), summary_of(evals), top_of(evals, top))
    return RunData(exp, evals, store.updates(exp.id), store.summary(exp.id),
                   store.top(exp.id, top))


# ---- series -------------------------------------------------------------------------------
def best_so_far(run: RunData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(real trainings so far, training seconds so far, best real reward so far)`` after
    every evaluation that set a new best (a step function's corners, the first one included)."""
    n = secs = 0.0
    best = -math.inf
    xs, ss, ys = [], [], []
    for e in run.evals:
        n += e.trained
        secs += e.train_seconds if e.trained else 0.0
        if e.counts and e.reward > best:
            best = e.reward
            xs.append(n)
            ss.append(secs)
            ys.append(best)
    if ys:  # carry the last best to the end of the run
        xs.append(n)
        ss.append(secs)
        ys.append(best)
    return np.array(xs), np.array(ss), np.array(ys)


def cost_of(e: Evaluation, metric: str) -> float | None:
    """The evaluation's cost on the reward's metric: latency (ms) or multiply-adds (M)."""
    if metric == "macs":
        return e.macs / 1e6 if e.macs else None
    return e.latency_ms if e.latency_ms else (e.macs / 1e6 if e.macs else None)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, accuracy) points no other point beats on both (lower cost, higher
    accuracy), by increasing cost."""
    front: list[tuple[float, float]] = []
    for c, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or a > front[-1][1]:
            front.append((c, a))
    return front



def critic_pairs(run: RunData) -> list[tuple[float, float, float, bool]]:
    """``(predicted, real, spread, audited)`` of every sample the critic predicted and that
    was trained anyway (audits, promising ones, a distrusted critic's)."""
    return [(e.predicted_reward, e.reward, e.predicted_spread or 0.0, e.audited)
            for e in run.evals if e.trained and e.status == "ok"
            and e.predicted_reward is not None]



def screened(run: RunData) -> int | None:
    """Candidates the critic scored and did not train, over the run (None: no screening)."""
    ups = [u for u in run.updates if "screen/screened" in u]
    return int(sum(u["screen/screened"] for u in ups)) if ups else None

