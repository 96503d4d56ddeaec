"""A learned cost model: the reward's known part when it is measured, not computed.

Issue 34, docs/DESIGN.md "What is known before training": MnasNet's reward is ``accuracy x
(cost / T) ** w``. Where the evaluator computes the cost before training (analytic MACs, a
table's FLOPs) the fnas critic composes it exactly (:mod:`.known`). Where the cost is only
*measured* with the result, as for a user objective that returns ``{"accuracy", "macs"}`` or
``{"accuracy", "latency_ms"}``, or the proxy task's measured latency, the cost is still far
easier to learn than the accuracy: it is a smooth, nearly deterministic function of a
network's size. This model learns it from the run's own measured costs, and the critic then
learns only the accuracy, as with an exact factor.

The model: ``log cost`` is linear in the candidate's **size inputs**, fitted by ridge
regression (closed form, deterministic) on the run's own results:

- the log multiply-adds and log parameters of a block-string architecture
  (:func:`fnas.space.features.arch_features` at a fixed 224 x 224 RGB input: the network's
  size at any input ranks alike; measured on the MnasNet space at 28 x 28, log MACs at 224
  ranks log MACs at 28 at Spearman 0.99);
- else the evaluator's own features (:meth:`Evaluator.features`, or ``make_space(...,
  features=)``);
- else the one-hot decisions.

Own results use their measured cost; only candidates not yet evaluated use the model. The
model is used once it has ``MIN_POINTS`` measured costs with two distinct values. A run whose
objective returns its own reward (not the composed one) is never decomposed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fnas.space.factorized import FactorizedSpace
from fnas.space.features import arch_features
from fnas.space.spec import ArchSpec

__all__ = ["CostModel", "MIN_POINTS"]

MIN_POINTS = 4
"""Measured costs the model needs before it is used (with two distinct values)."""
_RIDGE = 1e-2
"""Ridge penalty on standardised inputs (small: the size inputs are few and informative;
with one-hot inputs it keeps an under-determined fit finite)."""


class CostModel:
    """``log cost`` of a space's architectures, learnt from measured costs.

    Args:
        space: the searched space.
        evaluator: the run's evaluator (its ``features`` when the space has no block
            string architectures).
    """

    def __init__(self, space: FactorizedSpace, evaluator: Any) -> None:
        self.space, self.evaluator = space, evaluator
        probe = space.decode(space.sample(np.random.default_rng(0)))
        self.kind = "size" if _size(probe) is not None else \
            "features" if _finite_row(evaluator.features(probe)) else "onehot"
        self._inputs: dict[tuple[int, ...], np.ndarray] = {}
        self._w: np.ndarray | None = None
        self._fitted_on = -1

    @property
    def ready(self) -> bool:
        """Whether the model has been fitted (and may be used)."""
        return self._w is not None

    def fit(self, pairs: Sequence[tuple[Sequence[int], float]]) -> None:
        """Fits on ``(decisions, measured cost)`` pairs; a no-op if their number has not
        changed since the last fit (the pairs only grow within a run)."""
        if len(pairs) == self._fitted_on:
            return
        self._fitted_on = len(pairs)
        y = np.log(np.asarray([c for _, c in pairs], dtype=np.float64))
        if len(y) < MIN_POINTS or np.ptp(y) <= 1e-12:
            self._w = None
            return
        a = self._design([d for d, _ in pairs])
        self._mu, sd = a.mean(0), a.std(0)
        self._sd = np.where(sd > 1e-12, sd, 1.0)
        z = (a - self._mu) / self._sd
        self._y0 = float(y.mean())
        self._w = np.linalg.solve(z.T @ z + _RIDGE * len(y) * np.eye(z.shape[1]),
                                  z.T @ (y - self._y0))

    def predict(self, decisions: Any) -> np.ndarray:
        """(n, T) decision vectors -> (n,) predicted costs (only once :attr:`ready`)."""
        assert self._w is not None, "predict() before the model is fitted"
        z = (self._design(decisions) - self._mu) / self._sd
        return np.exp(z @ self._w + self._y0)

    def _design(self, decisions: Any) -> np.ndarray:
        x = np.asarray(decisions, dtype=np.int64).reshape(-1, len(self.space.sizes))
        return np.stack([self._row(tuple(r)) for r in x.tolist()]) if len(x) else \
            np.zeros((0, 1))

    def _row(self, key: tuple[int, ...]) -> np.ndarray:
        row = self._inputs.get(key)
        if row is None:
            if self.kind == "onehot":
                row = np.concatenate([np.eye(n)[k] for n, k in zip(self.space.sizes, key,
                                                                    strict=True)])
            else:
                spec = self.space.decode(key)
                got = _size(spec) if self.kind == "size" else self.evaluator.features(spec)
                row = np.nan_to_num(np.asarray(got if got is not None else [0.0],
                                               dtype=np.float64).reshape(-1))
            self._inputs[key] = row
        return row


def _size(spec: Any) -> list[float] | None:
    """log MACs and log params of a block-string architecture at 224 x 224 RGB, or None."""
    if not isinstance(spec, ArchSpec):
        return None
    try:
        return arch_features(spec, 224, 3, 1000)[:2]
    except Exception:  # noqa: BLE001  (a user's block string that arch_cost cannot size)
        return None


def _finite_row(row: Any) -> bool:
    try:
        return row is not None and len(row) > 0 and all(math.isfinite(float(v)) for v in row)
    except (TypeError, ValueError):
        return False
