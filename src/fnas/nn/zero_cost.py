"""Zero-cost proxies: scores of a network at initialisation, from one minibatch.

A proxy costs one forward and one backward pass of a freshly initialised network (a few
percent of a proxy training) and, on some spaces and tasks, ranks the trained accuracy well
(Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS"). On the project's mnist5k
reference (``benchmarks/critic_inputs.py``) the gradient norm and SNIP correlate with the real
accuracy; their sign differs between spaces and tasks in the literature, so fnas feeds them to
the critic as inputs whose weight it learns, never as a ranking by themselves.

- ``grad_norm``: the sum over parameter tensors of the L2 norm of the cross-entropy loss's
  gradient.
- ``snip``: the sum over weights of ``|w * dL/dw|`` (Lee et al. 2019, connection
  sensitivity), over convolution and linear weights.

Both are computed in train mode (batch-norm uses the batch's statistics, as in training), with
the model's own seeded initialisation, on one fixed minibatch; the model is discarded after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["PROXIES", "zero_cost"]

PROXIES = ("grad_norm", "snip")
"""The proxies :func:`zero_cost` computes, in its output's order."""


def zero_cost(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              which: Sequence[str] = PROXIES) -> dict[str, float]:
    """The proxies of ``model`` (freshly initialised) on the minibatch ``(x, y)``.

    Non-finite values (a network whose loss overflows at initialisation) come back as NaN;
    the caller decides what a missing proxy means.

    Raises:
        ValueError: an unknown proxy name.
    """
    unknown = [w for w in which if w not in PROXIES]
    if unknown:
        raise ValueError(f"unknown zero-cost proxy {unknown[0]!r}: expected one of {PROXIES}")
    model.train()
    model.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    out: dict[str, float] = {}
    if "grad_norm" in which:
        out["grad_norm"] = float(sum(p.grad.norm(2) for p in model.parameters()
                                     if p.grad is not None))
    if "snip" in which:
        total = 0.0
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None:
                total += float((m.weight.detach() * m.weight.grad).abs().sum())
        out["snip"] = total
    model.zero_grad(set_to_none=True)
    return {k: (v if math.isfinite(v) else math.nan) for k, v in out.items()}
