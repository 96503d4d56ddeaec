"""Behaviour equivalence: fixed-seed searches dumped as one canonical JSON, to compare a
source tree before a refactor with the tree after it (issue 33).

What it checks. A fixed set of small, fixed-seed searches runs through the public entry points
that a restructuring of the package must keep: ``fnas.create_search(...).optimize(...)`` (with
``stop_after``, callbacks and resume), ``fnas.search.run_search`` / ``resume_search`` with a
``MacroTableEvaluator``, ``fnas.bench(...)``, and the CLI (``python -m fnas search`` and
``python -m fnas bench`` in subprocesses). Each search runs in its own fresh store. For every
case the dump holds:

- every evaluation row (every field of ``Search.trials()`` / ``Store.evaluations``: the
  architecture, decisions, seed, reward, flags, pool snapshot and hit ratios, the critic's
  prediction...) except the wall-clock fields ``created`` and ``train_seconds``;
- every policy update's row (``Store.updates``) without its timing metrics (names holding
  ``seconds``, ``_ms`` or ``time``: ``time/fit_ms``...);
- the run's status, stop reason, its stats without the loop's timers (``sample``,
  ``evaluate``, ``train``, ``pool``, ``store``, ``update``, ``checkpoint``, ``wall``), its
  space and task signatures and stored config;
- the last checkpoint's content: the loop counters (its ``timers`` left out), a sha256 of each
  tensor (dtype, shape, bytes) and of each top-level entry of the strategy's JSON state;
- the knowledge pool's rows (block, hash of the trained weights, source, epochs; not the time
  they were written) when the pool is on;
- for resume cases, ``resume_equals_uninterrupted``: the run stopped (``stop_after``, or a
  callback raising ``KeyboardInterrupt`` after the k-th evaluation, as Ctrl-C) and resumed
  gives exactly the records of the same run left alone (also compared here, in the dump);
  ``equals_case`` does the same across entry points (the CLI run against the API run).

Floats are written as ``repr(float)`` strings, so equality is exact; temporary folders, the
table's path and the source tree are replaced by ``<tmp>``, ``<macro>`` and ``<src>``. Keys
are sorted (``json.dumps(..., sort_keys=True, indent=1)``): two dumps of the same behaviour are
byte-identical, and ``compare`` names the first differing row and field per case.

Cases (``python benchmarks/equivalence.py list``; 39, each under 13 s):

- NAS-Bench-Macro, ``run_search`` with a ``MacroTableEvaluator`` (budget 32, or 40 where the
  veto rule's critic must be trusted; batch 8): random, rea, ppo, ppo with replay, fnas with
  ucb / ts / ei screening, the veto rule (``acquisition='off'``), the frozen policy
  (``screen.policy='frozen'``), replay off, prioritized replay, no critic, a budget in
  trainings; knowledge from an earlier run in the store (screening and the veto rule, and
  ``knowledge_as='rewards'``); ``stop_after=1`` then ``resume_search`` for fnas, the veto
  rule, ppo with replay and rea; and ``fnas bench`` (CLI) for the four strategies.
- A user space (``fnas.make_space``, 864 architectures) and a synthetic objective that is a pure
  function of the architecture (structure plus a sha256-based perturbation, latency and MACs,
  one failing corner caught with ``catch``), through ``fnas.create_search``: random, rea, ppo,
  ppo with replay, fnas, the veto rule, the frozen policy, a latency target, evaluations in a
  worker process (``eval_isolation='process'``), Ctrl-C after the 11th evaluation then resume,
  ``optimize(stop_after=1)`` then resume; and ``fnas.bench`` on the objective.
- Real training on the tiny digits proxy task (100 images, minibatches of 32, no latency, 1
  epoch; budget 4, batch 2): fnas with the knowledge pool on and ppo through
  ``create_search``; the same fnas through ``fnas search`` with ``--set`` flags (checked equal
  to the API's run); ppo through ``fnas search`` with budget 2, then ``--resume`` to 4
  (checked equal to the API's run of 4); fnas with the pool and a MACs target, Ctrl-C after
  the 3rd evaluation, then ``resume_search``; ppo at 3 epochs on 300 images, batch 16 (the
  accuracies differ, so the training reaches the rewards).

``--quick`` runs 8 of them (fnas and ppo on the table, a resume on the table, random, rea,
fnas and a Ctrl-C on the user space, ppo with training).

Commands (from the repository root; set ``OMP_NUM_THREADS=1``, the script forces one thread)::

    python benchmarks/equivalence.py dump OUT.json [--macro PATH] [--quick] [--cases A,B]
    python benchmarks/equivalence.py compare A.json B.json [--common]
    python benchmarks/equivalence.py list

``--macro`` defaults to ``../shared/data/nas-bench-macro/nas-bench-macro_cifar10.json`` from
the repository root; without the table the NAS-Bench-Macro cases are skipped with one line
(``compare`` then reports them missing). ``dump`` exits 1 when a resume or cross-entry check
inside the dump fails (the dump is written all the same). ``compare`` exits 0 only when every
case is identical; ``--common`` compares only the cases both dumps have (a ``--quick`` dump
against a full one).

Time on the project's 2-core VM at ``OMP_NUM_THREADS=1``: the full dump 1 min 45 s to 2 min
(about 105 s of cases, the rest starting Python), ``--quick`` 15 to 25 s, depending on what
else the machine runs.

How to use it around a refactor. Dump at the commit just before the refactor and at the one
after, with the same script, and compare::

    git worktree add /tmp/before <rev-before>
    python benchmarks/equivalence.py dump /tmp/before.json --src /tmp/before/src
    python benchmarks/equivalence.py dump /tmp/after.json
    python benchmarks/equivalence.py compare /tmp/before.json /tmp/after.json

``--src DIR`` imports fnas from that source tree (default: this checkout's ``src``), here and
in the CLI subprocesses; the dump checks that it did. ``benchmarks/results/
equivalence_before.json`` is the full dump at the commit this script was added at (see
benchmarks/README.md); if ``src/`` changed since, regenerate it at the commit just before the
refactor rather than comparing against the stale one.

Nondeterminism. Two full dumps, each in its own process, are byte-identical. Left out because
they are wall-clock time: ``created`` and ``train_seconds`` of evaluations, timing metrics of
updates (``time/fit_ms``, ``time/score_ms``, ``time/update_ms``), the loop's timers in the
stats and the checkpoint, the pool rows' ``created``, ``seconds`` in bench results, and (found
by the double run) the ``history.cost`` of ``fnas.bench`` on an objective, which is the sum of
the evaluations' ``train_seconds``; on NAS-Bench-Macro that cost is the table's FLOPs and is
kept. Nothing else varied.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["OMP_NUM_THREADS"] = "1"  # before torch loads: results bit for bit need one thread
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MACRO = REPO.parent / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"
FORMAT = "fnas-equivalence/1"

EVAL_WALL = ("created", "train_seconds")
"""Evaluation fields left out: wall-clock time."""
TIMERS = frozenset({"sample", "evaluate", "train", "pool", "store", "update", "checkpoint",
                    "wall"})
"""The loop's timers in a run's stats (seconds per part of the loop)."""


def timelike(key: str) -> bool:
    """A metric or stat that measures time (left out: it differs run to run)."""
    k = str(key).lower()
    return "seconds" in k or "_ms" in k or "time" in k or k in ("created", "updated")


# ---- canonical values -------------------------------------------------------------------------
class Canon:
    """Turns records into JSON values that compare exactly: floats as ``repr`` strings, run-
    specific paths replaced by placeholders."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, str]] = []

    def add_path(self, path: str | Path, placeholder: str) -> None:
        for p in {str(path), os.path.abspath(path), str(Path(path).resolve())}:
            if p and p not in dict(self.paths):
                self.paths.append((p, placeholder))
        self.paths.sort(key=lambda t: -len(t[0]))  # the longest first

    def __call__(self, v: Any, drop: Callable[[str], bool] | None = None) -> Any:
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, str):
            for p, ph in self.paths:
                if p in v:
                    v = v.replace(p, ph)
            return v
        if isinstance(v, dict):
            return {str(k): self(x, drop) for k, x in v.items() if not (drop and drop(k))}
        if isinstance(v, (list, tuple)):
            return [self(x, drop) for x in v]
        item = getattr(v, "item", None)  # a numpy or torch scalar
        if callable(item) and getattr(v, "shape", None) == ():
            return self(item(), drop)
        return f"<{type(v).__name__}> {self(repr(v))}"


