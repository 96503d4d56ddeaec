"""The stratified train/validation split and scikit-learn's digits, without importing
scikit-learn.

Importing ``sklearn`` costs about a second per process (it loads scipy and pandas), and every
process that trains on digits or splits a dataset paid it: each ``fnas search``, each Ray or
worker process. fnas used two things from it:

- ``train_test_split(arange(n), test_size=f, stratify=y, random_state=seed)``, which
  :func:`stratified_split` reproduces step for step (scikit-learn's ``StratifiedShuffleSplit``
  with one split), so that every split, and every result recorded with one, stays what it was.
  ``tests/test_datasets.py`` checks it index for index against scikit-learn itself. The split
  is now fnas's own, so a scikit-learn release that changes its algorithm changes nothing here;
- ``load_digits()``: :func:`read_digits` reads the same file, ``digits.csv.gz`` in
  scikit-learn's package data, the same way (``np.loadtxt``).
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from pathlib import Path

import numpy as np

__all__ = ["stratified_split", "read_digits"]


def _approximate_mode(class_counts: np.ndarray, n_draws: int,
                      rng: np.random.RandomState) -> np.ndarray:
    """scikit-learn's ``_approximate_mode``: per-class draws summing to n_draws, remainders
    given out by size, ties broken at random (the same calls on the same generator)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_split(y: np.ndarray, val_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of ``len(y)`` samples, stratified by y, as
    ``train_test_split(np.arange(len(y)), test_size=val_fraction, stratify=y,
    random_state=seed)`` gives them. ValueError (one line) when a class has fewer than 2
    samples or a side would get fewer samples than there are classes."""
    y = np.asarray(y)
    n = len(y)
    n_test = math.ceil(val_fraction * n)
    n_train = n - n_test
    if n_train == 0:
        raise ValueError(f"With n_samples={n}, test_size={val_fraction} and train_size=None, "
                         "the resulting train set will be empty")
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    y_indices = y_indices.reshape(-1)
    if np.min(class_counts) < 2:
        few = classes[class_counts < 2].tolist()
        raise ValueError("The least populated classes in y have only 1 member, which is too "
                         f"few. The minimum number of groups for any class cannot be less "
                         f"than 2. Classes with too few members are: {few}")
    for side, size in (("train_size", n_train), ("test_size", n_test)):
        if size < len(classes):
            raise ValueError(f"The {side} = {size} should be greater or equal to the number "
                             f"of classes = {len(classes)}")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list = []
    test: list = []
    for i in range(len(classes)):
        perm = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(perm[: n_i[i]])
        test.extend(perm[n_i[i]: n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits: (images (N, 8, 8) float64 in 0..16, labels (N,) int),
    read from its package data as ``sklearn.datasets.load_digits`` reads them."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("dataset 'digits' is scikit-learn's: pip install scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/digits.csv.gz"
    with gzip.open(path, mode="rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int, copy=False)
