"""What ``fnas bench`` measures against: a benchmark's ground truth and its target set.

A :class:`Truth` knows the best score (the table's, the objective's optimum the user gave, or
the best any run found), each architecture's true score where a table lists it, and the target
set a run must hit. ``queries to target`` is the 1-based query index of a run's first hit;
``regret`` is the best score minus the true score of the run's incumbent (its best *observed*
result).

Target specs (``--target``):

- ``top:K``: the K best architectures of the table (ties with the K-th included); tables only;
- ``within:D``: every architecture whose score is at least the best minus D;
- ``score:X``: every architecture whose score is at least X.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fnas._io import import_user_module
from fnas.errors import ConfigError, TaskError
from fnas.execution.evaluators import Evaluator
from fnas.space.factorized import FactorizedSpace
from fnas.tasks.reward import RewardConfig
from fnas.tasks.rollout import RolloutResult
from fnas.tasks.score_table import ScoreTable

__all__ = ["Truth", "TableEvaluator", "parse_target", "check_table", "import_object",
           "TARGET_KINDS", "MISSING", "ENUMERATE_MAX"]

TARGET_KINDS = ("top", "within", "score")
"""The forms of a target spec: ``top:K``, ``within:D``, ``score:X``."""
MISSING = ("error", "fail")
"""Policies for an architecture a partial table does not list (``BenchConfig.missing``)."""
ENUMERATE_MAX = 1_000_000
"""Spaces up to this many decision vectors are enumerated to check a table against them."""


def parse_target(spec: str) -> tuple[str, float]:
    """``"top:25"`` -> ``("top", 25.0)``.

    Raises:
        ConfigError: not one of ``top:K`` (K >= 1 an integer), ``within:D`` (D >= 0) or
            ``score:X``.
    """
    kind, _, value = str(spec).partition(":")
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    ok = kind in TARGET_KINDS and math.isfinite(x) and (
        (kind == "top" and x >= 1 and x == int(x)) or (kind == "within" and x >= 0)
        or kind == "score")
    if not ok:
        raise ConfigError(f"target {spec!r:.40}: expected top:K (K >= 1), within:D (D >= 0) or "
                          "score:X")
    return kind, x


@dataclass(frozen=True)
class Truth:
    """A benchmark's ground truth: the best score, true scores, and the target set."""

    target: str
    """The target spec (``top:25``, ``within:0.2``, ``score:0.93``)."""
    best: float
    """The score regret is measured against."""
    best_from: str
    """Where ``best`` comes from: ``table``, ``optimum`` (given) or ``best found by any run``."""
    threshold: float
    """The lowest score in the target set (for ``top:K``, the K-th best score)."""
    scores: dict[str, float] | None = None
    """Architecture key -> true score (a table); None: the observed score is the truth."""

    @classmethod
    def of(cls, target: str, scores: dict[str, float] | None, best: float,
           best_from: str) -> Truth:
        """The truth of a table (``scores``) or an objective (``scores=None``).

        Raises:
            ConfigError: ``top:K`` without a table or with more than it lists, or a
                ``score:X`` no listed architecture reaches.
        """
        kind, x = parse_target(target)
        if kind == "top":
            if scores is None:
                raise ConfigError(f"target {target!r} ranks a table's architectures: an "
                                  "objective has no table; use within:D or score:X")
            ranked = sorted(scores.values(), reverse=True)
            if x > len(ranked):
                raise ConfigError(f"target {target!r}: the table lists only {len(ranked)} "
                                  "architectures")
            threshold = ranked[int(x) - 1]
        elif kind == "within":
            threshold = best - x
        else:
            threshold = x
            if scores is not None and threshold > best:
                raise ConfigError(f"target {target!r}: no architecture of the table reaches "
                                  f"{x:g} (its best scores {best:g})")
        return cls(target, best, best_from, threshold, scores)

    def true_score(self, arch: str, observed: float) -> float:
        """The true score of ``arch``: the table's, or the observed one without a table."""
        return observed if self.scores is None else self.scores[arch]

    def targets(self) -> set[str] | None:
        """The target set's keys (a table), or None (an objective: a score threshold)."""
        if self.scores is None:
            return None
        return {k for k, s in self.scores.items() if s >= self.threshold}

    def queries_to_target(self, history: dict[str, list]) -> int | None:
        """1-based query index of the run's first hit of the target set, or ``None``."""
        keys = self.targets()
        for q, arch, r, acc in zip(history["query"], history["arch"], history["reward"],
                                   history["accuracy"], strict=True):
            if (arch in keys) if keys is not None else (acc is not None and r >= self.threshold):
                return q
        return None

    def regret(self, history: dict[str, list]) -> float | None:
        """Best score minus the true score of the incumbent (the best observed valid result);
        None for a run with no valid result."""
        ok = [i for i, a in enumerate(history["accuracy"]) if a is not None]
        if not ok:
            return None
        inc = max(ok, key=lambda i: history["reward"][i])
        return self.best - self.true_score(history["arch"][inc], history["reward"][inc])

    def describe(self) -> dict[str, Any]:
        """JSON-able facts for the result file and the plot."""
        n = None if self.scores is None else len(self.targets())
        return {"target": self.target, "best": self.best, "best_from": self.best_from,
                "threshold": self.threshold, "n_targets": n}


