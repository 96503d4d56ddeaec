"""Fuzzing the inputs a user writes: architecture strings and search configs (hypothesis).

No input may raise anything but the project's own errors (``FnasError``); a config file that
is loaded fine must be a valid ``SearchConfig``; the CLI answers a bad one in one line.
"""

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fnas.agent.buffer import ReplayConfig
from fnas.errors import ConfigError, FnasError
from fnas.search import SearchConfig
from fnas.search.config_io import load_config, search_config_from_dict
from fnas.space import ArchSpec

from fast import cli_in_process

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# Tokens of real block strings, so that the fuzzer reaches past the first token.
TOKENS = ["ir", "ds", "cn", "r1", "r3", "r0", "r-1", "k3", "k5", "k4", "k99", "s1", "s2", "s0",
          "e1", "e3", "e6", "e0", "c16", "c0", "c-3", "c99999999999", "se0.25", "se2", "sex",
          "noskip", "skip", "poolskip", "hs", "relu", "", "_", "|", "x", "1e9", "nan"]
block = st.lists(st.sampled_from(TOKENS), min_size=0, max_size=9).map("_".join)
arch_text = st.one_of(st.text(max_size=80),
                      st.lists(block, min_size=0, max_size=10).map(" | ".join))


@FUZZ
@given(arch_text)
def test_architecture_parser_raises_only_its_own_errors(text):
    try:
        spec = ArchSpec.parse(text)
    except FnasError as e:
        assert "\n" not in str(e).strip()
        return
    assert ArchSpec.parse(spec.to_str()) == spec  # whatever parses round-trips


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_value = st.recursive(json_leaf, lambda c: st.one_of(
    st.lists(c, max_size=3), st.dictionaries(st.text(max_size=8), c, max_size=3)), max_leaves=8)
FIELDS = list(SearchConfig.__dataclass_fields__)
SUB = {"task": ["dataset", "epochs", "batch_size", "lr", "max_samples", "device", "bogus"],
       "reward": ["metric", "target", "mode", "failure_reward"],
       "ppo": ["lr", "hidden", "clip_coef", "update_epochs"],
       "fnas": ["critic", "imagined", "decision", "critic_cfg", "nope"],
       "replay_cfg": ["share", "capacity", "sampling", "correction", "c_max"],
       "rea": ["population", "sample_size"]}
plausible = {"strategy": st.sampled_from(["fnas", "ppo", "rea", "random", "x"]),
             "space": st.sampled_from(["mnas", "macro", "y"]),
             "budget": st.integers(-2, 100), "batch": st.integers(-1, 16),
             "replay": st.sampled_from(["auto", "on", "off", 1]),
             "pool": st.sampled_from(["auto", "on", "off", None])}
config_dict = st.fixed_dictionaries({}, optional={
    **{f: plausible.get(f, json_value) for f in FIELDS if f not in SUB},
    **{f: st.one_of(json_value, st.dictionaries(st.sampled_from(keys), json_value, max_size=4))
       for f, keys in SUB.items()},
})


@FUZZ
@given(st.one_of(config_dict, json_value))
def test_config_loader_raises_only_config_errors(d):
    try:
        cfg = search_config_from_dict(d)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(cfg, SearchConfig)
    assert search_config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([".json", ".toml"]))
def test_config_files_of_random_bytes_are_refused_cleanly(tmp_path_factory, raw, suffix):
    p = tmp_path_factory.mktemp("cfg") / f"c{suffix}"
    p.write_bytes(raw)
    try:
        load_config(p)
    except ConfigError:
        pass


def test_config_file_round_trip_and_typos(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"strategy": "ppo", "budget": 12, "task": {"epochs": 2},
                             "replay": "on", "replay_cfg": {"share": 0.25}}))
    cfg = load_config(p)
    assert (cfg.strategy, cfg.budget, cfg.task.epochs, cfg.replay_cfg) == \
        ("ppo", 12, 2, ReplayConfig(share=0.25))
    for bad, needle in (({"budjet": 3}, "budjet"), ({"task": {"epochs": "2"}}, "epochs"),
                        ({"budget": 1.5}, "budget"), ({"fnas": {"imagine": 2}}, "imagine"),
                        ({"rea": {"pop": 3}}, "pop")):
        p.write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=needle):
            load_config(p)
    if sys.version_info >= (3, 11):
        t = tmp_path / "c.toml"
        t.write_text('strategy = "rea"\nbudget = 8\n[task]\nepochs = 1\n')
        assert load_config(t).task.epochs == 1


