"""Shared test setup.

Many tests start ``fnas`` in a subprocess while pytest itself holds torch. With torch's
default of one thread per core, two such processes on a 2-core machine oversubscribe it and
OpenMP's spinning threads slow each other many times over (an 8-architecture test search:
28 s at one thread, several minutes at two, on a loaded 2-core VM). One thread per process,
inherited by every subprocess, keeps the suite's run time independent of what else the
machine does. A value the caller set is kept.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