CANON = Canon()


# ---- what a run leaves ------------------------------------------------------------------------
def run_record(store: Any, name: str) -> dict[str, Any]:
    """Everything a run recorded in ``store`` that does not depend on the clock."""
    exp = store.get_experiment(name)
    evals = []
    for ev in store.evaluations(exp.id):
        row = {f.name: getattr(ev, f.name) for f in dataclasses.fields(ev)
               if f.name not in EVAL_WALL}
        evals.append(CANON(row))
    stats = {k: v for k, v in exp.stats.items() if k not in TIMERS and not timelike(k)}
    return {
        "status": exp.status,
        "stop_reason": exp.stats.get("stop_reason"),
        "evaluations": evals,
        "updates": [CANON(u, timelike) for u in store.updates(exp.id)],
        "stats": CANON(stats, timelike),
        "experiment": CANON({"name": exp.name, "strategy": exp.strategy, "seed": exp.seed,
                             "budget": exp.budget, "space_signature": exp.space_signature,
                             "task_signature": exp.task_signature, "config": exp.config}),
        "checkpoint": checkpoint_record(Path(store.root) / "runs" / name),
        "pool": pool_record(Path(store.root)),
    }


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def checkpoint_record(run_dir: Path) -> dict[str, Any] | None:
    """The last checkpoint's content without its timers: loop counters, a digest per tensor
    and per top-level entry of the strategy's JSON state, and one digest over all of it."""
    path = run_dir / "checkpoint.safetensors"
    if not path.exists():
        return None
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {})["fnas"])
        tensors = {}
        for name in sorted(f.keys()):
            t = f.get_tensor(name)
            flat = torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1))
            tensors[name] = (f"{str(t.dtype).removeprefix('torch.')}{list(t.shape)} "
                             f"{_sha(flat.view(torch.uint8).numpy().tobytes())[:24]}")
    loop = dict(meta.pop("loop", {}) or {})
    loop.pop("timers", None)
    strategy = meta.pop("strategy", None)
    if isinstance(strategy, dict):
        parts = {k: _sha(json.dumps(CANON(v), sort_keys=True).encode())[:24]
                 for k, v in strategy.items()}
    else:
        parts = {"": _sha(json.dumps(CANON(strategy), sort_keys=True).encode())[:24]}
    body = {"loop": CANON(loop), "strategy": parts, "tensors": tensors,
            "other": CANON(meta)}
    return {**body, "sha256": _sha(json.dumps(body, sort_keys=True).encode())}


