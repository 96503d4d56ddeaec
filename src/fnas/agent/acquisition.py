"""Screening maths: rank-Gaussian targets, acquisition functions and mutants (no torch).

The critic scores many candidate architectures; an acquisition picks the few worth a real
training. Everything here is a pure function of numpy arrays and a seeded generator.

Acquisition functions are registered by name (:data:`ACQUISITIONS`,
:func:`register_acquisition`): each is ``fn(ctx) -> (indices, scores)``, ``ctx`` one
:class:`AcquisitionContext` (the candidates' means and spreads, how many to pick, the
generator, ``kappa``, the run's best target, and the members' outputs for a function that asks
for them); :func:`top_k` turns a score per candidate into the picks. ``ucb``, ``ts`` and
``ei`` are registered here (docs/DESIGN.md, "Screening").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fnas.errors import ConfigError

__all__ = ["ACQUISITIONS", "Acquisition", "AcquisitionContext", "acquire", "needs_members",
           "register_acquisition", "top_k", "rank_gauss", "RankGauss", "mutants"]


def rank_gauss(y: Sequence[float]) -> np.ndarray:
    """Rewards (n,) -> standard-normal scores by rank: ``Phi^-1((rank - 0.5) / n)``, ties
    averaged. Robust to heavy tails (a few failed or collapsed networks do not squash the
    rest, as a mean/std normalisation does). One value maps to 0."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.size == 0:
        return y
    # imported here: scipy.stats takes half a second to import, and many processes that
    # import this module (vanilla searches, ``fnas show``) never rank anything
    from scipy.special import ndtri
    from scipy.stats import rankdata

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


@dataclass(frozen=True)
class AcquisitionContext:
    """What an acquisition function sees: the critic's view of the candidates and what it may
    draw from. One argument for every function, so a new one needs no new plumbing."""

    mean: np.ndarray
    """The ensemble's mean per candidate (n,), in the critic's target units."""
    spread: np.ndarray
    """The ensemble's standard deviation per candidate (n,)."""
    k: int
    """How many distinct candidates to pick (at most n)."""
    rng: np.random.Generator
    """The screening's generator (Thompson sampling draws members from it)."""
    kappa: float = 1.0
    """UCB's weight on the spread (``ScreenConfig.kappa``)."""
    best: float | None = None
    """This run's best target (EI improves on it); None: the candidates' best mean."""
    members: np.ndarray | None = None
    """Each member's outputs (K, n), given to functions registered with ``members=True``."""


Acquisition = Callable[[AcquisitionContext], tuple[np.ndarray, np.ndarray]]
"""``fn(ctx) -> (indices (k,), scores (k,))``: the picks, best first, and their scores."""

ACQUISITIONS: dict[str, Acquisition] = {}
"""The acquisition functions by name, in registration order (``ucb``, ``ts``, ``ei``, then
yours): the names ``FNASConfig.acquisition`` and ``fnas search --acquisition`` accept."""
_NEEDS_MEMBERS: set[str] = set()


def register_acquisition(name: str, fn: Acquisition, *, members: bool = False) -> None:
    """Register ``fn`` as acquisition ``name`` (``FNASConfig(acquisition=name)``); with
    ``members`` the screening computes each ensemble member's outputs for it
    (``ctx.members``), which costs a pass per member.

    Raises:
        ConfigError: a bad name (or ``off``, the veto rule's old spelling), or an ``fn`` that
            is not callable.
    """
    if not isinstance(name, str) or not name.strip() or name == "off":
        raise ConfigError(f"an acquisition needs a name other than 'off', got {name!r:.40}")
    if not callable(fn):
        raise ConfigError(f"register_acquisition({name!r}): fn must be callable, got "
                          f"{type(fn).__name__}")
    ACQUISITIONS[name] = fn
    if members:
        _NEEDS_MEMBERS.add(name)
    else:
        _NEEDS_MEMBERS.discard(name)


def needs_members(kind: str) -> bool:
    """Does acquisition ``kind`` read the members' outputs (``ctx.members``)?"""
    return kind in _NEEDS_MEMBERS


def top_k(ctx: AcquisitionContext, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``ctx.k`` best of ``score`` (n,), best first, ties in candidate order."""
    idx = np.argsort(-score, kind="stable")[: ctx.k]
    return idx, score[idx]


def ucb(ctx: AcquisitionContext) -> tuple[np.ndarray, np.ndarray]:
    """Upper confidence bound: ``mean + kappa * spread``."""
    return top_k(ctx, ctx.mean + ctx.kappa * ctx.spread)


def expected_improvement(ctx: AcquisitionContext) -> tuple[np.ndarray, np.ndarray]:
    """Expected improvement over ``best`` under a Gaussian with the ensemble's mean and
    spread."""
    mean = ctx.mean
    s = np.maximum(ctx.spread, 1e-9)
    b = float(np.max(mean)) if ctx.best is None else float(ctx.best)
    u = (mean - b) / s
    from scipy.special import ndtr

    return top_k(ctx, (mean - b) * ndtr(u) + s * np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi))


def thompson(ctx: AcquisitionContext) -> tuple[np.ndarray, np.ndarray]:
    """Thompson sampling over the ensemble: each slot draws one member and takes the best
    candidate not yet picked by its prediction (the picks' scores: those predictions)."""
    members = ctx.members
    if members is None:
        raise ValueError("Thompson sampling needs the ensemble members' outputs")
    taken = np.zeros(ctx.mean.shape[0], dtype=bool)
    picks, scores = [], []
    for _ in range(ctx.k):
        row = np.where(taken, -np.inf, members[int(ctx.rng.integers(members.shape[0]))])
        i = int(np.argmax(row))
        taken[i] = True
        picks.append(i)
        scores.append(float(row[i]))
    return np.asarray(picks, dtype=np.int64), np.asarray(scores)


register_acquisition("ucb", ucb)
register_acquisition("ts", thompson, members=True)
register_acquisition("ei", expected_improvement)


def acquire(kind: str, mean: np.ndarray, spread: np.ndarray, members: np.ndarray | None,
            k: int, rng: np.random.Generator, *, kappa: float = 1.0,
            best: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``k`` distinct candidates with the acquisition registered as ``kind``
    (:data:`ACQUISITIONS`); returns (indices (k,), their acquisition scores (k,)), best first.

    Raises:
        ValueError: an unknown acquisition, or ``ts`` without member outputs.
    """
    fn = ACQUISITIONS.get(kind)
    if fn is None:
        raise ValueError(f"unknown acquisition {kind!r}: expected one of {tuple(ACQUISITIONS)}")
    return fn(AcquisitionContext(mean, spread, min(k, mean.shape[0]), rng, kappa, best,
                                 members))


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
