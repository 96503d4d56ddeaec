"""The ``fnas`` strategy's one knowledge path, whichever decision rule it runs (screening or
the veto rule; docs/DESIGN.md, "The critic"): the critic is pre-trained on earlier runs' real
results, that knowledge is judged on this run's first real results, and knowledge that fails
is forgotten.

- :func:`pretrain_critic`: the earlier runs' points, then ``PRETRAIN_FITS`` fits.
- :func:`judge_knowledge`: Kendall tau of (critic mean, real reward) pairs against a floor;
  the veto rule also calibrates (a Theil-Sen line, whose slope must be positive) because it
  then expresses the run in the knowledge's units.
- :func:`forget_knowledge`: a new critic (another seed) holding this run's points alone; the
  caller fits it ``FORGET_FITS`` times once its targets are right.

What each rule keeps of the outcome (its knowledge state, its units, its mutant parents) stays
in the rule's own JSON state, so checkpoints keep their layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fnas.agent.critic import EnsembleCritic
from fnas.agent.threads import single_thread

__all__ = ["PRETRAIN_FITS", "FORGET_FITS", "Judgement", "kendall", "pretrain_critic",
           "judge_knowledge", "forget_knowledge"]

PRETRAIN_FITS = 5
"""Fits of the critic on the earlier runs' points before the first batch."""
FORGET_FITS = 3
"""Fits of the new critic on this run's points after knowledge is forgotten."""


@dataclass(frozen=True)
class Judgement:
    """The verdict on pre-trained knowledge."""

    tau: float
    """Kendall tau of the critic's means against the real rewards (NaN: fewer than 3 pairs,
    or one side constant)."""
    slope: float
    """With calibration: the Theil-Sen slope of real reward on mean (else NaN)."""
    intercept: float
    """With calibration: its intercept (else NaN)."""
    keep: bool
    """tau reaches the floor (and, with calibration, the slope is positive)."""


def kendall(pairs: Sequence[tuple[float, float]]) -> float:
    """Kendall tau of (a, b) pairs; NaN for fewer than 3 or a constant side."""
    if len(pairs) < 3:
        return math.nan
    from scipy.stats import kendalltau  # scipy loads on first use: the strategy imports light

    a, b = np.asarray(pairs, dtype=np.float64).T
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(kendalltau(a, b)[0])


def pretrain_critic(critic: EnsembleCritic, knowledge: Sequence[tuple[Sequence[int], float]]
                    ) -> tuple[list[list[int]], list[float]]:
    """Add the earlier runs' ``(decisions, target)`` points to ``critic`` and fit it
    ``PRETRAIN_FITS`` times; returns the points as added (decisions, targets)."""
    x = [list(d) for d, _ in knowledge]
    y = [float(r) for _, r in knowledge]
    critic.add(x, y)
    with single_thread():
        for _ in range(PRETRAIN_FITS):
            critic.fit()
    return x, y


def judge_knowledge(pairs: Sequence[tuple[float, float]], min_rank: float,
                    calibrate: bool = False) -> Judgement:
    """Judge knowledge on (critic mean, real reward) ``pairs``: kept if their Kendall tau is
    at least ``min_rank``; with ``calibrate``, the slope of the Theil-Sen line
    ``real = slope * mean + intercept`` must also be positive."""
    tau = kendall(pairs)
    slope = intercept = math.nan
    if calibrate and not math.isnan(tau):
        from scipy.stats import theilslopes

        m, z = np.asarray(pairs, dtype=np.float64).T
        slope, intercept = (float(v) for v in theilslopes(z, m)[:2])
    keep = tau >= min_rank and (slope > 0 if calibrate else True)  # NaN: never kept
    return Judgement(tau, slope, intercept, bool(keep))


def forget_knowledge(critic: EnsembleCritic, n_knowledge: int,
                     make: Callable[[], EnsembleCritic] | None = None) -> EnsembleCritic:
    """A new critic, seeded ``critic.seed + 1`` (or ``make()``: the same seed, with the
    caller's features), holding ``critic``'s points after its first ``n_knowledge`` (the
    knowledge's), with their targets; not fitted yet (the caller fits it ``FORGET_FITS``
    times, after retargeting the points if it needs to)."""
    x, y = critic.points()
    new = make() if make is not None else EnsembleCritic(critic.sizes, critic.cfg,
                                                         critic.seed + 1,
                                                         fidelity=critic.fidelity)
    if len(x) > n_knowledge:  # each point at its own fidelity (1 without rungs)
        new.add(x[n_knowledge:], y[n_knowledge:],
                critic.fidelities()[n_knowledge:] if critic.fidelity else None)
    return new
