"""Proxy task: reward, trainer on real digits, rollouts that fail without raising."""

import math

import pytest
import torch

from fnas.errors import ConfigError
from fnas.nn import build_model
from fnas.space import ArchSpec, mnas_default
from fnas.tasks import (
    RewardConfig,
    TaskConfig,
    measure_latency,
    mnas_reward,
    run_rollout,
)

TINY = "cn_r1_k3_s1_c16 | ir_r1_k3_s2_e3_c24 | cn_r1_k1_s1_c64"
FAST = dict(epochs=4, latency_repeats=3)


def test_reward_soft_and_hard():
    soft = RewardConfig("latency", 10.0, "soft")
    assert mnas_reward(0.8, 10.0, soft) == pytest.approx(0.8)
    assert mnas_reward(0.8, 20.0, soft) == pytest.approx(0.8 * 2 ** -0.07)
    assert mnas_reward(0.8, 5.0, soft) == pytest.approx(0.8 * 0.5 ** -0.07)
    hard = RewardConfig("macs", 1e6, "hard")
    assert mnas_reward(0.8, 0.5e6, hard) == pytest.approx(0.8)
    assert mnas_reward(0.8, 2e6, hard) == pytest.approx(0.4)
    assert mnas_reward(0.7, None, RewardConfig()) == 0.7
    with pytest.raises(ConfigError):
        mnas_reward(0.8, None, soft)
    for bad in (dict(metric="flops"), dict(mode="medium"), dict(target=-1.0)):
        with pytest.raises(ConfigError):
            RewardConfig(**bad)


def test_soft_target_only_scales_the_reward_and_the_hard_one_reorders():
    """What the docs say of the target: soft searches with different targets rank alike."""
    nets = [(0.97, 12e6), (0.93, 5e6), (0.85, 1.5e6)]
    def order(cfg):
        return sorted(range(3), key=lambda i: mnas_reward(*nets[i], cfg))
    soft4, soft8 = RewardConfig("macs", 4e6), RewardConfig("macs", 8e6)
    ratios = {mnas_reward(a, m, soft4) / mnas_reward(a, m, soft8) for a, m in nets}
    assert max(ratios) == pytest.approx(min(ratios)) == pytest.approx(0.5 ** 0.07)
    assert order(soft4) == order(soft8)
    assert order(RewardConfig("macs", 4e6, "hard")) != order(RewardConfig("macs", 20e6, "hard"))


def test_task_config_validation_and_signature():
    for bad in (dict(epochs=0), dict(batch_size=1), dict(lr=-1.0), dict(val_fraction=1.0),
                dict(device="nonsense")):
        with pytest.raises(ConfigError) as e:
            TaskConfig(**bad)
        assert "\n" not in str(e.value)
    a, b = TaskConfig(), TaskConfig(epochs=6)
    assert a.signature != b.signature
    assert a.signature == TaskConfig(latency_repeats=0).signature  # latency sampling only


@pytest.mark.slow
def test_trainer_beats_chance_on_digits():
    res = run_rollout(TINY, TaskConfig(**FAST), RewardConfig(), seed=0).result
    assert res.status == "ok", res.message
    assert res.accuracy > 0.6  # 10 classes: chance is 0.1
    assert res.train_losses[-1] < res.train_losses[0]
    assert res.latency_ms > 0 and res.params > 0 and res.macs > 0
    # The space's own centre architecture also learns on digits in 3 epochs.
    res = run_rollout(mnas_default(8), TaskConfig(epochs=3, latency_repeats=0),
                      RewardConfig(), seed=0).result
    assert res.status == "ok" and res.accuracy > 0.5, res


