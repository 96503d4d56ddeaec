"""Hostile use: replays what a careless or hostile user tried (issue 18), counts what held.

What it does, each in fresh temporary folders, always through real ``fnas`` processes:

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
  is refused up front.

A hang is a process still running after ``--timeout`` seconds (killed, counted). The search used
everywhere is small but real: fnas (critic, pool, replay) on 300 digits images, 1 epoch,
budget 6, batch 2, no latency measurement.

    python benchmarks/hostile.py            # full: writes benchmarks/results/hostile.json
    python benchmarks/hostile.py --quick    # a subset, to /tmp/fnas-hostile.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"strategy": "fnas", "budget": 6, "batch": 2, "seed": 0,
          "task": {"dataset": "digits", "epochs": 1, "max_samples": 300, "batch_size": 32,
                   "latency_repeats": 0},
          "reward": {"metric": "macs", "target": 1e6}}


class Tally:
    """Counts of attempts and of everything that did not hold."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.attempts = 0
        self.by_category: dict[str, int] = {}
        self.tracebacks = self.wrong_exit = self.hangs = self.not_one_line = 0
        self.kills = self.kills_survived = 0
        self.lost = self.duplicated = self.mismatched = 0
        self.failures: list[str] = []
        self.skipped: list[str] = []

    def fail(self, what: str) -> None:
        self.failures.append(what[:300])
        print(f"  FAILED: {what[:300]}", flush=True)

    def run(self, category: str, args: list[str], expect: tuple[int, ...] = (2,),
            cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        """One ``fnas ARGS`` attempt, checked: exit status in ``expect``, one stderr line on
        a refusal, no traceback, no hang."""
        self.attempts += 1
        self.by_category[category] = self.by_category.get(category, 0) + 1
        try:
            p = subprocess.run([sys.executable, "-m", "fnas.cli", *args], capture_output=True,
                               text=True, timeout=self.timeout, cwd=cwd, env=env)
        except subprocess.TimeoutExpired:
            self.hangs += 1
            self.fail(f"{category}: hang: fnas {' '.join(args)[:200]}")
            return subprocess.CompletedProcess(args, -9, "", "")
        shown = " ".join(a.replace("\n", "\\n") for a in args)[:160]
        if "Traceback" in p.stderr:
            self.tracebacks += 1
            self.fail(f"{category}: traceback: fnas {shown}: {p.stderr.strip()[-200:]}")
        elif p.returncode not in expect:
            self.wrong_exit += 1
            self.fail(f"{category}: exit {p.returncode} (want {expect}): fnas {shown}: "
                      f"{p.stderr.strip()[-200:]}")
        elif p.returncode == 2 and len(p.stderr.strip().splitlines()) != 1:
            self.not_one_line += 1
            self.fail(f"{category}: {len(p.stderr.strip().splitlines())} stderr lines: "
                      f"fnas {shown}")
        return p


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
    t.lost += lost
    t.duplicated += dup
    t.mismatched += bad
    if lost or dup or bad:
        t.fail(f"{what}: {lost} lost, {dup} duplicated, {bad} differ from the uninterrupted run")
        return False
    return True


# ---- bad flags and configs --------------------------------------------------------------------

def bad_flags(t: Tally, work: Path, quick: bool) -> None:
    s = str(work / "never")
    cases = [
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
    if quick:
        cases = cases[::4]
    for args in cases:
        where = ["--store", s] if args[0] in ("search", "train", "runs", "show", "report",
                                              "pool") else []
        t.run("bad flags", [*args, *where], cwd=work)
        if Path(s).exists() or (work.parent / "escaped").exists():
            t.fail(f"bad flags: fnas {' '.join(args)[:80]} wrote files")
            shutil.rmtree(s, ignore_errors=True)


def bad_configs(t: Tally, work: Path, quick: bool) -> None:
    cases = [{"budjet": 3}, {"budget": -4}, {"budget": 1.5}, {"seed": -1}, {"seed": 2**70},
             {"fnas": {"imagined": -1}}, {"fnas": {"critic": "yes"}},
             {"task": {"image_size": 1000000}}, {"task": {"epochs": "2"}},
             {"task": {"device": "cuda"}}, {"task": {"batch_size": 1000000}},
             {"reward": {"metric": "nope"}}, {"replay_cfg": {"share": 2}}, {"rea": {"x": 1}},
             {"strategy": "rea", "replay": "on"}, [], "text", None, {"task": []}]
    raw = ["{", "\xff\xfe", "{" * 5000 + "}" * 5000, ""]
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
    sqls = ["UPDATE experiments SET config='{x'", "UPDATE experiments SET config='[]'",
            "UPDATE experiments SET config='{\"task\": 5}'", "UPDATE experiments SET stats='{'",
            "UPDATE experiments SET seed='abc'", "UPDATE experiments SET created=1e300",
            "UPDATE experiments SET name='h\n  9  fake  done'",
            "UPDATE evaluations SET decisions='[1,'", "UPDATE evaluations SET reward='x'",
            "UPDATE evaluations SET arch=NULL", "UPDATE updates SET metrics='nope'",
            "UPDATE pool_entries SET sha256='../../../etc/passwd'",
            "UPDATE meta SET value='99' WHERE key='schema_version'",
            "UPDATE meta SET value='x' WHERE key='schema_version'", "DROP TABLE evaluations"]
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
        elif proc.returncode != 2 or len(err.strip().splitlines()) != 1:
            t.wrong_exit += 1
            t.fail(f"full disk: exit {proc.returncode}: {err.strip()[-200:]}")
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
            "from fnas.search.executors import RayExecutor\n"
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


# ---- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a subset (a few minutes)")
    ap.add_argument("--out", default=None,
                    help="JSON path (benchmarks/results/hostile.json; quick: /tmp/...)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds after which a process counts as hung (300)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random damage (0)")
    ap.add_argument("--only", default=None, help="comma-separated section names (debugging)")
    args = ap.parse_args(argv)
    out = Path(args.out or ("/tmp/fnas-hostile.json" if args.quick
                            else ROOT / "benchmarks" / "results" / "hostile.json"))
    t = Tally(args.timeout)
    rng = random.Random(args.seed)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="fnas-hostile-") as tmp:
        work = Path(tmp)
        print("reference: an uninterrupted search", flush=True)
        base = work / "base"
        p = subprocess.run(_search_cmd(base, _write_config(work)), capture_output=True,
                           text=True, timeout=args.timeout)
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
                    ("full disk", lambda: full_disk(t, work, ref))]
        if not args.quick:
            sections.append(("ray", lambda: ray(t, work)))
        for label, fn in sections:
            if args.only and label not in args.only.split(","):
                continue
            n = t.attempts
            s = time.time()
            print(f"{label} ...", flush=True)
            fn()
            print(f"  {t.attempts - n} attempts, {time.time() - s:.0f} s", flush=True)
    result = {
        "mode": "quick" if args.quick else "full",
        "attempts": t.attempts, "by_category": t.by_category,
        "kills": t.kills, "kills_survived": t.kills_survived,
        "evaluations_lost": t.lost, "evaluations_duplicated": t.duplicated,
        "evaluations_differing": t.mismatched,
        "tracebacks": t.tracebacks, "wrong_exit_codes": t.wrong_exit, "hangs": t.hangs,
        "refusals_not_one_line": t.not_one_line,
        "failures": t.failures, "skipped": t.skipped,
        "still_open": t.failures + [f"not tried: {s}" for s in t.skipped],
        "seconds": round(time.time() - t0, 1),
        "search": CONFIG, "seed": args.seed, "timeout_s": args.timeout,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "user": "root" if os.geteuid() == 0 else "user",
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        "date": time.strftime("%Y-%m-%d"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("attempts", "kills", "kills_survived",
                                             "evaluations_lost", "evaluations_duplicated",
                                             "tracebacks", "wrong_exit_codes", "hangs")}))
    print(f"wrote {out}")
    return 0 if not t.failures else 1


if __name__ == "__main__":
    sys.exit(main())
