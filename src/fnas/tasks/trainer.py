"""The proxy task: train a built network for E epochs on real data, then score it.

The loop is deliberately plain (CleanRL style): in-memory tensors, a seeded permutation per
epoch, SGD with Nesterov momentum and a per-step cosine schedule with linear warm-up. A
``DataLoader`` would add worker and collation overhead that a few-thousand-image proxy task
does not need (``benchmarks/rollout_throughput.py`` measures this loop against a hand-written
minimal one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from fnas._limits import MAX_COUNT, MAX_IMAGE_SIZE, MAX_SEED, check_int, check_seed
from fnas.errors import ConfigError
from fnas.tasks.datasets import Dataset

__all__ = ["TaskConfig", "TrainingDiverged", "train_model", "evaluate", "check_device",
           "schedule_steps",
           "MAX_IMAGE_SIZE", "MAX_SEED", "MAX_COUNT", "check_int", "check_seed"]
# MAX_*, check_int and check_seed live in fnas._limits (the network builder reads them too)

def check_device(device: str) -> None:
    """Refuse, in one line, a CUDA device this process cannot see (before anything runs)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {device!r} is not a torch device") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: no CUDA device is visible "
                              "(torch.cuda.is_available() is False); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA "
                              "device(s) are visible")
    elif dev.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ConfigError(f"device {device!r}: fnas trains on cpu or cuda")


