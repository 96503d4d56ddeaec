"""Analytic parameter and multiply-add counts, layer by layer (pycls ``complexity`` style).

Each function here mirrors one module of :mod:`fnas.nn.blocks` line for line; the test suite
checks both counts against the built module for every op, SE and skip variant. No torch here,
so a controller or critic can price an architecture without building it.

Conventions (those of TF MnasNet, timm and fvcore): convs have no bias (BatchNorm follows),
BatchNorm counts its affine weight and bias as parameters and costs no multiply-adds (it folds
into the conv at inference), activations, pooling and the residual add cost nothing, SE counts
its two 1x1 convs (with bias), the classifier counts its weights and bias.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fnas.space.spec import ArchSpec, BlockSpec

__all__ = ["LayerCost", "BlockCost", "ArchCost", "arch_cost", "se_channels", "mid_channels",
           "out_size"]


@dataclass(frozen=True)
class LayerCost:
    params: int
    macs: int


@dataclass(frozen=True)
class BlockCost:
    """Cost of one block (all its layers) and the feature-map shapes around it."""

    index: int
    block: str
    in_chs: int
    out_chs: int
    in_size: int
    out_size: int
    params: int
    macs: int


@dataclass(frozen=True)
class ArchCost:
    """Per-block costs, the classifier's, and the totals."""

    blocks: tuple[BlockCost, ...]
    classifier_params: int
    classifier_macs: int
    input_size: int
    in_chans: int
    num_classes: int

    @property
    def params(self) -> int:
        return sum(b.params for b in self.blocks) + self.classifier_params

    @property
    def macs(self) -> int:
        return sum(b.macs for b in self.blocks) + self.classifier_macs

    def to_dict(self) -> dict:
        return {"params": self.params, "macs": self.macs, "input_size": self.input_size,
                "in_chans": self.in_chans, "num_classes": self.num_classes,
                "classifier": {"params": self.classifier_params, "macs": self.classifier_macs},
                "blocks": [asdict(b) for b in self.blocks]}


def out_size(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded conv (padding k // 2, odd k): ceil(size / stride)."""
    return (size - 1) // stride + 1


def se_channels(in_chs: int, se: float) -> int:
    """SE bottleneck width, reduced from the layer's *input* channels (TF MnasNet, timm)."""
    return max(1, int(in_chs * se))


def mid_channels(in_chs: int, exp: float) -> int:
    """Expanded width of an MBConv layer."""
    return max(1, int(round(in_chs * exp)))


def _conv(cin: int, cout: int, k: int, hw_out: int, groups: int = 1) -> LayerCost:
    p = k * k * (cin // groups) * cout
    return LayerCost(p, p * hw_out)


def _bn(c: int) -> LayerCost:
    return LayerCost(2 * c, 0)


def _se(chs: int, rd: int) -> LayerCost:
    p = chs * rd + rd + rd * chs + chs
    return LayerCost(p, 2 * chs * rd)


def layer_cost(b: BlockSpec, in_chs: int, size: int, stride: int, skip: str) -> LayerCost:
    """Cost of one layer of block ``b``: input ``in_chs`` x ``size`` x ``size``."""
    hw = out_size(size, stride) ** 2
    parts: list[LayerCost] = []
    rd = se_channels(in_chs, b.se) if b.se > 0 else 0
    if b.op == "ir":
        mid = mid_channels(in_chs, b.exp)
        if mid != in_chs:  # no 1x1 expansion when e == 1 (TF MnasNet)
            parts += [_conv(in_chs, mid, 1, size * size), _bn(mid)]
        parts += [_conv(mid, mid, b.kernel, hw, groups=mid), _bn(mid)]
        if rd:
            parts.append(_se(mid, rd))
        parts += [_conv(mid, b.out_chs, 1, hw), _bn(b.out_chs)]
    elif b.op == "ds":
        parts += [_conv(in_chs, in_chs, b.kernel, hw, groups=in_chs), _bn(in_chs)]
        if rd:
            parts.append(_se(in_chs, rd))
        parts += [_conv(in_chs, b.out_chs, 1, hw), _bn(b.out_chs)]
    else:  # cn
        parts += [_conv(in_chs, b.out_chs, b.kernel, hw), _bn(b.out_chs)]
        if rd:
            parts.append(_se(b.out_chs, rd))
    if skip == "pool" and in_chs != b.out_chs:  # 1x1 projection after the pooling
        parts += [_conv(in_chs, b.out_chs, 1, hw), _bn(b.out_chs)]
    return LayerCost(sum(p.params for p in parts), sum(p.macs for p in parts))


def arch_cost(
    spec: ArchSpec, input_size: int = 224, in_chans: int = 3, num_classes: int = 1000
) -> ArchCost:
    """Analytic params and multiply-adds of ``spec`` on ``in_chans`` x ``input_size``^2 input."""
    blocks = []
    chs, size = in_chans, input_size
    for i, (b, skips) in enumerate(zip(spec.blocks, spec.layer_skips(in_chans), strict=True)):
        p = m = 0
        c, s = chs, size
        for j, skip in enumerate(skips):
            stride = b.stride if j == 0 else 1
            lc = layer_cost(b, c, s, stride, skip)
            p, m = p + lc.params, m + lc.macs
            c, s = b.out_chs, out_size(s, stride)
        blocks.append(BlockCost(i, b.to_str(), chs, c, size, s, p, m))
        chs, size = c, s
    cls_p = chs * num_classes + num_classes
    return ArchCost(tuple(blocks), cls_p, chs * num_classes, input_size, in_chans, num_classes)

