"""The MnasNet factorized hierarchical search space (Tan et al., 2019), and named architectures.

Seven searched blocks between a fixed stem (3x3 conv to 32 channels) and a fixed head (1x1
conv to 1280 channels, then pooling and the classifier). Each block takes six decisions:

=========  ==============================================================================
op         ``conv`` (regular conv), ``dwconv`` (depthwise-separable), ``mbconv3``, ``mbconv6``
kernel     3 or 5
se         squeeze-excitation ratio 0 or 0.25
skip       ``none``, ``id`` (identity residual) or ``pool`` (pooling shortcut)
filters    0.75, 1.0 or 1.25 x MobileNetV2's [16, 24, 32, 64, 96, 160, 320]
layers     -1, 0 or +1 on MobileNetV2's [1, 2, 3, 4, 3, 3, 1]
=========  ==============================================================================

Input-size variants (8x8 digits, 14x14 half-resolution MNIST, 28x28 MNIST, 32x32 CIFAR, 224x224
ImageNet) change only the stem stride, block strides, width multiplier and head width, never the
decisions. The 14x14 variant is the 28x28 one at half resolution (same channels and strides, so
the same weights; about a quarter of the multiply-adds): a cheap low-resolution search whose
results and pooled blocks carry over to 28x28.

NOTE (departures, all deliberate):
- A block never has 0 layers: ``layers = max(1, base + delta)``. For the two single-layer
  blocks, -1 and 0 therefore decode to the same architecture (one canonical key).
- Channels are rounded with timm's ``make_divisible`` to a multiple of 4 (ImageNet) or 2
  (small inputs), not 8, so that the three filter ratios stay distinct for every block.
- MnasNet-A1 is expressible as a block string and builds exactly (see :data:`NAMED_ARCHS`),
  but it is not a member of this discrete space: its 112-channel block is 1.17 x 96, between
  the 0.75/1.0/1.25 grid points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fnas.errors import ConfigError, InvalidArchitecture
from fnas.space.factorized import Decision, FactorizedSpace
from fnas.space.spec import ArchSpec, BlockSpec

__all__ = [
    "MnasVariant", "MNAS_VARIANTS", "mnas_space", "mnas_default", "NAMED_ARCHS",
    "resolve_arch", "make_divisible",
]

BASE_FILTERS = (16, 24, 32, 64, 96, 160, 320)
BASE_LAYERS = (1, 2, 3, 4, 3, 3, 1)
OP_CHOICES = ("conv", "dwconv", "mbconv3", "mbconv6")
_OP_TO_BLOCK = {"conv": ("cn", 1.0), "dwconv": ("ds", 1.0), "mbconv3": ("ir", 3.0),
                "mbconv6": ("ir", 6.0)}
_BLOCK_TO_OP = {v: k for k, v in _OP_TO_BLOCK.items()}


def make_divisible(v: float, divisor: int, round_limit: float = 0.9) -> int:
    """timm's channel rounding: nearest multiple of ``divisor``, never below 90% of ``v``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


@dataclass(frozen=True)
class MnasVariant:
    """Fixed, non-searched parts of the MnasNet space for one input size."""

    input_size: int
    """Input height = width in pixels."""
    stem_chs: int
    """Channels of the 3x3 stem conv."""
    stem_stride: int
    """Stride of the stem conv."""
    strides: tuple[int, ...]
    """Stride of the first layer of each of the 7 searched blocks."""
    width: float
    """Width multiplier applied to every searched block's filters."""
    head_chs: int
    """Channels of the 1x1 head conv before pooling."""
    divisor: int
    """Channel counts are rounded to a multiple of this."""


