"""The incumbent metric of benchmarks/ablation_mnist5k.py (issue 34, part 5) on hand-made
curves, with a fake scorer in place of the reference protocol's training: only full-fidelity
real results become incumbents, compute to target reads the incumbent's reference score (not
the run's own reward), and the reference cache trains an architecture once."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

REFERENCE = {"summary": {"targets": {"top1": {"reward": 0.9}, "top0.2": {"reward": 0.95}}}}


@pytest.fixture(scope="module")
def inc(bench_script):
    return bench_script("incumbent")


@pytest.fixture(scope="module")
def m(bench_script):
    return bench_script("ablation_mnist5k_summary")


def curve(points):
    """points: (compute, arch, own reward, flags[, fidelity[, status]]) per evaluation."""
    return [{"compute": p[0], "arch": p[1], "reward": p[2], "accuracy": p[2], "macs": 1,
             "flags": p[3], "status": p[5] if len(p) > 5 else "ok",
             **({"fidelity": p[4]} if len(p) > 4 and p[4] is not None else {})}
            for p in points]


class Fake:
    """A scorer: a fixed reference score per architecture, counting what it is asked."""

    def __init__(self, scores):
        self.scores, self.asked = scores, []

    def __call__(self, arch):
        self.asked.append(arch)
        return self.scores[arch]


def test_low_fidelity_predicted_and_failed_results_are_never_incumbents(inc):
    c = curve([(10, "a", 0.5, "t"), (20, "low", 0.99, "t", 0.5), (30, "pred", 0.99, "p"),
               (40, "bad", 0.99, "t", 1.0, "nan"), (50, "b", 0.6, "c", 1.0)])
    assert [(x["compute"], x["arch"]) for x in inc.incumbents(c)] == [(10, "a"), (50, "b")]
    score = Fake({"a": 0.1, "b": 0.1, "low": 1.0, "pred": 1.0, "bad": 1.0})
    assert inc.reach_incumbent(c, 0.9, 1000, score) == math.inf
    assert set(score.asked) == {"a", "b"}  # the others were never even scored


def test_a_better_low_fidelity_result_does_not_change_the_incumbent(inc):
    c = curve([(10, "a", 0.8, "t"), (20, "b", 0.99, "t", 0.25), (30, "c", 0.7, "t"),
               (40, "b", 0.85, "t", 1.0)])
    trace = inc.incumbents(c)
    assert [(x["compute"], x["arch"]) for x in trace] == [(10, "a"), (40, "b")]
    # b scores the target by the reference, but it is the incumbent only from 40 on
    assert inc.reach_incumbent(c, 0.9, 1000, Fake({"a": 0.5, "b": 0.95})) == 40
    assert inc.final_incumbent(c, 35)["arch"] == "a"
    assert inc.final_incumbent(c, 5) is None


def test_a_raced_run_is_followed_by_its_own_rule(inc):
    """A run with ``confirm`` 2 returns a lucky result only once its repeat confirms it: its
    incumbent is the confirmed best mean, as ``search.best`` says."""
    c = curve([(10, "a", 0.8, "t"), (20, "a", 0.7, "t"), (30, "b", 0.95, "t"),
               (40, "b", 0.5, "t"), (50, "c", 0.9, "t"), (60, "c", 0.86, "t")])
    for row, rep in zip(c, (0, 1, 0, 1, 0, 1), strict=True):
        row["replicate"] = rep
    trace = inc.incumbents(c, confirm=2)
    assert [(x["compute"], x["arch"]) for x in trace] == [(10, "a"), (60, "c")]
    assert trace[-1]["reward"] == pytest.approx(0.88)
    # without racing the same rows make b, the lucky one, the incumbent at 30
    assert [x["arch"] for x in inc.incumbents(c)] == ["a", "b"]
    score = Fake({"a": 0.7, "b": 0.6, "c": 0.9})
    assert inc.reach_incumbent(c, 0.85, 1000, score, confirm=2) == 60
    assert inc.final_incumbent(c, 55, confirm=2)["arch"] == "a"  # c not yet confirmed


def test_compute_to_target_reads_the_reference_score_not_the_own_reward(inc, m):
    # x: the run's own reward reaches 0.9 at 10, but the reference scores it 0.85;
    # y (own 0.93) scores 0.92 by the reference
    c = curve([(10, "x", 0.91, "t"), (50, "y", 0.93, "t")])
    score = Fake({"x": 0.85, "y": 0.92})
    assert m.reach(c, 0.9, 1000) == 10  # the old metric
    assert inc.reach_incumbent(c, 0.9, 1000, score) == 50
    assert inc.reach_incumbent(c, 0.9, 40, score) == math.inf  # y came after the budget


def test_the_runs_best_that_the_reference_rates_below_target_never_reaches_it(inc):
    c = curve([(10, "a", 0.7, "t"), (20, "best", 0.99, "t"), (30, "a2", 0.95, "t")])
    score = Fake({"a": 0.99, "best": 0.80, "a2": 0.99})
    # a scores 0.99 but is not the incumbent once best (own 0.99) is; a2 never displaces it
    assert inc.reach_incumbent(c, 0.95, 1000, score) == 10  # a, while it was the incumbent
    assert inc.reach_incumbent(c[1:], 0.95, 1000, score) == math.inf


def test_incumbents_are_scored_in_order_and_only_until_one_reaches(inc):
    c = curve([(1, "a", 0.1, "t"), (2, "b", 0.2, "t"), (3, "c", 0.3, "t"), (4, "d", 0.4, "t")])
    score = Fake({"a": 0.1, "b": 0.95, "c": 0.0, "d": 0.0})
    assert inc.reach_incumbent(c, 0.9, 1000, score) == 2
    assert score.asked == ["a", "b"]
    # a tie keeps the earlier incumbent; a repeat of the incumbent keeps it
    c = curve([(1, "a", 0.5, "t"), (2, "b", 0.5, "t"), (3, "a", 0.5, "c")])
    assert [x["arch"] for x in inc.incumbents(c)] == ["a"]


def trainer(calls):
    def train(arch, seed):
        calls.append((arch, seed))
        return {"status": "ok", "accuracy": 0.9 + seed / 1e5, "reward": 0.5 + seed / 1e5,
                "macs": 7, "cpu_s": 2.0}
    return train


PROXY = {"task": {"dataset": "mnist5k", "epochs": 2, "batch_size": 32}, "reward": {"t": 1},
         "input_size": 28}


def test_the_reference_cache_trains_each_architecture_once(inc, tmp_path):
    proto = inc.protocol(PROXY, seeds=(0, 10))
    path, calls = tmp_path / "scores.json", []
    s = inc.ReferenceScores(path, "mnist5k", proto, trainer(calls))
    first = s.score("a")
    assert calls == [("a", 0), ("a", 10)] and s.trained == 2 and s.cpu_s == 4.0
    assert first["accuracy"] == pytest.approx(0.90005) and first["reward"] == pytest.approx(0.50005)
    assert s.score("a") == first and len(calls) == 2 and s.hits == 1
    # a fresh object on the same file (a later summary) trains nothing either
    again = inc.ReferenceScores(path, "mnist5k", proto, trainer(calls))
    assert again.scorer("accuracy")("a") == pytest.approx(0.90005)
    assert again.scorer("mnas")("a") == pytest.approx(0.50005)
    assert len(calls) == 2 and again.trained == 0
    # the file is keyed by task, protocol and architecture: another task or protocol trains
    inc.ReferenceScores(path, "fashion", proto, trainer(calls)).score("a")
    inc.ReferenceScores(path, "mnist5k", inc.protocol(PROXY, epochs=1, seeds=(0, 10)),
                        trainer(calls)).score("a")
    assert len(calls) == 6
    data = json.loads(path.read_text())
    assert len(data["scores"]) == 3 and len(data["protocols"]) == 2
    key = f"mnist5k | {inc.protocol_id(proto)} | a"
    assert set(data["scores"][key]["seeds"]) == {"0", "10"}


def test_a_failed_reference_training_scores_zero(inc, tmp_path):
    def train(arch, seed):
        if seed:
            return {"status": "nan", "accuracy": None, "reward": 0.0, "cpu_s": 1.0}
        return {"status": "ok", "accuracy": 0.8, "reward": 0.6, "cpu_s": 1.0}

    s = inc.ReferenceScores(tmp_path / "s.json", "mnist5k", inc.protocol(PROXY), train)
    assert s.score("a")["accuracy"] == pytest.approx(0.4)


def test_the_references_own_trainings_are_reused_where_protocol_and_seed_match(inc, tmp_path):
    proto = inc.protocol(PROXY, seeds=(0, 10_000))
    ref = {"settings": {"proxy": PROXY, "epochs_override": None},
           "first": [{"arch": "r0", "seed": 0, "status": "ok", "accuracy": 0.7, "reward": 0.6},
                     {"arch": "r1", "seed": 1, "status": "ok", "accuracy": 0.7, "reward": 0.6}],
           "second": [{"arch": "r0", "seed": 10_000, "status": "ok", "accuracy": 0.9,
                       "reward": 0.8}]}
    calls = []
    s = inc.ReferenceScores(tmp_path / "s.json", "mnist5k", proto, trainer(calls), reference=ref)
    assert s.score("r0")["accuracy"] == pytest.approx(0.8) and calls == []
    s.score("r1")  # the reference trained r1 with seed 1 only: both protocol seeds are new
    assert calls == [("r1", 0), ("r1", 10_000)]
    # a reference made at other settings lends nothing
    quick = {**ref, "settings": {"proxy": PROXY, "epochs_override": 1}}
    s = inc.ReferenceScores(tmp_path / "t.json", "mnist5k", proto, trainer(calls), reference=quick)
    s.score("r0")
    assert calls[-2:] == [("r0", 0), ("r0", 10_000)]


def test_summary_with_a_scorer_makes_the_incumbent_metric_primary_and_keeps_the_old(m):
    runs = []
    for s in range(3):  # fnas: own reward reaches 0.9 at 10, its reference score only at 60
        runs.append({"variant": "fnas", "seed": s,
                     "curve": curve([(10, f"f{s}", 0.91, "t"), (20, f"lo{s}", 0.99, "t", 0.5),
                                     (60, f"g{s}", 0.92, "t")])})
        runs.append({"variant": "ppo", "seed": s,
                     "curve": curve([(100, f"p{s}", 0.96, "t")])})
    scores = {**{f"f{s}": 0.8 for s in range(3)}, **{f"g{s}": 0.91 for s in range(3)},
              **{f"p{s}": 0.96 for s in range(3)}}
    summary = m.summarise(runs, REFERENCE, 1000.0, {}, score=Fake(scores))
    assert summary["metric"] == "incumbent" and summary["objective"] == "mnas"
    f = summary["table"]["fnas"]
    assert f["top1"]["median"] == 60 and f["own_best"]["top1"]["median"] == 10
    assert f["top0.2"]["median"] == math.inf and f["own_best"]["top0.2"]["median"] == 20
    assert f["incumbent_score"]["median"] == pytest.approx(0.91)
    assert summary["per_run"]["fnas-s0"]["incumbent"]["arch"] == "g0"
    assert summary["per_run"]["fnas-s0"]["low_fidelity"] == 1
    assert summary["ratios"]["ppo/fnas"]["top1"]["ratio"] == pytest.approx(100 / 60)
    assert summary["ratios_own_best"]["ppo/fnas"]["top1"]["ratio"] == pytest.approx(10)
    md = m.table_md(summary)
    assert "reference protocol" in md and "the old metric" in md
    # without a scorer, the old metric is the primary one and says so
    old = m.summarise(runs, REFERENCE, 1000.0, {})
    assert old["metric"] == "own_best" and old["table"]["fnas"]["top1"]["median"] == 10
    assert "own_best" not in old["table"]["fnas"] and "no reference scores" in m.table_md(old)


def test_accuracy_objective_targets_are_accuracy_quantiles_of_the_reference(m):
    ref = {**REFERENCE, "first": [{"status": "ok", "accuracy": a / 1000, "reward": 0.1}
                                  for a in range(1001)] + [{"status": "nan", "accuracy": 2.0}]}
    t = m.targets_for(ref, "accuracy")
    assert t == {"top1": pytest.approx(0.99), "top0.2": pytest.approx(0.998)}
    assert m.targets_for(ref, "mnas") == {"top1": 0.9, "top0.2": 0.95}
    run = {"variant": "rea", "seed": 0, "curve": curve([(5, "a", 0.995, "t")])}
    s = m.summarise([run], ref, 100.0, {}, score=Fake({"a": 0.999}), objective="accuracy")
    assert s["table"]["rea"]["top0.2"]["median"] == 5
    assert s["post_hoc"]["targets"] == {"reference_max": 1.0, "rea_final": 0.999}


def test_the_meter_records_fidelity_and_full_fidelity_where_the_field_is_absent(bench_script):
    ab = bench_script("ablation_mnist5k")
    meter = ab._meter(1e9)
    e = dict(reward=0.5, accuracy=0.6, macs=3, arch="a", status="ok", trained=True,
             cached=False, predicted=False, audited=False, replayed=False)
    meter.on_evaluation(None, SimpleNamespace(**e))
    meter.on_evaluation(None, SimpleNamespace(**e, fidelity=0.5))
    meter.on_evaluation(None, SimpleNamespace(**e, task_signature="t|replicate=2"))
    assert [r["fidelity"] for r in meter.rows] == [1.0, 0.5, 1.0]
    assert meter.rows[0]["flags"] == "t"
    assert [r.get("replicate", 0) for r in meter.rows] == [0, 0, 2]  # a racing repeat


def test_a_source_of_another_task_is_refused_on_its_own_task_and_left_out_of_all(
        bench_script, capsys):
    ab = bench_script("ablation_mnist5k")
    assert "fnas-from-mnist5k" not in ab._args([]).variants.split(",")
    assert "fnas-from-mnist5k" in ab._args(["--task", "fashion"]).variants.split(",")
    with pytest.raises(SystemExit):
        ab._args(["--variants", "fnas-scratch,fnas-from-mnist5k"])
    assert "'fnas-from-mnist5k' takes its knowledge from mnist5k" in capsys.readouterr().err


def test_the_mnist5k_source_searches_the_mnist5k_proxy_for_a_fashion_run(bench_script,
                                                                        monkeypatch, tmp_path):
    ab = bench_script("ablation_mnist5k")
    seen = {}

    def search(a, path, name, cfg, budget):
        seen.update(name=name, cfg=cfg, budget=budget)
        return {"name": name, "curve": [{"compute": 5.0}]}

    monkeypatch.setattr(ab, "_search", search)
    a = ab._args(["--task", "fashion", "--data", str(tmp_path), "--work", str(tmp_path / "w")])
    path = ab.source(a, "mnist5k")
    assert path == tmp_path / "w" / "source-mnist5k" and (path / "DONE").is_file()
    task, run = seen["cfg"].task, ab._task(a)
    assert task.dataset == "mnist5k" and run.dataset.startswith("idx:")
    same = {k: v for k, v in vars(run).items() if k != "dataset"}
    assert {k: v for k, v in vars(task).items() if k != "dataset"} == same
    assert seen["cfg"].knowledge == "none" and seen["budget"] == a.budget
    assert seen["cfg"].reward == ab._config(a, "fnas", 0).reward


def test_the_judge_variants_are_their_base_with_the_legacy_knowledge_rule(bench_script):
    ab = bench_script("ablation_mnist5k")
    for base in ("fnas-res14", "fnas-from-mnist5k"):
        v = ab.VARIANTS[f"{base}-judge"]
        assert v == {**ab.VARIANTS[base], "seeds": 3,
                     "fnas": {"screen": {"knowledge_rule": "judge"}}}
    assert ab._merged({"screen": {"decompose": True}, "x": 1}, ab.JUDGE) == {
        "screen": {"decompose": True, "knowledge_rule": "judge"}, "x": 1}
    a = ab._args(["--task", "fashion", "--variants", "fnas-from-mnist5k-judge"])
    assert ab.VARIANTS[a.variants]["source"] == "mnist5k"
