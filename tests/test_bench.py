"""The NAS-Bench-Macro table evaluator and the `fnas bench` harness."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fnas.benchmark.harness import one_run, queries_to_target
from fnas.errors import ConfigError, TaskError
from fnas.search import BenchConfig, MacroTableEvaluator
from fnas.space import MacroArch, macro_space
from fnas.tasks import RewardConfig

TABLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nas-bench-macro" / \
    "nas-bench-macro_cifar10.json"
needs_table = pytest.mark.skipif(
    not TABLE.is_file(),
    reason=f"NAS-Bench-Macro table not found at {TABLE}; see README.md, Benchmarks")


def test_macro_space_covers_the_table_keys():
    space = macro_space()
    assert space.size == 6561
    keys = {space.decode(np.unravel_index(i, space.sizes)).key for i in range(space.size)}
    assert len(keys) == 6561 and "22212220" in keys
    assert space.decode(space.encode(MacroArch("01201201"))).key == "01201201"
    with pytest.raises(Exception, match="8 digits"):
        MacroArch("0123")


@needs_table
def test_table_evaluator_returns_the_tables_numbers():
    raw = json.loads(TABLE.read_text())
    ev = MacroTableEvaluator(str(TABLE))
    for key in ("22212220", "00000000", "12012012"):
        r = ev.evaluate(MacroArch(key), seed=0)
        assert r.status == "ok"
        assert r.accuracy == pytest.approx(raw[key]["mean_acc"] / 100)
        assert r.reward == r.accuracy and r.macs == raw[key]["flops"]
        assert r.params == raw[key]["params"]
    t = ev.table
    assert t.best_key == "22212220" and t.best_acc == pytest.approx(93.127, abs=1e-3)
    assert (len(t.within(0.1)), len(t.within(0.2)), len(t.within(0.3))) == (9, 25, 61)


@needs_table
def test_noisy_mode_draws_one_seed_per_query():
    raw = json.loads(TABLE.read_text())["22212220"]["test_acc"]
    ev = MacroTableEvaluator(str(TABLE), noisy=True)
    accs = [ev.evaluate(MacroArch("22212220"), seed=s).accuracy * 100 for s in range(30)]
    assert all(any(abs(a - x) < 1e-6 for x in raw) for a in accs)
    assert len({round(a, 6) for a in accs}) > 1
    assert ev.evaluate(MacroArch("22212220"), 7).accuracy == \
        ev.evaluate(MacroArch("22212220"), 7).accuracy


@needs_table
def test_flops_reward_and_bad_configs(tmp_path):
    ev = MacroTableEvaluator(str(TABLE), RewardConfig("macs", 40e6, "hard"))
    r = ev.evaluate(MacroArch("22212220"), 0)
    assert r.reward == pytest.approx(r.accuracy * 40e6 / r.macs)  # over target: penalised
    with pytest.raises(ConfigError, match="latency"):
        MacroTableEvaluator(str(TABLE), RewardConfig("latency", 5.0))
    with pytest.raises(TaskError, match="not found"):
        MacroTableEvaluator(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TaskError, match="not valid JSON"):
        MacroTableEvaluator(str(bad))
    bad.write_text(json.dumps({"00000000": {"mean_acc": 1}}))
    with pytest.raises(TaskError, match="lacks"):
        MacroTableEvaluator(str(bad))


@needs_table
@pytest.mark.parametrize("strategy", ["random", "rea", "ppo", "fnas"])
@pytest.mark.slow
def test_each_strategy_is_reproducible_in_the_harness(strategy):
    cfg = BenchConfig(data=str(TABLE), budget=40, batch=8, strategies=(strategy,))
    a, b, c = one_run(cfg, strategy, 0), one_run(cfg, strategy, 0), one_run(cfg, strategy, 1)
    assert a["history"]["arch"] == b["history"]["arch"] != c["history"]["arch"]
    hist = a["history"]
    assert len(hist["arch"]) <= 40 and len(set(hist["arch"])) == len(hist["arch"])  # distinct
    assert hist["query"] == list(range(1, len(hist["arch"]) + 1))
    assert all(x <= y for x, y in zip(hist["best"], hist["best"][1:], strict=False))
    assert hist["best"][-1] == max(hist["reward"]) and hist["cost"][-1] > 0


def test_queries_to_target():
    hist = {"query": [1, 2, 3], "arch": ["a", "b", "c"]}
    assert queries_to_target(hist, {"c"}) == 3 and queries_to_target(hist, {"z"}) is None


@needs_table
@pytest.mark.slow
def test_fnas_bench_end_to_end(tmp_path):
    cmd = [sys.executable, "-m", "fnas.cli", "bench", "--data", str(TABLE), "--seeds", "2",
           "--budget", "30", "--jobs", "2", "--out", str(tmp_path), "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    for s in ("random", "rea", "ppo", "fnas"):
        assert s in p.stdout
    res = json.loads((tmp_path / "bench-macro.json").read_text())
    assert len(res["runs"]) == 8 and all(len(r["history"]["arch"]) <= 30 for r in res["runs"])
    assert set(res["summary"]) == {"random", "rea", "ppo", "fnas"}
    assert (tmp_path / "bench-macro.png").stat().st_size > 10_000


@pytest.mark.slow
def test_fnas_bench_real_task_end_to_end(tmp_path):
    """Over 20 s when the machine is busy: ``fnas bench --bench real`` as a user runs it,
    training at full size on digits (its CLI has no data-size flag); one strategy (several:
    the table benches')."""
    cmd = [sys.executable, "-m", "fnas.cli", "bench", "--bench", "real", "--task", "digits",
           "--epochs", "1", "--seeds", "1", "--budget", "2", "--batch", "2",
           "--strategies", "random", "--jobs", "1", "--out", str(tmp_path), "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "bench-real.json").read_text())
    assert [len(r["history"]["arch"]) for r in res["runs"]] == [2]
    assert all(c > 0 for r in res["runs"] for c in r["history"]["cost"])  # training seconds


def test_bench_bad_input():
    with pytest.raises(ConfigError, match="--data"):
        BenchConfig(bench="macro", data=None)
    with pytest.raises(ConfigError, match="strategy"):
        BenchConfig(data="x", strategies=("nope",))


@needs_table
@pytest.mark.parametrize("stem", ["bench-macro", "bench-macro-noisy", "bench-macro-fnas",
                                  "bench-macro-fnas-transfer"])
def test_committed_macro_summaries_recompute_exactly(stem):
    """The committed figures' runs, summarised by today's code, give the committed numbers
    (the NAS-Bench-Macro target set and regret did not move when bench was generalised)."""
    from fnas.benchmark.harness import bench_config_from, summarize

    res = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "results" /
                      f"{stem}.json").read_text())
    cfg = bench_config_from({**res["config"], "data": str(TABLE)})
    names = tuple(dict.fromkeys(r["strategy"] for r in res["runs"]))
    assert summarize(cfg, res["runs"], names) == {s: res["summary"][s] for s in names}
