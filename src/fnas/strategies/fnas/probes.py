"""Zero-cost probes for the screening strategy (``ScreenConfig.zero_cost`` = K, 0: off): a
second stage that probes a shortlist, never every candidate (docs/DESIGN.md, "Screening").

**Shortlist rule.** In a screened round the critic and the acquisition rank the candidates as
without probes; the first K of that order whose networks are unevaluated (and distinct) are
the shortlist. Their probes are computed (:meth:`Evaluator.probe`: the proxy task's log
gradient norm and log SNIP at initialisation), a second critic that also reads the probes
(the *probe critic*) scores them, and the acquisition on its prediction, composed with the
known factor as the main critic's is, picks the B to train among them (when K < B the main
critic's order fills the rest). Before the probe critic exists, picks come from the main
critic as without probes, and the shortlist is not probed.

**What is probed, once each.** The shortlist, and every successful full-fidelity result of
the run that lacks a probe (warm-up picks, promotions, cached repeats): its probe critic's
data. Probes are kept by architecture key in the screening state (``ScreenState.probes``),
so none is computed twice and a resumed run recomputes none. One more at ``attach``: a
seeded sample of the space, to learn whether the evaluator offers probes at all (None: the
stage is off for the run; kept in memory, so it is not computed again in the run).

**The probe critic.** An :class:`EnsembleCritic` with the main critic's settings, made once
the run has ``max(n_init, PROBE_MIN)`` successful full-fidelity results with two distinct
rewards, and fitted ``PROBE_FITS`` times then; its points are those results in order, its
targets the main critic's (the rank-Gaussian transform of the rewards, or of their unknown
part where a factor is composed: :mod:`.known`), refitted once a round after the main critic.
Its inputs are the main critic's (one-hots, the evaluator's features where the main critic
reads them) plus the probes, each standardised by the median and standard deviation of the
run's results' probes when the critic is made, then fixed (a point's input never changes, so
a resume recomputes it exactly), clipped to +-5; a missing probe (None) is the median, 0. The
critic learns the probes' weight and sign from the run's own results: none is assumed.

**Records** per round: ``probe/n`` (probes computed), ``probe/ms`` and ``probe/cpu_ms`` (their
wall and CPU milliseconds; ``time/score_ms`` and ``time/fit_ms`` include them, as the loop's
``sample`` and ``update`` timers do), ``probe/used`` (1: the probe critic picked),
``probe/shortlist``, ``probe/changed`` (picks the main critic would not have taken from the
shortlist), ``probe/points`` and ``probe/missing`` (architectures without probes, in all).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fnas.agent.acquisition import RankGauss, acquire, rank_gauss
from fnas.agent.critic import CriticConfig, EnsembleCritic

if TYPE_CHECKING:
    from fnas.space.factorized import FactorizedSpace
    from fnas.strategies.fnas.known import Known
    from fnas.strategies.fnas.screen_config import ScreenConfig, ScreenState

__all__ = ["Probes", "PROBE_MIN", "PROBE_FITS"]

logger = logging.getLogger(__name__)

PROBE_MIN = 4
"""Fewest full-fidelity results the probe critic is made from (and at least ``n_init``)."""
PROBE_FITS = 3
"""Fits of the probe critic when it is made (then one a round, warm-started)."""
_CLIP = 5.0
_PREFIX = "probe."  # the probe critic's tensors in the checkpoint: probe.critic.*


class Probes:
    """The probe methods of :class:`~fnas.strategies.fnas.screening.ScreeningStrategy` (a
    mixin: they use its space, settings, state, known factor, acquisition and generator)."""

    space: FactorizedSpace
    scfg: ScreenConfig
    st: ScreenState
    seed: int
    critic_cfg: CriticConfig
    known: Known | None
    acquisition: str
    _rng: np.random.Generator
    _seen_keys: set[str]

    def _score(self, x: np.ndarray, critic: EnsembleCritic | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        raise NotImplementedError  # ScreeningStrategy's

    def _init_probes(self) -> None:
        self._prober: Any = None  # the evaluator whose probes are used (None: off)
        self._n_probes = 0
        self._pcritic: EnsembleCritic | None = None
        self._probe_memo: dict[str, list[float]] = {}  # attach's check, in memory
        self._keys: dict[tuple[int, ...], str] = {}
        self._pround: dict[str, float] = {}

    @property
    def _probing(self) -> bool:
        """Whether this run uses probes (``zero_cost`` > 0 and the evaluator offers them)."""
        return self._prober is not None

    def _attach_probes(self, evaluator: Any) -> None:
        """Turn the stage on when ``zero_cost`` asks for it and ``evaluator`` has a probe for
        a seeded sample of the space."""
        if not self.scfg.zero_cost:
            return
        spec = self.space.decode(self.space.sample(np.random.default_rng([self.seed, 3543])))
        got = _checked(evaluator, spec, 0)
        if got is None:
            logger.info("screen zero_cost=%d: evaluator %s offers no probes; the stage is off",
                        self.scfg.zero_cost, type(evaluator).__name__)
            return
        self._prober, self._n_probes = evaluator, len(got)
        self._probe_memo[str(spec.key)] = got

    def _key(self, row: Sequence[int]) -> str:
        t = tuple(int(v) for v in row)
        k = self._keys.get(t)
        if k is None:
            k = self._keys[t] = str(self.space.decode(list(t)).key)
        return k

    def _probe(self, rows: Any) -> None:
        """Probes of the architectures of decision ``rows`` that lack one, into the state."""
        for row in rows:
            key = self._key(row)
            if key in self.st.probes:
                continue
            if key in self._probe_memo:
                self.st.probes[key] = self._probe_memo[key]
                continue
            t0, c0 = time.perf_counter(), time.thread_time()
            self.st.probes[key] = _checked(self._prober, self.space.decode(
                [int(v) for v in row]), self._n_probes)
            r = self._pround
            r["n"] = r.get("n", 0.0) + 1
            r["ms"] = r.get("ms", 0.0) + 1e3 * (time.perf_counter() - t0)
            r["cpu_ms"] = r.get("cpu_ms", 0.0) + 1e3 * (time.thread_time() - c0)

    def _probe_features(self, x: np.ndarray) -> np.ndarray:
        """The probe critic's inputs after the one-hots: the main critic's features, then the
        standardised probes (a pure function of the decisions once the scale is fixed)."""
        x = np.asarray(x, dtype=np.int64).reshape(-1, len(self.space.sizes))
        fmap = self.known.features if self.known is not None else None
        base = fmap(x) if fmap is not None else np.zeros((len(x), 0))
        scale = np.asarray(self.st.probe_scale, dtype=np.float64).reshape(-1, 2)
        z = np.zeros((len(x), len(scale)))
        for i, row in enumerate(x.tolist()):
            p = self.st.probes.get(self._key(row))
            if p is not None:
                z[i] = (np.asarray(p) - scale[:, 0]) / scale[:, 1]
        return np.concatenate([np.asarray(base, dtype=np.float64),
                               np.clip(z, -_CLIP, _CLIP)], 1)

    def _new_probe_critic(self) -> EnsembleCritic:
        fmap = self.known.features if self.known is not None else None
        width = (fmap.size if fmap is not None else 0) + len(self.st.probe_scale)
        return EnsembleCritic(self.space.sizes, self.critic_cfg, self.seed + 7919 + 101,
                              features=self._probe_features, n_features=width)

    # ---- a round -----------------------------------------------------------------------------
    def _shortlist(self, x: np.ndarray, cand: list[tuple[int, tuple[float, float, float]]],
                   n: int, best: float | None) -> list[tuple[int, tuple[float, float, float]]]:
        """The candidates in pick order (``cand``: the main critic's, as (row of ``x``,
        (mean, spread, score))): the shortlist reordered by the probe critic's acquisition
        first, with its mean, spread and score, then the rest as they were."""
        if not self._probing or self._pcritic is None:
            return cand
        short: list[int] = []  # positions in cand
        keys: set[str] = set()
        for j, (i, _) in enumerate(cand):
            key = self._key(x[i])
            if key in self._seen_keys or key in keys:
                continue
            keys.add(key)
            short.append(j)
            if len(short) == self.scfg.zero_cost:
                break
        if not short:
            return cand
        rows = np.asarray([cand[j][0] for j in short], dtype=np.int64)
        self._probe(x[rows])
        mean, spread, members = self._score(x[rows], self._pcritic)
        order, score = acquire(self.acquisition, mean, spread, members, len(rows), self._rng,
                               kappa=self.scfg.kappa, best=best)
        head = [(int(rows[o]), (float(mean[o]), float(spread[o]), float(s)))
                for o, s in zip(order.tolist(), score, strict=True)]
        main_top = set(rows[:n].tolist())
        self._pround.update({"used": 1.0, "shortlist": float(len(rows)), "changed": float(
            sum(int(i not in main_top) for i, _ in head[:n]))})
        taken = set(short)
        return head + [c for j, c in enumerate(cand) if j not in taken]

    def _probe_learn(self) -> dict[str, float]:
        """After the main critic's fit: probe the run's new full-fidelity results, make or
        refit the probe critic; the round's ``probe/*`` records (none when off)."""
        if not self._probing:
            return {}
        own, pc, fits, loss = self.st.own, self._pcritic, 1, math.nan
        self._probe([d for d, _ in own])
        if pc is None and len(own) >= max(self.scfg.n_init, PROBE_MIN) \
                and RankGauss([r for _, r in own]).ok:
            self.st.probe_scale = _scale([self.st.probes[self._key(d)] for d, _ in own],
                                         self._n_probes)
            pc = self._pcritic = self._new_probe_critic()
            fits = PROBE_FITS
        if pc is not None:
            new = own[pc.n_points:]
            if new:
                pc.add([d for d, _ in new], np.zeros(len(new)))
            y = rank_gauss([r for _, r in own])
            if self.known is not None and self.known.fit_cost(self.st.costs,
                                                              self.st.cost_broken):
                pc.retarget(rank_gauss(self.known.own_unknown(own)), y)
            else:
                pc.retarget(y)
            for _ in range(fits):
                loss = pc.fit()["critic/loss"]
        r = self._pround
        return {"probe/n": r.get("n", 0.0), "probe/ms": r.get("ms", 0.0),
                "probe/cpu_ms": r.get("cpu_ms", 0.0), "probe/used": r.get("used", 0.0),
                "probe/shortlist": r.get("shortlist", 0.0), "probe/changed": r.get(
                    "changed", 0.0), "probe/points": float(pc.n_points if pc else 0),
                "probe/missing": float(sum(v is None for v in self.st.probes.values())),
                **({"probe/loss": loss} if not math.isnan(loss) else {})}

    # ---- persistence -------------------------------------------------------------------------
    def _probe_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Adds the probe critic's state (only once it exists: a run without it writes the
        checkpoint it wrote before the stage existed)."""
        if self._pcritic is not None:
            t, m = self._pcritic.state()
            tensors.update({_PREFIX + k: v for k, v in t.items()})
            meta["probe_critic"] = m

    def _load_probe_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restores :meth:`_probe_state`'s (after the screening state: its probes and scale)."""
        self._pcritic = None
        if "probe_critic" in meta:
            self._pcritic = self._new_probe_critic()
            self._pcritic.load_state({k[len(_PREFIX):]: v for k, v in tensors.items()
                                      if k.startswith(_PREFIX)}, meta["probe_critic"])


def _checked(evaluator: Any, spec: Any, width: int) -> list[float] | None:
    """``evaluator.probe(spec)`` as a list of ``width`` finite floats (any width when 0), or
    None: none offered, a malformed row, or a probe that raised (a search never stops for a
    probe; logged)."""
    try:
        got = evaluator.probe(spec)
        if got is None:
            return None
        vals = [float(v) for v in got]
    except Exception as e:  # noqa: BLE001 - a user's probe must not end the search
        logger.warning("probe of %s failed (%s: %s): none for it", getattr(spec, "key", spec),
                       type(e).__name__, e)
        return None
    if not vals or (width and len(vals) != width) or not all(math.isfinite(v) for v in vals):
        return None
    return vals


def _scale(rows: Sequence[list[float] | None], width: int) -> list[list[float]]:
    """Per probe: (median, standard deviation) over the rows that have probes; (0, 1) with
    none, a scale of 1 where they are all equal."""
    got = np.asarray([r for r in rows if r is not None], dtype=np.float64).reshape(-1, width)
    if not len(got):
        return [[0.0, 1.0]] * width
    sd = got.std(0)
    return [[float(c), float(s) if s > 1e-9 else 1.0]
            for c, s in zip(np.median(got, 0), sd, strict=True)]
