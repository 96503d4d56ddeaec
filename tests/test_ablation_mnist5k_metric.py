"""The metric of benchmarks/ablation_mnist5k.py (issue 20) on hand-made curves: reference
targets, the budget C, misses as > C, bootstrap medians, ratios, and that neither a critic's
prediction nor a failed training counts as a reached reward."""

from __future__ import annotations

import math

import pytest

REFERENCE = {"summary": {"targets": {"top1": {"reward": 0.9}, "top0.2": {"reward": 0.95}}}}


@pytest.fixture(scope="module")
def m(bench_script):
    return bench_script("ablation_mnist5k_summary")


def run(variant, seed, points):
    """points: (compute, reward, flags[, status]) per evaluation, in order."""
    curve = [{"compute": p[0], "reward": p[1], "accuracy": p[1] / 1.01, "macs": 1,
              "arch": f"{variant}-{seed}-{i}", "status": p[3] if len(p) > 3 else "ok",
              "flags": p[2]} for i, p in enumerate(points)]
    return {"variant": variant, "seed": seed, "curve": curve}


def test_reach_ignores_predictions_failures_and_what_comes_after_the_budget(m):
    c = run("x", 0, [(10, 0.99, "p"), (20, 0.99, "t", "nan"), (30, 0.91, "t"),
                     (40, 0.97, "c"), (200, 0.99, "t")])["curve"]
    assert m.reach(c, 0.9, 100) == 30
    assert m.reach(c, 0.95, 100) == 40  # a cached real result counts
    assert m.reach(c, 0.98, 100) == math.inf  # only after C
    assert m.reach(c, 0.98, 300) == 200
    b = m.best_within(c, 100)
    assert b["reward"] == 0.97 and b["arch"] == "x-0-3"
    assert b["cost_factor"] == pytest.approx(1.01)


def test_bootstrap_median_of_misses_is_infinite_and_interval_brackets_the_median(m):
    med, lo, hi = m.bootstrap_median([10, 20, 30, math.inf, math.inf])
    assert med == 30 and lo <= med <= hi and hi == math.inf
    med, lo, hi = m.bootstrap_median([5.0] * 5)
    assert med == lo == hi == 5.0
    med, lo, hi = m.bootstrap_median([math.inf] * 3 + [1.0] * 2)
    assert med == math.inf


def test_summary_table_ratios_and_censoring(m):
    runs = []
    for s in range(5):  # fnas reaches top1 at 100, top0.2 at 200; ppo top1 at 500 or never
        runs.append(run("fnas", s, [(50, 0.8, "t"), (100, 0.92, "t"), (200, 0.96, "t")]))
        runs.append(run("ppo", s, [(100, 0.5, "t"), (500 if s < 3 else 2000, 0.93, "t")]))
    summary = m.summarise(runs, REFERENCE, 1000.0, {})
    assert summary["targets"] == {"top1": 0.9, "top0.2": 0.95}
    f, p = summary["table"]["fnas"], summary["table"]["ppo"]
    assert f["top1"]["reached"] == 5 and f["top1"]["median"] == 100
    assert p["top1"]["reached"] == 3 and p["top1"]["median"] == 500
    assert p["top0.2"]["reached"] == 0 and p["top0.2"]["median"] == math.inf
    r = summary["ratios"]["ppo/fnas"]
    assert r["top1"] == {"ratio": 5.0, "kind": "="}
    assert r["top0.2"] == {"ratio": 1000.0 / 200, "kind": ">"}  # ppo missed: at least C/200
    md = m.table_md(summary)
    assert "| ppo | 5 | 3/5 | 500 [" in md and "> 1000" in md and "> 5.00x" in md