def pool_record(root: Path) -> list[dict[str, Any]] | None:
    """The knowledge pool's rows (time columns left out), or None without a pool."""
    db = root / "fnas.db"
    if not db.exists():
        return None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        con.row_factory = sqlite3.Row
        try:
            rows = con.execute("SELECT * FROM pool_entries ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # no such table: this store has no pool
            return None
        return [CANON({k: r[k] for k in r.keys() if not timelike(k)}) for r in rows] or None
    finally:
        con.close()


def first_diff(a: Any, b: Any, path: str = "") -> str | None:
    """Where ``a`` and ``b`` first differ (a readable path and both values), or None."""
    if type(a) is not type(b):
        return f"{path or '.'}: {_short(a)} != {_short(b)}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'B' if k not in a else 'A'}"
            d = first_diff(a[k], b[k], f"{path}.{k}" if path else k)
            if d:
                return d
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            where = f"{path}[{i}]"
            if isinstance(x, dict) and "iteration" in x and "slot" in x:
                where += f" (iteration {x['iteration']}, slot {x['slot']})"
            d = first_diff(x, y, where)
            if d:
                return d
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        return None
    return None if a == b else f"{path or '.'}: {_short(a)} != {_short(b)}"


def _short(v: Any) -> str:
    s = json.dumps(v, sort_keys=True)
    return s if len(s) <= 120 else s[:117] + "..."


# ---- the cases --------------------------------------------------------------------------------
class Case:
    """One case: its name, what it runs, whether ``--quick`` runs it and whether it needs the
    NAS-Bench-Macro table. (A plain class: tests load this script without registering it in
    ``sys.modules``, which a dataclass needs.)"""

    def __init__(self, name: str, run: Callable[[Ctx], dict[str, Any]], quick: bool = False,
                 macro: bool = False) -> None:
        self.name, self.run, self.quick, self.macro = name, run, quick, macro


class Ctx:
    """What the cases share: the table's path, a scratch folder, the source tree."""

    def __init__(self, macro: Path | None, scratch: Path, src: Path) -> None:
        self.macro, self.scratch, self.src = macro, scratch, src
        self.done: dict[str, dict[str, Any]] = {}
        self._n = 0

    def store_dir(self, label: str) -> Path:
        self._n += 1
        d = self.scratch / f"{self._n:02d}-{label}"
        d.mkdir()
        return d

    def env(self) -> dict[str, str]:
        path = os.environ.get("PYTHONPATH")
        return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONPATH": str(self.src) + (os.pathsep + path if path else "")}


def _store(d: Path) -> Any:
    from fnas.knowledge import Store

    return Store(d)


# NAS-Bench-Macro, through run_search / resume_search -------------------------------------------
MACRO_BUDGET, MACRO_BATCH = 32, 8


def _macro_cfg(strategy: str, budget: int = MACRO_BUDGET, **kw: Any) -> Any:
    from fnas.search import SearchConfig

    return SearchConfig(space="macro", strategy=strategy, budget=budget, batch=MACRO_BATCH,
                        seed=kw.pop("seed", 0), **kw)


def _macro_run(ctx: Ctx, cfg: Any, label: str, *, source: Any = None,
               stop_after: int | None = None) -> dict[str, Any]:
    from fnas.search import MacroTableEvaluator, resume_search, run_search
    from fnas.tasks import RewardConfig

    d = ctx.store_dir(label)
    st = _store(d)
    try:
        if source is not None:  # an earlier run in the store: knowledge for the critic
            ev = MacroTableEvaluator(str(ctx.macro), RewardConfig("macs", 200e6), tag="source")
            run_search(st, source, name="source", evaluator=ev, progress=False)
        ev = MacroTableEvaluator(str(ctx.macro))
        if stop_after is None:
            run_search(st, cfg, name="run", evaluator=ev, progress=False)
        else:
            out = run_search(st, cfg, name="run", evaluator=ev, progress=False,
                             stop_after=stop_after)
            assert out.experiment.status == "stopped", out.experiment.status
            resume_search(st, "run", evaluator=MacroTableEvaluator(str(ctx.macro)),
                          progress=False)
        return run_record(st, "run")
    finally:
        st.close()


def _macro_case(strategy: str, budget: int = MACRO_BUDGET, **kw: Any) -> Callable[[Ctx], Any]:
    return lambda ctx: _macro_run(ctx, _macro_cfg(strategy, budget, **kw), strategy)


def _macro_knowledge(acquisition: str, knowledge_as: str = "measurements"
                     ) -> Callable[[Ctx], Any]:
    def run(ctx: Ctx) -> dict[str, Any]:
        source = _macro_cfg("fnas", 24, seed=7, knowledge="none", checkpoint=False)
        cfg = _macro_cfg("fnas", 40, fnas={"acquisition": acquisition},
                         knowledge_as=knowledge_as)
        return _macro_run(ctx, cfg, "knowledge", source=source)
    return run


def _macro_resume(strategy: str, **kw: Any) -> Callable[[Ctx], Any]:
    def run(ctx: Ctx) -> dict[str, Any]:
        cfg = _macro_cfg(strategy, **kw)
        whole = _macro_run(ctx, cfg, "whole")
        rec = _macro_run(ctx, cfg, "resumed", stop_after=1)
        return _resume_check(rec, whole)
    return run


def _resume_check(rec: dict[str, Any], whole: dict[str, Any]) -> dict[str, Any]:
    diff = first_diff(rec, whole)
    rec["resume_equals_uninterrupted"] = diff is None
    if diff is not None:
        rec["resume_first_difference"] = diff
    return rec


def _bench_macro_cli(ctx: Ctx) -> dict[str, Any]:
    out = ctx.store_dir("bench-cli")
    _cli(ctx, ["bench", "--data", str(ctx.macro), "--strategies", "random,rea,ppo,fnas",
               "--seeds", "1", "--budget", "24", "--batch", "8", "--jobs", "1",
               "--out", str(out), "--name", "eq", "--no-progress"], out)
    return {"bench": CANON(json.loads((out / "eq.json").read_text()), timelike)}


def _cli(ctx: Ctx, args: list[str], cwd: Path) -> None:
    cmd = [sys.executable, "-m", "fnas", *args]
    p = subprocess.run(cmd, cwd=cwd, env=ctx.env(), capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} exited {p.returncode}: "
                           f"{(p.stderr or p.stdout).strip()[-800:]}")


