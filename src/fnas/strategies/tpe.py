"""Optuna's TPE as a strategy: the baseline a user would pick first (issue 34).

Each decision of the space is one categorical parameter (its choice index) of an Optuna study
that maximises the reward; every batch asks ``n`` trials and tells their rewards. An
architecture Optuna suggests again is served from the search's cache, as any strategy's
repeat is (it costs nothing and counts as a sample, not a training).

Settings (:class:`TPEConfig`) are Optuna's defaults (``TPESampler(seed=...)``: 10 random
start-up trials, independent sampling), as a user who picks TPE gets them, except the
constant liar, which Optuna offers for parallel workers: with a batch of B, TPE suggests B
trials before it sees their results, as B parallel Optuna workers do.

Exact resume without Optuna's private state: the study keeps only the finished trials (the
strategy's state, replayed into a fresh in-memory study on resume), and each batch draws from
a sampler seeded by the run's seed and the batch number, so a resumed run asks what an
uninterrupted one would.

Needs ``optuna`` (``pip install 'optuna>=3.4'``, the ``optuna`` extra); without it, choosing
``tpe`` is a one-line error.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fnas.errors import ConfigError
from fnas.space.factorized import FactorizedSpace
from fnas.strategies.base import Proposal, Strategy

__all__ = ["TPEConfig", "TPEStrategy"]


@dataclass(frozen=True)
class TPEConfig:
    """Optuna's ``TPESampler`` settings (its defaults)."""

    n_startup_trials: int = 10
    """Random trials before TPE models the results."""
    multivariate: bool = False
    """Model the decisions jointly (Optuna's default: independently)."""
    constant_liar: bool = True
    """Treat the batch's pending trials as bad results, so that one batch spreads out.
    NOTE: Optuna's default is False; then a batch of B > 1 trials asked before any is told
    repeats itself (1 or 2 distinct architectures per batch of 8 on NAS-Bench-Macro's space),
    so fnas takes Optuna's own setting for parallel workers."""

    def __post_init__(self) -> None:
        if isinstance(self.n_startup_trials, bool) or not isinstance(self.n_startup_trials, int) \
                or self.n_startup_trials < 0:
            raise ConfigError(f"tpe n_startup_trials={self.n_startup_trials!r} must be an "
                              "integer >= 0")


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("the tpe strategy needs Optuna: pip install 'optuna>=3.4' (fnas's "
                          "optuna extra)") from None
    return optuna


class TPEStrategy(Strategy):
    """Optuna's TPE over the space's decisions, one study per run."""

    name = "tpe"

    def __init__(self, space: FactorizedSpace, seed: int, cfg: TPEConfig | None = None) -> None:
        super().__init__(space, seed)
        self.optuna = _optuna()
        self.cfg = cfg or TPEConfig()
        dist = self.optuna.distributions.CategoricalDistribution
        self._dists = {d.name: dist(list(range(d.size))) for d in space.decisions}
        self._told: list[tuple[list[int], float | None]] = []
        self._pending: list[Any] = []
        self.iteration = 0
        self.study = self._new_study()

    def _new_study(self) -> Any:
        with _quiet(self.optuna):
            return self.optuna.create_study(direction="maximize")

    def ask(self, n: int) -> list[Proposal]:
        # a fresh sampler per batch, seeded by (seed, batch): exact resume from the trials alone
        self.study.sampler = self.optuna.samplers.TPESampler(
            seed=(self.seed * 1_000_003 + self.iteration) % 2**32,
            n_startup_trials=self.cfg.n_startup_trials, multivariate=self.cfg.multivariate,
            constant_liar=self.cfg.constant_liar)
        out = []
        with _quiet(self.optuna):
            for _ in range(n):
                trial = self.study.ask(self._dists)
                d = tuple(int(trial.params[name]) for name in self._dists)
                self._pending.append(trial)
                out.append(Proposal(self.space.decode(d), d))
        return out

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        with _quiet(self.optuna):
            for trial, p, r in zip(self._pending, proposals, rewards, strict=True):
                value = float(r) if math.isfinite(r) else None  # a non-finite one failed
                if value is None:
                    self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
                else:
                    self.study.tell(trial, value)
                self._told.append((list(p.decisions), value))
        self._pending = []
        self.iteration += 1
        return {"tpe/trials": float(len(self._told))}

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {}, {"told": self._told, "iteration": self.iteration}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self._told = [(list(d), None if v is None else float(v)) for d, v in meta["told"]]
        self.iteration = int(meta["iteration"])
        self.study = self._new_study()
        names, states = list(self._dists), self.optuna.trial.TrialState
        with _quiet(self.optuna):
            for d, v in self._told:
                self.study.add_trial(self.optuna.trial.create_trial(
                    params=dict(zip(names, d, strict=True)), distributions=self._dists,
                    value=v, state=states.FAIL if v is None else states.COMPLETE))


class _quiet:
    """Optuna logs every finished trial at INFO and warns that the constant liar is
    experimental; fnas shows its own progress."""

    def __init__(self, optuna: Any) -> None:
        self.optuna = optuna

    def __enter__(self) -> None:
        self.level = self.optuna.logging.get_verbosity()
        self.optuna.logging.set_verbosity(max(self.level, logging.WARNING))
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()  # constant_liar is "experimental" in Optuna: said once, here
        warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)

    def __exit__(self, *exc: Any) -> None:
        self.warnings.__exit__(*exc)
        self.optuna.logging.set_verbosity(self.level)
