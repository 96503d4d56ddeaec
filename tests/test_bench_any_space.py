"""`fnas bench` on a benchmark a user brings: any space, a table or an objective, a target set.

The space is a small one made with ``fnas.make_space`` (18 architectures); its table is written
by the test from a formula (a sum of per-choice values), so the optimum and every target set
are known.
"""

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

import fnas
from fnas.benchmark.harness import one_run
from fnas.cli import main
from fnas.errors import ConfigError, TaskError
from fnas.search import BenchConfig
from fnas.tasks import load_score_table

MODULE = '''
import fnas

space = fnas.make_space("bench-tiny", {"a": [0, 1, 2], "b": [0, 1, 2], "c": [0, 1]})


def score(arch):
    return arch["a"] * 1.0 + arch["b"] * 0.5 + arch["c"] * 0.25


def other_task(arch):  # a related task on the same space, a knowledge source
    return 2 * score(arch) - arch["c"]
'''
BEST = 3.25  # a=2, b=2, c=1


def _score(a: int, b: int, c: int) -> float:
    return a * 1.0 + b * 0.5 + c * 0.25


def _key(a: int, b: int, c: int) -> str:
    return f"a={a},b={b},c={c}"  # how fnas.make_space names an architecture


ROWS = {_key(a, b, c): _score(a, b, c) for a in range(3) for b in range(3) for c in range(2)}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The user's module (space and objective) and a CSV table of the space, with a cost."""
    (tmp_path / "tinybench.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "scores.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "acc", "seconds"])
        for k, s in ROWS.items():
            w.writerow([k, s, 2.0])
    return path


def _expected_queries(history, targets):
    for i, arch in enumerate(history["arch"]):
        if arch in targets:
            return i + 1
    return None


def _incumbent_score(history):
    i = max(range(len(history["arch"])), key=lambda j: history["reward"][j])
    return ROWS[history["arch"][i]]


def test_the_tables_keys_are_the_spaces_keys(tiny):
    from tinybench import space

    keys = {space.decode(ix).key for ix in [(0, 0, 0), (2, 2, 1), (1, 0, 1)]}
    assert keys == {_key(0, 0, 0), _key(2, 2, 1), _key(1, 0, 1)}
    t = load_score_table(str(tiny), "acc", "seconds")
    assert t.best_key == _key(2, 2, 1) and t.best == BEST and len(t.scores) == 18
    assert t.costs[_key(0, 0, 0)] == 2.0
    bom = tiny.with_name("excel.csv")  # a spreadsheet's export starts with a byte-order mark
    bom.write_bytes(b"\xef\xbb\xbf" + tiny.read_bytes())
    assert load_score_table(str(bom), "acc").scores == t.scores
    listed = tiny.with_name("rows.json")  # the same table as a JSON list of rows
    listed.write_text(json.dumps([{"arch": k, "acc": v} for k, v in ROWS.items()]))
    assert load_score_table(str(listed), "acc").scores == t.scores


