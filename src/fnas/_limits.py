"""fnas's limits on settings and sizes, and the integer check that enforces them: the lowest
layer, so that the network builder (``fnas.nn``), the proxy task (``fnas.tasks``) and the search
read one definition (``fnas.tasks.trainer`` re-exports them)."""

from __future__ import annotations

import numpy as np

from fnas.errors import ConfigError

__all__ = ["MAX_IMAGE_SIZE", "MAX_SEED", "MAX_COUNT", "check_int", "check_seed"]

MAX_IMAGE_SIZE = 1024
"""Largest input height = width fnas builds or trains at (``image_size``, ``--input-size``)."""
MAX_SEED = 2**32 - 1
"""Seeds are in ``[0, MAX_SEED]`` (numpy's ``SeedSequence`` and torch both take them)."""


MAX_COUNT = 10**9
"""Largest count fnas takes as a setting (budget, batch, epochs, samples...): far beyond any
search, and well inside SQLite's 64-bit integers, so a setting is refused before anything is
written rather than read back later as damage."""


def check_int(value: object, what: str, lo: int = 0, hi: int = MAX_COUNT) -> int:
    """``value`` as an ``int`` if it is an integer (a numpy integer too; not a bool, not a
    float) in ``[lo, hi]``, else a one-line ConfigError naming ``what``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or not lo <= value <= hi:
        top = "2**32 - 1" if hi == MAX_SEED else f"{hi:,}"
        raise ConfigError(f"{what}={value!r:.40} must be an integer in [{lo}, {top}]")
    return int(value)


def check_seed(seed: object, what: str = "seed") -> int:
    """``seed`` if it is an integer in ``[0, MAX_SEED]``, else a one-line ConfigError."""
    return check_int(seed, what, 0, MAX_SEED)
