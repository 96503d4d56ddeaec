"""Where the critic's information is: ranking the mnist5k reference from n results, by input.

Issue 34 claims that a critic seeing only one-hot decisions ranks real-training results
badly from few points, and that known parts of the reward, analytic features and zero-cost
proxies carry the missing information. This script measures it, on the project's own
reference (``results/mnist5k_reference.json`` or ``fashion_reference.json``: 300 uniform
MnasNet-28 architectures, each really trained once at the proxy settings).

For n in 8, 16, 32, 64 and ``--splits`` random splits (seeded), a model is fitted on n
results and ranks the other 300 - n; reported: Spearman between its score and the real
reward, and top-10 hits (how many of the 10 best held-out architectures by real reward are
among its 10 best-scored), median over splits, with the 10% and 90% quantiles. Inputs:

- ``onehot``: one-hot decisions -> reward (what fnas's critic saw before issue 34);
- ``onehot+feat``: + analytic features (``fnas.space.features``: log MACs, log params, per
  block depth, log width, log resolution) -> reward;
- ``onehot->acc``: one-hot -> accuracy, times the reward's known cost factor
  ``(MACs / T) ** w`` (the decomposition: the critic learns only what is unknown);
- ``onehot+feat->acc``: both;
- ``onehot->acc~cost``: as ``onehot->acc``, but the held-out architectures' cost factor comes
  from fnas's learned cost model (``fnas.strategies.fnas.cost_model``) fitted on the n
  training results' measured MACs, as for a user objective that returns its MACs with the
  accuracy (the cost is then not known before training);
- ``+zc``: ``onehot+feat->acc`` plus the log of the zero-cost proxies gradient norm and SNIP
  at initialisation (``fnas.nn.zero_cost``, one minibatch of 64 training images, the
  architecture's own seed).

Two models: fnas's own ``EnsembleCritic`` (default ``CriticConfig``; targets rank-Gaussian,
as the strategy fits them; 5 fits; the decomposed variants map each member back to accuracy
and multiply by the factor; 20 splits, ``--critic-splits``), and a random forest
(scikit-learn, 200 trees; the issue's check; all splits). Also reported: each proxy's
Spearman with the real accuracy over all 300, and its CPU cost per architecture (model
build included, one thread).

Command (from the repository root; ~10 min on the project's 2-core VM, most of it the
critic's fits; the proxies are cached in the output and not recomputed):

    OMP_NUM_THREADS=1 python benchmarks/critic_inputs.py [--task mnist5k|fashion]

Writes ``results/critic_inputs[_fashion].json``. Seeds: split s draws its n training points
with numpy seed s; the critic is seeded with s. Machine: recorded in the JSON.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

NS = (8, 16, 32, 64)
INPUTS = ("onehot", "onehot+feat", "onehot->acc", "onehot+feat->acc", "+zc",
          "onehot->acc~cost")
ZC_BATCH = 64


def _load(task: str) -> tuple[dict, Path]:
    name = "mnist5k_reference.json" if task == "mnist5k" else "fashion_reference.json"
    ref = json.loads((HERE / "results" / name).read_text())
    return ref, HERE / "results" / ("critic_inputs.json" if task == "mnist5k"
                                    else f"critic_inputs_{task}.json")


def proxies(ref: dict, cache: dict) -> dict:
    """Zero-cost proxies of every reference architecture (cached by index in ``cache``)."""
    import torch

    from fnas.nn.builder import build_model
    from fnas.nn.zero_cost import zero_cost
    from fnas.space.spec import ArchSpec
    from fnas.tasks.datasets import load_dataset

    task = ref["settings"]["proxy"]["task"]
    data = load_dataset(task["dataset"], max_samples=task.get("max_samples"))
    g = torch.Generator().manual_seed(0)
    pick = torch.randperm(len(data.y_train), generator=g)[:ZC_BATCH]
    x, y = data.x_train[pick], data.y_train[pick]
    torch.set_num_threads(1)
    for row in ref["first"]:
        key = str(row["index"])
        if key in cache:
            continue
        t0 = time.thread_time()
        spec = ArchSpec.parse(row["arch"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(row["seed"])
            model = build_model(spec, data.in_chans, data.num_classes)
        out = zero_cost(model, x, y)
        out["cpu_s"] = time.thread_time() - t0
        cache[key] = out
    return cache


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def _hits(score: np.ndarray, truth: np.ndarray, k: int = 10) -> int:
    top = set(np.argsort(-truth, kind="stable")[:k].tolist())
    return len(top & set(np.argsort(-score, kind="stable")[:k].tolist()))


class Data:
    """The reference as arrays: decisions, features, proxies, accuracy, reward, factor."""

    def __init__(self, ref: dict, zc: dict) -> None:
        from fnas.space.features import FeatureMap, arch_features
        from fnas.space.mnas import mnas_space
        from fnas.space.spec import ArchSpec

        proxy = ref["settings"]["proxy"]
        size = int(proxy["input_size"])
        self.space = mnas_space(size)
        rows = [r for r in ref["first"] if r["status"] == "ok"]
        self.x = np.asarray([self.space.encode(ArchSpec.parse(r["arch"])) for r in rows])
        fmap = FeatureMap(self.space, lambda s: arch_features(s, size, 1, 10), seed=0)
        self.fmap = fmap
        self.feat = fmap(self.x)
        self.acc = np.asarray([r["accuracy"] for r in rows])
        self.reward = np.asarray([r["reward"] for r in rows])
        from fnas.tasks.reward import RewardConfig, mnas_reward

        cfg = RewardConfig(**proxy["reward"])  # the known part: the reward at accuracy 1
        self.factor = np.asarray([mnas_reward(1.0, r["macs"], cfg) for r in rows])
        self.macs = np.asarray([float(r["macs"]) for r in rows])
        self.reward_cfg = cfg
        z = np.asarray([[zc[str(r["index"])][k] for k in ("grad_norm", "snip")] for r in rows])
        zl = np.log(np.maximum(z, 1e-12))
        self.zc_raw = z
        self.zc = (zl - zl.mean(0)) / zl.std(0)
        self.zc_cpu = np.asarray([zc[str(r["index"])]["cpu_s"] for r in rows])

    def inputs(self, kind: str) -> tuple[np.ndarray, bool]:
        """(extra feature columns (n, F) or None, decomposed?)"""
        if kind == "onehot":
            return np.zeros((len(self.x), 0)), False
        if kind == "onehot+feat":
            return self.feat, False
        if kind in ("onehot->acc", "onehot->acc~cost"):
            return np.zeros((len(self.x), 0)), True
        if kind == "onehot+feat->acc":
            return self.feat, True
        return np.concatenate([self.feat, self.zc], 1), True


def _factor(d: Data, kind: str, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The test points' cost factor: exact, or (``~cost``) the learned cost model's."""
    if not kind.endswith("~cost"):
        return d.factor[test]
    from fnas.strategies.fnas.cost_model import CostModel
    from fnas.tasks.reward import mnas_reward

    model = CostModel(d.space, None)
    model.fit([(d.x[i].tolist(), float(d.macs[i])) for i in train])
    return np.asarray([mnas_reward(1.0, float(c), d.reward_cfg)
                       for c in model.predict(d.x[test])])


