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
- :func:`knowledge_trust` and :func:`knowledge_weight` (issue 35, ``knowledge_rule='weigh'``,
  the default): knowledge is judged every round, and its points weigh less as the run's own
  results come in (docs/DESIGN.md, "Knowledge that never hurts").

What each rule keeps of the outcome (its knowledge state, its units, its mutant parents) stays
in the rule's own JSON state, so checkpoints keep their layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fnas.agent.critic import EnsembleCritic
from fnas.agent.threads import single_thread

__all__ = ["DISTRUST", "PRETRAIN_FITS", "FORGET_FITS", "NEIGHBOURS", "Judgement", "Trust",
           "kendall", "pretrain_critic", "judge_knowledge", "forget_knowledge", "knowledge_trust",
           "knowledge_weight", "Weighing"]

PRETRAIN_FITS = 5
"""Fits of the critic on the earlier runs' points before the first batch."""
FORGET_FITS = 3
"""Fits of the new critic on this run's points after knowledge is forgotten."""
DISTRUST = 0.5
"""``weigh``: knowledge with a trust below this is distrusted (``critic/knowledge_forgotten``
in the records; with ``screen.hedge``, the run then completes its warm-up)."""


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


NEIGHBOURS = 5
"""k of the k-nearest-neighbour predictions that judge knowledge (:func:`knn_predict`)."""
TRUST_WINDOW = 64
"""The most recent own results whose predictions judge the knowledge."""
TRUST_MIN_PAIRS = 16
"""Own results predicted from earlier own results needed before the two are compared (two
rounds of the default batch: Kendall tau on fewer flips sign by chance)."""


@dataclass(frozen=True)
class Trust:
    """The knowledge's trust this round (:func:`knowledge_trust`)."""

    trust: float
    """In [0, 1]: 0 when the knowledge does not rank the own results; else its share of the
    two predictors' rank agreement with them."""
    tau_knowledge: float
    """Kendall tau of the knowledge's predictions against the own results (NaN: undefined)."""
    tau_own: float
    """Kendall tau of the earlier own results' predictions against them (NaN: too few)."""


def knn_predict(x: np.ndarray, px: np.ndarray, py: np.ndarray, k: int = NEIGHBOURS
                ) -> np.ndarray:
    """For each row of decisions ``x`` (n, T): the mean target ``py`` of its ``k`` nearest
    points ``px`` (m, T) by Hamming distance on the decisions (ties by order); NaN with no
    points. The one model both sides of :func:`knowledge_trust` use, so that the comparison
    is of the data, not of models; cheap enough for every round."""
    x, px = np.asarray(x), np.asarray(px)
    if px.shape[0] == 0:
        return np.full(x.shape[0], math.nan)
    dist = (x[:, None, :] != px[None, :, :]).sum(2)
    idx = np.argsort(dist, axis=1, kind="stable")[:, : max(1, min(k, px.shape[0]))]
    return np.asarray(py, dtype=np.float64)[idx].mean(1)


def knowledge_trust(pairs: Sequence[tuple[float, float, float]], prior: float = 1.0) -> Trust:
    """Judge knowledge on the run's own results, every round (issue 35).

    ``pairs``: per own result, (the knowledge's prediction of it, the prediction from the
    own results before its round (NaN for the first round's), its target), both predictions
    made before the result was known (:func:`knn_predict`): held-back results, so neither
    side is judged on what it has seen. The trust is the product of two factors:

    - how sure it is that the knowledge ranks the own results at all: ``Phi(tau_k / se)``,
      with ``tau_k`` the Kendall tau of its predictions against the targets (all pairs) and
      ``se`` tau's standard deviation under independence, ``sqrt(2 (2n + 5) / (9 n (n - 1)))``;
      near 0 for knowledge that ranks them backwards, 0.5 for none, near 1 for clear ranking;
    - its share of the two predictors' rank agreement, ``tau_k+ / (tau_k+ + tau_o+)`` on the
      results that both predicted (``x+ = max(x, 0)``; 1 while ``tau_o <= 0``, or with fewer
      than ``TRUST_MIN_PAIRS`` of them): it falls as the own results predict themselves
      better than the knowledge predicts them, the case of a source whose best lies
      elsewhere.

    ``prior`` (the caller's last trust) when tau is not defined yet (fewer than 3 pairs, or
    a constant side).
    """
    from scipy.special import ndtr

    if len(pairs) < 3:
        return Trust(float(prior), math.nan, math.nan)
    a, b, y = (np.asarray(v, dtype=np.float64) for v in zip(*pairs, strict=True))
    n = len(a)
    tk = kendall(list(zip(a, y, strict=True)))
    if math.isnan(tk):
        return Trust(float(prior), tk, math.nan)
    sure = float(ndtr(tk / math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))))
    both = np.isfinite(b)
    to, share = math.nan, 1.0
    if both.sum() >= TRUST_MIN_PAIRS:
        tk_b = kendall(list(zip(a[both], y[both], strict=True)))
        to = kendall(list(zip(b[both], y[both], strict=True)))
        k_pos = 0.0 if math.isnan(tk_b) else max(tk_b, 0.0)
        o_pos = 0.0 if math.isnan(to) else max(to, 0.0)
        share = 1.0 if o_pos == 0 else k_pos / (k_pos + o_pos)
    return Trust(sure * share, tk, to)


