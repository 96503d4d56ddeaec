"""Issue 18: what a careless or hostile user tried, each as a test (Python API side).

Run names, architecture limits, seeds, checkpoints with a checksum, damaged rows, read-only
stores, leases, a full disk, custom evaluators. Real SQLite, real files; the CLI side is in
``test_hardening_cli.py``.
"""

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import fnas
from fnas.errors import ConfigError, FnasError, InvalidArchitecture, ModelError, StoreError
from fnas.execution.evaluators import Evaluator
from fnas.knowledge import Store
from fnas.knowledge.store import check_run_name
from fnas.search import SearchConfig, SyntheticEvaluator, resume_search, run_search
from fnas.search.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from fnas.search.config_io import search_config_from_dict
from fnas.space import ArchSpec, mnas_space
from fnas.tasks import RolloutResult, TaskConfig


def _sql(store, sql, *args):
    """Run ``sql`` on the store's database file from outside, as another program (or damage)
    would, through the store's public ``path``."""
    with contextlib.closing(sqlite3.connect(store.path, timeout=30, isolation_level=None)) as db:
        return db.execute(sql, args).fetchall()


SPACE = mnas_space(8)
TARGET = SPACE.encode(SPACE.decode(SPACE.sample(np.random.default_rng(5))))
CFG = SearchConfig(strategy="ppo", budget=6, batch=2, seed=3, knowledge="none", pool="off",
                   replay="off")


def _run(store, name="r", cfg=CFG, **kw):
    return run_search(store, cfg, name=name, evaluator=SyntheticEvaluator(SPACE, TARGET),
                      space=SPACE, progress=False, **kw)


def _rows(store, name):
    exp = store.get_experiment(name)
    return [(e.iteration, e.slot, e.arch_key, e.reward, e.status)
            for e in store.evaluations(exp.id)]


# ---- F1, F8, names ----------------------------------------------------------------------------

BAD_NAMES = ["../../escaped", "/abs/path", "a/b", "a\\b", "..", ".hidden", "-flag", "a..b",
             "1", "42", "x" * 101, "x" * 5000, "two\nlines", "tab\tname", "spa ce",
             "naïve", "a\x00b", "\u0661\u0662"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n[:12]))
def test_bad_run_names_are_refused_before_anything_is_written(tmp_path, name):
    store = Store(tmp_path / "s")
    with pytest.raises(StoreError) as e:
        _run(store, name)
    assert "\n" not in str(e.value) and "run name" in str(e.value)
    assert store.list_experiments() == []
    assert not (tmp_path / "s" / "runs").exists() and not (tmp_path / "escaped").exists()
    with pytest.raises(StoreError):
        store.create_experiment(name, "ppo", 0, "s", "t", {}, 4)
    with pytest.raises(StoreError, match="empty"):
        store.create_experiment("", "ppo", 0, "s", "t", {}, 4)


def test_good_run_names_and_a_forged_row_cannot_escape(tmp_path):
    for name in ("a", "ppo-digits-s0-20240101-101010", "x.y_z-1", "1a", "A" * 100):
        assert check_run_name(name) == name
    store = Store(tmp_path / "s")
    exp = store.create_experiment("ok", "ppo", 0, "s", "t", {}, 4)
    _sql(store, "UPDATE experiments SET name='../../../escaped' WHERE id=?", exp.id)
    with pytest.raises(StoreError, match="cannot name a folder"):
        store.run_dir(store.get_experiment(exp.id).name)


# ---- F4, F10, F12, unicode digits ------------------------------------------------------------

@pytest.mark.parametrize("text, needle", [
    ("ir_r999999999_k3_s1_e6_c24", "layers must be 1..32"),
    ("ir_r33_k3_s1_e6_c24", "layers must be 1..32"),
    ("ir_r1_k17_s1_e6_c24", "kernel must be <= 15"),
    ("ir_r1_k3_s1_e6_c4097", "channels must be 1..4096"),
    ("ir_r1_k3_s1_e17_c24", "expansion"),
    (" | ".join(["cn_r1_k3_s1_c8"] * 65), "at most 64"),
    (" | ".join(["cn_r32_k3_s1_c8"] * 9), "at most 256"),
    ("ir_r1_k3_s1_e6_c\u0662\u0664", "unknown option"),  # Arabic-Indic digits
    ("ir_r\uff11_k3_s1_e6_c24", "unknown option"),  # a full-width digit
    ("cn_r1_k3_s1_c8 | " * 3000 + "cn_r1_k3_s1_c8", "characters"),
], ids=lambda v: v[:24] if isinstance(v, str) else None)
def test_architecture_limits_refuse_fast(text, needle):
    t = time.perf_counter()
    with pytest.raises(InvalidArchitecture, match=needle):
        ArchSpec.parse(text)
    assert time.perf_counter() - t < 1.0