def test_cli_table_top_k(tiny, tmp_path, capsys):
    code = main(["bench", "--space", "tinybench:space", "--table", str(tiny), "--metric", "acc",
                 "--cost", "seconds", "--target", "top:3", "--strategies", "random,rea",
                 "--seeds", "2", "--budget", "12", "--batch", "4", "--jobs", "1",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "queries to top:3" in out and "regret is against the table's best (3.25)" in out
    res = json.loads((tmp_path / "out" / "bench-table.json").read_text())
    top3 = {_key(2, 2, 1), _key(2, 2, 0), _key(2, 1, 1)}  # 3.25, 3.0, 2.75
    assert res["truth"] == {"target": "top:3", "best": BEST, "best_from": "table",
                            "threshold": 2.75, "n_targets": 3}
    for s in ("random", "rea"):
        runs = [r for r in res["runs"] if r["strategy"] == s]
        summary = res["summary"][s]
        assert summary["queries_to_target"]["per_seed"] == [
            _expected_queries(r["history"], top3) for r in runs]
        regrets = sorted(BEST - _incumbent_score(r["history"]) for r in runs)
        assert summary["final_regret"]["median"] == pytest.approx(sum(regrets) / 2)
        for r in runs:  # the cost axis sums the table's cost field
            assert r["history"]["cost"] == [2.0 * q for q in r["history"]["query"]]
    assert (tmp_path / "out" / "bench-table.png").stat().st_size > 5_000


def test_a_lower_is_better_field_is_named_with_a_minus(tiny, tmp_path, capsys):
    err = tmp_path / "errors.csv"  # the same benchmark as an error rate: lower is better
    with err.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "error"])
        for k, s in ROWS.items():
            w.writerow([k, 4.0 - s])
    t = load_score_table(str(err), "-error")
    assert t.best_key == _key(2, 2, 1) and t.best == pytest.approx(-0.75)
    assert t.metric == "-error" and t.scores[_key(0, 0, 0)] == -4.0
    code = main(["bench", "--space", "tinybench:space", "--table", str(err), "--metric=-error",
                 "--target", "top:3", "--strategies", "rea", "--seeds", "1", "--budget", "12",
                 "--batch", "4", "--jobs", "1", "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "out" / "bench-table.json").read_text())
    # the top 3 by lowest error are the top 3 by highest score
    assert res["truth"]["threshold"] == pytest.approx(-(4.0 - 2.75))
    top3 = {_key(2, 2, 1), _key(2, 2, 0), _key(2, 1, 1)}
    run = res["runs"][0]
    assert res["summary"]["rea"]["queries_to_target"]["per_seed"] == [
        _expected_queries(run["history"], top3)]
    with pytest.raises(TaskError, match="names no field"):
        load_score_table(str(err), "-")


def test_api_objective_regret_and_queries_to_target(tiny):
    from tinybench import score, space

    res = fnas.bench(space, objective=score, target="score:3", strategies=("random",),
                     seeds=2, budget=12, batch=4, jobs=1, optimum=BEST)
    assert res["truth"]["best_from"] == "optimum" and res["truth"]["threshold"] == 3.0
    runs = res["runs"]
    hits = {k for k, v in ROWS.items() if v >= 3.0}
    assert res["summary"]["random"]["queries_to_target"]["per_seed"] == [
        _expected_queries(r["history"], hits) for r in runs]
    regrets = [BEST - _incumbent_score(r["history"]) for r in runs]
    assert res["summary"]["random"]["final_regret"]["q25"] == pytest.approx(
        min(regrets) + 0.25 * (max(regrets) - min(regrets)))
    # without the optimum, regret is against the best any run found: the best run has 0
    res2 = fnas.bench("tinybench:space", objective="tinybench:score", strategies=("random",),
                      seeds=2, budget=12, batch=4, jobs=1)
    found = max(max(r["history"]["reward"]) for r in res2["runs"])
    assert res2["truth"]["best_from"] == "best found by any run"
    assert res2["truth"]["best"] == found
    r = res2["summary"]["random"]["final_regret"]
    assert r["q25"] == 0.0 or r["median"] == 0.0
    assert res2["summary"]["random"]["queries_to_target"]["success_rate"] >= 0.5
    # a function that cannot be imported by name (a lambda) is run as it is
    res3 = fnas.bench(space, objective=lambda arch: -score(arch), strategies=("random",),
                      seeds=1, budget=6, batch=2, jobs=1, optimum=0.0)
    h = res3["runs"][0]["history"]
    assert h["reward"] == [-ROWS[a] for a in h["arch"]]
    assert res3["summary"]["random"]["final_regret"]["median"] == -max(h["reward"])


def test_a_strategy_that_finds_the_optimum_has_regret_zero(tiny):
    # budget 18 = the whole space: REA, which never repeats a query it remembers, sees all
    res = fnas.bench("tinybench:space", table=str(tiny), metric="acc", strategies=("rea",),
                     seeds=1, budget=18, batch=4, jobs=1)
    h = res["runs"][0]["history"]
    assert _key(2, 2, 1) in h["arch"]
    s = res["summary"]["rea"]
    assert s["final_regret"]["median"] == 0.0
    assert s["queries_to_target"]["per_seed"] == [h["arch"].index(_key(2, 2, 1)) + 1]
    assert res["truth"]["n_targets"] == 1  # the default target: the best only


def test_noisy_table_draws_one_seed_per_query_and_measures_by_the_mean(tiny, tmp_path):
    seeds = {k: [v - 0.1, v, v + 0.4] for k, v in ROWS.items()}  # mean: v + 0.1
    path = tmp_path / "seeds.json"
    path.write_text(json.dumps({k: {"acc": x} for k, x in seeds.items()}))
    t = load_score_table(str(path), "acc")
    assert t.scores[_key(2, 2, 1)] == pytest.approx(BEST + 0.1) and t.samples is not None
    res = fnas.bench("tinybench:space", table=str(path), metric="acc", noisy=True,
                     strategies=("random",), seeds=2, budget=12, batch=4, jobs=1)
    drawn = [(a, r) for run in res["runs"]
             for a, r in zip(run["history"]["arch"], run["history"]["reward"], strict=True)]
    assert all(any(abs(r - x) < 1e-6 for x in seeds[a]) for a, r in drawn)
    assert len({round(r - ROWS[a], 6) for a, r in drawn}) > 1  # not always the same seed
    assert res["truth"]["best"] == pytest.approx(BEST + 0.1)  # the truth is the mean
    # the incumbent is the best *observed* (noisy) result; its regret is by the table's mean
    regrets = [BEST - _incumbent_score(r["history"]) for r in res["runs"]]
    assert res["summary"]["random"]["final_regret"]["mean"] == pytest.approx(
        sum(regrets) / len(regrets))


def test_partial_table_policy(tiny, tmp_path):
    part = tmp_path / "part.json"
    rows = {k: v for k, v in ROWS.items() if not k.startswith("a=0")}  # 12 of 18
    part.write_text(json.dumps(rows))
    cfg = dict(strategies=("random",), seeds=1, budget=10, batch=4, jobs=1)
    with pytest.raises(TaskError, match="lists 12 of the 18 .*'a=0,b=0,c=0'.*--missing fail"):
        fnas.bench("tinybench:space", table=str(part), **cfg)
    res = fnas.bench("tinybench:space", table=str(part), missing="fail", **cfg)
    h = res["runs"][0]["history"]
    missing = [i for i, a in enumerate(h["arch"]) if a.startswith("a=0")]
    assert missing, "the run should have met an unlisted architecture"
    for i in missing:  # a failed query: no accuracy, the table's worst score, still a query
        assert h["accuracy"][i] is None and h["reward"][i] == min(rows.values())
    assert h["query"] == list(range(1, len(h["arch"]) + 1))


def test_an_unlisted_architecture_of_a_space_too_large_to_check_stops_the_bench(
        tiny, tmp_path, monkeypatch, capsys):
    import fnas.benchmark.truth as truth

    monkeypatch.setattr(truth, "ENUMERATE_MAX", 10)  # the 18 architectures are "too many"
    part = tmp_path / "part.json"
    part.write_text(json.dumps({k: v for k, v in ROWS.items() if k != _key(0, 0, 0)}))
    argv = ["--log-level", "WARNING", "bench", "--space", "tinybench:space", "--table",
            str(part), "--strategies",
            "random", "--seeds", "1", "--budget", "18", "--batch", "4", "--jobs", "1",
            "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "architecture 'a=0,b=0,c=0' is not in the table" in err[0], err


def test_cli_objective(tiny, tmp_path, capsys):
    code = main(["bench", "--space", "tinybench:space", "--objective", "tinybench:score",
                 "--target", "within:0.25", "--strategies", "random", "--seeds", "2",
                 "--budget", "10", "--batch", "4", "--jobs", "1", "--out", str(tmp_path),
                 "--no-progress"])
    assert code == 0
    assert "regret is against the best found by any run" in capsys.readouterr().out
    res = json.loads((tmp_path / "bench-objective.json").read_text())
    best = max(max(r["history"]["reward"]) for r in res["runs"])
    hits = {k for k, v in ROWS.items() if v >= best - 0.25}
    assert res["truth"]["threshold"] == best - 0.25
    assert res["summary"]["random"]["queries_to_target"]["per_seed"] == [
        _expected_queries(r["history"], hits) for r in res["runs"]]


@pytest.mark.slow  # fnas trains its critic: about 8 s on 2 cores
def test_knowledge_transfer_from_a_source_table(tiny, tmp_path):
    src = tmp_path / "source.json"  # another task on the same space: a and b matter more
    src.write_text(json.dumps({k: {"acc": 2 * v} for k, v in ROWS.items()}))
    base = BenchConfig(bench="table", space="tinybench:space", table=str(tiny), metric="acc",
                       strategies=("fnas",), seeds=1, budget=8, batch=4, source_budget=8)
    plain = one_run(base, "fnas", 0)["history"]["arch"]
    taught = one_run(replace(base, source_table=str(src)), "fnas", 0)["history"]["arch"]
    assert plain != taught  # the critic learnt from the source before the first query


@pytest.mark.slow  # as above
def test_knowledge_transfer_from_a_source_objective(tiny):
    obj = BenchConfig(bench="objective", space="tinybench:space", objective="tinybench:score",
                      strategies=("fnas",), seeds=1, budget=8, batch=4, source_budget=8)
    plain = one_run(obj, "fnas", 0)["history"]["arch"]
    taught = one_run(replace(obj, source_objective="tinybench:other_task"), "fnas", 0)
    assert taught["history"]["arch"] != plain


@pytest.mark.parametrize(("args", "needle"), [
    (["--metric", "accuracy"], "no field 'accuracy'"),
    (["--metric", "acc", "--target", "top:0"], "top:K"),
    (["--metric", "acc", "--target", "score:9"], "no architecture of the table reaches 9"),
    (["--metric", "acc", "--target", "top:19"], "lists only 18 architectures"),
    (["--metric", "acc", "--noisy"], "holds one score per row"),
    (["--metric", "acc", "--optimum", "3"], "--optimum"),
    (["--metric", "acc", "--space", "nope"], "unknown space 'nope'"),
])
def test_bad_settings_are_one_line(tiny, capsys, args, needle):
    argv = ["bench", "--space", "tinybench:space", "--table", str(tiny), "--seeds", "1",
            "--budget", "4", "--jobs", "1", "--no-progress", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0], err


@pytest.mark.parametrize(("name", "text", "needle"), [
    ("empty.csv", "", "the table is empty"),
    ("header.csv", "key,acc\n", "has no rows"),
    ("ragged.csv", "key,acc\na=0,b=0,c=0,1.0,7\n", "malformed CSV: line 2"),
    ("quote.csv", 'key,acc\n"a=0,b=0,c=0,1.0\n', "malformed CSV"),
    ("nokey.csv", "arch_id,acc\nx,1\n", "no 'key' (or 'arch') column"),
    ("text.csv", "key,acc\na=0,b=0,c=0,high\n", "malformed CSV"),
    ("word.csv", 'key,acc\n"a=0,b=0,c=0",high\n', "'high' is not a number"),
    ("bad.json", "{not json", "not valid JSON"),
    ("list.json", "[1, 2]", "row 0 is not an object with a 'key'"),
    ("empty.json", "{}", "has no rows"),
    ("alien.json", json.dumps({"a=9,b=0,c=0": {"acc": 1}}), "key 'a=9,b=0,c=0' is not an "
     "architecture of space 'bench-tiny' (its keys look like 'a="),
    ("twice.json", json.dumps([{"key": "a=0,b=0,c=0", "acc": 1}] * 2), "listed twice"),
])
def test_bad_tables_are_one_line(tiny, tmp_path, capsys, name, text, needle):
    p = tmp_path / name
    p.write_text(text)
    argv = ["bench", "--space", "tinybench:space", "--table", str(p), "--metric", "acc",
            "--seeds", "1", "--budget", "4", "--jobs", "1", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_a_registered_benchmark_still_plugs_in(tiny, monkeypatch):
    from tinybench import space

    from fnas.benchmark.harness import run_bench
    from fnas.search import BENCHMARKS, Evaluator
    from fnas.tasks import RolloutResult

    class Lookup(Evaluator):
        signature = "test-lookup"

        def evaluate(self, spec, seed):
            s = ROWS[spec.key]
            return RolloutResult(spec.key, spec.key, "ok", "", s, s, seed=seed)

    fnas.register_space(space.name, space)
    monkeypatch.setitem(BENCHMARKS, "mine", lambda cfg: (Lookup(), space.name))
    res = run_bench(BenchConfig(bench="mine", strategies=("random",), seeds=1, budget=6,
                                batch=2, jobs=1), progress=False)
    assert "truth" not in res and res["summary"]["random"]["final_best_reward"]


def test_bad_api_input():
    with pytest.raises(ConfigError, match="needs --space"):
        BenchConfig(bench="table", table="x.csv")
    with pytest.raises(ConfigError, match="objective has none"):
        BenchConfig(bench="objective", space="macro", objective="m:f", target="top:3")
    with pytest.raises(ConfigError, match="needs a table=, an objective="):
        fnas.bench("macro")
    with pytest.raises(ConfigError, match="cannot be imported"):
        fnas.bench("macro", objective="no_such_module_x:f", seeds=1, budget=4, jobs=1)
    with pytest.raises(ConfigError, match="one knowledge source"):
        BenchConfig(bench="table", space="macro", table="t", source_table="s",
                    source_objective="m:f")
    with pytest.raises(ConfigError, match=r"--jobs -1 \(jobs=\): expected 0"):
        fnas.bench("macro", objective="tinybench:score", jobs=-1)  # a worker pool would fail
    with pytest.raises(ConfigError, match="names no strategy"):
        fnas.bench("macro", objective="tinybench:score", strategies=" , ")
    cfg = BenchConfig(bench="objective", space="macro", objective="m:f")
    with pytest.raises(ConfigError, match="config= or the settings, not both"):
        fnas.bench(config=cfg, seeds=2)


def test_the_api_writes_what_the_cli_writes(tiny, tmp_path):
    """``fnas bench`` is ``fnas.bench`` on the config its flags give: the same files, named
    alike (``bench-table``), listed in the result."""
    from fnas.api.bench import bench_config

    flags = ["--space", "tinybench:space", "--table", str(tiny), "--metric", "acc",
             "--strategies", "random,rea", "--seeds", "1", "--budget", "6", "--batch", "2",
             "--jobs", "1", "--no-progress"]
    assert main(["bench", *flags, "--out", str(tmp_path / "cli")]) == 0
    res = fnas.bench("tinybench:space", table=str(tiny), metric="acc", strategies="random,rea",
                     seeds=1, budget=6, batch=2, jobs=1, out=str(tmp_path / "api"))
    assert [Path(f).name for f in res["files"]] == ["bench-table.json", "bench-table.png"]

    def written(d):
        out = json.loads((tmp_path / d / "bench-table.json").read_text())
        for run in out["runs"]:
            run.pop("seconds")
        out["config"].pop("task")  # the CLI's proxy task trains 3 epochs (for --bench real)
        return {k: v for k, v in out.items() if k != "seconds"}

    assert written("cli") == written("api")
    cfg = bench_config("tinybench:space", table=str(tiny), strategies=["rea"], noisy=True)
    assert cfg.strategies == ("rea",) and fnas.api.bench.bench_stem(cfg) == "bench-table-noisy"


def test_the_macro_file_reads_as_a_table_too():
    table = Path(__file__).resolve().parents[1].parent / "shared" / "data" / \
        "nas-bench-macro" / "nas-bench-macro_cifar10.json"
    if not table.is_file():
        pytest.skip("NAS-Bench-Macro table not found")
    from fnas.benchmark.harness import bench_truth

    macro = bench_truth(BenchConfig(data=str(table)))
    top = bench_truth(BenchConfig(data=str(table), target="top:25"))
    general = bench_truth(BenchConfig(bench="table", space="macro", table=str(table),
                                      metric="mean_acc", target="within:0.2"))
    assert macro.target == "within:0.2" and len(macro.targets()) == 25
    assert macro.targets() == top.targets() == general.targets()
    assert general.best == macro.best == pytest.approx(93.127, abs=1e-3)
