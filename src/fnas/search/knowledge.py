"""Lifelong knowledge for a new search: the real results of earlier runs in the store, as the
critic's pre-training points (docs/DESIGN.md, "Knowledge across searches")."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from fnas.errors import ConfigError
from fnas.execution.evaluators import Evaluator
from fnas.knowledge.readers import intact_experiments, readable_evaluations, skipped
from fnas.knowledge.store import Experiment, Store
from fnas.search.config import SearchConfig
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Strategy

__all__ = ["gather_knowledge", "pretrain"]

logger = logging.getLogger(__name__)


def gather_knowledge(store: Store, exclude: int, decision_signature: str,
                     which: str = "all", rescore: Any = None,
                     ) -> tuple[list[tuple[tuple[int, ...], float]], list[str]]:
    """Real full-fidelity results of earlier experiments with the same decisions (a
    low-fidelity result teaches nothing here), each distinct architecture
    of an experiment once (its first real result; a cached repeat is no new evidence), each
    experiment's rewards turned into rank-Gaussian scores within that experiment (so that
    tasks of different accuracy levels and heavy low tails teach the same ranking). Returns
    ``(knowledge, experiment names)``.

    ``rescore(accuracy, latency_ms, macs) -> reward`` (this search's reward, e.g.
    :meth:`Evaluator.rescore`) re-scores every stored measurement first: a run that optimised
    another objective teaches what it *measured*, not what it was rewarded for. A run lacking
    a metric the new reward needs (no latency recorded, say) teaches its own rewards instead.

    Another run's damaged rows are skipped with a warning (a new search is never stopped by
    them): a run whose experiment row is damaged, and the damaged evaluation rows of a run.

    Raises:
        StoreError: ``which`` names an unknown run. ConfigError: it names an incompatible one.
    """
    from fnas.agent.acquisition import rank_gauss

    if which == "none":
        return [], []
    if which == "all":  # a run whose row is damaged is left out, with a warning
        exps = [e for e in intact_experiments(store)
                if e.id != exclude and e.config.get("decision_signature") == decision_signature]
    else:
        exps = [store.get_experiment(r.strip()) for r in which.split(",") if r.strip()]
        for e in exps:
            if e.config.get("decision_signature") != decision_signature:
                raise ConfigError(f"run {e.name!r} searched other decisions: it cannot teach "
                                  "this search")
    knowledge, names = [], []
    for e in exps:
        rows, seen = [], set()
        evals, bad = readable_evaluations(store, e.id)  # another run's damage stops no search
        if bad:
            logger.warning("knowledge from %s", skipped(e.name, bad))
        for ev in evals:
            if ev.counts and (ev.trained or ev.cached) and ev.arch_key not in seen:
                seen.add(ev.arch_key)
                rows.append(ev)
        if len(rows) < 2:
            continue
        r = np.array([ev.reward for ev in rows])
        if rescore is not None:
            try:
                r = np.array([rescore(ev.accuracy, ev.latency_ms, ev.macs) for ev in rows])
            except ConfigError:  # a metric this reward needs was not recorded by that run
                pass
        knowledge += [(ev.decisions, float(z)) for ev, z in zip(rows, rank_gauss(r),
                                                                 strict=True)]
        names.append(e.name)
    return knowledge, names


def pretrain(store: Store, exp: Experiment, cfg: SearchConfig, space: FactorizedSpace,
             strategy: Strategy, evaluator: Evaluator) -> None:
    """Pre-train ``strategy`` (its critic) on the knowledge ``cfg.knowledge`` names, and
    record how many points from which runs it used."""
    rescore = evaluator.rescore if cfg.knowledge_as == "measurements" else None
    knowledge, names = gather_knowledge(store, exp.id, space.decision_signature, cfg.knowledge,
                                        rescore)
    used = strategy.pretrain(knowledge) if knowledge else 0
    store.update_experiment(exp.id, stats={"knowledge/points": used,
                                           "knowledge/experiments": names if used else []})