def test_build_refuses_sizes_past_the_limits_before_allocating():
    spec = ArchSpec.parse(" | ".join(["ir_r32_k15_s1_e16_c4096"] * 8))  # within each limit
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="parameters"):
        fnas.build(spec, num_classes=10, input_size=32)
    with pytest.raises(ConfigError, match="input_size"):
        fnas.build("cn_r1_k3_s1_c8", input_size=1_000_000)
    with pytest.raises(ConfigError, match="num_classes"):
        fnas.build("cn_r1_k3_s1_c8", num_classes=10**9)
    assert time.perf_counter() - t < 2.0
    with pytest.raises(ConfigError, match="image_size"):
        TaskConfig(image_size=1_000_000)
    with pytest.raises(ConfigError, match="image_size"):
        search_config_from_dict({"task": {"image_size": 1_000_000}})


def _forged_model_file(path, arch, **over):
    """A ~1 KB model file whose metadata names ``arch``, its sha256 correct for no tensors."""
    from safetensors.torch import save_file

    from fnas.nn.weights import FORMAT

    info = {"arch": arch, "key": "0" * 16, "in_chans": 1, "num_classes": 10, "input_size": 8,
            "sha256": "", "format": FORMAT, **over}
    save_file({}, str(path), metadata={"fnas": json.dumps(info)})


def test_a_tiny_model_file_naming_a_huge_network_is_refused_fast(tmp_path):
    p = tmp_path / "m.safetensors"
    cases = [("ir_r100000_k3_s1_e6_c24", {}, "layers must be"),
             (" | ".join(["ir_r32_k15_s1_e16_c4096"] * 8), {}, "parameters"),
             ("cn_r1_k3_s1_c8", {"input_size": 10**6}, "input_size"),
             ("cn_r1_k3_s1_c8", {"num_classes": 10**9}, "num_classes")]
    for arch, over, needle in cases:
        _forged_model_file(p, arch, **over)
        assert p.stat().st_size < 4096
        t = time.perf_counter()
        with pytest.raises(ModelError, match=needle):
            fnas.load(p)
        assert time.perf_counter() - t < 2.0


# ---- F9 and config values ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [-1, 2**32, 2**70, True, 1.5])
def test_seeds_are_range_checked(seed):
    with pytest.raises(ConfigError, match="seed"):
        SearchConfig(seed=seed)
    with pytest.raises(ConfigError):
        search_config_from_dict({"seed": seed})


def test_config_imagined_must_be_non_negative_as_the_flag():
    for bad in (-1, "4", 2.5, True):
        with pytest.raises(ConfigError, match="imagined"):
            search_config_from_dict({"fnas": {"imagined": bad}})
    assert search_config_from_dict({"fnas": {"imagined": 0}}).fnas.n_imagined == 0


# ---- F3, F7: checkpoints -----------------------------------------------------------------------

def _stopped_run(tmp_path, name="r"):
    store = Store(tmp_path / "s")
    _run(store, name, stop_after=1)
    _sql(store, "UPDATE experiments SET status='running' WHERE name=?", name)  # a kill
    return store


def _flip(path, offset_from_end=20):
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x55
    path.write_bytes(bytes(data))


def test_a_flipped_checkpoint_byte_is_refused_and_nothing_is_recorded(tmp_path):
    store = _stopped_run(tmp_path)
    ckpt = store.run_dir("r") / CHECKPOINT_NAME
    assert json.loads((ckpt.parent / "checkpoint.json").read_text())["sha256"]
    before = _rows(store, "r")
    _flip(ckpt)  # inside the last tensor's bytes: safetensors itself cannot tell
    with pytest.raises(StoreError, match="sha256") as e:
        resume_search(store, "r", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                      progress=False)
    assert "\n" not in str(e.value)
    assert _rows(store, "r") == before
    assert store.get_experiment("r").status == "interrupted"
    ckpt.unlink()  # as the message says: the run restarts from its recorded evaluations
    (ckpt.parent / "checkpoint.json").unlink()
    out = resume_search(store, "r", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                        progress=False)
    assert out.experiment.status == "done"


