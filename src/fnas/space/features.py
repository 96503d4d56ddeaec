"""Free features of an architecture: what is known about it before any training.

The critic's one-hot decisions say which choices a network made, not what they amount to: a
wider block and a deeper one are two unrelated bits. Features that summarise a network's size
(issue 34, docs/DESIGN.md "The critic") give the critic a smooth axis to learn along from few
results. They are analytic (:func:`fnas.space.cost.arch_cost`, about 0.25 ms per network), so
every candidate of a round gets them.

:func:`arch_features` works for any :class:`~fnas.space.spec.ArchSpec` with a fixed number of
blocks (the MnasNet space, NAS-Bench-Macro's, a user's block-string space): the log of the
multiply-adds and parameters, and per block its depth (layers), log width (output channels)
and log resolution (output side). A user space whose ``decode`` returns something else gets
features from ``fnas.make_space(..., features=fn)`` or none.

What the critic does with them is learnt, not assumed: a feature whose sign or weight differs
between tasks (larger is better on one, worse on another) is fitted per run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fnas.space.cost import arch_cost
from fnas.space.spec import ArchSpec

__all__ = ["FeatureMap", "arch_features", "feature_names"]

FeatureFn = Callable[[Any], Sequence[float]]
"""A decoded architecture -> its features (a fixed-length sequence of finite floats)."""


def feature_names(n_blocks: int) -> list[str]:
    """Names of :func:`arch_features`'s outputs for a network of ``n_blocks`` blocks."""
    names = ["log_macs", "log_params"]
    for i in range(n_blocks):
        names += [f"b{i}_depth", f"b{i}_log_width", f"b{i}_log_res"]
    return names


def arch_features(spec: ArchSpec, input_size: int, in_chans: int = 3,
                  num_classes: int = 10) -> list[float]:
    """Analytic features of ``spec`` on ``in_chans`` x ``input_size``^2 input (names:
    :func:`feature_names`)."""
    cost = arch_cost(spec, input_size, in_chans, num_classes)
    out = [math.log(max(cost.macs, 1)), math.log(max(cost.params, 1))]
    for b, blk in zip(cost.blocks, spec.blocks, strict=True):
        out += [float(blk.repeats), math.log(max(b.out_chs, 1)), math.log(max(b.out_size, 1))]
    return out


class FeatureMap:
    """Decision vectors -> standardised feature rows, with a fixed standardisation.

    The mean and spread of each feature come once from ``calibrate`` uniform samples of the
    space (seeded), so that a point's input never changes as a run goes on (the critic's fit
    is warm-started) and a resumed run computes the same inputs. Constant features (a fixed
    resolution) become 0. Rows are cached by decision vector.
    """

    def __init__(self, space: Any, fn: FeatureFn, calibrate: int = 256, seed: int = 0) -> None:
        self.space, self.fn = space, fn
        self._cache: dict[tuple[int, ...], np.ndarray] = {}
        rng = np.random.default_rng([seed, 3541])
        raw = np.stack([self._raw(space.sample(rng)) for _ in range(calibrate)])
        self.mean = raw.mean(0)
        sd = raw.std(0)
        self.scale = np.where(sd > 1e-12, 1.0 / np.where(sd > 1e-12, sd, 1.0), 0.0)

    @property
    def size(self) -> int:
        return int(self.mean.size)

    def _raw(self, decisions: Sequence[int]) -> np.ndarray:
        key = tuple(int(d) for d in decisions)
        row = self._cache.get(key)
        if row is None:
            row = np.asarray(self.fn(self.space.decode(key)), dtype=np.float64).reshape(-1)
            if not np.isfinite(row).all():
                row = np.nan_to_num(row, nan=0.0, posinf=0.0, neginf=0.0)
            self._cache[key] = row
        return row

    def __call__(self, decisions: Any) -> np.ndarray:
        """(n, T) decision vectors -> (n, F) standardised features."""
        x = np.asarray(decisions, dtype=np.int64).reshape(-1, len(self.space.sizes))
        if not len(x):
            return np.zeros((0, self.size))
        raw = np.stack([self._raw(r) for r in x.tolist()])
        return (raw - self.mean) * self.scale
