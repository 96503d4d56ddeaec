"""benchmarks/knowledge_quality.py: its ranking scores, and a critic pre-trained on a real
store's results through the same gathering as a search (issue 20, part 4)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def kq(bench_script):
    return bench_script("knowledge_quality")


def test_scores_reward_a_ranking_by_its_top_picks(kq):
    truth = np.linspace(0.5, 1.0, 100)
    targets = {"top1": 0.995, "top10": 0.95}
    perfect = kq.scores(truth.copy(), truth, targets)
    assert perfect["spearman"] == pytest.approx(1.0)
    assert perfect["top1_reward"] == 1.0
    assert perfect["top10_reaching_top1"] == 1 and perfect["top10_reaching_top10"] == 10
    reverse = kq.scores(-truth, truth, targets)
    assert reverse["spearman"] == pytest.approx(-1.0)
    assert reverse["top1_reward"] == 0.5 and reverse["top10_reaching_top10"] == 0


def test_a_critic_fitted_on_good_points_ranks_them_first(kq):
    """The critic learns a decision that decides the reward from points in the gathered form."""
    from fnas.space.mnas import mnas_space

    space = mnas_space(28)
    rng = np.random.default_rng(0)
    x = np.array([space.sample(rng) for _ in range(120)])
    y = x[:, 0] + x[:, 4] + 0.1 * rng.standard_normal(len(x))  # op and filters decide
    critic = kq._critic(list(zip(map(tuple, x[:80]), y[:80], strict=True)), space.sizes, 0)
    out = kq.scores(critic.predict(x[80:])[0], y[80:], {"top10": float(np.quantile(y, 0.9))})
    assert out["spearman"] > 0.5  # 0.72 measured; an untrained critic gives about 0
