"""Shared test setup.

Many tests start ``fnas`` in a subprocess while pytest itself holds torch. With torch's
default of one thread per core, two such processes on a 2-core machine oversubscribe it and
OpenMP's spinning threads slow each other many times over (an 8-architecture test search:
28 s at one thread, several minutes at two, on a loaded 2-core VM). One thread per process,
inherited by every subprocess, keeps the suite's run time independent of what else the
machine does. A value the caller set is kept.

``bench_script`` loads a benchmark script as a module for the tests of its metrics.

``local_ray`` is one local Ray for the whole test session (about 5 s to start), started the
way ``RayExecutor`` starts one (loopback only), so that every in-process Ray test joins it
instead of starting and stopping its own; ``test_ray_resume``'s subprocess drivers (killed,
then resumed) join it by its address too. Tests that use it carry the ``xdist_group("ray")``
mark, so that under ``pytest -n 2`` they run in one worker and share its Ray.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

os.environ.setdefault("OMP_NUM_THREADS", "1")


@functools.cache
def _load_benchmark(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def bench_script():
    """``bench_script("ablation_real")``: a script of ``benchmarks/`` loaded as a module, once
    per session (the scripts are not a package), so tests can call its functions."""
    return _load_benchmark


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray with 2 CPUs for the session, started by fnas's own ``RayExecutor`` (which
    binds it to the loopback interface); a ``RayExecutor()`` made in a test joins it and
    leaves it running when closed. Stopped at the end of the session."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9')")
    from fnas.execution.executors import RayExecutor

    owner = RayExecutor(parallel=2)
    assert ray.is_initialized()
    yield ray
    owner.close()