def knowledge_weight(trust: float, n_knowledge: int, mass: float) -> float:
    """Each knowledge point's weight in the critic's fit, the run's own results weighing 1:
    ``trust x min(1, mass / n_knowledge)``. The knowledge counts as at most ``mass`` results
    (a power prior, Ibrahim and Chen 2000: the earlier runs' likelihood raised to that
    power), so that own results outweigh it once there are more of them than ``mass``, and
    sooner as the trust falls."""
    if n_knowledge <= 0:
        return 0.0
    return float(trust) * min(1.0, float(mass) / n_knowledge)


class Weighing:
    """The screening strategy's knowledge, weighed round by round (``knowledge_rule='weigh'``;
    a mixin: it uses the strategy's settings ``scfg``, state ``st``, critic and scores).

    Each round, after the critic's targets are set and before its fit: each new own result's
    held-back predictions (:func:`knn_predict`: from the knowledge, from the earlier own
    results), the trust (:func:`knowledge_trust`), each knowledge point's weight
    (:func:`knowledge_weight`) and the stagnation count (rounds in a row whose results
    brought no better own result while the knowledge weighs). The mutant parents
    (:meth:`_knowledge_parents`) are the knowledge's best architectures that fewer than
    ``parents`` own results beat, the first ``ceil(trust x parents)`` of them, and none
    while the search stagnates; then ``mutants`` uniform samples join the candidates too.

    Two critics predict: the main one, fitted on the knowledge (each point at its weight)
    and the own results, and one fitted on the own results alone (made at the first round
    with own results). Their members' predictions are mixed by the knowledge's share of the
    fit's weight, ``s = w n_k / (w n_k + n_own)``: weights alone would leave the knowledge's
    function in the main critic's parameters (it is warm-started from its pre-training), so
    that a distrusted source would still steer what it extrapolates to; with the mixture, a
    source of trust 0 leaves the search to the own critic, as from scratch.
    """

    scfg: Any
    st: Any
    critic: EnsembleCritic
    _ocritic: EnsembleCritic | None = None  # the own results' critic (while weighing)

    def _score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        raise NotImplementedError  # .screening

    def _ref(self) -> Any:
        raise NotImplementedError  # .screening

    def _new_critic(self, generation: int) -> EnsembleCritic:
        raise NotImplementedError  # .screening

    def _share(self) -> float:
        """The knowledge's share of the prediction: its weight's share of the fit's (1 with
        no own result; see the class)."""
        x_n, n_k = self.critic.n_points, self.st.n_knowledge
        w = knowledge_weight(1.0 if self.st.trust is None else self.st.trust, n_k,
                             self.scfg.knowledge_mass)
        mass = w * n_k + x_n - n_k
        return w * n_k / mass if mass > 0 else 1.0

    def _mixed(self, x: np.ndarray) -> np.ndarray | None:
        """The reward nets' members (K, n) on ``x``: the knowledge-weighted critic's and the
        own results' critic's, mixed by the knowledge's share; None while not weighing (the
        caller uses the critic alone)."""
        if not self._weighing or self._ocritic is None:
            return None
        s = self._share()
        own = self._ocritic.predict_members(x)
        return own if s <= 0 else s * self.critic.predict_members(x) + (1 - s) * own

    def _values(self, x: np.ndarray) -> np.ndarray:
        """The controller's per-decision baseline V(a_<t) (n, T), mixed as :meth:`_mixed`."""
        v = self.critic.prefix_values(x)
        if not self._weighing or self._ocritic is None:
            return v
        s = self._share()
        return s * v + (1 - s) * self._ocritic.prefix_values(x)

    def _fit_own(self, value_targets: np.ndarray | None) -> dict[str, float]:
        """Give the own results' critic this round's points and targets (the main critic's,
        after its first ``n_knowledge``) and fit it: made (FORGET_FITS fits) at the first
        round with own results while weighing, one fit a round after."""
        if not self._weighing:
            return {}
        n_k = self.st.n_knowledge
        x, y = self.critic.points()
        if len(x) == n_k:
            return {}
        fits = 1
        if self._ocritic is None:
            self._ocritic, fits = self._new_critic(2), FORGET_FITS
        oc = self._ocritic
        new = np.arange(n_k + oc.n_points, len(x))
        if new.size:
            oc.add(x[new], np.zeros(new.size), self.critic.fidelities()[new]
                   if self.critic.fidelity else None)
        oc.retarget(y[n_k:], None if value_targets is None else value_targets[n_k:])
        out: dict[str, float] = {}
        for _ in range(fits):
            out = oc.fit()
        return {"knowledge/own_critic_loss": out.get("critic/loss", math.nan)}

    @property
    def _weighing(self) -> bool:
        """This run weighs knowledge (the rule, and knowledge to weigh)."""
        return self.scfg.knowledge_rule == "weigh" and self.st.n_knowledge > 0 \
            and self.st.knowledge in ("pending", "weighed")

    @property
    def _stagnating(self) -> bool:
        return self._weighing and 0 < self.scfg.stagnation <= self.st.stagnant

    def _weigh(self, n_before: int, improved: bool, stats: dict[str, Any],
               hedged: Sequence[bool] | None = None) -> None:
        """This round's judgement, on the critic's points as retargeted (its first
        ``n_knowledge`` the knowledge's; ``n_before`` points before this round's results):
        trust, weights (set on the critic), stagnation; stats. ``hedged``: per new point,
        whether it is a hedge's uniform pick; ``hedge_trust`` says which points judge the
        knowledge (the critics learn from them all the same)."""
        st, n_k = self.st, self.st.n_knowledge
        if not self._weighing:
            return
        x, y = self.critic.points()
        new = np.arange(n_before, len(x))
        flags = [False] * new.size if hedged is None or len(hedged) != new.size \
            else [bool(h) for h in hedged]
        if new.size:
            a = knn_predict(x[new], x[:n_k], y[:n_k])
            b = knn_predict(x[new], x[n_k:n_before], y[n_k:n_before])
            st.trust_pairs += [[float(u), float(v) if math.isfinite(v) else None, int(i), h]
                               for u, v, i, h in zip(a, b, new, flags, strict=True)]
            st.trust_pairs = st.trust_pairs[-TRUST_WINDOW:]
            st.knowledge = "weighed"
        prior = 1.0 if st.trust is None else st.trust

        def judged(screened_only: bool) -> Trust:  # entries before the flag: screened
            return knowledge_trust([(p[0], math.nan if p[1] is None else p[1], float(y[p[2]]))
                                    for p in st.trust_pairs
                                    if not (screened_only and len(p) > 3 and p[3])], prior)

        rule = self.scfg.hedge_trust
        if self.scfg.hedge > 0:  # both views, whichever the rule takes
            views = {"all": judged(False), "screened": judged(True)}
            stats.update({f"knowledge/trust_{k}": v.trust for k, v in views.items()})
            # 'both': the knowledge must rank the space and its own picks alike
            verdict = min(views.values(), key=lambda t: t.trust) if rule == "both" \
                else views[rule]
        else:  # no hedge, no uniform pick: every result is the knowledge's
            verdict = judged(False)
        st.trust = verdict.trust
        w = knowledge_weight(st.trust, n_k, self.scfg.knowledge_mass)
        self.critic.set_weights(np.concatenate([np.full(n_k, w), np.ones(len(x) - n_k)]))
        st.stagnant = 0 if improved or w == 0 else st.stagnant + 1
        mass = w * n_k + len(x) - n_k
        stats.update({"knowledge/trust": st.trust, "knowledge/weight": w,
                      "knowledge/share": w * n_k / mass if mass > 0 else 0.0,
                      "knowledge/tau_knowledge": verdict.tau_knowledge,
                      "knowledge/tau_own": verdict.tau_own,
                      "knowledge/stagnant": float(st.stagnant)})

    def _knowledge_parents(self) -> list[list[int]]:
        """The knowledge's mutant parents this round (see the class)."""
        st = self.st
        if not self._weighing:
            return list(st.knowledge_parents) if st.knowledge in ("pending", "kept") else []
        trust = 1.0 if st.trust is None else st.trust
        if self._stagnating or trust <= 0 or not st.knowledge_parents:
            return []
        ref = self._ref()
        keep = list(st.knowledge_parents)
        if ref is not None:  # their estimated rewards here, against the own results'
            mean = self._score(np.asarray(keep, dtype=np.int64))[0]
            own = ref(np.asarray([r for _, r in st.own]))
            beaten = [int((own > m).sum()) for m in mean]
            keep = [p for p, n in zip(keep, beaten, strict=True) if n < self.scfg.parents]
        return keep[: math.ceil(trust * self.scfg.parents)]

    def _own_state(self, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        """Adds the own results' critic's state (``own.critic.*``; only once it exists)."""
        if self._ocritic is not None:
            t, m = self._ocritic.state()
            tensors.update({"own." + k: v for k, v in t.items()})
            meta["own_critic"] = m

    def _load_own_state(self, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        """Restores :meth:`_own_state`'s."""
        self._ocritic = None
        if "own_critic" in meta:
            self._ocritic = self._new_critic(2)
            self._ocritic.load_state({k[4:]: v for k, v in tensors.items()
                                      if k.startswith("own.")}, meta["own_critic"])