# A user space and a synthetic objective, through fnas.create_search ----------------------------
SYNTH_DECISIONS = {"depth": [1, 2, 3, 4], "width": [8, 16, 32, 64],
                   "act": ["relu", "gelu", "silu"], "kernel": [3, 5, 7],
                   "se": [False, True], "drop": [0.0, 0.1, 0.2]}
"""864 architectures."""
SYNTH_BUDGET, SYNTH_BATCH = 32, 8
_SPACE: list[Any] = []


def synth_space() -> Any:
    import fnas

    if not _SPACE:
        _SPACE.append(fnas.make_space("eqsynth", SYNTH_DECISIONS))
    return _SPACE[0]


def _unit(text: str) -> float:
    """A pseudo-random number in [0, 1) that is a pure function of ``text``."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16 ** 12


def synth_metrics(arch: Any) -> dict[str, float]:
    """The objective: a pure function of the architecture (structure plus a hash-based
    perturbation), with latency and MACs from its size; the widest, deepest corner fails."""
    if arch["depth"] == 4 and arch["width"] == 64 and arch["kernel"] == 7:
        raise ValueError(f"{arch.key} does not fit")
    size = arch["depth"] * arch["width"] * arch["kernel"] ** 2
    acc = (0.55 + 0.06 * math.log2(arch["width"] / 8) / 3 + 0.04 * arch["depth"] / 4
           + {"relu": 0.0, "gelu": 0.02, "silu": 0.015}[arch["act"]]
           + 0.01 * arch["se"] - 0.1 * (arch["drop"] - 0.1) ** 2 + 0.08 * _unit(arch.key))
    return {"accuracy": acc, "latency_ms": 0.5 + size / 800, "macs": int(size * 1e4)}


def synth_score(arch: Any) -> float:
    """``fnas.bench``'s objective: the accuracy, the failing corner scored low."""
    try:
        return synth_metrics(arch)["accuracy"]
    except ValueError:
        return 0.0