def test_post_hoc_targets_are_the_reference_best_and_reas_final_best(m):
    ref = {"summary": {**REFERENCE["summary"], "reward": {"max": 0.97}}}
    runs = []
    for s in range(3):  # rea ends at 0.96, 0.98, 0.99 (median 0.98); fnas reaches 0.98 at 300
        runs.append(run("rea", s, [(100, 0.9, "t"), (800, (0.96, 0.98, 0.99)[s], "t")]))
        runs.append(run("fnas", s, [(100, 0.975, "t"), (300, 0.98, "t")]))
    post = m.summarise(runs, ref, 1000.0, {})["post_hoc"]
    assert post["targets"] == {"reference_max": 0.97, "rea_final": 0.98}
    assert post["table"]["fnas"]["reference_max"]["median"] == 100
    assert post["table"]["fnas"]["rea_final"]["median"] == 300
    assert post["table"]["rea"]["rea_final"]["reached"] == 2
    assert "| fnas | 3/3 | 100 [100, 100] | 3/3 | 300 [300, 300] |" in m.table_md(
        m.summarise(runs, ref, 1000.0, {}))
    assert m.summarise(runs[1::2], REFERENCE, 1000.0, {})["post_hoc"]["targets"] == {}


def test_with_source_adds_the_sources_compute_and_compares_with_scratch(m):
    runs = []
    for s in range(3):  # the source cost 200; its runs reach top1 at 10, top0.2 never
        r = run("fnas-res14q", s, [(10, 0.92, "t"), (20, 0.93, "t")])
        runs.append({**r, "source": "res14q", "source_cpu_s": 200.0})
        runs.append(run("fnas-scratch", s, [(300, 0.91, "t"), (600, 0.96, "t")]))
        # a variant whose runs do not record their source's cost is left out
        runs.append({**run("fnas", s, [(4, 0.99, "t")]), "source": "macs4m"})
    summary = m.summarise(runs, REFERENCE, 1000.0, {})
    ws = summary["with_source"]
    assert set(ws["table"]) == {"fnas-res14q"}
    row = ws["table"]["fnas-res14q"]
    assert row["source_cpu_s"] == 200.0
    assert row["top1"]["values"] == [210.0] * 3 and row["top1"]["median"] == 210.0
    assert row["top1"]["vs_scratch"] == {"ratio": pytest.approx(300 / 210), "kind": "="}
    assert row["top0.2"]["median"] == math.inf  # a miss stays a miss, source or not
    assert row["top0.2"]["vs_scratch"]["kind"] == "<"
    md = m.table_md(summary)
    assert "| fnas-res14q | 200 | 210 [210, 210] | 1.43x |" in md


def test_learning_gain_compares_first_and_last_trainings(m):
    pts = [(i, 0.5, "t") for i in range(16)] + [(16 + i, 0.8, "t") for i in range(16)]
    g = m._learning(run("ppo", 0, pts)["curve"])
    assert g["gain"] == pytest.approx(0.3)
    assert m._learning(run("ppo", 0, pts[:20])["curve"])["gain"] is None  # too few


def test_size_of_what_is_trained_counts_trainings_only(m):
    c = run("fnas", 0, [(10, 0.8, "t"), (20, 0.9, "t"), (30, 0.99, "p"), (40, 0.95, "c")])
    for row, macs in zip(c["curve"], (2e6, 4e6, 9e6, 1e6), strict=True):
        row["macs"] = macs
    summary = m.summarise([c], REFERENCE, 1000.0, {})
    p = summary["per_run"]["fnas-s0"]
    assert p["macs"] == 1e6  # the best real result is the cached one
    assert p["macs_trained"] == 3e6  # median of the two trainings; prediction and cache not
    assert "| 1.00 [1.00, 1.00] | 3.00 [3.00, 3.00] |" in m.table_md(summary)


