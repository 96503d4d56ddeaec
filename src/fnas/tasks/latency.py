"""Latency: the median of repeated batch-1 forward passes on the target device."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

__all__ = ["measure_latency"]


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    device: str | torch.device = "cpu",
    repeats: int = 30,
    warmup: int = 5,
) -> float:
    """Median wall time in milliseconds of ``repeats`` batch-1 forwards, after ``warmup``.

    The median, not the mean, because a shared machine's hiccups land in the tail. On CUDA each
    forward is synchronised so the time covers the kernels, not only their launch.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    # A private generator: timing must not advance the caller's global RNG.
    x = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            t0 = time.perf_counter()
            model(x)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    model.train(was_training)
    return float(statistics.median(times))
