"""The legacy-resume fixture: runs stopped partway by an older fnas, and what that fnas recorded
when it resumed them to their full budget (``tests/test_legacy_resume.py`` reads both).

An fnas release must resume the runs and checkpoints an older one left in a store. This
module makes that testable. Run as a script against an older source tree, it starts each case
below in its own store folder (``stores/CASE/``), stops it partway (``stop_after`` batches,
or Ctrl-C raised by a callback in the middle of a batch), and keeps that store as the fixture;
it then resumes copies of the store, each in a fresh Python process of the same old fnas,
along every route the test takes (``fnas.create_search(..., load_if_exists=True)``,
``fnas.search.resume_search``, ``fnas search --resume``) and writes what they recorded to
``expected.json``. The test resumes copies of the same stores with the current fnas, along
the same routes, and compares the records field by field.

The cases (user space: ``fnas.make_space`` over 6 decisions; objective: a pure function of
the architecture, as in ``benchmarks/equivalence.py``; budget 16 in batches of 4):

- ``synth-fnas``: the fnas strategy with its default screening (replay on), 1 batch of 4;
- ``synth-veto``: the fnas strategy with the first design's veto rule (``acquisition='off'``
  in the fnas settings) and a critic trusted after 6 real results, stopped after 2 batches,
  so the checkpoint holds a trusted critic's decision state;
- ``synth-ppo-replay``: ppo with the experience buffer on, 1 batch;
- ``synth-rea``: regularized evolution, Ctrl-C after the 6th evaluation (mid-batch: the run
  is ``interrupted`` with rows past its last checkpoint);
- ``synth-random``: random search, 1 batch;
- ``real-fnas-pool``: the fnas strategy with the knowledge pool on, training for real on
  ``tests/fast.py``'s tiny digits task (100 images, 1 epoch), budget 4 in batches of 2,
  stopped after the first batch (the store holds pool weight files); its space is
  :func:`tiny_space`, named ``make_legacy:tiny_space`` so that ``fnas search --resume`` can
  import it (the MnasNet space's blocks would make megabytes of pool files).

The controllers and critics are narrower than the defaults (``SMALL_PPO``, ``SMALL_CRITIC``)
to keep the checkpoints small; non-default values also show a resume that falls back to a
default instead of reading the stored setting. The whole fixture is about 1 MB, and has no
absolute path in it (stores record none), so a copy anywhere resumes.

A record is every evaluation row without its wall-clock and database fields (``created``,
``train_seconds``, ``id``, ``experiment_id``), every update row without its timing metrics,
the run's status and stop reason; floats are written as ``repr`` strings, so equality is
exact.

Regenerate (from the repository root; only when the fixture itself must change: it stands
for the stores of an older release, so it is made with the older code)::

    git worktree add /tmp/legacy c137b5c
    OMP_NUM_THREADS=1 python tests/data/legacy/make_legacy.py --src /tmp/legacy/src

``--src`` is the source tree whose fnas runs (default: this checkout's ``src``); ``--out``
the folder to write (default: this module's). About a minute on 2 idle cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FORMAT = "fnas-legacy-resume/1"
VERSION = "legacy-1"
"""The objective's ``version=`` tag: the run's task signature names it, so a resume must give
the same tag (and the objective the same qualified name, ``make_legacy.synth_metrics``)."""

SYNTH_DECISIONS = {"depth": [1, 2, 3, 4], "width": [8, 16, 32, 64],
                   "act": ["relu", "gelu", "silu"], "kernel": [3, 5, 7],
                   "se": [False, True], "drop": [0.0, 0.1, 0.2]}
"""864 architectures (the equivalence script's user space)."""

TINY = {"dataset": "digits", "max_samples": 100, "batch_size": 32, "latency_repeats": 0,
        "epochs": 1}
"""``tests/fast.py``'s TINY_TASK at one epoch."""

SMALL_PPO = {"hidden": 16}
"""A small controller (the default's 100-wide LSTM makes a 1 MB checkpoint)."""
SMALL_CRITIC = {"members": 3, "hidden": 16}
"""A small critic ensemble, for the same reason."""

CASES: dict[str, dict[str, Any]] = {
    "synth-fnas": {"strategy": "fnas", "stop": ("stop_after", 1),
                   "settings": {"ppo": SMALL_PPO, "fnas": {"critic_cfg": SMALL_CRITIC}}},
    "synth-veto": {"strategy": "fnas", "stop": ("stop_after", 2),
                   "settings": {"ppo": SMALL_PPO, "fnas": {
                       "acquisition": "off", "critic_cfg": SMALL_CRITIC,
                       "decision": {"min_real": 6, "norm_after": 4}}}},
    "synth-ppo-replay": {"strategy": "ppo", "stop": ("stop_after", 1),
                         "settings": {"ppo": SMALL_PPO, "replay": "on"}},
    "synth-rea": {"strategy": "rea", "stop": ("ctrl_c", 6),
                  "settings": {"rea": {"population": 6, "sample": 3}}},
    "synth-random": {"strategy": "random", "stop": ("stop_after", 1)},
    "real-fnas-pool": {"strategy": "fnas", "stop": ("stop_after", 1), "real": True,
                       "budget": 4, "batch": 2,
                       "settings": {"task": TINY, "pool": "on", "ppo": SMALL_PPO,
                                    "fnas": {"critic_cfg": SMALL_CRITIC}}},
}
"""Each case: its strategy, how it is stopped, and its settings (SearchConfig fields)."""

ROUTES = {name: (("resume_search", "cli") if case.get("real") else ("create_search",))
          for name, case in CASES.items()}
"""How each case is resumed: ``create_search`` (``load_if_exists=True``, then ``optimize``),
``resume_search`` (``fnas.search.resume_search`` on the store) or ``cli``
(``python -m fnas search --resume``)."""

_SPACES: dict[str, Any] = {}


def synth_space() -> Any:
    """The user space (``fnas.make_space``) the synthetic objective scores."""
    import fnas

    if "synth" not in _SPACES:
        _SPACES["synth"] = fnas.make_space("legacysynth", SYNTH_DECISIONS)
    return _SPACES["synth"]


TINY_OPS = {"conv": ("cn", 1.0), "dwconv": ("ds", 1.0), "mbconv3": ("ir", 3.0)}


def tiny_space(input_size: int = 8) -> Any:
    """A small block-string space the proxy task trains (``SearchConfig(space=
    "make_legacy:tiny_space")``, so ``fnas search --resume`` finds it): a stem, two searched
    blocks of 8 to 16 channels and a 32-channel head. The MnasNet space's blocks would make
    megabytes of pool files; these make kilobytes."""
    import fnas
    from fnas.space.spec import ArchSpec, BlockSpec

    def decode(c: Any) -> Any:
        blocks = [BlockSpec("cn", 1, 3, 1, 8)]
        for i, stride in enumerate((1, 2)):
            op, exp = TINY_OPS[c[f"b{i}_op"]]
            blocks.append(BlockSpec(op, c[f"b{i}_layers"], c[f"b{i}_kernel"], stride,
                                    c[f"b{i}_filters"], exp=exp, se=c[f"b{i}_se"]))
        blocks.append(BlockSpec("cn", 1, 1, 1, 32))
        return ArchSpec(tuple(blocks))

    if "tiny" not in _SPACES:
        decisions = {}
        for i, filters in enumerate(((8, 12), (12, 16))):
            decisions.update({f"b{i}_op": list(TINY_OPS), f"b{i}_kernel": [3, 5],
                              f"b{i}_se": [0.0, 0.25], f"b{i}_filters": list(filters),
                              f"b{i}_layers": [1, 2]})
        _SPACES["tiny"] = fnas.make_space("legacytiny", decisions, decode=decode)
    return _SPACES["tiny"]


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


def open_search(name: str, folder: Path, resuming: bool = False) -> Any:
    """Case ``name``'s search in the store at ``folder``. ``resuming``: the stored run, opened
    with only what a store cannot hold (the objective and its space, version tag and
    ``catch``), so that every setting comes from the stored config."""
    import fnas

    case = CASES[name]
    kw = {} if resuming else dict(strategy=case["strategy"], budget=case.get("budget", 16),
                                  batch=case.get("batch", 4), seed=0,
                                  **case.get("settings", {}))
    if case.get("real"):
        return fnas.create_search(store=str(folder), name="run",
                                  space="make_legacy:tiny_space", load_if_exists=True, **kw)
    return fnas.create_search(store=str(folder), name="run", space=synth_space(),
                              objective=synth_metrics, version=VERSION, catch=(ValueError,),
                              load_if_exists=True, **kw)


def start(name: str, folder: Path) -> None:
    """Run case ``name`` in a new store at ``folder`` and stop it partway."""
    how, n = CASES[name]["stop"]
    s = open_search(name, folder)
    try:
        if how == "stop_after":
            s.optimize(progress=False, stop_after=n)
        else:  # Ctrl-C after the n-th evaluation, as a user would press it
            seen = [0]

            def press(evaluation: Any) -> None:
                seen[0] += 1
                if seen[0] == n:
                    raise KeyboardInterrupt

            try:
                s.optimize(progress=False, callbacks=[press])
            except KeyboardInterrupt:
                pass
        status = s.experiment.status
        if status not in ("stopped", "interrupted"):
            raise RuntimeError(f"{name}: the run was not stopped partway (status {status})")
    finally:
        s.store.close()


def resume(name: str, folder: Path, route: str, src: Path | None = None) -> None:
    """Resume case ``name``'s run in the store at ``folder`` to its budget, along ``route``
    (see ROUTES); ``cli`` runs ``python -m fnas`` with ``src`` (default: the source tree of
    the fnas imported here) first on PYTHONPATH, then this folder (the run's space is
    ``make_legacy:tiny_space``)."""
    if route == "create_search":
        s = open_search(name, folder, resuming=True)
        try:
            s.optimize(progress=False)
        finally:
            s.store.close()
    elif route == "resume_search":
        from fnas.knowledge import Store
        from fnas.search import resume_search

        st = Store(folder)
        try:
            resume_search(st, "run", progress=False)
        finally:
            st.close()
    elif route == "cli":
        import fnas

        src = src or Path(fnas.__file__).resolve().parents[1]
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",  # and HERE:
               "PYTHONPATH": os.pathsep.join([str(src), str(HERE), *([path] if path else [])])}
        p = subprocess.run([sys.executable, "-m", "fnas", "search", "--store", str(folder),
                            "--resume", "run", "--no-progress"], cwd=folder.parent, env=env,
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"fnas search --resume exited {p.returncode}: "
                               f"{(p.stderr or p.stdout).strip()[-800:]}")
    else:
        raise ValueError(f"unknown route {route!r}: expected one of create_search, "
                         "resume_search, cli")


