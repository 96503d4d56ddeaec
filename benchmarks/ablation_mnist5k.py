"""The FNAS ablation redone on real training (issue 20): fixed quality targets from a
reference, equal compute for every run, 5 seeds, the screening fnas and the faithful PPO.

What it runs (every search is the real ``fnas`` loop with real training, MnasNet space at
28x28, on the proxy of ``mnist5k_reference.py``: 2,000 mnist5k images, 2 epochs, batch 32,
MnasNet's soft reward on multiply-adds with target 8M):

1. **Sources** (the lifelong knowledge a user would really have), each built once:
   - ``macs4m``: an fnas search on the same proxy task with another objective (MACs target
     4M instead of 8M), seed 1000, compute C. Its real results (accuracy and MACs, re-scored
     with the new reward) teach the critic, and its trained blocks fill the pool.
     NOTE: under the soft reward (alpha = beta = -0.07) another target T multiplies every
     reward by the same constant, ``(4M / 8M) ** 0.07``: ``macs4m`` optimises the same ranking
     of architectures as the runs, so it is an earlier search of the same objective.
   - ``acc``: an fnas search on the same proxy task for accuracy alone (no MACs term), seed
     1000, compute C: an objective that really differs (it prefers large networks). What
     transfers is its measurements (accuracy and MACs, re-scored with the runs' reward), not
     its ranking.
   - ``res14``: an fnas search on the same images at another resolution (mnist5k at 14x14,
     the runs' reward), seed 1000, compute C: a cheap low-resolution search a user may have
     run first (issue 20, part 4). Its trainings cost about a quarter of the runs', and its
     MACs are about a quarter too; under the soft reward a common MACs factor is a common
     reward factor, so the re-scored ranking is its 14x14 accuracy traded against size. Its
     blocks (trained at 14x14) fill the pool.
   - ``res14q``: the same as ``res14`` stopped at a quarter of the compute (C / 4): is a
     short low-resolution search first cheaper in total than a search from scratch?
   - ``digits``: an fnas search on digits (8x8 images, 5 epochs), 48 trainings, seed 1000:
     the hard case of issue 10, where the knowledge did not transfer.
   - ``mnist5k`` (issue 35; for another ``--task``, say ``fashion``): an fnas search of
     **another task**, the mnist5k proxy (the settings ``--task mnist5k`` uses:
     ``proxy_for("mnist5k")``, the runs' reward), seed 1000, compute C, stored under the
     run's task's ``--work`` like every source. Knowledge moves between runs that share the
     space's *decisions* (``decision_signature``: their names and choices, not the task nor
     the input size; ``fnas.search.knowledge``), so ``knowledge="all"`` takes it as it takes
     ``res14``: its measurements re-scored with the runs' reward, and its blocks (trained on
     MNIST digits, 10 classes at 28x28 as Fashion-MNIST) fill the pool. The result cache is
     keyed by the task's signature, so no MNIST result ever answers a Fashion-MNIST training.
     Refused with ``--task mnist5k`` (the source would be the runs' own task).
2. **Variants**, each run in its own copy of its source's store (no run sees another's):

   ================= ======== ==== ====== ======= ===== ======================================
   variant           strategy pool buffer source  seeds
   ================= ======== ==== ====== ======= ===== ======================================
   random            random                       5
   rea               rea                          5     regularized evolution
   ppo               ppo      -    -              5     the faithful MnasNet PPO
   fnas              fnas     on   on     macs4m  5     full fnas
   fnas-scratch      fnas     on   on     -       5     without knowledge
   fnas-nopool       fnas     off  on     macs4m  3
   fnas-frozen       fnas     on   on     macs4m  3     frozen uniform policy (screening only)
   fnas-digits       fnas     on   on     digits  3     knowledge from digits (hard case)
   fnas-acc          fnas     on   on     acc     5     knowledge of another objective
   fnas-res14        fnas     on   on     res14   5     knowledge at another resolution
   fnas-res14q       fnas     on   on     res14q  5     the same from a source of C / 4
   fnas-from-mnist5k fnas     on   on     mnist5k 3     another task's (not --task mnist5k)
   tpe               tpe                          5     Optuna's TPE (issue 34, part 7)
   ================= ======== ==== ====== ======= ===== ======================================

   (``fnas-known`` and ``fnas-decompose``, from scratch with the known cost factor, are in
   ``VARIANTS`` too; ``fnas-decompose`` is fnas's default since issue 34. ``fnas-rungs`` and
   ``fnas-rungs-eta2`` add two fidelity rungs, a quarter of the training's steps then the
   full training, with eta 3 and 2: the fidelity ablation. ``fnas-zc`` probes the screen's
   top 24 candidates, three batches, with the zero-cost proxies, and a second critic that
   reads them picks among them: the zero-cost ablation, its probes counted in the run's CPU
   seconds.) ``tpe`` searches the same space
   (each decision a categorical parameter) at the same compute; an architecture it suggests
   again is answered from the run's cache, as fnas's repeats are (a sample, not a training).

   ``fnas-res14-judge`` and ``fnas-from-mnist5k-judge`` (3 seeds each; issue 35) are the
   two transfer variants with the knowledge rule before issue 35 (``knowledge_rule='judge'``:
   the knowledge is judged once, then kept or forgotten; fnas weighs it every round since),
   the same settings otherwise: does weighing keep "with knowledge no slower than without"?

   ``rea-default``, ``tpe-default`` and ``ppo-default`` are the three baselines run again at
   the code and on the machine of ``fnas-default``: CPU-s differ between VMs by about 1.5x
   (calibration factors 1.43-1.69, ``docs/BENCHMARKS.md``), so a ratio of CPU-s is like
   for like only between runs made on one machine. Every run since records its machine
   (``calibration``: two reference trainings repeated before and after its search, their
   CPU-s over the reference's own, and the CPU model), and the summary prints the trainings each run
   needed to each target beside the CPU-s a training cost it.

   Variants whose source is the run's own task (``fnas-from-mnist5k`` with ``--task
   mnist5k``) are left out of the default "all variants" and refused when named.

   Pool variants train at the reference's 2 epochs (``pool_epochs=2``), so that their rewards
   are on the targets' scale: the pool gives a better start, not a shorter training.
3. **Compute** of a run: the CPU seconds of its process (``time.process_time``: the trainings
   at one torch thread plus the search's own overhead: sampling, critic, updates, pool,
   store), read after each evaluation. It grows less than wall seconds when other work
   shares the machine, but it grows when the cores are oversubscribed: run it alone.
   Every run stops once it has spent C (``--budget``, default 1000 CPU-seconds, about 110
   of vanilla PPO's trainings; after the batch in flight: the metric cuts every curve at C).
4. **Objective** (``--objective``, issue 34, part 6): ``mnas`` (default), MnasNet's soft
   reward above, with targets the top-1% and top-0.2% **reward** quantiles of the reference;
   or ``accuracy``, the held-out accuracy alone (``RewardConfig(target=None)``), with targets
   the top-1% and top-0.2% **accuracy** quantiles of the same reference trainings, a target
   that size alone cannot reach. The accuracy objective's runs and outputs are files of their
   own (``ablation_TASK_accuracy_runs/``, ``ablation_TASK_accuracy.{json,md,png}``; its run
   stores under ``--work``'s ``runs-accuracy/``); the knowledge sources are shared.
5. **Metrics** (``ablation_mnist5k_summary.py``, ``incumbent.py``). A run's quality at
   compute c is its **incumbent's**: the architecture it would return if stopped at c, its
   best *full-fidelity* real result so far by its own reward (trained or cached; never a
   critic's prediction, never a result whose ``fidelity`` < 1). The incumbent is scored by
   the **reference protocol**: the reference's proxy trained from scratch (the settings of
   ``mnist5k_reference.py``) with rollout seeds 0 and 10000, the mean of the two, under the
   run's objective (reward or accuracy). **Compute to target** is the first c at which that
   score reaches the target, a miss counted as > C; so a low-fidelity, pool-initialised or
   lucky-seed result can never reach a target by itself. The reference scores are cached in
   ``results/reference_scores.json`` (keyed by task, protocol and architecture: a repeated
   incumbent is never trained again; the reference's own trainings are reused where protocol
   and seed match, its architecture 0 for both seeds); incumbents are scored in order, each
   run only until one reaches the highest target, plus the one it returns at C. A reference
   evaluation (2 trainings) costs about 18 CPU-s (median; 14 to 58 measured on 5 incumbents
   of a PPO run). ``--metric own-best`` skips the reference trainings and reports only the
   old (issue-20) metric: the compute at which the run's own best real reward first reaches
   each target; with the incumbent metric it is kept beside it as ``own_best``
   (``reach_own_best``, ``ratios_own_best`` in the JSON). Per variant: the median over
   seeds with a bootstrap 95% interval (2,000 resamples of the runs), the ratios of
   medians, the incumbent's reference score at C, and the own-best-so-far curve (median and
   IQR) in a plot. Each run's best within C is retrained on all 5,000 images for
   ``--retrain-epochs`` (10) epochs, seed 0.

Commands (from the repository root; resumable: a finished run is kept in
``results/ablation_mnist5k_runs/``, the sources in ``--work``):

    python benchmarks/mnist5k_reference.py                 # first: the targets
    python benchmarks/ablation_mnist5k.py                  # all of it (see docs/BENCHMARKS.md)
    python benchmarks/ablation_mnist5k.py --variants ppo,fnas --seeds 5
    python benchmarks/ablation_mnist5k.py --summarise      # table and plot from the kept runs
    python benchmarks/ablation_mnist5k.py --no-runs        # the same, retraining new bests
    python benchmarks/ablation_mnist5k.py --summarise --metric own-best  # no reference training
    python benchmarks/ablation_mnist5k.py --variants tpe   # Optuna's TPE, 5 seeds
    python benchmarks/ablation_mnist5k.py --objective accuracy \\
        --variants random,rea,ppo,tpe,fnas-scratch,fnas-known   # accuracy-only objective
    python benchmarks/ablation_mnist5k.py --quick          # smoke test: tpe, fnas-scratch
    python benchmarks/ablation_mnist5k.py --quick --objective accuracy
    python benchmarks/ablation_mnist5k.py --task fashion \\
        --variants random,rea,ppo,fnas,fnas-scratch --seeds 3   # Fashion-MNIST (part 5)
    python benchmarks/ablation_mnist5k.py --task fashion --variants \\
        fnas-decompose,fnas-from-mnist5k,fnas-from-mnist5k-judge   # from mnist5k (issue 35)
    python benchmarks/ablation_mnist5k.py \\
        --variants fnas-decompose,fnas-res14,fnas-res14-judge --seeds 3   # the same, 14x14

Machine: recorded in the JSON. Seeds: run seeds 0..4 (0..2 for the 3-seed variants), sources
1000; rollouts are deterministic on CPU for a given seed. Spread: bootstrap interval and range.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ablation_real import _copy_store  # noqa: E402
from incumbent import OBJECTIVES, ReferenceScores, protocol, train_reference  # noqa: E402
from mnist5k_reference import FASHION_DATA, TASKS, proxy_for, reward_config, task_config  # noqa: E402,E501

VARIANTS: dict[str, dict[str, Any]] = {
    "random": {"strategy": "random", "seeds": 5},
    "rea": {"strategy": "rea", "seeds": 5},
    "ppo": {"strategy": "ppo", "pool": "off", "replay": "off", "seeds": 5},
    "fnas": {"strategy": "fnas", "source": "macs4m", "seeds": 5},
    "fnas-scratch": {"strategy": "fnas", "seeds": 5},
    "fnas-known": {"strategy": "fnas", "seeds": 5,
                   "fnas": {"screen": {"decompose": True, "features": "on"}}},
    "fnas-decompose": {"strategy": "fnas", "seeds": 3, "fnas": {"screen": {"decompose": True}}},
    # fnas at its defaults of the code that runs it (decompose, features, the replay window,
    # the controller's evaluation at once): the same settings as fnas-decompose, run again
    # after changes that move PPO's steps in their last bits
    "fnas-default": {"strategy": "fnas", "seeds": 5},
    # the same with the free features off: on the built-in task it is fnas-default run for
    # run (features="auto" leaves them off while the cost factor is exact; 2 seeds checked)
    "fnas-nofeat": {"strategy": "fnas", "seeds": 3, "fnas": {"screen": {"features": "off"}}},
    "fnas-confirm": {"strategy": "fnas", "seeds": 3, "confirm": 2,
                     "fnas": {"screen": {"decompose": True}}},
    "fnas-rungs": {"strategy": "fnas", "seeds": 3,
                   "fnas": {"screen": {"rungs": [0.25, 1.0], "eta": 3}}},
    "fnas-rungs-eta2": {"strategy": "fnas", "seeds": 3,
                        "fnas": {"screen": {"rungs": [0.25, 1.0], "eta": 2}}},
    "fnas-zc": {"strategy": "fnas", "seeds": 3,
                "fnas": {"screen": {"decompose": True, "zero_cost": 24}}},
    "fnas-nopool": {"strategy": "fnas", "pool": "off", "source": "macs4m", "seeds": 3},
    "fnas-frozen": {"strategy": "fnas", "source": "macs4m", "seeds": 3,
                    "fnas": {"screen": {"policy": "frozen"}}},
    "fnas-digits": {"strategy": "fnas", "source": "digits", "seeds": 3},
    "fnas-acc": {"strategy": "fnas", "source": "acc", "seeds": 5},
    "fnas-res14": {"strategy": "fnas", "source": "res14", "seeds": 5},
    "fnas-res14q": {"strategy": "fnas", "source": "res14q", "seeds": 5},
    "fnas-from-mnist5k": {"strategy": "fnas", "source": "mnist5k", "seeds": 3},
    "tpe": {"strategy": "tpe", "seeds": 5},
    # the baselines run again at the code and on the machine of fnas-default (its VM, the
    # same boot): ratios of CPU-s against fnas-default like for like
    "rea-default": {"strategy": "rea", "seeds": 5},
    "tpe-default": {"strategy": "tpe", "seeds": 5},
    "ppo-default": {"strategy": "ppo", "pool": "off", "replay": "off", "seeds": 5},
    # fnas-default run again, interleaved seed by seed with tpe-default (the same conditions
    # for both) and right after ppo-default, each run calibrated (fnas-default was not)
    "fnas-default-cal": {"strategy": "fnas", "seeds": 5},
}
JUDGE = {"screen": {"knowledge_rule": "judge"}}
"""fnas's knowledge rule before issue 35 (its default since: ``weigh``)."""


