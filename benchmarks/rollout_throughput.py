"""Training throughput of the proxy trainer against a minimal hand-written PyTorch loop.

What it measures: images/s of :func:`fnas.tasks.trainer.train_model` (the rollout's proxy
trainer) and of a plain loop (``idx = perm[...]; loss = F.cross_entropy(model(x[idx]), y[idx]);
opt.zero_grad(); loss.backward(); opt.step()``, no scheduler, no loss accumulation) on the same
network: same architecture, same initial weights (``copy.deepcopy`` of one freshly built model),
same in-memory train tensors, same batch size (64), same permutations (a generator with the same
seed), same number of steps (full batches only), same optimizer (SGD, Nesterov momentum 0.9,
lr 0.1, weight decay 5e-5). Only training is timed: data loading, model building and copying are
outside the timer; optimizer and scheduler construction are inside it, for both loops alike.
images/s = steps x batch size x epochs / wall seconds. Ratio = fnas / plain; target >= 0.9.

Run (about 3-4 minutes on a quiet 2-core CPU; longer when it has to wait for quiet)::

    python benchmarks/rollout_throughput.py                 # full: writes rollout_throughput.json
    python benchmarks/rollout_throughput.py --quick         # 1 arch, 2 repeats per dataset
    python benchmarks/rollout_throughput.py --datasets digits --out /tmp/bench

Machine: whatever runs it; the JSON records ``platform.uname()``, the CPU model, ``os.cpu_count``,
the torch version, ``torch.get_num_threads()`` (left at its default), the load average before
and after each dataset, and per timed run the *foreign load*: CPU time used by other processes
during the run (``/proc/stat`` busy time minus this process's CPU time) over all cores' wall
time. Near 0 means a quiet machine; on 2 cores a second torch process (foreign load ~0.5)
oversubscribes the intra-op threads and slows both loops several-fold, so check it.

Seeds: split seed 0 (the datasets' default split), weight-init seed 0 (``torch.manual_seed``
before ``build_model``), permutation generator seed 0 (both loops), and architectures
``mnas_default(size)`` plus ``mnas_space(size).sample(np.random.default_rng(s))`` for s in 1, 2.

Spread: per architecture, the two loops alternate (fnas, plain, fnas, plain, ...) for R repeats
(5 on digits with 2 epochs per run, 3 on mnist5k with 1 epoch), after one untimed warm-up of
each on 4 minibatches. Reported: the median images/s of each loop, and the median, min and max of
the per-repeat ratio. A dataset's overall ratio pools the per-repeat ratios of all its archs.
Before each pair the script waits (at most ``--max-wait`` s) until other processes use under
10% of the cores; a pair during which they used more is discarded and re-run (at most 3 times,
then kept and flagged). The JSON counts the waits and discarded pairs.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import gc
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fnas.nn import build_model
from fnas.space import mnas_default, mnas_space
from fnas.tasks.datasets import Dataset, load_dataset
from fnas.tasks.trainer import TaskConfig, train_model

TARGET_RATIO = 0.9
INIT_SEED = 0
PERM_SEED = 0
SPLIT_SEED = 0
ARCH_SEEDS = (1, 2)
WARMUP_BATCHES = 4
QUIET_LOAD = 0.1  # foreign load (see `timed`) above which a timed pair is re-run
MAX_RETRIES = 3
# dataset -> (epochs per timed run, repeats per loop); sized to keep the full run near 4 min.
PLAN = {"digits": (2, 5), "mnist5k": (1, 3)}
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def plain_loop(model: nn.Module, data: Dataset, cfg: TaskConfig, gen: torch.Generator) -> float:
    """The reference: a minimal SGD loop with the trainer's optimizer; returns the last loss."""
    x, y = data.x_train, data.y_train
    n = x.shape[0]
    steps = n // cfg.batch_size
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    model.train()
    loss = torch.zeros(())
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(steps):
            idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return float(loss.detach())


def fnas_loop(model: nn.Module, data: Dataset, cfg: TaskConfig, gen: torch.Generator) -> float:
    """The system under test; returns the last epoch's mean loss."""
    return train_model(model, data, cfg, gen)[-1]


LOOPS = {"fnas": fnas_loop, "plain": plain_loop}