def _synth_search(d: Path, strategy: str, budget: int = SYNTH_BUDGET,
                  latency_target: float | None = None, **kw: Any) -> Any:
    import fnas
    from fnas.tasks import RewardConfig

    if latency_target is not None:  # MnasNet's reward on the objective's latency
        kw["reward"] = RewardConfig("latency", latency_target)
    return fnas.create_search(store=str(d), name="run", space=synth_space(),
                              objective=synth_metrics, version="equivalence-1",
                              strategy=strategy, budget=budget, batch=SYNTH_BATCH,
                              seed=kw.pop("seed", 0), catch=(ValueError,),
                              load_if_exists=True, **kw)


def _synth_run(ctx: Ctx, strategy: str, label: str, **kw: Any) -> dict[str, Any]:
    s = _synth_search(ctx.store_dir(label), strategy, **kw)
    try:
        s.optimize(progress=False)
        return run_record(s.store, "run")
    finally:
        s.store.close()


def _synth_case(strategy: str, budget: int = SYNTH_BUDGET, **kw: Any) -> Callable[[Ctx], Any]:
    return lambda ctx: _synth_run(ctx, strategy, strategy, budget=budget, **kw)


def _ctrl_c_after(k: int) -> Callable[[Any], None]:
    """A callback (a plain function of each evaluation) that presses Ctrl-C after the k-th."""
    seen = [0]

    def press(evaluation: Any) -> None:
        seen[0] += 1
        if seen[0] == k:
            raise KeyboardInterrupt
    return press


def _synth_resume(strategy: str, how: str, **kw: Any) -> Callable[[Ctx], Any]:
    def run(ctx: Ctx) -> dict[str, Any]:
        whole = _synth_run(ctx, strategy, "whole", **kw)
        s = _synth_search(ctx.store_dir("resumed"), strategy, **kw)
        try:
            if how == "ctrl-c":  # mid-batch: the 11th of batches of 8
                try:
                    s.optimize(progress=False, callbacks=[_ctrl_c_after(11)])
                    raise AssertionError("the callback's KeyboardInterrupt did not stop it")
                except KeyboardInterrupt:
                    pass
                assert s.experiment.status == "interrupted", s.experiment.status
            else:
                s.optimize(progress=False, stop_after=1)
                assert s.experiment.status == "stopped", s.experiment.status
            s = _synth_search(Path(s.store.root), strategy, **kw)  # as a new process would
            s.optimize(progress=False)
            return _resume_check(run_record(s.store, "run"), whole)
        finally:
            s.store.close()
    return run


def _bench_synth_api(ctx: Ctx) -> dict[str, Any]:
    import fnas

    out = fnas.bench(synth_space(), objective=synth_score, target="within:0.02",
                     strategies=("random", "rea", "ppo", "fnas"), seeds=1, budget=24,
                     batch=4, jobs=1)
    for run in out["runs"]:  # an objective's query cost is its train_seconds: wall clock
        run["history"].pop("cost", None)
    return {"bench": CANON(out, timelike)}


