"""Rollouts on Ray: a search with 2 rollouts in flight on a local Ray, failures that never stop
a search (a rollout that raises, one that diverges, a worker that dies), the driver as the only
writer of the store and the pool."""

import os
import sys

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9')")

from fnas.execution.evaluators import Evaluator  # noqa: E402
from fnas.execution.executors import LocalExecutor, RayExecutor, RolloutJob  # noqa: E402
from fnas.knowledge import Pool, Store  # noqa: E402
from fnas.search import SearchConfig, run_search  # noqa: E402
from fnas.space import mnas_space  # noqa: E402
from fnas.tasks import RewardConfig, RolloutResult, TaskConfig  # noqa: E402

from fast import TINY_TASK  # noqa: E402

# searches on the session's local Ray (conftest's local_ray), in one xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

TASK = TaskConfig(**TINY_TASK, epochs=2)  # real trainings on 100 images (tests/fast.py)


@pytest.fixture(scope="module")
def module_ray(local_ray):
    # this module's evaluators travel by value: Ray's workers cannot import a test module
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


class Faulty(Evaluator):
    """Slot-dependent trouble: raise, diverge (NaN), kill the worker, or succeed."""

    reward = RewardConfig(failure_reward=-1.0)

    def __init__(self, marker):
        self.marker = str(marker)

    def evaluate(self, spec, seed):
        mode = seed % 4
        if mode == 0:
            raise RuntimeError("boom")  # escapes: Ray reports it, the executor records it
        if mode == 1:
            return RolloutResult(spec.to_str(), spec.key, "nan", "loss is nan", -1.0, seed=seed)
        if mode == 2 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)  # the worker dies once; Ray's retry then succeeds
        return RolloutResult(spec.to_str(), spec.key, "ok", "", 0.5, accuracy=0.5, seed=seed)


def test_ray_search_two_in_flight_with_the_pool(tmp_path, module_ray):
    """Over 20 s: the one in-process search on Ray (the session's), whose two workers each
    start a Python that imports torch, then the same search locally."""
    cfg = SearchConfig(strategy="fnas", budget=8, batch=4, seed=0, task=TASK, replay="off",
                       checkpoint=True)
    store = Store(tmp_path / "ray")
    ex = RayExecutor(parallel=2)
    out = run_search(store, cfg, name="r", progress=False, executor=ex)
    ex.close()
    assert ray.is_initialized()  # it joined the session's Ray, so it leaves it running
    rows = store.evaluations(out.experiment.id)
    assert len(rows) == 8 and {(e.iteration, e.slot) for e in rows} == \
        {(i, s) for i in range(2) for s in range(4)}
    assert all(e.status == "ok" and e.accuracy > 0 for e in rows if e.trained)
    # the pool: weights came back from the workers and the driver wrote them
    pool = Pool(store, out.experiment.config["decision_signature"])
    assert len(pool.entries()) > 0
    second = [e for e in rows if e.iteration == 1 and e.trained]
    assert second and all(e.pool_hit_ratio == 1.0 and e.epochs == 1 for e in second)
    pool.close()
    # the same search run here samples the same first batch (same seed, same decisions)
    local = Store(tmp_path / "local")
    lo = run_search(local, cfg, name="l", progress=False, executor=LocalExecutor(),
                    stop_after=1)  # its first batch is what is compared
    first = lambda st, x: [e.arch_key for e in sorted(st.evaluations(x.experiment.id),  # noqa
                                                      key=lambda e: e.slot) if e.iteration == 0]
    assert first(store, out) == first(local, lo)


def test_failures_are_recorded_and_the_search_goes_on(tmp_path, module_ray):
    space = mnas_space(8)
    import numpy as np

    specs = [space.decode(v) for v in (np.random.default_rng(i).integers(0, space.sizes)
                                       for i in range(4))]
    ev = Faulty(tmp_path / "died-once")
    jobs = [RolloutJob(slot=i, spec=s, seed=i) for i, s in enumerate(specs)]
    ex = RayExecutor(parallel=2, retries=1)
    got = {job.slot: r.result for job, r in ex.run(ev, jobs)}
    assert got[0].status == "error" and "boom" in got[0].message and got[0].reward == -1.0
    assert "\n" not in got[0].message
    assert got[1].status == "nan" and got[1].reward == -1.0
    assert got[2].status == "ok" and os.path.exists(tmp_path / "died-once")  # retried
    assert "after 1 retry" in got[2].message and "worker died" in got[2].message  # visible
    assert got[3].status == "ok"
    # no retries: the dead worker is reported as a failed rollout, not an exception
    os.remove(tmp_path / "died-once")
    ex0 = RayExecutor(parallel=2, retries=0)
    got = {job.slot: r.result for job, r in ex0.run(ev, jobs[2:3])}
    assert got[2].status == "error" and "worker failed 1 time(s)" in got[2].message
    assert "\n" not in got[2].message


def test_ray_missing_or_unreachable_is_one_line(tmp_path, monkeypatch):
    import subprocess

    p = subprocess.run([sys.executable, "-m", "fnas.cli", "search", "--executor", "local",
                        "--ray-address", "127.0.0.1:1", "--store", str(tmp_path / "s")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--executor ray" in p.stderr and p.stderr.count("\n") == 1
    # an unreachable cluster is refused in seconds (Ray itself would wait minutes)
    p = subprocess.run([sys.executable, "-m", "fnas.cli", "search", "--executor", "ray",
                        "--ray-address", "127.0.0.1:1", "--store", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "cannot reach Ray" in p.stderr
    assert p.stderr.count("\n") == 1 and not (tmp_path / "s").exists()
    # without Ray installed: how to install it, in one line
    from fnas.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'ray>=2\.9'"):
        RayExecutor()