def test_a_valid_checkpoint_with_the_wrong_content_is_one_line(tmp_path):
    store = _stopped_run(tmp_path, "a")
    _run(store, "b", stop_after=1)  # same settings: only the run id tells them apart
    rea = run_search(store, SearchConfig(strategy="rea", budget=6, batch=2, knowledge="none"),
                     name="c", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                     progress=False, stop_after=1)
    ev = SyntheticEvaluator(SPACE, TARGET)
    before = _rows(store, "a")
    src = store.run_dir("b") / CHECKPOINT_NAME  # another run's checkpoint copied over
    (store.run_dir("a") / CHECKPOINT_NAME).write_bytes(src.read_bytes())
    with pytest.raises(StoreError, match="loop.experiment") as e:
        resume_search(store, "a", evaluator=ev, space=SPACE, progress=False)
    assert "run 'a'" in str(e.value) and "\n" not in str(e.value)
    tensors, meta = load_checkpoint(store.run_dir(rea.experiment.name))  # REA's state
    meta["loop"]["experiment"] = store.get_experiment("a").id
    save_checkpoint(store.run_dir("a"), tensors, meta)
    with pytest.raises(StoreError, match="field 'strategy'") as e:
        resume_search(store, "a", evaluator=ev, space=SPACE, progress=False)
    assert "run 'a'" in str(e.value) and "\n" not in str(e.value)
    tensors, meta = load_checkpoint(store.run_dir("b"))
    meta["loop"] = {"iteration": "3"}
    save_checkpoint(store.run_dir("a"), tensors, meta)
    with pytest.raises(StoreError, match="loop.iteration"):
        resume_search(store, "a", evaluator=ev, space=SPACE, progress=False)
    assert _rows(store, "a") == before


# ---- F6: damaged rows --------------------------------------------------------------------------

@pytest.mark.parametrize("sql, needle", [
    ("UPDATE experiments SET config='{x'", "'config'"),
    ("UPDATE experiments SET config='[1]'", "'config'"),
    ("UPDATE experiments SET config='{\"reward\": 5}'", "config.reward"),
    ("UPDATE experiments SET config='{\"batch\": \"8\"}'", "config.batch"),
    ("UPDATE experiments SET stats='nope'", "'stats'"),
    ("UPDATE experiments SET seed='abc'", "'seed'"),
    ("UPDATE evaluations SET decisions='[1,' WHERE id=1", "'decisions'"),
    ("UPDATE evaluations SET reward='high' WHERE id=1", "'reward'"),
    ("UPDATE evaluations SET arch_key=X'0102' WHERE id=1", "'arch_key'"),
    ("UPDATE updates SET metrics='{'", "'metrics'"),
])
def test_damaged_rows_are_one_store_error_naming_the_run_and_field(tmp_path, sql, needle):
    store = _stopped_run(tmp_path)
    _sql(store, sql)
    with pytest.raises(StoreError, match=needle) as e:
        exp = store.get_experiment("r")
        store.summary(exp.id)  # fnas runs
        store.evaluations(exp.id)
        store.top(exp.id)
        store.updates(exp.id)
    assert "\n" not in str(e.value) and ("run 'r'" in str(e.value) or "run id" in str(e.value))


# ---- F15, the 0-byte file ----------------------------------------------------------------------

def test_readers_open_read_only_and_never_migrate(tmp_path):
    store = _stopped_run(tmp_path)
    _sql(store, "UPDATE meta SET value='3' WHERE key='schema_version'")
    store.close()
    db = tmp_path / "s" / "fnas.db"
    before = db.read_bytes()
    with Store(tmp_path / "s", readonly=True) as ro:
        assert ro.list_experiments()[0].name == "r"
        with pytest.raises(StoreError, match="readonly|read-only"):
            ro.update_experiment(1, status="x")
    assert db.read_bytes() == before  # no migration, no write
    w = sqlite3.connect(db)
    w.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    w.commit()
    w.close()
    for ro in (True, False):
        with pytest.raises(StoreError, match="schema v99"):
            Store(tmp_path / "s", readonly=ro)