# Real training on the tiny digits proxy task ----------------------------------------------------
TINY = {"dataset": "digits", "max_samples": 100, "batch_size": 32, "latency_repeats": 0,
        "epochs": 1}
"""tests/fast.py's TINY_TASK at one epoch: 80 training images, accuracies near chance."""
TINY_FLAGS = ["--task", "digits", "--epochs", "1", "--set", "task.max_samples=100",
              "--set", "task.batch_size=32", "--set", "task.latency_repeats=0"]


def _real_api(strategy: str, task: dict[str, Any] = TINY, **kw: Any) -> Callable[[Ctx], Any]:
    def run(ctx: Ctx) -> dict[str, Any]:
        import fnas

        s = fnas.create_search(store=str(ctx.store_dir(strategy)), name="run", space="mnas",
                               strategy=strategy, budget=4, batch=2, seed=0, task=task, **kw)
        try:
            s.optimize(progress=False)
            return run_record(s.store, "run")
        finally:
            s.store.close()
    return run


def _real_cli(ctx: Ctx) -> dict[str, Any]:
    d = ctx.store_dir("cli")
    _cli(ctx, ["search", "--store", str(d), "--name", "run", "--strategy", "fnas",
               "--pool", "on", "--budget", "4", "--batch", "2", "--seed", "0", *TINY_FLAGS,
               "--no-progress"], d)
    st = _store(d)
    try:
        rec = run_record(st, "run")
    finally:
        st.close()
    api = ctx.done.get("real-fnas-api")
    if api is not None:
        diff = first_diff(rec, api)
        rec["equals_case"] = {"real-fnas-api": diff is None}
        if diff is not None:
            rec["equals_case_first_difference"] = diff
    return rec


def _real_cli_extend(ctx: Ctx) -> dict[str, Any]:
    """ppo through ``fnas search``: budget 2, then ``--resume run --budget 4`` (extended)."""
    d = ctx.store_dir("cli-extend")
    _cli(ctx, ["search", "--store", str(d), "--name", "run", "--strategy", "ppo", "--budget",
               "2", "--batch", "2", "--seed", "0", *TINY_FLAGS, "--no-progress"], d)
    _cli(ctx, ["search", "--store", str(d), "--resume", "run", "--budget", "4",
               "--no-progress"], d)
    st = _store(d)
    try:
        rec = run_record(st, "run")
    finally:
        st.close()
    api = ctx.done.get("real-ppo-api")
    if api is not None:  # the same evaluations and updates as the run given 4 at once
        part = ("evaluations", "updates", "checkpoint", "status", "stop_reason")
        diff = first_diff({k: rec[k] for k in part}, {k: api[k] for k in part})
        rec["equals_case"] = {"real-ppo-api": diff is None}
        if diff is not None:
            rec["equals_case_first_difference"] = diff
    return rec


def _real_ctrl_c(ctx: Ctx) -> dict[str, Any]:
    """fnas with the pool and a MACs target (distinct rewards): Ctrl-C after the 3rd
    evaluation (the second batch's first), resume_search to the end."""
    from fnas.search import SearchConfig, resume_search, run_search
    from fnas.tasks import RewardConfig

    cfg = SearchConfig(space="mnas", strategy="fnas", budget=6, batch=2, seed=1, task=TINY,
                       reward=RewardConfig("macs", 4e6), pool="on")
    recs = []
    for label, k in (("whole", None), ("resumed", 3)):
        st = _store(ctx.store_dir(label))
        try:
            if k is None:
                run_search(st, cfg, name="run", progress=False)
            else:
                try:
                    run_search(st, cfg, name="run", progress=False,
                               callbacks=[_ctrl_c_after(k)])
                    raise AssertionError("the callback's KeyboardInterrupt did not stop it")
                except KeyboardInterrupt:
                    pass
                resume_search(st, "run", progress=False)
            recs.append(run_record(st, "run"))
        finally:
            st.close()
    return _resume_check(recs[1], recs[0])