def critic_score(d: Data, kind: str, train: np.ndarray, test: np.ndarray, seed: int
                 ) -> np.ndarray:
    from fnas.agent.acquisition import RankGauss, rank_gauss
    from fnas.agent.critic import EnsembleCritic

    extra, decomposed = d.inputs(kind)
    target = d.acc if decomposed else d.reward
    index = {tuple(r): i for i, r in enumerate(d.x.tolist())}
    width = extra.shape[1]
    fn = (lambda x: extra[[index[tuple(r)] for r in x.tolist()]]) if width else None
    critic = EnsembleCritic(d.space.sizes, seed=seed, features=fn, n_features=width)
    critic.add(d.x[train], rank_gauss(target[train]))
    for _ in range(5):
        critic.fit()
    members = critic.predict_members(d.x[test])  # (K, m) rank-Gaussian units
    if not decomposed:
        return members.mean(0)
    acc = RankGauss(target[train]).inverse(members)
    return (acc * _factor(d, kind, train, test)[None]).mean(0)


def forest_score(d: Data, kind: str, train: np.ndarray, test: np.ndarray, seed: int
                 ) -> np.ndarray:
    from sklearn.ensemble import RandomForestRegressor

    extra, decomposed = d.inputs(kind)
    onehot = np.concatenate([np.eye(s)[d.x[:, t]] for t, s in enumerate(d.space.sizes)], 1)
    inp = np.concatenate([onehot, extra], 1)
    target = d.acc if decomposed else d.reward
    rf = RandomForestRegressor(200, random_state=seed, n_jobs=1).fit(inp[train], target[train])
    pred = rf.predict(inp[test])
    return pred * _factor(d, kind, train, test) if decomposed else pred


