"""Hostile use: replays what a careless or hostile user tried (issues 18 and 32), counts what
held.

What it does, each in fresh temporary folders, always through real ``fnas`` processes (the
Python API through a small probe script, ``hprobe.py``, one case per process):

- **bad flags** and **bad config files**: each must exit 2 with one line on stderr, no
  traceback, and leave the store untouched (or uncreated);
- **damaged files**: random byte flips and truncations of ``fnas.db``, the checkpoint and a
  pool file, damaged rows (bad JSON, wrong types, a newline in a name), a 0-byte ``fnas.db``, a
  newer schema; every reader (``runs``, ``show``, ``report``, ``pool stats``, ``export``) and a
  resume must exit 0 or 2 in one line, never a traceback, never a hang;
- **kills**: ``kill -9`` of a search after k evaluations (k chosen over the run) or after a
  delay, SIGTERM and Ctrl-C (SIGINT), then ``--resume``: the run's rows must equal an
  uninterrupted run's row for row (evaluations lost and duplicated counted);
- **concurrent resumes**: two ``--resume`` of one stopped run at once: one trains, the other
  refuses in one line; the rows again equal the uninterrupted run's;
- **read-only store** (a read-only bind mount when root, else chmod): every reader exits 0 and
  no byte changes; **full disk** (a small tmpfs, root only): one line, the run ``interrupted``,
  and a resume once space is freed equals the uninterrupted run;
- **Ray** (full mode): a local Ray listens on 127.0.0.1 only; ``--device cuda`` without a GPU
  is refused up front;
- **bad values** (issue 32): bad ``create_search`` arguments (``budget=1.5``, ``True``,
  ``2**63``, ``'8'``, ``store=None``, ``catch='RuntimeError'``, ``version=['a']``, objectives
  fnas cannot call), out-of-range CLI counts, 1 MB config values, and objectives returning
  what is not a result (``None``, ``{'reward': None}``, ``10**400``, MACs of ``1e40`` or
  ``10**30``), each on a fresh and on an existing store: one ``ConfigError`` /
  ``ObjectiveError`` line, no store created, an existing store's files and rows unchanged (an
  objective's bad result: no evaluation recorded, the other runs' rows unchanged), ``fnas runs``
  and ``fnas show`` still work; float MACs (6.4) and ``numpy.float32`` are recorded, typed;
- **cache identity**: two closures of one factory, two partials, two instances of one class,
  two lambdas, searched one after the other in one store: the second is never served the
  first's results (every reward checked against the true objective); the same objective again
  in a new process is;
- **damage detection**: after a ``kill -9`` mid-run, 64 bytes flipped in ``fnas.db-wal``, the
  WAL truncated to a third or deleted, ``fnas.db`` restored from an earlier copy while the
  checkpoint is newer, the checkpoint flipped, truncated, deleted or older; ``--resume`` must
  refuse in one line naming what is missing, or finish equal to the uninterrupted run: never
  ``done`` with rows lost (``silent_losses``, ``detected_losses``);
- **random kills**: 20 ``kill -9`` at moments drawn from a seeded RNG over the run, a fifth of
  them right as the store is being created, each followed by ``--resume`` and a row-for-row
  comparison;
- **outside the run**: ``fnas train RUN:1`` and ``fnas export`` (spec, pt2) with ``--out`` at a
  character device (a private ``/dev/null`` and ``/dev/full`` made with mknod, then the real
  ones as root), a symlink (written through, it stays a link), a dangling symlink, a FIFO and a
  folder: a device, FIFO or folder is refused in one line (``/dev/full`` must not exit 0), and
  stays what it was (``outside_touched``); no stray file is left beside it;
- **hangs**: ``make_space`` with 10,000 decisions or 100,000 choices (refused), 512 decisions
  and 4,096 choices (searched), unhashable choices, ``optimize(budget=1000000)`` on a 9-point
  space with ``budget_counts='trained'`` for each strategy (must end ``exhausted``),
  ``--config`` a FIFO or ``/dev/zero``, ``--input-size 1000000000``: each must end within 60 s
  with the right exit;
- **concurrency**: six processes opening one fresh store at the same moment (all succeed, none
  is advised to delete a database), two ``fnas search`` started together on one fresh store
  (one name: one finishes equal to the uninterrupted run, the other refuses; two names: both
  finish), two threads of one process running one run (one finishes, the other finishes or
  refuses in one line; the rows equal a lone run's);
- **never returns**: an objective that sleeps forever, with ``optimize(budget_seconds=3)``
  (stop reason ``seconds``) and with ``create_search(timeout=2)`` / ``--eval-timeout 2`` (the
  evaluation recorded as failed, ``timed out``): the process must end within 45 s.

A hang is a process still running after ``--timeout`` seconds (killed, counted); the
probes of *hangs* and *never returns* use shorter limits (60 s, 45 s). The search used
everywhere is small but real: fnas (critic, pool, replay) on 300 digits images, 1 epoch, budget
6, batch 2, no latency measurement; the API probes search a 9-point space with a one-line
objective. The issue-32 sections run independent probes ``--jobs`` (2) at a time; ``--only``
runs some sections (with ``--quick``: on its smaller lists); ``--dry-count`` prints the attempts
each section plans. The JSON's ``details`` gives each damage's, kill's and concurrent run's
outcome.

    python benchmarks/hostile.py                # full: writes benchmarks/results/hostile.json
    python benchmarks/hostile.py --quick        # a subset, to /tmp/fnas-hostile.json
    python benchmarks/hostile.py --dry-count    # the planned attempts per section, no run
    python benchmarks/hostile.py --only "bad values,hangs" --out /tmp/h.json  # some sections
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"strategy": "fnas", "budget": 6, "batch": 2, "seed": 0,
          "task": {"dataset": "digits", "epochs": 1, "max_samples": 300, "batch_size": 32,
                   "latency_repeats": 0},
          "reward": {"metric": "macs", "target": 1e6}}


# The probe script (``hprobe.py`` in the work folder): one case of the Python API per process.
PROBE = r'''"""hostile.py's probe driver: one case of fnas's Python API per process.

    python hprobe.py CASE ARG...

