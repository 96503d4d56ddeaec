"""Screening maths: rank-Gaussian targets, acquisition functions and mutants (no torch).

The critic scores many candidate architectures; an acquisition picks the few worth a real
training. Everything here is a pure function of numpy arrays and a seeded generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

__all__ = ["ACQUISITIONS", "acquire", "rank_gauss", "RankGauss", "mutants"]

ACQUISITIONS = ("ucb", "ts", "ei")
"""Acquisition functions: upper confidence bound, Thompson sampling, expected improvement."""


def rank_gauss(y: Sequence[float]) -> np.ndarray:
    """Rewards (n,) -> standard-normal scores by rank: ``Phi^-1((rank - 0.5) / n)``, ties
    averaged. Robust to heavy tails (a few failed or collapsed networks do not squash the
    rest, as a mean/std normalisation does). One value maps to 0."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.size == 0:
        return y
    return ndtri((rankdata(y) - 0.5) / y.size)


class RankGauss:
    """The rank-Gaussian transform of a reference set of rewards, as a monotone map that also
    places rewards outside the set (piecewise linear between the reference points, linear
    extrapolation by the outermost slope), and its inverse (scores back to rewards)."""

    def __init__(self, rewards: Sequence[float]) -> None:
        r = np.asarray(rewards, dtype=np.float64).reshape(-1)
        self.n = r.size
        z = rank_gauss(r)
        order = np.argsort(r, kind="stable")
        xs, zs = r[order], z[order]
        self.x, idx = np.unique(xs, return_index=True)  # ties share their averaged score
        self.z = zs[idx]

    @property
    def ok(self) -> bool:
        """At least two distinct rewards: the map is defined."""
        return self.x.size >= 2

    def __call__(self, r: Sequence[float] | float) -> np.ndarray:
        return _interp(np.asarray(r, dtype=np.float64), self.x, self.z)

    def inverse(self, z: Sequence[float] | float) -> np.ndarray:
        return _interp(np.asarray(z, dtype=np.float64), self.z, self.x)


def _interp(v: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    out = np.interp(v, xp, fp)
    lo_slope = (fp[1] - fp[0]) / (xp[1] - xp[0])
    hi_slope = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    out = np.where(v < xp[0], fp[0] + (v - xp[0]) * lo_slope, out)
    return np.where(v > xp[-1], fp[-1] + (v - xp[-1]) * hi_slope, out)


def acquire(kind: str, mean: np.ndarray, spread: np.ndarray, members: np.ndarray | None,
            k: int, rng: np.random.Generator, *, kappa: float = 1.0,
            best: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``k`` distinct candidates; returns (indices (k,), their acquisition scores (k,)),
    best first.

    - ``ucb``: ``mean + kappa * spread``.
    - ``ts``: Thompson sampling over the ensemble: each slot draws one member (``members``,
      (K, n) outputs) and takes the best candidate not yet picked by its prediction.
    - ``ei``: expected improvement over ``best`` (this run's best target) under a Gaussian
      with the ensemble's mean and spread.

    Raises:
        ValueError: an unknown acquisition, or ``ts`` without member outputs.
    """
    n = mean.shape[0]
    k = min(k, n)
    if kind == "ucb":
        score = mean + kappa * spread
    elif kind == "ei":
        s = np.maximum(spread, 1e-9)
        b = float(np.max(mean)) if best is None else float(best)
        u = (mean - b) / s
        score = (mean - b) * ndtr(u) + s * np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)
    elif kind == "ts":
        if members is None:
            raise ValueError("Thompson sampling needs the ensemble members' outputs")
        taken = np.zeros(n, dtype=bool)
        picks, scores = [], []
        for _ in range(k):
            row = np.where(taken, -np.inf, members[int(rng.integers(members.shape[0]))])
            i = int(np.argmax(row))
            taken[i] = True
            picks.append(i)
            scores.append(float(row[i]))
        return np.asarray(picks, dtype=np.int64), np.asarray(scores)
    else:
        raise ValueError(f"unknown acquisition {kind!r}: expected one of {ACQUISITIONS}")
    idx = np.argsort(-score, kind="stable")[:k]
    return idx, score[idx]


def mutants(parents: np.ndarray, sizes: Sequence[int], m: int, rng: np.random.Generator,
            two_share: float = 0.3) -> np.ndarray:
    """``m`` mutants (m, T) of ``parents`` (p, T): each copies a uniformly drawn parent and
    changes one decision (or two, with probability ``two_share``) to another value."""
    sizes_a = np.asarray(sizes)
    parents = np.asarray(parents, dtype=np.int64).reshape(-1, sizes_a.size)
    if m <= 0 or parents.shape[0] == 0:
        return np.zeros((0, sizes_a.size), dtype=np.int64)
    out = parents[rng.integers(parents.shape[0], size=m)].copy()
    mutable = np.flatnonzero(sizes_a > 1)
    if mutable.size == 0:
        return out
    for row in out:
        n_change = 2 if (rng.random() < two_share and mutable.size > 1) else 1
        for t in rng.choice(mutable, size=n_change, replace=False):
            shift = int(rng.integers(1, sizes_a[t]))  # any other value, uniformly
            row[t] = (row[t] + shift) % sizes_a[t]
    return out