def test_reference_size_breakdown_solves_the_reward_for_the_accuracy_needed(bench_script):
    ref = bench_script("mnist5k_reference")
    from fnas.tasks.reward import RewardConfig, mnas_reward

    reward = {"metric": "macs", "target": 8e6}
    cfg = RewardConfig(**reward)
    ok = [{"macs": m, "accuracy": a, "reward": mnas_reward(a, m, cfg)}
          for m, a in [(4e6, 0.90), (8e6, 0.93), (16e6, 0.97), (2e6, 0.80)]]
    targets = {"t": {"reward": ok[0]["reward"]}}  # only the 4M sample reaches it
    s = ref.size_breakdown(ok, targets, reward)
    assert s["macs"]["min"] == 2e6 and s["macs"]["median"] == 6e6
    assert s["macs"]["share_under_6M"] == 0.5 and s["accuracy_max"] == 0.97
    t = s["targets"]["t"]
    assert t["macs_of_samples_reaching"] == [4e6, 4e6]
    for key, macs in [("1.5M", 1.5e6), ("6M", 6e6), ("median", 6e6)]:
        need = t["accuracy_needed_at"][key]
        assert mnas_reward(need, macs, cfg) == pytest.approx(ok[0]["reward"])
    assert t["accuracy_needed_at"]["1.5M"] < 0.90 < t["accuracy_needed_at"]["6M"]


def test_transfer_against_fnas_from_scratch_with_the_sources_compute_beside(m):
    runs = []
    for s in range(3):  # from scratch: top1 at 300; from mnist5k (source 150): top1 at 100
        runs.append(run("fnas-decompose", s, [(300, 0.91, "t"), (600, 0.96, "t")]))
        r = run("fnas-from-mnist5k", s, [(100, 0.92, "t"), (200, 0.96, "t")])
        runs.append({**r, "source": "mnist5k", "source_cpu_s": 150.0})
        r = run("fnas-from-mnist5k-judge", s, [(200, 0.92, "t")])
        runs.append({**r, "source": "mnist5k", "source_cpu_s": 150.0})
    summary = m.summarise(runs, REFERENCE, 1000.0, {})
    r = summary["ratios"]
    assert r["fnas-decompose/fnas-from-mnist5k"]["top1"] == {"ratio": 3.0, "kind": "="}
    assert r["fnas-decompose/fnas-from-mnist5k-judge"]["top0.2"]["kind"] == "<"
    assert r["fnas-from-mnist5k-judge/fnas-from-mnist5k"]["top1"]["ratio"] == 2.0
    assert "fnas-decompose/fnas-res14" not in r  # no run of it
    md = m.table_md(summary)
    assert "| fnas-decompose/fnas-from-mnist5k | 3.00x | 3.00x | 150 |" in md
    assert "| fnas-from-mnist5k-judge/fnas-from-mnist5k | 2.00x | > 5.00x | 150 |" in md


def test_trainings_to_each_target_cpu_s_per_training_and_the_machine(m):
    """What separates the search from the machine: the trainings a run needed (a cached or
    predicted row is no training), the CPU-s of a training, and the calibration factor, which
    runs made before calibration lack."""
    a = run("fnas", 0, [(10, 0.8, "t"), (15, 0.91, "c"), (20, 0.92, "p"), (40, 0.96, "t"),
                        (60, 0.5, "t")])
    a["calibration"] = {"factor": 1.5}
    b = run("fnas", 1, [(20, 0.8, "t"), (40, 0.93, "t"), (80, 0.94, "t")])
    summary = m.summarise([a, b], REFERENCE, 1000.0, {})
    pa, pb = summary["per_run"]["fnas-s0"], summary["per_run"]["fnas-s1"]
    assert pa["trainings_to"] == {"top1": 1, "top0.2": 2}  # the cached row reached top1
    assert pb["trainings_to"] == {"top1": 2, "top0.2": None}  # missed: no count
    assert pa["cpu_s_per_training"] == 20 and pb["cpu_s_per_training"] == pytest.approx(80 / 3)
    assert pa["calibration"] == 1.5 and pb["calibration"] is None
    row = summary["table"]["fnas"]
    assert row["trainings_to"]["top1"]["median"] == 1.5
    assert row["trainings_to"]["top0.2"]["max"] == 2 and row["calibration"]["median"] == 1.5
    md = m.table_md(summary)
    assert "| fnas | 2 [1, 2] | 2 [2, 2] | 23.33 [20.00, 26.67] | 1.50 [1.50, 1.50] |" in md