An fnas error is printed as one line (``ErrorType: message``) with exit 2, as the CLI does;
anything else escapes with its traceback (counted by hostile.py). Results: JSON on stdout.
"""
import functools
import json
import os
import sys
import threading
import time

import numpy as np

import fnas
from fnas.errors import FnasError

DECISIONS = {"width": (8, 16, 32), "depth": (1, 2, 3)}


def space(name="hostile-mlp"):
    return fnas.make_space(name, DECISIONS)


def score(arch):
    return arch["width"] / 32 - 0.1 * arch["depth"]


def slow_score(arch):
    time.sleep(0.05)
    return score(arch)


def forever(arch):
    time.sleep(10**6)
    return 0.5


def three(arch, seed, extra):
    return 0.5


def keyword_seed(arch, *, seed):
    return 0.5


BAD_ARGS = {"budget=1.5": {"budget": 1.5}, "budget=True": {"budget": True},
            "budget=2**63": {"budget": 2**63}, "budget='8'": {"budget": "8"},
            "store=None": {"store": None}, "catch='RuntimeError'": {"catch": "RuntimeError"},
            "version=['a']": {"version": ["a"]},
            "objective(arch, seed, extra)": {"objective": three},
            "objective(arch, *, seed)": {"objective": keyword_seed}}
RESULTS = {"macs=6.4": {"accuracy": 0.5, "macs": 6.4}, "macs=1e40": {"accuracy": 0.5, "macs": 1e40},
           "macs=10**30": {"accuracy": 0.5, "macs": 10**30}, "None": None,
           "{'reward': None}": {"reward": None}, "10**400": 10**400,
           "numpy.float32(0.5)": np.float32(0.5)}


def returning(key):
    out = RESULTS[key]

    def returns(arch):
        return out
    return returns


def _factory(k):
    return lambda arch: {"accuracy": 0.5, "reward": k + score(arch)}


def _scaled(arch, k=1):
    return {"accuracy": 0.5, "reward": k + score(arch)}


class Scorer:
    def __init__(self, k):
        self.k = k

    def __call__(self, arch):
        return {"accuracy": 0.5, "reward": self.k + score(arch)}


LAMBDAS = {1: lambda arch: {"accuracy": 0.5, "reward": 1 + score(arch)},
           100: lambda arch: {"accuracy": 0.5, "reward": 100 + score(arch)}}
IDENTITY = {"closures": _factory, "partials": lambda k: functools.partial(_scaled, k=k),
            "instances": Scorer, "lambdas": LAMBDAS.__getitem__}


def rows(search):
    return [[e.iteration, e.slot, e.arch, e.reward, e.status, e.cached, e.message]
            for e in search.trials()]


def bad_arg(which, store):
    kw = {"store": store, "name": "probe", "space": space(), "objective": score,
          "strategy": "random", "batch": 2, "budget": 4, **BAD_ARGS[which]}
    s = fnas.create_search(**kw)
    s.optimize(progress=False)
    return {"rows": rows(s)}


def result(which, store):
    s = fnas.create_search(store=store, name="probe", space=space(), objective=returning(which),
                           strategy="random", batch=2, budget=2)
    s.optimize(progress=False)
    return {"rows": rows(s)}


def kept(store):
    s = fnas.create_search(store=store, name="kept", space=space(), objective=score,
                           strategy="random", batch=4, budget=8)
    s.optimize(progress=False)
    return {"rows": rows(s)}


def identity(kind, k, name, store):
    s = fnas.create_search(store=store, name=name, space=space(),
                           objective=IDENTITY[kind](int(k)), strategy="random", batch=3, seed=0)
    s.optimize(budget=6, progress=False)
    return {"rows": rows(s)}


def make(which, store):
    spaces = {"10,000 decisions": lambda: {f"d{i}": (0, 1) for i in range(10_000)},
              "100,000 choices": lambda: {"d": range(100_000)},
              "512 decisions": lambda: {f"d{i}": (0, 1) for i in range(512)},
              "4096 choices": lambda: {"d": range(4096), "w": (1, 2)},
              "unhashable {1}, {2}": lambda: {"d": ({1}, {2}), "w": (1, 2)},
              "unhashable [1], [2]": lambda: {"d": ([1], [2]), "w": (1, 2)}}
    sp = fnas.make_space("hostile-" + which.split()[0].strip(",{["), spaces[which]())
    s = fnas.create_search(store=store, name="probe", space=sp, objective=lambda a: 0.5,
                           batch=2, budget=2)
    s.optimize(progress=False)
    return {"rows": rows(s)}


def exhaust(strategy, store):
    s = fnas.create_search(store=store, name="probe", space=space(), objective=score,
                           strategy=strategy, batch=4, budget_counts="trained")
    out = s.optimize(budget=1_000_000, progress=False)
    return {"stop_reason": out.stats.get("stop_reason"),
            "trained": sum(bool(e.trained) for e in s.trials()), "samples": len(s.trials())}


def open_fresh(store, go, i):
    open(f"{go}.ready{i}", "w").close()  # imported: waiting for the start
    while not os.path.exists(go):
        time.sleep(0.002)
    s = fnas.create_search(store=store, name=f"run{i}", space=space(), objective=score,
                           strategy="random", batch=2, budget=2)
    s.optimize(progress=False)
    return {"rows": rows(s)}


def threads(store, seed, n):
    out = [None] * int(n)

    def one(i):
        try:
            s = fnas.create_search(store=store, name="t", space=space(), objective=slow_score,
                                   strategy="random", batch=2, budget=8, seed=int(seed),
                                   load_if_exists=True)
            s.optimize(progress=False)
            out[i] = "ok"
        except FnasError as e:
            out[i] = f"{type(e).__name__}: {e}"
        except BaseException as e:  # noqa: BLE001 - reported, with its type
            import traceback
            out[i] = "Traceback: " + "".join(traceback.format_exception(e))[-600:]
    ts = [threading.Thread(target=one, args=(i,)) for i in range(int(n))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    from fnas.knowledge import Store
    with Store(store, readonly=True) as st:
        exp = st.get_experiment("t")
        got = [[e.iteration, e.slot, e.arch, e.reward, e.status] for e in st.evaluations(exp.id)]
    return {"threads": out, "rows": got, "status": exp.status}


def forever_seconds(store):
    s = fnas.create_search(store=store, name="probe", space=space(), objective=forever,
                           strategy="random", batch=2, budget=4)
    out = s.optimize(budget_seconds=3, progress=False)
    return {"stop_reason": out.stats.get("stop_reason"), "rows": rows(s)}


def forever_timeout(store):
    s = fnas.create_search(store=store, name="probe", space=space(), objective=forever,
                           strategy="random", batch=2, budget=2, timeout=2)
    out = s.optimize(progress=False)
    return {"stop_reason": out.stats.get("stop_reason"), "rows": rows(s)}


CASES = {"bad-arg": bad_arg, "result": result, "kept": kept, "identity": identity,
         "make": make, "exhaust": exhaust, "open-fresh": open_fresh, "threads": threads,
         "forever-seconds": forever_seconds, "forever-timeout": forever_timeout}

if __name__ == "__main__":
    try:
        print(json.dumps(CASES[sys.argv[1]](*sys.argv[2:]), default=repr))
    except FnasError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
'''


class Tally:
    """Counts of attempts and of everything that did not hold."""

    def __init__(self, timeout: float, jobs: int = 1) -> None:
        self.timeout = timeout
        self.jobs = jobs  # probes run at once by parallel()
        self.lock = threading.Lock()
        self.attempts = 0
        self.by_category: dict[str, int] = {}
        self.tracebacks = self.wrong_exit = self.hangs = self.not_one_line = 0
        self.kills = self.kills_survived = 0
        self.lost = self.duplicated = self.mismatched = 0
        self.wrong_refusals = 0  # refused, but not with the error the probe asks for
        self.written_on_refusal = 0  # a refused call created a store or changed one
        self.silent_losses = 0  # rows lost while the run reads done (or resumed as whole)
        self.detected_losses = 0  # damage a resume refused, in one line naming it
        self.damage_recovered = 0  # damage a resume finished through, equal to the reference
        self.outside_touched = 0  # a device, FIFO, folder, link or file beside it changed
        self.cache_leaks = 0  # rows served another objective's cached result
        self.probe: Path | None = None  # hprobe.py, written by main()
        self.failures: list[str] = []
        self.skipped: list[str] = []
        self.details: dict[str, list] = {}  # per-probe outcomes a section reports

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what[:300])
            print(f"  FAILED: {what[:300]}", flush=True)

    def count(self, category: str, n: int = 1) -> None:
        with self.lock:
            self.attempts += n
            self.by_category[category] = self.by_category.get(category, 0) + n

    def add(self, counter: str, n: int = 1) -> None:
        """``counter += n`` (safe from parallel() jobs)."""
        with self.lock:
            setattr(self, counter, getattr(self, counter) + n)

    def parallel(self, jobs: list[Callable[[], object]]) -> None:
        """Run independent probes, ``self.jobs`` at a time (each in its own folders)."""
        if self.jobs <= 1:
            for job in jobs:
                job()
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.jobs) as ex:
            for f in [ex.submit(job) for job in jobs]:
                f.result()  # a mistake in the probe code itself is raised here

    def run(self, category: str, args: list[str], expect: tuple[int, ...] = (2,),
            cwd: Path | None = None, env: dict | None = None, timeout: float | None = None,
            cmd: list[str] | None = None, counted: bool = True,
            memory: int | None = None) -> subprocess.CompletedProcess:
        """One ``fnas ARGS`` attempt (``cmd ARGS`` with ``cmd``), checked: exit status in
        ``expect``, one stderr line on a refusal, no traceback, no hang (``timeout``, default
        the tally's). ``counted=False``: a reference run (checked, not an attempt);
        ``memory``: the process's address-space limit in bytes."""
        if counted:
            self.count(category)
        prog = cmd or [sys.executable, "-m", "fnas.cli"]
        label = "fnas" if cmd is None else Path(prog[-1]).name
        shown = " ".join(a.replace("\n", "\\n") for a in args)[:160]
        if memory is not None:  # set in the child, then exec (no preexec_fn beside threads)
            prog = [sys.executable, "-c", LIMITED, str(memory), *prog]
        try:
            p = subprocess.run([*prog, *args], capture_output=True, text=True,
                               timeout=timeout or self.timeout, cwd=cwd, env=env,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.add("hangs")
            self.fail(f"{category}: hang (> {timeout or self.timeout:g} s): {label} {shown}")
            return subprocess.CompletedProcess(args, -9, "", "")
        if "Traceback" in p.stderr:
            self.add("tracebacks")
            self.fail(f"{category}: traceback: {label} {shown}: {_exc(p.stderr)}")
        elif p.returncode not in expect:
            self.add("wrong_exit")
            self.fail(f"{category}: exit {p.returncode} (want {expect}): {label} {shown}: "
                      f"{_tail(p.stderr)}")
        elif p.returncode == 2 and len(_said(p.stderr)) != 1:
            self.add("not_one_line")
            self.fail(f"{category}: {len(_said(p.stderr))} stderr lines: {label} {shown}")
        return p

    def api(self, category: str, case: str, *args: str, expect: tuple[int, ...] = (0,),
            cwd: Path | None = None, timeout: float | None = None,
            refusal: tuple[str, ...] = (), counted: bool = True,
            memory: int | None = None) -> tuple[subprocess.CompletedProcess, dict | None]:
        """One case of the probe script (the Python API in a fresh process), checked as
        :meth:`run`; a refusal (exit 2) must name one of ``refusal`` (``ConfigError``...).
        Returns the process and its JSON result (None on a refusal or crash)."""
        assert self.probe is not None
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(self.probe.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        p = self.run(category, [case, *args], expect=expect, cwd=cwd, env=env,
                     timeout=timeout, cmd=[sys.executable, str(self.probe)],
                     counted=counted, memory=memory)
        if p.returncode == 2 and refusal and "Traceback" not in p.stderr and \
                p.stderr.split(":", 1)[0] not in refusal:
            self.add("wrong_refusals")
            self.fail(f"{category}: {case} {' '.join(args)[:60]}: refused with "
                      f"{_tail(p.stderr, 120)!r}, want a {refusal} line")
        try:
            out = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else None
        except (json.JSONDecodeError, IndexError):
            out = None
            if p.returncode == 0:
                self.fail(f"{category}: {case} {' '.join(args)[:60]}: no result printed")
        return p, out


def _tail(text: str, n: int = 200) -> str:
    return " ".join(text.strip()[-n:].split())


def _said(stderr: str) -> list[str]:
    """stderr's lines but the ``fnas`` logger's (``fnas: ...``: with ``--no-progress`` a
    search logs each evaluation to stderr before a refusal may come)."""
    return [x for x in stderr.strip().splitlines() if not x.startswith("fnas: ")]


def _exc(stderr: str) -> str:
    """A traceback's exception line (``ValueError: ...``), else the end of stderr."""
    import re

    lines = [x for x in stderr.splitlines() if re.match(r"[\w.]+(Error|Exception|Exit)\b", x)]
    return " ".join(lines[-1].split())[:200] if lines else _tail(stderr)


def _cpu() -> float:
    import resource

    return sum(getattr(resource.getrusage(who), f) for who in (
        resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))


LIMITED = ("import os, resource, sys; n = int(sys.argv[1]); "
           "resource.setrlimit(resource.RLIMIT_AS, (n, n)); os.execv(sys.argv[2], sys.argv[2:])")
"""``python -c LIMITED BYTES PROG ARGS``: PROG with its address space limited to BYTES."""


def _write_config(d: Path, **over) -> Path:
    cfg = json.loads(json.dumps(CONFIG))
    cfg.update(over)
    p = d / "config.json"
    p.write_text(json.dumps(cfg))
    return p


def _search_cmd(store: Path, cfg: Path, name: str = "h") -> list[str]:
    return [sys.executable, "-m", "fnas.cli", "search", "--config", str(cfg), "--store",
            str(store), "--name", name, "--no-progress"]


def _rows(store: Path, name: str = "h") -> list[tuple]:
    con = sqlite3.connect(f"file:{store / 'fnas.db'}?mode=ro", uri=True)
    try:
        return con.execute(
            "SELECT e.iteration, e.slot, e.arch_key, round(e.reward, 9), e.status, e.trained, "
            "e.cached, e.predicted FROM evaluations e JOIN experiments x ON "
            "x.id = e.experiment_id WHERE x.name=? ORDER BY e.iteration, e.slot",
            (name,)).fetchall()
    finally:
        con.close()


def _status(store: Path, name: str = "h") -> str:
    """The run's status as fnas reports it (a dead process's ``running`` is ``interrupted``)."""
    from fnas.errors import FnasError
    from fnas.knowledge import Store

    try:
        with Store(store, readonly=True) as s:
            return s.get_experiment(name).status
    except FnasError:
        return "absent"


def _count(store: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{store / 'fnas.db'}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _compare(t: Tally, what: str, got: list[tuple], want: list[tuple]) -> bool:
    keys_got = [r[:2] for r in got]
    keys_want = {r[:2] for r in want}
    lost = len(keys_want - set(keys_got))
    dup = len(keys_got) - len(set(keys_got))
    bad = sum(1 for g in got if g[:2] in keys_want and g not in want)
    t.add("lost", lost)
    t.add("duplicated", dup)
    t.add("mismatched", bad)
    if lost or dup or bad:
        t.fail(f"{what}: {lost} lost, {dup} duplicated, {bad} differ from the uninterrupted run")
        return False
    return True


# ---- bad flags and configs --------------------------------------------------------------------

BAD_FLAGS = [
    ["search", "--name", "../../escaped"], ["search", "--name", "/abs/path"],
    ["search", "--name", "x" * 5000], ["search", "--name", "1"],
    ["search", "--name", "two\nlines"], ["search", "--name", ".hidden"],
    ["search", "--seed", "-1"], ["search", "--seed", str(2**70)],
    ["search", "--seed", "x"], ["search", "--budget", "0"], ["search", "--batch", "-3"],
    ["search", "--epochs", "1e9"], ["search", "--device", "cuda"],
    ["search", "--device", "nonsense"], ["search", "--imagined", "-1"],
    ["search", "--replay-share", "1.5"], ["search", "--c-max", "nan"],
    ["search", "--task", "cifar10:/nonexistent"], ["search", "--task", "bogus"],
    ["search", "--target-latency", "-1"], ["search", "--hard"],
    ["search", "--parallel", "4"], ["search", "--strategy", "nope"],
    ["search", "--config", "/nonexistent.json"], ["search", "--resume", "r"],
    ["train", "mnas_default", "--seed", "-5"], ["train", "mnas_default", "--device", "cuda"],
    ["train", "mnas_default", "--batch", "1000000000"], ["train", "nope:0"],
    ["train", "ir_r1_k4_s1_e6_c16"], ["inspect", "ir_r999999999_k3_s1_e6_c24"],
    ["inspect", "ir_r1_k3_s1_e6_c\u0662\u0664"], ["inspect", "mnasnet_a1", "--input-size",
                                                   "1000000"],
    ["inspect", ""], ["inspect", " | ".join(["cn_r1_k3_s1_c8"] * 100)],
    ["export", "mnasnet_a1", "--format", "spec", "--input-size", "0"],
    ["export", "--format", "onnx", "--weights", "/nonexistent.safetensors"],
    ["bench", "--strategies", ","], ["bench", "--strategies", "nope"],
    ["bench", "--jobs", "-1"], ["runs"], ["show", "x"], ["report", "x"], ["pool", "stats"],
    ["search", "--executor", "ray", "--ray-address", "127.0.0.1:1"],
]


def bad_flags(t: Tally, work: Path, quick: bool) -> None:
    s = str(work / "never")
    cases = BAD_FLAGS
    if quick:
        cases = cases[::4]
    for args in cases:
        where = ["--store", s] if args[0] in ("search", "train", "runs", "show", "report",
                                              "pool") else []
        t.run("bad flags", [*args, *where], cwd=work)
        if Path(s).exists() or (work.parent / "escaped").exists():
            t.fail(f"bad flags: fnas {' '.join(args)[:80]} wrote files")
            shutil.rmtree(s, ignore_errors=True)


BAD_CONFIGS = [{"budjet": 3}, {"budget": -4}, {"budget": 1.5}, {"seed": -1}, {"seed": 2**70},
               {"fnas": {"imagined": -1}}, {"fnas": {"critic": "yes"}},
               {"task": {"image_size": 1000000}}, {"task": {"epochs": "2"}},
               {"task": {"device": "cuda"}}, {"task": {"batch_size": 1000000}},
               {"reward": {"metric": "nope"}}, {"replay_cfg": {"share": 2}}, {"rea": {"x": 1}},
               {"strategy": "rea", "replay": "on"}, [], "text", None, {"task": []}]
BAD_RAW = ["{", "\xff\xfe", "{" * 5000 + "}" * 5000, ""]


def bad_configs(t: Tally, work: Path, quick: bool) -> None:
    cases, raw = BAD_CONFIGS, BAD_RAW
    if quick:
        cases, raw = cases[::3], raw[:2]
    for i, c in enumerate(cases + raw):
        p = work / f"bad{i}.json"
        if isinstance(c, str) and c in raw:
            p.write_bytes(c.encode("latin-1", "replace") if c.startswith("\xff") else c.encode())
        else:
            p.write_text(json.dumps(c))
        t.run("bad configs", ["search", "--config", str(p), "--store", str(work / "never")])
        if (work / "never").exists():
            t.fail(f"bad configs: refused config {str(c)[:60]!r} created the store")
            shutil.rmtree(work / "never", ignore_errors=True)


# ---- damaged files ----------------------------------------------------------------------------

READERS = [["runs"], ["show", "h"], ["show", "h", "--json"], ["pool", "stats"],
           ["report", "h", "--out", "{tmp}/r.html"],
           ["export", "h:1", "--format", "spec", "--out", "{tmp}/a.json", "--input-size", "8",
            "--classes", "10", "--in-chans", "1"]]


def _readers(t: Tally, category: str, store: Path, tmp: Path, resume: bool = True) -> None:
    for args in READERS:
        t.run(category, [a.replace("{tmp}", str(tmp)) for a in args] + ["--store", str(store)],
              expect=(0, 2))
    if resume:
        t.run(category, ["search", "--resume", "h", "--store", str(store), "--no-progress"],
              expect=(0, 2))


DAMAGED_ROWS = ["UPDATE experiments SET config='{x'", "UPDATE experiments SET config='[]'",
                "UPDATE experiments SET config='{\"task\": 5}'", "UPDATE experiments SET stats='{'",
                "UPDATE experiments SET seed='abc'", "UPDATE experiments SET created=1e300",
                "UPDATE experiments SET name='h\n  9  fake  done'",
                "UPDATE evaluations SET decisions='[1,'", "UPDATE evaluations SET reward='x'",
                "UPDATE evaluations SET arch=NULL", "UPDATE updates SET metrics='nope'",
                "UPDATE pool_entries SET sha256='../../../etc/passwd'",
                "UPDATE meta SET value='99' WHERE key='schema_version'",
                "UPDATE meta SET value='x' WHERE key='schema_version'", "DROP TABLE evaluations"]


def damaged(t: Tally, base: Path, work: Path, quick: bool, rng: random.Random) -> None:
    n_random = 3 if quick else 10
    targets = {"fnas.db": lambda s: s / "fnas.db",
               "checkpoint": lambda s: s / "runs" / "h" / "checkpoint.safetensors",
               "pool file": lambda s: sorted((s / "pool").rglob("*.safetensors"))[0]}
    for label, where in targets.items():
        for i in range(n_random):
            s = work / f"{label.replace(' ', '_')}{i}"
            shutil.copytree(base, s)
            f = where(s)
            data = bytearray(f.read_bytes())
            if i % 3 == 2:
                data = data[:rng.randrange(len(data))]
            else:
                for _ in range(rng.choice([1, 4, 32])):
                    data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
            f.write_bytes(bytes(data))
            _readers(t, f"damaged {label}", s, work, resume=(i < 2 or not quick))
    sqls = DAMAGED_ROWS
    if quick:
        sqls = sqls[::3]
    for i, sql in enumerate(sqls):
        s = work / f"row{i}"
        shutil.copytree(base, s)
        con = sqlite3.connect(s / "fnas.db")
        try:
            con.execute(sql)
            con.commit()
        except sqlite3.Error:
            pass  # e.g. NOT NULL: SQLite itself refused this damage
        con.close()
        _readers(t, "damaged rows", s, work, resume=not quick)
    s = work / "empty"
    s.mkdir()
    (s / "fnas.db").write_bytes(b"")
    _readers(t, "empty fnas.db", s, work)
    t.run("empty fnas.db", ["search", "--config", str(_write_config(work)), "--store", str(s),
                            "--name", "x"])
    if (s / "fnas.db").stat().st_size != 0:
        t.fail("empty fnas.db: it was written to")
    f = work / "forged.safetensors"  # a 1 KB model file naming a 100,000-layer network
    from safetensors.torch import save_file

    save_file({}, str(f), metadata={"fnas": json.dumps({
        "arch": "ir_r100000_k3_s1_e6_c24", "key": "0" * 16, "in_chans": 1, "num_classes": 10,
        "input_size": 8, "sha256": "", "format": "fnas-model/1"})})
    t.run("forged model file", ["export", "--weights", str(f), "--format", "pt2",
                                "--out", str(work / "x.pt2")])


# ---- kills, signals, concurrency --------------------------------------------------------------

def _until(store: Path, n: int, proc: subprocess.Popen, deadline: float) -> bool:
    while time.time() < deadline and proc.poll() is None:
        if _count(store) >= n:
            return True
        time.sleep(0.05)
    return False


def _resume(t: Tally, store: Path, category: str) -> None:
    t.run(category, ["search", "--resume", "h", "--store", str(store), "--no-progress"],
          expect=(0,))


def kills(t: Tally, work: Path, ref: list[tuple], quick: bool) -> None:
    cfg = _write_config(work)
    points = [("after 1 evaluation", 1), ("after 3 evaluations", 3)] if quick else \
        [("after 1 evaluation", 1), ("after 2 evaluations", 2), ("after 3 evaluations", 3),
         ("after 4 evaluations", 4), ("after 5 evaluations", 5), ("at start, 1.5 s", -1.5),
         ("mid-run, 4 s", -4.0)]
    for i, (label, at) in enumerate(points):
        for sig, name in ((signal.SIGKILL, "kill -9"),) if label != "after 3 evaluations" \
                else ((signal.SIGKILL, "kill -9"), (signal.SIGTERM, "SIGTERM"),
                      (signal.SIGINT, "Ctrl-C")):
            store = work / f"kill{i}-{name.replace(' ', '')}"
            t.kills += 1
            t.attempts += 1
            t.by_category["kills"] = t.by_category.get("kills", 0) + 1
            proc = subprocess.Popen(_search_cmd(store, cfg), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            if at < 0:
                time.sleep(-at)
            else:
                _until(store, at, proc, time.time() + t.timeout)
            if proc.poll() is None:
                proc.send_signal(sig)
            try:
                _, err = proc.communicate(timeout=t.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                t.hangs += 1
                t.fail(f"{name} {label}: did not stop")
                continue
            if "Traceback" in (err or ""):
                t.tracebacks += 1
                t.fail(f"{name} {label}: traceback: {err.strip()[-200:]}")
            if sig != signal.SIGKILL and proc.returncode not in (0, 130):
                t.wrong_exit += 1
                t.fail(f"{name} {label}: exit {proc.returncode}")
            if sig != signal.SIGKILL and proc.returncode == 130 and \
                    _status(store) != "interrupted":
                t.fail(f"{name} {label}: run left {_status(store)!r}, not interrupted")
            if not (store / "fnas.db").exists() or _status(store) == "absent":
                p = subprocess.run(_search_cmd(store, cfg), capture_output=True, text=True,
                                   timeout=t.timeout)  # killed before its run existed
                ok = p.returncode == 0
            else:
                _resume(t, store, "kills")
                ok = _status(store) == "done"
            if ok and _compare(t, f"{name} {label}", _rows(store), ref):
                t.kills_survived += 1
            elif not ok:
                t.fail(f"{name} {label}: the resume did not finish the run")


def concurrent(t: Tally, work: Path, ref: list[tuple]) -> None:
    store = work / "conc"
    cfg = _write_config(work)
    proc = subprocess.Popen(_search_cmd(store, cfg), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _until(store, 2, proc, time.time() + t.timeout)
    proc.kill()
    proc.wait()
    cmd = [sys.executable, "-m", "fnas.cli", "search", "--resume", "h", "--store", str(store),
           "--no-progress"]
    a = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    b = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = []
    for p in (a, b):
        try:
            outs.append((p, *p.communicate(timeout=t.timeout)))
        except subprocess.TimeoutExpired:
            p.kill()
            t.hangs += 1
            t.fail("concurrent resume: hang")
            return
    t.attempts += 2
    t.by_category["concurrent resumes"] = t.by_category.get("concurrent resumes", 0) + 2
    codes = sorted(p.returncode for p, _, _ in outs)
    refused = [e for p, _, e in outs if p.returncode == 2]
    if codes != [0, 2] or not refused or "being run or resumed" not in refused[0]:
        t.wrong_exit += 1
        t.fail(f"concurrent resume: exit codes {codes}: {[e.strip()[-150:] for _, _, e in outs]}")
    if any("Traceback" in e for _, _, e in outs):
        t.tracebacks += 1
        t.fail("concurrent resume: traceback")
    _compare(t, "concurrent resume", _rows(store), ref)


# ---- read-only store, full disk, Ray ----------------------------------------------------------

def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def read_only(t: Tally, base: Path, work: Path) -> None:
    src = work / "ro-src"
    shutil.copytree(base, src)
    before = {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    ro = work / "ro"
    if os.geteuid() == 0:
        ro.mkdir()
        if not (_mount("--bind", str(src), str(ro)) and _mount("-o", "remount,ro,bind",
                                                                 str(ro))):
            t.skipped.append("read-only store: no bind mount available as root")
            return
    else:
        ro = src
        for p in [src, *src.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        for args in READERS:
            t.run("read-only store", [a.replace("{tmp}", str(work)) for a in args]
                  + ["--store", str(ro)], expect=(0,))
        t.run("read-only store", ["search", "--resume", "h", "--store", str(ro),
                                  "--no-progress"], expect=(2,))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)])
        else:
            for p in [src, *src.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
    after = {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    if after != before:
        t.fail("read-only store: bytes changed")


def full_disk(t: Tally, work: Path, ref: list[tuple]) -> None:
    mnt = work / "tmpfs"
    mnt.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)):
        t.skipped.append("full disk: needs root and tmpfs")
        return
    try:
        store = mnt / "s"
        cfg = _write_config(work)
        proc = subprocess.Popen(_search_cmd(store, cfg), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        _until(store, 2, proc, time.time() + t.timeout)
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # the disk fills up mid-run
        for chunk in (1 << 16, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
        os.close(fd)
        t.attempts += 1
        t.by_category["full disk"] = t.by_category.get("full disk", 0) + 1
        try:
            _, err = proc.communicate(timeout=t.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            t.hangs += 1
            t.fail("full disk: the search hung")
            err = ""
        if "Traceback" in err:
            t.tracebacks += 1
            t.fail(f"full disk: traceback: {err.strip()[-200:]}")
        elif proc.returncode != 2 or len(_said(err)) != 1:
            t.wrong_exit += 1
            t.fail(f"full disk: exit {proc.returncode}, {len(_said(err))} lines: "
                   f"{_tail(err)}")
        t.run("full disk", ["search", "--resume", "h", "--store", str(store), "--no-progress"],
              expect=(2,))  # still full: refused in one line
        filler.unlink()
        st = _status(store)
        if st != "interrupted":
            t.fail(f"full disk: run left {st!r}, not 'interrupted'")
        _resume(t, store, "full disk")
        _compare(t, "full disk", _rows(store), ref)
    finally:
        subprocess.run(["umount", str(mnt)])


def ray(t: Tally, work: Path) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        t.skipped.append("ray: not installed")
        return
    code = ("import os, subprocess, sys\n"
            "from fnas.execution.executors import RayExecutor\n"
            "ex = RayExecutor(parallel=2)\n"
            "import ray\n"
            "ray.get([ray.remote(lambda: 1).remote() for _ in range(2)])\n"
            "out = subprocess.run(['ss', '-ltnpH'], capture_output=True, text=True).stdout\n"
            "bad = [l for l in out.splitlines() if ('raylet' in l or 'gcs_server' in l or "
            "'ray::' in l or f'pid={os.getpid()},' in l) and not l.split()[3].startswith("
            "('127.0.0.1:', '[::ffff:127.0.0.1]:', '[::1]:'))]\n"
            "ex.close()\n"
            "print(len(bad)); sys.exit(1 if bad else 0)\n")
    t.attempts += 1
    t.by_category["ray"] = t.by_category.get("ray", 0) + 1
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=t.timeout)
    if p.returncode != 0:
        t.fail(f"ray: a local Ray listens beyond 127.0.0.1 ({p.stdout.strip()} sockets) "
               f"{p.stderr.strip()[-200:]}")
    import torch

    if not torch.cuda.is_available():
        t.run("ray", ["search", "--executor", "ray", "--device", "cuda", "--store",
                      str(work / "never")])


# ---- issue 32: bad values ----------------------------------------------------------------------

API_REFUSED = ["budget=1.5", "budget=True", "budget=2**63", "budget='8'", "store=None",
               "catch='RuntimeError'", "version=['a']", "objective(arch, seed, extra)",
               "objective(arch, *, seed)"]
RESULTS_REFUSED = ["macs=1e40", "macs=10**30", "None", "{'reward': None}", "10**400"]
RESULTS_KEPT = ["macs=6.4", "numpy.float32(0.5)"]
MB = 1 << 20
CLI_REFUSED = {"--budget 99999999999999999999": ["--budget", "99999999999999999999"],
               "--set budget=1e23": ["--set", "budget=1e23"],
               "a 1 MB task.dataset": {"task": {"dataset": "x" * MB}},
               "a 1 MB space": {"space": "x" * MB},
               "a 1 MB fnas.acquisition": {"fnas": {"acquisition": "x" * MB}},
               "a 1 MB number as budget": '{"budget": 1' + "0" * MB + "}"}


def _state(store: Path) -> tuple | None:
    """What a refused call must leave as it was: every file's bytes (but SQLite's ``-shm``
    index and ``-wal``) and every table's rows as SQLite reads them back; None: no store."""
    if not store.exists():
        return None
    files = {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(store.rglob("*"))
             if p.is_file() and not p.name.endswith(("-shm", "-wal"))}
    try:
        con = sqlite3.connect(f"file:{store / 'fnas.db'}?mode=ro", uri=True, timeout=5)
        try:
            dump = hashlib.sha256("\n".join(con.iterdump()).encode()).hexdigest()
        finally:
            con.close()
    except sqlite3.Error as e:
        dump = f"unreadable: {e}"
    return files, dump


def _fresh(work: Path, label: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=label, dir=work))
    return d


def _probe_rows(store: Path, name: str = "h") -> list[tuple] | None:
    try:
        return _rows(store, name)
    except sqlite3.Error:
        return None


def _refused_cleanly(t: Tally, what: str, cwd: Path, store: Path, before: tuple | None) -> None:
    """A refused call left the store as it was (or created none) and wrote nothing in its
    working folder."""
    after = _state(store)
    if after != before:
        t.add("written_on_refusal")
        t.fail(f"bad values: {what}: " + ("created a store" if before is None else
                                          "changed the existing store"))
    stray = sorted(p.name for p in cwd.iterdir() if p != store and p.name != "c.json")
    if stray:
        t.add("written_on_refusal")
        t.fail(f"bad values: {what}: wrote {stray[:3]} in its working folder")


def bad_values(t: Tally, work: Path, quick: bool) -> None:
    cat = "bad values"
    kept = work / "values-kept"
    p, _ = t.api(cat, "kept", str(kept), counted=False)  # an existing store: 8 evaluations
    if p.returncode != 0:
        return
    kept_rows = _rows(kept, "kept")

    def place(existing: bool, label: str) -> tuple[Path, Path]:
        cwd = _fresh(work, label)
        store = cwd / "s"
        if existing:
            shutil.copytree(kept, store)
        return cwd, store

    def api_case(which: str, existing: bool) -> None:
        cwd, store = place(existing, "api-")
        before = _state(store)
        t.api(cat, "bad-arg", which, str(store), cwd=cwd, expect=(2,), refusal=("ConfigError",))
        _refused_cleanly(t, f"create_search({which})", cwd, store, before)
        if existing:
            t.run(cat, ["runs", "--store", str(store)], expect=(0,))

    def result_case(which: str, existing: bool) -> None:
        accepted = which in RESULTS_KEPT
        cwd, store = place(existing, "result-")
        p, _ = t.api(cat, "result", which, str(store), cwd=cwd,
                     expect=(0,) if accepted else (2,), refusal=("ObjectiveError",))
        what = f"an objective returning {which}"
        got = _probe_rows(store, "probe")
        if accepted and p.returncode == 0:
            if got is None or len(got) != 2:
                t.fail(f"{cat}: {what}: {got and len(got)} rows recorded, want 2")
            if which.startswith("macs"):
                con = sqlite3.connect(f"file:{store / 'fnas.db'}?mode=ro", uri=True)
                kinds = {r[0] for r in con.execute(
                    "SELECT typeof(e.macs) FROM evaluations e JOIN experiments x ON "
                    "x.id = e.experiment_id WHERE x.name = 'probe'")}
                con.close()
                if kinds != {"integer"}:
                    t.fail(f"{cat}: {what}: MACs stored as {sorted(kinds)}, not integers")
        elif not accepted and got:
            t.add("written_on_refusal")
            t.fail(f"{cat}: {what}: refused, yet {len(got)} evaluation(s) recorded")
        if not accepted and _status(store, "probe") == "done":
            t.fail(f"{cat}: {what}: refused, yet the run reads done")
        if existing and _probe_rows(store, "kept") != kept_rows:
            t.add("written_on_refusal")
            t.fail(f"{cat}: {what}: the store's other run changed")
        if store.exists():
            t.run(cat, ["runs", "--store", str(store)], expect=(0,))
            t.run(cat, ["show", "probe", "--store", str(store)], expect=(0,))

    def cli_case(label: str, case: list | dict | str, existing: bool) -> None:
        cwd, store = place(existing, "cli-")
        if isinstance(case, list):
            args = case
        else:
            cfg = cwd / "c.json"
            cfg.write_text(case if isinstance(case, str) else json.dumps(case))
            args = ["--config", str(cfg)]
        before = _state(store)
        p = t.run(cat, ["search", *args, "--store", str(store), "--name", "probe",
                        "--no-progress"], cwd=cwd)
        if p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr) > 1000:
            t.add("not_one_line")
            t.fail(f"{cat}: {label}: a refusal of {len(p.stderr)} characters "
                   f"({_tail(p.stderr[:80], 80)}...)")
        _refused_cleanly(t, label, cwd, store, before)
        if existing:
            t.run(cat, ["runs", "--store", str(store)], expect=(0,))

    api = API_REFUSED[::3] if quick else API_REFUSED
    results = (RESULTS_REFUSED[::2] + RESULTS_KEPT[:1]) if quick else \
        RESULTS_REFUSED + RESULTS_KEPT
    cli = list(CLI_REFUSED.items())
    jobs = [functools.partial(api_case, w, e) for w in api for e in (False, True)
            if not (w == "store=None" and e)]  # store=None: an empty folder, no store
    jobs += [functools.partial(result_case, w, e) for w in results for e in (False, True)]
    jobs += [functools.partial(cli_case, label, case, e) for label, case in
             (cli[::2] if quick else cli) for e in (False, True)]
    t.parallel(jobs)


# ---- issue 32: cache identity ------------------------------------------------------------------

IDENTITY_KINDS = ["closures", "partials", "instances", "lambdas"]


def _true_reward(k: int, arch: str) -> float:
    c = dict(kv.split("=") for kv in arch.split(","))
    return k + int(c["width"]) / 32 - 0.1 * int(c["depth"])


def cache_identity(t: Tally, work: Path, quick: bool) -> None:
    cat = "cache identity"

    def one_kind(kind: str) -> None:
        store = work / f"identity-{kind}"
        for k, name in ((1, "one"), (100, "other"), (100, "again")):
            p, out = t.api(cat, "identity", kind, str(k), name, str(store))
            if out is None:
                continue
            seen: set[str] = set()
            leaks = 0
            for _, _, arch, reward, _, cached, _ in out["rows"]:
                if abs(reward - _true_reward(k, arch)) > 1e-9 or \
                        (cached and name != "again" and arch not in seen):
                    leaks += 1
                seen.add(arch)
            if leaks:
                t.add("cache_leaks", leaks)
                t.fail(f"{cat}: {kind}: {leaks} of run {name!r}'s rows were another "
                       "objective's results")
            if name == "again" and not all(r[5] for r in out["rows"]):
                t.fail(f"{cat}: {kind}: the same objective in a new process was not served "
                       "from the cache (its key is not stable)")

    t.parallel([functools.partial(one_kind, k)
                for k in (IDENTITY_KINDS[::2] if quick else IDENTITY_KINDS)])


# ---- issue 32: damage detection ----------------------------------------------------------------

DAMAGE = [("WAL: 64 bytes flipped", "late"), ("WAL: 64 bytes flipped", "late"),
          ("WAL: 64 bytes flipped", "early"), ("WAL: truncated to a third", "late"),
          ("WAL: truncated to a third", "early"), ("WAL: deleted", "late"),
          ("fnas.db from an earlier copy, checkpoint newer", "late"),
          ("fnas.db from an earlier copy, WAL kept", "late"),
          ("checkpoint: 64 bytes flipped", "late"), ("checkpoint: 64 bytes flipped", "early"),
          ("checkpoint: truncated to a third", "late"), ("checkpoint: deleted", "late"),
          ("checkpoint from an earlier copy", "late")]
DAMAGE_QUICK = [0, 3, 6, 10]
NAMED = ("missing", "damaged", "corrupt", "malformed", "older", "checkpoint", "no run",
         "no experiment", "not a database", "truncated")


def _killed_after(t: Tally, store: Path, cfg: Path, n: int) -> bool:
    """A search killed (-9) once ``n`` evaluations are recorded; False if it ended first."""
    proc = subprocess.Popen(_search_cmd(store, cfg), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _until(store, n, proc, time.time() + t.timeout)
    alive = proc.poll() is None
    proc.kill()
    proc.wait()
    return alive and _count(store) >= n


def _flip(f: Path, rng: random.Random, n: int = 64) -> None:
    data = bytearray(f.read_bytes())
    for i in rng.sample(range(len(data)), min(n, len(data))):
        data[i] ^= rng.randrange(1, 256)
    f.write_bytes(bytes(data))


def _damage(kind: str, s: Path, backup: Path, rng: random.Random) -> None:
    wal, ckpt = s / "fnas.db-wal", s / "runs" / "h" / "checkpoint.safetensors"
    if kind == "WAL: 64 bytes flipped":
        _flip(wal, rng)
    elif kind == "WAL: truncated to a third":
        os.truncate(wal, wal.stat().st_size // 3)
    elif kind == "WAL: deleted":
        wal.unlink()
        (s / "fnas.db-shm").unlink(missing_ok=True)
    elif kind.startswith("fnas.db from an earlier copy"):
        shutil.copyfile(backup / "fnas.db", s / "fnas.db")
        (s / "fnas.db-shm").unlink(missing_ok=True)
        if kind.endswith("checkpoint newer"):
            wal.unlink(missing_ok=True)
    elif kind == "checkpoint: 64 bytes flipped":
        _flip(ckpt, rng)
    elif kind == "checkpoint: truncated to a third":
        os.truncate(ckpt, ckpt.stat().st_size // 3)
    elif kind == "checkpoint: deleted":
        for p in ckpt.parent.glob("checkpoint.*"):
            p.unlink()
    elif kind == "checkpoint from an earlier copy":
        for p in (backup / "runs" / "h").glob("checkpoint.*"):
            shutil.copyfile(p, ckpt.parent / p.name)
    else:
        raise ValueError(kind)


def damage_detection(t: Tally, work: Path, ref: list[tuple], quick: bool,
                     rng: random.Random) -> None:
    cat = "damage detection"
    cfg = _write_config(work)
    snaps = {"early": work / "dmg-early", "late": work / "dmg-late"}
    for label, n in (("early", 3), ("late", 5)):  # mid-batch: the WAL holds the latest rows
        if not _killed_after(t, snaps[label], cfg, n) or \
                not (snaps[label] / "fnas.db-wal").exists():
            t.skipped.append(f"damage detection: the kill after {n} evaluations missed")
            return
    backup = work / "dmg-backup"  # the early store as a backup: one file, WAL folded in
    shutil.copytree(snaps["early"], backup)
    con = sqlite3.connect(backup / "fnas.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    seeds = [rng.randrange(2**32) for _ in DAMAGE]  # drawn up front: jobs run in any order

    def one(i: int, kind: str, src: str) -> None:
        s = work / f"dmg{i}"
        shutil.copytree(snaps[src], s)
        _damage(kind, s, backup, random.Random(seeds[i]))
        what = f"{kind} (killed after {3 if src == 'early' else 5})"
        p = t.run(cat, ["search", "--resume", "h", "--store", str(s), "--no-progress"],
                  expect=(0, 2))
        got = _probe_rows(s) or []
        st = _status(s)
        lost = len({r[:2] for r in ref} - {r[:2] for r in got})
        if p.returncode == 0 or st == "done":
            if lost:
                t.add("silent_losses", lost)
                t.fail(f"{cat}: {what}: the resume reads {st!r} with {lost} of "
                       f"{len(ref)} rows lost, and said nothing")
            elif st != "done":
                t.fail(f"{cat}: {what}: the resume exited 0 leaving the run {st!r}")
            elif _compare(t, f"{cat}: {what}", got, ref):
                t.add("damage_recovered")
        elif p.returncode == 2:
            if not any(w in p.stderr.lower() for w in NAMED):
                t.fail(f"{cat}: {what}: refused without naming the damage: "
                       f"{_tail(p.stderr, 160)}")
            else:
                t.add("detected_losses")
        t.details.setdefault(cat, []).append({
            "damage": what, "exit": p.returncode, "status": st, "rows": len(got),
            "rows_lost": lost, "said": " ".join(p.stderr.split())[:240] if p.returncode else ""})
        for args in (["runs"], ["show", "h"]):
            t.run(cat, [*args, "--store", str(s)], expect=(0, 2))

    t.parallel([functools.partial(one, i, kind, src) for i, (kind, src) in enumerate(DAMAGE)
                if not quick or i in DAMAGE_QUICK])


# ---- issue 32: kill -9 at random moments -------------------------------------------------------

def _wait_for(path: Path, proc: subprocess.Popen, deadline: float) -> bool:
    while time.time() < deadline and proc.poll() is None:
        if path.exists():
            return True
        time.sleep(0.002)
    return False


def random_kills(t: Tally, work: Path, ref: list[tuple], ref_seconds: float, quick: bool,
                 rng: random.Random) -> None:
    cat = "random kills"
    cfg = _write_config(work)
    n = 4 if quick else 20
    for i in range(n):
        store = work / f"rk{i}"
        at_creation = i % 5 == 0  # a fifth: right as the store is being created
        share = rng.uniform(0.02, 0.85)  # of the uninterrupted run's wall time
        delay = rng.uniform(0.0, 0.05) if at_creation else share * ref_seconds
        label = f"kill -9 #{i} " + (f"{delay * 1000:.0f} ms after the store appeared"
                                    if at_creation else f"at {delay:.2f} s ({share:.0%})")
        t.add("kills")
        t.count(cat)
        proc = subprocess.Popen(_search_cmd(store, cfg), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if at_creation:
            _wait_for(store, proc, time.time() + t.timeout)
        time.sleep(delay)
        finished = proc.poll() is not None
        proc.kill()
        try:
            _, err = proc.communicate(timeout=t.timeout)
        except subprocess.TimeoutExpired:
            t.add("hangs")
            t.fail(f"{cat}: {label}: did not stop")
            continue
        if "Traceback" in (err or ""):
            t.add("tracebacks")
            t.fail(f"{cat}: {label}: traceback: {_exc(err)}")
        if finished:
            print(f"  {label}: the search had already ended", flush=True)
        st = _status(store)
        t.details.setdefault(cat, []).append({
            "kill": label, "store": (store / "fnas.db").exists(), "run": st,
            "rows_at_kill": _count(store) if (store / "fnas.db").exists() else 0})
        if st == "absent":  # killed before its run existed: the same command again
            p = t.run(cat, _search_cmd(store, cfg)[3:], expect=(0,))
        else:
            p = t.run(cat, ["search", "--resume", "h", "--store", str(store),
                            "--no-progress"], expect=(0,))
        if p.returncode == 0 and _status(store) == "done":
            if _compare(t, f"{cat}: {label}", _probe_rows(store) or [], ref):
                t.add("kills_survived")
        elif p.returncode == 0:
            t.fail(f"{cat}: {label}: the resume left the run {_status(store)!r}")


# ---- issue 32: nothing outside the run is touched ----------------------------------------------

OUT_COMMANDS = {"train": ["train", "h:1", "--epochs", "1", "--no-progress"],
                "export spec": ["export", "h:1", "--format", "spec"],
                "export pt2": ["export", "h:1", "--format", "pt2"]}
OUT_TARGETS = ["private /dev/null", "private /dev/full", "/dev/null", "/dev/full", "symlink",
               "dangling symlink", "FIFO", "folder"]
OUT_QUICK = ["private /dev/full", "symlink", "FIFO"]


def _kind(path: Path) -> tuple | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return stat.S_IFMT(st.st_mode), st.st_rdev


def _listing(d: Path) -> set[str]:
    return set(os.listdir(d))


def outside(t: Tally, base: Path, work: Path, quick: bool) -> None:
    cat = "outside the run"
    root = os.geteuid() == 0
    real_ok = {"null": True, "full": True}  # the private node of that kind held

    def one(cmd_label: str, target: str) -> None:
        cmd = OUT_COMMANDS[cmd_label]
        ext = {"train": ".safetensors", "export spec": ".json", "export pt2": ".pt2"}[cmd_label]
        d = _fresh(work, "out-")
        check_dir = d
        expect: tuple[int, ...] = (2,)
        if target.startswith("private /dev/"):
            if not root:
                t.skipped.append(f"{cat}: {cmd_label} to a {target}: mknod needs root")
                return
            out = d / target.rsplit("/", 1)[1]
            os.mknod(out, stat.S_IFCHR | 0o666, os.makedev(1, 3 if out.name == "null" else 7))
            expect = (0, 2) if out.name == "null" else (1, 2)
        elif target.startswith("/dev/"):
            which = target[5:]
            if not root or not real_ok[which]:
                t.skipped.append(f"{cat}: {cmd_label} to {target}: " + (
                    "not root" if not root else f"the private {which} node did not hold"))
                return
            out, check_dir = Path(target), Path("/dev")
            expect = (0, 2) if which == "null" else (1, 2)
        elif target == "symlink":
            real = d / f"real{ext}"
            real.write_bytes(b"old")
            out = d / f"link{ext}"
            out.symlink_to(real)
            expect = (0,)
        elif target == "dangling symlink":
            out = d / f"link{ext}"
            out.symlink_to(d / f"nowhere{ext}")
            expect = (0,)
        elif target == "FIFO":
            out = d / "fifo"
            os.mkfifo(out)
        else:
            out = d / "folder"
            out.mkdir()
            (out / "inside").write_bytes(b"kept")
        kind, listing = _kind(out), _listing(check_dir)
        p = t.run(cat, [*cmd, "--out", str(out), "--store", str(base)], expect=expect,
                  timeout=min(t.timeout, 120))
        touched = []
        if target in ("symlink", "dangling symlink"):
            dest = d / (("real" if target == "symlink" else "nowhere") + ext)
            if not out.is_symlink():
                touched.append("the link was replaced")
            if p.returncode == 0 and (not dest.is_file() or dest.read_bytes() in (b"", b"old")):
                touched.append("the link's target did not get the bytes")
        elif _kind(out) != kind:
            touched.append(f"{out} changed kind")
        if target == "folder" and (sorted(os.listdir(out)) != ["inside"] or
                                   (out / "inside").read_bytes() != b"kept"):
            touched.append("the folder's content changed")
        new = _listing(check_dir) - listing
        if target in ("symlink", "dangling symlink") or cmd_label == "export spec":
            new -= {f"link{ext}", f"nowhere{ext}", "link.txt"}  # + the spec's .txt
        if check_dir == Path("/dev"):
            new = {n for n in new if n.startswith((".null", ".full", "null", "full"))}
        if new:
            touched.append(f"left {sorted(new)[:3]} beside it")
        if target in ("/dev/null", "/dev/full") and not stat.S_ISCHR(os.stat(out).st_mode):
            touched.append(f"{target} is no longer a character device")
            _restore_dev(out)
        if touched:
            t.add("outside_touched")
            t.fail(f"{cat}: {cmd_label} --out {target}: {'; '.join(touched)}")
            if target.startswith("private"):
                real_ok[target.rsplit("/", 1)[1]] = False
        if check_dir == Path("/dev"):
            for n in new:  # what a broken writer left in /dev: removed again
                if n.endswith((".tmp", ".txt")):
                    (check_dir / n).unlink(missing_ok=True)

    targets = OUT_QUICK if quick else OUT_TARGETS
    t.parallel([functools.partial(one, c, x) for c in OUT_COMMANDS for x in targets
                if not x.startswith("/dev/")])
    for c in OUT_COMMANDS:  # the machine's own devices: one at a time, once the private held
        for x in targets:
            if x.startswith("/dev/"):
                one(c, x)


def _restore_dev(path: Path) -> None:
    """Put a real device node back where a writer replaced it (root only)."""
    path.unlink(missing_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3 if path.name == "null" else 7))
    os.chmod(path, 0o666)


# ---- issue 32: hangs ---------------------------------------------------------------------------

SPACE_PROBES = [("10,000 decisions", (2,)), ("100,000 choices", (2,)), ("512 decisions", (0,)),
                ("4096 choices", (0,)), ("unhashable {1}, {2}", (0, 2)),
                ("unhashable [1], [2]", (0, 2))]
EXHAUST_STRATEGIES = ["random", "rea", "ppo", "fnas"]
HANG_S = 60.0
HANG_MEM = 4 << 30  # address space of a hang probe: reading /dev/zero must not take the machine


def hangs(t: Tally, work: Path, quick: bool) -> None:
    cat = "hangs"
    limit = min(t.timeout, HANG_S)

    def space(which: str, expect: tuple[int, ...]) -> None:
        t.api(cat, "make", which, str(_fresh(work, "space-") / "s"), expect=expect,
              timeout=limit, refusal=("ConfigError", "InvalidArchitecture"), memory=HANG_MEM)

    def exhaust(strategy: str) -> None:
        _, out = t.api(cat, "exhaust", strategy, str(_fresh(work, "exhaust-") / "s"),
                       timeout=limit, memory=HANG_MEM)
        if out is not None and (out["stop_reason"] != "exhausted" or out["trained"] != 9):
            t.fail(f"{cat}: {strategy}, budget 1,000,000 trained on 9 architectures: ended "
                   f"{out['stop_reason']!r} after {out['trained']} trained")

    def flags(args: list[str]) -> None:  # /dev/zero: read to its end, memory would fill up
        t.run(cat, args, timeout=limit, memory=HANG_MEM)

    fifo = work / "config-fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    args = [["search", "--config", str(src), "--store", str(work / "never")]
            for src in (fifo, Path("/dev/zero"))]
    big = [["export", "mnasnet_a1", "--format", fmt, "--input-size", "1000000000",
            "--out", str(work / f"huge.{fmt}")] for fmt in ("spec", "pt2", "onnx")]
    big += [["inspect", "mnasnet_a1", "--input-size", "1000000000"],
            ["train", "mnas_default", "--image-size", "1000000000", "--epochs", "1",
             "--out", str(work / "huge.safetensors")]]
    args += big[::2] if quick else big
    t.parallel([functools.partial(space, w, e)
                for w, e in (SPACE_PROBES[::2] if quick else SPACE_PROBES)]
               + [functools.partial(exhaust, x)
                  for x in (EXHAUST_STRATEGIES[::2] if quick else EXHAUST_STRATEGIES)]
               + [functools.partial(flags, a) for a in args])
    if (work / "never").exists():
        t.fail(f"{cat}: a refused --config created the store")


# ---- issue 32: concurrency ---------------------------------------------------------------------

def concurrency(t: Tally, work: Path, ref: list[tuple], quick: bool) -> None:
    cat = "concurrency"
    env = {**os.environ, "PYTHONPATH": str(t.probe.parent) if t.probe else ""}
    for r in range(1 if quick else 3):  # six processes open one fresh store at once
        store, go = work / f"six{r}" / "s", work / f"six{r}" / "go"
        go.parent.mkdir()
        procs = [subprocess.Popen([sys.executable, str(t.probe), "open-fresh", str(store),
                                   str(go), str(i)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
                 for i in range(6)]
        deadline = time.time() + t.timeout  # every process imported fnas and waits for go
        while time.time() < deadline and any(p.poll() is None for p in procs) and \
                len(list(go.parent.glob("go.ready*"))) < 6:
            time.sleep(0.05)
        go.touch()
        t.count(cat, 6)
        for i, p in enumerate(procs):
            try:
                _, err = p.communicate(timeout=t.timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                t.add("hangs")
                t.fail(f"{cat}: six at once, round {r}: process {i} hung")
                continue
            if "Traceback" in err:
                t.add("tracebacks")
                t.fail(f"{cat}: six at once: process {i}: traceback: {_exc(err)}")
            elif p.returncode != 0:
                t.add("wrong_exit")
                t.fail(f"{cat}: six at once: process {i} exit {p.returncode}: {_tail(err)}")
            if any(w in err.lower() for w in ("delete", "remove")):
                t.fail(f"{cat}: six at once: process {i} was advised to delete: {_tail(err)}")
        runs = [f"run{i}" for i in range(6)]
        got = {name: len(_probe_rows(store, name) or []) for name in runs}
        if any(v != 2 for v in got.values()):
            t.fail(f"{cat}: six at once, round {r}: evaluations per run {got}, want 2 each")
    for seed in ((0,) if quick else (0, 1, 2)):  # two threads of one process, one run
        _, lone = t.api(cat, "threads", str(work / f"lone{seed}"), str(seed), "1",
                        counted=False)  # the reference
        _, out = t.api(cat, "threads", str(work / f"threads{seed}"), str(seed), "2")
        t.count(cat)  # two threads, two attempts
        if out is None or lone is None:
            continue
        res = out["threads"]
        t.details.setdefault(cat, []).append({"two threads, seed": seed,
                                              "threads": [r_[:200] for r_ in res]})
        if "ok" not in res:
            t.fail(f"{cat}: two threads, seed {seed}: neither finished: {res}")
        for r_ in res:
            if r_ != "ok" and (r_.startswith("Traceback") or "\n" in r_):
                t.add("tracebacks")
                t.fail(f"{cat}: two threads, seed {seed}: {r_[-200:]}")
        if out["rows"] != lone["rows"] or out["status"] != "done":
            t.add("mismatched")
            t.fail(f"{cat}: two threads, seed {seed}: status {out['status']!r}, rows differ "
                   f"from a lone run's ({len(out['rows'])} vs {len(lone['rows'])})")
    cfg = _write_config(work)
    for names in (("h", "h"), ("h", "h2")):  # two fnas search on one fresh store, together
        store = work / f"pair-{names[1]}"
        procs = [subprocess.Popen(_search_cmd(store, cfg, n), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for n in names]
        t.count(cat, 2)
        outs = []
        for p in procs:
            try:
                err = p.communicate(timeout=t.timeout)[1]
                outs.append((p.returncode, err))
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                t.add("hangs")
                t.fail(f"{cat}: two searches {names}: hang")
                outs.append((-9, ""))
        codes = sorted(c for c, _ in outs)
        t.details.setdefault(cat, []).append({"two searches": list(names), "exits": [
            c for c, _ in outs], "said": [_tail(e, 200) for c, e in outs if c]})
        if any("Traceback" in e for _, e in outs):
            t.add("tracebacks")
            t.fail(f"{cat}: two searches {names}: traceback: "
                   f"{[_exc(e) for _, e in outs if 'Traceback' in e]}")
        elif codes != ([0, 2] if names[0] == names[1] else [0, 0]):
            t.add("wrong_exit")
            t.fail(f"{cat}: two searches {names}: exit codes {codes}: "
                   f"{[_tail(e, 150) for _, e in outs]}")
        elif any(c == 2 and len(_said(e)) != 1 for c, e in outs):
            t.add("not_one_line")
            t.fail(f"{cat}: two searches {names}: a refusal of several lines")
        if any("delete" in e.lower() for _, e in outs):
            t.fail(f"{cat}: two searches {names}: advised to delete: {outs}")
        if names[0] == names[1]:
            _compare(t, f"{cat}: two searches of one name", _probe_rows(store) or [], ref)
        else:
            for n in names:
                got = _probe_rows(store, n) or []
                if len(got) != len(ref) or len({r[:2] for r in got}) != len(got) or \
                        _status(store, n) != "done":
                    t.fail(f"{cat}: two searches {names}: run {n} {_status(store, n)!r} with "
                           f"{len(got)} rows, want done with {len(ref)}")


# ---- issue 32: an objective that never returns -------------------------------------------------

NEVER_S = 45.0


def never_returns(t: Tally, work: Path, quick: bool) -> None:
    cat = "never returns"
    limit = min(t.timeout, NEVER_S)

    def api(case: str, want: str) -> None:
        t0 = time.time()
        _, out = t.api(cat, case, str(_fresh(work, "never-") / "s"), timeout=limit)
        print(f"  {case}: {time.time() - t0:.1f} s", flush=True)
        if out is None:
            return
        if out["stop_reason"] != want:
            t.fail(f"{cat}: {case}: stop reason {out['stop_reason']!r}, want {want!r}")
        if case == "forever-timeout" and (
                len(out["rows"]) != 2 or any(r[4] != "error" or "time" not in r[6]
                                             for r in out["rows"])):
            t.fail(f"{cat}: {case}: evaluations {[(r[4], r[6][:60]) for r in out['rows']]}, "
                   "want 2 failed ('error', timed out)")

    cfg = _write_config(work, task={**CONFIG["task"], "epochs": 1000})  # minutes a training

    def cli(label: str, extra: list[str]) -> None:
        store = _fresh(work, "never-cli-") / "s"
        t0 = time.time()
        p = t.run(cat, _search_cmd(store, cfg)[3:] + extra, expect=(0,), timeout=limit)
        print(f"  fnas search {label}: {time.time() - t0:.1f} s", flush=True)
        if p.returncode != 0:
            return
        rows = _messages(store)
        reason = _stats(store).get("stop_reason")
        if label.startswith("--eval-timeout") and (
                len(rows) != 2 or any(r[0] != "error" or "time" not in r[1] for r in rows)):
            t.fail(f"{cat}: fnas search {label}: evaluations {rows}, want 2 failed "
                   "('error', timed out)")
        if label.startswith("--budget-seconds") and reason != "seconds":
            t.fail(f"{cat}: fnas search {label}: stop reason {reason!r}, want 'seconds'")

    jobs = [functools.partial(api, "forever-seconds", "seconds"),
            functools.partial(api, "forever-timeout", "budget")]
    if not quick:
        jobs += [functools.partial(cli, label, extra) for label, extra in (
            ("--eval-timeout 2", ["--eval-timeout", "2", "--budget", "2"]),
            ("--eval-timeout 2 --strategy random",
             ["--eval-timeout", "2", "--budget", "2", "--strategy", "random"]),
            ("--budget-seconds 3", ["--budget-seconds", "3"]))]
    t.parallel(jobs)


def _messages(store: Path) -> list[tuple]:
    try:
        con = sqlite3.connect(f"file:{store / 'fnas.db'}?mode=ro", uri=True, timeout=5)
        try:
            return [(st, (msg or "")[:60]) for st, msg in con.execute(
                "SELECT status, message FROM evaluations ORDER BY iteration, slot")]
        finally:
            con.close()
    except sqlite3.Error:
        return []


def _stats(store: Path, name: str = "h") -> dict:
    from fnas.errors import FnasError
    from fnas.knowledge import Store

    try:
        with Store(store, readonly=True) as s:
            return s.get_experiment(name).stats or {}
    except FnasError:
        return {}


# ---- main -------------------------------------------------------------------------------------

def plan(quick: bool) -> dict[str, int]:
    """The attempts each section makes (a kill before its run existed, a skipped probe and a
    store that was never created make a few fewer); a run prints what each made."""
    root = os.geteuid() == 0
    n_random, n_kills = (3, 4) if quick else (10, 9)
    api = API_REFUSED[::3] if quick else API_REFUSED
    results = (RESULTS_REFUSED[::2] + RESULTS_KEPT[:1]) if quick else \
        RESULTS_REFUSED + RESULTS_KEPT
    cli = list(CLI_REFUSED)[::2] if quick else list(CLI_REFUSED)
    outs = len(OUT_COMMANDS) * sum(
        root or not x.startswith(("private", "/dev")) for x in (OUT_QUICK if quick else
                                                                OUT_TARGETS))
    hang = len(SPACE_PROBES[::2] if quick else SPACE_PROBES) + 2 + \
        len(EXHAUST_STRATEGIES[::2] if quick else EXHAUST_STRATEGIES) + (3 if quick else 5)
    p = {"bad flags": len(BAD_FLAGS[::4] if quick else BAD_FLAGS),
         "bad configs": len(BAD_CONFIGS[::3]) + 2 if quick else len(BAD_CONFIGS) + len(BAD_RAW),
         "damaged files": 3 * n_random * len(READERS) + 3 * (2 if quick else n_random)
         + len(DAMAGED_ROWS[::3] if quick else DAMAGED_ROWS) * (len(READERS) + (not quick))
         + len(READERS) + 3,
         "kills and signals": 2 * n_kills, "concurrent resumes": 2,
         "read-only store": len(READERS) + 1, "full disk": 3 if root else 0,
         "bad values": 3 * len(api) - 2 * ("store=None" in api) + 6 * len(results)
         + 3 * len(cli),
         "cache identity": 3 * len(IDENTITY_KINDS[::2] if quick else IDENTITY_KINDS),
         "damage detection": 3 * (len(DAMAGE_QUICK) if quick else len(DAMAGE)),
         "random kills": 2 * (4 if quick else 20), "outside the run": outs, "hangs": hang,
         "concurrency": 6 * (1 if quick else 3) + 2 * (1 if quick else 3) + 4,
         "never returns": 2 if quick else 5, "ray": 2}
    return p


QUICK = {"bad flags", "bad configs", "damaged files", "kills and signals", "concurrent resumes",
         "read-only store", "full disk", "bad values", "cache identity", "hangs"}
"""The sections --quick runs (on their smaller settings)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a subset (a few minutes)")
    ap.add_argument("--out", default=None,
                    help="JSON path (benchmarks/results/hostile.json; quick: /tmp/...)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds after which a process counts as hung (300)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random damage (0)")
    ap.add_argument("--only", default=None,
                    help="comma-separated section names, e.g. 'bad values,hangs' (debugging)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="independent probes run at once in the issue-32 sections (2)")
    ap.add_argument("--dry-count", action="store_true",
                    help="print the attempts each section plans, run nothing")
    args = ap.parse_args(argv)
    only = None if args.only is None else [x.strip() for x in args.only.split(",")]
    planned = plan(args.quick)  # --only: those sections (on --quick's settings with --quick)
    if only and set(only) - set(planned):
        ap.error(f"unknown section(s) {sorted(set(only) - set(planned))}: expected some of "
                 f"{list(planned)}")
    planned = {k: v for k, v in planned.items()
               if (k in only if only else k in QUICK or not args.quick)}
    if args.dry_count:
        for k, v in planned.items():
            print(f"{v:5d}  {k}")
        print(f"{sum(planned.values()):5d}  attempts in all ({'quick' if args.quick else 'full'}"
              f"{', as root' if os.geteuid() == 0 else ', not root'})")
        return 0
    out = Path(args.out or ("/tmp/fnas-hostile.json" if args.quick
                            else ROOT / "benchmarks" / "results" / "hostile.json"))
    t = Tally(args.timeout, jobs=args.jobs)
    rng = random.Random(args.seed)

    def own_rng(label: str) -> random.Random:  # the same draws with or without --only
        return random.Random(f"{args.seed}:{label}")

    t0 = time.time()
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds of this process and its children: less load-bound
    with tempfile.TemporaryDirectory(prefix="fnas-hostile-") as tmp:
        work = Path(tmp)
        t.probe = work / "hprobe.py"
        t.probe.write_text(PROBE)
        print("reference: an uninterrupted search", flush=True)
        base = work / "base"
        s0 = time.time()
        p = subprocess.run(_search_cmd(base, _write_config(work)), capture_output=True,
                           text=True, timeout=args.timeout)
        ref_seconds = time.time() - s0
        if p.returncode != 0:
            print(p.stderr, file=sys.stderr)
            return 1
        ref = _rows(base)
        sections = [("bad flags", lambda: bad_flags(t, work, args.quick)),
                    ("bad configs", lambda: bad_configs(t, work, args.quick)),
                    ("damaged files", lambda: damaged(t, base, work, args.quick, rng)),
                    ("kills and signals", lambda: kills(t, work, ref, args.quick)),
                    ("concurrent resumes", lambda: concurrent(t, work, ref)),
                    ("read-only store", lambda: read_only(t, base, work)),
                    ("full disk", lambda: full_disk(t, work, ref)),
                    ("ray", lambda: ray(t, work)),
                    ("bad values", lambda: bad_values(t, work, args.quick)),
                    ("cache identity", lambda: cache_identity(t, work, args.quick)),
                    ("damage detection", lambda: damage_detection(
                        t, work, ref, args.quick, own_rng("damage detection"))),
                    ("random kills", lambda: random_kills(
                        t, work, ref, ref_seconds, args.quick, own_rng("random kills"))),
                    ("outside the run", lambda: outside(t, base, work, args.quick)),
                    ("hangs", lambda: hangs(t, work, args.quick)),
                    ("concurrency", lambda: concurrency(t, work, ref, args.quick)),
                    ("never returns", lambda: never_returns(t, work, args.quick))]
        for label, fn in sections:
            if label not in planned:
                continue
            n = t.attempts
            s, c = time.time(), _cpu()
            print(f"{label} ...", flush=True)
            fn()
            seconds[label] = round(time.time() - s, 1)
            cpu[label] = round(_cpu() - c, 1)
            print(f"  {t.attempts - n} attempts (planned {planned[label]}), "
                  f"{seconds[label]:.0f} s ({cpu[label]:.0f} s of CPU)", flush=True)
    result = {
        "mode": "quick" if args.quick else "full",
        "sections": list(seconds) if only else "all",
        "attempts": t.attempts, "planned_attempts": sum(planned.values()),
        "by_category": t.by_category,
        "kills": t.kills, "kills_survived": t.kills_survived,
        "evaluations_lost": t.lost, "evaluations_duplicated": t.duplicated,
        "evaluations_differing": t.mismatched,
        "silent_losses": t.silent_losses, "detected_losses": t.detected_losses,
        "damage_recovered": t.damage_recovered, "outside_touched": t.outside_touched,
        "cache_leaks": t.cache_leaks, "written_on_refusal": t.written_on_refusal,
        "wrong_refusals": t.wrong_refusals,
        "tracebacks": t.tracebacks, "wrong_exit_codes": t.wrong_exit, "hangs": t.hangs,
        "refusals_not_one_line": t.not_one_line,
        "failures": t.failures, "skipped": t.skipped, "details": t.details,
        "still_open": t.failures + [f"not tried: {s}" for s in t.skipped],
        "seconds": round(time.time() - t0, 1), "section_seconds": seconds,
        "section_cpu_seconds": cpu,
        "reference_seconds": round(ref_seconds, 1),
        "search": CONFIG, "seed": args.seed, "timeout_s": args.timeout, "jobs": args.jobs,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "user": "root" if os.geteuid() == 0 else "user",
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        "date": time.strftime("%Y-%m-%d"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"  # messages name the temporary folder: WORK
    out.write_text(re.sub(r"/[^\"\s]*/fnas-hos(tile-[A-Za-z0-9_]+)?[a-z-]*", "WORK", text))
    print(json.dumps({k: result[k] for k in (
        "attempts", "kills", "kills_survived", "evaluations_lost", "evaluations_duplicated",
        "silent_losses", "detected_losses", "outside_touched", "cache_leaks", "tracebacks",
        "wrong_exit_codes", "hangs")}))
    print(f"wrote {out}")
    return 0 if not t.failures else 1


if __name__ == "__main__":
    sys.exit(main())
