"""The screening strategy's settings (:class:`ScreenConfig`, ``FNASConfig.screen``) and the
state it checkpoints besides tensors (:class:`ScreenState`, JSON in the checkpoint)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fnas.errors import ConfigError

__all__ = ["ScreenConfig", "ScreenState", "Round"]


@dataclass(frozen=True)
class ScreenConfig:
    """How the critic screens candidates (``FNASConfig.screen``)."""

    n_init: int = 8
    """Real results trained from policy samples before screening starts (0 with knowledge)."""
    candidates: int = 512
    """Policy samples scored by the critic per round."""
    mutants: int = 128
    """Mutants of the top real results (this run's and the knowledge's) added per round."""
    mutant_two: float = 0.3
    """Share of mutants that change two decisions (the rest change one)."""
    parents: int = 8
    """How many top real results (of this run, and of the knowledge) mutants come from."""
    kappa: float = 0.5
    """UCB's weight on the spread. NOTE: chosen on NAS-Bench-Macro's 20 benchmark seeds
    (median queries to target 26 at 1.0, 21 at 0.5, 24 at 0: benchmarks/README.md)."""
    policy: str = "learn"
    """``learn`` (the PPO controller proposes) or ``frozen`` (uniform samples, no learning:
    the ablation that asks what the controller adds)."""
    entropy_floor: float = 0.6
    """The policy's entropy per decision is held at or above this share of the uniform
    policy's (``ppo_update``'s ``min_entropy``): it keeps proposing unseen candidates."""
    imagined_batch: int = 64
    """Policy samples per imagined update."""
    novelty: bool = True
    """The imagined updates' objective. True: the round's policy samples, rewarded by their
    UCB score (critic mean + ``kappa`` x spread) when not yet evaluated and by the batch's
    lowest score when already evaluated: the controller is rewarded for proposing candidates
    that the critic rates highly *and* has not seen. False (the first design): only the
    unseen samples, rewarded by the critic's mean."""
    judge_after: int = 8
    """Picks of a pre-trained critic with real results before it is judged."""
    judge_min_rank: float = 0.0
    """Kendall tau a pre-trained critic needs on its picks to keep its knowledge. The picks
    are the critic's own favourites, a narrow range on which even good knowledge ranks
    weakly (at 0.4, FLOPs-objective knowledge was forgotten in 4 of 6 seeds); knowledge that
    ranks them backwards is what must go."""
    knowledge_rule: str = "weigh"
    """How a pre-trained critic's knowledge is judged (issue 35). ``weigh`` (the default):
    every round, by how well it predicts this run's own results against the own results
    themselves (a trust in [0, 1]), its points weigh ``trust x min(1, knowledge_mass / n)``
    each in the critic's fit, own results 1; its mutant parents leave as own results beat
    them (``fnas.strategies.fnas.knowledge.Weighing``). ``judge`` (before issue 35): once,
    on its first ``judge_after`` picks, kept whole or forgotten."""
    knowledge_mass: float = 32.0
    """``weigh``: the most own results the knowledge counts as (a power prior): with more own
    results than this, the own results outweigh even trusted knowledge. 32 is four batches
    of the default 8."""
    stagnation: int = 3
    """``weigh``: rounds in a row without a better own result, while knowledge weighs, after
    which the knowledge's mutant parents are left out and ``mutants`` uniform samples join
    the candidates, until a round brings a better result (0: never)."""
    hedge: float = 0.0
    """``weigh``: the share of the first round's batch drawn uniformly, unscreened, before
    the knowledge's trust is measured (the rest is screened by the knowledge, and those
    picks come first). Own results spread over the space measure the trust far better than
    the knowledge's own favourites do, and a source that ranks backwards wastes at most the
    screened share. While the knowledge is distrusted after that (trust < 0.5), each round
    draws uniformly what the run lacks of the ``n_init`` warm-up results a search from
    scratch starts with (the hedged picks count). Uniform, not the policy's samples: the
    policy has learned from the knowledge's critic already. 0 (the default): every pick
    screened, as before. NOTE: off by default. Measured on NAS-Bench-Macro task pairs
    (benchmarks/knowledge_shift.py, docs/BENCHMARKS.md), 0.5 cuts a backwards source's
    cost from +13 to +3 median queries, but a shifted source (ranks the space well, its
    best elsewhere) looks more trustworthy on uniform results, holds the search longer and
    costs more (median 76 queries against 60, from scratch 46)."""
    hedge_trust: str = "all"
    """``hedge``: which own results judge the knowledge (both views are recorded each round
    as ``knowledge/trust_all`` and ``knowledge/trust_screened``). ``'all'`` (the default,
    the rule the hedge was measured with): every own result, the hedge's uniform picks too;
    a source that ranks the whole space well but points at the wrong place looks
    trustworthy on uniform samples. ``'screened'``: the knowledge's own picks only; a
    backwards source ranks its clustered favourites less clearly wrong, so it keeps its
    trust longer. ``'both'``: the lower trust of the two, so that knowledge keeps its weight
    only where it ranks the space and its own picks alike. NOTE: 'screened' and 'both' are
    not measured yet (``benchmarks/knowledge_shift.py``, rows ``hedge-s`` and ``hedge-b``)."""
    decompose: bool = True
    """Learn only the unknown: where the evaluator knows the reward's factor before training
    (a MACs or FLOPs target), the critic learns the accuracy and each candidate's reward is
    composed with its exact factor (``fnas.strategies.fnas.known``)."""
    learn_cost: bool = True
    """Where the reward's cost is measured with the result, not known before training (a user
    objective returning ``macs`` or ``latency_ms`` with a cost target, the proxy task's
    latency target), learn it from the run's measured costs and decompose as with a known
    factor (``decompose`` must be on; ``fnas.strategies.fnas.cost_model``)."""
    features: str = "auto"
    """Give the critic the evaluator's features of each candidate (log MACs, log params, per
    block depth, width and resolution) next to its decisions: ``on``, ``off``, or ``auto``:
    only where no known factor is composed. NOTE: measured (benchmarks/critic_inputs.py,
    screening_macro.py), they help a critic that learns the whole reward (NAS-Bench-Macro: 21
    -> 17 median queries; mnist5k ranking from 16 results 0.22 -> 0.34) and slightly hurt one
    that learns only the accuracy, whose factor already carries the size (0.50 -> 0.48)."""
    rungs: tuple[float, ...] = ()
    """Fidelities of a multi-fidelity search, increasing, the last 1.0: e.g. ``(0.25, 1.0)``
    or ``(1/9, 1/3, 1.0)``; empty (the default): every training at full fidelity. With rungs,
    new candidates are trained at the lowest, and a result at rung k is promoted to rung k+1
    when it ranks in the top ``1/eta`` of rung k's results by the critic's prediction of its
    full-fidelity reward (``fnas.strategies.fnas.rungs``; docs/DESIGN.md, "Fidelity"). NOTE:
    off by default until an ablation has measured it."""
    eta: int = 3
    """The promotion ratio: the top ``floor(n_k / eta)`` of the n_k results at rung k may be
    promoted (successive halving's reduction factor)."""
    zero_cost: int = 0
    """Shortlist size K of the zero-cost second stage; 0 (the default): off. With K > 0 and
    an evaluator that offers probes (:meth:`Evaluator.probe`: the proxy task's log gradient
    norm and log SNIP at initialisation), the critic's top K candidates by the acquisition
    are probed, and a second critic that also reads the probes picks the B to train among
    them (``fnas.strategies.fnas.probes``; docs/DESIGN.md, "Screening"). Probes cost about
    0.28 CPU-s per MnasNet-28 network on mnist5k, in the search's own process (they count in
    its compute). NOTE: off by default until an ablation shows that it helps (``--variants
    fnas-zc`` of benchmarks/ablation_mnist5k.py, defined, not yet run)."""

    def __post_init__(self) -> None:
        checks = [(self.n_init >= 0, "n_init"), (self.candidates >= 1, "candidates"),
                  (self.mutants >= 0, "mutants"), (0 <= self.mutant_two <= 1, "mutant_two"),
                  (self.parents >= 1, "parents"), (self.kappa >= 0, "kappa"),
                  (self.policy in ("learn", "frozen"), "policy"),
                  (0 <= self.entropy_floor <= 1, "entropy_floor"),
                  (self.imagined_batch >= 2, "imagined_batch"),
                  (self.judge_after >= 3, "judge_after"),
                  (self.features in ("auto", "on", "off"), "features"),
                  (self.knowledge_rule in ("weigh", "judge"), "knowledge_rule"),
                  (isinstance(self.knowledge_mass, (int, float))
                   and not isinstance(self.knowledge_mass, bool)
                   and math.isfinite(self.knowledge_mass) and self.knowledge_mass > 0,
                   "knowledge_mass"),
                  (isinstance(self.stagnation, int) and not isinstance(self.stagnation, bool)
                   and self.stagnation >= 0, "stagnation"),
                  (isinstance(self.hedge, (int, float)) and not isinstance(self.hedge, bool)
                   and 0 <= self.hedge <= 1, "hedge"),
                  (self.hedge_trust in ("both", "screened", "all"), "hedge_trust"),
                  (-1 <= self.judge_min_rank <= 1, "judge_min_rank")]
        r = self.rungs
        object.__setattr__(self, "rungs", tuple(r) if isinstance(r, (list, tuple)) else r)
        good = isinstance(self.rungs, tuple) and all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f)
            and 0 < f <= 1 for f in self.rungs)
        checks += [(good and (not self.rungs or (
            len(self.rungs) >= 2 and self.rungs[-1] == 1
            and all(a < b for a, b in zip(self.rungs, self.rungs[1:], strict=False)))),
                    "rungs"),
                   (isinstance(self.eta, int) and not isinstance(self.eta, bool)
                    and self.eta >= 2, "eta"),
                   (isinstance(self.zero_cost, int) and not isinstance(self.zero_cost, bool)
                    and self.zero_cost >= 0, "zero_cost")]
        for ok, name in checks:
            if not ok:
                raise ConfigError(f"screen {name}={getattr(self, name)!r} is out of range" + (
                    ": expected increasing fidelities in (0, 1], at least two, the last 1.0"
                    if name == "rungs" else ": expected a shortlist size, an integer >= 0 "
                    "(0: off)" if name == "zero_cost" else ""))
        if self.rungs:
            object.__setattr__(self, "rungs", tuple(float(f) for f in self.rungs))