def test_calibration_repeats_reference_trainings_and_only_at_the_references_protocol(
        bench_script, tmp_path, monkeypatch):
    """The factor is the median of (this machine's CPU-s / the reference's) over the
    calibration trainings, each at its recorded seed; a run at another proxy (--quick) gets
    none. (The trainer is replaced here: the bookkeeping is the subject.)"""
    import argparse
    import json

    ab = bench_script("ablation_mnist5k")
    proxy = {"task": {"dataset": "digits", "epochs": 1}}
    first = [{"index": i, "arch": f"a{i}", "seed": 100 + i, "cpu_s": 2.0, "accuracy": 0.5}
             for i in range(50)]
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"settings": {"proxy": proxy}, "first": first}))
    seen = []

    def fake_train(p, epochs, arch, seed):
        seen.append((arch, seed))
        return {"cpu_s": 3.0 if arch == "a1" else 4.0, "accuracy": 0.5}

    monkeypatch.setattr(ab, "train_reference", fake_train)
    cal = ab.calibrate(argparse.Namespace(reference=str(ref), proxy=proxy))
    assert seen == [(f"a{i}", 100 + i) for i in ab.CALIBRATION]
    assert cal["factor"] == pytest.approx(1.75)  # median of 1.5 and 2.0
    assert all(t["same_accuracy"] for t in cal["trainings"]) and "avx512" in cal["cpu"]
    other = {"task": {"dataset": "digits", "epochs": 1, "max_samples": 400}}
    assert ab.calibrate(argparse.Namespace(reference=str(ref), proxy=other)) is None
    # before and after the search: the median over both samples, each sample's factor kept
    before = {**cal, "factor": 3.0, "trainings": [
        {**t, "cpu_s": 6.0} for t in cal["trainings"]]}
    both = ab.calibrate(argparse.Namespace(reference=str(ref), proxy=proxy), before)
    assert both["before"] == 3.0 and both["after"] == pytest.approx(1.75)
    assert both["factor"] == pytest.approx(2.5)  # median of 1.5, 2.0, 3.0, 3.0
    assert len(both["trainings"]) == 4


def test_calibrated_compute_divides_each_run_by_its_factor_and_misses_by_the_largest(m):
    """Runs made hours apart on a VM whose speed drifted: each run's CPU-s over its own
    calibration factor, a variant with an uncalibrated run left out, a miss counted as more
    than C over the variant's largest factor."""
    fast = [run("fnas-default-cal", s, [(100 * (s + 1), 0.96, "t")]) for s in range(3)]
    for r, f in zip(fast, (1.0, 2.0, 2.0), strict=True):
        r["calibration"] = {"factor": f}
    slow = [run("ppo-default", s, [(400, 0.93, "t"), (900, 0.97, "t")]) for s in range(2)]
    slow.append(run("ppo-default", 2, [(400, 0.8, "t")]))  # missed both
    for r in slow:
        r["calibration"] = {"factor": 2.0}
    old = run("fnas-default", 0, [(10, 0.99, "t")])  # no calibration: no calibrated row
    summary = m.summarise(fast + slow + [old], REFERENCE, 1000.0, {})
    cal = summary["table"]["fnas-default-cal"]["calibrated"]
    assert cal["top1"]["values"] == [100.0, 100.0, 150.0] and cal["budget"] == 500.0
    assert "calibrated" not in summary["table"]["fnas-default"]
    assert summary["table"]["ppo-default"]["calibrated"]["top1"]["values"] == [200, 200, math.inf]
    r = summary["ratios_calibrated"]
    assert set(r) == {"ppo-default/fnas-default-cal"}  # fnas-default is not calibrated
    assert r["ppo-default/fnas-default-cal"]["top1"] == {"ratio": 2.0, "kind": "="}
    assert r["ppo-default/fnas-default-cal"]["top0.2"]["ratio"] == pytest.approx(450 / 100)
    md = m.table_md(summary)
    assert "| ppo-default/fnas-default-cal | 2.00x | 4.50x |" in md
    assert "| ppo-default | 2/3 | 200 [200, > 500] | 2/3 | 450 [450, > 500] |" in md
