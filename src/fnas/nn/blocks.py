"""Layers of the MnasNet family; parameter names follow timm so weights read familiarly.

Every layer class takes a :class:`~fnas.space.BlockSpec`, its input channels and its stride.
Its analytic cost is :func:`fnas.space.cost.layer_cost`, written beside this file's structure
one-to-one (a registry-driven test checks both against the built module).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fnas.space.cost import mid_channels, se_channels
from fnas.space.spec import BlockSpec

__all__ = ["SqueezeExcite", "ConvLayer", "DepthwiseSeparable", "InvertedResidual",
           "PoolShortcut", "LAYER_TYPES", "make_layer", "make_act"]


def make_act(code: str) -> nn.Module:
    """Activation module for an ``n`` token code (``re``, ``r6``, ``sw``, ``hs``)."""
    return {"re": nn.ReLU, "r6": nn.ReLU6, "sw": nn.SiLU, "hs": nn.Hardswish}[code](inplace=True)


class SqueezeExcite(nn.Module):
    """SE: global pool, 1x1 reduce + ReLU, 1x1 expand + sigmoid gate."""

    def __init__(self, chs: int, rd_chs: int) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(chs, rd_chs, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(rd_chs, chs, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        s = self.conv_expand(self.act(self.conv_reduce(s)))
        return x * torch.sigmoid(s)


class PoolShortcut(nn.Module):
    """Pooling shortcut: average-pool to the output size, then 1x1 conv + BN if channels change."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False) if in_chs != out_chs else None
        self.bn = nn.BatchNorm2d(out_chs) if in_chs != out_chs else None

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.adaptive_avg_pool2d(x, size)
        if self.conv is not None:
            x = self.bn(self.conv(x))
        return x


class _Layer(nn.Module):
    """Shared shortcut handling: ``none``, ``id`` or ``pool`` around the layer's main path."""

    def __init__(self, in_chs: int, out_chs: int, skip: str) -> None:
        super().__init__()
        self.skip = skip
        self.shortcut = PoolShortcut(in_chs, out_chs) if skip == "pool" else None

    def main(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x)
        if self.skip == "id":
            y = y + x
        elif self.skip == "pool":
            y = y + self.shortcut(x, y.shape[-2:])
        return y


class ConvLayer(_Layer):
    """Regular conv: kxk conv, BN, act [+SE]."""

    def __init__(self, b: BlockSpec, in_chs: int, stride: int, skip: str) -> None:
        super().__init__(in_chs, b.out_chs, skip)
        self.conv = nn.Conv2d(in_chs, b.out_chs, b.kernel, stride, b.kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(b.out_chs)
        self.act1 = make_act(b.act)
        self.se = SqueezeExcite(b.out_chs, se_channels(in_chs, b.se)) if b.se > 0 else None

    def main(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv(x)))
        return self.se(x) if self.se is not None else x


class DepthwiseSeparable(_Layer):
    """Depthwise-separable: kxk dw, BN, act [+SE], 1x1 pw, BN (no act)."""

    def __init__(self, b: BlockSpec, in_chs: int, stride: int, skip: str) -> None:
        super().__init__(in_chs, b.out_chs, skip)
        k = b.kernel
        self.conv_dw = nn.Conv2d(in_chs, in_chs, k, stride, k // 2, groups=in_chs, bias=False)
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.act1 = make_act(b.act)
        self.se = SqueezeExcite(in_chs, se_channels(in_chs, b.se)) if b.se > 0 else None
        self.conv_pw = nn.Conv2d(in_chs, b.out_chs, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(b.out_chs)

    def main(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_dw(x)))
        if self.se is not None:
            x = self.se(x)
        return self.bn2(self.conv_pw(x))


class InvertedResidual(_Layer):
    """MBConv: 1x1 expand, BN, act; kxk dw, BN, act [+SE]; 1x1 project, BN (no act)."""

    def __init__(self, b: BlockSpec, in_chs: int, stride: int, skip: str) -> None:
        super().__init__(in_chs, b.out_chs, skip)
        mid, k = mid_channels(in_chs, b.exp), b.kernel
        # NOTE: like TF MnasNet (not timm), e1 has no 1x1 expansion conv.
        if mid != in_chs:
            self.conv_pw = nn.Conv2d(in_chs, mid, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(mid)
            self.act1 = make_act(b.act)
        else:
            self.conv_pw = None
        self.conv_dw = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.act2 = make_act(b.act)
        self.se = SqueezeExcite(mid, se_channels(in_chs, b.se)) if b.se > 0 else None
        self.conv_pwl = nn.Conv2d(mid, b.out_chs, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(b.out_chs)

    def main(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_pw is not None:
            x = self.act1(self.bn1(self.conv_pw(x)))  # (N, mid, H, W)
        x = self.act2(self.bn2(self.conv_dw(x)))  # (N, mid, H/s, W/s)
        if self.se is not None:
            x = self.se(x)
        return self.bn3(self.conv_pwl(x))


LAYER_TYPES: dict[str, type[_Layer]] = {
    "cn": ConvLayer, "ds": DepthwiseSeparable, "ir": InvertedResidual,
}


def make_layer(b: BlockSpec, in_chs: int, stride: int, skip: str) -> nn.Module:
    """One layer of block ``b``; ``skip`` is the layer's *effective* shortcut."""
    return LAYER_TYPES[b.op](b, in_chs, stride, skip)
