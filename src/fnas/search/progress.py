"""The search loop's progress reports: one INFO log line per evaluation and per policy update
(on the ``fnas.search.loop`` logger), and the progress bar (:class:`Progress`)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from fnas.knowledge.store import Evaluation, Experiment
from fnas.strategies.base import Strategy

__all__ = ["Progress", "log_evaluation", "log_update", "postfix", "LOGGED"]

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


class Progress:
    """One run's progress: its bar (architectures, or trainings when the budget counts
    trainings; hidden unless ``enabled``) and its log lines.

    Args:
        exp: the run.
        strategy: the run's strategy (what it screened shows in the bar's postfix).
        total: the run's budget.
        done: the budget already spent (a resumed run).
        by_trained: the budget counts trainings, not evaluations.
        enabled: show the bar (the log lines go to the logger in any case).
    """

    def __init__(self, exp: Experiment, strategy: Strategy, total: int, done: int,
                 by_trained: bool, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.exp, self.strategy, self.by_trained = exp, strategy, by_trained
        self.bar = tqdm(total=total, initial=min(done, total), desc=exp.name,
                        disable=not enabled, unit="arch", dynamic_ncols=True)

    def resumed(self, done: float, reused: int) -> None:
        """One line as a recorded run continues: where it stands (``done`` of the budget,
        as the bar counts it) and how many evaluations of its interrupted batch are reused.
        On the bar's stream when it shows, and at INFO on the loop's logger."""
        unit = "trainings" if self.by_trained else "architectures"
        line = (f"resuming run {self.exp.name} at {done:g}/{self.bar.total} {unit}"
                + (f" ({reused} recorded in its interrupted batch, reused)" if reused else ""))
        if not self.bar.disable:
            self.bar.write(line, file=sys.stderr)
        logger.info("%s", line)

    def evaluation(self, ev: Evaluation, best: float, n_trained: int, resumed: bool) -> None:
        """An evaluation was recorded (``resumed``: before the resume)."""
        if ev.trained or not self.by_trained:
            self.bar.update(ev.fidelity if self.by_trained else 1)  # a training by fidelity
        self.bar.set_postfix(postfix(best, self.strategy, n_trained))
        log_evaluation(self.exp, ev, best, resumed)

    def update(self, iteration: int, n_done: int, n_trained: int, best: float,
               metrics: dict[str, Any]) -> None:
        """The strategy was updated on a batch (its postfix shows this round's screening)."""
        self.bar.set_postfix(postfix(best, self.strategy, n_trained))
        log_update(self.exp, iteration, n_done, n_trained, best, metrics)

    def close(self) -> None:
        self.bar.close()
