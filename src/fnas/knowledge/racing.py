"""A run's incumbent under noise: racing, as SMAC's intensification does (Hutter et al.,
2011), so that one lucky training does not become what a search returns.

With ``confirm = c`` (``SearchConfig.confirm``), an architecture is *confirmed* once it has
``c`` real full-fidelity results, each from its own training (a *replicate*: its own seed).
The incumbent is the confirmed architecture with the best mean reward; before any is
confirmed, the best unconfirmed one. A *challenger*, an unconfirmed architecture whose mean
beats the confirmed incumbent's (or, before one is confirmed, the incumbent itself), is
trained again with a new seed before it can take over; the loop schedules these repeats
(:meth:`Race.challengers`), at most a few a batch. ``c = 1`` (the default) is the behaviour
before racing: every result counts at once, and nothing is repeated.

With the knowledge pool, a run's ordinary results are pool-initialised: trained from weights
that earlier trainings left, which can make a network look better than it trains from
scratch (on mnist5k, 0.96 against 0.89). A repeat is therefore trained **from scratch**, the
run's full protocol, and once an architecture has such a result, its mean is theirs: the
pool-initialised result only nominated it. (So a pool-initialised result never counts by
itself.)

A replicate is told apart by its cache signature (:func:`replicate_signature`): replicate 0
is the run's ordinary result (its cache signature is the task's, as before), replicate ``r``
is marked ``|replicate=r``, so that the cache never answers a repeat with the result it
repeats. Pure logic over plain values: the store (``Store.top``), the loop and the
benchmarks' incumbent metric use the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ArchRecord", "Race", "pooled", "replicate_of", "replicate_signature",
           "REPLICATE_MARK"]

REPLICATE_MARK = "|replicate="
"""What marks a repeat's cache signature: ``<signature>|replicate=<r>``."""


def replicate_signature(signature: str, replicate: int) -> str:
    """The cache signature of replicate ``replicate`` of a result whose signature is
    ``signature`` (0: ``signature`` itself)."""
    return signature if replicate == 0 else f"{signature}{REPLICATE_MARK}{int(replicate)}"


def replicate_of(signature: str) -> int:
    """Which replicate a recorded cache signature holds (0: an ordinary result, or a signature
    without the mark)."""
    head, sep, tail = signature.rpartition(REPLICATE_MARK)
    if not sep or not tail.isdigit():
        return 0
    return int(tail)


@dataclass
class ArchRecord:
    """What a race knows of one architecture."""

    key: str
    """The architecture's key."""
    first: Any
    """Its first recorded item (an ``Evaluation``, or a benchmark's row): what is returned
    for it."""
    order: int
    """When it was first seen (ties in the mean go to the earlier one)."""
    values: dict[int, float] = field(default_factory=dict)
    """Replicate -> its value (the first result of that replicate)."""
    attempts: set[int] = field(default_factory=set)
    """Replicates tried, failed ones included."""
    pooled: set[int] = field(default_factory=set)
    """Replicates whose training started from the knowledge pool's weights."""

    @property
    def n(self) -> int:
        """Its results that count: distinct replicates with a value."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """The mean of its replicates' values: of those trained from scratch, once it has
        any (a pool-initialised result only nominates; see the module)."""
        own = [v for r, v in self.values.items() if r not in self.pooled] or list(
            self.values.values())
        return sum(own) / len(own)


class Race:
    """Racing of a run's results: feed each with :meth:`add`, in the order recorded.

    Args:
        confirm: results an architecture needs to be confirmed (1: no racing).
    """

    def __init__(self, confirm: int = 1) -> None:
        self.confirm = max(1, int(confirm))
        self.archs: dict[str, ArchRecord] = {}

    def add(self, key: str, replicate: int, value: float | None, item: Any = None,
            pooled: bool = False) -> None:
        """Record replicate ``replicate`` of architecture ``key``: ``value`` for a result that
        counts, None for one that does not (failed; a prediction or a low-fidelity result
        should not be added at all); ``pooled`` for a training that started from the
        knowledge pool's weights. A replicate already recorded keeps its first value."""
        rec = self.archs.get(key)
        if rec is None:
            if value is None:
                return  # a failure alone makes no candidate
            rec = self.archs[key] = ArchRecord(key, item, len(self.archs))
        rec.attempts.add(int(replicate))
        if value is not None and int(replicate) not in rec.values:
            rec.values[int(replicate)] = float(value)
            if pooled:
                rec.pooled.add(int(replicate))

    def ranking(self) -> list[ArchRecord]:
        """Every architecture with a result: the confirmed ones by mean (best first), then the
        unconfirmed ones by mean."""
        return sorted((r for r in self.archs.values() if r.n), key=self._rank)

    def incumbent(self) -> ArchRecord | None:
        """What the run would return now (None: no result yet)."""
        recs = [r for r in self.archs.values() if r.n]
        return min(recs, key=self._rank) if recs else None  # ranking()[0], without a sort

    def _rank(self, r: ArchRecord) -> tuple[bool, float, int]:
        return r.n < self.confirm, -r.mean, r.order

    def challengers(self, k: int) -> list[tuple[ArchRecord, int]]:
        """Up to ``k`` architectures to train again, best mean first, each with the replicate
        to train next: the unconfirmed ones (fewer than ``confirm`` tries) that beat the
        confirmed incumbent's mean, or, while none is confirmed, the incumbent. Empty
        without racing."""
        if self.confirm <= 1 or k <= 0:
            return []
        inc = self.incumbent()
        if inc is None:
            return []
        confirmed = inc.n >= self.confirm
        out = [r for r in self.ranking() if len(r.attempts) < self.confirm
               and (r is inc or (confirmed and r.mean > inc.mean))]
        return [(r, max(r.attempts) + 1) for r in out[:k]]

    def extend(self, items: Iterable[tuple[str, int, float | None, Any]]) -> Race:
        """:meth:`add` each ``(key, replicate, value, item)``; the race."""
        for key, replicate, value, item in items:
            self.add(key, replicate, value, item)
        return self


def pooled(ev: Any) -> bool:
    """Whether evaluation ``ev`` trained from weights the knowledge pool gave it."""
    return getattr(ev, "pool_snapshot", None) is not None and bool(
        getattr(ev, "pool_coverage", None))


def top_results(rows: Iterable[Any], confirm: int, k: int) -> list[Any]:
    """The best ``k`` architectures among a run's real full-fidelity ``Evaluation`` rows (in
    recording order, failed ones included: they count as tries), by the racing rule. Each is
    its first row; one with several replicates carries their mean ``reward`` (and mean
    ``accuracy``, when every replicate has one)."""
    from dataclasses import replace

    race, accuracies = Race(confirm), {}
    for ev in rows:
        r = replicate_of(ev.task_signature)
        ok = ev.status == "ok"
        race.add(ev.arch_key, r, ev.reward if ok else None, ev, pooled(ev))
        if ok:
            accuracies.setdefault((ev.arch_key, r), ev.accuracy)
    out = []
    for rec in race.ranking()[:k]:
        ev = rec.first
        if rec.n > 1:
            accs = [accuracies[(rec.key, r)] for r in rec.values if r not in rec.pooled] or [
                accuracies[(rec.key, r)] for r in rec.values]
            acc = sum(accs) / len(accs) if all(a is not None for a in accs) else ev.accuracy
            ev = replace(ev, reward=rec.mean, accuracy=acc)
        out.append(ev)
    return out
