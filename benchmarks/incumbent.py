"""The incumbent metric of ``ablation_mnist5k.py`` (issue 34, part 5): a metric that fidelity
cannot game.

A run's quality at compute c is its **incumbent's**: the architecture the run would return if
stopped at c, which is its best **full-fidelity real** result so far by the run's own reward.
A row counts when its status is ``ok``, it is not a critic's prediction (flag ``p``) and its
``fidelity`` (absent in rows recorded before the field existed: 1.0) is 1; a cached result
counts as the run's own, as in the old metric. A low-fidelity or pool-initialised result can
thus make an architecture the incumbent only through a full-fidelity result of it, and the
incumbent is never scored by the run's own number: it is scored by the **reference
protocol**, the reference's proxy training from scratch (``mnist5k_reference.py``'s settings)
with the seeds of ``PROTOCOL_SEEDS``, the mean of the seeds, under the run's objective
(``reward``: MnasNet's soft reward; ``accuracy``: held-out accuracy).
**Compute to target** is the first c at which the incumbent's reference score reaches the
target.

The logic takes the scoring function as a parameter (``score(arch) -> float``), so tests pass
a fake one; the benchmark passes ``ReferenceScores(...).scorer(objective)``, which trains each
(architecture, seed) once and keeps it in a JSON cache keyed by task, protocol and
architecture (``results/reference_scores.json``), and reuses the reference's own trainings
where they were made with the same protocol and seed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist5k_reference import reaches  # noqa: E402

PROTOCOL_SEEDS = (0, 10_000)
"""Rollout seeds of the reference protocol: the two seeds the reference gave its architecture
0 (its first trainings use the architecture's index, its second ones 10000 + index), fixed for
every architecture so that any two incumbents are scored alike."""
OBJECTIVES = {"mnas": "reward", "accuracy": "accuracy"}
"""``--objective`` -> the field of a reference training that scores it."""


def full_fidelity(row: dict[str, Any]) -> bool:
    """Whether ``row`` is a full-fidelity result (rows without ``fidelity`` are)."""
    f = row.get("fidelity")
    return f is None or float(f) >= 1.0


def eligible(row: dict[str, Any]) -> bool:
    """Whether ``row`` may become the incumbent: a real (trained or cached, not predicted),
    successful, full-fidelity result."""
    return row["status"] == "ok" and "p" not in row["flags"] and full_fidelity(row)


def incumbents(curve: list[dict[str, Any]], budget: float = math.inf,
               confirm: int = 1) -> list[dict[str, Any]]:
    """Each change of the run's incumbent within ``budget``, in order:
    ``{"compute", "arch", "reward"}`` (``reward``: the run's own). The incumbent changes only
    when an eligible result beats it strictly (a tie keeps the earlier one). A run that raced
    (``confirm`` > 1, ``SearchConfig.confirm``) is followed by its own rule,
    :class:`fnas.knowledge.racing.Race` over its rows (``replicate``: 0 when absent), its
    incumbent's ``reward`` the mean of its replicates."""
    if confirm > 1:
        return _raced(curve, budget, confirm)
    out: list[dict[str, Any]] = []
    for row in curve:
        if row["compute"] > budget:
            break
        if eligible(row) and (not out or row["reward"] > out[-1]["reward"]):
            if out and row["arch"] == out[-1]["arch"]:  # the same network, a better own number
                out[-1] = {**out[-1], "reward": row["reward"]}
                continue
            out.append({"compute": row["compute"], "arch": row["arch"],
                        "reward": row["reward"]})
    return out


def _raced(curve: list[dict[str, Any]], budget: float, confirm: int) -> list[dict[str, Any]]:
    from fnas.knowledge.racing import Race

    race, out = Race(confirm), []
    for row in curve:
        if row["compute"] > budget:
            break
        if "p" in row["flags"] or not full_fidelity(row):
            continue
        race.add(row["arch"], int(row.get("replicate", 0)),
                 row["reward"] if row["status"] == "ok" else None,
                 pooled=bool(row.get("pooled")))
        inc = race.incumbent()
        if inc is None:
            continue
        if out and out[-1]["arch"] == inc.key:
            out[-1] = {**out[-1], "reward": inc.mean}
        else:
            out.append({"compute": row["compute"], "arch": inc.key, "reward": inc.mean})
    return out


def reach_incumbent(curve: list[dict[str, Any]], target: float, budget: float,
                    score: Callable[[str], float], confirm: int = 1) -> float:
    """The first compute within ``budget`` at which the incumbent's ``score`` reaches
    ``target``; inf if none does. Scores incumbents in order and stops at the first that
    reaches it (so later ones are not scored)."""
    for inc in incumbents(curve, budget, confirm):
        if reaches(score(inc["arch"]), target):
            return inc["compute"]
    return math.inf


def final_incumbent(curve: list[dict[str, Any]], budget: float,
                    confirm: int = 1) -> dict[str, Any] | None:
    """The architecture the run returns at ``budget`` (None: no eligible result)."""
    inc = incumbents(curve, budget, confirm)
    return inc[-1] if inc else None


def protocol(proxy: dict[str, Any], epochs: int | None = None,
             seeds: Iterable[int] = PROTOCOL_SEEDS) -> dict[str, Any]:
    """The reference protocol as data: the proxy's training settings (the dataset named by
    the task, not by a path on this machine), its reward, the epochs and the seeds."""
    task = {k: v for k, v in proxy["task"].items() if k != "dataset"}
    if epochs is not None:
        task["epochs"] = epochs
    return {"task": task, "reward": proxy["reward"], "input_size": proxy["input_size"],
            "seeds": list(seeds)}


def protocol_id(p: dict[str, Any]) -> str:
    """A short, stable name of protocol ``p`` (its canonical JSON's hash)."""
    return hashlib.sha1(json.dumps(p, sort_keys=True).encode()).hexdigest()[:12]


class ReferenceScores:
    """Reference-protocol scores of architectures, cached on disk.

    ``train(arch, seed) -> {"status", "accuracy", "reward", "macs", "cpu_s"}`` trains one
    architecture once (the benchmark's: ``mnist5k_reference._train`` at the protocol's
    settings); ``reference`` (the reference JSON) lends its trainings where its settings are
    the protocol's and the seed matches. ``trained`` counts this object's calls of ``train``
    (``cpu_s``: their CPU seconds), ``hits`` the calls of ``score`` answered without one,
    ``asked`` the architectures scored.
    """

    def __init__(self, path: str | Path, task: str, proto: dict[str, Any],
                 train: Callable[[str, int], dict[str, Any]],
                 reference: dict[str, Any] | None = None, jobs: int = 1) -> None:
        self.path, self.task, self.proto = Path(path), task, proto
        self.pid, self.train, self.jobs = protocol_id(proto), train, jobs
        self.trained, self.hits, self.cpu_s = 0, 0, 0.0
        self.asked: set[str] = set()
        self._pool: ProcessPoolExecutor | None = None
        self.data: dict[str, Any] = {"protocols": {}, "scores": {}}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())
        self.data["protocols"][self.pid] = proto
        self.lent: dict[tuple[str, int], dict[str, Any]] = {}
        if reference is not None and _same_protocol(reference, proto):
            for r in reference.get("first", []) + reference.get("second", []):
                if r["seed"] in proto["seeds"]:
                    self.lent[(r["arch"], r["seed"])] = _keep(r, "reference")

    def key(self, arch: str) -> str:
        return f"{self.task} | {self.pid} | {arch}"

    def trainings(self, arch: str) -> dict[str, dict[str, Any]]:
        """The protocol's trainings of ``arch`` known so far, by seed (as strings)."""
        entry = self.data["scores"].get(self.key(arch), {})
        return dict(entry.get("seeds", {}))

    def score(self, arch: str) -> dict[str, Any]:
        """``{"accuracy", "reward", "seeds"}``: the means over the protocol's seeds (a failed
        training scores 0), training only the seeds not yet cached."""
        self.asked.add(arch)
        have = self.trainings(arch)
        for s in self.proto["seeds"]:
            if str(s) not in have and (arch, s) in self.lent:
                have[str(s)] = self.lent[(arch, s)]
        missing = [s for s in self.proto["seeds"] if str(s) not in have]
        if not missing:
            self.hits += 1
        for s, r in zip(missing, self._run(arch, missing), strict=True):
            have[str(s)] = _keep(r, "trained")
            self.trained += 1
            self.cpu_s += float(r.get("cpu_s") or 0.0)
        if self.trainings(arch) != have:
            self.data["scores"][self.key(arch)] = {"task": self.task, "protocol": self.pid,
                                                   "arch": arch, "seeds": have}
            self._save()
        runs = [have[str(s)] for s in self.proto["seeds"]]
        return {"accuracy": sum(r["accuracy"] or 0.0 for r in runs) / len(runs),
                "reward": sum(r["reward"] or 0.0 for r in runs) / len(runs),
                "seeds": {str(s): have[str(s)] for s in self.proto["seeds"]}}

    def scorer(self, objective: str) -> Callable[[str], float]:
        """``score(arch) -> float`` under ``objective`` (a key of ``OBJECTIVES``)."""
        field = OBJECTIVES[objective]
        return lambda arch: self.score(arch)[field]

    def _run(self, arch: str, seeds: list[int]) -> list[dict[str, Any]]:
        if self.jobs < 2 or len(seeds) < 2:
            return [self.train(arch, s) for s in seeds]
        if self._pool is None:  # kept for the next architecture: workers start once
            self._pool = ProcessPoolExecutor(self.jobs)
        return list(self._pool.map(self.train, [arch] * len(seeds), seeds))

    def close(self) -> None:
        """Stops the training processes (if any were started)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def train_reference(proxy: dict[str, Any], epochs: int | None, arch: str, seed: int
                    ) -> dict[str, Any]:
    """One training of the reference protocol: ``mnist5k_reference``'s own (the proxy from
    scratch, one torch thread; ``cpu_s`` is the training thread's CPU seconds). Bind the first
    two arguments with ``functools.partial`` to get ``ReferenceScores``'s ``train``."""
    from mnist5k_reference import _train

    return _train(-1, arch, seed, epochs, proxy)


def _keep(r: dict[str, Any], origin: str) -> dict[str, Any]:
    out = {k: r.get(k) for k in ("status", "accuracy", "reward", "macs", "cpu_s")}
    return {**out, "from": origin}


def _same_protocol(reference: dict[str, Any], proto: dict[str, Any]) -> bool:
    """Whether the reference's trainings were made at ``proto``'s settings (any seed)."""
    s = reference.get("settings") or {}
    if "proxy" not in s:
        return False
    mine = protocol(s["proxy"], s.get("epochs_override"), proto["seeds"])
    return mine == proto
