"""How well a low-fidelity training ranks the full one on the mnist5k proxy (issue 34, part 3).

A multi-fidelity search (``FNASConfig.screen.rungs``) only saves compute where a short
training ranks architectures as the full one does. This script measures that on the
project's own reference (``results/mnist5k_reference.json``: uniform MnasNet-28
architectures, each really trained once at the proxy settings, architecture i with rollout
seed i): the first ``--n`` of them are trained again at each fidelity of ``--fidelities``
(a fidelity f trains that fraction of the full training's optimisation steps:
``ProxyEvaluator.evaluate_at``), with the same seed i, and each fidelity's accuracy and reward
are compared with the reference's full-fidelity ones: Spearman over the n architectures, and
how many of the 10 best (by the full reward) are among the 10 best at low fidelity. The
ceiling is the reference's own seed-to-seed Spearman (``summary.noise``). Each training's
CPU seconds are recorded, so the cost of a low-fidelity result is measured, not assumed.

Command (from the repository root; resumable: finished trainings are kept in the JSON):

    OMP_NUM_THREADS=1 python benchmarks/fidelity_correlation.py [--n 40] [--jobs 2]

Writes ``results/fidelity_correlation.json``. Machine: recorded there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _train(arch: str, seed: int, fidelity: float) -> dict[str, Any]:
    import torch

    from fnas.execution.evaluators import ProxyEvaluator
    from fnas.space.spec import ArchSpec
    from mnist5k_reference import reward_config, task_config

    torch.set_num_threads(1)
    ev = ProxyEvaluator(task_config(), reward_config())
    c0 = time.thread_time()
    r = ev.evaluate_at(ArchSpec.parse(arch), seed, fidelity)
    return {"arch": arch, "seed": seed, "fidelity": fidelity, "status": r.status,
            "accuracy": r.accuracy, "reward": r.reward,
            "cpu_s": round(time.thread_time() - c0, 3)}


def summarise(ref: dict[str, Any], done: dict[str, dict[str, Any]],
              fidelities: list[float]) -> dict[str, Any]:
    from scipy.stats import spearmanr

    full = {r["arch"]: r for r in ref["first"] if r["status"] == "ok"}
    out: dict[str, Any] = {"full_cpu_s_median": float(np.median(
        [r["cpu_s"] for r in full.values()]))}
    for f in fidelities:
        rows = [r for r in done.values() if r["fidelity"] == f and r["status"] == "ok"
                and r["arch"] in full]
        if len(rows) < 3:
            continue
        lo_r = np.asarray([r["reward"] for r in rows])
        hi_r = np.asarray([full[r["arch"]]["reward"] for r in rows])
        lo_a = np.asarray([r["accuracy"] for r in rows])
        hi_a = np.asarray([full[r["arch"]]["accuracy"] for r in rows])
        k = min(10, len(rows) // 4)
        top_hi = set(np.argsort(-hi_r)[:k].tolist())
        top_lo = set(np.argsort(-lo_r)[:k].tolist())
        out[str(f)] = {
            "n": len(rows), "spearman_reward": round(float(spearmanr(lo_r, hi_r)[0]), 3),
            "spearman_accuracy": round(float(spearmanr(lo_a, hi_a)[0]), 3),
            f"top{k}_hits": len(top_hi & top_lo),
            "cpu_s_median": round(float(np.median([r["cpu_s"] for r in rows])), 3),
            "cost_share": round(float(np.median([r["cpu_s"] for r in rows]))
                                / out["full_cpu_s_median"], 3)}
    out["seed_to_seed_ceiling"] = ref["summary"].get("noise")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=40, help="reference architectures (a prefix)")
    ap.add_argument("--fidelities", default="0.25,0.5")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--reference", default=str(HERE / "results" / "mnist5k_reference.json"))
    ap.add_argument("--out", default=str(HERE / "results" / "fidelity_correlation.json"))
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ref = json.loads(Path(a.reference).read_text())
    fids = [float(f) for f in a.fidelities.split(",")]
    out = Path(a.out)
    res = json.loads(out.read_text()) if out.is_file() else {}
    done: dict[str, dict[str, Any]] = res.setdefault("trainings", {})
    rows = [r for r in ref["first"] if r["status"] == "ok"][: a.n]
    todo = [(r["arch"], r["seed"], f) for r in rows for f in fids
            if f"{f}|{r['index']}" not in done]
    index = {r["arch"]: r["index"] for r in rows}
    res.update({"command": "OMP_NUM_THREADS=1 python benchmarks/fidelity_correlation.py "
                + " ".join(argv if argv is not None else sys.argv[1:]),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                            "jobs": a.jobs},
                "reference": Path(a.reference).name})

    def save() -> None:
        res["summary"] = summarise(ref, done, fids)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(res, indent=1) + "\n")
        os.replace(tmp, out)

    with ProcessPoolExecutor(a.jobs) as pool:
        for r in pool.map(_train, *zip(*todo, strict=True)) if todo else []:
            done[f"{r['fidelity']}|{index[r['arch']]}"] = r
            save()
    save()
    print(json.dumps(res["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
