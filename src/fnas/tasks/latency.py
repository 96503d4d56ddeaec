"""Latency: the median of repeated batch-1 forward passes on the target device, on one torch
thread on the CPU, with a check that the machine let the timing run."""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from fnas.tasks.threads import torch_threads

__all__ = ["measure_latency", "time_forwards", "warn_if_loaded", "Latency", "LOADED_SHARE"]

logger = logging.getLogger(__name__)

LOADED_SHARE = 0.8
"""A CPU timing is flagged as taken under load when the timing thread got less than this
share of a CPU while it ran (a quiet machine gives it about 1.0)."""

_warned = False


@dataclass(frozen=True)
class Latency:
    """One latency measurement."""

    ms: float
    """Median wall time of a batch-1 forward, in milliseconds."""
    cpu_share: float | None
    """CPU seconds over wall seconds of the timing thread while it timed (on the CPU; None
    on another device): about 1.0 on a quiet machine, less when other work took the CPU."""

    @property
    def loaded(self) -> bool:
        """Whether the machine was too busy for the timing to be trusted."""
        return self.cpu_share is not None and self.cpu_share < LOADED_SHARE

    def note(self) -> str:
        """A one-line note for a loaded measurement ("" otherwise)."""
        if not self.loaded:
            return ""
        return (f"latency measured under load: the timing got {100 * self.cpu_share:.0f}% "
                "of a CPU (inflated)")


def time_forwards(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    device: str | torch.device = "cpu",
    repeats: int = 30,
    warmup: int = 5,
) -> Latency:
    """Median wall time in milliseconds of ``repeats`` batch-1 forwards, after ``warmup``,
    and the share of a CPU the timing got.

    On the CPU the forwards run on one torch thread (the caller's setting is restored after),
    as mobile latency is quoted: a count that does not depend on the machine's cores or on
    the threads a training used, and one that other work on the machine slows least. The
    median, not the mean, because a shared machine's hiccups land in the tail; a machine so
    busy that the timing thread got less than :data:`LOADED_SHARE` of a CPU is flagged
    (:attr:`Latency.loaded`). On CUDA each forward is synchronised so the time covers the
    kernels, not only their launch.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    # A private generator: timing must not advance the caller's global RNG.
    x = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    cpu = device.type == "cpu"
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode(), torch_threads(1 if cpu else 0):
        for _ in range(warmup):
            model(x)
        sync()
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            model(x)
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
        cpu_s, wall_s = time.thread_time() - cpu0, time.perf_counter() - wall0
    model.train(was_training)
    share = min(1.0, cpu_s / wall_s) if cpu and wall_s > 0 else None
    return Latency(float(statistics.median(times)), share)


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    device: str | torch.device = "cpu",
    repeats: int = 30,
    warmup: int = 5,
) -> float:
    """Median wall time in milliseconds of ``repeats`` batch-1 forwards, after ``warmup``
    (:func:`time_forwards`); a timing taken under load is warned about once per process."""
    lat = time_forwards(model, input_shape, device=device, repeats=repeats, warmup=warmup)
    warn_if_loaded(lat)
    return lat.ms


def warn_if_loaded(lat: Latency) -> None:
    """Warn, once per process, that a latency was measured on a loaded machine."""
    global _warned
    if lat.loaded and not _warned:
        _warned = True
        logger.warning("%s: other work is using the CPU, so latencies (and a latency reward) "
                       "read high; measure on a quiet machine (docs/GUIDE.md, \"Threads and a "
                       "busy machine\")", lat.note())