def _merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a`` with ``b``'s settings, nested dicts merged (``b`` wins)."""
    return {**a, **{k: _merged(a[k], x) if isinstance(x, dict) and isinstance(a.get(k), dict)
                    else x for k, x in b.items()}}


for _v in ("fnas-res14", "fnas-from-mnist5k"):  # the transfer pairs, with the legacy rule
    VARIANTS[f"{_v}-judge"] = {**VARIANTS[_v], "seeds": 3,
                               "fnas": _merged(VARIANTS[_v].get("fnas", {}), JUDGE)}
SOURCE_SEED = 1000
TASK_SOURCES = ("mnist5k",)
"""Sources that are a search of another task (a key of ``TASKS``, the source's name): usable
with any other ``--task``."""
CALIBRATION = (1, 41)
"""Indices of the reference's first round whose trainings every run repeats before and after
its search (runs made before 2026-12-08 05:40 UTC: after it only), in its own process, by
the reference protocol (the recorded seed): two networks of about the median training's cost
(9.3 CPU-s on the reference's machine). Their CPU seconds over the reference's own are the
run's ``calibration["factor"]``: how much slower than the reference's machine the run's
machine was, at the run's time (with its neighbours). Not counted in the run's compute."""
QUICK_SAMPLES = 400
"""``--quick``'s images per training (runs, reference protocol and retraining alike)."""
QUICK_VARIANTS = "tpe,fnas-scratch"
"""``--quick``'s default variants: one baseline and fnas, no knowledge source to build."""


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default=None,
                    help="comma-separated subset of: " + ", ".join(VARIANTS) + " (default: "
                    f"all; --quick: {QUICK_VARIANTS})")
    ap.add_argument("--seeds", type=int, default=None,
                    help="seeds per variant (default: 5 or 3, as in the table above)")
    ap.add_argument("--budget", type=float, default=1000.0, help="C, CPU-seconds per run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--retrain-epochs", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (1 torch thread each)")
    ap.add_argument("--task", default="mnist5k", choices=list(TASKS),
                    help="the proxy's dataset (default mnist5k; fashion: Fashion-MNIST)")
    ap.add_argument("--data", default=FASHION_DATA, help="the Fashion-MNIST idx folder")
    ap.add_argument("--reference", default=None, help="default: results/TASK_reference.json")
    ap.add_argument("--work", default=None, help="source stores and run stores, default "
                    "results/ablation_TASK_work (not committed: see .gitignore)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--objective", default="mnas", choices=list(OBJECTIVES),
                    help="what the runs search for and the targets measure: mnas (MnasNet's "
                    "soft reward, reward quantiles) or accuracy (held-out accuracy alone, "
                    "accuracy quantiles); each objective has its own run files and outputs")
    ap.add_argument("--metric", default="incumbent", choices=("incumbent", "own-best"),
                    help="incumbent (default): score each run's incumbents by the reference "
                    "protocol (trains the ones not in the cache); own-best: the issue-20 "
                    "metric only, no reference training")
    ap.add_argument("--reference-cache", default=None,
                    help="the reference protocol's scores, default "
                    "results/reference_scores.json (--quick: under its --out)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test: 1 seed, C = 12 s, 1 epoch of {QUICK_SAMPLES} images, "
                    f"tiny sources, variants {QUICK_VARIANTS} unless --variants says; the "
                    "reference protocol at the same settings and 1 seed")
    ap.add_argument("--summarise", action="store_true",
                    help="only the summary, table and plot from finished runs (no "
                    "retraining of bests; incumbents not yet in the reference cache are still "
                    "scored, unless --metric own-best)")
    ap.add_argument("--no-runs", action="store_true",
                    help="start no run: retrain the bests of the finished runs, then summarise")
    a = ap.parse_args(argv)
    a.reference = a.reference or str(HERE / "results" / f"{a.task}_reference.json")
    a.work = a.work or str(HERE / "results" / f"ablation_{a.task}_work")
    a.proxy = proxy_for(a.task, a.data)
    own = [v for v, x in VARIANTS.items() if x.get("source") == a.task]  # the task's own
    named = a.variants
    a.variants = a.variants or (QUICK_VARIANTS if a.quick else ",".join(
        v for v in VARIANTS if v not in own))
    unknown = [v for v in a.variants.split(",") if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant {unknown[0]!r}: expected some of {', '.join(VARIANTS)}")
    if named and (bad := [v for v in a.variants.split(",") if v in own]):
        ap.error(f"variant {bad[0]!r} takes its knowledge from {a.task}, the runs' own task: "
                 f"use it with another --task")
    a.epochs = None
    a.protocol = protocol(a.proxy)
    if a.quick:
        a.seeds, a.budget, a.batch, a.epochs, a.retrain_epochs = 1, 12.0, 4, 1, 1
        a.work = str(Path(a.work).with_name(f"ablation_{a.task}_quick_work"))
        a.out = str(Path(a.out) / "quick")
        # 400 images (a training costs about a second after 5 s of set-up): 5-6 fit in C
        a.proxy = {**a.proxy, "task": {**a.proxy["task"], "max_samples": QUICK_SAMPLES}}
        a.protocol = protocol(a.proxy, epochs=1, seeds=(0,))
    a.reference_cache = a.reference_cache or str(
        (Path(a.out) if a.quick else HERE / "results") / "reference_scores.json")
    # the runs' names: the accuracy objective keeps its own files beside the reward's
    a.name = a.task if a.objective == "mnas" else f"{a.task}_accuracy"
    return a


def _task(a: argparse.Namespace, **over: Any):
    return task_config(a.proxy, **({"epochs": a.epochs} if a.epochs else {}), **over)


def _meter(budget: float):
    """A callback that records each evaluation with the process's CPU seconds so far and
    stops the search once ``budget`` is spent."""
    from fnas.knowledge.racing import pooled, replicate_of
    from fnas.search.callbacks import Callback, StopSearch

    class Meter(Callback):
        def __init__(self) -> None:
            self.c0, self.rows = time.process_time(), []

        def on_evaluation(self, run: Any, e: Any) -> None:
            spent = time.process_time() - self.c0
            flags = "".join(f[0] for f in ("trained", "cached", "predicted", "audited",
                                           "replayed") if getattr(e, f))
            # fidelity: a field of evaluations from issue 34 on (before it, all were full)
            fidelity = getattr(e, "fidelity", None)
            self.rows.append({"compute": round(spent, 3), "reward": round(e.reward, 6),
                              "accuracy": e.accuracy, "macs": e.macs, "arch": e.arch,
                              "status": e.status, "flags": flags,
                              "fidelity": 1.0 if fidelity is None else float(fidelity)})
            replicate = replicate_of(getattr(e, "task_signature", ""))
            if replicate:  # a racing repeat (SearchConfig.confirm)
                self.rows[-1]["replicate"] = replicate
            if pooled(e):  # trained from the knowledge pool's weights
                self.rows[-1]["pooled"] = True
            if spent >= budget:
                raise StopSearch(f"compute budget {budget:.0f} CPU-s spent")

    return Meter()


def _config(a: argparse.Namespace, strategy: str, seed: int, **over: Any):
    from fnas.search import SearchConfig

    settings: dict[str, Any] = {"pool_epochs": a.epochs or a.proxy["task"]["epochs"],
                                "task": _task(a), "reward": reward_config(), **over}
    return SearchConfig(strategy=strategy, budget=100_000, batch=a.batch, seed=seed,
                        budget_counts="trained", max_samples=1_000_000, checkpoint=False,
                        **settings)


def _search(a: argparse.Namespace, store_dir: Path, name: str, cfg: Any, budget: float
            ) -> dict[str, Any]:
    import torch

    from fnas.knowledge import Store
    from fnas.search import run_search

    torch.set_num_threads(1)
    meter = _meter(budget)
    t0 = time.perf_counter()
    with Store(store_dir) as store:
        out = run_search(store, cfg, name=name, progress=False, callbacks=[meter])
    return {"name": name, "wall_seconds": round(time.perf_counter() - t0, 1),
            "stop_reason": out.stats.get("stop_reason"),
            "stats": {k: x for k, x in out.stats.items() if isinstance(x, (int, float, str))},
            "curve": meter.rows}


def source(a: argparse.Namespace, name: str) -> Path:
    """The source store ``name`` (built once, then copied for every run that uses it)."""
    path = Path(a.work) / f"source-{name}"
    if (path / "DONE").is_file():
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    if name in ("macs4m", "acc"):
        cfg = _config(a, "fnas", SOURCE_SEED, knowledge="none",
                      reward=reward_config(target=4e6 if name == "macs4m" else None))
        r = _search(a, path, f"source-{name}", cfg, a.budget)
    elif name in ("res14", "res14q"):
        cfg = _config(a, "fnas", SOURCE_SEED, knowledge="none", task=_task(a, image_size=14))
        r = _search(a, path, f"source-{name}", cfg, a.budget / (4 if name == "res14q" else 1))
    elif name in TASK_SOURCES:  # another task's proxy: the same settings but the dataset
        other = proxy_for(name, a.data)["task"]["dataset"]
        cfg = _config(a, "fnas", SOURCE_SEED, knowledge="none", task=_task(a, dataset=other))
        r = _search(a, path, f"source-{name}", cfg, a.budget)
    else:
        from fnas.search import SearchConfig
        from fnas.tasks import TaskConfig

        cfg = SearchConfig(strategy="fnas", budget=4 if a.quick else 48, batch=a.batch,
                           seed=SOURCE_SEED, task=TaskConfig(dataset="digits", epochs=a.epochs
                                                             or 5, latency_repeats=0),
                           reward=reward_config(), budget_counts="trained", checkpoint=False,
                           knowledge="none")
        r = _search(a, path, "source-digits", cfg, math.inf)
    (path / "source.json").write_text(json.dumps(r))
    (path / "DONE").write_text(time.strftime("%Y-%m-%d %H:%M"))
    return path


def run_one(a: argparse.Namespace, variant: str, seed: int, src: Path | None) -> dict:
    v = VARIANTS[variant]
    runs = "runs" if a.objective == "mnas" else f"runs-{a.objective}"
    store_dir = Path(a.work) / runs / f"{variant}-s{seed}"
    shutil.rmtree(store_dir, ignore_errors=True)
    if src is not None:
        _copy_store(src, store_dir)
    else:
        store_dir.mkdir(parents=True)
    over = {k: v[k] for k in ("pool", "replay", "fnas", "confirm") if k in v}
    if a.objective == "accuracy":  # target None: the reward is the accuracy alone
        over["reward"] = reward_config(target=None)
    cfg = _config(a, v["strategy"], seed, knowledge="all" if src else "none", **over)
    before = calibrate(a)
    r = _search(a, store_dir, f"{variant}-s{seed}", cfg, a.budget)
    r["calibration"] = calibrate(a, before)
    # what the source itself cost, so that "source + run" can be read from the run's JSON
    made = json.loads((src / "source.json").read_text()) if src is not None else None
    spent = made["curve"][-1]["compute"] if made and made["curve"] else None
    return {"variant": variant, "seed": seed, "source": v.get("source"),
            "objective": a.objective, "source_cpu_s": spent, "confirm": v.get("confirm", 1),
            **r}


def cpu_model() -> dict[str, Any]:
    """The CPU's model name and whether it has AVX-512 (Linux's /proc/cpuinfo; else None)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or None, "avx512": None}
    model = next((x.split(":", 1)[1].strip() for x in info.splitlines()
                  if x.startswith("model name")), None)
    flags = next((x.split(":", 1)[1].split() for x in info.splitlines()
                  if x.startswith("flags")), [])
    return {"model": model, "avx512": "avx512f" in flags}


def calibrate(a: argparse.Namespace, before: dict[str, Any] | None = None
              ) -> dict[str, Any] | None:
    """The ``CALIBRATION`` trainings again, here and now: the run's machine against the
    reference's (``None`` where the run's proxy is not the reference's, as with --quick).
    ``before``: the same taken before the search; the factor is then the median over both
    samples' trainings (one sample at the end alone read 1.93 and 1.47 for runs whose CPU-s
    per training were alike), each sample's own factor kept beside."""
    reference = json.loads(Path(a.reference).read_text())
    if reference.get("settings", {}).get("proxy") != a.proxy:
        return None
    by_index = {r["index"]: r for r in reference["first"]}
    rows = []
    for i in CALIBRATION:
        ref = by_index[i]
        r = train_reference(a.proxy, None, ref["arch"], ref["seed"])
        rows.append({"index": i, "cpu_s": r["cpu_s"], "reference_cpu_s": ref["cpu_s"],
                     "same_accuracy": r["accuracy"] == ref["accuracy"]})
    factor = statistics.median(x["cpu_s"] / x["reference_cpu_s"] for x in rows)
    out = {"factor": round(factor, 4), "trainings": rows, "cpu": cpu_model()}
    if before is not None:
        both = before["trainings"] + rows
        out = {**out, "factor": round(statistics.median(
                   x["cpu_s"] / x["reference_cpu_s"] for x in both), 4),
               "trainings": both, "before": before["factor"], "after": out["factor"]}
    return out


def retrain(a: argparse.Namespace, arch: str) -> dict[str, Any]:
    """``arch`` trained on 5,000 images (all of mnist5k's; a stratified 5,000 of
    Fashion-MNIST's) for ``--retrain-epochs`` (batch 64), seed 0."""
    import torch

    from fnas.tasks import run_rollout

    torch.set_num_threads(1)
    samples = None if a.task == "mnist5k" else 5000  # mnist5k: all 5,000, as measured before
    samples = QUICK_SAMPLES if a.quick else samples
    task = task_config(a.proxy, epochs=a.retrain_epochs, max_samples=samples, batch_size=64)
    r = run_rollout(arch, task, reward_config(), 0, return_weights=False).result
    return {"arch": arch, "status": r.status, "accuracy": r.accuracy, "reward": r.reward,
            "epochs": a.retrain_epochs, "seconds": r.train_seconds}


def _schedule(a: argparse.Namespace, todo: list[tuple[str, int]], runs_dir: Path) -> None:
    """Runs ``todo`` in order, ``--jobs`` at a time, each in a fresh process; a source is a job
    too, built first, and a run that needs it waits for it while later runs go ahead."""
    names = sorted({VARIANTS[v].get("source") for v, _ in todo} - {None})
    queue: list[Any] = [("source", n) for n in names] + list(todo)
    srcs: dict[str, Path] = {}
    with ProcessPoolExecutor(max_workers=a.jobs, max_tasks_per_child=1) as pool:
        running: dict[Any, Any] = {}
        while queue or running:
            while len(running) < a.jobs:
                job = next((j for j in queue if j[0] == "source"
                            or VARIANTS[j[0]].get("source") in (None, *srcs)), None)
                if job is None:
                    break
                queue.remove(job)
                if job[0] == "source":
                    running[pool.submit(source, a, job[1])] = job
                else:
                    running[pool.submit(run_one, a, job[0], job[1],
                                        srcs.get(VARIANTS[job[0]].get("source")))] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                job = running.pop(f)
                if job[0] == "source":
                    srcs[job[1]] = f.result()
                    print(f"source {job[1]} built", flush=True)
                    continue
                v, s = job
                r = f.result()
                (runs_dir / f"{v}-s{s}.json").write_text(json.dumps(r))
                c = r["curve"]
                print(f"{v}-s{s}: {sum('t' in x['flags'] for x in c)} trainings, best "
                      f"{max(x['reward'] for x in c if 'p' not in x['flags']):.4f}, "
                      f"{c[-1]['compute']:.0f} CPU-s ({r['wall_seconds']:.0f} s wall)",
                      flush=True)


def main(argv: list[str] | None = None) -> int:
    from ablation_mnist5k_summary import summarise, write_outputs

    a = _args(argv)
    if not Path(a.reference).is_file():
        sys.exit(f"ablation: no reference at {a.reference}: run "
                 f"benchmarks/mnist5k_reference.py --task {a.task} first")
    reference = json.loads(Path(a.reference).read_text())
    out = Path(a.out)
    runs_dir = out / f"ablation_{a.name}_runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    variants = a.variants.split(",")
    seeds = {v: a.seeds or VARIANTS[v]["seeds"] for v in variants}
    # seed-major: a partial benchmark has every variant at the same number of seeds
    todo = [(v, s) for s in range(max(seeds.values())) for v in variants
            if s < seeds[v] and not (runs_dir / f"{v}-s{s}.json").is_file()]
    t0 = time.time()
    if todo and not (a.summarise or a.no_runs):
        print(f"{len(todo)} runs to go, {a.jobs} at a time", flush=True)
        _schedule(a, todo, runs_dir)
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*.json"))]
    runs = [r for r in runs if r["variant"] in variants and r["seed"] < seeds[r["variant"]]]
    runs.sort(key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"]))
    if not runs:
        print("no finished run yet")
        return 0
    retrained_path = out / f"ablation_{a.task}_retrained.json"
    retrained = json.loads(retrained_path.read_text()) if retrained_path.is_file() else {}
    scores, score = None, None
    if a.metric == "incumbent":
        epochs = a.protocol["task"]["epochs"]
        scores = ReferenceScores(a.reference_cache, a.task, a.protocol,
                                 partial(train_reference, a.proxy, epochs),
                                 reference=reference, jobs=a.jobs)
        score = scores.scorer(a.objective)
        print(f"scoring incumbents by the reference protocol ({a.protocol['task']['epochs']} "
              f"epochs, seeds {a.protocol['seeds']}; cache {a.reference_cache})", flush=True)
    summary = summarise(runs, reference, a.budget, retrained, score, a.objective)
    if scores is not None:
        scores.close()
        print(f"reference protocol: {len(scores.asked)} incumbents scored, "
              f"{scores.trained} new trainings ({scores.cpu_s:.0f} CPU-s)", flush=True)
    want = sorted({b["arch"] for b in summary["per_run"].values() if b["arch"]} - set(retrained))
    if want and not a.summarise:
        print(f"retraining {len(want)} best architectures for {a.retrain_epochs} epochs",
              flush=True)
        with ProcessPoolExecutor(max_workers=a.jobs) as pool:
            futs = {pool.submit(retrain, a, arch): arch for arch in want}
            for f in as_completed(futs):
                retrained[futs[f]] = f.result()
                retrained_path.write_text(json.dumps(retrained, indent=1))
        summary = summarise(runs, reference, a.budget, retrained, score, a.objective)
    if scores is not None:
        scores.close()
    import torch

    meta = {"command": "python benchmarks/ablation_mnist5k.py " + " ".join(
                argv if argv is not None else sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "torch": torch.__version__, "jobs": a.jobs},
            "proxy": a.proxy, "variants": VARIANTS, "budget_cpu_s": a.budget,
            "objective": a.objective, "metric": a.metric,
            "reference_protocol": a.protocol if scores is not None else None,
            "reference_trainings_this_call": None if scores is None else {
                "incumbents_scored": len(scores.asked), "trained": scores.trained,
                "cpu_s": round(scores.cpu_s, 1)},
            "seconds_this_call": round(time.time() - t0)}
    print(write_outputs(out, meta, summary, runs, retrained, task=a.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
