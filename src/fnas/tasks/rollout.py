"""A rollout: one architecture trained on the proxy task and scored. A pure function.

``run_rollout(spec, task, reward, seed, init_weights)`` depends on nothing but its arguments
(and the files the task names): it seeds its own generators inside ``torch.random.fork_rng``,
so it leaves the caller's global RNG state untouched, and it never raises for a bad
architecture, a bad config, a NaN loss or an exception in training. Those become a
:class:`RolloutResult` with a status, a one-line message and the configured penalty reward.
Ray workers and the knowledge pool rely on exactly this.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import torch

from fnas.errors import ConfigError, FnasError
from fnas.nn.builder import build_model
from fnas.space.cost import arch_cost
from fnas.space.spec import ArchSpec
from fnas.tasks.datasets import load_dataset
from fnas.tasks.latency import time_forwards, warn_if_loaded
from fnas.tasks.reward import RewardConfig, mnas_reward
from fnas.tasks.trainer import (
    TaskConfig,
    TrainingDiverged,
    evaluate,
    schedule_steps,
    train_model,
)

__all__ = ["RolloutResult", "Rollout", "run_rollout", "STATUSES"]

STATUSES = ("ok", "invalid", "nan", "oom", "error")
"""ok; invalid (bad architecture/config/data); nan (diverged); oom; error (any other)."""


@dataclass(frozen=True)
class RolloutResult:
    """What a rollout reports; every field is JSON-able."""

    arch: str
    key: str
    status: str
    message: str
    reward: float
    accuracy: float | None = None
    latency_ms: float | None = None
    macs: int | None = None
    params: int | None = None
    train_seconds: float = 0.0
    epochs: int = 0
    seed: int = 0
    train_losses: tuple[float, ...] = ()
    steps: int = 0
    """Optimisation steps the training ran (0: not trained, or an evaluator that does not
    say)."""
    fidelity: float = 1.0
    """The fraction in (0, 1] of the full evaluation this result is (1: the full protocol)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train_losses"] = list(self.train_losses)
        return d


@dataclass(frozen=True)
class Rollout:
    """A result and, if training ran, the trained weights (CPU tensors, state-dict names)."""

    result: RolloutResult
    weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    msg = text if isinstance(e, FnasError) else f"{type(e).__name__}: {text}"
    return msg[:500]


def run_rollout(
    spec: ArchSpec | str,
    task: TaskConfig,
    reward: RewardConfig,
    seed: int,
    init_weights: Mapping[str, torch.Tensor] | None = None,
    *,
    return_weights: bool = True,
    on_epoch: Callable[[int, torch.nn.Module], None] | None = None,
    fidelity: float = 1.0,
) -> Rollout:
    """Train ``spec`` on ``task`` with ``seed`` and score it with ``reward``. Never raises
    for bad input or a failed training (``KeyboardInterrupt`` still propagates).

    ``init_weights`` is a (partial) state dict: every entry must name a parameter or buffer
    of the built model with the same shape; the rest keep their fresh initialisation.
    ``on_epoch`` goes to :func:`~fnas.tasks.train_model` (called after each epoch; its time
    counts in ``train_seconds``, an exception in it makes an ``error`` result).
    ``fidelity`` < 1 trains that fraction of the full training's optimisation steps
    (:func:`~fnas.tasks.trainer.schedule_steps`; the schedule compressed to them): a
    low-fidelity result, recorded as such (``fidelity``, ``steps``, ``epochs`` begun).
    """
    arch_text = spec if isinstance(spec, str) else spec.to_str()
    key, macs, params = "", None, None
    t0 = time.perf_counter()
    try:
        if isinstance(spec, str):
            spec = ArchSpec.parse(spec)
        key = spec.key
        data = load_dataset(task.dataset, val_fraction=task.val_fraction,
                            split_seed=task.split_seed, max_samples=task.max_samples,
                            image_size=task.image_size)
        cost = arch_cost(spec, data.image_size, data.in_chans, data.num_classes)
        macs, params = cost.macs, cost.params
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the one place a rollout touches the global RNG
            model = build_model(spec, data.in_chans, data.num_classes)
        if init_weights:
            _load_partial(model, init_weights)
        model.to(task.device)
        gen = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        n_steps = schedule_steps(int(data.x_train.shape[0]), task, fidelity)
        losses = train_model(model, data, task, gen, on_epoch,
                             steps=None if fidelity >= 1 else n_steps)
        train_s = time.perf_counter() - t0
        acc = evaluate(model, data.x_val, data.y_val)
        lat, note = None, ""
        if task.latency_repeats > 0:
            shape = (data.in_chans, data.image_size, data.image_size)
            timed = time_forwards(model, shape, device=task.device, repeats=task.latency_repeats)
            warn_if_loaded(timed)
            lat, note = timed.ms, timed.note()  # a loaded machine's timing says so
        r = mnas_reward(acc, lat if reward.metric == "latency" else macs, reward)
        result = RolloutResult(arch_text, key, "ok", note, r, acc, lat, macs, params, train_s,
                               len(losses), seed, tuple(losses), n_steps, float(fidelity))
        weights = None
        if return_weights:
            weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return Rollout(result, weights)
    except FnasError as e:
        status = "invalid"
        err: BaseException = e
    except TrainingDiverged as e:
        status, err = "nan", e
    except (torch.OutOfMemoryError, MemoryError) as e:
        status, err = "oom", e
    except Exception as e:  # noqa: BLE001 - a rollout must never raise into the search
        status, err = "error", e
    result = RolloutResult(arch_text, key, status, _one_line(err), reward.failure_reward,
                           None, None, macs, params, time.perf_counter() - t0, 0, seed,
                           fidelity=float(fidelity))
    return Rollout(result, None)


def _load_partial(model: torch.nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    own = model.state_dict()
    for k, v in weights.items():
        if k not in own:
            raise ConfigError(f"initial weight {k!r} names no tensor of this architecture")
        if tuple(own[k].shape) != tuple(v.shape):
            raise ConfigError(
                f"initial weight {k!r} has shape {tuple(v.shape)}, model has {tuple(own[k].shape)}"
            )
    model.load_state_dict(dict(weights), strict=False)
