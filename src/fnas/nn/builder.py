"""Spec -> ``nn.Module``. The only place an :class:`~fnas.space.ArchSpec` becomes a network.

Parameter names are stable: ``blocks.{i}.{j}.<layer part>`` for layer ``j`` of block ``i``
(block 0 is the stem), then ``classifier``. The knowledge pool keys block weights on them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fnas.nn.blocks import make_layer
from fnas.space.spec import ArchSpec

__all__ = ["Net", "build_model", "block_prefix"]


def block_prefix(index: int) -> str:
    """State-dict prefix of block ``index`` (``"blocks.3."``)."""
    return f"blocks.{index}."


class Net(nn.Module):
    """Blocks in order, global average pool, linear classifier."""

    def __init__(self, spec: ArchSpec, in_chans: int = 3, num_classes: int = 1000) -> None:
        super().__init__()
        self.spec = spec
        blocks, chs = [], in_chans
        for b, skips in zip(spec.blocks, spec.layer_skips(in_chans), strict=True):
            layers = []
            for j, skip in enumerate(skips):
                layers.append(make_layer(b, chs, b.stride if j == 0 else 1, skip))
                chs = b.out_chs
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.Sequential(*blocks)
        self.num_features = chs
        self.classifier = nn.Linear(chs, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm/TF EfficientNet init: conv normal(fan_out), BN (1, 0), linear uniform(fan_out)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.weight.size(0))
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)  # (N, C, H', W')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x).mean((2, 3))  # (N, C)
        return self.classifier(x)  # (N, num_classes)


def build_model(spec: ArchSpec, in_chans: int = 3, num_classes: int = 1000) -> Net:
    """Build ``spec`` for ``in_chans``-channel input and ``num_classes`` outputs."""
    return Net(spec, in_chans, num_classes)