# ---- the list ---------------------------------------------------------------------------------
CASES: list[Case] = [
    Case("macro-random", _macro_case("random"), macro=True),
    Case("macro-rea", _macro_case("rea"), macro=True),
    Case("macro-ppo", _macro_case("ppo"), quick=True, macro=True),
    Case("macro-ppo-replay", _macro_case("ppo", replay="on"), macro=True),
    Case("macro-fnas", _macro_case("fnas"), quick=True, macro=True),
    Case("macro-fnas-ts", _macro_case("fnas", fnas={"acquisition": "ts"}), macro=True),
    Case("macro-fnas-ei", _macro_case("fnas", fnas={"acquisition": "ei"}), macro=True),
    Case("macro-fnas-veto", _macro_case("fnas", 40, fnas={"acquisition": "off"}), macro=True),
    Case("macro-fnas-frozen", _macro_case("fnas", fnas={"screen": {"policy": "frozen"}}),
         macro=True),
    Case("macro-fnas-noreplay", _macro_case("fnas", replay="off"), macro=True),
    Case("macro-fnas-prioritized", _macro_case(
        "fnas", replay_cfg={"sampling": "prioritized"}), macro=True),
    Case("macro-fnas-nocritic", _macro_case("fnas", fnas={"critic": False}), macro=True),
    Case("macro-fnas-trained", _macro_case("fnas", budget_counts="trained", max_samples=160,
                                           seed=3), macro=True),
    Case("macro-fnas-knowledge", _macro_knowledge("ucb"), macro=True),
    Case("macro-veto-knowledge", _macro_knowledge("off"), macro=True),
    Case("macro-fnas-knowledge-rewards", _macro_knowledge("ucb", "rewards"), macro=True),
    Case("macro-fnas-resume", _macro_resume("fnas"), quick=True, macro=True),
    Case("macro-veto-resume", _macro_resume("fnas", fnas={"acquisition": "off"}), macro=True),
    Case("macro-ppo-replay-resume", _macro_resume("ppo", replay="on"), macro=True),
    Case("macro-rea-resume", _macro_resume("rea"), macro=True),
    Case("bench-macro-cli", _bench_macro_cli, macro=True),
    Case("synth-random", _synth_case("random"), quick=True),
    Case("synth-rea", _synth_case("rea"), quick=True),
    Case("synth-ppo", _synth_case("ppo")),
    Case("synth-ppo-replay", _synth_case("ppo", replay="on")),
    Case("synth-fnas", _synth_case("fnas"), quick=True),
    Case("synth-fnas-veto", _synth_case("fnas", 40, fnas={"acquisition": "off"})),
    Case("synth-fnas-frozen", _synth_case("fnas", fnas={"screen": {"policy": "frozen"}})),
    Case("synth-fnas-latency", _synth_case("fnas", latency_target=20.0)),
    Case("synth-fnas-worker", _synth_case("fnas", eval_isolation="process")),
    Case("synth-fnas-ctrlc", _synth_resume("fnas", "ctrl-c"), quick=True),
    Case("synth-ppo-stopafter", _synth_resume("ppo", "stop_after")),
    Case("bench-synth-api", _bench_synth_api),
    Case("real-fnas-api", _real_api("fnas", pool="on")),
    Case("real-ppo-api", _real_api("ppo"), quick=True),
    Case("real-fnas-cli", _real_cli),
    Case("real-fnas-ctrlc", _real_ctrl_c),
    Case("real-cli-extend", _real_cli_extend),
    Case("real-ppo-e3", _real_api("ppo", {**TINY, "max_samples": 300, "batch_size": 16,
                                          "epochs": 3})),
]


def dump_cases(names: list[str], macro: Path | None, src: Path,
               log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)
               ) -> dict[str, Any]:
    """Run the named cases in order; the dump (a dict) with every case's record."""
    import torch

    torch.set_num_threads(1)
    by_name = {c.name: c for c in CASES}
    cases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fnas-eq-") as tmp:
        CANON.add_path(tmp, "<tmp>")
        if macro is not None:
            CANON.add_path(macro, "<macro>")
        CANON.add_path(src, "<src>")
        ctx = Ctx(macro, Path(tmp), src)
        t_all = time.perf_counter()
        for name in names:
            t0 = time.perf_counter()
            rec = by_name[name].run(ctx)
            ctx.done[name] = rec
            cases[name] = rec
            bad = [k for k in ("resume_equals_uninterrupted",) if rec.get(k) is False]
            bad += [f"equals_case {k}" for k, v in rec.get("equals_case", {}).items() if not v]
            log(f"{name:30s} {time.perf_counter() - t0:6.1f} s"
                + (f"  CHECK FAILED: {', '.join(bad)}" if bad else ""))
        log(f"{'total':30s} {time.perf_counter() - t_all:6.1f} s")
    return {"format": FORMAT, "cases": cases}


