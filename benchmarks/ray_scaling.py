"""Rollouts per hour on the real proxy task: the local executor against Ray with 1 and 2
workers, same rollouts, same machine, one after the other.

The same ``--rollouts`` (8) architectures, drawn from the MnasNet space at 28x28 with
``numpy.random.default_rng(--seed)``, are trained on mnist5k (``--epochs``, 1; no latency
measurement) by each setup, with the same rollout seeds:

- ``local``: ``LocalExecutor`` in this process, torch's default threads (2 here);
- ``local-1t``: the same at one torch thread (the per-rollout baseline of a Ray task);
- ``ray-1``: ``RayExecutor(parallel=1)`` on a local Ray with 1 CPU per task (1 thread);
- ``ray-2``: ``RayExecutor(parallel=2)``, 2 tasks in flight.

Reported: wall seconds (after 2 warm-up rollouts per setup, one per Ray worker, not timed;
Ray's start-up is timed apart), rollouts per hour, the speed-up of ``ray-2`` over ``local``
(target >= 1.7), and Ray's overhead per rollout = (wall of ``ray-1`` - wall of
``local-1t``) / rollouts. Also, per setup, the workers' utilisation (training seconds /
(workers x wall)), and for ``ray-2`` the share of worker time a batch barrier leaves idle:
the rollouts' own training seconds scheduled greedily in order on 2 workers (as the executor
does), 1 - sum / (2 x makespan). The 8 rollouts are one batch.

    python benchmarks/ray_scaling.py             # results/ray_scaling.json
    python benchmarks/ray_scaling.py --rederive  # recompute the derived figures, no re-timing
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fnas.execution.evaluators import ProxyEvaluator
from fnas.execution.executors import LocalExecutor, RayExecutor, RolloutJob
from fnas.space import mnas_space
from fnas.tasks import RewardConfig, TaskConfig


def _time(executor, evaluator, jobs) -> tuple[float, list[dict]]:
    t = time.perf_counter()
    rows = [{"slot": j.slot, "status": r.result.status, "accuracy": r.result.accuracy,
             "train_seconds": r.result.train_seconds} for j, r in executor.run(evaluator, jobs)]
    return time.perf_counter() - t, rows


def _makespan(seconds: list[float], workers: int) -> float:
    """Finish time of ``seconds`` handed in order to the first free of ``workers``."""
    free = [0.0] * workers
    for s in seconds:
        i = free.index(min(free))
        free[i] += s
    return max(free)


def derived(res: dict[str, dict]) -> dict[str, object]:
    """Utilisation per setup and the idle share of a batch barrier on 2 workers."""
    util = {}
    for name, r in res.items():
        workers = 2 if name == "ray-2" else 1
        util[name] = sum(x["train_seconds"] for x in r["rollouts"]) / (workers * r["wall_seconds"])
    secs = [x["train_seconds"] for x in sorted(res["ray-2"]["rollouts"], key=lambda x: x["slot"])]
    return {"utilisation": util,
            "barrier_idle_share_ray2": 1 - sum(secs) / (2 * _makespan(secs, 2))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rollouts", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.relpath(Path(__file__).parent / "results"))
    ap.add_argument("--rederive", action="store_true",
                    help="recompute the derived figures of the existing JSON (no re-timing)")
    a = ap.parse_args(argv)
    if a.rederive:
        path = Path(a.out) / "ray_scaling.json"
        out = json.loads(path.read_text())
        out["derived"] = derived(out["results"])
        out["derived"]["rederived"] = time.strftime("%Y-%m-%d %H:%M")
        path.write_text(json.dumps(out, indent=1))
        print(json.dumps(out["derived"], indent=1))
        return 0
    import ray

    task = TaskConfig(dataset=a.dataset, epochs=a.epochs, latency_repeats=0)
    ev = ProxyEvaluator(task, RewardConfig())
    space = mnas_space(ev.input_size)
    rng = np.random.default_rng(a.seed)
    specs = [space.decode(rng.integers(0, space.sizes).tolist()) for _ in range(a.rollouts + 1)]
    jobs = [RolloutJob(slot=i, spec=s, seed=1000 + i) for i, s in enumerate(specs[1:])]
    warm = [RolloutJob(slot=-1 - k, spec=specs[0], seed=999) for k in range(2)]
    res: dict[str, dict] = {}
    default_threads = torch.get_num_threads()
    for name in ("local", "local-1t", "ray-1", "ray-2"):
        startup = 0.0
        if name.startswith("local"):
            torch.set_num_threads(1 if name == "local-1t" else default_threads)
            ex = LocalExecutor()
        else:
            torch.set_num_threads(default_threads)
            t = time.perf_counter()
            ex = RayExecutor(parallel=int(name[-1]))
            startup = time.perf_counter() - t
        list(ex.run(ev, warm))
        wall, rows = _time(ex, ev, jobs)
        ex.close()
        if ray.is_initialized():
            ray.shutdown()
        res[name] = {"wall_seconds": wall, "rollouts_per_hour": 3600 * len(jobs) / wall,
                     "startup_seconds": startup, "rollouts": rows}
        print(f"{name:<9} {wall:7.1f} s  {res[name]['rollouts_per_hour']:7.0f} rollouts/h"
              + (f"  (Ray start {startup:.1f} s)" if startup else ""), flush=True)
    torch.set_num_threads(default_threads)
    speedup = res["ray-2"]["rollouts_per_hour"] / res["local"]["rollouts_per_hour"]
    overhead = (res["ray-1"]["wall_seconds"] - res["local-1t"]["wall_seconds"]) / len(jobs)
    same = all(ra["accuracy"] == rb["accuracy"] for ra, rb in
               zip(res["local-1t"]["rollouts"], sorted(res["ray-1"]["rollouts"],
                                                       key=lambda r: r["slot"]), strict=True))
    out = {"command": "python benchmarks/ray_scaling.py " + " ".join(argv or sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M"),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "torch": torch.__version__, "ray": ray.__version__,
                       "default_threads": default_threads},
           "config": vars(a), "results": res, "speedup_ray2_over_local": speedup,
           "ray_overhead_seconds_per_rollout": overhead,
           "same_accuracies_local1t_vs_ray1": same, "derived": derived(res)}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "ray_scaling.json").write_text(json.dumps(out, indent=1))
    print(f"ray-2 / local: {speedup:.2f}x (target >= 1.7); Ray overhead per rollout "
          f"{overhead:+.2f} s; same accuracies local-1t vs ray-1: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