def test_an_empty_database_file_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "fnas.db").write_bytes(b"")
    for kw in ({}, {"create": False}, {"readonly": True}):
        with pytest.raises(StoreError, match="empty"):
            Store(tmp_path / "s", **kw)
    assert (tmp_path / "s" / "fnas.db").stat().st_size == 0


# ---- F13: no phantom run -----------------------------------------------------------------------

def test_a_refused_search_leaves_no_run(tmp_path):
    store = Store(tmp_path / "s")
    for cfg, err in ((SearchConfig(budget=4, batch=2, knowledge="nosuchrun"), StoreError),
                     (SearchConfig(budget=4, batch=2, task=TaskConfig(device="cuda:7")),
                      ConfigError)):
        if err is ConfigError and torch.cuda.device_count() > 7:
            continue
        with pytest.raises(err):
            run_search(store, cfg, name="x", evaluator=SyntheticEvaluator(SPACE, TARGET),
                       space=SPACE, progress=False)
    assert store.list_experiments() == []


# ---- F14: leases -------------------------------------------------------------------------------

def test_a_second_resume_of_a_live_run_is_refused_and_a_dead_lease_is_taken(tmp_path):
    store = _stopped_run(tmp_path)
    exp = store.get_experiment("r")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from fnas.knowledge import Store\n"
         f"s = Store({str(tmp_path / 's')!r}); s.acquire_lease({exp.id}, 'r')\n"
         "print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert store.get_experiment("r").status == "running"  # a live process holds it
        ev = SyntheticEvaluator(SPACE, TARGET)
        with pytest.raises(StoreError, match=f"pid {holder.pid}") as e:
            resume_search(store, "r", evaluator=ev, space=SPACE, progress=False)
        assert "\n" not in str(e.value)
    finally:
        holder.kill()
        holder.wait()
    # its owner died (kill -9): the run reads interrupted, and its lease is taken over at once
    assert store.get_experiment("r").status == "interrupted"
    assert [e.status for e in store.list_experiments()] == ["interrupted"]
    out = resume_search(store, "r", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                        progress=False)
    assert out.experiment.status == "done"
    # another host's lease: live while it beats, taken over once its heartbeat is stale
    _sql(store, "INSERT OR REPLACE INTO leases VALUES (?, 'x', 'elsewhere', 1, ?)", exp.id,
         time.time())
    with pytest.raises(StoreError, match="on elsewhere"):
        store.acquire_lease(exp.id, "r")
    _sql(store, "UPDATE leases SET heartbeat=?", time.time() - 3600)
    store.acquire_lease(exp.id, "r")
    store.release_lease(exp.id)
    assert _sql(store, "SELECT COUNT(*) FROM leases") == [(0,)]


# ---- F5: a full disk ---------------------------------------------------------------------------

@pytest.mark.slow
def test_a_full_disk_is_one_line_the_run_interrupted_and_resume_exact(tmp_path):
    ref = Store(tmp_path / "ref")
    _run(ref, "r")
    store = Store(tmp_path / "s")
    _run(store, "r", stop_after=1)
    # internal on purpose: the limit is per connection, so it must be the store's own
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own 'disk is full'
    with pytest.raises(StoreError, match="full") as e:
        resume_search(store, "r", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                      progress=False)
    assert "\n" not in str(e.value)
    assert store.get_experiment("r").status == "interrupted"
    store._db.execute("PRAGMA max_page_count=1073741823")  # space freed
    resume_search(store, "r", evaluator=SyntheticEvaluator(SPACE, TARGET), space=SPACE,
                  progress=False)
    assert _rows(store, "r") == _rows(ref, "r")  # nothing lost, nothing duplicated


# ---- custom evaluators -------------------------------------------------------------------------

class RewardOnly(Evaluator):
    """A custom task that fills only ``reward`` (no accuracy to re-score from)."""

    def __init__(self, signature="custom-a"):
        self.signature = signature

    def evaluate(self, spec, seed):
        r = float(int(spec.key[:4], 16) % 97) / 97.0
        return RolloutResult(spec.to_str(), spec.key, "ok", "", r)