def test_rollout_is_deterministic_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = run_rollout(TINY, TaskConfig(**FAST), RewardConfig(), seed=3)
    assert torch.equal(state, torch.get_rng_state())
    b = run_rollout(TINY, TaskConfig(**FAST), RewardConfig(), seed=3)
    c = run_rollout(TINY, TaskConfig(**FAST), RewardConfig(), seed=4)
    assert a.result.train_losses == b.result.train_losses
    assert a.result.accuracy == b.result.accuracy
    assert a.result.train_losses != c.result.train_losses
    for k, v in a.weights.items():
        assert torch.equal(v, b.weights[k]), k


def test_weights_out_and_back_in():
    task1 = TaskConfig(epochs=1, latency_repeats=0)
    first = run_rollout(TINY, TaskConfig(epochs=4, latency_repeats=0), RewardConfig(), 0)
    model = build_model(ArchSpec.parse(TINY), 1, 10)
    assert set(first.weights) == set(model.state_dict())
    assert all(v.device.type == "cpu" for v in first.weights.values())
    scratch = run_rollout(TINY, task1, RewardConfig(), 1).result
    warm = run_rollout(TINY, task1, RewardConfig(), 1, init_weights=first.weights).result
    assert warm.accuracy > scratch.accuracy  # starting from trained weights helps
    partial = {k: v for k, v in first.weights.items() if k.startswith("blocks.0.")}
    assert run_rollout(TINY, task1, RewardConfig(), 1, init_weights=partial).result.ok



def test_on_epoch_sees_each_epoch_and_changes_nothing():
    from fnas.tasks import evaluate, load_dataset

    data = load_dataset("digits")
    curve: list[tuple[int, float]] = []

    def on_epoch(epoch: int, model: torch.nn.Module) -> None:
        assert model.training
        curve.append((epoch, evaluate(model, data.x_val, data.y_val)))

    task = TaskConfig(epochs=2, latency_repeats=0)
    a = run_rollout(TINY, task, RewardConfig(), seed=5, on_epoch=on_epoch)
    b = run_rollout(TINY, task, RewardConfig(), seed=5)
    assert [e for e, _ in curve] == [1, 2]
    assert curve[-1][1] == a.result.accuracy
    assert a.result.train_losses == b.result.train_losses  # evaluating is not training
    for k, v in a.weights.items():
        assert torch.equal(v, b.weights[k]), k

@pytest.mark.parametrize(
    ("arch", "task", "init", "status", "needle"),
    [
        (TINY, dict(lr=1e6), None, "nan", "nan"),
        ("ir_r1_k4_s1_e6_c8", {}, None, "invalid", "k4"),
        (TINY, dict(dataset="nosuchdata"), None, "invalid", "nosuchdata"),
        (TINY, dict(dataset="cifar10:/nonexistent/dir"), None, "invalid", "/nonexistent/dir"),
        (TINY, dict(batch_size=5000), None, "invalid", "batch_size"),
        (TINY, {}, {"blocks.0.0.conv.weight": torch.zeros(1)}, "invalid", "shape"),
        (TINY, {}, {"no.such.weight": torch.zeros(1)}, "invalid", "no.such.weight"),
        (TINY, {}, {"blocks.0.0.conv.weight": "not a tensor"}, "error", "AttributeError"),
    ],
)
def test_failing_rollouts_are_recorded_not_raised(arch, task, init, status, needle):
    reward = RewardConfig(failure_reward=-1.0)
    cfg = TaskConfig(**{"epochs": 2, "latency_repeats": 0, **task})
    out = run_rollout(arch, cfg, reward, seed=0, init_weights=init)
    res = out.result
    assert res.status == status, res
    assert needle in res.message and "\n" not in res.message
    assert res.reward == -1.0 and out.weights is None and res.accuracy is None
    assert res.to_dict()["status"] == status


def test_latency_is_a_positive_median_and_restores_mode():
    model = build_model(mnas_default(8), 1, 10).train()
    ms = measure_latency(model, (1, 8, 8), repeats=5, warmup=1)
    assert ms > 0 and math.isfinite(ms)
    assert model.training