class TableEvaluator(Evaluator):
    """Lookups in a user's :class:`~fnas.tasks.ScoreTable`: a query costs nothing but itself.

    The reward and the accuracy are the row's score, as given (higher is better), or with
    ``noisy`` one of its per-seed scores, drawn by the evaluation seed. An
    architecture the table does not list stops the bench with an error naming it
    (``missing='error'``), or is a failed query (``missing='fail'``: status ``invalid``,
    reward the table's worst score, so a strategy learns to avoid it; it costs one query).
    ``invert`` negates the score: a source that ranks the table upside down.
    """

    def __init__(self, table: ScoreTable, missing: str = "error", tag: str = "",
                 invert: bool = False, noisy: bool = False) -> None:
        if missing not in MISSING:
            raise ConfigError(f"missing={missing!r}: expected one of {MISSING}")
        if noisy and table.samples is None:
            raise ConfigError(f"--noisy draws one of a row's per-seed scores, but {table.path}"
                              f"'s {table.metric!r} holds one score per row")
        self.table, self.missing, self.invert, self.noisy = table, missing, invert, noisy
        self.reward = RewardConfig()
        # ``tag`` separates caches that must not be shared (a knowledge source's)
        self.signature = f"table|{table.path}|{table.metric}|{missing}|noisy={noisy}|{tag}" + (
            "|inverted" if invert else "")

    def evaluate(self, spec: Any, seed: int) -> RolloutResult:
        key = spec.key
        s = self.table.scores.get(key)
        if s is None:
            if self.missing == "error":
                raise TaskError(f"architecture {key!r} is not in the table {self.table.path}: "
                                "list it, or pass --missing fail (missing='fail')")
            return RolloutResult(key, key, "invalid", f"{key!r} is not in the table",
                                 self.rescore(None, None, None), seed=seed)
        if self.noisy:  # one seed's score, drawn by the evaluation seed, as a training gives
            seeds = self.table.samples[key]
            s = seeds[int(np.random.default_rng(seed).integers(len(seeds)))]
        s = -s if self.invert else s
        return RolloutResult(key, key, "ok", "", s, s, None, None, None, 0.0, 0, seed)

    def rescore(self, accuracy: float | None, latency_ms: float | None, macs: int | None) -> float:
        if accuracy is None:
            return -self.table.best if self.invert else self.table.worst
        return float(accuracy)

    def cost(self, key: str) -> float:
        """One query's cost: the table's cost field, or 1 (a query) without one."""
        return 1.0 if self.table.costs is None else self.table.costs[key]


def check_table(table: ScoreTable, space: FactorizedSpace, missing: str) -> None:
    """Check a table against a space it benchmarks: every key must be an architecture of the
    space and, with ``missing='error'``, every architecture must be listed. A space of more
    than :data:`ENUMERATE_MAX` decision vectors is not enumerated: its keys are not checked
    here, and an unlisted architecture is met when a run queries it.

    Raises:
        TaskError: a key that is not an architecture of the space (named, with an example of
            the space's keys), or an architecture the table misses (named).
    """
    if space.size > ENUMERATE_MAX:
        return
    keys = {space.decode(ix).key for ix in itertools.product(*(range(n) for n in space.sizes))}
    example = space.decode(space.sample(np.random.default_rng(0))).key
    for k in table.scores:
        if k not in keys:
            raise TaskError(f"{table.path}: key {k!r} is not an architecture of space "
                            f"{space.name!r} (its keys look like {example!r})")
    unlisted = keys.difference(table.scores)
    if unlisted and missing == "error":
        raise TaskError(f"{table.path} lists {len(table.scores)} of the {len(keys)} "
                        f"architectures of space {space.name!r} (not {min(unlisted)!r}, for "
                        "one): complete it, or pass --missing fail (missing='fail')")


def import_object(spec: str, what: str) -> Any:
    """The object ``"module:attr"`` names (``attr`` may be dotted); the module is looked for
    in the current folder first, as ``python -m`` does.

    Raises:
        ConfigError: not of that form, or it cannot be imported (one line).
    """
    mod, sep, attr = str(spec).partition(":")
    if not sep or not mod or not attr:
        raise ConfigError(f"{what} {spec!r:.60}: expected module:attribute")
    try:
        obj: Any = import_user_module(mod)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:  # noqa: BLE001  (the user's module: any error is one line)
        raise ConfigError(f"{what} {spec!r} cannot be imported: {type(e).__name__}: "
                          f"{' '.join(str(e).split())[:160]}") from None
    return obj
