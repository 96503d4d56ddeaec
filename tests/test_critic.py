"""The ensemble critic: learns, knows what it does not know, values prefixes, resumes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import kendalltau

from fnas.agent.critic import CriticConfig, EnsembleCritic
from fnas.errors import ConfigError, StoreError
from fnas.search.checkpoint import load_checkpoint, save_checkpoint

SIZES = [3] * 8  # NAS-Bench-Macro
TARGET = np.array([2, 1, 0, 2, 1, 0, 2, 1])


def synthetic(x: np.ndarray) -> np.ndarray:
    """Matches with TARGET, normalised with the uniform distribution's mean and std."""
    return ((x == TARGET).sum(1) - 8 / 3) / np.sqrt(8 * 2 / 9)


def random_archs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3, (n, 8))


def trained(x: np.ndarray, seed: int = 0, fits: int = 3, **cfg) -> EnsembleCritic:
    critic = EnsembleCritic(SIZES, CriticConfig(**cfg), seed=seed)
    critic.add(x, synthetic(x))
    for _ in range(fits):
        critic.fit()
    return critic


@pytest.fixture(scope="module")
def critic() -> EnsembleCritic:
    return trained(random_archs(150, 0))


def test_learns_a_known_function(critic):
    test = random_archs(200, 1)
    mean, spread = critic.predict(test)
    assert mean.shape == spread.shape == (200,)
    tau = kendalltau(mean, synthetic(test)).statistic
    assert tau > 0.8, tau
    assert np.all(spread > 0) and np.all(np.isfinite(spread))


def test_spread_grows_off_the_training_data():
    x = random_archs(150, 2)
    x[:, 0] = 0
    critic = trained(x, seed=3)
    near = random_archs(200, 4)
    near[:, 0] = 0
    far = near.copy()
    far[:, 0] = 2  # a choice never seen in the data
    s_near, s_far = critic.predict(near)[1], critic.predict(far)[1]
    assert s_far.mean() > 1.5 * s_near.mean(), (s_near.mean(), s_far.mean())


def test_prefix_values(critic):
    x = np.vstack([TARGET, random_archs(20, 5)])
    pv = critic.prefix_values(x)
    assert pv.shape == (21, 8)
    np.testing.assert_allclose(pv[:, 0], pv[0, 0], atol=1e-6)  # the empty prefix is shared
    # E[r] over uniform architectures is 0 in these units; the data's mean is close to it
    assert abs(pv[0, 0] - synthetic(random_archs(150, 0)).mean()) < 0.2, pv[0, 0]
    assert abs(pv[0, 0]) < 0.3, pv[0, 0]
    # every further matching decision raises the expected reward (by 0.75 in these units)
    assert np.all(np.diff(pv[0]) > 0), pv[0]
    assert pv[0, -1] - pv[0, 0] > 1.5, pv[0]
    # the prefix of all 8 decisions but one is close to the full architecture's prediction
    assert abs(pv[0, -1] - critic.predict(TARGET[None])[0][0]) < 1.5


def test_empty_critic_trusts_nothing():
    critic = EnsembleCritic(SIZES)
    mean, spread = critic.predict(random_archs(3, 0))
    assert np.all(mean == 0) and np.all(np.isinf(spread))
    assert np.isnan(critic.fit()["critic/loss"])
    assert critic.n_points == 0
    assert np.all(critic.prefix_values(random_archs(2, 0)) == 0)


def test_same_seed_same_predictions_other_seed_differs():
    x, test = random_archs(60, 6), random_archs(30, 7)
    a, b, c = (trained(x, seed=s, fits=1) for s in (11, 11, 12))
    np.testing.assert_array_equal(a.predict(test)[0], b.predict(test)[0])
    np.testing.assert_array_equal(a.prefix_values(test), b.prefix_values(test))
    assert not np.array_equal(a.predict(test)[0], c.predict(test)[0])


def test_state_round_trip_resumes_identically(tmp_path):
    x, more, test = random_archs(60, 8), random_archs(20, 9), random_archs(30, 10)
    original = trained(x, seed=5, fits=1, steps=30)
    tensors, meta = original.state()
    json.dumps(meta)  # JSON-able
    save_checkpoint(tmp_path, tensors, meta)  # through safetensors and JSON, as the loop does
    tensors, meta = load_checkpoint(tmp_path)
    restored = EnsembleCritic(SIZES, CriticConfig(steps=30), seed=99)  # seed is overwritten
    restored.load_state(tensors, meta)
    assert restored.n_points == original.n_points == 60
    np.testing.assert_array_equal(restored.predict(test)[0], original.predict(test)[0])
    for critic in (original, restored):  # new points draw counts, fit draws minibatches
        critic.add(more, synthetic(more))
        critic.fit()
    for a, b in zip(original.predict(test), restored.predict(test), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(original.prefix_values(test), restored.prefix_values(test))


def test_load_state_rejects_another_shape():
    tensors, meta = trained(random_archs(10, 0), fits=1, steps=5).state()
    with pytest.raises(StoreError, match="does not match"):
        EnsembleCritic(SIZES, CriticConfig(members=3)).load_state(tensors, meta)
    with pytest.raises(StoreError, match="does not match"):
        EnsembleCritic([3] * 7).load_state(tensors, meta)


@pytest.mark.parametrize("field,value", [
    ("members", 1), ("hidden", 0), ("layers", 0), ("lr", 0.0), ("weight_decay", -1.0),
    ("steps", 0), ("batch", 0), ("prefix_prob", 1.5), ("prefix_prob", -0.1)])
def test_config_validation(field, value):
    with pytest.raises(ConfigError, match=f"critic {field}="):
        CriticConfig(**{field: value})


def test_bad_input_names_the_value():
    critic = EnsembleCritic(SIZES)
    with pytest.raises(ValueError, match="decision 3 of row 0 is 5"):
        critic.add([[0, 0, 0, 5, 0, 0, 0, 0]], [0.0])
    with pytest.raises(ValueError, match="shape"):
        critic.predict(np.zeros((2, 7), dtype=int))
    with pytest.raises(ValueError, match="2 targets"):
        critic.add(random_archs(3, 0), [0.0, 1.0])
    with pytest.raises(ValueError, match="not finite"):
        critic.add(random_archs(1, 0), [float("nan")])
    with pytest.raises(ConfigError):
        EnsembleCritic([3, 0])