def test_custom_evaluators_need_a_signature_and_keep_their_rewards(tmp_path):
    store = Store(tmp_path / "s")
    cfg = SearchConfig(strategy="random", budget=6, batch=2, knowledge="none")
    with pytest.raises(ConfigError, match="empty signature"):
        run_search(store, cfg, name="x", evaluator=RewardOnly(""), space=SPACE,
                   progress=False)
    assert store.list_experiments() == []
    run_search(store, cfg, name="a", evaluator=RewardOnly(), space=SPACE, progress=False)
    run_search(store, cfg, name="b", evaluator=RewardOnly(), space=SPACE, progress=False)
    b = store.evaluations(store.get_experiment("b").id)
    assert all(e.cached for e in b)  # the same seed samples the same architectures
    assert [e.reward for e in b] == [e.reward for e in
                                     store.evaluations(store.get_experiment("a").id)]
    assert any(e.reward > 0 for e in b)


# ---- Also: Ray binds to the loopback interface; CUDA without a GPU ----------------------------

def _listening(pids):
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if any(f"pid={p}," in line for p in pids)]


def _descendants(pid):
    kids, frontier = set(), {pid}
    while frontier:
        nxt = set()
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid in frontier and int(d) not in kids:
                    nxt.add(int(d))
        kids |= nxt
        frontier = nxt
    return kids | {pid}


@pytest.mark.skipif(not os.path.exists("/proc") or subprocess.run(
    ["which", "ss"], capture_output=True).returncode != 0, reason="needs Linux and ss")
@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_local_ray_listens_on_loopback_only_and_refuses_cuda_without_gpus(local_ray):
    ray = local_ray  # started by RayExecutor, as a search starts it (conftest)
    from fnas.execution.executors import RayExecutor

    ex = RayExecutor(parallel=2)
    try:
        @ray.remote
        def ping():
            return socket.gethostname()

        ray.get([ping.remote() for _ in range(2)])  # workers up, listening
        lines = _listening(_descendants(os.getpid()))
        assert lines, "found no Ray process listening"
        local = ("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")
        for line in lines:
            addr = line.split()[3]
            assert addr.startswith(local), f"listens beyond loopback: {line}"
        assert ex.gpus_per_rollout("cpu") == 0.0
        if not ray.cluster_resources().get("GPU"):
            with pytest.raises(ConfigError, match="no GPU"):
                ex.check_device("cuda")
    finally:
        ex.close()


def test_errors_are_fnas_errors():
    assert issubclass(StoreError, FnasError) and issubclass(ModelError, FnasError)


# ---- minor: pool stats, the export check -------------------------------------------------------

def test_pool_stats_counts_corrupted_files(tmp_path):
    from fnas.knowledge import Pool, pool_stats
    from fnas.nn import build_model

    store = Store(tmp_path / "s")
    spec = SPACE.decode(SPACE.sample(np.random.default_rng(1)))
    with Pool(store, SPACE.signature) as pool:
        pool.add(spec, build_model(spec, 1, 10).state_dict(), task="t", epochs=1)
    files = sorted((tmp_path / "s" / "pool").rglob("*.safetensors"))
    _flip(files[0])
    files[1].unlink()
    st = pool_stats(store)
    assert (st.missing, st.corrupted, st.files) == (1, 1, len(spec.blocks))
    store.close()
    with Store(tmp_path / "s", readonly=True) as ro:  # and read-only, as fnas pool stats does
        assert pool_stats(ro).corrupted == 1


def test_export_check_is_relative_plus_absolute_like_assert_close():
    from fnas.nn.export import compare_outputs

    want = torch.tensor([[12.0, -8.0, 0.5], [3.0, 0.0, -20.0]])
    assert compare_outputs(want + 2.6e-4, want).ok  # the trained model's 0.000259 on logits ~10
    assert not compare_outputs(want + 0.05, want).ok  # a real export bug
    small = torch.tensor([[1e-3, -2e-3]])
    assert compare_outputs(small + 5e-5, small).ok and not compare_outputs(small + 1e-3, small).ok
    assert not compare_outputs(want + float("nan"), want).ok


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1:6379", True), ("ray://127.0.0.1:10001", True), ("localhost:6379", True),
    ("[::1]:6379", True), ("127.8.0.2:6379", True), ("10.0.0.7:6379", False),
    ("ray://head.example:10001", False), ("auto", False), (None, False)])
def test_a_loopback_address_is_joined_as_a_local_ray(address, loopback):
    """A driver joining a Ray at a loopback address keeps that address and uses the local
    token (``test_ray_resume``'s drivers join the session's Ray so, from a clean environment);
    any other address is left to Ray's own rules."""
    from fnas.execution.ray_net import _is_loopback

    assert _is_loopback(address) is loopback