MNAS_VARIANTS: dict[int, MnasVariant] = {
    224: MnasVariant(224, 32, 2, (1, 2, 2, 2, 1, 2, 1), 1.0, 1280, 4),  # 224 -> 7
    32: MnasVariant(32, 16, 1, (1, 1, 2, 2, 1, 2, 1), 0.5, 640, 2),  # 32 -> 4
    28: MnasVariant(28, 16, 2, (1, 1, 2, 1, 1, 2, 1), 0.5, 320, 2),  # 28 -> 14 -> 4
    14: MnasVariant(14, 16, 2, (1, 1, 2, 1, 1, 2, 1), 0.5, 320, 2),  # 14 -> 7 -> 2: 28's layout
    8: MnasVariant(8, 16, 1, (1, 1, 2, 1, 1, 2, 1), 0.5, 320, 2),  # 8 -> 2
}


def _variant(input_size: int) -> MnasVariant:
    if input_size not in MNAS_VARIANTS:
        raise ConfigError(
            f"no MnasNet space variant for input size {input_size}: "
            f"expected one of {sorted(MNAS_VARIANTS)}"
        )
    return MNAS_VARIANTS[input_size]


def _block_filters(v: MnasVariant, i: int, ratio: float) -> int:
    return make_divisible(BASE_FILTERS[i] * ratio * v.width, v.divisor)


def mnas_space(input_size: int = 224) -> FactorizedSpace:
    """The MnasNet space for ``input_size`` (224, 32, 28, 14 or 8).

    Raises:
        ConfigError: no variant exists for ``input_size``.
    """
    v = _variant(input_size)
    decisions = []
    for i in range(7):
        decisions += [
            Decision(f"b{i}_op", OP_CHOICES),
            Decision(f"b{i}_kernel", (3, 5)),
            Decision(f"b{i}_se", (0.0, 0.25)),
            Decision(f"b{i}_skip", ("none", "id", "pool")),
            Decision(f"b{i}_filters", (0.75, 1.0, 1.25)),
            Decision(f"b{i}_layers", (-1, 0, 1)),
        ]

    def decode(c: Mapping[str, Any]) -> ArchSpec:
        blocks = [BlockSpec("cn", 1, 3, v.stem_stride, v.stem_chs)]
        for i in range(7):
            op, exp = _OP_TO_BLOCK[c[f"b{i}_op"]]
            blocks.append(BlockSpec(
                op=op, repeats=max(1, BASE_LAYERS[i] + c[f"b{i}_layers"]),
                kernel=c[f"b{i}_kernel"], stride=v.strides[i],
                out_chs=_block_filters(v, i, c[f"b{i}_filters"]), exp=exp,
                se=c[f"b{i}_se"], skip=c[f"b{i}_skip"],
            ))
        blocks.append(BlockSpec("cn", 1, 1, 1, v.head_chs))
        return ArchSpec(tuple(blocks))

    def encode(arch: ArchSpec) -> dict[str, Any]:
        if len(arch.blocks) != 9:
            raise InvalidArchitecture(
                f"not in the MnasNet-{input_size} space: expected 9 blocks "
                f"(stem, 7 searched, head), got {len(arch.blocks)}"
            )
        fixed = (arch.blocks[0], arch.blocks[-1])
        want = (BlockSpec("cn", 1, 3, v.stem_stride, v.stem_chs),
                BlockSpec("cn", 1, 1, 1, v.head_chs))
        if fixed != want:
            raise InvalidArchitecture(
                f"not in the MnasNet-{input_size} space: stem/head must be "
                f"{want[0]} and {want[1]}, got {fixed[0]} and {fixed[1]}"
            )
        out: dict[str, Any] = {}
        for i, b in enumerate(arch.blocks[1:-1]):
            ratios = {_block_filters(v, i, r): r for r in (1.25, 1.0, 0.75)}
            delta = b.repeats - BASE_LAYERS[i]
            if b.repeats == 1 and BASE_LAYERS[i] == 1:
                delta = 0
            problems = [
                ((b.op, b.exp) in _BLOCK_TO_OP, f"op {b.op} e{b.exp:g}"),
                (b.kernel in (3, 5), f"kernel {b.kernel}"),
                (b.se in (0.0, 0.25), f"se {b.se:g}"),
                (b.out_chs in ratios, f"{b.out_chs} channels"),
                (delta in (-1, 0, 1), f"{b.repeats} layers"),
                (b.stride == v.strides[i], f"stride {b.stride}"),
                (b.act == "re", f"activation {b.act}"),
            ]
            for ok, what in problems:
                if not ok:
                    raise InvalidArchitecture(
                        f"not in the MnasNet-{input_size} space: block {i + 1} ({b}) has {what}"
                    )
            out.update({
                f"b{i}_op": _BLOCK_TO_OP[(b.op, b.exp)], f"b{i}_kernel": b.kernel,
                f"b{i}_se": b.se, f"b{i}_skip": b.skip, f"b{i}_filters": ratios[b.out_chs],
                f"b{i}_layers": delta,
            })
        return out

    meta = {k: getattr(v, k) for k in v.__dataclass_fields__}
    meta["strides"] = list(v.strides)
    return FactorizedSpace(f"mnas{input_size}", decisions, decode, encode, meta)