@dataclass(frozen=True)
class TaskConfig:
    """What a proxy training is: the data, the schedule and how latency is measured."""

    dataset: str = "digits"
    """``digits``, ``mnist5k``, ``cifar10:PATH``, ``idx:PATH`` (MNIST-format files),
    ``folder:PATH``, or the name of a dataset registered in this process
    (``fnas.register_dataset``: your tensors or torch Dataset)."""
    epochs: int = 5
    """Training epochs. BatchNorm needs steps: on digits, 1 epoch leaves every net near chance."""
    batch_size: int = 64
    """Minibatch size (the last incomplete minibatch of an epoch is dropped)."""
    lr: float = 0.1
    """Peak learning rate of SGD (Nesterov momentum 0.9), reached after the warm-up."""
    weight_decay: float = 5e-5
    """L2 weight decay."""
    warmup_epochs: float = 0.5
    """Linear warm-up length in epochs, then cosine decay to zero."""
    label_smoothing: float = 0.0
    """Cross-entropy label smoothing."""
    val_fraction: float = 0.2
    """Fraction of the data held out for the reward's accuracy (stratified, deterministic)."""
    split_seed: int = 0
    """Seed of the train/validation split (fixed across a search, unlike the rollout seed)."""
    max_samples: int | None = None
    """Use at most this many images (stratified subsample) before the split."""
    image_size: int | None = None
    """Resize images to this size; ``None`` keeps the dataset's own (folder: 32)."""
    device: str = "cpu"
    """Torch device for training and latency (``cpu``, ``cuda``, ``cuda:1``...)."""
    latency_repeats: int = 30
    """Timed batch-1 forwards per latency measurement (the median is kept); 0 skips it."""

    def __post_init__(self) -> None:
        ints = {"epochs": (1, MAX_COUNT), "batch_size": (2, MAX_COUNT),
                "latency_repeats": (0, MAX_COUNT), "max_samples": (1, MAX_COUNT),
                "image_size": (1, MAX_IMAGE_SIZE), "split_seed": (0, MAX_SEED)}
        for name, (lo, hi) in ints.items():  # integers as integers, before any other check
            value = getattr(self, name)
            if value is not None or name not in ("max_samples", "image_size"):
                object.__setattr__(self, name, check_int(value, f"task {name}", lo, hi))
        checks = [
            (self.epochs >= 1, "epochs", "must be >= 1"),
            (self.batch_size >= 2, "batch_size", "must be >= 2 (BatchNorm)"),
            (self.lr > 0 and math.isfinite(self.lr), "lr", "must be a positive number"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
            (self.warmup_epochs >= 0, "warmup_epochs", "must be >= 0"),
            (0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)"),
            (0 < self.val_fraction < 1, "val_fraction", "must be in (0, 1)"),
            (self.latency_repeats >= 0, "latency_repeats", "must be >= 0"),
            (self.image_size is None or 1 <= self.image_size <= MAX_IMAGE_SIZE, "image_size",
             f"must be in [1, {MAX_IMAGE_SIZE}]"),
            (self.max_samples is None or self.max_samples >= 1, "max_samples", "must be >= 1"),
            (0 <= self.split_seed <= MAX_SEED, "split_seed", "must be in [0, 2**32 - 1]"),
        ]
        for ok, name, why in checks:
            if not ok:
                raise ConfigError(f"task {name}={getattr(self, name)!r} {why}")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ConfigError(f"task device={self.device!r} is not a torch device") from None

    @property
    def signature(self) -> str:
        """Everything that changes a training's outcome; equal signatures share cached results."""
        keys = [f.name for f in fields(self) if f.name != "latency_repeats"]
        d = asdict(self)
        return ";".join(f"{k}={d[k]}" for k in keys)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def train_model(
    model: nn.Module, data: Dataset, cfg: TaskConfig, generator: torch.Generator,
    on_epoch: Callable[[int, nn.Module], None] | None = None, steps: int | None = None,
) -> list[float]:
    """Train ``model`` in place; returns the mean training loss of each epoch.

    ``steps`` (a lower fidelity, :func:`schedule_steps`): stop after that many minibatches,
    fewer than the full ``epochs x steps_per_epoch``; the schedule (warm-up, then cosine) is
    the full one compressed to them, so a short training still ends at a learning rate of
    zero. A last partial epoch's loss is the mean over its own steps. None: the full training.

    ``on_epoch(epoch, model)``, if given, is called after each epoch's loss check (``epoch``
    counts from 1), e.g. to record a learning curve with :func:`evaluate`. It must not change
    the weights or draw from ``generator``; the model is put back in train mode after it.

    Raises:
        TrainingDiverged: a minibatch loss is not finite.
    """
    device = torch.device(cfg.device)
    x, y = data.x_train.to(device), data.y_train.to(device)
    n = x.shape[0]
    steps_per_epoch = n // cfg.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(f"task batch_size={cfg.batch_size} exceeds the {n} training images")
    full = steps_per_epoch * cfg.epochs
    total = full if steps is None else max(1, min(int(steps), full))
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if total < full:  # the warm-up's share of the training is kept
        warm = int(cfg.warmup_epochs * steps_per_epoch * total / full)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    losses = []
    for epoch in range(-(-total // steps_per_epoch)):
        perm = torch.randperm(n, generator=generator).to(device)
        running = torch.zeros((), device=device)
        in_epoch = min(steps_per_epoch, total - epoch * steps_per_epoch)
        for s in range(in_epoch):
            idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            out = model(x[idx])  # (B, classes)
            loss = F.cross_entropy(out, y[idx], label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.detach()
        epoch_loss = float(running) / in_epoch
        # Checked once per epoch: a per-step .item() would stall a GPU pipeline. A NaN
        # persists once it appears, so the epoch mean still catches it.
        if not math.isfinite(epoch_loss):
            raise TrainingDiverged(f"training loss became {epoch_loss} in epoch {epoch + 1}")
        losses.append(epoch_loss)
        if on_epoch is not None:
            on_epoch(epoch + 1, model)
            model.train()
    return losses


def schedule_steps(n_train: int, cfg: TaskConfig, fidelity: float = 1.0) -> int:
    """Optimisation steps of a training of ``cfg`` on ``n_train`` images at ``fidelity`` (a
    fraction in (0, 1] of the full ``epochs x (n_train // batch_size)``; at least one)."""
    full = (n_train // cfg.batch_size) * cfg.epochs
    return full if fidelity >= 1 else max(1, min(full, round(full * fidelity)))


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (in eval mode) on ``x``, ``y``."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        out = model(x[i:i + batch_size].to(device))
        correct += int((out.argmax(1) == y[i:i + batch_size].to(device)).sum())
    return correct / max(1, x.shape[0])