def busy_cpu_s() -> float:
    """CPU seconds spent busy by the whole machine since boot (0.0 where /proc is missing)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(loop, init: nn.Module, data: Dataset, cfg: TaskConfig) -> tuple[float, float, float]:
    """(images/s, final loss, foreign load) of one run of ``loop`` from a copy of ``init``.

    The foreign load is the CPU time other processes used during the run, as a fraction of all
    cores' wall time: near 0 on a quiet machine; above ~0.1 the run competed for cores.
    """
    model = copy.deepcopy(init)
    gen = torch.Generator().manual_seed(PERM_SEED)
    images = (data.x_train.shape[0] // cfg.batch_size) * cfg.batch_size * cfg.epochs
    gc.collect()
    busy0, own0 = busy_cpu_s(), time.process_time()
    t0 = time.perf_counter()
    loss = loop(model, data, cfg, gen)
    dt = time.perf_counter() - t0
    foreign = (busy_cpu_s() - busy0) - (time.process_time() - own0)
    return images / dt, loss, max(0.0, foreign) / (dt * (os.cpu_count() or 1))


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def foreign_load_now(window_s: float = 1.0) -> float:
    """Foreign load over a ``window_s`` sleep (this process is idle meanwhile)."""
    busy0, own0, t0 = busy_cpu_s(), time.process_time(), time.perf_counter()
    time.sleep(window_s)
    foreign = (busy_cpu_s() - busy0) - (time.process_time() - own0)
    return max(0.0, foreign) / ((time.perf_counter() - t0) * (os.cpu_count() or 1))


@dataclasses.dataclass
class Quiet:
    """Waits for a quiet machine before each timed pair; counts what it waited and discarded."""

    max_wait_s: float
    """Longest wait for a quiet machine before one pair; then it runs anyway."""
    waited_s: float = 0.0
    discarded_pairs: int = 0
    unquiet_starts: int = 0

    def wait(self) -> None:
        t0 = time.perf_counter()
        while foreign_load_now() > QUIET_LOAD:
            if time.perf_counter() - t0 > self.max_wait_s:
                self.unquiet_starts += 1
                break
        self.waited_s += time.perf_counter() - t0


def bench_arch(spec, data: Dataset, cfg: TaskConfig, repeats: int, quiet: Quiet) -> dict:
    """Warm up both loops, then alternate them ``repeats`` times on one architecture.

    A pair (fnas run, plain run) during which another process took more than QUIET_LOAD of
    the cores is discarded and run again, at most MAX_RETRIES times per repeat; after that it
    is kept, and its foreign load stays in the record.
    """
    torch.manual_seed(INIT_SEED)
    init = build_model(spec, data.in_chans, data.num_classes)
    k = WARMUP_BATCHES * cfg.batch_size
    small = dataclasses.replace(data, x_train=data.x_train[:k], y_train=data.y_train[:k])
    warm_cfg = dataclasses.replace(cfg, epochs=1)
    for loop in LOOPS.values():
        timed(loop, init, small, warm_cfg)
    ips: dict[str, list[float]] = {name: [] for name in LOOPS}
    losses: dict[str, list[float]] = {name: [] for name in LOOPS}
    foreign: dict[str, list[float]] = {name: [] for name in LOOPS}
    for _ in range(repeats):
        for attempt in range(MAX_RETRIES + 1):
            quiet.wait()
            # ABAB...: slow drifts of the machine fall on both loops alike.
            pair = {name: timed(loop, init, data, cfg) for name, loop in LOOPS.items()}
            if max(r[2] for r in pair.values()) <= QUIET_LOAD or attempt == MAX_RETRIES:
                break
            quiet.discarded_pairs += 1
        for name, (v, loss, load) in pair.items():
            ips[name].append(v)
            losses[name].append(loss)
            foreign[name].append(round(load, 3))
    ratios = [a / b for a, b in zip(ips["fnas"], ips["plain"], strict=True)]
    return {
        "arch": spec.to_str(),
        "params": sum(p.numel() for p in init.parameters()),
        "images_per_s": {name: spread(v) for name, v in ips.items()},
        "images_per_s_runs": ips,
        "ratio": spread(ratios),
        "ratio_runs": ratios,
        "final_loss": {name: v[-1] for name, v in losses.items()},
        "foreign_load_runs": foreign,
    }


def max_load(arch_result: dict) -> float:
    return max(v for runs in arch_result["foreign_load_runs"].values() for v in runs)


def bench_dataset(name: str, quick: bool, max_wait_s: float) -> dict:
    epochs, repeats = PLAN[name]
    if quick:
        repeats = 2
    data = load_dataset(name, split_seed=SPLIT_SEED)
    cfg = TaskConfig(dataset=name, epochs=epochs, split_seed=SPLIT_SEED, latency_repeats=0)
    size = data.image_size
    space = mnas_space(size)
    archs = [("mnas_default", mnas_default(size))]
    archs += [(f"sample_seed{s}", space.decode(space.sample(np.random.default_rng(s))))
              for s in ARCH_SEEDS]
    if quick:
        archs = archs[:1]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    quiet = Quiet(max_wait_s)
    results = {}
    for label, spec in archs:
        results[label] = bench_arch(spec, data, cfg, repeats, quiet)
        r = results[label]
        print(f"  {name:8s} {label:14s} fnas {r['images_per_s']['fnas']['median']:8.0f} img/s"
              f"  plain {r['images_per_s']['plain']['median']:8.0f} img/s  ratio "
              f"{r['ratio']['median']:.3f} [{r['ratio']['min']:.3f}, {r['ratio']['max']:.3f}]"
              f"  foreign load <= {max_load(r):.2f}", flush=True)
    pooled = [v for r in results.values() for v in r["ratio_runs"]]
    overall = spread(pooled)
    return {
        "train_images": int(data.x_train.shape[0]),
        "image_size": size,
        "batch_size": cfg.batch_size,
        "steps_per_epoch": int(data.x_train.shape[0]) // cfg.batch_size,
        "epochs_per_run": epochs,
        "repeats": repeats,
        "task_config": dataclasses.asdict(cfg),
        "archs": results,
        "ratio": overall,
        "target_met": overall["median"] >= TARGET_RATIO,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "foreign_load_max": max(max_load(r) for r in results.values()),
        "quiet_waited_s": round(quiet.waited_s, 1),
        "discarded_pairs": quiet.discarded_pairs,
        "unquiet_starts": quiet.unquiet_starts,
        "wall_s": time.perf_counter() - t0,
    }


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string (or machine)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 arch and 2 repeats per dataset")
    p.add_argument("--datasets", default="digits,mnist5k", help="comma-separated subset of "
                   + ",".join(PLAN))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    p.add_argument("--max-wait", type=float, default=300.0, help="seconds to wait for a quiet "
                   "machine before each timed pair (0: never wait)")
    args = p.parse_args(argv)
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    bad = [d for d in names if d not in PLAN]
    if bad or not names:
        p.error(f"unknown dataset(s) {bad}; choose from {list(PLAN)}")

    report = {
        "benchmark": "rollout_throughput",
        "command": shlex.join(["python", *sys.argv]) if argv is None else shlex.join(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "uname": platform.uname()._asdict(),
            "processor": platform.processor(),
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_num_threads": torch.get_num_threads(),
        },
        "seeds": {"split": SPLIT_SEED, "init": INIT_SEED, "permutation": PERM_SEED,
                  "arch_samples": list(ARCH_SEEDS)},
        "method": "per arch: 1 untimed warm-up of each loop on "
                  f"{WARMUP_BATCHES} batches, then fnas/plain alternated R times; before each "
                  f"pair wait (<= --max-wait s) for foreign load <= {QUIET_LOAD}; a pair with "
                  f"foreign load > {QUIET_LOAD} is re-run (<= {MAX_RETRIES} times); "
                  "median img/s per loop, median/min/max of the per-repeat ratio fnas/plain; "
                  "dataset ratio pools all per-repeat ratios of its archs",
        "quick": args.quick,
        "target_ratio": TARGET_RATIO,
        "datasets": {},
    }
    print(f"rollout_throughput: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs", flush=True)
    for name in names:
        report["datasets"][name] = bench_dataset(name, args.quick, args.max_wait)
    report["target_met"] = all(d["target_met"] for d in report["datasets"].values())

    print(f"\n{'dataset':8s}  {'ratio median':>12s}  {'min':>6s}  {'max':>6s}  target 0.9"
          "  foreign load max")
    for name, d in report["datasets"].items():
        r = d["ratio"]
        print(f"{name:8s}  {r['median']:12.3f}  {r['min']:6.3f}  {r['max']:6.3f}  "
              f"{'met   ' if d['target_met'] else 'MISSED'}      {d['foreign_load_max']:.2f}")
    for name, d in report["datasets"].items():
        for label, a in d["archs"].items():
            if not all(math.isfinite(v) for v in a["final_loss"].values()):
                print(f"warning: {name}/{label} diverged (final loss {a['final_loss']})")

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("rollout_throughput_quick.json" if args.quick
                       else "rollout_throughput.json")
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