def mnas_default(input_size: int = 224) -> ArchSpec:
    """The space's centre: MobileNetV2-like (mbconv6, k3, no SE, identity skip, x1.0, +0)."""
    space = mnas_space(input_size)
    values = {}
    for i in range(7):
        values.update({f"b{i}_op": "mbconv6", f"b{i}_kernel": 3, f"b{i}_se": 0.0,
                       f"b{i}_skip": "id", f"b{i}_filters": 1.0, f"b{i}_layers": 0})
    return space.decode(space.indices(values))


NAMED_ARCHS: dict[str, str] = {
    # The paper's MnasNet-A1 (timm `mnasnet_a1` arch def, stem 32 / head 1280).
    "mnasnet_a1": (
        "cn_r1_k3_s2_c32 | ds_r1_k3_s1_e1_c16_noskip | ir_r2_k3_s2_e6_c24"
        " | ir_r3_k5_s2_e3_c40_se0.25 | ir_r4_k3_s2_e6_c80 | ir_r2_k3_s1_e6_c112_se0.25"
        " | ir_r3_k5_s2_e6_c160_se0.25 | ir_r1_k3_s1_e6_c320 | cn_r1_k1_s1_c1280"
    ),
    # MnasNet-B1 (timm `mnasnet_b1`).
    "mnasnet_b1": (
        "cn_r1_k3_s2_c32 | ds_r1_k3_s1_e1_c16_noskip | ir_r3_k3_s2_e3_c24"
        " | ir_r3_k5_s2_e3_c40 | ir_r3_k5_s2_e6_c80 | ir_r2_k3_s1_e6_c96"
        " | ir_r4_k5_s2_e6_c192 | ir_r1_k3_s1_e6_c320_noskip | cn_r1_k1_s1_c1280"
    ),
    # MobileNetV2 1.0 (Sandler et al. 2018), ReLU6 throughout.
    "mobilenetv2_100": (
        "cn_r1_k3_s2_c32_nr6 | ds_r1_k3_s1_e1_c16_nr6 | ir_r2_k3_s2_e6_c24_nr6"
        " | ir_r3_k3_s2_e6_c32_nr6 | ir_r4_k3_s2_e6_c64_nr6 | ir_r3_k3_s1_e6_c96_nr6"
        " | ir_r3_k3_s2_e6_c160_nr6 | ir_r1_k3_s1_e6_c320_nr6 | cn_r1_k1_s1_c1280_nr6"
    ),
}


def resolve_arch(text: str, input_size: int = 224) -> ArchSpec:
    """A named architecture (``mnasnet_a1``, ``mnas_default``...) or a block string.

    Raises:
        InvalidArchitecture: the string is neither a known name nor a valid block string.
    """
    name = text.strip()
    if name == "mnas_default":
        return mnas_default(input_size)
    if name in NAMED_ARCHS:
        return ArchSpec.parse(NAMED_ARCHS[name])
    if "_" not in name:
        known = ", ".join(["mnas_default", *NAMED_ARCHS])
        raise InvalidArchitecture(f"unknown architecture {name!r}: use a block string or {known}")
    return ArchSpec.parse(name)