def _canon(v: Any) -> Any:
    """A JSON value that compares exactly: floats as ``repr`` strings, tuples as lists."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dict):
        return {str(k): _canon(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    return v


def _timelike(key: str) -> bool:
    k = key.lower()
    return "seconds" in k or "_ms" in k or "time" in k or k in ("created", "updated")


def record(folder: Path) -> dict[str, Any]:
    """What the run in the store at ``folder`` recorded, without wall-clock values."""
    from fnas.knowledge import Store

    st = Store(folder)
    try:
        exp = st.get_experiment("run")
        skip = ("created", "train_seconds", "id", "experiment_id")
        evals = [_canon({f.name: getattr(ev, f.name) for f in dataclasses.fields(ev)
                         if f.name not in skip}) for ev in st.evaluations(exp.id)]
        updates = [_canon({k: v for k, v in u.items() if not _timelike(k)})
                   for u in st.updates(exp.id)]
        return {"status": exp.status, "stop_reason": exp.stats.get("stop_reason"),
                "evaluations": evals, "updates": updates}
    finally:
        st.close()


def _src_commit(src: Path) -> str:
    p = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def _resume_in_new_process(name: str, folder: Path, route: str, src: Path) -> dict[str, Any]:
    """Resume a copy of the store in a fresh process of the fnas at ``src``; its record."""
    with tempfile.TemporaryDirectory(prefix="fnas-legacy-") as tmp:
        work = Path(tmp) / name
        shutil.copytree(folder, work)
        env = {**os.environ, "PYTHONPATH": str(src)}
        subprocess.run([sys.executable, __file__, "--src", str(src), "resume", name,
                        str(work), route], env=env, check=True, timeout=600)
        return record(work)


def make(out: Path, src: Path) -> dict[str, Any]:
    """Write ``out/stores/CASE`` for every case and ``out/expected.json``; the expected."""
    stores = out / "stores"
    shutil.rmtree(stores, ignore_errors=True)
    stores.mkdir(parents=True)
    cases: dict[str, Any] = {}
    for name in CASES:
        start(name, stores / name)
        print(f"{name}: stopped with {len(record(stores / name)['evaluations'])} evaluations",
              file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="fnas-legacy-") as tmp:
            start_over = Path(tmp) / name  # the same run left alone, for a sanity check
            s = open_search(name, start_over)
            try:
                s.optimize(progress=False)
            finally:
                s.store.close()
            whole = record(start_over)
        recs = {route: _resume_in_new_process(name, stores / name, route, src)
                for route in ROUTES[name]}
        for route, rec in recs.items():
            if rec["evaluations"] != whole["evaluations"] or rec["updates"] != whole["updates"]:
                raise RuntimeError(f"{name}: resumed along {route}, the old code's records "
                                   "differ from the run left alone: it is not deterministic")
        first = next(iter(recs.values()))
        if any(rec != first for rec in recs.values()):
            raise RuntimeError(f"{name}: the routes {ROUTES[name]} record different runs")
        cases[name] = first
    for leftover in stores.rglob("*"):  # a lease or a WAL left open would be stale state
        if leftover.name.endswith(("-wal", "-shm", ".lock", ".tmp")):
            raise RuntimeError(f"{leftover} was left behind: close the store before copying")
    expected = {"format": FORMAT, "made_by": f"fnas at {_src_commit(src)}", "cases": cases}
    (out / "expected.json").write_text(json.dumps(expected, sort_keys=True, indent=1) + "\n")
    return expected


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=HERE.parents[2] / "src",
                    help="the source tree to import fnas from (default: this checkout's)")
    ap.add_argument("--out", type=Path, default=HERE, help="where to write (default: here)")
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("resume", help="(internal) resume one store along one route")
    r.add_argument("case", choices=sorted(CASES))
    r.add_argument("folder", type=Path)
    r.add_argument("route", choices=("create_search", "resume_search", "cli"))
    args = ap.parse_args(argv)
    src = args.src.expanduser().resolve()
    import torch

    import fnas

    torch.set_num_threads(1)
    if Path(fnas.__file__).resolve().parent != src / "fnas":
        raise SystemExit(f"fnas was imported from {fnas.__file__}, not from {src}: run with "
                         f"PYTHONPATH={src}")
    if args.cmd == "resume":
        resume(args.case, args.folder, args.route, src)
        return 0
    expected = make(args.out, src)
    print(f"wrote {args.out / 'expected.json'} ({len(expected['cases'])} cases, "
          f"{expected['made_by']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ["OMP_NUM_THREADS"] = "1"  # before torch loads: bit-exact results need one
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    _pre = argparse.ArgumentParser(add_help=False)
    _pre.add_argument("--src", type=Path, default=HERE.parents[2] / "src")
    # import fnas from --src, before anything imports it
    sys.path.insert(0, str(_pre.parse_known_args()[0].src.expanduser().resolve()))
    # the objective must be make_legacy.synth_metrics (the run's task signature names it), as
    # the test imports it, not __main__.synth_metrics
    _spec = importlib.util.spec_from_file_location("make_legacy", __file__)
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["make_legacy"] = _mod
    _spec.loader.exec_module(_mod)
    sys.exit(_mod.main())
