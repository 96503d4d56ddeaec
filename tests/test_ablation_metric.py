"""The metric of benchmarks/ablation_real.py (issue 10) on hand-made curves: target, budget,
censoring, speed-up, and that a critic's prediction never counts as a reached reward."""

from __future__ import annotations

import argparse

import pytest


@pytest.fixture(scope="module")
def ab(bench_script):
    return bench_script("ablation_real")


def run(variant, seed, points, trainings=None):
    """points: (compute, reward, flags) per evaluation, in order."""
    curve = {k: [] for k in ("compute", "best", "trained", "reward", "arch", "accuracy",
                             "flags")}
    best, n = None, 0
    for i, (comp, r, fl) in enumerate(points):
        n += "t" in fl
        if "p" not in fl:
            best = r if best is None else max(best, r)
        for k, x in (("compute", comp), ("best", best), ("trained", n), ("reward", r),
                     ("arch", f"{variant}-{seed}-{i}"), ("accuracy", r), ("flags", fl)):
            curve[k].append(x)
    return {"variant": variant, "seed": seed, "curve": curve, "trainings": trainings or n,
            "train_seconds": points[-1][0], "overhead_seconds": 0.0}


def test_target_and_budget_are_vanilla_medians_and_speedup_is_their_ratio(ab):
    runs = [
        run("ppo", 0, [(10, 0.5, "t"), (20, 0.7, "t"), (30, 0.9, "t")]),    # reaches 0.8 at 30
        run("ppo", 1, [(10, 0.8, "t"), (20, 0.6, "t"), (40, 0.6, "t")]),    # at 10
        run("ppo", 2, [(10, 0.1, "t"), (20, 0.2, "t"), (50, 0.3, "t")]),    # never
        run("fnas", 0, [(2, 0.85, "t"), (4, 0.1, "t")]),                    # at 2
        run("fnas", 1, [(5, 0.2, "t"), (6, 0.81, "t")]),                    # at 6
        run("fnas", 2, [(3, 0.2, "t"), (39, 0.99, "t"), (41, 0.99, "t")]),  # at 39 (< C = 40)
    ]
    s = ab.summarise(argparse.Namespace(), runs, {})
    assert s["budget_compute"] == 40          # median of 40, 50, 30
    assert s["target_reward"] == pytest.approx(0.8)   # median of 0.9, 0.8, 0.3
    ppo, fnas = s["table"]["ppo"], s["table"]["fnas"]
    assert ppo["reached"] == 2 and ppo["compute_to_target_median"] == 30  # median(30, 10, inf)
    assert fnas["reached"] == 3 and fnas["compute_to_target_median"] == 6
    assert fnas["ratio_to_ppo"] == pytest.approx(5.0)
    assert ppo["ratio_to_ppo"] == pytest.approx(1.0)
    # best within C: run fnas-2's 0.99 at 41 is past the budget, its 0.99 at 39 is inside
    assert fnas["best_reward_within_budget"]["max"] == pytest.approx(0.99)
    assert ppo["best_reward_within_budget"]["min"] == pytest.approx(0.2)  # 0.3 came at 50 > C


def test_a_variant_that_reaches_t_in_fewer_than_half_its_runs_has_no_speedup(ab):
    runs = [run("ppo", s, [(10, 0.5, "t"), (20, 0.9, "t")]) for s in range(3)]
    runs += [run("rea", 0, [(1, 0.95, "t")]), run("rea", 1, [(1, 0.1, "t")]),
             run("rea", 2, [(1, 0.1, "t")])]
    s = ab.summarise(argparse.Namespace(), runs, {})
    rea = s["table"]["rea"]
    assert rea["reached"] == 1 and rea["compute_to_target_median"] is None
    assert rea["ratio_to_ppo"] is None
    row = ab.table_md(s).split("| rea |")[1].split("\n")[0]
    assert "> 20 [1, > 20]" in row        # a censored median, the miss shown as past C


def test_a_critic_prediction_is_never_a_reached_reward(ab):
    r = run("fnas", 0, [(1, 0.99, "p"), (2, 0.4, "t"), (3, 0.99, "pa")])
    assert ab.compute_to_reach(r, 0.9, 10) is None
    assert ab.best_within(r, 10) == (0.4, "fnas-0-1")
    ppo = [run("ppo", s, [(5, 0.5, "t"), (10, 0.9, "t")]) for s in range(3)]
    s = ab.summarise(argparse.Namespace(), ppo + [r], {})
    assert s["table"]["fnas"]["reached"] == 0
    assert s["mechanics"]["fnas"]["predicted"] == 2 and s["mechanics"]["fnas"]["trained"] == 1


def test_difficulty_is_the_share_of_random_samples_at_or_above_t(ab):
    ppo = [run("ppo", s, [(i, 0.5 + 0.1 * (i == 4), "t") for i in range(1, 5)])
           for s in range(3)]                                   # T = 0.6, 4 trainings each
    rnd = [run("random", 0, [(1, 0.7, "t"), (2, 0.1, "t"), (3, 0.2, "t"), (4, 0.6, "c")])]
    d = ab.summarise(argparse.Namespace(), ppo + rnd, {})["difficulty"]
    assert d["random_samples"] == 3 and d["share_reaching_target"] == pytest.approx(1 / 3)
    assert d["n"] == 4
    assert d["chance_n_uniform_samples_reach"] == pytest.approx(1 - (2 / 3) ** 4)


def test_a_retrained_best_keeps_the_cost_factor_it_had_in_the_search(ab):
    ppo = [run("ppo", s, [(5, 0.5, "t"), (10, 0.9, "t")]) for s in range(3)]
    for r in ppo:
        r["curve"]["accuracy"] = [0.5, 0.75]        # arch 1: reward 0.9 at accuracy 0.75
    retrained = {f"ppo-{s}-1": {"accuracy": 0.8} for s in range(3)}
    row = ab.summarise(argparse.Namespace(), ppo, retrained)["table"]["ppo"]
    assert row["retrained_accuracy"]["median"] == pytest.approx(0.8)
    assert row["retrained_reward"]["median"] == pytest.approx(0.8 * 0.9 / 0.75)
    with pytest.raises(ValueError, match="no accuracy"):
        ab.cost_factor(ppo[0], "not-in-the-run")