@pytest.mark.slow
def test_cli_config_file_bad_and_overridden(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"budget": -4}')
    code, _, err = cli_in_process(capsys, "search", "--config", bad, "--store", tmp_path / "s")
    assert code == 2 and err.count("\n") == 1 and "budget" in err
    assert not (tmp_path / "s").exists()  # a bad config touches nothing
    code, _, err = cli_in_process(capsys, "search", "--resume", "r", "--store",
                                  tmp_path / "none")
    assert code == 2 and "no fnas store" in err and not (tmp_path / "none").exists()
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"strategy": "random", "budget": 2, "batch": 2,
                                "task": {"epochs": 1, "latency_repeats": 0,
                                         "max_samples": 100, "batch_size": 32},
                                "reward": {"metric": "macs", "target": 1e6}}))
    p = subprocess.run([sys.executable, "-m", "fnas.cli", "search", "--config", str(good),
                        "--budget", "3", "--store", str(tmp_path / "s"), "--no-progress",
                        "--name", "c"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([sys.executable, "-m", "fnas.cli", "show", "c", "--json", "--store",
                        str(tmp_path / "s")], capture_output=True, text=True)
    out = json.loads(p.stdout)
    assert out["budget"] == 3 and out["config"]["reward"]["target"] == 1e6  # flag > file
    assert out["config"]["task"]["epochs"] == 1 and out["strategy"] == "random"


# ---- the store, checkpoints, pool files and model files, damaged at random ------------------
# Byte flips and truncations of real files; whatever the damage, the readers raise fnas's own
# errors (or read on), and every case runs under a time limit (SIGALRM): nothing may hang.

import contextlib  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fast import FAST_PPO  # noqa: E402

FILE_FUZZ = settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
CASE_SECONDS = 60  # a hang, not a slow case on a loaded 2-core machine (20 s tripped there)


@contextlib.contextmanager
def time_limit(seconds=CASE_SECONDS):
    def stop(signum, frame):
        raise TimeoutError(f"a fuzz case ran past {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def real_store(tmp_path_factory):
    """A store with a checkpointed, stopped run, a pool of two architectures and a model file."""
    from fnas.knowledge import Pool, Store
    from fnas.nn import build_model
    from fnas.nn.weights import ModelInfo, save_model
    from fnas.search import SyntheticEvaluator, run_search
    from fnas.space import mnas_space

    space = mnas_space(8)
    target = space.encode(space.decode(space.sample(np.random.default_rng(5))))
    root = tmp_path_factory.mktemp("fuzz") / "s"
    with Store(root) as store:
        # 2 PPO epochs an update (FAST_PPO): each case resumes it for a batch
        run_search(store, SearchConfig(strategy="ppo", budget=6, batch=2, knowledge="none",
                                       ppo=FAST_PPO),
                   name="r", evaluator=SyntheticEvaluator(space, target), space=space,
                   progress=False, stop_after=1)
        with Pool(store, space.signature) as pool:
            for seed in (1, 2):
                spec = space.decode(space.sample(np.random.default_rng(seed)))
                torch.manual_seed(seed)
                pool.add(spec, build_model(spec, 1, 10).state_dict(), task="t", epochs=1)
    spec = space.decode(space.sample(np.random.default_rng(3)))
    model = build_model(spec, 1, 10, 8)
    save_model(root.parent / "m.safetensors", model, ModelInfo(spec.to_str(), spec.key, 1, 10, 8))
    return root, space, target


def _damage(data: bytes, flips, cut) -> bytes:
    b = bytearray(data)
    for pos, val in flips:
        if b:
            b[pos % len(b)] ^= val or 1
    if cut is not None:
        b = b[:cut % (len(b) + 1)]
    return bytes(b)


damage = st.tuples(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)),
                            min_size=0, max_size=8),
                   st.one_of(st.none(), st.integers(0, 2**31)))


def _read_everything(root, space, target):
    """What the readers and a resume do with a store: fnas's errors only."""
    from fnas.knowledge import Pool, Store, pool_stats
    from fnas.search import SyntheticEvaluator, resume_search

    with Store(root, readonly=True) as store:
        for e in store.list_experiments():
            store.evaluations(e.id)
            store.top(e.id)
            store.summary(e.id)
            store.updates(e.id)
        pool_stats(store)
    with Store(root) as store:
        with Pool(store, space.signature) as pool:
            snap = pool.snapshot()
            with warnings_ignored():
                for e in snap.entries:
                    snap.load(e)
        resume_search(store, "r", evaluator=SyntheticEvaluator(space, target), space=space,
                      progress=False, stop_after=1)


@contextlib.contextmanager
def warnings_ignored():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@FILE_FUZZ
@given(st.sampled_from(["db", "checkpoint", "pool"]), damage)
@pytest.mark.slow
def test_damaged_store_files_give_only_fnas_errors(real_store, tmp_path_factory, which, dmg):
    root, space, target = real_store
    work = tmp_path_factory.mktemp("case") / "s"
    shutil.copytree(root, work)
    if which == "db":
        victim = work / "fnas.db"
    elif which == "checkpoint":
        victim = work / "runs" / "r" / "checkpoint.safetensors"
    else:
        victim = sorted((work / "pool").rglob("*.safetensors"))[0]
    victim.write_bytes(_damage(victim.read_bytes(), *dmg))
    with time_limit():
        try:
            _read_everything(work, space, target)
        except FnasError as e:
            assert str(e) and "\n" not in str(e).strip()


@FILE_FUZZ
@given(damage)
def test_damaged_model_files_give_only_model_errors(real_store, tmp_path_factory, dmg):
    import fnas
    from fnas.errors import ModelError

    root, _, _ = real_store
    p = tmp_path_factory.mktemp("m") / "m.safetensors"
    p.write_bytes(_damage((root.parent / "m.safetensors").read_bytes(), *dmg))
    with time_limit():
        try:
            fnas.load(p)
        except ModelError as e:
            assert str(e) and "\n" not in str(e).strip()
