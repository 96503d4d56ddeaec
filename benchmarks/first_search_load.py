"""The README's first search on a busy machine (issue 36, part 1): the default ``fnas search``,
as a new user runs it from a fresh clone, idle and then with ``--load`` competing CPU-bound
processes (pure-Python busy loops, started here and killed after), for each torch thread
setting of ``--threads`` (``1``: fnas's default; ``0``: torch's own, one thread per core, as
before issue 36). Each search runs in a subprocess, in a fresh temporary store and folder,
with ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` removed from its environment (a new user sets
neither). Target: at load 4, the default search's wall time <= 2x its idle wall time (before
issue 36, with torch's default threads: 10-30x on a loaded 2-core machine).

Commands (from the repository root)::

    python benchmarks/first_search_load.py                      # the figure (~10-20 min)
    python benchmarks/first_search_load.py --budget 4 --out /tmp/fsl.json  # a smoke run

Writes ``results/first_search_load.json`` and ``.md`` (``--out``): the command, the machine
(cores, CPU model, load average before each search), and per thread setting the idle and
loaded wall and CPU seconds, and their ratio. Measure on an otherwise quiet machine: the
competing load is the script's own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUSY = "while True:\n    pass\n"
"""A competing process: one CPU-bound pure-Python loop (no threads of its own)."""


def _cpu_model() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from rollout_throughput import cpu_model  # (imports torch: only once the runs are over)

    return cpu_model()


def start_load(n: int) -> list[subprocess.Popen]:
    """``n`` busy processes; each is killed by :func:`stop_load`."""
    return [subprocess.Popen([sys.executable, "-c", BUSY], stdin=subprocess.DEVNULL)
            for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def one_search(threads: int, budget: int | None, seed: int, timeout: float) -> dict[str, Any]:
    """The README's ``fnas search`` (plus ``--threads``, ``--budget``, ``--seed``) in a fresh
    folder and store; its wall seconds, its CPU seconds (user + system, from the child's
    rusage) and its summary line."""
    args = ["search", "--threads", str(threads), "--seed", str(seed), "--no-progress"]
    if budget is not None:
        args += ["--budget", str(budget)]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",
                                                             "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + [p for p in env.get(
        "PYTHONPATH", "").split(os.pathsep) if p])  # this checkout's fnas
    folder = Path(tempfile.mkdtemp(prefix="fnas-first-search-"))
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "fnas", *args], cwd=folder, env=env,
                           capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary = next((ln for ln in p.stdout.splitlines() if ln.startswith("run ")), "")
    return {"command": "fnas " + " ".join(args), "returncode": p.returncode,
            "wall_s": round(wall, 1),
            "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
                           1),
            "load_before": round(load, 2), "summary": summary,
            "error": p.stderr.strip().splitlines()[-1][:300]
            if p.returncode and p.stderr.strip() else None}


def measure(threads_list: list[int], load: int, budget: int | None, seed: int,
            timeout: float) -> dict[str, Any]:
    import torch

    rows = {}
    for threads in threads_list:
        idle = one_search(threads, budget, seed, timeout)
        print(f"threads {threads}, idle: {idle['wall_s']} s wall, {idle['cpu_s']} CPU-s",
              flush=True)
        procs = start_load(load)
        try:
            time.sleep(2.0)  # the competing processes running before the search starts
            loaded = one_search(threads, budget, seed, timeout)
        finally:
            stop_load(procs)
        ratio = loaded["wall_s"] / idle["wall_s"] if idle["wall_s"] else None
        print(f"threads {threads}, load {load}: {loaded['wall_s']} s wall, "
              f"{loaded['cpu_s']} CPU-s; {ratio:.2f}x idle", flush=True)
        rows[str(threads)] = {"idle": idle, "loaded": loaded,
                              "loaded_over_idle": None if ratio is None else round(ratio, 2)}
        time.sleep(5.0)  # the load average settles a little before the next pair
    default = rows.get("1", {}).get("loaded_over_idle")
    return {"figure": "the README's first search at load N: wall time loaded / idle",
            "target": "<= 2x idle for the default (--threads 1)",
            "target_met": None if default is None else default <= 2.0,
            "load_processes": load, "budget": budget or "the default (32)", "seed": seed,
            "threads": rows,
            "machine": {"nproc": os.cpu_count(), "cpu": _cpu_model(),
                        "python": platform.python_version(), "torch": torch.__version__,
                        "torch_default_threads": torch.get_num_threads()}}


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"# The first search at load {res['load_processes']}",
             "",
             f"`{res['command']}`; {m['nproc']} cores ({m['cpu']}), torch {m['torch']} "
             f"(default {m['torch_default_threads']} threads); budget {res['budget']}, "
             f"seed {res['seed']}.",
             "",
             "| --threads | idle wall s | idle CPU-s | loaded wall s | loaded CPU-s | loaded / "
             "idle |",
             "|---|---:|---:|---:|---:|---:|"]
    for t, r in res["threads"].items():
        name = f"{t} (torch's default)" if t == "0" else t
        lines.append(f"| {name} | {r['idle']['wall_s']} | {r['idle']['cpu_s']} | "
                     f"{r['loaded']['wall_s']} | {r['loaded']['cpu_s']} | "
                     f"{r['loaded_over_idle']}x |")
    lines += ["", f"Target: {res['target']}; met: {res['target_met']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,0", metavar="N,N",
                    help="thread settings to compare (1: fnas's default; 0: torch's own)")
    ap.add_argument("--load", type=int, default=4, help="competing busy processes (4)")
    ap.add_argument("--budget", type=int, default=None,
                    help="architectures per search (default: the README's, 32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=6 * 3600,
                    help="seconds one search may take (6 h: torch's default threads at load "
                         "4 took hours before issue 36)")
    ap.add_argument("--out", default=str(HERE / "results" / "first_search_load.json"))
    args = ap.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    given = argv if argv is not None else sys.argv[1:]
    res = {"command": "python benchmarks/first_search_load.py" + "".join(  # no absolute paths
        f" {Path(a).name if os.path.isabs(a) else a}" for a in given),
        **measure(threads, args.load, args.budget, args.seed, args.timeout)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