@dataclass
class ScreenState:
    """Everything the screening strategy learns besides tensors; JSON in the checkpoint."""

    seen: list[list[int]] = field(default_factory=list)
    """Decision vectors evaluated in this run (real results, failures too)."""
    seen_keys: list[str] = field(default_factory=list)
    """Their architecture keys (two decision vectors may build one network)."""
    own: list[tuple[list[int], float]] = field(default_factory=list)
    """This run's distinct successful real results: (decisions, reward)."""
    n_knowledge: int = 0
    """Critic points from earlier runs (the first points of its data)."""
    n_warm: int = 0
    """Real results trained in warm-up rounds (policy samples, not screened picks)."""
    knowledge: str = "none"
    """none | pending | kept | forgotten (``knowledge_rule='judge'``) | weighed (``weigh``:
    judged every round since the first ``judge_after`` own results)."""
    trust: float | None = None
    """``weigh``: the knowledge's trust at the last round (None: not judged yet)."""
    stagnant: int = 0
    """``weigh``: rounds in a row without a better own result while knowledge weighs."""
    trust_pairs: list[list[Any]] = field(default_factory=list)
    """``weigh``: the last own results' held-back predictions, (from the knowledge, from the
    earlier own results (None: none), the result's index among the critic's points)."""
    knowledge_parents: list[list[int]] = field(default_factory=list)
    """The knowledge's top architectures (mutant parents while it is trusted)."""
    judge: list[tuple[float, float]] = field(default_factory=list)
    """(critic mean, real reward) of a pre-trained critic's picks, until judged."""
    picks: list[tuple[float, float]] = field(default_factory=list)
    """(critic mean, real reward) of every screened pick: the running rank check."""
    totals: dict[str, int] = field(default_factory=dict)
    """Cumulative counts: screened, trained picks, candidates by origin, fallbacks."""
    exhausted: bool = False
    """The last round found no unseen candidate at all: the space has been evaluated."""
    costs: list[tuple[list[int], float]] = field(default_factory=list)
    """Measured costs of own results (decisions, cost): the learned cost model's data."""
    cost_broken: bool = False
    """A result's reward was not its accuracy composed with its cost: no learned cost."""
    points: list[tuple[list[int], float, float]] = field(default_factory=list)
    """With rungs: this run's critic points in the critic's order, (decisions, reward,
    fidelity), each (decisions, fidelity) once; empty without rungs (the points are ``own``)."""
    rung_done: list[list[tuple[list[int], float]]] = field(default_factory=list)
    """With rungs: per rung below the top, its successful results (decisions, reward)."""
    promoted: list[list[list[int]]] = field(default_factory=list)
    """With rungs: per rung below the top, the decisions promoted from it (each once)."""
    probes: dict[str, list[float] | None] = field(default_factory=dict)
    """With ``zero_cost``: each probed architecture's probes by architecture key (None: the
    evaluator had none for it), in the order computed; each computed once."""
    probe_scale: list[list[float]] = field(default_factory=list)
    """With ``zero_cost``: per probe, the (centre, scale) that standardises it for the probe
    critic, fixed when that critic is made (empty before)."""

    def to_meta(self) -> dict[str, Any]:
        """As JSON; the rung, learned-cost and probe fields only when used (a run without them
        writes the checkpoint it wrote before they existed)."""
        d = asdict(self)
        for k in ("points", "rung_done", "promoted", "costs", "cost_broken", "probes",
                  "probe_scale", "stagnant", "trust_pairs"):
            if not d[k]:
                del d[k]
        for k in ("trust",):
            if d[k] is None:
                del d[k]
        return d

    @classmethod
    def from_meta(cls, d: dict[str, Any]) -> ScreenState:
        s = cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})
        s.own = [(list(x), float(r)) for x, r in s.own]
        s.judge = [(float(a), float(b)) for a, b in s.judge]
        s.picks = [(float(a), float(b)) for a, b in s.picks]
        s.costs = [(list(x), float(c)) for x, c in s.costs]
        s.points = [(list(x), float(r), float(f)) for x, r, f in s.points]
        s.rung_done = [[(list(x), float(r)) for x, r in rung] for rung in s.rung_done]
        s.promoted = [[list(x) for x in rung] for rung in s.promoted]
        s.probes = {str(k): None if v is None else [float(p) for p in v]
                    for k, v in s.probes.items()}
        s.probe_scale = [[float(c), float(w)] for c, w in s.probe_scale]
        return s


@dataclass
class Round:
    """One screening round's plan, made by ``ask`` and read by ``decide`` and ``tell`` (never
    checkpointed: a resumed round is asked again)."""

    counts: dict[str, int]
    """Candidates by origin and fallback, and how many were screened out."""
    info: list[tuple[float, float, float]]
    """Per pick: the critic's mean, spread and acquisition score (NaN in a warm-up round)."""
    origin: list[int]
    """Per pick: 0 policy, 1 mutant, 2 uniform, 3 repeat, 4 promotion (with rungs)."""
    policy_x: Any
    """The policy's samples the imagined updates draw from (an array of decision rows)."""
    ref: Any
    """The run's rank-Gaussian map of rewards at ask time (``RankGauss``), or None."""
    warm: bool
    """A warm-up round (no screening)."""
    score_ms: float
    """Milliseconds ``ask`` spent drawing and scoring candidates."""
    fidelity: list[float] = field(default_factory=list)
    """Per pick: the fidelity it is trained at (empty without rungs: all at 1)."""
    unscreened: list[int] = field(default_factory=list)
    """The picks (batch positions) left to the policy by ``hedge``: warm-up results."""
