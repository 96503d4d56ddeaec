"""The search loop's progress reports: one INFO log line per evaluation and per policy update
(on the ``fnas.search.loop`` logger), and the progress bar's postfix."""

from __future__ import annotations

import logging
from typing import Any

from fnas.knowledge.store import Evaluation, Experiment
from fnas.search.strategy import Strategy

__all__ = ["log_evaluation", "log_update", "postfix", "LOGGED"]

logger = logging.getLogger("fnas.search.loop")  # the loop's own logger, as before the split


LOGGED = ("losses/entropy", "controller/entropy", "losses/approx_kl", "losses/clipfrac",
           "screen/screened", "critic/pick_tau", "replay/n")
"""Update metrics that the update's log line shows, where the strategy reports them."""


def log_evaluation(exp: Experiment, ev: Evaluation, best: float, resumed: bool) -> None:
    """One INFO line per evaluation: where, how (trained, cached, predicted), reward, time."""
    if not logger.isEnabledFor(logging.INFO):
        return
    how = "trained" if ev.trained else "cached" if ev.cached else \
        "predicted" if ev.predicted else "recorded"
    logger.info("run %s eval %d.%d %s%s: reward %.4f (%s), best %.4f, %.2f s, %s", exp.name,
                ev.iteration, ev.slot, how, " (recorded before the resume)" if resumed else "",
                ev.reward, ev.status, best, ev.train_seconds, ev.arch)


def log_update(exp: Experiment, iteration: int, n_done: int, n_trained: int, best: float,
               metrics: dict[str, Any]) -> None:
    """One INFO line per policy update: its index, progress, best so far, key metrics."""
    if not logger.isEnabledFor(logging.INFO):
        return
    stats = "".join(f", {k} {float(v):.4g}" for k, v in metrics.items()
                    if k in LOGGED and isinstance(v, (int, float)) and not isinstance(v, bool))
    logger.info("run %s update %d: %d samples, %d trained, best %.4f%s", exp.name, iteration,
                n_done, n_trained, best, stats)


def postfix(best: float, strategy: Strategy, n_trained: int) -> dict[str, str]:
    """The progress bar's postfix: best real reward, and what the critic screened out."""
    out = {"best": f"{best:.4f}" if best > float("-inf") else "-"}
    screened = getattr(strategy, "screened_total", None)
    if screened is not None:
        out["screened"] = str(screened)
        out["trained"] = str(n_trained)
    return out