def evaluate(d: Data, model: str, splits: int, done: dict, save) -> dict:
    fn = critic_score if model == "critic" else forest_score
    for s in range(splits):  # split-major: a partial result covers every (n, input)
        for n in NS:
            rng = np.random.default_rng(s)
            perm = rng.permutation(len(d.x))
            train, test = perm[:n], perm[n:]
            for kind in INPUTS:
                key = f"{model}|{kind}|{n}"
                rows = done.setdefault(key, [])
                if len(rows) > s:
                    continue
                score = fn(d, kind, train, test, s)
                truth = d.reward[test]
                rows.append({"spearman": _spearman(score, truth),
                             "top10": _hits(score, truth)})
        save()
    return done


def summarise(done: dict) -> dict:
    out: dict = {}
    for key, rows in done.items():
        model, kind, n = key.split("|")
        sp = np.asarray([r["spearman"] for r in rows])
        hits = np.asarray([r["top10"] for r in rows])
        out.setdefault(model, {}).setdefault(kind, {})[n] = {
            "splits": len(rows), "spearman_median": round(float(np.median(sp)), 3),
            "spearman_q10": round(float(np.quantile(sp, 0.1)), 3),
            "spearman_q90": round(float(np.quantile(sp, 0.9)), 3),
            "top10_median": float(np.median(hits)), "top10_mean": round(float(hits.mean()), 2)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="mnist5k", choices=("mnist5k", "fashion"))
    ap.add_argument("--splits", type=int, default=50, help="random-forest splits")
    ap.add_argument("--critic-splits", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ref, out_path = _load(args.task)
    out_path = args.out or out_path
    res = json.loads(out_path.read_text()) if out_path.exists() else {}

    def save() -> None:
        res["summary"] = summarise(res.get("splits", {}))
        out_path.write_text(json.dumps(res, indent=1) + "\n")

    res["command"] = ("OMP_NUM_THREADS=1 python benchmarks/critic_inputs.py --task "
                      f"{args.task} --splits {args.splits} --critic-splits {args.critic_splits}")
    res["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                      "python": platform.python_version()}
    res["reference"] = ("results/mnist5k_reference.json" if args.task == "mnist5k"
                        else "results/fashion_reference.json")
    zc = proxies(ref, res.setdefault("zero_cost", {}))
    save()
    d = Data(ref, zc)
    res["proxies"] = {
        k: {"spearman_accuracy": round(_spearman(d.zc_raw[:, i], d.acc), 3),
            "spearman_reward": round(_spearman(d.zc_raw[:, i], d.reward), 3)}
        for i, k in enumerate(("grad_norm", "snip"))}
    res["proxies"]["cpu_s_per_architecture"] = {
        "median": round(float(np.median(d.zc_cpu)), 3),
        "share_of_training": round(float(np.median(d.zc_cpu))
                                   / ref["summary"]["cpu_s_per_training"], 4)}
    res["features"] = {"names": d.fmap.size, "spearman_log_macs_accuracy": round(
        _spearman(d.feat[:, 0], d.acc), 3)}
    splits = res.setdefault("splits", {})
    evaluate(d, "forest", args.splits, splits, save)
    evaluate(d, "critic", args.critic_splits, splits, save)
    save()
    for model, kinds in res["summary"].items():
        print(model)
        for kind, by_n in kinds.items():
            print(f"  {kind:18s}", "  ".join(
                f"n={n}: {v['spearman_median']:.2f}/{v['top10_median']:.0f}"
                for n, v in sorted(by_n.items(), key=lambda kv: int(kv[0]))))
    print("proxies", res["proxies"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