def _selected(args: argparse.Namespace, have_macro: bool) -> list[str]:
    if args.cases:
        names = [n.strip() for n in args.cases.split(",") if n.strip()]
        unknown = sorted(set(names) - {c.name for c in CASES})
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}: see `equivalence.py list`")
    else:
        names = [c.name for c in CASES if c.quick or not args.quick]
    macro_only = {c.name for c in CASES if c.macro}
    if not have_macro:
        names = [n for n in names if n not in macro_only]
    return names


def _import_from(src: Path) -> None:
    """Import fnas from ``src`` (a source tree's ``src`` folder), and check that it did."""
    sys.path.insert(0, str(src))
    import fnas

    want = (src / "fnas").resolve()
    got = Path(fnas.__file__).resolve().parent
    if got != want:
        raise SystemExit(f"fnas was imported from {got}, not from {src}: run in a fresh "
                         "interpreter")
    ctx = Ctx(None, src, src)  # the CLI subprocesses must import the same tree
    p = subprocess.run([sys.executable, "-c", "import fnas; print(fnas.__file__)"],
                       env=ctx.env(), capture_output=True, text=True, check=True)
    if Path(p.stdout.strip()).resolve().parent != want:
        raise SystemExit(f"a subprocess imports fnas from {p.stdout.strip()}, not from {src}")


def compare(a: dict[str, Any], b: dict[str, Any], common: bool = False,
            out: Callable[[str], None] = print) -> bool:
    """Print, per case, ``identical`` or the first difference; whether all are identical."""
    ca, cb = a.get("cases", {}), b.get("cases", {})
    ok = a.get("format") == b.get("format")
    if not ok:
        out(f"format: {a.get('format')!r} != {b.get('format')!r}")
    for side, only in (("A", sorted(set(ca) - set(cb))), ("B", sorted(set(cb) - set(ca)))):
        if only and common:
            out(f"{len(only)} case(s) only in {side}, not compared (--common)")
        for name in [] if common else only:
            out(f"{name:30s} only in {side}")
            ok = False
    for name in sorted(set(ca) & set(cb)):
        d = first_diff(ca[name], cb[name])
        out(f"{name:30s} {'identical' if d is None else 'DIFFERS at ' + d}")
        ok = ok and d is None
    n = len(set(ca) & set(cb))
    out(f"{n} case(s) compared: {'all identical' if ok else 'NOT identical'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="run the cases, write the canonical JSON")
    d.add_argument("out", type=Path)
    d.add_argument("--macro", type=Path, default=DEFAULT_MACRO,
                   help="nas-bench-macro_cifar10.json (default: ../shared/data/...)")
    d.add_argument("--quick", action="store_true", help="8 cases, under 90 s")
    d.add_argument("--cases", help="comma-separated case names (see `list`)")
    d.add_argument("--src", type=Path, default=REPO / "src",
                   help="the source tree to import fnas from (default: this checkout's src)")
    c = sub.add_parser("compare", help="compare two dumps case by case")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--common", action="store_true",
                   help="compare only the cases both dumps have")
    sub.add_parser("list", help="the cases (q: in --quick, m: needs NAS-Bench-Macro)")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        for case in CASES:
            tags = ("q" if case.quick else " ") + ("m" if case.macro else "")
            print(f"{case.name:30s} {tags}".rstrip())
        return 0
    if args.cmd == "compare":
        return 0 if compare(json.loads(args.a.read_text()), json.loads(args.b.read_text()),
                            args.common) else 1
    macro: Path | None = args.macro.expanduser().resolve()
    if not macro.is_file():
        print(f"NAS-Bench-Macro cases skipped: no table at {args.macro} (see "
              "../shared/data/README.md: xiusu/NAS-Bench-Macro, data/nas-bench-macro_cifar10"
              ".json)", file=sys.stderr)
        macro = None
    names = _selected(args, macro is not None)
    src = args.src.expanduser().resolve()
    _import_from(src)
    result = dump_cases(names, macro, src)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, sort_keys=True, indent=1) + "\n")
    print(f"wrote {args.out} ({len(names)} cases)", file=sys.stderr)
    failed = [n for n, r in result["cases"].items()
              if r.get("resume_equals_uninterrupted") is False
              or not all(r.get("equals_case", {}).values())]
    if failed:
        print(f"checks inside the dump failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
