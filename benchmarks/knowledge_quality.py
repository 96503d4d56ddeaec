"""What a knowledge source teaches, without a search's luck: a critic pre-trained on a source
store, asked to rank the task's reference architectures (issue 20, part 4).

For each ``--case NAME=STORE``: the store's real results are gathered exactly as a new search
gathers them (:func:`fnas.search.knowledge.gather_knowledge`, every experiment in the store,
re-scored with the reference's reward: MnasNet's soft reward on MACs, target 8M), a fresh
critic with the ``fnas`` strategy's default settings is pre-trained on them as ``fnas`` does
(five ``fit()`` calls), and it predicts the second half of the reference's 300 uniform
architectures (150), which were really trained on the task (``mnist5k_reference.py``).
Reported per case, median over the critic seeds: Spearman's rho and Kendall's tau between the
predicted mean and the real reward, the real reward of the critic's top-1 and top-5 picks, and
how many of its top 10 reach the reference's top-1% and top-10% targets (the whole
reference's quantiles). Two comparisons: ``in-task``, a critic fitted on the first half of the
reference (150 uniform results of the task itself, rank-Gaussian scored as knowledge is), and
``chance``, a uniform ranking's expectation.

Command (from the repository root; the stores are the ablation's sources, built by
``ablation_mnist5k.py`` under its ``--work`` folder, which is not committed):

    python benchmarks/knowledge_quality.py \\
        --case res14=benchmarks/results/ablation_mnist5k_work/source-res14

Machine: any (recorded); about 10 CPU-seconds per case and seed. Seeds: critic seeds 0-4
(``--seeds``). Spread: min and max over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from mnist5k_reference import QUANTILES, reaches  # noqa: E402


def _critic(points: list[tuple[tuple[int, ...], float]], sizes: Any, seed: int):
    from fnas.agent.critic import EnsembleCritic
    from fnas.strategies.fnas.config import FNASConfig

    critic = EnsembleCritic(sizes, FNASConfig().critic_cfg, seed)
    critic.add([list(d) for d, _ in points], [z for _, z in points])
    for _ in range(5):
        critic.fit()
    return critic


def scores(pred: np.ndarray, truth: np.ndarray, targets: dict[str, float]) -> dict[str, Any]:
    """How well ``pred`` ranks ``truth``: rank correlations and the critic's top picks."""
    from scipy.stats import kendalltau, spearmanr

    order = np.argsort(-pred, kind="stable")
    top10 = truth[order[:10]]
    return {"spearman": float(spearmanr(pred, truth).statistic),
            "kendall": float(kendalltau(pred, truth).statistic),
            "top1_reward": float(truth[order[0]]), "top5_best_reward": float(top10[:5].max()),
            **{f"top10_reaching_{k}": int(reaches(top10, t).sum())
               for k, t in targets.items()}}


def case(name: str, points: list, decisions: np.ndarray, truth: np.ndarray,
         targets: dict[str, float], seeds: list[int], sizes: Any) -> dict[str, Any]:
    runs = [scores(_critic(points, sizes, s).predict(decisions)[0], truth, targets)
            for s in seeds]
    out: dict[str, Any] = {"name": name, "points": len(points), "per_seed": runs}
    for k in runs[0]:
        v = [r[k] for r in runs]
        out[k] = {"median": float(np.median(v)), "min": float(min(v)), "max": float(max(v))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", default=[], metavar="NAME=STORE",
                    help="a source store to judge (repeatable)")
    ap.add_argument("--reference",
                    default=os.path.relpath(HERE / "results" / "mnist5k_reference.json"))
    ap.add_argument("--seeds", default="0,1,2,3,4", help="critic seeds")
    ap.add_argument("--out", default=os.path.relpath(HERE / "results" / "knowledge_quality.json"))
    a = ap.parse_args(argv)
    import torch

    from fnas.agent.acquisition import rank_gauss
    from fnas.knowledge import Store
    from fnas.search.knowledge import gather_knowledge
    from fnas.space.mnas import mnas_space
    from fnas.space.spec import ArchSpec
    from fnas.tasks.reward import RewardConfig, mnas_reward

    torch.set_num_threads(1)
    if not Path(a.reference).is_file():
        sys.exit(f"knowledge_quality: no reference at {a.reference}: run "
                 "benchmarks/mnist5k_reference.py first")
    ref = json.loads(Path(a.reference).read_text())
    ok = [r for r in ref["first"] if r["status"] == "ok"]
    space = mnas_space(28)
    decisions = np.array([space.encode(ArchSpec.parse(r["arch"])) for r in ok])
    truth = np.array([r["reward"] for r in ok])
    targets = {**{k: float(np.quantile(truth, q)) for k, q in QUANTILES.items()},
               "top10": float(np.quantile(truth, 0.9))}
    cfg = RewardConfig(**ref["settings"]["proxy"]["reward"])
    seeds = [int(s) for s in a.seeds.split(",")]
    n = len(ok) // 2
    test = (decisions[n:], truth[n:], targets, seeds, space.sizes)
    results = []
    for spec in a.case:
        name, _, path = spec.partition("=")
        if not name or not Path(path, "fnas.db").is_file():
            sys.exit(f"knowledge_quality: --case {spec!r}: expected NAME=STORE, a store folder")
        with Store(path) as store:
            points, exps = gather_knowledge(
                store, -1, space.decision_signature, "all",
                lambda acc, lat, macs: mnas_reward(acc, macs, cfg))
        results.append({**case(name, points, *test), "experiments": exps})
    in_task = list(zip(map(tuple, decisions[:n]), rank_gauss(truth[:n]), strict=True))
    results.append(case("in-task", in_task, *test))
    results.append({"name": "chance", **{f"top10_reaching_{k}": 10 * float(
        reaches(truth[n:], t).mean()) for k, t in targets.items()}})
    out = {"command": "python benchmarks/knowledge_quality.py " + " ".join(
               argv if argv is not None else sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M"), "reference": a.reference,
           "targets": targets, "seeds": seeds,
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "torch": torch.__version__},
           "results": results}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    for r in results:
        cells = [f"{k} {v['median']:.3f}" if isinstance(v, dict) else f"{k} {v:.2f}"
                 for k, v in r.items() if k.startswith(("spearman", "top"))]
        print(f"{r['name']:>10}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
